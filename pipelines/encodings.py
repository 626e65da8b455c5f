"""Which encoding a file is in.

A byte-order mark decides. Otherwise a file that is strict UTF-8 is UTF-8, whatever the
source declares; a file that is not is in the declared encoding. With no declared encoding
(an upload), charset-normalizer guesses from the first bytes.

The decision is made on the first bytes that are not ASCII (ASCII reads the same in every
encoding the service takes), so a large file is read once: ``EncodingTracker`` follows the
chunks as they stream to PostgreSQL.
"""

import codecs
from dataclasses import dataclass

BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
UTF8 = "utf-8"


class EncodingError(ValueError):
    """The file cannot be decoded; the message names the line and the encodings tried.
    ``position``: where in the chunk fed the bytes that cannot be read start, when known."""

    def __init__(self, message: str, position: int | None = None):
        super().__init__(message)
        self.position = position


def codec_name(encoding: str) -> str:
    """Python's canonical name of ``encoding`` (``cp1252``, ``utf-8``, ...)."""
    return codecs.lookup(encoding).name


def split_bom(first: bytes) -> tuple[str | None, bytes]:
    """The encoding a byte-order mark at the start of ``first`` names, and ``first`` without it."""
    for bom, encoding in BOMS:
        if first.startswith(bom):
            return encoding, first[len(bom) :]
    return None, first


def guess_encoding(sample: bytes) -> str:
    """The encoding charset-normalizer finds most likely for ``sample`` (UTF-8 when unsure)."""
    import charset_normalizer  # only when guessing: it takes memory and time to import

    best = charset_normalizer.from_bytes(sample).best()
    return codec_name(best.encoding) if best is not None else UTF8


@dataclass
class EncodingTracker:
    """Follows a file whose encoding is ``declared`` but which may turn out to be UTF-8.

    ``encoding`` is None while every byte seen is ASCII, then UTF-8 or ``declared``, from the
    first chunk with other bytes. A chunk that breaks UTF-8 after the file was found to be
    UTF-8 raises ``EncodingError``: the file mixes encodings and no reading of it is right.
    """

    declared: str
    encoding: str | None = None

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder(UTF8)()
        if codec_name(self.declared) == UTF8:
            self.encoding = UTF8

    def feed(self, chunk: bytes, final: bool = False) -> str | None:
        """Take the next chunk; returns the encoding decided so far."""
        if self.encoding not in (None, UTF8) or (chunk.isascii() and not final):
            return self.encoding
        buffered = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(chunk, final=final)
        except UnicodeDecodeError as error:
            if self.encoding == UTF8 and codec_name(self.declared) != UTF8:
                # error.start counts from the bytes held back from the last chunk.
                raise EncodingError(
                    f"not UTF-8 ({error.reason}), though earlier lines are: the file mixes "
                    f"encodings; encodings tried: utf-8, {self.declared}",
                    position=max(error.start - buffered, 0),
                ) from error
            self.encoding = codec_name(self.declared)
            return self.encoding
        # Bytes held back as the start of a character cut at the chunk's end decide nothing yet.
        if self.encoding is None and not text.isascii():
            self.encoding = UTF8
        return self.encoding
