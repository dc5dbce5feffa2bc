"""`ilp demo` runs the main job on the demo consortium as far as the stages go."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ilp.cli import app


def test_demo_serves_each_centre_and_lands_every_resource(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    description = json.loads((tmp_path / "synthetic" / "consortium.json").read_text())
    for centre in description["centres"]:
        (run,) = (tmp_path / "zones" / "landing" / f"centre={centre['centre_id']}").glob("run=*")
        files = json.loads((run / "manifest.json").read_text())["files"]
        assert {t: files[t]["count"] for t in centre["resources"]} == centre["resources"]
    assert "Bulk $export landed 1254" in result.output and "REST search landed 816" in result.output
