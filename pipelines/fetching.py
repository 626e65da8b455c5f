"""Fetching source files over HTTP into storage.

Every request has a timeout, is retried with backoff on connection errors and 429/5xx
answers, and carries the service's User-Agent. Downloads stream into storage and are checked
before they replace their key: the bytes received must be the length the server declared
(``Content-Length``, of the body as sent, so compressed when it is), and a zip must open (its
central directory) with every member matching its CRC. A download cut off part-way or
refused is never stored and is tried again from the start, a bounded number of times with
backoff.

Files already stored count as present only when they open: a stored zip whose central
directory cannot be read (say, truncated before these checks existed) is fetched again. A
fetch first removes the temporary files that killed fetches left in the source's folder.

``fetch_sources`` runs the selected sources one after the other: a source's failure of any
kind (an answer that is not what was expected, a storage error, ...) is logged and recorded
in its result, and the other sources are still fetched.
"""

import json
import logging
import posixpath
import re
import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import IO
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
CHECK_CHUNK_BYTES = 1024 * 1024


class FetchError(Exception):
    """A source's files could not be listed or downloaded."""


class Refused(Exception):
    """A file is not whole: the message says why (lengths, or the damaged zip member)."""


@dataclass
class FetchResult:
    """What a fetch did for one source: the files it stored (by name), how many it found
    stored already, and why it stopped when it failed (``error``; empty on success).

    ``refused`` holds one "URL: reason" per download attempt that was not stored (cut off,
    or not whole); ``damaged`` one "name: reason" per stored file that did not open and so
    was fetched again; ``cleaned`` the temporary files of killed fetches it removed (keys).
    """

    source_id: str
    downloaded: list[str] = field(default_factory=list)
    already_stored: int = 0
    error: str = ""
    refused: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


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
    result.cleaned = storage.remove_abandoned_partials(prefix)
    for key in result.cleaned:
        logger.warning("%s: removed %s, left by a fetch that was killed", source.id, key)
    stored, damaged = _stored_whole(source, prefix, result)
    if isinstance(source.origin, Listing):
        wanted = _wanted_from_listing(source.origin, stored, damaged, session, result)
    else:
        wanted = _wanted_from_fixed_url(source.origin, stored, session, result)
    for name, url in wanted:
        download(
            session, url, posixpath.join(prefix, name), backoff=backoff, refused=result.refused
        )
        result.downloaded.append(name)


def _stored_whole(source: Source, prefix: str, result: FetchResult) -> tuple[set[str], set[str]]:
    """The names of the source's stored files that open, and of those that do not (each
    also goes to the result's ``damaged`` with its reason)."""
    whole, damaged = set(), set()
    for name in storage.list_files(prefix):
        reason = stored_file_damage(posixpath.join(prefix, name))
        if reason is None:
            whole.add(name)
            continue
        damaged.add(name)
        result.damaged.append(f"{name}: {reason}")
        logger.warning(
            "%s: stored %s does not open (%s); fetching it again", source.id, name, reason
        )
    return whole, damaged


def stored_file_damage(key: str) -> str | None:
    """Why the stored file ``key`` cannot be opened, or None when it can.

    A zip must have a readable central directory (read by seeking: milliseconds, whatever
    the file's size; member CRCs are checked when a file is downloaded). Other files are
    taken as they are.
    """
    if not _is_zip(key):
        return None
    with storage.open_seekable(key) as stream:
        try:
            zipfile.ZipFile(stream).close()
        except (zipfile.BadZipFile, EOFError) as error:
            return f"not a readable zip ({error})"
    return None


def check_whole(stream: IO[bytes], name: str) -> None:
    """Raise ``Refused`` unless the file ``name`` read from ``stream`` is whole.

    A zip (by its name) must open and every member must decompress to its CRC; members are
    read in 1 MiB pieces, so memory stays flat whatever the size. ``stream`` must seek.
    Other files pass.
    """
    if not _is_zip(name):
        return
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError) as error:
        raise Refused(f"not a readable zip ({error})") from error
    with archive:
        for info in archive.infolist():
            try:
                with archive.open(info) as member:
                    while member.read(CHECK_CHUNK_BYTES):
                        pass
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise Refused(f"zip member {info.filename} is damaged ({error})") from error


def _is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def _wanted_from_listing(
    listing: Listing,
    stored: set[str],
    damaged: set[str],
    session: requests.Session,
    result: FetchResult,
) -> list[tuple[str, str]]:
    offered = offered_files(listing, session)
    stored_dates = [day for day in map(listing.stored_name.date_of, stored) if day]
    newest = max(stored_dates, default=None)
    wanted = []
    for day, url in sorted(offered.items()):
        name = listing.stored_name.name_for(day)
        # A damaged stored file is fetched again even when newer ones are stored.
        recent = newest is not None and day - newest < listing.refresh_delay
        if name in stored or (recent and name not in damaged):
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
    refused: list[str] | None = None,
) -> None:
    """Stream ``url`` into storage under ``key``, checked (``check_whole`` and the declared
    length); a broken or refused transfer is started again, ``attempts`` times in all, with
    backoff (``backoff`` seconds, doubling). Each failed attempt's "URL: reason" is appended
    to ``refused``.

    A failed attempt leaves ``key`` as it was. Raises ``FetchError`` when every attempt failed.
    """
    for attempt in range(1, attempts + 1):
        try:
            with session.get(url, stream=True, timeout=TIMEOUT) as response:
                response.raise_for_status()
                response.raw.decode_content = True
                storage.save_stream(
                    key, _DeclaredLengthBody(response), check=lambda f: check_whole(f, key)
                )
            logger.info("downloaded %s to %s", url, key)
            return
        except (
            Refused,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
        ) as error:
            if refused is not None:
                refused.append(f"{url}: {error}")
            if attempt == attempts:
                raise FetchError(f"download of {url} failed {attempts} times: {error}") from error
            logger.warning(
                "download of %s refused, not stored (%s); trying again (%d of %d)",
                url,
                error,
                attempt + 1,
                attempts,
            )
            time.sleep(backoff * 2 ** (attempt - 1))


class _DeclaredLengthBody:
    """An answer's body (decoded) for storage to read; raises ``Refused`` when the bytes
    received on the wire are not the ``Content-Length`` the server declared."""

    def __init__(self, response: requests.Response):
        self._raw = response.raw
        self._declared = _declared_length(response)

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except urllib3.exceptions.ProtocolError as error:
            raise Refused(f"{self._received()}; the connection broke ({error})") from error
        if not data and self._declared is not None and self._raw.tell() != self._declared:
            raise Refused(self._received())
        return data

    def _received(self) -> str:
        if self._declared is None:
            return f"received {self._raw.tell()} bytes, no length declared"
        return f"declared {self._declared} bytes (Content-Length), received {self._raw.tell()}"


def _declared_length(response: requests.Response) -> int | None:
    """The body's length as the server declared it; None for a chunked answer or none."""
    if "chunked" in response.headers.get("Transfer-Encoding", "").lower():
        return None
    declared = response.headers.get("Content-Length", "").strip()
    return int(declared) if declared.isdigit() else None


def _get(session: requests.Session, url: str, method: str = "GET") -> requests.Response:
    try:
        response = session.request(method, url, timeout=TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as error:
        raise FetchError(f"{method} {url} failed: {error}") from error
    return response
