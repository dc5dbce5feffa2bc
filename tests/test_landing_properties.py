"""Property: whatever mix of valid resources, repeats and broken lines a file holds, landing accounts for every line
(items read = landed + duplicates + rejected) and lands exactly the distinct versions of the valid resources."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress

TYPES = ("Patient", "Condition", "Procedure", "Observation", "MedicationAdministration")
REASONS = {"not valid JSON", "not a JSON object", "no resourceType", "resource has no id",
           "id is not a FHIR id (1 to 64 letters, digits, '-' or '.')"}

ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=8)
valid = st.builds(lambda t, i, v: {"resourceType": t, "id": i, "meta": {"versionId": v}},
                  st.sampled_from(TYPES), ids, st.sampled_from(["1", "2"]))
broken = st.one_of(
    st.builds(lambda r: {k: v for k, v in r.items() if k != "resourceType"}, valid),
    st.builds(lambda r: {k: v for k, v in r.items() if k != "id"}, valid),
    st.builds(lambda r: {**r, "id": ""}, valid),
    st.builds(lambda r, bad: {**r, "id": r["id"] + bad}, valid, st.sampled_from(["/../x", " ", "x" * 64, "é"])),
    st.builds(lambda r: {**r, "resourceType": 7}, valid),
    st.lists(st.integers(), max_size=3),
    st.integers(),
    st.text(alphabet="{}[]:,ab\"", min_size=1, max_size=12).map(lambda t: ("raw", t)),
)
lines = st.lists(st.one_of(valid, valid, broken), min_size=0, max_size=40)


def _line(item: Any) -> str:
    if isinstance(item, tuple):  # raw text, not necessarily JSON
        return item[1]
    return json.dumps(item)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines)
def test_every_line_is_landed_once_or_rejected_with_a_reason(items: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "export"
        folder.mkdir()
        written = [line for line in (_line(i) for i in items) if line.strip()]
        (folder / "mixed.ndjson").write_text("".join(f"{line}\n" for line in written), encoding="utf-8")
        with FilesSource(FilesSettings(folder=folder)) as source:
            run = ingest(source, LandingZone(Path(work), "prop"), progress=LogProgress())
        manifest = json.loads((run / "manifest.json").read_text())
        files = manifest["files"]
        landed = {t: [json.loads(x) for x in (run / f"{t}.ndjson").read_text().splitlines()] for t in TYPES
                  if (run / f"{t}.ndjson").exists()}
        rejects = [json.loads(x) for x in (run / "rejected.ndjson").read_text().splitlines()] \
            if (run / "rejected.ndjson").exists() else []
        assert manifest["source"]["items"] == len(written)
        assert sum(files[t]["count"] + files[t]["duplicates"] for t in landed) + len(rejects) == len(written)
        assert {r["reason"] for r in rejects} <= REASONS
        expected = {(i["resourceType"], i["id"], i["meta"]["versionId"]) for i in items
                    if isinstance(i, dict) and i.get("resourceType") in TYPES and isinstance(i.get("id"), str)
                    and re.fullmatch(r"[A-Za-z0-9.-]{1,64}", i["id"])}  # FHIR's id datatype
        got = [(t, r["id"], r["meta"]["versionId"]) for t, rows in landed.items() for r in rows]
        assert sorted(got) == sorted(expected)  # each distinct version once, nothing valid lost
