"""What a transform would change, known without starting Spark: landed versions the current state lacks.

An incremental pull often lands nothing new (or only versions at the watermark instant, which `_lastUpdated=ge`
fetches again). Counting genuinely new versions and deletions in the unmerged landing runs lets a scheduled run
with nothing new stop in seconds and leave every published byte as it was; such runs are then recorded as merged.
"""

from __future__ import annotations

from pathlib import Path

from transforms.current import CurrentState
from transforms.landed import TOMBSTONES, LandedRun, completed_runs, landed_items


def unmerged_runs(root: Path, centre_id: str) -> list[LandedRun]:
    merged = set(CurrentState(root, centre_id).merged_runs())
    return [r for r in completed_runs(root, centre_id) if r.run_id not in merged]


def pending_changes(root: Path, centre_id: str, resource_types: tuple[str, ...]) -> int:
    """Resource versions and deletions in unmerged runs that the current state does not already reflect."""
    runs = unmerged_runs(root, centre_id)
    if not runs:
        return 0
    known = CurrentState(root, centre_id).live_versions()
    changes = 0
    for run in runs:
        for resource_type in resource_types:
            changes += sum(1 for key in _keys(run.path(resource_type), resource_type) if key not in known)
        present = {(t, i) for t, i, _ in known}
        changes += sum(1 for t, i, _ in _keys(run.path(TOMBSTONES), None) if (t, i) in present)
    return changes


def record_unchanged(root: Path, centre_id: str) -> list[str]:
    """Mark the unmerged runs as merged (they changed nothing); return their ids."""
    state = CurrentState(root, centre_id)
    runs = [r.run_id for r in unmerged_runs(root, centre_id)]
    state.record_merged(runs)
    return runs


def _keys(path: Path, resource_type: str | None) -> list[tuple[str, str, str | None]]:
    """(type, id, lastUpdated) of each line; unparseable lines count as changes (the merge quarantines them)."""
    keys = []
    for _, item in landed_items(path):
        try:
            meta = item.get("meta") or {}
            keys.append((resource_type or item["resourceType"], item["id"], meta.get("lastUpdated")))
        except (KeyError, TypeError, AttributeError):  # not JSON (None), not an object, no id
            keys.append(("", "", "unparseable"))
    return keys
