"""Opening a stored datafile as a stream of bytes ready for COPY.

Zip files are opened member by member (zips inside zips too); a member is picked by the
dataset's file format. Bytes go to PostgreSQL in large chunks; only encodings PostgreSQL
cannot convert itself (mac-roman, ...) are transcoded here, incrementally.
"""

import codecs
import posixpath
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO

from pipelines import storage
from pipelines.datasets import FileFormat

CHUNK_SIZE = 1 << 20
UTF8_BOM = codecs.BOM_UTF8

# Files that are never data: operating-system and packaging debris.
JUNK_NAMES = frozenset({".DS_Store", ".gitignore", "datafile_register.csv", "[Content_Types].xml"})


class NoMemberError(ValueError):
    """A zip file holds no member that the dataset can load."""


@dataclass(frozen=True)
class OpenedFile:
    """A stored file opened for loading: the byte stream and the zip member's name, if any."""

    stream: IO[bytes]
    member: str | None


def is_junk(name: str) -> bool:
    """True for names that are never data (``.DS_Store``, ``__MACOSX/...``, ...)."""
    return posixpath.basename(name) in JUNK_NAMES or any(
        part.startswith("__MACOSX") for part in name.split("/")
    )


@contextmanager
def open_datafile(key: str, file_format: FileFormat) -> Iterator[OpenedFile]:
    """Open the stored file ``key``; a zip is opened down to the member ``file_format`` picks."""
    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(storage.open_file(key))
        name, member = key, None
        while name.lower().endswith(".zip"):
            archive = stack.enter_context(zipfile.ZipFile(_seekable(stream, stack)))
            info = pick_member(archive, file_format)
            stream = stack.enter_context(archive.open(info))
            name = member = info.filename
        yield OpenedFile(stream=stream, member=member)


def pick_member(archive: zipfile.ZipFile, file_format: FileFormat) -> zipfile.ZipInfo:
    """The first member, in archive order, that is not junk and matches the member pattern."""
    pattern = re.compile(file_format.member_pattern) if file_format.member_pattern else None
    for info in archive.infolist():
        if info.is_dir() or is_junk(info.filename):
            continue
        if pattern is None or pattern.search(info.filename):
            return info
    raise NoMemberError(file_format.no_member_message)


def _seekable(stream: IO[bytes], stack: ExitStack) -> IO[bytes]:
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


def iter_chunks(
    stream: IO[bytes],
    file_format: FileFormat,
    on_progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[bytes]:
    """The file's bytes in chunks for COPY, without a leading UTF-8 byte-order mark.

    When PostgreSQL cannot convert the file's encoding, the chunks are UTF-8 instead.
    ``on_progress`` is called with the number of bytes read from the file after each chunk.
    """
    decoder = None
    if file_format.postgres_encoding is None:
        decoder = codecs.getincrementaldecoder(file_format.codec)(errors="strict")
    first = True
    while True:
        chunk = stream.read(chunk_size)
        if on_progress is not None and chunk:
            on_progress(len(chunk))
        if first:
            first = False
            if chunk.startswith(UTF8_BOM):
                chunk = chunk[len(UTF8_BOM) :]
        if decoder is not None:
            text = decoder.decode(chunk, final=not chunk)
            chunk_out = text.encode("utf-8")
        else:
            chunk_out = chunk
        if chunk_out:
            yield chunk_out
        if not chunk:
            return
