"""Property: whatever hypothesis does to a valid patient record (keys dropped, any JSON value put anywhere,
copies under new ids, newer versions, stray lines), landing and the transform account for every resource. Nothing
stops the run, every quarantined resource has a known reason, and the counts reconcile at landing, merge and
tables, with the merge's count per type equal to what landed.

Each example is one centre holding a dozen mutated copies of the record (each copy's ids made its own), run
through one transform (about 35 s), so one example a run keeps the suite in its time budget; hypothesis draws new
records every run (no example database), so the runs together cover far more.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession

from tests.corpus.cases import IMPOSSIBLE, UNMAPPED, UNUSED, Case, Resource, ndjson
from tests.corpus.runner import Outcome, base_record, run_corpus

Consortium = tuple[Path, dict[str, Any]]
Mutation = tuple[Any, ...]
RECORDS = 12  # mutated copies of the record per example, in one centre
MERGE_REASONS = {"unparseable JSON, or no resourceType or id", "resourceType differs from its stream"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12),
                    st.sampled_from(["2019-02-30", "2099-01-01", "2019", "2019-13", "", "-1", "1e308", "mg", "%",
                                     "Patient/", "urn:uuid:0", "http://elsewhere.example/Patient/1"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["url", "value", "code", "system", "reference", "unit", "x"]),
                                        inner, max_size=3), max_leaves=6)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a resource (keys and list positions), leaves and branches alike."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        found += [p for key, item in value.items() for p in _paths(item, (*prefix, key))]
    elif isinstance(value, list):
        found += [p for n, item in enumerate(value) for p in _paths(item, (*prefix, n))]
    return found


@st.composite
def mutation(draw: st.DrawFn, record: list[Resource]) -> Mutation:
    n = draw(st.integers(0, len(record) - 1))
    kind = draw(st.sampled_from(["set", "set", "drop", "copy", "version", "line"]))
    if kind in ("set", "drop"):
        paths = [p for p in _paths(record[n]) if p != ("resourceType",)]
        return kind, n, draw(st.sampled_from(paths)), draw(values) if kind == "set" else None
    if kind == "copy":
        return kind, n, draw(st.from_regex(r"[A-Za-z0-9.-]{1,20}", fullmatch=True)), None
    if kind == "line":
        return kind, n, draw(st.text(max_size=40)), None
    return kind, n, None, None


def _at(resource: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        resource = resource[step]
    return resource


def own_copy(record: list[Resource], n: int) -> list[Resource]:
    """The record with every id, and every reference to one, suffixed with `-n`."""
    text = json.dumps(record)
    for resource in record:
        text = text.replace(f'"{resource["id"]}"', f'"{resource["id"]}-{n}"').replace(
            f'/{resource["id"]}"', f'/{resource["id"]}-{n}"')
    return list(json.loads(text))


def mutated(record: list[Resource], mutations: list[Mutation]) -> tuple[list[Any], bytes]:
    """The record's resources after the mutations, applied in order, and the stray lines they add."""
    resources: list[Any] = copy.deepcopy(record)
    lines = b""
    for kind, n, where, value in mutations:
        resource = resources[n]
        if kind == "set" and isinstance(_at(resource, where[:-1]), (dict, list)):
            _at(resource, where[:-1])[where[-1]] = value
        elif kind == "drop" and isinstance(_at(resource, where[:-1]), dict):
            del _at(resource, where[:-1])[where[-1]]
        elif kind == "copy":
            resources.append({**copy.deepcopy(resource), "id": where})
        elif kind == "version":
            meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
            resources.append({**copy.deepcopy(resource), "meta": {**meta, "versionId": "v2",
                                                                  "lastUpdated": "2026-01-01T00:00:00Z"}})
        elif kind == "line":
            lines += where.replace("\n", " ").encode() + b"\n"
    return resources, lines


def _where_lost(outcome: Outcome, landed: dict[str, int], merged: dict[str, dict[str, int]]) -> list[str]:
    problems = list(outcome.unreconciled)
    if outcome.error:
        problems.append(f"the run stopped: {outcome.error}")
    for resource_id, reason in outcome.quarantined.items():
        if not (reason in (UNMAPPED, UNUSED) or reason in MERGE_REASONS or reason.startswith(IMPOSSIBLE)
                or re.fullmatch(r"part of \w+/[A-Za-z0-9.-]+, which is quarantined", reason)):
            problems.append(f"{resource_id} quarantined for an unknown reason: {reason}")
    for resource_type, count in landed.items():
        if merged.get(resource_type, {}).get("in", 0) != count:
            problems.append(f"{resource_type}: {count} landed, merge read {merged.get(resource_type)}")
    return problems


@pytest.fixture(scope="module")
def record(demo_consortium: Consortium) -> list[Resource]:
    return base_record(demo_consortium[0] / "aurora")


@settings(max_examples=1, deadline=None, phases=[Phase.explicit, Phase.generate], database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_every_mutated_record_is_accounted_for(spark: SparkSession, record: list[Resource], data: st.DataObject
                                               ) -> None:
    plans = [data.draw(st.lists(mutation(record), min_size=1, max_size=5), label=f"record {n}")
             for n in range(RECORDS)]
    resources, lines = [], b""
    for n, plan in enumerate(plans):
        mutated_resources, stray = mutated(own_copy(record, n), plan)
        resources += mutated_resources
        lines += stray
    files = ndjson(resources)
    files["Observation.ndjson"] = files.get("Observation.ndjson", b"") + lines
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        outcome = run_corpus(spark, record, root, (Case("mutated", "mutated records", lambda _: files),))["mutated"]
        (run,) = (root / "landing" / "centre=mutated").glob("run=*")
        landed = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["files"]
        (manifest,) = root.rglob("manifest-mutated.json")
        merged = json.loads(manifest.read_text(encoding="utf-8"))["merge_counts"]
        assert _where_lost(outcome, {t: f["count"] for t, f in landed.items() if t[:1].isupper() and f["count"]},
                           merged) == []
