"""`ilp status`: per centre, what the last runs did and what is published, read from the zones' own records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ilp.config import ConsortiumConfig
from ilp.locks import lock_path
from ilp.publication import read_pointer


def _json(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None


def status(config: ConsortiumConfig) -> dict[str, Any]:
    root = config.root
    pointer = read_pointer(root)
    validation = _json(root / pointer["validation"] / "summary.json") if pointer else None
    centres = {}
    for centre in config.ids:
        runs = sorted((root / "landing" / f"centre={centre}").glob("run=*"))
        manifest = _json(runs[-1] / "manifest.json") if runs else None
        state = _json(root / "resources" / f"centre={centre}" / "current.json")
        lock = _json(lock_path(root, centre))
        centres[centre] = {
            "last_landing_run": runs[-1].name.removeprefix("run=") if runs else None,
            "last_landing_finished": (manifest or {}).get("finished_at"),
            "last_landing_resources": sum(f["count"] for n, f in (manifest or {}).get("files", {}).items()
                                          if n[:1].isupper()) if manifest else None,
            "landing_runs": len(runs),
            "watermarks": _json(root / "state" / f"centre={centre}" / "watermarks.json") or {},
            "current_resources": {t: c["current"] + c.get("previous_kept", 0) for t, c in
                                  (state or {}).get("counts", {}).items()} if state else {},
            "merged_runs": len((state or {}).get("runs", [])),
            "published": bool(pointer and centre in pointer.get("centres", [])),
            "running": f"pid {lock.get('pid')} on {lock.get('host')} since {lock.get('started')}" if lock else None,
        }
    return {"root": str(root), "published": pointer, "last_validation": {
        k: validation[k] for k in ("passed", "evaluated", "critical_failures", "warnings", "data_docs")}
        if validation else None, "centres": centres}
