"""FHIR REST search: every resource of each type, page by page, following `next` links exactly as given.

Incremental runs search `_lastUpdated=ge<watermark>` (inclusive: many resources share one millisecond, and the
landing de-duplicates on id and versionId) and read deletions from the type-level `_history` since the
watermark. The watermark of a type is the server's clock when its first page was served. Types are pulled
concurrently, a bounded number at a time.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from connectors.base import Source
from connectors.http import FhirClient
from connectors.landing import COHORT, REJECTED, TOMBSTONES, LandingRun, StreamProgress
from connectors.ndjson import classify
from connectors.progress import PullProgress
from connectors.settings import RestSettings
from ilp.errors import SourceProtocolError
from ilp.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES

log = logging.getLogger(__name__)


ILP_PROCEDURE_CODES = ("http://fhir.ohdsi.org/CodeSystem/concepts|4019656",
                       "http://ilp-cohort.org/fhir/CodeSystem/ilp-local|ilp")
CHUNK = 50  # patients per scoped search
RESCANS = 2  # searches again of a type whose total changed while paging, before the run warns instead


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


class RestSource(Source):
    kind = "rest"

    def __init__(self, settings: RestSettings, resource_types: tuple[str, ...] = RESOURCE_TYPES,
                 client: FhirClient | None = None) -> None:
        """`client`: an open connection to share (a bulk source searches its server's ConceptMaps with its own)."""
        super().__init__(resource_types)
        self.settings = settings
        # Scope to the cohort: only patients with a Procedure coded with one of these (system|code), and their
        # resources. Empty: everything on the server.
        self.cohort_codes = ILP_PROCEDURE_CODES if settings.cohort_only else ()
        self.client = client or FhirClient(settings)

    def close(self) -> None:
        self.client.close()

    def fingerprint(self) -> dict[str, Any]:
        s = self.settings
        return {"kind": self.kind, "base_url": self.client.base_url, "types": list(self.resource_types),
                "page_size": s.page_size, "cohort_codes": list(self.cohort_codes)}

    def pull(self, run: LandingRun, progress: PullProgress) -> dict[str, Any]:
        capability = self.client.capability()
        if self.cohort_codes:
            self._find_cohort(run)
        self.pull_types(run, self.resource_types, progress)
        stats = self.client.stats
        return {"source": {"kind": self.kind, "base_url": self.client.base_url},
                "server": {"software": capability.get("software", {}), "fhirVersion": capability.get("fhirVersion")},
                "requests": {"count": stats.requests, "retries": stats.retries, "bytes": stats.bytes}}

    def pull_types(self, run: LandingRun, resource_types: tuple[str, ...], progress: PullProgress) -> None:
        """Search each type (a few at a time) into its stream, then its deletions since the last run."""
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="pull") as pool:
            for future in [pool.submit(self._pull_type, run, t, progress) for t in resource_types]:
                future.result()

    def _search_url(self, resource_type: str, since: str | None, patients: list[str] | None = None) -> str:
        params: dict[str, Any] = {"_count": self.settings.page_size}
        if since:
            params["_lastUpdated"] = f"ge{since}"
        if patients is not None:
            ids = [p.rsplit("/", 1)[-1] for p in patients]
            params.update({"_id": ",".join(ids)} if resource_type == "Patient"
                          else {"patient": ",".join(f"Patient/{i}" for i in ids)})
        return f"{self.client.base_url}/{resource_type}?{urlencode(params)}"

    def _find_cohort(self, run: LandingRun) -> None:
        """Land the cohort (patients with an ILP procedure) and split it into patients new since the last run."""
        state = run.progress.setdefault(COHORT, StreamProgress())
        if state.done:
            return
        query = urlencode({"code": ",".join(self.cohort_codes), "_count": self.settings.page_size})
        members: set[str] = set()
        for _, bundle, _ in self._pages(f"{self.client.base_url}/Procedure?{query}", StreamProgress(),
                                        "cohort (ILP Procedure) search"):
            for entry in bundle.get("entry") or []:
                reference = ((entry.get("resource") or {}).get("subject") or {}).get("reference", "")
                if "Patient/" in reference:
                    members.add("Patient/" + reference.rsplit("/", 1)[-1])
        previous = self._previous_cohort(run)
        run.stream(COHORT).append([{"patient": p} for p in sorted(members)])
        state.state.update(known=sorted(members & previous), new=sorted(members - previous))
        state.done = True
        run.checkpoint()

    def _previous_cohort(self, run: LandingRun) -> set[str]:
        runs = run.zone.runs()
        path = runs[-1] / f"{COHORT}.ndjson" if runs else None
        if path is None or not path.exists():
            return set()
        return {json.loads(line)["patient"] for line in path.read_text(encoding="utf-8").splitlines()}

    def _queries(self, run: LandingRun, resource_type: str, since: str | None) -> list[str]:
        """The searches that cover a type: one, or one per chunk of cohort patients (new ones without `since`)."""
        if not self.cohort_codes or resource_type in TERMINOLOGY_TYPES:
            return [self._search_url(resource_type, since)]
        cohort = run.progress[COHORT].state
        return [self._search_url(resource_type, window, group[i:i + CHUNK])
                for group, window in ((cohort["new"], None), (cohort["known"], since))
                for i in range(0, len(group), CHUNK)]

    def _pages(self, first_url: str, progress_state: StreamProgress, what: str
               ) -> Iterator[tuple[httpx.Response, dict[str, Any], str | None]]:
        """(response, bundle, next URL) per page, from the checkpointed page on; refuses loops and other hosts."""
        url: str | None = progress_state.next_url or first_url
        visited: set[str] = set()
        while url:
            if url in visited:
                raise SourceProtocolError(f"{self.client.base_url}: {what} paging loops back to {url}")
            visited.add(url)
            if not self.settings.same_server(url):
                other = urlsplit(url).netloc
                raise SourceProtocolError(
                    f"{self.client.base_url}: {what} next link points to another server ({other}); refusing to "
                    f"follow it with our credentials. If {other} is this same server under another name, list it "
                    f"in the source's configuration: same_server_hosts = [\"{other}\"]")
            response, bundle = self.client.get_json(url, f"{what} page {progress_state.pages + 1}")
            if bundle.get("resourceType") != "Bundle":
                raise SourceProtocolError(f"{self.client.base_url}: {what} page is a {bundle.get('resourceType')}, "
                                          f"not a Bundle ({url})")
            url = next_link(bundle)
            yield response, bundle, url

    def _pull_type(self, run: LandingRun, resource_type: str, progress: PullProgress) -> None:
        state = run.progress[resource_type]
        since = run.since.get(resource_type)
        if not state.done:
            queries = self._queries(run, resource_type, since)
            for number in range(state.state.get("query", 0), len(queries)):
                self._search_to_the_end(run, resource_type, queries[number], progress, len(queries) == 1)
                state.state.update(query=number + 1, total=None, rescans=0)
                run.checkpoint()
            state.done = True
            state.next_url = None
            run.checkpoint()
        if since and not state.state.get("history_done"):
            self._pull_deletions(run, resource_type, since, state)
        progress.finish(resource_type)

    def _search_to_the_end(self, run: LandingRun, resource_type: str, url: str, progress: PullProgress,
                           show_total: bool) -> None:
        """Land every page of one search. A total that changes between pages means the matches shifted under
        the server's offsets (a resource deleted or added while we paged), so a page may have skipped one:
        the search runs again from its first page (the landing counts what repeats as duplicates), up to
        RESCANS times; after that the run's manifest carries a warning."""
        state = run.progress[resource_type]
        stream = run.stream(resource_type)
        while True:
            for response, bundle, next_url in self._pages(url, state, f"{resource_type} search"):
                state.watermark = state.watermark or server_time(response, bundle)
                total = bundle.get("total")
                if state.state.get("total") is None:
                    state.state["total"] = total
                elif total != state.state["total"]:
                    state.state["shifted"] = f"{state.state['total']} then {total}"
                resources, rejected = self._split(bundle, resource_type, str(response.url))
                added = stream.append(resources)
                if rejected:
                    run.stream(REJECTED).append(rejected)
                state.pages += 1
                state.next_url = next_url
                run.checkpoint()
                progress.advance(resource_type, added, total if show_total else None)
            shifted = state.state.pop("shifted", None)
            if not shifted:
                return
            what = f"{resource_type} search: the total changed while paging ({shifted})"
            if state.state.get("rescans", 0) >= RESCANS:
                log.warning("%s, still after %d searches again; a resource may be missing until the next run",
                            what, RESCANS)
                state.state.setdefault("warnings", []).append(f"{what}, still after {RESCANS} searches again")
                return
            log.warning("%s: searching again from the first page", what)
            state.state.update(rescans=state.state.get("rescans", 0) + 1, total=None)
            run.checkpoint()

    def _split(self, bundle: dict[str, Any], resource_type: str, page_url: str
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Matches of the searched type; anything else in the page (outcomes, strays) goes to the rejects, each
        keyed by the page's URL and its place in the page (the same page read again rejects nothing twice)."""
        resources, rejected = [], []
        for n, entry in enumerate(bundle.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            mode = (entry.get("search") or {}).get("mode", "match") if isinstance(entry, dict) else "match"
            if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
                log.warning("%s search page carries an OperationOutcome: %s", resource_type, resource.get("issue"))
                reason: str | None = "OperationOutcome in a search page"
            elif isinstance(resource, dict) and resource.get("resourceType") == resource_type and mode == "match":
                reason = classify(resource, (resource_type,))
            else:
                reason = f"entry is not a {resource_type} match"
            if reason is None and isinstance(resource, dict):
                resources.append(resource)
            else:
                rejected.append({"source": f"{resource_type} search", "line": f"{page_url}#{n}",
                                 "reason": reason, "entry": entry})
        return resources, rejected

    def _pull_deletions(self, run: LandingRun, resource_type: str, since: str, state: StreamProgress) -> None:
        history = StreamProgress(pages=state.state.get("history_pages", 0), next_url=state.state.get("history_next"))
        first = f"{self.client.base_url}/{resource_type}/_history?{urlencode({'_since': since, '_count': 500})}"
        tombstones = run.stream(TOMBSTONES)
        for _, bundle, next_url in self._pages(first, history, f"{resource_type} history"):
            deleted = [{"resourceType": resource_type, "id": e["request"]["url"].rsplit("/", 1)[-1],
                        "deleted_at": (e.get("response") or {}).get("lastModified")}
                       for e in bundle.get("entry") or [] if (e.get("request") or {}).get("method") == "DELETE"]
            tombstones.append(deleted)
            history.pages += 1
            state.state.update(history_pages=history.pages, history_next=next_url)
            run.checkpoint()
        state.state["history_done"] = True
        run.checkpoint()
