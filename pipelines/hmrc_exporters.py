"""HMRC's monthly exporters list (SOURCES.md §3.9): a zip of zips of tab-separated lines.

Each member of the stored zip is read in order: a member that is a zip contributes its first
data member, any other its own bytes. The bytes are mac-roman text; lines end in CRLF, LF or
CR. A line holds month, row type, company name, five address lines, postcode (``"`` removed
from each), then one goods code per field. Lines with fewer than ten fields are junk: they are
left out and reported. Read line by line, never whole.
"""

import io
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO

from pipelines.archives import is_junk, is_zip_name, seekable
from pipelines.steps import Parsed

ENCODING = "mac-roman"
FIELDS = 10  # the nine named fields and at least one goods-code field
COLUMNS = (
    "month",
    "row_type",
    "company_name",
    "address1",
    "address2",
    "address3",
    "address4",
    "address5",
    "postcode",
    "export_item_codes",
)


def parse_exporters(stream: IO[bytes], name: str) -> Parsed:
    """The rows of the stored zip ``stream``: one per line, ``COLUMNS`` in order."""
    parsed = Parsed(rows=iter(()))
    parsed.rows = _rows(stream, parsed)
    return parsed


def _rows(stream: IO[bytes], parsed: Parsed) -> Iterator[list[str | None]]:
    with ExitStack() as stack:
        outer = stack.enter_context(zipfile.ZipFile(seekable(stream, stack)))
        for info in outer.infolist():
            if info.is_dir() or is_junk(info.filename):
                continue
            with outer.open(info) as member:
                if is_zip_name(info.filename):
                    yield from _inner_zip(member, info.filename, parsed)
                else:
                    yield from _lines(member, info.filename, parsed)


def _inner_zip(member: IO[bytes], path: str, parsed: Parsed) -> Iterator[list[str | None]]:
    with ExitStack() as stack:
        inner = stack.enter_context(zipfile.ZipFile(seekable(member, stack)))
        data = [
            info for info in inner.infolist() if not info.is_dir() and not is_junk(info.filename)
        ]
        if not data:
            parsed.skipped.append((path, "a zip with no data member"))
            return
        with inner.open(data[0]) as first:
            yield from _lines(first, f"{path}/{data[0].filename}", parsed)


def _lines(member: IO[bytes], path: str, parsed: Parsed) -> Iterator[list[str | None]]:
    text = io.TextIOWrapper(member, encoding=ENCODING, newline=None)
    for number, line in enumerate(text, start=1):
        fields = line.rstrip("\n").split("\t")
        if len(fields) < FIELDS:
            if line.strip():
                parsed.skipped.append(
                    (
                        f"{path} line {number}",
                        f"{len(fields)} tab-separated field(s), not {FIELDS}+",
                    )
                )
            continue
        named = [value.replace('"', "") for value in fields[: FIELDS - 1]]
        codes = ",".join(code.replace("\r", "") for code in fields[FIELDS - 1 :] if code)
        yield [*named, codes]
