"""The storage layer behaves the same on the local folder and on S3 (moto's server)."""

import fcntl
import io
from collections.abc import Iterator
from datetime import datetime

import pytest

from pipelines import storage

MEBIBYTE = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def backend(request) -> str:
    """Runs a test once on each backend."""
    if request.param == "s3":
        request.getfixturevalue("s3_storage")
    return request.param


class FailingStream(io.RawIOBase):
    """Gives ``good_bytes`` bytes, then fails as a dropped download would."""

    def __init__(self, good_bytes: int):
        self.remaining = good_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.remaining <= 0:
            raise ConnectionError("connection dropped")
        count = min(len(buffer), self.remaining)
        buffer[:count] = b"x" * count
        self.remaining -= count
        return count


def chunks(count: int, size: int) -> Iterator[bytes]:
    for number in range(count):
        yield bytes([number % 256]) * size


class GeneratorStream(io.RawIOBase):
    """A non-seekable stream over generated chunks, like an HTTP response body."""

    def __init__(self, parts: Iterator[bytes]):
        self.parts = parts
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            self.pending = next(self.parts, b"")
            if not self.pending:
                return 0
        count = min(len(buffer), len(self.pending))
        buffer[:count] = self.pending[:count]
        self.pending = self.pending[count:]
        return count


def test_saved_stream_reads_back_identically(backend):
    storage.save_stream("source/2024/file.csv", io.BytesIO(b"a,b\n1,2\n"))

    with storage.open_file("source/2024/file.csv") as stored:
        assert stored.read() == b"a,b\n1,2\n"
    assert storage.exists("source/2024/file.csv")
    assert storage.size("source/2024/file.csv") == 8


def test_saving_under_an_existing_key_replaces_the_file(backend):
    storage.save_stream("a/file.csv", io.BytesIO(b"old"))

    key = storage.save_stream("a/file.csv", io.BytesIO(b"new contents"))

    assert key == "a/file.csv"
    with storage.open_file("a/file.csv") as stored:
        assert stored.read() == b"new contents"
    assert list(storage.list_files("a")) == ["file.csv"]


def test_large_non_seekable_stream_is_stored_whole(backend):
    # 12 MiB: above boto3's multipart threshold, so S3 takes the multipart path.
    storage.save_stream("big/file.bin", GeneratorStream(chunks(12, MEBIBYTE)))

    with storage.open_file("big/file.bin") as stored:
        for number in range(12):
            assert stored.read(MEBIBYTE) == bytes([number]) * MEBIBYTE
        assert stored.read() == b""


def test_failed_write_leaves_the_previous_file_and_no_partial_file(backend):
    storage.save_stream("keep/file.csv", io.BytesIO(b"previous"))

    with pytest.raises(ConnectionError):
        storage.save_stream("keep/file.csv", FailingStream(good_bytes=9 * MEBIBYTE))
    with pytest.raises(ConnectionError):
        storage.save_stream("keep/new.csv", FailingStream(good_bytes=100))

    with storage.open_file("keep/file.csv") as stored:
        assert stored.read() == b"previous"
    assert not storage.exists("keep/new.csv")
    assert list(storage.list_files("keep")) == ["file.csv"]


def test_failed_local_write_leaves_no_temporary_file_on_disk(storage_folder):
    with pytest.raises(ConnectionError):
        storage.save_stream("folder/file.csv", FailingStream(good_bytes=100))

    assert list((storage_folder / "folder").iterdir()) == []


def test_list_files_walks_subfolders_in_name_order(backend):
    for key in ["src/b.csv", "src/a.csv", "src/2024/c.csv", "other/d.csv"]:
        storage.save_stream(key, io.BytesIO(b"x"))

    assert list(storage.list_files("src")) == ["2024/c.csv", "a.csv", "b.csv"]
    assert list(storage.list_files("src/")) == ["2024/c.csv", "a.csv", "b.csv"]
    assert list(storage.list_files("nothing-here")) == []


def test_delete_removes_the_file_and_tolerates_a_missing_one(backend):
    storage.save_stream("gone/file.csv", io.BytesIO(b"x"))

    storage.delete("gone/file.csv")
    storage.delete("gone/file.csv")

    assert not storage.exists("gone/file.csv")
    with pytest.raises(FileNotFoundError):
        storage.open_file("gone/file.csv")


def test_open_file_is_a_standard_binary_stream(backend):
    storage.save_stream("text/file.csv", io.BytesIO("naïve,café\n".encode()))

    with io.TextIOWrapper(storage.open_file("text/file.csv"), encoding="utf-8") as text:
        assert text.readline() == "naïve,café\n"


def test_modified_time_is_timezone_aware(backend):
    storage.save_stream("when/file.csv", io.BytesIO(b"x"))

    modified = storage.modified_time("when/file.csv")

    assert isinstance(modified, datetime)
    assert modified.tzinfo is not None


def test_s3_objects_land_in_the_configured_bucket(s3_storage, s3_client):
    storage.save_stream("ons/file.csv", io.BytesIO(b"in the bucket"))

    body = s3_client.get_object(Bucket=s3_storage, Key="ons/file.csv")["Body"].read()
    assert body == b"in the bucket"


class Rejected(Exception):
    pass


def reject_when_shorter_than(length: int):
    """A check that reads the whole written file and refuses it under ``length`` bytes."""

    def check(written) -> None:
        if len(written.read()) < length:
            raise Rejected(f"shorter than {length}")

    return check


def test_a_checked_write_is_stored_only_when_its_check_passes(backend):
    storage.save_stream("checked/file.zip", io.BytesIO(b"previous"))

    with pytest.raises(Rejected, match="shorter than 100"):
        storage.save_stream("checked/file.zip", io.BytesIO(b"short"), reject_when_shorter_than(100))
    storage.save_stream("checked/new.zip", io.BytesIO(b"x" * 100), reject_when_shorter_than(100))

    assert list(storage.list_files("checked")) == ["file.zip", "new.zip"]
    with storage.open_file("checked/file.zip") as stored:
        assert stored.read() == b"previous"


def test_a_refused_local_write_leaves_no_temporary_file_on_disk(storage_folder):
    with pytest.raises(Rejected):
        storage.save_stream("folder/file.zip", io.BytesIO(b"short"), reject_when_shorter_than(9))

    assert list((storage_folder / "folder").iterdir()) == []


def test_open_seekable_reads_any_range_of_a_stored_file(backend):
    data = bytes(range(256)) * 5000
    storage.save_stream("ranges/file.bin", io.BytesIO(data))

    with storage.open_seekable("ranges/file.bin") as stream:
        stream.seek(-22, io.SEEK_END)
        tail = stream.read()
        stream.seek(1000)
        middle = stream.read(300)

    assert (tail, middle) == (data[-22:], data[1000:1300])
    with pytest.raises(FileNotFoundError):
        storage.open_seekable("ranges/missing.bin")


def abandoned_partial(folder, name: str = ".partial-abc") -> object:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / name
    partial.write_bytes(b"half a file")
    return partial


def test_abandoned_temporary_files_are_removed_and_live_ones_kept(storage_folder):
    abandoned = abandoned_partial(storage_folder / "source" / "2024")
    live = abandoned_partial(storage_folder / "source", ".partial-live")
    storage.save_stream("source/kept.csv", io.BytesIO(b"a\n"))
    elsewhere = abandoned_partial(storage_folder / "other")

    with open(live, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        removed = storage.remove_abandoned_partials("source")

    assert removed == ["source/2024/.partial-abc"]
    assert not abandoned.exists()
    assert live.exists() and elsewhere.exists()
    assert list(storage.list_files("source")) == ["kept.csv"]


def test_an_empty_temporary_file_is_abandoned_only_once_seconds_old(storage_folder, monkeypatch):
    """A write creates its file, then locks it: an empty, young file may be a live one."""
    young = abandoned_partial(storage_folder / "source")
    young.write_bytes(b"")

    assert storage.remove_abandoned_partials("source") == []
    assert young.exists()
    monkeypatch.setattr(storage, "PARTIAL_GRACE_SECONDS", 0)
    assert storage.remove_abandoned_partials("source") == ["source/.partial-abc"]


def test_abandoned_s3_uploads_below_the_prefix_are_aborted(s3_storage, s3_client):
    """moto dates every upload in 2010, so only abandoned ones can be made here."""
    for key in ("source/2024/file.zip", "other/file.zip"):
        s3_client.create_multipart_upload(Bucket=s3_storage, Key=key)

    assert storage.remove_abandoned_partials("source") == ["source/2024/file.zip"]

    uploads = s3_client.list_multipart_uploads(Bucket=s3_storage).get("Uploads", [])
    assert [upload["Key"] for upload in uploads] == ["other/file.zip"]
