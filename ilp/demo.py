"""The demo: the built-in consortium behind real FHIR servers, run through every stage by `ilp run`.

Each demo centre gets its own local FHIR server loaded with its synthetic data in its own dialect; the demo writes
a consortium configuration naming them (REST search for the first two centres, Bulk Data $export for the third)
and runs the whole consortium with it, exactly as a scheduled job would. Each server asks for credentials the
way hospitals do (SMART Backend Services with a signed JWT, an OAuth2 client secret, HTTP basic); the demo's
secrets are random, kept in its `secrets/` folder, and the configuration names only where they live.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from demo import synth
from demo.fhir_server import FhirTestServer
from foundation.errors import ConfigError
from ilp.config import load_config
from ilp.run import RunOutcome, run_consortium

DEMO_AUTH = ("smart-backend", "client-credentials", "basic")  # what each demo centre's server asks for, in turn


@dataclass(frozen=True)
class DemoResult:
    synthetic: Path
    config: Path
    outcome: RunOutcome
    seconds: float
    servers: dict[str, FhirTestServer]


def _demo_secret(out: Path, name: str, make: Callable[[], str]) -> Path:
    """A secret of the demo's, made once and kept in its `secrets/` folder (never a value built into the code)."""
    path = out / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make() + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path


def _private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _require_credentials(server: FhirTestServer, kind: str, out: Path, centre_id: str) -> str:
    """Make the centre's server ask for credentials of this kind; return the `auth` table of its configuration."""
    if kind == "smart-backend":
        path = _demo_secret(out, f"{centre_id}-client.pem", _private_key_pem)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigError(f"{path} is not an RSA private key: delete it and the demo makes a new one")
        jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "demo-key", "alg": "RS384", "use": "sig"}
        server.configure(auth={"mode": "oauth", "clients": [{"clientId": "ilp-demo", "jwks": {"keys": [jwk]}}]})
        return (f'{{ kind = "smart-backend", client_id = "ilp-demo", key_id = "demo-key", '
                f'private_key = {{ file = "secrets/{path.name}" }} }}')
    if kind == "client-credentials":
        path = _demo_secret(out, f"{centre_id}-client-secret", lambda: secrets.token_urlsafe(24))
        server.configure(auth={"mode": "oauth", "clients": [{"clientId": "ilp-demo", "secret": _read(path)}]})
        return (f'{{ kind = "client-credentials", client_id = "ilp-demo", '
                f'client_secret = {{ file = "secrets/{path.name}" }} }}')
    path = _demo_secret(out, f"{centre_id}-password", lambda: secrets.token_urlsafe(18))
    server.configure(auth={"mode": "basic", "username": "ilp-demo", "password": _read(path)})
    return f'{{ kind = "basic", username = "ilp-demo", password = {{ file = "secrets/{path.name}" }} }}'


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()


def run_demo(out: Path, echo: Callable[[str], None] = print, keep_servers: ExitStack | None = None) -> DemoResult:
    """Generate, serve, configure and run the demo consortium. The servers stop at the end, unless `keep_servers`
    is given: then they stop when that stack closes (tests run the consortium again against them)."""
    started = time.perf_counter()
    out = out.resolve()
    description = synth.generate(synth.DEMO_CONSORTIUM, synth.DEMO_SEED, out / "synthetic")
    echo(f"synthetic consortium: {out / 'synthetic'} (seed {description['seed']})")
    _demo_secret(out, "consortium.key", lambda: secrets.token_hex(32))
    with ExitStack() as local:
        servers = keep_servers if keep_servers is not None else local
        centres, handles = [], {}
        for n, centre in enumerate(synth.DEMO_CONSORTIUM):
            server = handles[centre.centre_id] = servers.enter_context(FhirTestServer())
            loaded = server.load_centre(out / "synthetic" / centre.centre_id)
            auth = _require_credentials(server, DEMO_AUTH[n % len(DEMO_AUTH)], out, centre.centre_id)
            if n < 2:
                source = f'{{ kind = "rest", base_url = "{server.base}", auth = {auth} }}'
            else:
                server.configure(bulk={"pollsBeforeReady": 1, "retryAfter": 0})
                source = f'{{ kind = "bulk", base_url = "{server.base}", poll_interval_s = 0.2, auth = {auth} }}'
            # A centre with local codes publishes its ConceptMaps on its server; the run pulls them with its data.
            published = server.load_conceptmaps(out / "synthetic" / centre.centre_id)
            centres.append(f'[[centres]]\nid = "{centre.centre_id}"\nsource = {source}\n'
                           + ("conceptmaps_from_source = true\n" if published else ""))
            echo(f"{centre.centre_id:<10} {centre.dialect:<12} FHIR server {server.base} loaded with {loaded} "
                 f"resources, asks for {DEMO_AUTH[n % len(DEMO_AUTH)]} credentials")
        config_path = out / "consortium.toml"
        config_path.write_text(
            'name = "ILP demo consortium"\nroot = "zones"\nsecret = { file = "secrets/consortium.key" }\n\n'
            + "\n".join(centres), encoding="utf-8")
        outcome = run_consortium(load_config(config_path), echo=echo)
    return DemoResult(out / "synthetic", config_path, outcome, time.perf_counter() - started, handles)
