"""Staging folders: where a stage writes before it moves the parts into place.

A crash leaves a staging folder that nothing reads, but that would hold its disk space forever. Each one is
therefore named here (`.staging-<name>`, so every one can be found) and created with its owner recorded beside
it (`.staging-<name>.owner`), and every new staging folder first removes those beside it whose owner was a
process on this host that is gone. A folder in use by a live run,
or by a run on another host, is never touched.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from foundation.fileio import write_json_atomically
from foundation.owner import is_gone, read_owner, this_process

log = logging.getLogger(__name__)
PREFIX = ".staging-"
OWNER = ".owner"


@contextmanager
def staging_folder(parent: Path, name: str) -> Iterator[Path]:
    """`parent/.staging-<name>` (absent, ready to be written) for the duration of the block; removed afterwards,
    whatever happens."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(parent)
    path = parent / f"{PREFIX}{name}"
    owner = path.with_name(path.name + OWNER)
    write_json_atomically(owner, this_process())
    shutil.rmtree(path, ignore_errors=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        owner.unlink(missing_ok=True)


def remove_abandoned(folder: Path) -> list[Path]:
    """Remove the staging folders in `folder` left by processes on this host that are gone; return them."""
    removed = []
    for owner in folder.glob(f"{PREFIX}*{OWNER}"):
        holder = read_owner(owner)
        if is_gone(holder):
            staged = owner.with_name(owner.name.removesuffix(OWNER))
            log.warning("removing %s, left by pid %s (started %s), which is gone", staged, holder.get("pid"),
                        holder.get("started"))
            shutil.rmtree(staged, ignore_errors=True)
            owner.unlink(missing_ok=True)
            removed.append(staged)
    return removed
