"""Secrets stay secret through whole runs that used them. The demo's servers ask for SMART Backend Services (a
signed JWT), an OAuth2 client secret and HTTP basic credentials; every file the demo run and a later `ilp run
--debug` wrote (landing, manifests, state, quarantine, snapshots, Data Docs, reports) and everything they printed
is searched for every secret they used, including the access tokens the servers handed out. And there is no
default pseudonymisation key."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from foundation.errors import ConfigError
from foundation.secrets import Secret
from ilp.cli import app
from ilp.demo import DemoResult
from transforms.pipeline import CentreSettings, transform

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
    assert "consortium secret is required" in str(refused) and "no default key" in str(refused)
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        transform(spark, tmp_path, [CentreSettings("aurora")], Secret("short-secret"), "weak")
    assert list(tmp_path.iterdir()) == []
