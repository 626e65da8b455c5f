"""The one storage layer for every file the service keeps: a local folder or an S3 bucket.

It sits on Django's storages API (``STORAGES["default"]``), so the backend is a setting. Files
are read and written as streams: nothing here holds a whole file in memory.
"""

import posixpath
from collections.abc import Iterator
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage, default_storage


def get_storage() -> Storage:
    return default_storage


def open_file(key: str) -> IO[bytes]:
    """Open a stored file for streaming reads; the caller closes it."""
    return get_storage().open(key, "rb")


def save_stream(key: str, stream: IO[bytes]) -> str:
    """Store ``stream`` under ``key``, replacing any file already there; return the key.

    A write that fails part-way is removed, so no partial file is left under ``key``.
    """
    storage = get_storage()
    if storage.exists(key):
        storage.delete(key)
    try:
        return storage.save(key, File(stream, name=posixpath.basename(key)))
    except BaseException:
        if storage.exists(key):
            storage.delete(key)
        raise


def delete(key: str) -> None:
    get_storage().delete(key)


def exists(key: str) -> bool:
    return get_storage().exists(key)


def list_files(prefix: str) -> Iterator[str]:
    """Every file below ``prefix``, recursively, as keys relative to ``prefix``, sorted by name."""
    yield from sorted(_walk(get_storage(), prefix.rstrip("/"), ""))


def _walk(storage: Storage, root: str, relative: str) -> Iterator[str]:
    folder = posixpath.join(root, relative) if relative else root
    try:
        directories, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield posixpath.join(relative, name) if relative else name
    for name in directories:
        yield from _walk(storage, root, posixpath.join(relative, name) if relative else name)
