"""Pinned npm packages the project runs or serves: the demo's FHIR server, the Data Docs' offline assets.

Each lives in a folder of the Python package with its `package.json` and `package-lock.json`. In a source
checkout `scripts/setup.sh` installs them in place. An installed copy of the project (a wheel, possibly
read-only) has only those two files; the first use then installs the locked packages with npm into a per-user
cache (`$ILP_CACHE_DIR`, default `~/.cache/ilp-cohort`), once per lock file, and uses them from there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from foundation.errors import ConfigError

MANIFESTS = ("package.json", "package-lock.json", ".npmrc")  # .npmrc where the folder has one


def _stamp(folder: Path) -> str:
    """The marker of a complete install of a lock file (the same name `scripts/setup.sh` writes)."""
    return ".installed-" + hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()[:16]


def installed(folder: Path) -> Path | None:
    """Where `folder`'s packages are installed (`<there>/node_modules`), without installing; None if nowhere."""
    stamp = _stamp(folder)
    for home in (folder, _cache(folder, stamp)):
        if (home / "node_modules" / stamp).exists():
            return home
    return None


def install(folder: Path) -> Path:
    """Where `folder`'s packages are installed, installing them into the cache first if they are nowhere yet."""
    home = installed(folder)
    if home is not None:
        return home
    home = _cache(folder, _stamp(folder))
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigError(f"{folder.name} needs its pinned npm packages, installed once with npm: install npm "
                          "(or run scripts/setup.sh in a source checkout), then run the command again")
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
    try:  # installed beside, renamed into place: a killed or concurrent install leaves nothing half-installed
        for name in MANIFESTS:
            if (folder / name).exists():
                shutil.copyfile(folder / name, staging / name)
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(staging)],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            tail = "\n  ".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise ConfigError(f"installing {folder.name}'s npm packages failed (npm ci in {staging}):\n  {tail}")
        (staging / "node_modules" / _stamp(folder)).touch()
        try:
            staging.rename(home)
        except OSError:  # another process installed it meanwhile
            if installed(folder) is None:
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _cache(folder: Path, stamp: str) -> Path:
    root = Path(os.environ.get("ILP_CACHE_DIR") or Path.home() / ".cache" / "ilp-cohort")
    return root / f"{folder.parent.name}-{folder.name}-{stamp.removeprefix('.installed-')}"
