"""The demo: the built-in consortium behind real FHIR servers, run through every stage by `ilp run`.

Each demo centre gets its own local FHIR server loaded with its synthetic data in its own dialect; the demo writes
a consortium configuration naming them (REST search for the first two centres, Bulk Data $export for the third)
and runs the whole consortium with it, exactly as a scheduled job would.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ilp import synth
from ilp.config import load_config
from ilp.fhir_server import FhirTestServer
from ilp.run import RunOutcome, run_consortium
from ilp.synth.fhir import NATIONAL_ID_SYSTEM


@dataclass(frozen=True)
class DemoResult:
    synthetic: Path
    config: Path
    outcome: RunOutcome
    seconds: float
    servers: dict[str, FhirTestServer]


def demo_secret_file(out: Path) -> Path:
    """The demo's consortium key: random, kept in the demo's output folder (never a key built into the code)."""
    path = out / "secrets" / "consortium.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path


def run_demo(out: Path, echo: Callable[[str], None] = print, keep_servers: ExitStack | None = None) -> DemoResult:
    """Generate, serve, configure and run the demo consortium. The servers stop at the end, unless `keep_servers`
    is given: then they stop when that stack closes (tests run the consortium again against them)."""
    started = time.perf_counter()
    out = out.resolve()
    description = synth.generate(synth.DEMO_CONSORTIUM, synth.DEMO_SEED, out / "synthetic")
    echo(f"synthetic consortium: {out / 'synthetic'} (seed {description['seed']})")
    demo_secret_file(out)
    with ExitStack() as local:
        servers = keep_servers if keep_servers is not None else local
        centres, handles = [], {}
        for n, centre in enumerate(synth.DEMO_CONSORTIUM):
            server = handles[centre.centre_id] = servers.enter_context(FhirTestServer())
            loaded = server.load_centre(out / "synthetic" / centre.centre_id)
            if n < 2:
                source = f'{{ kind = "rest", base_url = "{server.base}" }}'
            else:
                server.configure(bulk={"pollsBeforeReady": 1, "retryAfter": 0})
                source = f'{{ kind = "bulk", base_url = "{server.base}", poll_interval_s = 0.2 }}'
            # A centre with local codes publishes its ConceptMaps on its server; the run pulls them with its data.
            published = server.load_conceptmaps(out / "synthetic" / centre.centre_id)
            centres.append(f'[[centres]]\nid = "{centre.centre_id}"\nsource = {source}\n'
                           + ("conceptmaps_from_source = true\n" if published else ""))
            echo(f"{centre.centre_id:<10} {centre.dialect:<12} FHIR server {server.base} loaded with {loaded} "
                 f"resources")
        config_path = out / "consortium.toml"
        config_path.write_text(
            f'name = "ILP demo consortium"\nroot = "zones"\nsecret = {{ file = "secrets/consortium.key" }}\n'
            f'identifier_system = "{NATIONAL_ID_SYSTEM}"\n\n' + "\n".join(centres), encoding="utf-8")
        outcome = run_consortium(load_config(config_path), echo=echo)
    return DemoResult(out / "synthetic", config_path, outcome, time.perf_counter() - started, handles)
