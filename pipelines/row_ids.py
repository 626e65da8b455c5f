"""Row ids written into a CSV stream, so that COPY reads each row's id with its values.

Every row the loader copies gets an id, dense and in file order: L0's ``id``, and the stage's.
Drawn by the column's default, an id costs PostgreSQL a call of nextval() a row, a tenth of
the COPY (0.27 s of 2.5 s for the bench's 1,000,000 rows); read from the stream, it costs the
parsing of one small integer. ``RowIds`` writes ``<id><delimiter>`` before each record as the
chunks pass, on the thread that reads the file, while PostgreSQL parses the chunks before.

A record ends at a line break outside quotes. Quote state is the parity of the quote
characters seen, which is how COPY itself tells a quoted line break from a record's end (its
escape is the quote, so a doubled quote toggles twice). The reading layer has made the line
breaks uniform (``pipelines.line_breaks``): every record but perhaps the last ends with the
file's ``eol``.

    >>> ids = RowIds(first_id=7, eol=b"\\n", delimiter=",", quote='"', header=True)
    >>> b"".join(ids.apply([b'a,b\\nx,"1\\n2"\\ny,', b"3\\n"]))
    b'a,b\\n7,x,"1\\n2"\\n8,y,3\\n'
    >>> ids.next_id, ids.count
    (9, 2)
"""

from collections.abc import Iterable, Iterator

from pipelines.reading import ReadError

# The bytes that can change the quote state or end a line; the others are dropped before
# the fast check of a chunk.
_LINE_BREAK_BYTES = b"\r\n"
# A record (a line, or lines joined by a quoted value) longer than this is refused: it is a
# quote never closed, and carrying on would hold the rest of the file in memory.
MAX_RECORD_BYTES = 256 << 20
# "000" to "999": the ids of a thousand are "<thousands>" + each (see ``_joined_ids``).
_LAST_DIGITS = [f"{number:03d}" for number in range(1000)]


class RowIds:
    """Prefixes each record of a CSV byte stream with an id, from ``first_id`` on.

    ``eol``: the stream's line break (``b"\\n"``, ``b"\\r\\n"`` or ``b"\\r"``); ``header``:
    the first record is the header, passed on as it is. After ``apply``'s chunks are read,
    ``count`` records were numbered and ``next_id`` follows the last id given.
    """

    def __init__(
        self,
        first_id: int,
        eol: bytes,
        delimiter: str,
        quote: str,
        *,
        header: bool,
        label: str = "the file",
    ):
        self.first_id = self.next_id = first_id
        self.label = label
        # Lines before the carried record, counted as COPY counts them (for messages).
        self.lines = 0

        self.eol = eol
        self.quote = quote.encode()
        self.delimiter = delimiter
        self.header = header
        kept = set(self.quote + _LINE_BREAK_BYTES)
        self._dropped = bytes(byte for byte in range(256) if byte not in kept)
        # How far the carried bytes (a record's beginning) are known to hold no record end,
        # and whether that point is inside quotes: a record that spans many chunks (a long
        # quoted value) is scanned once, not again with each chunk.
        self._scanned = 0
        self._quoted = False

    @property
    def count(self) -> int:
        return self.next_id - self.first_id

    def apply(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The chunks with every record prefixed; cut at record ends, not where they came.

        Raises ``ReadError`` for a record longer than ``MAX_RECORD_BYTES`` (a quote never
        closed), naming the line where it starts."""
        carry = bytearray()  # grown in place: a record spanning many chunks is copied once
        for chunk in chunks:
            carry += chunk
            records, rest = self._records(carry)
            if records:
                carry = bytearray(rest)
            elif len(carry) > MAX_RECORD_BYTES:
                raise ReadError(
                    f"{self.label}: line {self.lines + 1}: a record of over "
                    f"{MAX_RECORD_BYTES >> 20} MiB: a quoted value that is never closed?"
                )
            if records and self.header:
                self.header = False
                self.lines += copy_lines(records[0], self.eol) + 1
                yield bytes(records.pop(0)) + self.eol
            if records:
                numbered = self._numbered(records)
                self.lines += copy_lines(numbered, self.eol) + 1
                yield numbered + self.eol
        if carry:
            carry = bytes(carry)
            # The last record, without a line break (or a header with no rows after it).
            yield carry if self.header else self._numbered([carry])

    def _records(self, data: bytes) -> tuple[list[bytes], bytes]:
        """``data``'s complete records (without their line breaks), and the rest."""
        end = self._record_end(data)
        if end == -1:
            return [], data
        records, rest = self._records_after(data[end + len(self.eol) :])
        self._record_end(rest)  # none there: notes how far the rest is scanned
        return [data[:end], *records], rest

    def _record_end(self, data: bytes) -> int:
        """Where the record that ``data`` begins ends (its line break), -1 if not in ``data``;
        the scan goes on from where the last call on the same record stopped."""
        scanned, quoted = self._scanned, self._quoted
        while True:
            if quoted:  # no record end before the closing quote
                closing = data.find(self.quote, scanned)
                if closing == -1:
                    self._scanned, self._quoted = len(data), True
                    return -1
                scanned = closing + 1
            end = data.find(self.eol, scanned)
            if end == -1:
                # A CR at the end may begin a CRLF: it is looked at again with what follows.
                stop = max(scanned, len(data) - len(self.eol) + 1)
                self._scanned = stop
                self._quoted = data.count(self.quote, scanned, stop) % 2 == 1
                return -1
            quoted = data.count(self.quote, scanned, end) % 2 == 1
            if not quoted:
                self._scanned, self._quoted = 0, False
                return end
            scanned = end

    def _records_after(self, data: bytes) -> tuple[list[bytes], bytes]:
        """``_records`` for ``data`` that begins a record, its scan not begun."""
        last = data.rfind(self.eol)
        if last == -1:
            return [], data
        body = data[:last]
        # No line break inside quotes when, with pairs of quotes that no line break separates
        # taken out, no quote is left: every line break is then at an even count of quotes.
        breaks_and_quotes = body.translate(None, self._dropped)
        if self.quote not in breaks_and_quotes.replace(self.quote * 2, b""):
            return body.split(self.eol), data[last + len(self.eol) :]
        return self._records_slowly(data)

    def _records_slowly(self, data: bytes) -> tuple[list[bytes], bytes]:
        """``_records`` for data with a line break inside quotes: each break's quote parity."""
        records = []
        start = scanned = 0
        quoted = False
        end = data.find(self.eol)
        while end != -1:
            quoted ^= data.count(self.quote, scanned, end) % 2 == 1
            scanned = end
            if not quoted:
                records.append(data[start:end])
                start = end + len(self.eol)
            end = data.find(self.eol, end + len(self.eol))
        return records, data[start:]

    def _numbered(self, records: list[bytes]) -> bytes:
        """``records`` joined by ``eol``, each after its id and the delimiter."""
        first, self.next_id = self.next_id, self.next_id + len(records)
        # The ids as one string cut into "<id>,", "<eol><id>,", ...: C loops, not Python's.
        separator = f"{self.delimiter}\x00{self.eol.decode()}"
        ids = (_joined_ids(first, self.next_id, separator) + self.delimiter).encode()
        parts = [b""] * (2 * len(records))
        parts[0::2] = ids.split(b"\x00")
        parts[1::2] = records
        return b"".join(parts)


def copy_lines(data: bytes, eol: bytes) -> int:
    """The line breaks in ``data`` as COPY counts lines: each record's end, and each line
    break inside quotes written with the character that ends the file's lines (CR for CR
    and CRLF)."""
    return data.count(b"\n" if eol == b"\n" else b"\r")


def _joined_ids(first: int, end: int, separator: str) -> str:
    """``separator.join(map(str, range(first, end)))``, a thousand ids at a time: the ids
    from 23000 to 23999 are "23" + "000", ... "23" + "999", one join of ``_LAST_DIGITS``
    with ``separator + "23"`` (0.015 s for 1,000,000 ids, against 0.21 s for ``str``)."""
    parts = []
    number = first
    while number < end:
        thousands, last = divmod(number, 1000)
        stop = min(end, (thousands + 1) * 1000)
        if thousands == 0:
            parts.append(separator.join(map(str, range(number, stop))))
        else:
            prefix = str(thousands)
            digits = _LAST_DIGITS[last : stop - thousands * 1000]
            parts.append(prefix + (separator + prefix).join(digits))
        number = stop
    return separator.join(parts)
