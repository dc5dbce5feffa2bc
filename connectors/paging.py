"""Following a FHIR search's `next` links exactly as the server gives them (offsets or opaque tokens alike),
from a checkpointed page on, refusing loops and other hosts, and searching again when the matches shift.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.http import FhirClient
from connectors.landing import StreamProgress
from connectors.settings import ServerSettings
from foundation.errors import SourceProtocolError

log = logging.getLogger(__name__)
RESCANS = 2  # searches again of a search whose total changed while paging, before the run warns instead

Page = Callable[[httpx.Response, dict[str, Any]], None]


def server_time(response: httpx.Response, bundle: dict[str, Any]) -> str | None:
    """The server's clock: Bundle.meta.lastUpdated where the server stamps it, else the Date header."""
    stamped = (bundle.get("meta") or {}).get("lastUpdated")
    if isinstance(stamped, str):
        return stamped
    date = response.headers.get("Date")
    if not date:
        return None
    return email.utils.parsedate_to_datetime(date).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_link(bundle: dict[str, Any]) -> str | None:
    return next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)


class Pager:
    """Pages of one server's searches, for a source that checkpoints after every page."""

    def __init__(self, client: FhirClient, settings: ServerSettings, checkpoint: Callable[[], None]) -> None:
        self.client = client
        self.settings = settings
        self.checkpoint = checkpoint

    def pages(self, first_url: str, cursor: StreamProgress, what: str
              ) -> Iterator[tuple[httpx.Response, dict[str, Any], str | None]]:
        """(response, bundle, next URL) per page, from the cursor's checkpointed page on."""
        url: str | None = cursor.next_url or first_url
        visited: set[str] = set()
        while url:
            visited.add(url)
            self._check_link(url, what)
            response, bundle = self.client.get_json(url, f"{what} page {cursor.pages + 1}")
            if bundle.get("resourceType") != "Bundle":
                raise SourceProtocolError(f"{self.client.base_url}: {what} page is a {bundle.get('resourceType')}, "
                                          f"not a Bundle ({url}): check that base_url is the FHIR base")
            following = next_link(bundle)
            if following in visited:
                raise SourceProtocolError(f"{self.client.base_url}: {what} paging loops back to {following}. The "
                                          "server's paging is broken: ask its administrators; a rerun starts the "
                                          "search again")
            if following:  # checked before the page is handed on, so a checkpoint never holds a refused link
                self._check_link(following, what)
            yield response, bundle, following
            url = following

    def _check_link(self, url: str, what: str) -> None:
        if not self.settings.same_server(url):
            other = urlsplit(url).netloc
            raise SourceProtocolError(
                f"{self.client.base_url}: {what} next link points to another server ({other}); refusing to "
                f"follow it with our credentials. If {other} is this same server under another name, list it "
                f"in the source's configuration: same_server_hosts = [\"{other}\"]")

    def walk_all(self, queries: list[str], cursor: StreamProgress, what: str, on_page: Page) -> bool:
        """`walk` each query in turn, from the cursor's checkpointed query on; True when every one held still."""
        stable = bool(cursor.state.get("stable", True))
        for number in range(cursor.state.get("query", 0), len(queries)):
            stable = self.walk(queries[number], cursor, what, on_page) and stable
            cursor.state.update(query=number + 1, total=None, rescans=0, stable=stable)
            cursor.next_url = None
            self.checkpoint()
        return stable

    def walk(self, first_url: str, cursor: StreamProgress, what: str, on_page: Page) -> bool:
        """Hand every page of one search to `on_page`, checkpointing after each; True when the search held still.

        A total that changes between pages means the matches shifted under the server's offsets (a resource
        deleted or added while we paged), so a page may have skipped one: the search runs again from its first
        page (what repeats lands as duplicates), up to RESCANS times; after that the cursor carries a warning
        and the result is False."""
        while True:
            for response, bundle, next_url in self.pages(first_url, cursor, what):
                cursor.watermark = cursor.watermark or server_time(response, bundle)
                total = bundle.get("total")
                if cursor.state.get("total") is None:
                    cursor.state["total"] = total
                elif total != cursor.state["total"]:
                    cursor.state["shifted"] = f"{cursor.state['total']} then {total}"
                on_page(response, bundle)
                cursor.pages += 1
                cursor.next_url = next_url
                self.checkpoint()
            shifted = cursor.state.pop("shifted", None)
            if not shifted:
                return True
            problem = f"{what}: the total changed while paging ({shifted})"
            if cursor.state.get("rescans", 0) >= RESCANS:
                log.warning("%s, still after %d searches again; a resource may be missing until the next run",
                            problem, RESCANS)
                cursor.state.setdefault("warnings", []).append(f"{problem}, still after {RESCANS} searches again")
                cursor.state.update(total=None, rescans=0)
                return False
            log.warning("%s: searching again from the first page", problem)
            cursor.state.update(rescans=cursor.state.get("rescans", 0) + 1, total=None)
            self.checkpoint()


def restart(cursor: StreamProgress) -> None:
    """Make `walk_all` begin again at the first page of the first query (what lands again counts as duplicates)."""
    cursor.state.update(query=0, total=None, rescans=0, stable=True)
    cursor.next_url = None
