"""Values that stand for "no value" in a file (``NULL``, ``None``, ``N/A``), made empty.

COPY knows one spelling of NULL (the empty unquoted field). A file format that lists other
spellings (``FileFormat.null_values``) has every unquoted field that is exactly one of them
rewritten to an empty field while the file streams, so it loads as NULL in every column
type. A quoted ``"N/A"`` is a value and stays as it is. Chunks without any of the spellings
pass unchanged after a byte search (``N``) or a regular expression search.
"""

import re
from collections.abc import Iterable, Iterator

CR, LF = b"\r", b"\n"


class NullValues:
    """Rewrites unquoted fields equal to one of ``values`` to empty fields.

    Works on ASCII-compatible bytes with uniform line breaks (after ``LineBreaks``).
    """

    def __init__(self, values: Iterable[str], delimiter: str, quote: str):
        self.values = tuple(value.encode() for value in values if value)
        self.delimiter = delimiter.encode()
        self.quote = quote.encode()
        ends = re.escape(self.delimiter) + b"\r\n"
        spellings = b"|".join(re.escape(value) for value in self.values)
        self._field = re.compile(b"(?<=[" + ends + b"])(?:" + spellings + b")(?=[" + ends + b"])")
        self._any = re.compile(spellings)
        # Spellings mostly share their first byte (``N``): a file without it is skipped by
        # a memchr-speed search, one with it by a regular expression search.
        self._first_bytes = tuple({value[:1] for value in self.values})
        self._longest = max((len(value) for value in self.values), default=0)
        self._in_quote = False
        self._previous = LF  # the byte before the data: a line start
        self._carry = b""

    def apply(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks rewritten; the last field of the stream is checked at its end."""
        for chunk in chunks:
            out = self._feed(chunk, final=False)
            if out:
                yield out
        out = self._feed(b"", final=True)
        if out:
            yield out

    def _feed(self, chunk: bytes, final: bool) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if not final:
            # A field cut at the chunk's end is decided with the next chunk.
            cut = max(data.rfind(self.delimiter), data.rfind(LF), data.rfind(CR)) + 1
            if len(data) - cut <= self._longest:
                data, self._carry = data[:cut], data[cut:]
        if not data:
            return data
        if not self._may_hold_one(data):
            self._in_quote ^= data.count(self.quote) % 2 == 1
            self._previous = data[-1:]
            return data
        out = self._rewrite(data, final)
        self._previous = data[-1:]
        return out

    def _may_hold_one(self, data: bytes) -> bool:
        if all(data.find(first) == -1 for first in self._first_bytes):
            return False
        return self._any.search(data) is not None

    def _rewrite(self, data: bytes, final: bool) -> bytes:
        parts = data.split(self.quote)
        out = []
        for index, part in enumerate(parts):
            if index:
                self._in_quote = not self._in_quote
            if self._in_quote or not part:
                out.append(part)
                continue
            before = self._previous if index == 0 else self.quote
            after = LF if final and index == len(parts) - 1 else b""
            text = self._field.sub(b"", before + part + after)
            out.append(text[len(before) : len(text) - len(after)])
        return self.quote.join(out)
