"""The published cohort: a pointer to the last snapshot that passed validation.

Snapshots are written under `cohort/snapshots/run=<id>/` and never change once validated; publication is the
atomic replacement of `cohort/published.json` (written to a temporary file, fsynced, renamed), so a reader sees
the previous publication or the new one, never a half-written or unvalidated table. The expectations stage
writes the pointer; readers (analytics, queries) only follow it.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from foundation.errors import ConfigError
from foundation.fileio import fsync_dir
from foundation.manifests import PublicationRecord
from foundation.zones import Snapshot, Zones


def latest_snapshot(root: Path) -> Snapshot:
    found = Zones(root).snapshots()
    if not found:
        raise ConfigError(f"no cohort snapshot under {Zones(root).snapshots_root}: run the transform first")
    return found[-1]


def read_pointer(root: Path) -> PublicationRecord | None:
    """The current publication record, or None when nothing was published yet."""
    return PublicationRecord.read_if_present(Zones(root).publication)


def published_snapshot(root: Path) -> Snapshot:
    """The published snapshot; a clear error when there is none."""
    zones = Zones(root)
    pointer = read_pointer(root)
    if pointer is None:
        raise ConfigError(f"nothing is published under {zones.cohort}: run validation first")
    return Snapshot(zones.cohort / pointer.snapshot)


def publish(root: Path, snapshot: Snapshot, validation: Path, evaluated: int, warnings: int) -> PublicationRecord:
    """Point readers at `snapshot` (which has passed validation); the pointer is the last thing written."""
    zones = Zones(root)
    record = PublicationRecord(
        snapshot=str(snapshot.folder.relative_to(zones.cohort)), run_id=snapshot.run_id,
        validation=str(Path(validation).relative_to(zones.root)),
        published_at=datetime.now(UTC).isoformat(timespec="seconds"), centres=snapshot.centres(),
        expectations_evaluated=evaluated, warnings=warnings)
    record.write(zones.publication)
    staged = zones.cohort / f".published-{os.getpid()}"
    staged.unlink(missing_ok=True)
    staged.symlink_to(Path(record.snapshot), target_is_directory=True)
    if zones.published.is_dir() and not zones.published.is_symlink():
        shutil.rmtree(zones.published)  # a copy of the zones that followed the link (cp -r): the pointer rules
    os.replace(staged, zones.published)  # readers of the link see the old snapshot or the new one, never none
    fsync_dir(zones.publication.parent)
    return record
