"""The published cohort: a pointer to the last snapshot that passed validation.

Snapshots are written under `cohort/snapshots/run=<id>/` and never change once validated; publication is the
atomic replacement of `cohort/published.json` (written to a temporary file, fsynced, renamed), so a reader sees
the previous publication or the new one, never a half-written or unvalidated table. The expectations stage
writes the pointer; readers (analytics, queries) only follow it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ilp.errors import ConfigError
from ilp.fileio import fsync_dir, write_json_atomically

POINTER = Path("cohort") / "published.json"
SNAPSHOTS = Path("cohort") / "snapshots"


def snapshots(root: Path) -> list[Path]:
    """Every written snapshot, oldest first (run ids sort by time)."""
    folder = Path(root) / SNAPSHOTS
    return sorted(p for p in folder.glob("run=*") if p.is_dir()) if folder.is_dir() else []


def latest_snapshot(root: Path) -> Path:
    found = snapshots(root)
    if not found:
        raise ConfigError(f"no cohort snapshot under {Path(root) / SNAPSHOTS}: run the transform first")
    return found[-1]


def read_pointer(root: Path) -> dict[str, Any] | None:
    """The current publication record, or None when nothing was published yet."""
    path = Path(root) / POINTER
    if not path.exists():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8")))


def published_snapshot(root: Path) -> Path:
    """The folder of the published snapshot; a clear error when there is none."""
    pointer = read_pointer(root)
    if pointer is None:
        raise ConfigError(f"nothing is published under {Path(root) / 'cohort'}: run validation first")
    return Path(root) / "cohort" / pointer["snapshot"]


def publish(root: Path, snapshot: Path, validation: Path, details: dict[str, Any]) -> dict[str, Any]:
    """Point readers at `snapshot` (which has passed validation); the pointer is the last thing written."""
    root = Path(root)
    record = {"snapshot": str(Path(snapshot).relative_to(root / "cohort")), "run_id": Path(snapshot).name[4:],
              "validation": str(Path(validation).relative_to(root)),
              "published_at": datetime.now(UTC).isoformat(timespec="seconds"), **details}
    write_json_atomically(root / POINTER, record)
    fsync_dir((root / POINTER).parent)
    return record
