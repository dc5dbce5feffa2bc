"""`ilp status`: per centre, what the last runs did and what is published, read from the zones' own records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foundation.manifests import StatePointer, ValidationSummary
from foundation.publication import read_pointer
from foundation.zones import VALIDATION_SUMMARY, Zones
from ilp.config import ConsortiumConfig


def _json(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


def status(config: ConsortiumConfig) -> dict[str, Any]:
    zones = Zones(config.root)
    pointer = read_pointer(zones.root)
    validation = (ValidationSummary.read_if_present(zones.root / pointer.validation / VALIDATION_SUMMARY)
                  if pointer else None)
    centres = {}
    for centre in config.ids:
        runs = zones.landing_runs(centre)
        manifest = Zones.landing_manifest(runs[-1]) if runs else None
        state = StatePointer.read_if_present(zones.current_pointer(centre))
        lock = _json(zones.lock(centre))
        pulling = _json(zones.checkpoint(centre))
        centres[centre] = {
            "last_landing_run": runs[-1].name.removeprefix("run=") if runs else None,
            "last_landing_finished": manifest.finished_at if manifest else None,
            "last_landing_resources": manifest.resources if manifest else None,
            "landing_runs": len(runs),
            "watermarks": _json(zones.watermarks(centre)) or {},
            "last_landing_deletions": (manifest.model_extra or {}).get("deletions") if manifest else None,
            "ids_reconciled": _json(zones.reconciliations(centre)) or {},
            # a pull that stopped: the next one resumes it, or sets it aside (`failures` says how it ended)
            "interrupted_pull": {"run": pulling["run_id"], "started": pulling["started_at"],
                                 "failures": pulling.get("failures", [])} if pulling else None,
            "abandoned_pulls": [str(p) for p in zones.abandoned_runs(centre)],
            "current_resources": {t: c["current"] + c.get("previous_kept", 0) for t, c in state.counts.items()}
            if state else {},
            "merged_runs": len(state.runs) if state else 0,
            "published": bool(pointer and centre in pointer.centres),
            "running": f"pid {lock.get('pid')} on {lock.get('host')} since {lock.get('started')}" if lock else None,
        }
    return {"root": str(zones.root), "published": pointer.model_dump() if pointer else None, "last_validation": {
        k: getattr(validation, k) for k in ("passed", "evaluated", "critical_failures", "warnings", "data_docs")}
        if validation else None, "centres": centres}
