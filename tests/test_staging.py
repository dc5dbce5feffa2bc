"""Staging folders left by killed processes are removed; those of live runs, or of another host, are not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from foundation.owner import this_process
from foundation.staging import remove_abandoned, staging_folder


def _left(folder: Path, name: str, owner: dict[str, object]) -> Path:
    staged = folder / name
    (staged / "part=1").mkdir(parents=True)
    (staged / "part=1" / "data.parquet").write_bytes(b"half written")
    (folder / f"{name}.owner").write_text(json.dumps(owner))
    return staged


def test_only_what_a_gone_process_on_this_host_left_is_removed(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    me = this_process()
    killed = _left(tmp_path, ".staging-v=1", {**me, "pid": finished.pid})
    live = _left(tmp_path, ".staging-v=2", me)
    remote = _left(tmp_path, ".staging-v=3", {**me, "host": "another-host", "pid": finished.pid})
    unowned = tmp_path / ".staging-v=4"  # from before owners were recorded: nobody can say it is abandoned
    unowned.mkdir()
    with staging_folder(tmp_path, "v=5") as staging:
        assert staging == tmp_path / ".staging-v=5"
        assert not staging.exists() and (tmp_path / ".staging-v=5.owner").exists()
        assert json.loads((tmp_path / ".staging-v=5.owner").read_text())["pid"] == os.getpid()
        staging.mkdir()
    assert not killed.exists() and not (tmp_path / ".staging-v=1.owner").exists()
    assert live.exists() and remote.exists() and unowned.exists()
    assert not staging.exists() and not (tmp_path / ".staging-v=5.owner").exists()
    assert remove_abandoned(tmp_path) == []
