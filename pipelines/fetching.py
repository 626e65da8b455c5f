"""Fetching source files over HTTP into storage.

Every request has a timeout, is retried with backoff on connection errors and 429/5xx
answers, and carries the service's User-Agent. Downloads stream into storage; a download
cut off part-way is removed from storage and tried again from the start.

``fetch_sources`` runs the selected sources one after the other: a source's failure of any
kind (an answer that is not what was expected, a storage error, ...) is logged and recorded
in its result, and the other sources are still fetched.
"""

import json
import logging
import posixpath
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import requests
import urllib3
from bs4 import BeautifulSoup
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipelines import storage
from pipelines.sources import Catalogue, FixedUrl, Listing, Source, resolve_url

logger = logging.getLogger(__name__)

USER_AGENT = "data-store-service/1.0 (fetch_sources)"
TIMEOUT = (10, 120)  # seconds to connect, seconds between bytes
DOWNLOAD_ATTEMPTS = 3
BACKOFF_SECONDS = 2.0


class FetchError(Exception):
    """A source's files could not be listed or downloaded."""


@dataclass
class FetchResult:
    """What a fetch did for one source: the files it stored (by name), how many it found
    stored already, and why it stopped when it failed (``error``; empty on success)."""

    source_id: str
    downloaded: list[str] = field(default_factory=list)
    already_stored: int = 0
    error: str = ""


def http_session(retries: int = 3, backoff: float = BACKOFF_SECONDS) -> requests.Session:
    """A requests session with retries, backoff and the service's User-Agent."""
    session = requests.Session()
    retry = Retry(
        total=retries,
        backoff_factor=backoff,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def fetch_sources(
    catalogue: Catalogue,
    source_ids: Iterable[str],
    datasets_folder: str,
    *,
    session: requests.Session | None = None,
    backoff: float = BACKOFF_SECONDS,
) -> list[FetchResult]:
    """Fetch the selected sources in dependency order; one result per source, in that order.

    A source that fails, whatever the failure, gets its message in ``error`` (files it stored
    before failing stay stored and listed); the sources after it are fetched all the same.
    """
    session = session or http_session()
    results = []
    for source in catalogue.in_dependency_order(source_ids):
        result = FetchResult(source.id)
        try:
            _fetch(source, datasets_folder, session, backoff, result)
        except FetchError as error:
            result.error = str(error)
            logger.error("%s: %s", source.id, result.error)
        except Exception as error:  # any other failure of one source must not stop the rest
            result.error = f"{type(error).__name__}: {error}"
            logger.exception("%s: %s", source.id, result.error)
        results.append(result)
    return results


def fetch_source(
    source: Source,
    datasets_folder: str,
    session: requests.Session,
    *,
    backoff: float = BACKOFF_SECONDS,
) -> FetchResult:
    """Download every file the source offers that is newer than what storage holds.

    Raises ``FetchError`` when the source's files cannot be listed or downloaded.
    """
    result = FetchResult(source.id)
    _fetch(source, datasets_folder, session, backoff, result)
    return result


def _fetch(
    source: Source,
    datasets_folder: str,
    session: requests.Session,
    backoff: float,
    result: FetchResult,
) -> None:
    if source.origin is None:
        raise FetchError(f"{source.id}: has no origin; its files are placed in storage by hand")
    prefix = source.storage_prefix(datasets_folder)
    stored = set(storage.list_files(prefix))
    if isinstance(source.origin, Listing):
        wanted = _wanted_from_listing(source.origin, stored, session, result)
    else:
        wanted = _wanted_from_fixed_url(source.origin, stored, session, result)
    for name, url in wanted:
        download(session, url, posixpath.join(prefix, name), backoff=backoff)
        result.downloaded.append(name)


def _wanted_from_listing(
    listing: Listing, stored: set[str], session: requests.Session, result: FetchResult
) -> list[tuple[str, str]]:
    offered = offered_files(listing, session)
    stored_dates = [day for day in map(listing.stored_name.date_of, stored) if day]
    newest = max(stored_dates, default=None)
    wanted = []
    for day, url in sorted(offered.items()):
        name = listing.stored_name.name_for(day)
        if name in stored or (newest is not None and day - newest < listing.refresh_delay):
            result.already_stored += 1
            continue
        if listing.download_pattern:
            url = _download_link(session, url, listing.download_pattern)
        wanted.append((name, url))
    return wanted


def _wanted_from_fixed_url(
    origin: FixedUrl, stored: set[str], session: requests.Session, result: FetchResult
) -> list[tuple[str, str]]:
    url = resolve_url(origin.url)
    response = _get(session, url, method="HEAD")
    day = _last_modified_day(url, response.headers.get("Last-Modified"))
    name = origin.stored_name.name_for(day)
    if name in stored:
        result.already_stored += 1
        return []
    return [(name, url)]


def _last_modified_day(url: str, header: str | None) -> date:
    """The date of a ``Last-Modified`` header; today's when there is none."""
    if not header:
        return date.today()
    try:
        return parsedate_to_datetime(header).date()
    except (ValueError, TypeError) as error:
        raise FetchError(f"{url}: Last-Modified {header!r} is not a date ({error})") from error


def offered_files(listing: Listing, session: requests.Session) -> dict[date, str]:
    """The listing's links that match its pattern, as absolute URLs by their date."""
    url = resolve_url(listing.url)
    response = _get(session, url)
    pattern = re.compile(listing.link_pattern)
    offered: dict[date, str] = {}
    for link in page_links(response):
        match = pattern.match(link)
        if match is None:
            continue
        try:
            day = datetime.strptime(match["date"], listing.link_date_format).date()
        except ValueError:
            logger.warning("%s: link %s has an unreadable date; ignored", url, link)
            continue
        offered.setdefault(day, urljoin(url, link))
    if not offered:
        raise FetchError(f"No valid links found on {url}.")
    return offered


def page_links(response: requests.Response) -> list[str]:
    """The links of a page: HTML anchors' hrefs, or every string in a JSON answer."""
    content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            return list(_json_strings(json.loads(response.content)))
        except ValueError as error:
            raise FetchError(
                f"{response.url}: answered {content_type} but is not JSON ({error})"
            ) from error
    soup = BeautifulSoup(response.content, "html.parser")
    return [anchor["href"] for anchor in soup.find_all("a", href=True)]


def _json_strings(value: object):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _download_link(session: requests.Session, page_url: str, pattern: str) -> str:
    compiled = re.compile(pattern)
    for link in page_links(_get(session, page_url)):
        if compiled.match(urljoin(page_url, link)):
            return urljoin(page_url, link)
    raise FetchError(f"no download link matching {pattern!r} on {page_url}")


def download(
    session: requests.Session,
    url: str,
    key: str,
    *,
    attempts: int = DOWNLOAD_ATTEMPTS,
    backoff: float = BACKOFF_SECONDS,
) -> None:
    """Stream ``url`` into storage under ``key``; on a broken transfer, start again.

    A failed attempt leaves nothing under ``key`` (the storage layer removes partial files).
    """
    for attempt in range(1, attempts + 1):
        try:
            with session.get(url, stream=True, timeout=TIMEOUT) as response:
                response.raise_for_status()
                response.raw.decode_content = True
                storage.save_stream(key, response.raw)
            logger.info("downloaded %s to %s", url, key)
            return
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            if attempt == attempts:
                raise FetchError(f"download of {url} failed {attempts} times: {error}") from error
            logger.warning("download of %s broke (%s); trying again", url, error)
            time.sleep(backoff * 2 ** (attempt - 1))


def _get(session: requests.Session, url: str, method: str = "GET") -> requests.Response:
    try:
        response = session.request(method, url, timeout=TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as error:
        raise FetchError(f"{method} {url} failed: {error}") from error
    return response
