"""The one reading layer: every file a dataset loads, from a source or an upload, is read here.

It owns what a file's bytes mean before PostgreSQL parses them:

- the members of a zip that are loaded (``pipelines.archives``);
- the encoding: a byte-order mark decides; strict UTF-8 is UTF-8; else the declared encoding
  (``pipelines.encodings``);
- line breaks: CRLF, LF, CR and mixtures, quoted breaks kept (``pipelines.line_breaks``);
- the header: columns matched by name (``pipelines.headers``);
- files with no data at all.

A ``ReadFile`` is what the loader COPYs: the file's bytes (ASCII-compatible: passed through in
an encoding PostgreSQL converts, else transcoded to UTF-8 here), header line included, with
the match of its columns. Bytes are read in large chunks and never held whole in memory.
Anything wrong raises ``ReadError`` whose message starts with the file's name.
"""

import codecs
import csv
import io
import posixpath
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import IO

from pipelines import storage
from pipelines.archives import ArchiveError, is_junk, is_zip_name, open_member, zip_members
from pipelines.datasets import POSTGRES_ENCODINGS, Dataset, FileFormat
from pipelines.encodings import (
    UTF8,
    EncodingError,
    EncodingTracker,
    codec_name,
    guess_encoding,
    split_bom,
)
from pipelines.headers import (
    HeaderError,
    HeaderMatch,
    header_by_position,
    match_header,
    positional_match,
)
from pipelines.line_breaks import CR, LF, LineBreaks, first_line_end
from pipelines.null_values import NullValues

__all__ = [
    "NoDataRows",
    "ReadError",
    "ReadFile",
    "TextRows",
    "UndecodableBytes",
    "is_junk",
    "open_datafile",
    "read_bytes",
    "read_rows",
    "read_stream",
]

CHUNK_SIZE = 1 << 20
MAX_HEADER_BYTES = 16 << 20
SAMPLE_BYTES = 64 << 10  # what the encoding detector looks at when a file cannot be read

Progress = Callable[[int], None]


class ReadError(ValueError):
    """A file that cannot be loaded as it is; the message names the file and what is wrong."""


class NoDataRows(ReadError):
    """A file with no data rows; ``empty`` when it has nothing at all, not even a header."""

    def __init__(self, message: str, *, empty: bool = False):
        super().__init__(message)
        self.empty = empty


class UndecodableBytes(ReadError):
    """Bytes that cannot be read in ``encoding`` (Python's codec name), for ``reason``.

    ``line``: the line they are on (lines counted from 1, the header's included, each line
    break counted, quoted ones too). ``row``: the data row they are in, counted as
    ``read_rows`` counts rows (1 for the first after the header); known only when the file is
    read as rows, else None.
    """

    def __init__(self, message: str, *, line: int, encoding: str, reason: str):
        super().__init__(message)
        self.line = line
        self.encoding = encoding
        self.reason = reason
        self.row: int | None = None


@dataclass
class ReadFile:
    """One file (or zip member) ready for COPY.

    ``chunks`` yields its bytes in ``copy_encoding`` (a PostgreSQL encoding name), header line
    first when ``has_header``, every line break outside quotes ``line_breaks.eol``. ``match``
    maps its columns to the dataset's. ``tried`` lists the encodings considered, for messages.
    """

    label: str
    match: HeaderMatch
    has_header: bool
    copy_encoding: str
    tried: tuple[str, ...]
    chunks: Iterator[bytes]
    line_breaks: LineBreaks
    header_fields: list[str] = field(default_factory=list)

    # The file's first bytes as read so far (filled while ``chunks`` stream).
    sample: bytearray = field(default_factory=bytearray)

    @property
    def guessed_encoding(self) -> str | None:
        """What the detector makes of the file's first bytes, when not ASCII or UTF-8."""
        if self.sample.isascii():
            return None
        guess = guess_encoding(bytes(self.sample))
        return None if guess == UTF8 else guess

    @property
    def may_have_empty_rows(self) -> bool:
        """After ``chunks`` are read: whether a row may have no value at all."""
        return self.line_breaks.may_have_empty_rows


@dataclass(frozen=True)
class Datafile:
    """A stored file opened for loading: the members it loads (empty when not a zip) and
    its ``ReadFile``s, read one after the other."""

    name: str
    members: tuple[str, ...]
    files: Iterator[ReadFile]


@contextmanager
def open_datafile(
    key: str, dataset: Dataset, on_progress: Progress | None = None, label: str | None = None
):
    """Open the stored file ``key`` for loading into ``dataset``; yields a ``Datafile``.

    A zip yields its members in name order (``pipelines.archives``). ``ReadError`` when the
    zip holds no member to load, or several where one is expected. Messages name the file
    ``label`` (default: the key's last part).
    """
    name = label or posixpath.basename(key)
    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(storage.open_file(key))
        if not is_zip_name(key):
            files = (read_stream(stream, dataset, name, on_progress) for _ in range(1))
            yield Datafile(name, (), files)
            return
        try:
            members = zip_members(stream, dataset.file_format, stack)
        except ArchiveError as error:
            raise ReadError(f"{name}: {error}") from error

        def member_files() -> Iterator[ReadFile]:
            for member in members:
                with open_member(member) as opened:
                    yield read_stream(opened, dataset, f"{name}: {member.path}", on_progress)

        yield Datafile(name, tuple(member.path for member in members), member_files())


def read_bytes(data: bytes, dataset: Dataset, label: str, chunk_size: int = CHUNK_SIZE) -> ReadFile:
    """A ``ReadFile`` of bytes in memory (small files, tests)."""
    return read_stream(io.BytesIO(data), dataset, label, chunk_size=chunk_size)


def read_stream(
    stream: IO[bytes],
    dataset: Dataset,
    label: str,
    on_progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ReadFile:
    """Read the start of ``stream`` (encoding, header) and return it as a ``ReadFile``.

    Raises ``ReadError`` naming ``label`` for a file with no data, a header that does not
    name the dataset's columns, or bytes in no encoding tried.
    """
    file_format = dataset.file_format
    decoder = _Decoder(stream, file_format.encoding, chunk_size, on_progress, label)
    try:
        head, chunks = _head(decoder, file_format)
        fields, eol = _header(head, decoder, file_format)
        if not file_format.header:
            match = positional_match(dataset)
        elif file_format.columns_by_position:
            match = header_by_position(fields, dataset)
        else:
            match = match_header(fields, dataset)
    except (HeaderError, EncodingError) as error:
        raise ReadError(f"{label}: {error}") from error
    decoder.eol = eol
    line_breaks = LineBreaks(eol, file_format.delimiter, file_format.quote, len(fields))
    chunks = _normalised(chunks, line_breaks)
    if file_format.null_values:
        nulls = NullValues(file_format.null_values, file_format.delimiter, file_format.quote)
        chunks = nulls.apply(chunks)
    return ReadFile(
        label=label,
        match=match,
        has_header=file_format.header,
        copy_encoding=decoder.copy_encoding,
        tried=decoder.tried,
        chunks=chunks,
        header_fields=fields,
        line_breaks=line_breaks,
        sample=decoder.sample,
    )


@dataclass
class TextRows:
    """A file read as rows of text, for a person to check before it loads (an upload's verify
    page): ``header`` its first line's fields, ``rows`` the following rows (each a list of
    values, as COPY will read them) with their line numbers, ``encoding`` the one read.

    Iterating ``rows`` reads the file on as far as it is iterated, no further; a row that
    cannot be decoded raises ``ReadError`` naming its line.
    """

    label: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    _decoder: "_Decoder"

    @property
    def encoding(self) -> str:
        return self._decoder.encoding


def read_rows(
    stream: IO[bytes], file_format: FileFormat, label: str, chunk_size: int = CHUNK_SIZE
) -> TextRows:
    """Read ``stream`` as ``file_format`` says, as text rows; ``ReadError`` for a file with no
    data or that cannot be decoded. Line breaks are read as the loader reads them."""
    decoder = _Decoder(stream, file_format.encoding, chunk_size, None, label)
    try:
        head, chunks = _head(decoder, file_format)
        fields, eol = _header(head, decoder, file_format)
    except (HeaderError, EncodingError) as error:
        raise ReadError(f"{label}: {error}") from error
    decoder.eol = eol
    line_breaks = LineBreaks(eol, file_format.delimiter, file_format.quote, len(fields))
    lines = _text_lines(_normalised(chunks, line_breaks), decoder, eol.decode())
    reader = csv.reader(lines, delimiter=file_format.delimiter, quotechar=file_format.quote)

    def rows() -> Iterator[tuple[int, list[str]]]:
        number = 0
        try:
            next(reader, None)  # the header
            for row in reader:
                number += 1
                yield reader.line_num, row
        except csv.Error as error:
            raise ReadError(f"{label}: line {reader.line_num}: {error}") from None
        except UndecodableBytes as error:
            # Every row before the bytes was read (the readers pass on what they could
            # decode before raising): the bytes are in the next one.
            error.row = number + 1
            raise

    return TextRows(label, fields, rows(), decoder)


def _text_lines(chunks: Iterable[bytes], decoder: "_Decoder", eol: str) -> Iterator[str]:
    """The chunks' text cut into lines that end with ``eol`` (csv joins quoted breaks).

    Bytes that cannot be decoded raise ``UndecodableBytes`` once every whole line before
    them is yielded.
    """
    text_decoder = None
    carry = ""
    line_number = 1  # of the header line; the text starts with it
    for chunk in chunks:
        if text_decoder is None:
            # Decided by the first chunk: passed through in its own encoding, or UTF-8.
            encoding = UTF8 if decoder.copy_encoding == "UTF8" else decoder.header_encoding
            text_decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        buffered = text_decoder.getstate()[0]
        try:
            text = carry + text_decoder.decode(chunk)
        except UnicodeDecodeError as error:
            readable = (buffered + chunk)[: error.start].decode(encoding, errors="replace")
            lines = (carry + readable).split(eol)
            for line in lines[:-1]:
                yield line + eol
            line = line_number + len(lines) - 1
            raise UndecodableBytes(
                f"{decoder.label}: line {line}: cannot be read as {encoding} ({error.reason}); "
                "choose the file's encoding",
                line=line,
                encoding=encoding,
                reason=error.reason,
            ) from None
        lines = text.split(eol)
        carry = lines.pop()
        line_number += len(lines)
        for line in lines:
            yield line + eol
    if carry:
        yield carry


def _head(decoder: "_Decoder", file_format: FileFormat) -> tuple[bytes, Iterator[bytes]]:
    """The first chunks, up to the first line's end; and every chunk, those included."""
    chunks = iter(decoder)
    seen: list[bytes] = []
    quote = file_format.quote.encode()
    for chunk in chunks:
        seen.append(chunk)
        head = b"".join(seen)
        if first_line_end(head, quote) is not None:
            break
        if len(head) > MAX_HEADER_BYTES:
            raise HeaderError(f"the first line is longer than {MAX_HEADER_BYTES >> 20} MB")
    head = b"".join(seen)
    if not head.strip():
        raise NoDataRows(f"{decoder.label}: no data rows (the file is empty)", empty=True)
    return head, _chain(seen, chunks)


def _header(head: bytes, decoder: "_Decoder", file_format: FileFormat) -> tuple[list[str], bytes]:
    """The first line's fields, and the line ending the file's lines are made to use."""
    end = first_line_end(head, file_format.quote.encode())
    if end is None:
        end = (len(head.rstrip(b"\r")), LF)
    position, eol = end
    # Line breaks are made uniform to the first data line's: when only the header's differs
    # (a header written by another program), only the first chunk needs rewriting.
    following = first_line_end(head[position + len(eol) :], file_format.quote.encode())
    if following is not None:
        eol = following[1]
    text = head[:position].decode(decoder.header_encoding, errors="replace")
    reader = csv.reader([text], delimiter=file_format.delimiter, quotechar=file_format.quote)
    fields = next(reader, [""])
    return fields, eol


def _chain(first: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from first
    yield from rest


def _normalised(chunks: Iterable[bytes], line_breaks: LineBreaks) -> Iterator[bytes]:
    for chunk in chunks:
        out = line_breaks.feed(chunk)
        if out:
            yield out
    out = line_breaks.finish()
    if out:
        yield out


class _Decoder:
    """A stream's chunks as ASCII-compatible bytes for COPY, and the encoding COPY is told.

    After a byte-order mark: its encoding. Otherwise ``EncodingTracker`` watches the chunks:
    while they are ASCII or UTF-8 they pass unchanged (COPY in UTF-8); a file found to be in
    the declared encoding on its first chunk passes unchanged too (COPY converts it), and one
    found so later is transcoded here from that chunk on. Encodings PostgreSQL cannot convert,
    and UTF-16/32, are transcoded here throughout.
    """

    def __init__(
        self,
        stream: IO[bytes],
        declared: str,
        chunk_size: int,
        on_progress: Progress | None,
        label: str,
    ):
        self.stream = stream
        self.declared = codec_name(declared)
        self.chunk_size = chunk_size
        self.on_progress = on_progress
        self.label = label
        self.eol = LF
        self.lines = 0
        self.copy_encoding = "UTF8"
        self.tried: tuple[str, ...] = tuple(dict.fromkeys((UTF8, self.declared)))
        self.header_encoding = UTF8
        self._transcoder = None
        self._transcoding = ""
        self.sample = bytearray()

    @property
    def encoding(self) -> str:
        """The encoding the file is read in (as far as it has been read)."""
        if self._transcoder is not None:
            return self._transcoding
        return UTF8 if self.copy_encoding == "UTF8" else self.header_encoding

    def __iter__(self) -> Iterator[bytes]:
        chunk = self._read()
        ended = not chunk
        bom_encoding, chunk = split_bom(chunk)
        tracker = None
        if bom_encoding is not None:
            self.tried = (f"{bom_encoding} (its byte-order mark)",)
            self._decide(bom_encoding, passthrough_ok=True)
        elif self.declared != UTF8:
            # PostgreSQL checks UTF-8 itself; a file declared in another encoding is watched
            # for being UTF-8 after all.
            tracker = EncodingTracker(self.declared)
        first = True
        while True:
            following = b"" if ended else self._read()
            final = ended = not following
            try:
                if tracker is not None:
                    decided = self._track(tracker, chunk, final)
                    if decided == self.declared:
                        self._decide(decided, passthrough_ok=first)
                        tracker = None
                out = self._transcode(chunk, final) if self._transcoder else chunk
            except _Unreadable as unreadable:
                # What comes before the bytes is passed on first, so that a reader of rows
                # knows which row they are in.
                if unreadable.readable:
                    yield unreadable.readable
                raise unreadable.error from None
            if tracker is not None or self._transcoder is not None:
                # Counted only where this class reports errors itself (PostgreSQL counts
                # lines for the rest).
                self.lines += chunk.count(CR if self.eol == CR else LF)
            if out:
                yield out
            if final:
                return
            chunk, first = following, False

    def _read(self) -> bytes:
        chunk = self.stream.read(self.chunk_size)
        if self.on_progress is not None and chunk:
            self.on_progress(len(chunk))
        if len(self.sample) < SAMPLE_BYTES:
            self.sample += chunk[: SAMPLE_BYTES - len(self.sample)]
        return chunk

    def _track(self, tracker: EncodingTracker, chunk: bytes, final: bool) -> str | None:
        try:
            return tracker.feed(chunk, final=final)
        except EncodingError as error:
            line = self._line_of(chunk, error.position)
            raise _Unreadable(
                chunk[: error.position or 0],
                UndecodableBytes(
                    f"{self.label}: line {line}: {error}",
                    line=line,
                    encoding=UTF8,
                    reason=str(error),
                ),
            ) from None

    def _decide(self, encoding: str, passthrough_ok: bool) -> None:
        """Use ``encoding`` from here on: passed through to COPY when PostgreSQL converts it
        (and COPY has not started in another encoding), else transcoded to UTF-8 here."""
        postgres = POSTGRES_ENCODINGS.get(encoding)
        if passthrough_ok and postgres is not None and _ascii_compatible(encoding):
            self.copy_encoding = postgres
            self.header_encoding = encoding
            return
        self._transcoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._transcoding = encoding

    def _transcode(self, chunk: bytes, final: bool) -> bytes:
        buffered = self._transcoder.getstate()[0]
        try:
            return self._transcoder.decode(chunk, final=final).encode(UTF8)
        except UnicodeDecodeError as error:
            # error.start counts from the bytes the decoder held back from the last chunk.
            readable = (buffered + chunk)[: error.start]
            line = self._line_of(chunk, max(error.start - len(buffered), 0))
            raise _Unreadable(
                readable.decode(self._transcoding, errors="replace").encode(UTF8),
                UndecodableBytes(
                    f"{self.label}: line {line}: cannot be read as {self._transcoding} "
                    f"({error.reason}); encodings tried: {', '.join(self.tried)}",
                    line=line,
                    encoding=self._transcoding,
                    reason=error.reason,
                ),
            ) from None

    def _line_of(self, chunk: bytes, position: int | None) -> int:
        """The line of byte ``position`` of ``chunk`` (its first line when unknown)."""
        before = chunk[:position] if position is not None else b""
        return self.lines + before.count(CR if self.eol == CR else LF) + 1


class _Unreadable(Exception):
    """Raised inside ``_Decoder``: ``error``, and the bytes of the chunk before the ones that
    cannot be read (ready for COPY), which are passed on before it is raised."""

    def __init__(self, readable: bytes, error: UndecodableBytes):
        super().__init__(str(error))
        self.readable = readable
        self.error = error


def _ascii_compatible(encoding: str) -> bool:
    return "utf-16" not in encoding and "utf-32" not in encoding
