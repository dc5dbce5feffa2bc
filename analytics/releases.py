"""Differencing between releases: the output check statistical agencies run against their own earlier outputs.

Rounding protects one release. Two releases a patient apart do not need to pin a count to give that patient
away: whatever changed between them (a count crossing the edge of its band, a curve's step) is theirs. So each
release of protected outputs is recorded in a ledger that stays at the centre (`reports/releases.json`): per
centre, a fingerprint of each patient's rows. A new release is held back while, at some centre, the patients
added, removed or changed since an earlier release number from 1 to the policy's threshold - 1; it goes out once
enough have changed, or when nothing has (a rerun). Unprotected outputs are for the centre's own use and are
neither checked nor recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from analytics.cohort import CohortData
from analytics.policy import OutputPolicy
from foundation.fileio import write_json_atomically

Fingerprints = dict[str, dict[str, str]]  # centre -> patient key -> fingerprint of the patient's rows


def fingerprints(data: CohortData) -> Fingerprints:
    """Per centre, each patient's pseudonymised key and a hash of every row of theirs the analyses read (not the
    id of the run that wrote it: a transform rewrites a changed centre's rows, and only their content counts)."""
    rows: dict[tuple[str, str], list[str]] = {}
    for table in (data.cohort, data.toxicities):
        if table.empty:
            continue
        for record in table.drop(columns=["run_id"], errors="ignore").to_dict("records"):
            text = json.dumps(record, sort_keys=True, default=str)
            rows.setdefault((str(record["centre_id"]), str(record["patient_id"])), []).append(text)
    result: Fingerprints = {}
    for (centre, patient), texts in rows.items():
        digest = hashlib.sha256("\n".join(sorted(texts)).encode()).hexdigest()[:32]
        result.setdefault(centre, {})[hashlib.sha256(patient.encode()).hexdigest()[:32]] = digest
    return result


def changed(before: dict[str, str], after: dict[str, str]) -> int:
    """Patients added, removed, or whose rows differ."""
    return sum(before.get(k) != after.get(k) for k in before.keys() | after.keys())


@dataclass(frozen=True)
class Held:
    """Why a release is held back: the centre, the earlier release, and how many patients changed since."""

    centre: str
    release: str
    patients: int

    def __str__(self) -> str:
        return (f"held back: at {self.centre}, {self.patients} patient(s) changed since release {self.release}; "
                "a release that few patients apart gives theirs away, so it waits until the threshold have")


class ReleaseLedger:
    """The centre's record of what it released (`path`, a JSON file in its zones)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def releases(self) -> list[dict[str, object]]:
        if not self.path.is_file():
            return []
        loaded: list[dict[str, object]] = json.loads(self.path.read_text(encoding="utf-8"))
        return loaded

    def check(self, data: CohortData, policy: OutputPolicy) -> Held | None:
        """Why `data` may not be released yet under `policy`, or None."""
        if not policy.protect:
            return None
        now = fingerprints(data)
        for release in self.releases():
            earlier: Fingerprints = release["centres"]  # type: ignore[assignment]
            for centre in now:  # what this release says of each centre in it
                count = changed(earlier.get(centre, {}), now.get(centre, {}))
                if 0 < count < policy.threshold:
                    return Held(centre, str(release["name"]), count)
        return None

    def record(self, data: CohortData, name: str, policy: OutputPolicy) -> None:
        """Add a release (protected outputs only; a rerun of an identical release adds nothing)."""
        if not policy.protect:
            return
        now = fingerprints(data)
        releases = self.releases()
        if any(r["centres"] == now for r in releases):
            return
        releases.append({"name": name, "at": datetime.now(UTC).isoformat(), "centres": now})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.path, releases)
