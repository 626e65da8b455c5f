"""Fetching from a real HTTP server on 127.0.0.1: only newer files, back-filled, streamed
into storage, retried after a dropped connection, never left half-written."""

import gzip
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pipelines import storage
from pipelines.catalogue import CATALOGUE
from pipelines.fetching import USER_AGENT, FetchError, fetch_source, fetch_sources, http_session
from pipelines.sources import Catalogue, FixedUrl, Listing, Source, StoredName
from tests.pipelines.conftest import make_dataset

ONS = CATALOGUE.get("ons.postcode_directory")
ONS_FOLDER = "datasets/ons/postcode_directory"


def release(month: str) -> bytes:
    """A release's zip, as the portal serves it (the same bytes at every call)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        member = zipfile.ZipInfo(f"ONSPD_{month}.csv", date_time=(2019, 5, 1, 0, 0, 0))
        archive.writestr(member, f"pcd,{month}\n".encode() * 1000, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.fixture
def ons_portal(http_server, settings):
    """A listing page linking each release's page, which links the release's file."""
    settings.ONS_POSTCODE_DIRECTORY_LISTING_URL = http_server.url + "/search"
    # The other sources with listings (fetched by --all) read a page that links no file:
    # they fail without leaving this machine.
    http_server.routes["/empty"] = (200, {}, b"<html><a href='/elsewhere'>none</a></html>")
    settings.HMRC_EXPORTERS_LISTING_URL = http_server.url + "/empty"
    settings.COMPANIES_HOUSE_ACCOUNTS_LISTING_URL = http_server.url + "/empty"

    def publish(*months: str, listing_type: str = "html") -> None:
        links = []
        for month in months:  # e.g. "may-2019"
            page = f"/datasets/ons-postcode-directory-{month}"
            data = f"/sharing/rest/content/items/{month.replace('-', '')}/data"
            links.append(page)
            http_server.routes[page] = (
                200,
                {},
                f'<a id="simple-download-button" href="{data}">Download</a>'.encode(),
            )
            http_server.routes[data] = (200, {}, release(month))
        if listing_type == "json":
            body = json.dumps({"results": [{"url": http_server.url + link} for link in links]})
            http_server.routes["/search"] = (
                200,
                {"Content-Type": "application/json"},
                body.encode(),
            )
        else:
            anchors = "".join(f'<a href="{link}">{link}</a>' for link in links)
            http_server.routes["/search"] = (
                200,
                {},
                f'<a href="/about">About</a>{anchors}'.encode(),
            )

    return publish


def fetch(source: Source = ONS):
    return fetch_source(source, "datasets", http_session(retries=2, backoff=0), backoff=0)


def stored() -> list[str]:
    return list(storage.list_files(ONS_FOLDER))


def read(key: str) -> bytes:
    with storage.open_file(key) as stream:
        return stream.read()


def test_fetch_downloads_only_releases_newer_than_the_newest_stored(ons_portal, http_server):
    storage.save_stream(f"{ONS_FOLDER}/ONSPD_MAY_2019_UK.zip", io.BytesIO(release("old")))
    ons_portal("february-2019", "may-2019", "july-2019", "august-2019")

    result = fetch()

    assert result.downloaded == ["ONSPD_JUL_2019_UK.zip", "ONSPD_AUG_2019_UK.zip"]
    assert stored() == ["ONSPD_AUG_2019_UK.zip", "ONSPD_JUL_2019_UK.zip", "ONSPD_MAY_2019_UK.zip"]
    assert read(f"{ONS_FOLDER}/ONSPD_JUL_2019_UK.zip") == release("july-2019")
    fetched = {request.path for request in http_server.requests}
    assert "/sharing/rest/content/items/may2019/data" not in fetched
    assert "/sharing/rest/content/items/february2019/data" not in fetched


def test_a_second_fetch_downloads_nothing(ons_portal, http_server):
    ons_portal("may-2019")
    fetch()
    requests_before = len(http_server.requests)

    result = fetch()

    assert result.downloaded == [] and result.already_stored == 1
    assert [r.path for r in http_server.requests[requests_before:]] == ["/search"]


def test_every_request_names_the_service(ons_portal, http_server):
    ons_portal("may-2019")

    fetch()

    assert {request.headers["User-Agent"] for request in http_server.requests} == {USER_AGENT}


def test_a_json_listing_is_read_for_links(ons_portal):
    ons_portal("may-2019", "july-2019", listing_type="json")

    assert fetch().downloaded == ["ONSPD_MAY_2019_UK.zip", "ONSPD_JUL_2019_UK.zip"]


def test_a_listing_without_matching_links_is_an_error(ons_portal):
    ons_portal()

    with pytest.raises(FetchError, match="No valid links found"):
        fetch()


def dropping_route(data: bytes, drops: int):
    """Sends half the file and closes the connection, ``drops`` times; then the whole file."""
    calls = []

    def route(handler, recorded):
        calls.append(recorded.path)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if len(calls) <= drops:
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        handler.wfile.write(data)

    return route, calls


def test_a_dropped_download_is_tried_again_and_stored_whole(ons_portal, http_server):
    ons_portal("may-2019")
    route, calls = dropping_route(release("may-2019"), drops=1)
    http_server.routes["/sharing/rest/content/items/may2019/data"] = route

    fetch()

    assert len(calls) == 2
    assert read(f"{ONS_FOLDER}/ONSPD_MAY_2019_UK.zip") == release("may-2019")


def test_a_download_that_keeps_dropping_fails_and_leaves_no_file(ons_portal, http_server):
    ons_portal("may-2019")
    route, calls = dropping_route(release("may-2019"), drops=10)
    http_server.routes["/sharing/rest/content/items/may2019/data"] = route

    with pytest.raises(FetchError, match="failed 3 times"):
        fetch()

    assert len(calls) == 3
    assert stored() == []


def test_a_listing_answering_503_is_retried(ons_portal, http_server):
    ons_portal("may-2019")
    listing = http_server.routes["/search"]
    answers = [(503, {}, b"busy"), listing]

    def flaky(handler, recorded):
        status, headers, body = answers.pop(0) if len(answers) > 1 else answers[0]
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    http_server.routes["/search"] = flaky

    assert fetch().downloaded == ["ONSPD_MAY_2019_UK.zip"]


def test_a_fixed_url_is_stored_under_its_last_modified_date_once(http_server):
    http_server.routes["/export.csv"] = (
        200,
        {"Last-Modified": "Wed, 31 Jan 2024 10:00:00 GMT"},
        b"a,b\n1,x\n",
    )
    source = Source(
        id="test.export",
        dataset=make_dataset(),
        folder="test/export",
        origin=FixedUrl(
            http_server.url + "/export.csv", StoredName("export_{date}.csv", "%Y-%m-%d")
        ),
    )

    first = fetch(source)
    second = fetch(source)

    assert first.downloaded == ["export_2024-01-31.csv"]
    assert second.downloaded == [] and second.already_stored == 1
    assert read("datasets/test/export/export_2024-01-31.csv") == b"a,b\n1,x\n"


def test_fetch_sources_command_reports_downloads(ons_portal, db):
    ons_portal("may-2019")
    out = io.StringIO()

    call_command("fetch_sources", "--ons.postcode_directory", stdout=out)

    assert "ons.postcode_directory: downloaded ONSPD_MAY_2019_UK.zip" in out.getvalue()
    assert (
        "1 source(s): 1 file(s) downloaded, 0 already stored, 0 stored file(s) damaged, "
        "0 download(s) refused, 0 source(s) failed"
    ) in out.getvalue()


def test_fetch_sources_command_fails_when_a_source_fails(ons_portal, db):
    ons_portal()

    # The ONS source and the two whose listings link no file (see ons_portal).
    with pytest.raises(CommandError, match="3 source"):
        call_command("fetch_sources", "--all", stdout=io.StringIO(), stderr=io.StringIO())


def test_fetch_sources_without_arguments_prints_the_help(db, capsys):
    call_command("fetch_sources")

    assert "--ons.postcode_directory" in capsys.readouterr().out


def test_fetch_sources_lists_only_sources_with_an_origin(db):
    out = io.StringIO()

    call_command("fetch_sources", "--list", stdout=out)

    assert [line.split()[0] for line in out.getvalue().splitlines()] == [
        "ons.postcode_directory",
        "companies_house.accounts_legacy",
        "hmrc.exporters",
    ]


# One source's failure, of any kind, is reported and never stops the others.

EXPORT = b"a,b\n1,x\n"


def fixed_url_source(source_id: str, url: str) -> Source:
    return Source(
        id=f"test.{source_id}",
        dataset=make_dataset(name=source_id),
        folder=f"test/{source_id}",
        origin=FixedUrl(url, StoredName("export_{date}.csv", "%Y-%m-%d")),
    )


def listing_source(source_id: str, url: str, download_pattern: str | None = None) -> Source:
    return Source(
        id=f"test.{source_id}",
        dataset=make_dataset(name=source_id),
        folder=f"test/{source_id}",
        origin=Listing(
            url=url,
            link_pattern=r".*/release-(?P<date>\d{4}-\d{2}-\d{2})$",
            link_date_format="%Y-%m-%d",
            download_pattern=download_pattern,
            stored_name=StoredName("release_{date}.csv", "%Y-%m-%d"),
        ),
    )


@pytest.fixture
def troubled_sources(http_server) -> Catalogue:
    """Sources failing in each way, in catalogue order, and a good one at the end."""
    url = http_server.url
    good_headers = {"Last-Modified": "Wed, 31 Jan 2024 10:00:00 GMT"}
    http_server.routes.update(
        {
            "/bad-date.csv": (200, {"Last-Modified": "last Tuesday"}, EXPORT),
            "/impossible-date.csv": (200, {"Last-Modified": "Wed, 31 Feb 2024 10:00:00"}, EXPORT),
            "/not-json": (200, {"Content-Type": "application/json"}, b"<html>Sign in</html>"),
            "/no-links": (200, {"Content-Type": "text/html"}, b"<p>Maintenance</p>"),
            "/listing": (200, {}, b'<a href="/release-2024-01-31">January</a>'),
            "/release-2024-01-31": (200, {}, b'<a href="/elsewhere">moved</a>'),
            "/good.csv": (200, good_headers, EXPORT),
            "/blocked.csv": (200, good_headers, EXPORT),
        }
    )
    return Catalogue(
        [
            fixed_url_source("bad_date", url + "/bad-date.csv"),
            fixed_url_source("impossible_date", url + "/impossible-date.csv"),
            listing_source("not_json", url + "/not-json"),
            listing_source("no_links", url + "/no-links"),
            listing_source("no_download", url + "/listing", download_pattern=r".*/data$"),
            fixed_url_source("blocked", url + "/blocked.csv"),
            fixed_url_source("gone", url + "/gone.csv"),
            fixed_url_source("good", url + "/good.csv"),
        ]
    )


def run_all(catalogue: Catalogue):
    session = http_session(retries=0, backoff=0)
    ids = [source.id for source in catalogue]
    return fetch_sources(catalogue, ids, "datasets", session=session, backoff=0)


def test_each_failing_source_is_reported_and_the_others_are_fetched(troubled_sources):
    # A storage error: the source's folder is taken by a file.
    storage.save_stream("datasets/test/blocked", io.BytesIO(b"not a folder"))

    results = run_all(troubled_sources)

    errors = {result.source_id: result.error for result in results}
    assert [result.source_id for result in results] == [s.id for s in troubled_sources]
    assert "Last-Modified 'last Tuesday' is not a date" in errors["test.bad_date"]
    assert (
        "Last-Modified 'Wed, 31 Feb 2024 10:00:00' is not a date" in errors["test.impossible_date"]
    )
    assert "answered application/json but is not JSON" in errors["test.not_json"]
    assert "No valid links found on" in errors["test.no_links"]
    assert "no download link matching '.*/data$'" in errors["test.no_download"]
    assert errors["test.blocked"].startswith("NotADirectoryError")
    assert "404" in errors["test.gone"]
    assert errors["test.good"] == ""
    good = next(result for result in results if result.source_id == "test.good")
    assert good.downloaded == ["export_2024-01-31.csv"]
    assert read("datasets/test/good/export_2024-01-31.csv") == EXPORT


def test_a_storage_that_does_not_answer_fails_every_source_and_stops_none(
    troubled_sources, s3_storage, s3_client
):
    """Sibling: the bucket is gone, so every source's listing of storage fails on its own."""
    s3_client.delete_bucket(Bucket=s3_storage)

    results = run_all(troubled_sources)

    assert len(results) == len(list(troubled_sources))
    assert all(result.error for result in results)
    assert all("NoSuchBucket" in result.error for result in results)


def test_files_stored_before_a_source_failed_stay_listed(http_server):
    """A listing whose second release cannot be downloaded keeps the first one it stored."""
    url = http_server.url
    http_server.routes.update(
        {
            "/listing": (
                200,
                {},
                b'<a href="/release-2024-01-31">1</a><a href="/release-2024-02-29">2</a>',
            ),
            "/release-2024-01-31": (200, {}, EXPORT),
        }
    )
    catalogue = Catalogue([listing_source("partial", url + "/listing")])

    [result] = run_all(catalogue)

    assert result.downloaded == ["release_2024-01-31.csv"]
    assert "release-2024-02-29" in result.error
    assert list(storage.list_files("datasets/test/partial")) == ["release_2024-01-31.csv"]


def test_fetch_sources_command_reports_a_storage_error_and_exits_non_zero(ons_portal, db):
    ons_portal("may-2019")
    storage.save_stream("datasets/ons/postcode_directory", io.BytesIO(b"not a folder"))
    err = io.StringIO()

    with pytest.raises(CommandError, match="3 source\\(s\\) failed"):
        call_command("fetch_sources", "--all", stdout=io.StringIO(), stderr=err)

    assert err.getvalue().startswith("ons.postcode_directory: NotADirectoryError")


# A download is checked before it replaces its key: the length the server declared, and a
# zip's central directory and member CRCs. Servers below lie about the length, compress,
# send chunks, or damage a member.

MAY_DATA = "/sharing/rest/content/items/may2019/data"
MAY_KEY = f"{ONS_FOLDER}/ONSPD_MAY_2019_UK.zip"


def lying_route(data: bytes | list[bytes], declared: list[int | None], headers=None):
    """Sends ``data`` (or the next of a list of bodies) under the next ``declared``
    Content-Length (None: chunked, no length); the last of each stays. Then closes."""
    bodies = data if isinstance(data, list) else [data]
    calls = []

    def route(handler, recorded):
        calls.append(recorded.path)
        body = bodies[min(len(calls), len(bodies)) - 1]
        length = declared[min(len(calls), len(declared)) - 1]
        handler.send_response(200)
        handler.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if length is None:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        if handler.command != "HEAD":
            if length is None:
                handler.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            else:
                handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    return route, calls


def test_a_zip_declared_shorter_than_it_is_is_refused_and_fetched_again(ons_portal, http_server):
    ons_portal("may-2019")
    data = release("may-2019")
    route, calls = lying_route(data, [len(data) // 2, len(data)])
    http_server.routes[MAY_DATA] = route

    result = fetch()

    assert len(calls) == 2
    assert read(MAY_KEY) == data
    assert result.downloaded == ["ONSPD_MAY_2019_UK.zip"]
    [refusal] = result.refused
    assert refusal.startswith(http_server.url + MAY_DATA + ": not a readable zip")


def test_a_zip_always_declared_shorter_is_never_stored(ons_portal, http_server):
    ons_portal("may-2019")
    data = release("may-2019")
    route, calls = lying_route(data, [len(data) - 100])
    http_server.routes[MAY_DATA] = route

    with pytest.raises(FetchError, match="failed 3 times: not a readable zip"):
        fetch()

    assert len(calls) == 3 and stored() == []


@pytest.mark.parametrize("name", ["export.csv", "export.zip"])
def test_a_file_declared_longer_than_it_is_is_refused_with_both_lengths(http_server, name):
    data = release("may-2019") if name.endswith(".zip") else EXPORT * 100
    route, calls = lying_route(data, [len(data) + 500])
    http_server.routes["/" + name] = route
    source = fixed_url_source("longer", f"{http_server.url}/{name}")
    session = http_session(retries=0, backoff=0)

    [result] = fetch_sources(
        Catalogue([source]), [source.id], "datasets", session=session, backoff=0
    )

    assert "failed 3 times" in result.error
    expected = f"declared {len(data) + 500} bytes (Content-Length), received {len(data)}"
    assert len(result.refused) == 3
    assert all(expected in refusal for refusal in result.refused)
    assert list(storage.list_files("datasets/test/longer")) == []


def damaged_member(data: bytes) -> bytes:
    """``data`` (a zip) with one byte of its first member's compressed bytes changed."""
    position = len(data) // 3
    return data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :]


def test_a_zip_with_a_damaged_member_is_refused_naming_the_member(ons_portal, http_server):
    ons_portal("may-2019")
    data = damaged_member(release("may-2019"))
    route, _ = lying_route(data, [len(data)])
    http_server.routes[MAY_DATA] = route

    with pytest.raises(FetchError, match=r"zip member ONSPD_may-2019\.csv is damaged"):
        fetch()

    assert stored() == []


def test_a_compressed_answer_is_measured_as_sent_and_stored_decoded(ons_portal, http_server):
    ons_portal("may-2019")
    data = release("may-2019")
    sent = gzip.compress(data)
    route, _ = lying_route(sent, [len(sent)], {"Content-Encoding": "gzip"})
    http_server.routes[MAY_DATA] = route

    result = fetch()

    assert result.refused == [] and read(MAY_KEY) == data


def test_a_compressed_answer_declared_longer_is_refused(ons_portal, http_server):
    ons_portal("may-2019")
    sent = gzip.compress(release("may-2019"))
    route, _ = lying_route(sent, [len(sent) + 10, len(sent)], {"Content-Encoding": "gzip"})
    http_server.routes[MAY_DATA] = route

    result = fetch()

    [refusal] = result.refused
    assert f"declared {len(sent) + 10} bytes (Content-Length), received {len(sent)}" in refusal
    assert read(MAY_KEY) == release("may-2019")


def test_a_chunked_answer_without_a_length_is_checked_as_a_zip(ons_portal, http_server):
    ons_portal("may-2019")
    data = release("may-2019")
    answers = [data[: len(data) // 2], data]
    route, calls = lying_route(b"", [None])
    http_server.routes[MAY_DATA] = lambda handler, recorded: (
        lying_route(answers[min(len(calls), 1)], [None])[0](handler, recorded) or calls.append(1)
    )

    result = fetch()

    [refusal] = result.refused
    assert "not a readable zip" in refusal
    assert read(MAY_KEY) == data


# A stored file that does not open is fetched again rather than counted as present.


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_stored_truncated_zip_is_fetched_again(ons_portal, http_server, request, backend):
    if backend == "s3":
        request.getfixturevalue("s3_storage")
    ons_portal("may-2019", "july-2019")
    whole = release("may-2019")
    storage.save_stream(MAY_KEY, io.BytesIO(whole[: len(whole) - 40]))
    storage.save_stream(f"{ONS_FOLDER}/ONSPD_JUL_2019_UK.zip", io.BytesIO(release("july-2019")))

    result = fetch()

    assert result.downloaded == ["ONSPD_MAY_2019_UK.zip"] and result.already_stored == 1
    [damage] = result.damaged
    assert damage.startswith("ONSPD_MAY_2019_UK.zip: not a readable zip")
    assert read(MAY_KEY) == whole
    assert fetch().damaged == []


def test_a_stored_truncated_zip_of_a_fixed_url_is_fetched_again(http_server):
    data = release("may-2019")
    headers = {"Last-Modified": "Wed, 31 Jan 2024 10:00:00 GMT"}
    http_server.routes["/export.zip"] = (200, headers, data)
    source = Source(
        id="test.export_zip",
        dataset=make_dataset(),
        folder="test/export_zip",
        origin=FixedUrl(http_server.url + "/export.zip", StoredName("{date}.zip", "%Y-%m-%d")),
    )
    key = "datasets/test/export_zip/2024-01-31.zip"
    storage.save_stream(key, io.BytesIO(data[: len(data) // 2]))

    result = fetch(source)

    assert result.downloaded == ["2024-01-31.zip"] and len(result.damaged) == 1
    assert read(key) == data


def test_a_stored_damaged_zip_stays_when_fetching_it_again_fails(ons_portal, http_server):
    ons_portal("may-2019")
    truncated = release("may-2019")[:-40]
    storage.save_stream(MAY_KEY, io.BytesIO(truncated))
    route, _ = lying_route(truncated, [len(truncated)])
    http_server.routes[MAY_DATA] = route

    with pytest.raises(FetchError, match="not a readable zip"):
        fetch()

    assert read(MAY_KEY) == truncated


def test_a_fetch_removes_temporary_files_left_by_a_killed_write(ons_portal, storage_folder):
    ons_portal("may-2019")
    folder = storage_folder / ONS_FOLDER
    folder.mkdir(parents=True)
    (folder / ".partial-killed").write_bytes(b"half")

    result = fetch()

    assert result.cleaned == [f"{ONS_FOLDER}/.partial-killed"]
    assert sorted(path.name for path in folder.iterdir()) == ["ONSPD_MAY_2019_UK.zip"]


def test_fetch_sources_command_reports_refusals_and_damage(ons_portal, http_server, db):
    ons_portal("may-2019")
    data = release("may-2019")
    storage.save_stream(MAY_KEY, io.BytesIO(data[:100]))
    route, _ = lying_route(data, [len(data) + 7, len(data)])
    http_server.routes[MAY_DATA] = route
    out = io.StringIO()

    call_command("fetch_sources", "--ons.postcode_directory", stdout=out)

    lines = out.getvalue()
    assert "ons.postcode_directory: stored ONSPD_MAY_2019_UK.zip: not a readable zip" in lines
    assert (
        f"ons.postcode_directory: refused {http_server.url}{MAY_DATA}: "
        f"declared {len(data) + 7} bytes (Content-Length), received {len(data)}"
    ) in lines
    assert "1 file(s) downloaded, 0 already stored, 1 stored file(s) damaged, " in lines
    assert "1 download(s) refused, 0 source(s) failed" in lines


# A fetch killed (SIGKILL) while a file streams in: no key appears, the next run removes what
# the killed one left and fetches the whole file.

ROOT = Path(__file__).resolve().parents[2]
KILLS = 4
PIECE_BYTES = 256 * 1024


def large_release() -> bytes:
    """An 8 MiB zip that does not compress (so it streams for a while)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("ONSPD_MAY_2019_UK.csv", os.urandom(8 * 1024 * 1024))
    return buffer.getvalue()


def slow_route(data: bytes, streaming: threading.Event, finish: threading.Event):
    """Sends ``data`` in pieces, 20 ms apart; ``streaming`` is set once the first is sent,
    and the last waits for ``finish`` (so a kill always lands mid-stream)."""

    def route(handler, recorded):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        starts = range(0, len(data), PIECE_BYTES)
        try:
            for start in starts:
                if start == starts[-1]:
                    finish.wait(timeout=60)
                handler.wfile.write(data[start : start + PIECE_BYTES])
                handler.wfile.flush()
                streaming.set()
                time.sleep(0.02)
        except OSError:  # the fetch was killed
            handler.close_connection = True

    return route


def partials(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".partial-*"))


def stored_objects(s3_client, bucket: str) -> list[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return [item["Key"] for item in listed]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_fetches_killed_mid_stream_store_nothing_and_the_next_run_fetches_the_whole_file(
    ons_portal, http_server, storage_folder, service_environment, database_url, request, backend
):
    ons_portal("may-2019")
    data = large_release()
    streaming, finish = threading.Event(), threading.Event()
    http_server.routes[MAY_DATA] = slow_route(data, streaming, finish)
    env = {
        **service_environment,
        # The command records its run in the test database.
        "DATABASE_URL": database_url,
        "DSS_STORAGE_DIR": str(storage_folder),
        "DSS_ONS_POSTCODE_DIRECTORY_LISTING_URL": http_server.url + "/search",
        "DEBUG": "1",
    }
    if backend == "s3":
        env.update(request.getfixturevalue("s3_environment"))
        s3_client = request.getfixturevalue("s3_client")
    command = [sys.executable, "manage.py", "fetch_sources", "--ons.postcode_directory"]
    seed = random.randrange(1_000_000)
    moments = random.Random(seed)

    for _ in range(KILLS):
        streaming.clear()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        assert streaming.wait(timeout=60), f"seed {seed}: the download never started"
        time.sleep(moments.uniform(0, 0.8))
        child.kill()
        child.wait()
        if backend == "s3":
            assert stored_objects(s3_client, env["DSS_S3_BUCKET"]) == [], f"seed {seed}"
        else:
            assert stored() == [], f"seed {seed}"
            # The killed run's own file; the one before it was removed by this run.
            assert len(partials(storage_folder)) == 1, f"seed {seed}"

    finish.set()
    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=120)

    assert finished.returncode == 0, finished.stderr
    assert b"downloaded ONSPD_MAY_2019_UK.zip" in finished.stdout
    assert partials(storage_folder) == []
    if backend == "s3":
        stored_object = s3_client.get_object(Bucket=env["DSS_S3_BUCKET"], Key=MAY_KEY)
        assert stored_object["Body"].read() == data
        uploads = s3_client.list_multipart_uploads(Bucket=env["DSS_S3_BUCKET"])
        assert uploads.get("Uploads", []) == []
    else:
        assert b"left by a killed fetch" in finished.stdout
        assert read(MAY_KEY) == data
