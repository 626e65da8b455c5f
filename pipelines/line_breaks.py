"""Line breaks made uniform for COPY, without touching those inside quoted values.

PostgreSQL's COPY takes the line ending of a file's first line and refuses any other outside
quotes. A file may mix CRLF, LF and CR (lines appended by another program); ``LineBreaks``
rewrites every unquoted line break to the first line's ending and turns each blank line into
a line of empty fields (loaded as an empty row, which the loader skips and counts), so that
line numbers stay those of the file.

Fast path: a chunk whose line breaks are already uniform and that has no blank line passes
unchanged after a few byte counts. Quote state is the parity of the quote characters seen,
which is how COPY itself tells quoted line breaks from line ends.

``may_have_empty_rows`` says whether a line may hold no value at all (a blank line, or a line
starting with an empty field): only then does the loader look for such rows.
"""

import re

CR, LF, CRLF = b"\r", b"\n", b"\r\n"


def first_line_end(data: bytes, quote: bytes) -> tuple[int, bytes] | None:
    """Where the first unquoted line break of ``data`` starts, and the break; None if none.

    A CR at the very end of ``data`` is not decided (it may be the start of CRLF): None.
    """
    in_quote = False
    for match in re.finditer(b"[\r\n" + re.escape(quote) + b"]", data):
        char = match.group()
        if char == quote:
            in_quote = not in_quote
            continue
        if in_quote:
            continue
        start = match.start()
        if char == CR:
            if start + 1 == len(data):
                return None
            return start, CRLF if data[start + 1 : start + 2] == LF else CR
        return start, LF
    return None


class LineBreaks:
    """Rewrites a stream's chunks (ASCII-compatible bytes) to use ``eol`` outside quotes.

    ``width`` is the number of fields per line: a blank line becomes ``width - 1``
    delimiters.
    """

    def __init__(self, eol: bytes, delimiter: str, quote: str, width: int):
        self.eol = eol
        self.quote = quote.encode()
        self.filler = delimiter.encode() * (width - 1)
        self.may_have_empty_rows = False
        self._in_quote = False
        self._at_line_start = True
        self._carry = b""
        # A line end followed by a blank line or an empty first field (unquoted or quoted).
        end, delim, quoted_empty = (
            re.escape(part) for part in (eol[-1:], delimiter.encode(), self.quote * 2)
        )
        field_end = b"[\r\n" + delim + b"]"
        self._empty_start = re.compile(
            end + b"(?:" + field_end + b"|" + quoted_empty + b"(?:" + field_end + b"|$))"
        )
        self._line_start = (CR, LF, delimiter.encode(), self.quote * 2)
        self._split_empty = eol[-1:] + self.quote  # perhaps an empty quoted field cut in two

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if data.endswith(CR):
            # Perhaps the first half of a CRLF: decide with the next chunk.
            data, self._carry = data[:-1], CR
        return self._rewrite(data)

    def finish(self) -> bytes:
        data, self._carry = self._carry, b""
        return self._rewrite(data)

    def _rewrite(self, data: bytes) -> bytes:
        if not data:
            return data
        if self._uniform(data):
            self._in_quote ^= data.count(self.quote) % 2 == 1
            self._at_line_start = not self._in_quote and data.endswith(self.eol)
            return data
        return self._rewrite_slowly(data)

    def _uniform(self, data: bytes) -> bool:
        """True when ``data`` needs no rewriting: uniform line breaks and no blank line."""
        eol = self.eol
        if eol == LF:
            uniform = CR not in data
        elif eol == CR:
            uniform = LF not in data
        else:
            crlf = data.count(CRLF)
            uniform = data.count(CR) == crlf and data.count(LF) == crlf
        if not uniform:
            return False
        if self._at_line_start and data.startswith(self._line_start):
            self.may_have_empty_rows = True
            if data.startswith(eol):
                return False
        if self._empty_start.search(data) is not None or data.endswith(self._split_empty):
            self.may_have_empty_rows = True
            return data.find(eol + eol) == -1
        return True

    def _rewrite_slowly(self, data: bytes) -> bytes:
        parts = data.split(self.quote)
        out = []
        for index, part in enumerate(parts):
            if index:
                self._in_quote = not self._in_quote
            if self._in_quote or (index and not part):
                self._at_line_start = False
            if self._in_quote:
                out.append(part)
                continue
            out.append(self._unquoted(part))
        return self.quote.join(out)

    def _unquoted(self, part: bytes) -> bytes:
        """An unquoted run: every line break -> eol, blank lines -> lines of empty fields."""
        if not part:
            return part
        text = part.replace(CRLF, LF).replace(CR, LF)
        # Conservatively: the rewritten runs are few; what matters is never to miss one.
        self.may_have_empty_rows = True
        if self._at_line_start and text.startswith(LF):
            text = self.filler + text
        text = text.replace(LF + LF, LF + self.filler + LF)
        text = text.replace(LF + LF, LF + self.filler + LF)  # a third of three breaks in a row
        self._at_line_start = text.endswith(LF)
        return text.replace(LF, self.eol) if self.eol != LF else text
