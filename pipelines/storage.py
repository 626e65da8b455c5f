"""The one storage layer for every file the service keeps: a local folder or an S3 bucket.

It sits on Django's storages API (``STORAGES["default"]``), so the backend is a setting:
``LocalFolderStorage`` by default, ``BucketStorage`` when ``DSS_S3_BUCKET`` is set. Files are
read and written as streams: nothing here holds a whole file in memory. Keys are
slash-separated paths such as ``ons/postcode_directory/2024-01-31.zip``.

A write either stores the whole file under its key or leaves the key as it was: the local
folder writes to a hidden temporary file beside the target and renames it into place; S3 only
shows an object (multipart or not) once its upload has completed.
"""

import io
import os
import posixpath
import tempfile
from collections.abc import Iterator
from datetime import datetime
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
            with os.fdopen(descriptor, "wb") as out:
                for chunk in content.chunks():
                    out.write(chunk if isinstance(chunk, bytes) else chunk.encode())
            os.chmod(partial, 0o644)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return Path(os.path.relpath(target, self.location)).as_posix()


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


def save_stream(key: str, stream: IO[bytes]) -> str:
    """Store everything read from ``stream`` under ``key``, replacing any file there.

    Returns the key. When reading the stream or writing fails part-way, the error propagates
    and ``key`` holds what it held before (no partial file).
    """
    return get_storage().save(key, File(stream, name=posixpath.basename(key)))


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
