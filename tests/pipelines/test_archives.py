"""Zip members are read as zipfile reads them, faster; a damaged member is refused."""

import io
import random
import zipfile
from contextlib import ExitStack

import pytest

from pipelines.archives import ArchiveError, open_member, zip_members
from pipelines.datasets import FileFormat
from tests.pipelines.conftest import zip_bytes

MANY = FileFormat(member_pattern=r"\.csv$", many_members=True)


def random_text(size: int) -> bytes:
    rng = random.Random(size)
    return "".join(rng.choice('abc,\r\n"é') for _ in range(size)).encode()


def read_members(data: bytes) -> dict[str, bytes]:
    with ExitStack() as stack:
        members = zip_members(io.BytesIO(data), MANY, stack)
        out = {}
        for member in members:
            with open_member(member) as opened:
                out[member.path] = b"".join(iter(lambda: opened.read(1000), b""))
        return out


def test_members_read_byte_for_byte_including_zips_inside_zips():
    big, small = random_text(3 << 20), random_text(10)
    inner = zip_bytes({"inner.csv": small})
    data = zip_bytes({"a.csv": big, "b.zip": inner, "empty.csv": b""})

    assert read_members(data) == {"a.csv": big, "b.zip/inner.csv": small, "empty.csv": b""}


def test_a_damaged_member_is_refused_naming_it():
    data = bytearray(zip_bytes({"a.csv": random_text(200_000)}))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("a.csv")
    middle = info.header_offset + 30 + len("a.csv") + info.compress_size // 2
    data[middle] ^= 0xFF

    with pytest.raises(ArchiveError, match=r"^a\.csv: damaged"):
        read_members(bytes(data))
