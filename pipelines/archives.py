"""The members of a zip file that a dataset loads.

A member counts as data unless it is a folder, operating-system debris (``__MACOSX/``,
``.DS_Store``, ...) or documentation (a readme, a PDF, a Word file, ...). A member that is
itself a zip is opened in turn. The file format's ``member_pattern`` picks the members (all of
them in name order with ``many_members``, else exactly one); without a pattern the zip must
hold one data member. Anything else refuses the zip, naming the members it holds.

Zip bombs are refused before anything is decompressed, from the sizes the zip declares
(zipfile never reads a member past its declared size): ``MAX_DEPTH`` zips inside zips,
``MAX_TOTAL_BYTES`` decompressed in all, ``MAX_RATIO`` decompressed bytes per compressed byte.
"""

import io
import posixpath
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO

from pipelines.datasets import FileFormat

CHUNK_SIZE = 1 << 20
MAX_DEPTH = 3
MAX_TOTAL_BYTES = 64 << 30
MAX_RATIO = 200

# Files that are never data: operating-system and packaging debris.
JUNK_NAMES = frozenset({".DS_Store", ".gitignore", "datafile_register.csv", "[Content_Types].xml"})
DOCUMENT_EXTENSIONS = frozenset({".pdf", ".doc", ".docx", ".rtf", ".odt", ".md", ".ppt", ".pptx"})
_README = re.compile(r"(?i)^read[ _-]?me")


class ArchiveError(ValueError):
    """The zip holds no member to load, several where one is expected, or is a zip bomb."""


@dataclass(frozen=True)
class Member:
    """A member of a zip to load: its path (inside nested zips: ``outer/inner.zip/x.csv``)."""

    path: str
    info: zipfile.ZipInfo
    archive: zipfile.ZipFile


def is_junk(name: str) -> bool:
    """True for names that are never data (``.DS_Store``, ``__MACOSX/...``, ...)."""
    return posixpath.basename(name) in JUNK_NAMES or any(
        part.startswith("__MACOSX") for part in name.split("/")
    )


def is_documentation(name: str) -> bool:
    """True for a readme, a PDF, a Word file and the like: never data."""
    base = posixpath.basename(name)
    return bool(_README.match(base)) or posixpath.splitext(base)[1].lower() in DOCUMENT_EXTENSIONS


def is_zip_name(name: str) -> bool:
    return name.lower().endswith(".zip")


def zip_members(stream: IO[bytes], file_format: FileFormat, stack: ExitStack) -> list[Member]:
    """The members of the zip ``stream`` to load, in name order; ``ArchiveError`` otherwise.

    Nested zips are opened (their spooled copies and handles are closed with ``stack``).
    """
    candidates: list[Member] = []
    held: list[str] = []
    _collect(stream, "", stack, candidates, held, depth=1, budget=[MAX_TOTAL_BYTES])
    if file_format.member_pattern:
        pattern = re.compile(file_format.member_pattern)
        chosen = [member for member in candidates if pattern.search(member.path)]
        wanted = f"matching {file_format.member_pattern}"
    else:
        chosen, wanted = candidates, "of data"
    chosen.sort(key=lambda member: member.path)
    if not chosen:
        holds = ", ".join(sorted(held)) or "nothing but folders"
        raise ArchiveError(f"the zip holds no member {wanted}; it holds {holds}")
    if len(chosen) > 1 and not (file_format.member_pattern and file_format.many_members):
        raise ArchiveError(
            f"the zip holds {len(chosen)} members {wanted} where one is expected: "
            f"{', '.join(member.path for member in chosen)}"
        )
    return chosen


def open_member(member: Member) -> IO[bytes]:
    """The member's bytes as a stream. A deflated member is inflated here with zlib straight
    from the zip's file: zipfile's own reader copies its buffers over and over, and took
    twice as long (5.4 s against 2.5 s for a 570 MB member)."""
    info = member.info
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:
        return member.archive.open(info)
    return io.BufferedReader(_Inflated(member), CHUNK_SIZE)


class _Inflated(io.RawIOBase):
    """A deflated member's bytes, inflated as they are read; its CRC is checked at the end."""

    def __init__(self, member: Member):
        self._member = member
        self._file = member.archive.fp
        self._position = _data_offset(member)
        self._left = member.info.compress_size
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._pending = b""
        self._crc = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending and not self._done:
            self._pending = self._inflate()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _inflate(self) -> bytes:
        if self._left == 0:
            out = self._inflater.flush()
            self._done = True
        else:
            # Members of one zip are read one after the other: seek to where this one is.
            self._file.seek(self._position)
            compressed = self._file.read(min(CHUNK_SIZE >> 1, self._left))
            if not compressed:
                raise ArchiveError(f"{self._member.path}: the zip ends before the member does")
            self._position += len(compressed)
            self._left -= len(compressed)
            try:
                out = self._inflater.decompress(compressed)
            except zlib.error as error:
                raise ArchiveError(f"{self._member.path}: damaged ({error})") from None
        self._crc = zlib.crc32(out, self._crc)
        if self._done and self._crc != self._member.info.CRC:
            raise ArchiveError(f"{self._member.path}: damaged (its checksum does not match)")
        return out


def _data_offset(member: Member) -> int:
    """Where the member's compressed bytes start: after its local header."""
    archive_file = member.archive.fp
    archive_file.seek(member.info.header_offset)
    header = archive_file.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ArchiveError(f"{member.path}: bad local header; the zip is damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return member.info.header_offset + 30 + name_length + extra_length


def _collect(
    stream: IO[bytes],
    prefix: str,
    stack: ExitStack,
    found: list[Member],
    held: list[str],
    depth: int,
    budget: list[int],
) -> None:
    """Add the zip's data members to ``found`` (opening zips inside it) and the names of all
    its files to ``held``."""
    archive = stack.enter_context(zipfile.ZipFile(seekable(stream, stack)))
    for info in archive.infolist():
        path = prefix + info.filename
        if info.is_dir() or is_junk(info.filename):
            continue
        held.append(path)
        if is_documentation(info.filename):
            continue
        _check_bomb(info, path, budget)
        if is_zip_name(info.filename):
            if depth >= MAX_DEPTH:
                raise ArchiveError(f"{path}: zips nested more than {MAX_DEPTH} deep")
            inner = stack.enter_context(archive.open(info))
            _collect(inner, path + "/", stack, found, held, depth + 1, budget)
        else:
            found.append(Member(path, info, archive))


def _check_bomb(info: zipfile.ZipInfo, path: str, budget: list[int]) -> None:
    budget[0] -= info.file_size
    if budget[0] < 0:
        raise ArchiveError(f"{path}: the zip decompresses to more than {_size(MAX_TOTAL_BYTES)}")
    if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > CHUNK_SIZE:
        raise ArchiveError(
            f"{path}: compressed {MAX_RATIO} times or more ({info.compress_size} bytes to "
            f"{info.file_size}); refused as a zip bomb"
        )


def _size(count: int) -> str:
    return f"{count >> 30} GiB" if count >= 1 << 30 else f"{count} bytes"


def seekable(stream: IO[bytes], stack: ExitStack) -> IO[bytes]:
    """``stream`` itself when it is a seekable file; else a spooled copy on local disk.

    zipfile needs to seek. A member of a zip can seek only by decompressing again from its
    start, and an object-store stream not at all, so those are copied to a temporary file.
    """
    if not isinstance(stream, zipfile.ZipExtFile) and _can_seek(stream):
        return stream
    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
    shutil.copyfileobj(stream, spool, CHUNK_SIZE)
    spool.seek(0)
    return spool


def _can_seek(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False
