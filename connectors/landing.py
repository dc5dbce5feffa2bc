"""The raw landing zone: what a connector received, exactly once per resource version, published atomically.

Layout (architecture doc): `landing/centre=<id>/run=<run_id>/<ResourceType>.ndjson` plus `manifest.json`,
`tombstones.ndjson` (deletions) and `rejected.ndjson` (input that was not a FHIR resource, with the reason);
`state/centre=<id>/checkpoint.json` for the run in progress and `watermarks.json` for incremental pulls.

A run is written under `.partial-<run_id>` and renamed to `run=<run_id>` when complete, so readers never see
half a run. Each page is appended and fsynced before the checkpoint records the new file length; a killed run
truncates each file back to its checkpointed length and continues from the checkpointed page, so every
resource version lands exactly once. Watermarks advance only after the rename.

A partial run never traps later pulls: one of other settings, an incremental one met by a `--full` pull, or one
whose resume failed twice the same way is abandoned (renamed `.abandoned-<run_id>`, kept for inspection until
the next pull completes) and a fresh run starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from connectors import jsonio
from foundation.fileio import fsync_dir, sha256_file, write_json_atomically
from foundation.manifests import LandedFile, LandingManifest
from foundation.zones import MANIFEST, Zones

log = logging.getLogger(__name__)
TOMBSTONES = "tombstones"
REJECTED = "rejected"
COHORT = "cohort"
LISTED = "listed-"  # `listed-<Type>`: the ids the server served in a full listing; working state, not landed
# Resource streams are named after their FHIR type (capitalised) and keyed by (id, versionId); side streams are
# lowercase (Spark skips files whose names start with "_" or ".") and keyed by what makes their lines unique,
# by default where the line came from.
SIDE_STREAM_KEYS = {TOMBSTONES: ("resourceType", "id", "deleted_at"), COHORT: ("patient",)}
FAILURES_BEFORE_ABANDON = 2  # a resume that fails the same way this many times in a row is given up


def stream_key(name: str) -> tuple[str, ...]:
    """What makes a line of the stream unique (a line with a key already written is a duplicate)."""
    if name in SIDE_STREAM_KEYS:
        return SIDE_STREAM_KEYS[name]
    if name.startswith(LISTED):
        return ("id",)
    return ("id", "versionId") if name[:1].isupper() else ("source", "line")


def failure_signature(error: BaseException) -> str:
    """An error as "the same way" compares it: its type and message, without the URLs (page tokens differ)."""
    return f"{type(error).__name__}: {re.sub(r'https?://[^ )]+', '<url>', str(error))}"[:500]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StreamProgress:
    """How far one output stream (a resource type, the tombstones, the rejects) has got; checkpointed."""

    bytes: int = 0
    count: int = 0
    duplicates: int = 0  # items already landed in this run with the same key (the same version twice): not written
    pages: int = 0
    next_url: str | None = None
    done: bool = False
    watermark: str | None = None
    state: dict[str, Any] = field(default_factory=dict)  # connector-specific (e.g. bulk files finished)

    def snapshot(self) -> dict[str, Any]:
        """The progress as checkpointed. Each resource type is pulled by its own thread, which adds keys to its
        `state` between pages while another type's thread checkpoints every stream: iterating the live dict
        then fails ("dictionary changed size during iteration", seen in a pull under load). `dict.copy` is one
        call that no other Python thread interleaves with, so the copy is whole."""
        return asdict(replace(self, state=self.state.copy()))


class NdjsonStream:
    """Append-only NDJSON with de-duplication on a key, truncated back to its checkpointed length on resume."""

    def __init__(self, path: Path, progress: StreamProgress, key_fields: tuple[str, ...]) -> None:
        self.path = path
        self.progress = progress
        self.key_fields = key_fields
        self.seen: set[tuple[Any, ...]] = set()
        with path.open("ab") as handle:
            handle.truncate(progress.bytes)
        with path.open("rb") as handle:
            for line in handle:
                self.seen.add(self._key(jsonio.loads(line)))
        self.handle: IO[bytes] = path.open("ab")
        self.lock = threading.Lock()  # the tombstone and reject streams are shared by the type threads

    def _key(self, item: dict[str, Any]) -> tuple[Any, ...]:
        meta = item.get("meta")
        version = meta.get("versionId") if isinstance(meta, dict) else None
        return tuple(version if f == "versionId" else item.get(f) for f in self.key_fields)

    def append(self, items: list[dict[str, Any]]) -> int:
        """Write the items not seen before, durably; return how many were new."""
        with self.lock:
            return self._append(items)

    def _append(self, items: list[dict[str, Any]]) -> int:
        fresh = []
        for item in items:
            key = self._key(item)
            if key not in self.seen:
                self.seen.add(key)
                fresh.append(item)
        if fresh:
            self.handle.write(b"".join(jsonio.dumps_line(i) for i in fresh))
            self.handle.flush()
            os.fsync(self.handle.fileno())
        self.progress.bytes = self.handle.tell()
        self.progress.count += len(fresh)
        self.progress.duplicates += len(items) - len(fresh)
        return len(fresh)

    def close(self) -> None:
        self.handle.close()


class LandingRun:
    """One pull of one centre, in progress. Connectors append pages and call `checkpoint()` after each."""

    def __init__(self, zone: LandingZone, run_id: str, fingerprint: dict[str, Any], since: dict[str, str | None],
                 started_at: str, streams: dict[str, StreamProgress], resumed: bool,
                 failures: list[str] | None = None) -> None:
        """`since` has one entry per resource type the run lands: each gets a file, empty if nothing came.
        `failures`: how each earlier attempt at this run ended (`failure_signature`), oldest first."""
        self.zone = zone
        self.failures = failures or []
        self.run_id = run_id
        self.fingerprint = fingerprint
        self.since = since
        self.started_at = started_at
        self.progress = streams
        self.resumed = resumed
        self.folder = zone.zones.partial_run(zone.centre_id, run_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._streams: dict[str, NdjsonStream] = {}
        self._lock = threading.Lock()

    def stream(self, name: str) -> NdjsonStream:
        """The NDJSON of a resource type (keyed on id and versionId), or of the tombstones or rejects."""
        with self._lock:
            if name not in self._streams:
                progress = self.progress.setdefault(name, StreamProgress())
                self._streams[name] = NdjsonStream(self.folder / f"{name}.ndjson", progress, stream_key(name))
            return self._streams[name]

    def checkpoint(self) -> None:
        with self._lock:
            write_json_atomically(self.zone.checkpoint_path, {
                "run_id": self.run_id, "fingerprint": self.fingerprint, "since": self.since,
                "started_at": self.started_at, "streams": {k: v.snapshot() for k, v in self.progress.items()},
                "failures": self.failures})

    def failed(self, error: BaseException) -> None:
        """Note how this attempt ended, so that a resume failing the same way again is given up next time."""
        self.failures.append(failure_signature(error))
        self.checkpoint()

    def complete(self, described: dict[str, Any]) -> Path:
        """Close the files, write the manifest, publish the run by renaming it, then advance the watermarks."""
        for name in self.since:
            self.stream(name)
        for stream in self._streams.values():
            stream.close()
        for listing in self.folder.glob(f"{LISTED}*.ndjson"):
            listing.unlink()
        files = {path.stem: LandedFile(file=path.name, count=self.progress[path.stem].count,
                                       duplicates=self.progress[path.stem].duplicates, bytes=path.stat().st_size,
                                       sha256=sha256_file(path))
                 for path in sorted(self.folder.glob("*.ndjson"))}
        watermarks = {t: p.watermark for t, p in self.progress.items() if p.watermark and t in self.since}
        # Whatever a stream noted on the way (a search whose total kept moving), whichever source it was pulled by.
        warnings = [w for p in self.progress.values() for w in p.state.get("warnings", [])]
        LandingManifest(run_id=self.run_id, centre_id=self.zone.centre_id, started_at=self.started_at,
                        finished_at=utc_now(), resumed=self.resumed, window={"since": self.since}, files=files,
                        watermarks=watermarks, warnings=warnings, **described).write(self.folder / MANIFEST)
        final = self.zone.zones.landing_run(self.zone.centre_id, self.run_id)
        os.replace(self.folder, final)
        fsync_dir(final.parent)
        self.zone.advance_watermarks(watermarks)
        self.zone.record_reconciliations({t: p.state["reconciled_at"] for t, p in self.progress.items()
                                          if p.state.get("reconciled_at")})
        self.zone.checkpoint_path.unlink(missing_ok=True)
        for abandoned in self.zone.zones.abandoned_runs(self.zone.centre_id):
            shutil.rmtree(abandoned, ignore_errors=True)
        return final


class LandingZone:
    """The landing and state folders of one centre under the zones' root."""

    def __init__(self, root: Path, centre_id: str) -> None:
        self.zones = Zones(root)
        self.centre_id = centre_id
        self.checkpoint_path = self.zones.checkpoint(centre_id)
        self.watermarks_path = self.zones.watermarks(centre_id)

    def watermarks(self) -> dict[str, str]:
        if not self.watermarks_path.exists():
            return {}
        return dict(json.loads(self.watermarks_path.read_text(encoding="utf-8")))

    def advance_watermarks(self, new: dict[str, str]) -> None:
        write_json_atomically(self.watermarks_path, {**self.watermarks(), **new})

    def runs(self) -> list[Path]:
        """Completed runs, oldest first (run ids sort by time)."""
        return self.zones.landing_runs(self.centre_id)

    def reconciliations(self) -> dict[str, str]:
        """When each type's ids were last reconciled with the server's (`reconciled.json`)."""
        path = self.zones.reconciliations(self.centre_id)
        return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else {}

    def record_reconciliations(self, new: dict[str, str]) -> None:
        if new:
            write_json_atomically(self.zones.reconciliations(self.centre_id), {**self.reconciliations(), **new})

    def live_ids(self, resource_type: str) -> dict[str, str]:
        """{id: last lastUpdated} of the type's resources that landed in completed runs and were not deleted since,
        by the rule the current state applies: a deletion removes every version not newer than it."""
        updated: dict[str, str] = {}
        deleted: dict[str, str] = {}
        for run in self.runs():
            for item in iter_lines(run / f"{resource_type}.ndjson"):
                last = str((item.get("meta") or {}).get("lastUpdated") or "")
                updated[str(item.get("id"))] = max(updated.get(str(item.get("id")), ""), last)
            for item in iter_lines(run / f"{TOMBSTONES}.ndjson"):
                if item.get("resourceType") == resource_type:
                    when = str(item.get("deleted_at") or "9999")
                    deleted[str(item.get("id"))] = max(deleted.get(str(item.get("id")), ""), when)
        return {i: last for i, last in updated.items() if i not in deleted or (last and deleted[i] < last)}

    def start(self, fingerprint: dict[str, Any], stream_names: list[str], incremental: bool = True) -> LandingRun:
        """Resume the interrupted run of the same pull, or start a new one (abandoning a stale partial run)."""
        if self.checkpoint_path.exists():
            saved = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
            stale = self._stale(saved, fingerprint, incremental)
            if stale is None:
                streams = {k: StreamProgress(**v) for k, v in saved["streams"].items()}
                log.info("resuming the interrupted pull %s of centre %s", saved["run_id"], self.centre_id)
                return LandingRun(self, saved["run_id"], fingerprint, saved["since"], saved["started_at"], streams,
                                  resumed=True, failures=list(saved.get("failures", [])))
            self._abandon(saved["run_id"], stale)
        marks = self.watermarks() if incremental else {}
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)  # sorts by time
        run = LandingRun(self, run_id, fingerprint, {n: marks.get(n) for n in stream_names}, utc_now(),
                         {n: StreamProgress() for n in stream_names}, resumed=False)
        run.checkpoint()
        return run

    def _stale(self, saved: dict[str, Any], fingerprint: dict[str, Any], incremental: bool) -> str | None:
        """Why the checkpointed partial run must not be resumed, or None to resume it."""
        failures = list(saved.get("failures", []))[-FAILURES_BEFORE_ABANDON:]
        if not self.zones.partial_run(self.centre_id, saved["run_id"]).exists():
            return "its files are gone"
        if saved["fingerprint"] != fingerprint:
            return "it was started with other settings"
        if not incremental and any(saved["since"].values()):
            return "it is an incremental pull and this one is --full"
        if len(failures) == FAILURES_BEFORE_ABANDON and len(set(failures)) == 1:
            return f"it failed {FAILURES_BEFORE_ABANDON} times in a row the same way ({failures[0]})"
        return None

    def _abandon(self, run_id: str, why: str) -> None:
        partial = self.zones.partial_run(self.centre_id, run_id)
        kept = self.zones.abandoned_run(self.centre_id, run_id)
        if partial.exists():
            os.replace(partial, kept)
        self.checkpoint_path.unlink()
        log.warning("centre %s: not resuming the partial pull %s because %s; starting a fresh pull. Its files are "
                    "kept in %s until a pull completes.", self.centre_id, run_id, why, kept)


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a stream written by this module. Another thread may be appending to it: a last line
    without its newline is not written yet, and is left out."""
    if path.exists():
        with path.open("rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break
                item = jsonio.loads(line)
                if isinstance(item, dict):
                    yield item


def landed_count(run: Path) -> int:
    """Resources (not side-stream lines) a completed run landed, from its manifest."""
    return Zones.landing_manifest(run).resources
