"""How an upload's CSV is written, guessed from its first bytes: delimiter, quote, encoding.

Sources declare their format; an upload does not, so its verify page offers these guesses
(each one changeable). Only a sample from the start of the file is looked at.
"""

import codecs
import re
from collections import Counter

from pipelines.encodings import UTF8, guess_encoding, split_bom

DELIMITERS = (",", ";", "\t", "|")
QUOTES = ('"', "'")
SAMPLE_LINES = 50
CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file starting with ``sample``: its byte-order mark's; UTF-8 when the
    sample is strict UTF-8 (a character cut at the sample's end allowed); else Windows-1252
    when every byte reads in it (the usual encoding of a spreadsheet saved as CSV); else the
    detector's guess."""
    bom_encoding, rest = split_bom(sample)
    if bom_encoding is not None:
        return bom_encoding
    try:
        codecs.getincrementaldecoder(UTF8)().decode(rest, final=False)
        return UTF8
    except UnicodeDecodeError:
        pass
    # Spreadsheets saved as CSV on Windows are Windows-1252; detectors often take short
    # samples of it for another code page. Any byte but five undefined ones reads in it.
    if not any(byte in rest for byte in CP1252_UNDEFINED):
        return "cp1252"
    return guess_encoding(rest)


def detect_delimiter(text: str) -> str:
    """The delimiter of CSV ``text`` (the file's first lines): the candidate found the same
    number of times, at least once, outside quotes on most lines; ties go to the one found
    most often. A comma when none is found."""
    lines = [_unquoted(line) for line in text.splitlines()[:SAMPLE_LINES] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut short
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        counts = Counter(line.count(delimiter) for line in lines)
        if not counts:
            continue
        count, lines_with_it = counts.most_common(1)[0]
        if count == 0:
            continue
        score = (lines_with_it, count)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect_quote(text: str, delimiter: str) -> str:
    """The quote character: ``'`` only when values start with it and never with ``"``."""
    starts = {
        quote: len(re.findall(rf"(?:^|{re.escape(delimiter)}){quote}", text, re.M))
        for quote in QUOTES
    }
    return "'" if starts["'"] and not starts['"'] else '"'


def _unquoted(line: str) -> str:
    """``line`` without its double-quoted parts (a delimiter inside quotes does not count)."""
    return re.sub(r'"[^"]*"', "", line)
