"""Secrets stay secret through whole runs that used them. The demo's servers ask for SMART Backend Services (a
signed JWT), an OAuth2 client secret and HTTP basic credentials; every file the demo run and a later `ilp run
--debug` wrote (landing, manifests, state, quarantine, snapshots, Data Docs, reports) and everything they printed
is searched for every secret they used, including the access tokens the servers handed out. There is no
default pseudonymisation key, and one centre cannot compute another's pseudonyms unless the consortium links."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from connectors import FilesSettings, FilesSource, LandingZone, ingest
from connectors.progress import LogProgress
from demo.synth.fhir import NATIONAL_ID_SYSTEM
from foundation.errors import ConfigError
from foundation.secrets import Secret
from foundation.zones import Snapshot
from ilp.cli import app
from ilp.demo import DemoResult
from tests.conftest import read_ndjson
from transforms.pipeline import CentreSettings, TransformOptions, transform
from transforms.pseudonym import Linkage, pseudonym

Demo = tuple[DemoResult, str]


def _secrets(demo: DemoResult) -> dict[str, str]:
    """What must never appear outside the secrets folder: each secret file's value (each line of a PEM body),
    basic credentials as they travel, and every access token issued so far."""
    found: dict[str, str] = {}
    for path in sorted((demo.config.parent / "secrets").iterdir()):
        text = path.read_text(encoding="utf-8").strip()
        lines = [line for line in text.splitlines() if not line.startswith("-----")] if "PRIVATE KEY" in text else [
            text]
        found.update({f"{path.name} #{n}": line for n, line in enumerate(lines)})
        if path.name.endswith("-password"):
            found[f"{path.name} as basic auth"] = base64.b64encode(f"ilp-demo:{text}".encode()).decode()
    for centre, server in demo.servers.items():
        found.update({f"{centre} access token {n}": t for n, t in enumerate(server.stats()["tokensIssued"])})
    return found


def _readable(path: Path) -> bytes:
    """A file's bytes, and for Parquet its values as text too (pages are compressed)."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        data += str(pq.read_table(path).to_pylist()).encode()
    return data


def _leaks(root: Path, secrets: dict[str, str], skip: Path | None = None) -> list[str]:
    leaks = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and (skip is None or skip not in p.parents)):
        data = _readable(path)
        leaks += [f"{path.relative_to(root)}: {name}" for name, value in secrets.items() if value.encode() in data]
    return leaks


@pytest.fixture(scope="module")
def debug_run(demo: Demo) -> str:
    """`ilp run --debug` on the demo's configuration after the demo: every server asked for credentials again."""
    result, _ = demo
    done = subprocess.run([sys.executable, "-m", "ilp", "run", "--config", str(result.config), "--debug"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_the_run_used_every_kind_of_secret_and_the_search_finds_them_where_they_are(demo: Demo,
                                                                                    debug_run: str) -> None:
    result, _ = demo
    secrets = _secrets(result)
    assert {name.split(" ")[0] for name in secrets} >= {"consortium.key", "aurora-client.pem", "aurora",
                                                        "borealis-client-secret", "borealis", "cascade-password"}
    assert all(len(value) >= 16 for value in secrets.values())
    stored = {n: v for n, v in secrets.items() if "access token" not in n and "basic auth" not in n}
    assert len(_leaks(result.config.parent / "secrets", stored)) == len(stored)  # the search itself works


def test_no_output_and_no_log_line_holds_a_secret(demo: Demo, debug_run: str) -> None:
    result, printed = demo
    secrets = _secrets(result)
    folder = result.config.parent
    assert _leaks(folder, secrets, skip=folder / "secrets") == []
    for name, value in secrets.items():
        assert value not in printed and value not in debug_run, name
    written = {p.relative_to(folder).parts[:2] for p in folder.rglob("*") if p.is_file()}
    assert {("zones", "landing"), ("zones", "quarantine"), ("zones", "cohort"), ("zones", "reports")} <= written


def test_pseudonymisation_has_no_default_key(tmp_path: Path, spark: SparkSession) -> None:
    refused = CliRunner().invoke(app, ["transform", "--root", str(tmp_path), "--centre", "aurora"]).exception
    assert isinstance(refused, ConfigError) and refused.exit_code == 2
    assert "centre's secret is required" in str(refused) and "no default key" in str(refused)
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        transform(spark, tmp_path, [CentreSettings("aurora")], Secret("short-secret"), "weak")
    own = Secret("the-centre-s-own-secret-0123")
    with pytest.raises(ConfigError, match="linkage secret must differ from the centre's own"):
        transform(spark, tmp_path, [CentreSettings("aurora")], own, "shared",
                  TransformOptions(Linkage("urn:oid:1.2.3", Secret(own.reveal()))))
    assert list(tmp_path.iterdir()) == []


def _two_centres_with_the_same_people(folder: Path, root: Path) -> dict[str, dict[str, str | None]]:
    """Aurora's export landed as `north` and again as `south` (the same people, national numbers and resource ids:
    everything an attacker at one centre could know of the other), with three of south's patients lacking their
    national number. Returns, per centre, each patient's resource id -> national identity (or None)."""
    people: dict[str, dict[str, str | None]] = {}
    for centre in ("north", "south"):
        export = root / "exports" / centre
        shutil.copytree(folder / "fhir", export)
        patients = read_ndjson(export / "Patient.ndjson")
        for patient in patients[:3] if centre == "south" else []:
            patient["identifier"] = [i for i in patient["identifier"] if i.get("system") != NATIONAL_ID_SYSTEM]
        (export / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
        people[centre] = {p["id"]: next((f"{i['system']}|{i['value']}" for i in p["identifier"]
                                         if i.get("system") == NATIONAL_ID_SYSTEM), None) for p in patients}
        with FilesSource(FilesSettings(folder=export)) as source:
            ingest(source, LandingZone(root, centre), progress=LogProgress())
    return people


def _keys(spark: SparkSession, snapshot: Snapshot) -> dict[str, set[str]]:
    rows = spark.read.parquet(str(snapshot.table("patients"))).select("centre_id", "patient_id").collect()
    return {c: {r["patient_id"] for r in rows if r["centre_id"] == c} for c in ("north", "south")}


def test_a_centre_cannot_compute_another_centre_s_pseudonyms_unless_linked(
        spark: SparkSession, demo_consortium: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """The attacker is north: it holds its own secret and every identifier south's export has (national numbers,
    resource ids). By default it computes none of south's keys, and the same people have other keys at each
    centre; even south's own secret with the national numbers gives nothing without the resource ids. Linkage
    (opted in) gives one key per person, and whoever holds the linkage secret computes it: the documented cost.
    Before per-centre keys, one consortium secret keyed everyone by national number: every key came back."""
    people = _two_centres_with_the_same_people(demo_consortium[0] / "aurora", tmp_path)
    settings = [CentreSettings("north"), CentreSettings("south")]
    north_secret, south_secret = Secret("north-centre-own-secret-0123"), Secret("south-centre-own-secret-0123")
    linkage = Linkage(NATIONAL_ID_SYSTEM, Secret("consortium-linkage-secret-0123"))

    report = transform(spark, tmp_path, settings, south_secret, "own", TransformOptions())["south"]
    keys = _keys(spark, report.snapshot)
    assert len(keys["north"]) == len(keys["south"]) == len(people["south"]) and not keys["north"] & keys["south"]
    known = {f"{centre}|Patient/{i}" for centre in people for i in people[centre]}
    known |= {n for ids in people.values() for n in ids.values() if n} | set(people["south"])
    for secret in (north_secret, linkage.secret):
        assert not {pseudonym(secret, k) for k in known} & keys["south"]
    assert not {pseudonym(south_secret, n) for n in people["south"].values() if n} & keys["south"]

    report = transform(spark, tmp_path, settings, south_secret, "linked", TransformOptions(linkage))["south"]
    keys = _keys(spark, report.snapshot)
    linked = {pseudonym(linkage.secret, n) for n in people["south"].values() if n}
    assert len(linked) == len(people["south"]) - 3 and linked <= keys["north"] & keys["south"]
    unlinked = keys["south"] - linked  # the three without a national number keep south's own keys
    assert unlinked == {pseudonym(south_secret, f"south|Patient/{i}") for i, n in people["south"].items() if not n}
    assert not {pseudonym(north_secret, k) for k in known} & unlinked
