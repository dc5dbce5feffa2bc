"""The zones on disk, named in one place: every folder and file a stage writes and the next one reads.

The stages meet only through these folders (architecture doc), so their names are the contract between them.
`Zones(root)` names them all; no stage builds a zone path by hand. Layout:

```
landing/centre=<id>/run=<run_id>/...          raw FHIR and manifest.json per pull (connectors)
landing/centre=<id>/.partial-<run_id>/        a pull in progress; .abandoned-<run_id>/ one given up, for inspection
state/centre=<id>/checkpoint.json             the pull in progress; watermarks.json; reconciled.json; run.lock
resources/centre=<id>/current.json            the current state of every resource (transforms)
cohort/snapshots/run=<id>/<table>/centre_id=<id>/, manifest-<centre>.json
cohort/published.json                         the publication pointer (expectations)
cohort/published -> snapshots/run=<id>        a stable path to the published snapshot, for readers
quarantine/stage=<stage>/centre=<id>/run=<id>/, quarantine/unmapped_codes/centre=<id>/run=<id>/
validation/run=<id>/                          results, summary.json, Data Docs
reports/run=<id>/                             analytics outputs; reports/unpublished/run=<id>/ previews
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from foundation.manifests import LandingManifest, SnapshotManifest

MANIFEST = "manifest.json"
VALIDATION_SUMMARY = "summary.json"
SNAPSHOT_MANIFEST_PREFIX = "manifest-"


@dataclass(frozen=True)
class Snapshot:
    """One cohort snapshot: the canonical tables partitioned by centre, and one manifest per centre. Immutable once
    validated; the publication pointer names one."""

    folder: Path

    @classmethod
    def at(cls, folder: str | os.PathLike[str]) -> Snapshot:
        """The snapshot in a folder (a path given by a user, or a Snapshot already)."""
        return cls(Path(folder))

    def __fspath__(self) -> str:
        return str(self.folder)

    def __str__(self) -> str:
        return str(self.folder)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def run_id(self) -> str:
        return self.folder.name.removeprefix("run=")

    def table(self, name: str) -> Path:
        return self.folder / name

    def partition(self, table: str, centre_id: str) -> Path:
        return self.folder / table / f"centre_id={centre_id}"

    def manifest_path(self, centre_id: str) -> Path:
        return self.folder / f"{SNAPSHOT_MANIFEST_PREFIX}{centre_id}.json"

    def manifest(self, centre_id: str) -> SnapshotManifest:
        return SnapshotManifest.read(self.manifest_path(centre_id))

    def manifests(self) -> list[SnapshotManifest]:
        """Every centre's manifest, by centre id."""
        return [SnapshotManifest.read(p) for p in sorted(self.folder.glob(f"{SNAPSHOT_MANIFEST_PREFIX}*.json"))]

    def centres(self) -> list[str]:
        """The centres the snapshot holds (those with a manifest)."""
        return sorted(p.stem.removeprefix(SNAPSHOT_MANIFEST_PREFIX)
                      for p in self.folder.glob(f"{SNAPSHOT_MANIFEST_PREFIX}*.json"))

    def exists(self) -> bool:
        return self.folder.is_dir()


@dataclass(frozen=True)
class Zones:
    """Every folder and file of the zones under one root (a local path or a shared mount)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # connectors: what landed, and the state of the pulls
    @property
    def landing_root(self) -> Path:
        return self.root / "landing"

    def landing(self, centre_id: str) -> Path:
        return self.landing_root / f"centre={centre_id}"

    def landing_run(self, centre_id: str, run_id: str) -> Path:
        return self.landing(centre_id) / f"run={run_id}"

    def partial_run(self, centre_id: str, run_id: str) -> Path:
        """Where a pull writes until it completes (invisible to every reader)."""
        return self.landing(centre_id) / f".partial-{run_id}"

    def abandoned_run(self, centre_id: str, run_id: str) -> Path:
        """A partial pull given up (a failed resume, another window): kept for inspection until a pull completes."""
        return self.landing(centre_id) / f".abandoned-{run_id}"

    def abandoned_runs(self, centre_id: str) -> list[Path]:
        return sorted(self.landing(centre_id).glob(".abandoned-*"))

    def landing_runs(self, centre_id: str) -> list[Path]:
        """The centre's completed pulls (those with a manifest), oldest first: run ids sort by time."""
        return sorted(p for p in self.landing(centre_id).glob("run=*") if (p / MANIFEST).exists())

    @staticmethod
    def landing_manifest(run: Path) -> LandingManifest:
        return LandingManifest.read(run / MANIFEST)

    def state(self, centre_id: str) -> Path:
        return self.root / "state" / f"centre={centre_id}"

    def checkpoint(self, centre_id: str) -> Path:
        return self.state(centre_id) / "checkpoint.json"

    def watermarks(self, centre_id: str) -> Path:
        return self.state(centre_id) / "watermarks.json"

    def reconciliations(self, centre_id: str) -> Path:
        """When each type's ids were last reconciled with the server's (deletions found without `_history`)."""
        return self.state(centre_id) / "reconciled.json"

    def lock(self, centre_id: str) -> Path:
        return self.state(centre_id) / "run.lock"

    # transforms: the current state, snapshots and quarantine
    @property
    def resources_root(self) -> Path:
        return self.root / "resources"

    def resources(self, centre_id: str) -> Path:
        return self.resources_root / f"centre={centre_id}"

    def current_pointer(self, centre_id: str) -> Path:
        """The pointer to a centre's current state (which segments are in force, what was merged)."""
        return self.resources(centre_id) / "current.json"

    @property
    def cohort(self) -> Path:
        return self.root / "cohort"

    @property
    def snapshots_root(self) -> Path:
        return self.cohort / "snapshots"

    def snapshot(self, run_id: str) -> Snapshot:
        return Snapshot(self.snapshots_root / f"run={run_id}")

    def snapshots(self) -> list[Snapshot]:
        """Every written snapshot, oldest first (run ids sort by time)."""
        folder = self.snapshots_root
        return [Snapshot(p) for p in sorted(folder.glob("run=*")) if p.is_dir()] if folder.is_dir() else []

    @property
    def publication(self) -> Path:
        """The pointer to the published snapshot (replaced atomically; the expectations stage writes it)."""
        return self.cohort / "published.json"

    @property
    def published(self) -> Path:
        """A symbolic link to the published snapshot, replaced atomically after the pointer: a path analysts' tools
        read without resolving the pointer, and without a `run=` folder that Hive-style readers take for a
        column."""
        return self.cohort / "published"

    def quarantine_stage(self, stage: str) -> Path:
        return self.root / "quarantine" / f"stage={stage}"

    def quarantine(self, stage: str, centre_id: str, transform_run: str) -> Path:
        return self.quarantine_stage(stage) / f"centre={centre_id}" / f"run={transform_run}"

    def unmapped_codes(self, centre_id: str, transform_run: str) -> Path:
        """The folder of a centre's unmapped-codes report (`unmapped_codes.csv`) for one transform run."""
        return self.root / "quarantine" / "unmapped_codes" / f"centre={centre_id}" / f"run={transform_run}"

    def unknown_extensions(self, centre_id: str, transform_run: str) -> Path:
        """The folder of a centre's list of extension URLs no view reads (`unknown_extensions.csv`)."""
        return self.root / "quarantine" / "unknown_extensions" / f"centre={centre_id}" / f"run={transform_run}"

    def profile(self, centre_id: str, profile_run: str) -> Path:
        """The folder of a centre's `ilp profile` report (profile.md, profile.json)."""
        return self.root / "profiles" / f"centre={centre_id}" / f"run={profile_run}"

    # expectations and analytics
    def validation(self, snapshot: Snapshot) -> Path:
        return self.root / "validation" / snapshot.name

    def reports(self, snapshot: Snapshot) -> Path:
        return self.root / "reports" / snapshot.name

    @property
    def releases(self) -> Path:
        """The centre's ledger of the protected outputs it released (`analytics.releases`); it never leaves."""
        return self.root / "reports" / "releases.json"

    def preview(self, snapshot: Snapshot) -> Path:
        """The analyses of a snapshot that failed validation: a preview, kept apart from the published reports."""
        return self.root / "reports" / "unpublished" / snapshot.name
