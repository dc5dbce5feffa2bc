"""Bulk Data `$export` (system, Patient or Group level): kick off, poll, stream the files, clean up.

Kick-off sends `Prefer: respond-async` with `_type` and `_since`; polling honours `Retry-After`, shows
`X-Progress` and gives up after a bounded wait; output files are streamed line by line (gzip as content
encoding or as `.gz` files); error files and `deleted` entries (as tombstones) are kept; the job is deleted on
the server when done. A killed run resumes at the first file not yet landed. The export's `transactionTime`
becomes the watermark of every type.
"""

from __future__ import annotations

import gzip
import io
import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from connectors import deletions
from connectors.base import Source
from connectors.capabilities import TypePlan, export_levels, plan_types
from connectors.http import FhirClient, parse_retry_after
from connectors.landing import REJECTED, TOMBSTONES, LandingRun, StreamProgress
from connectors.ndjson import BATCH, land_items, parse_lines
from connectors.paging import Pager
from connectors.progress import PullProgress
from connectors.rest import RestSource
from connectors.settings import BulkSettings, RestSettings, host_listed
from foundation.errors import AuthenticationFailed, IlpError, SourceProtocolError, SourceUnreachable
from foundation.model.resources import RESOURCE_TYPES, TERMINOLOGY_TYPES

log = logging.getLogger(__name__)
EXPORT = "_export"
ERRORS = "export-errors"


class BulkSource(Source):
    kind = "bulk"

    def __init__(self, settings: BulkSettings, resource_types: tuple[str, ...] = RESOURCE_TYPES) -> None:
        super().__init__(resource_types)
        self.settings = settings
        self.client = FhirClient(settings)

    def close(self) -> None:
        self.client.close()

    def fingerprint(self) -> dict[str, Any]:
        s = self.settings
        return {"kind": self.kind, "base_url": self.client.base_url, "level": s.level, "group": s.group_id,
                "types": list(self.resource_types)}

    def _kickoff_path(self) -> str:
        s = self.settings
        return {"system": "$export", "patient": "Patient/$export", "group": f"Group/{s.group_id}/$export"}[s.level]

    @property
    def exported_types(self) -> tuple[str, ...]:
        return tuple(t for t in self.resource_types if t not in TERMINOLOGY_TYPES)

    def pull(self, run: LandingRun, progress: PullProgress) -> dict[str, Any]:
        capability = self.client.capability()
        advertised = export_levels(capability)
        if self.settings.level not in advertised:  # many servers export without saying so: try, and say why if not
            note = (f"the CapabilityStatement does not advertise a {self.settings.level}-level $export "
                    f"(advertised: {', '.join(advertised) or 'none'}); trying it anyway")
            log.warning("%s", note)
            run.progress.setdefault(EXPORT, StreamProgress()).state.setdefault("warnings", [note])
        job = run.progress.setdefault(EXPORT, StreamProgress()).state
        plans = plan_types(capability, self.exported_types, self.settings.server_features)
        if "status_url" not in job:
            job["since"] = self._since(run, plans)
            job["status_url"] = self._kick_off(job["since"])
            run.checkpoint()
        since = job["since"]
        if "manifest" not in job:
            job["manifest"] = self._wait(job["status_url"], progress)
            run.checkpoint()
        manifest = job["manifest"]
        done = set(job.setdefault("files_done", []))
        for output in manifest.get("output", []):
            if output["url"] not in done:
                counts = self._land_file(run, output, manifest)
                progress.advance(output.get("type", "?"), sum(counts.values()), note=output["url"].rsplit("/", 1)[-1])
                job["files_done"].append(output["url"])
                run.checkpoint()
        for name, entries in (("deleted", manifest.get("deleted", [])), ("error", manifest.get("error", []))):
            for output in entries:
                if output["url"] not in done:
                    self._land_side_file(run, name, output, manifest)
                    job["files_done"].append(output["url"])
                    run.checkpoint()
        for resource_type in self.exported_types:
            state = run.progress[resource_type]
            state.watermark = manifest["transactionTime"]
            state.done = True
            if "deletions" not in state.state:
                state.state["deletions"] = self._deletions(run, resource_type, plans[resource_type], since,
                                                           manifest["transactionTime"])
            run.checkpoint()
            progress.finish(resource_type)
        self._delete_job(job["status_url"])
        terminology = tuple(t for t in self.resource_types if t in TERMINOLOGY_TYPES)
        if terminology:  # not exportable per patient: searched on the same server, with the same credentials
            # over this source's own connection; its other names are this server's for the searches too
            searches = RestSettings(base_url=self.settings.base_url, same_server_hosts=self.settings.same_server_hosts)
            RestSource(searches, terminology, self.client).pull_types(run, terminology, progress, capability)
        stats = self.client.stats
        return {"source": {"kind": self.kind, "base_url": self.client.base_url, "level": self.settings.level,
                           "group": self.settings.group_id, "since": since},
                "server": {"software": capability.get("software", {}), "fhirVersion": capability.get("fhirVersion"),
                           "export_levels": export_levels(capability)},
                "export": {"transactionTime": manifest["transactionTime"], "request": manifest.get("request"),
                           "files": len(manifest.get("output", [])), "deleted_files": len(manifest.get("deleted", [])),
                           "error_files": len(manifest.get("error", []))},
                "deletions": {t: run.progress[t].state["deletions"] for t in self.exported_types},
                "requests": {"count": stats.requests, "retries": stats.retries, "bytes": stats.bytes}}

    def _since(self, run: LandingRun, plans: dict[str, TypePlan]) -> str | None:
        """The export's `_since`: the oldest watermark of the types (one for all), or none for a full export: the
        first, or, on a server whose deletions no `_history` lists, whenever an id reconciliation is due (servers
        may leave deletions out of an export's `deleted` entries; a full export serves every id that is left)."""
        marks = [run.since.get(t) for t in self.exported_types]
        if not all(marks):
            return None
        if any(not plans[t].history and deletions.reconciliation_due(run, t, self.settings.reconcile_every_days)
               is None for t in self.exported_types):
            log.info("a full export this run: deletions are found by comparing every id it serves with what landed")
            return None
        return min(m for m in marks if m)

    def _deletions(self, run: LandingRun, resource_type: str, plan: TypePlan, since: str | None,
                   transaction_time: str) -> dict[str, Any]:
        """Deletions beyond the export's `deleted` entries (which servers may omit), found as a REST source finds
        them: a full export is compared id by id with what landed; after an incremental one, the type's `_history`
        lists them where the server has it. What the manifest says about them."""
        state = run.progress[resource_type].state
        if since is None:
            state["reconciled_at"] = transaction_time
            if not run.zone.runs():
                return {"method": "first pull: nothing landed before"}
            pager = Pager(self.client, self.settings, run.checkpoint)
            return {"method": "id reconciliation with the full export",
                    **deletions.reconcile(pager, run, resource_type, transaction_time, whole=True)}
        if plan.history:
            try:
                return {"method": "history", "deleted": deletions.history(
                    Pager(self.client, self.settings, run.checkpoint), run, resource_type, since)}
            except (SourceProtocolError, AuthenticationFailed) as error:
                if not deletions.refused(error):
                    raise
                note = (f"{resource_type}: the server refused its _history (HTTP {error.status}); deletions come "
                        "from the export's deleted entries until the next full export")
                log.warning("%s", note)
                state.setdefault("warnings", []).append(note)
        due = deletions.reconciliation_due(run, resource_type, self.settings.reconcile_every_days)
        log.info("%s: deletions only as the export's deleted entries list them (which servers may omit); the next "
                 "full export compares every id, due %s (reconcile_every_days)", resource_type,
                 due or "at the next run")
        return {"method": "the export's deleted entries", "next_id_reconciliation": due}

    def _kick_off(self, since: str | None) -> str:
        params = {"_type": ",".join(self.exported_types)}
        if since:
            params["_since"] = since
        path = f"{self._kickoff_path()}?{urlencode(params)}"
        response = self.client.request("GET", path, "the $export kick-off",
                                       headers={"Prefer": "respond-async", "Accept": "application/fhir+json"})
        location = response.headers.get("Content-Location")
        if response.status_code != 202 or not location:
            raise SourceProtocolError(f"{self.client.base_url}: $export kick-off answered HTTP {response.status_code} "
                                      "without a Content-Location to poll: the server may not export at "
                                      f"{self.settings.level} level; try another level, or a REST source")
        return location

    def _wait(self, status_url: str, progress: PullProgress) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.max_wait_s
        while True:
            response = self.client.request("GET", status_url, "the $export status")
            if response.status_code == 200:
                manifest = response.json()
                if "transactionTime" not in manifest or "output" not in manifest:
                    raise SourceProtocolError(f"{self.client.base_url}: $export manifest lacks transactionTime/output: "
                                              "the export is not Bulk Data conformant; use a REST source for it")
                return dict(manifest)
            if response.status_code != 202:
                raise SourceProtocolError(f"{self.client.base_url}: $export status answered HTTP "
                                          f"{response.status_code}: the export job failed or expired on the "
                                          "server; rerun to start a new export", response.status_code)
            note = response.headers.get("X-Progress", "in progress")
            progress.advance(EXPORT, 0, note=note)
            wait = parse_retry_after(response.headers.get("Retry-After"))
            wait = self.settings.poll_interval_s if wait is None else wait
            if time.monotonic() + wait > deadline:
                raise SourceUnreachable(f"{self.client.base_url}: $export did not finish within "
                                        f"{self.settings.max_wait_s:.0f} s (last progress: {note}); "
                                        f"status {status_url}. Raise max_wait_s for a server this slow; a "
                                        "rerun polls the same export again")
            time.sleep(wait)

    def _authenticated(self, url: str, manifest: dict[str, Any]) -> bool:
        """Whether to send our credentials with a file download; refuses hosts nobody allowed."""
        host = urlsplit(url).netloc
        if self.settings.same_server(url):
            return True
        if not host_listed(url, self.settings.file_hosts):
            raise SourceProtocolError(
                f"{self.client.base_url}: $export file on another host ({host}) that the configuration does not "
                f"allow. If that host serves the export's files, list it in the source's file_hosts = [\"{host}\"] "
                f"(credentials are sent only if the export says they are required); if it is this same server "
                f"under another name, in same_server_hosts")
        return bool(manifest.get("requiresAccessToken"))

    def _lines(self, url: str, manifest: dict[str, Any], what: str) -> Iterator[str]:
        with self.client.stream(url, what, authenticated=self._authenticated(url, manifest),
                                headers={"Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"}) as response:
            if urlsplit(url).path.endswith(".gz"):
                raw = io.BufferedReader(_ByteStream(response.iter_raw()))
                yield from io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8")
            else:
                yield from response.iter_lines()

    def _land_file(self, run: LandingRun, output: dict[str, Any], manifest: dict[str, Any]) -> dict[str, int]:
        what = f"$export file {output['url'].rsplit('/', 1)[-1]} ({output.get('type')})"
        for attempt in range(1, self.client.transport.max_attempts + 1):
            try:
                return land_items(run, parse_lines(self._lines(output["url"], manifest, what)), what,
                                  self.resource_types)
            except (httpx.TransportError, EOFError, gzip.BadGzipFile) as error:  # cut mid-file: land it again
                log.warning("%s: %s (attempt %d), downloading again", what, type(error).__name__, attempt)
        raise SourceUnreachable(f"{self.client.base_url}: {what} kept failing mid-download; check the connection "
                                "to the server, then rerun: the pull resumes at the first file not yet landed")

    def _land_side_file(self, run: LandingRun, name: str, output: dict[str, Any], manifest: dict[str, Any]) -> None:
        """An error file's OperationOutcomes, or a `deleted` file's Bundles as tombstones, streamed a batch at a
        time (an error file can be larger than the export); a line that is not a JSON object is rejected."""
        what = f"$export {name} file {output['url'].rsplit('/', 1)[-1]}"
        lines = parse_lines(self._lines(output["url"], manifest, what))
        outcomes = 0
        while batch := list(itertools.islice(lines, BATCH)):
            kept, rejected = [], []
            for number, item, raw in batch:
                if not isinstance(item, dict):
                    reason = "not valid JSON" if item is None else "not a JSON object"
                    rejected.append({"source": output["url"], "line": number, "reason": reason, "raw": raw[:100_000]})
                elif name == "error":
                    kept.append({"source": output["url"], "line": number, **item})
                else:
                    kept.extend({"resourceType": e["request"]["url"].split("/")[0],
                                 "id": e["request"]["url"].split("/")[-1], "deleted_at": manifest["transactionTime"]}
                                for e in item.get("entry") or [] if (e.get("request") or {}).get("method") == "DELETE")
            outcomes += len(kept)
            run.stream(ERRORS if name == "error" else TOMBSTONES).append(kept)
            if rejected:
                run.stream(REJECTED).append(rejected)
        if name == "error":
            log.warning("%s: %d OperationOutcome(s) from the server", what, outcomes)

    def _delete_job(self, status_url: str) -> None:
        try:
            self.client.request("DELETE", status_url, "the $export job clean-up")
        except IlpError as error:  # the data has landed: a left-over job is only worth a warning
            status = getattr(error, "status", None)
            answer = f"HTTP {status}" if status else type(error).__name__
            log.warning("the server did not delete the finished $export job %s (%s): everything it exported has "
                        "landed; its files stay on the server until the server expires them (many servers let no "
                        "client delete a job)", status_url, answer)


class _ByteStream(io.RawIOBase):
    """A readable file over an iterator of byte chunks, for gzip.GzipFile."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self.buffer:
            try:
                self.buffer = next(self.chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self.buffer))
        target[:size] = self.buffer[:size]
        self.buffer = self.buffer[size:]
        return size
