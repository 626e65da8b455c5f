"""Fetching from a real HTTP server on 127.0.0.1: only newer files, back-filled, streamed
into storage, retried after a dropped connection, never left half-written."""

import io
import json

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
    return f"zip of {month} ".encode() * 1000


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
    storage.save_stream(f"{ONS_FOLDER}/ONSPD_MAY_2019_UK.zip", io.BytesIO(b"old"))
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
        "1 source(s): 1 file(s) downloaded, 0 already stored, 0 source(s) failed" in out.getvalue()
    )


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
