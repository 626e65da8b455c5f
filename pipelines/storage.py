"""The one storage layer for every file the service keeps: a local folder or an S3 bucket.

It sits on Django's storages API (``STORAGES["default"]``), so the backend is a setting:
``LocalFolderStorage`` by default, ``BucketStorage`` when ``DSS_S3_BUCKET`` is set. Files are
read and written as streams: nothing here holds a whole file in memory. Keys are
slash-separated paths such as ``ons/postcode_directory/2024-01-31.zip``.

A write either stores the whole file under its key or leaves the key as it was: the local
folder writes to a hidden temporary file beside the target and renames it into place; S3 only
shows an object (multipart or not) once its upload has completed. A write can be given a
check, run on the complete written file before it replaces the key; a check that raises
refuses the file (the key keeps what it held).

A process killed while writing leaves its temporary file (local folder) or an unfinished
multipart upload (S3, invisible but billed) behind; ``remove_abandoned_partials`` removes
them.
"""

import fcntl
import io
import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from botocore.exceptions import ClientError
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

# Temporary files of writes in progress start with this; listings leave them out.
PARTIAL_PREFIX = ".partial-"
READ_BUFFER_BYTES = 1024 * 1024
# An empty temporary file younger than this is never removed as abandoned: its writer may
# not have locked it yet (it is created, then locked, then written).
PARTIAL_GRACE_SECONDS = 10.0
# An S3 multipart upload started longer ago than this and not completed is taken for
# abandoned (S3 cannot tell a live upload from a dead one; uploads take minutes, not a day).
UPLOAD_ABANDONED_AFTER = timedelta(days=1)

# Runs on a complete written file (open for binary reads, at its start) before the file
# replaces its key; raises to refuse it.
Check = Callable[[IO[bytes]], None]


class CheckedFile(File):
    """Content to save whose written copy must pass ``check`` before it is stored."""

    def __init__(self, file, name: str, check: Check):
        super().__init__(file, name=name)
        self.check = check


class LocalFolderStorage(FileSystemStorage):
    """A folder on local disk; saving under an existing key replaces that file atomically."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)

    def _save(self, name: str, content: File) -> str:
        target = Path(self.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
        try:
            # Locked until it is renamed: remove_abandoned_partials leaves a live write alone.
            with os.fdopen(descriptor, "w+b") as out:
                fcntl.flock(out, fcntl.LOCK_EX)
                for chunk in content.chunks():
                    out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
                out.flush()
                _run_check(content, out)
                os.chmod(partial, 0o644)
                os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return Path(os.path.relpath(target, self.location)).as_posix()


def _run_check(content: File, written: IO[bytes]) -> None:
    check = getattr(content, "check", None)
    if check is not None:
        written.seek(0)
        check(written)


class BucketStorage(S3Storage):
    """An S3 bucket (or an S3-compatible store) whose files open as true streams.

    django-storages' own S3 file downloads the whole object to a temporary file before the
    first read; this one reads the object's body as it arrives.
    """

    def _open(self, name: str, mode: str = "rb") -> File:
        if mode != "rb":
            return super()._open(name, mode)
        key = self._normalize_name(clean_name(name))
        try:
            body = self.bucket.Object(key).get()["Body"]
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                raise FileNotFoundError(f"no stored file {name}") from None
            raise
        return File(io.BufferedReader(_BodyReader(body), READ_BUFFER_BYTES), name=name)

    def _save(self, name: str, content: File) -> str:
        if getattr(content, "check", None) is None:
            return super()._save(name, content)
        # The object appears only when its upload completes, so the check runs on a local
        # copy first (an unnamed temporary file: a killed process leaves nothing behind).
        with tempfile.TemporaryFile() as copy:
            for chunk in content.chunks():
                copy.write(chunk)
            copy.flush()
            _run_check(content, copy)
            copy.seek(0)
            return super()._save(name, File(copy, name=content.name))

    def abort_abandoned_uploads(self, prefix: str) -> list[str]:
        folder = self._normalize_name(clean_name(prefix.strip("/"))) + "/"
        started_before = datetime.now(UTC) - UPLOAD_ABANDONED_AFTER
        client = self.connection.meta.client
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket_name, Prefix=folder
        )
        aborted = []
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] <= started_before:
                    client.abort_multipart_upload(
                        Bucket=self.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(upload["Key"])
        return aborted

    def open_seekable(self, name: str) -> IO[bytes]:
        key = self._normalize_name(clean_name(name))
        stored = self.bucket.Object(key)
        try:
            length = stored.content_length
        except ClientError as error:
            if error.response["Error"]["Code"] in {"NoSuchKey", "404"}:
                raise FileNotFoundError(f"no stored file {name}") from None
            raise
        return io.BufferedReader(_RangeReader(stored, length), READ_BUFFER_BYTES)


class _RangeReader(io.RawIOBase):
    """An S3 object as a seekable raw stream: each read is one ranged GET."""

    def __init__(self, stored, length: int):
        self._object = stored
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer) -> int:
        if self._position >= self._length or not len(buffer):
            return 0
        last = min(self._position + len(buffer), self._length) - 1
        data = self._object.get(Range=f"bytes={self._position}-{last}")["Body"].read()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


class _BodyReader(io.RawIOBase):
    """botocore's StreamingBody as a raw binary stream, so ``io`` can buffer and decode it."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def get_storage() -> Storage:
    return default_storage


def open_file(key: str) -> IO[bytes]:
    """Open a stored file for streaming binary reads; the caller closes it.

    Raises FileNotFoundError when nothing is stored under ``key``.
    """
    opened = get_storage().open(key, "rb")
    # Hand out the underlying binary stream (io.BufferedReader on both backends), which
    # io.TextIOWrapper, csv and zipfile accept as it is.
    return getattr(opened, "file", opened)


def open_seekable(key: str) -> IO[bytes]:
    """Open a stored file for binary reads that may seek (an S3 object is read by ranges, not
    copied), e.g. to read a zip's central directory alone; the caller closes it.

    Raises FileNotFoundError when nothing is stored under ``key``.
    """
    backend = get_storage()
    if isinstance(backend, BucketStorage):
        return backend.open_seekable(key)
    return open_file(key)


def save_stream(key: str, stream: IO[bytes], check: Check | None = None) -> str:
    """Store everything read from ``stream`` under ``key``, replacing any file there.

    With ``check``, the written file is first handed to it (open, at its start); when it
    raises, the file is not stored and the error propagates. Returns the key. When reading
    the stream or writing fails part-way, the error propagates and ``key`` holds what it held
    before (no partial file).
    """
    name = posixpath.basename(key)
    content = File(stream, name=name) if check is None else CheckedFile(stream, name, check)
    return get_storage().save(key, content)


def remove_abandoned_partials(prefix: str) -> list[str]:
    """Remove what killed writes left below ``prefix``; returns the keys removed.

    Local folder: the temporary files no live write holds (locked); an empty one only
    seconds old stays too (its writer may be about to lock it). S3: the multipart uploads
    begun more than ``UPLOAD_ABANDONED_AFTER`` ago and never completed are aborted.
    """
    backend = get_storage()
    if isinstance(backend, BucketStorage):
        return backend.abort_abandoned_uploads(prefix)
    removed = []
    for key in _partials(backend, prefix.strip("/")):
        if _remove_if_abandoned(Path(backend.path(key))):
            removed.append(key)
    return removed


def _partials(backend: Storage, folder: str) -> Iterator[str]:
    try:
        directories, files = backend.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        if name.startswith(PARTIAL_PREFIX):
            yield posixpath.join(folder, name)
    for name in directories:
        yield from _partials(backend, posixpath.join(folder, name))


def _remove_if_abandoned(path: Path) -> bool:
    try:
        with open(path, "rb") as partial:
            try:
                fcntl.flock(partial, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a live write holds it
            status = os.fstat(partial.fileno())
            if not status.st_size and time.time() - status.st_mtime < PARTIAL_GRACE_SECONDS:
                return False
            # The lock is ours; the name must still be this file (its writer may have
            # renamed it into place between our open and our lock).
            if os.stat(path).st_ino != os.fstat(partial.fileno()).st_ino:
                return False
            path.unlink()
            return True
    except FileNotFoundError:
        return False


def delete(key: str) -> None:
    """Remove the file under ``key``; nothing happens when there is none."""
    get_storage().delete(key)


def exists(key: str) -> bool:
    return get_storage().exists(key)


def size(key: str) -> int:
    """The stored file's size in bytes."""
    return get_storage().size(key)


def modified_time(key: str) -> datetime:
    """When the stored file was last written (timezone-aware)."""
    return get_storage().get_modified_time(key)


def list_files(prefix: str) -> Iterator[str]:
    """Every file below ``prefix``, recursively, as keys relative to ``prefix``, sorted by name.

    A prefix with nothing under it lists nothing.
    """
    yield from sorted(_walk(get_storage(), prefix.strip("/"), ""))


def _walk(storage: Storage, root: str, relative: str) -> Iterator[str]:
    folder = posixpath.join(root, relative) if relative else root
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        if not name.startswith(PARTIAL_PREFIX):
            yield posixpath.join(relative, name) if relative else name
    for name in directories:
        yield from _walk(storage, root, posixpath.join(relative, name) if relative else name)
