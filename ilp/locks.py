"""One run per centre at a time: a lock file under the centre's state folder, with who holds it.

The lock is created with O_EXCL and holds the owner's host, pid and start time. A second run refuses with
`RunLocked` (exit code 7) naming the holder. A lock left by a killed run (same host, process gone) is stale:
it is taken over, with a warning. Locks on another host are never broken automatically (the message says which
file to remove once that run is known dead).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from foundation.errors import RunLocked
from foundation.owner import is_gone, read_owner, this_process
from foundation.zones import Zones

log = logging.getLogger(__name__)


@contextmanager
def centre_lock(root: Path, centre_id: str) -> Iterator[None]:
    path = Zones(root).lock(centre_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = this_process()
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_owner(path)
            if is_gone(holder):
                log.warning("centre %s: taking over a stale lock left by pid %s (started %s), which is gone",
                            centre_id, holder.get("pid"), holder.get("started"))
                path.unlink(missing_ok=True)
                continue
            raise RunLocked(f"centre {centre_id} is already being run by pid {holder.get('pid')} on "
                            f"{holder.get('host')} since {holder.get('started')}; if that run is dead, remove "
                            f"{path}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def centre_locks(root: Path, centre_ids: list[str]) -> Iterator[None]:
    """Every named centre's lock, taken in a fixed order (so two runs cannot deadlock)."""
    with ExitStack() as stack:
        for centre_id in sorted(centre_ids):
            stack.enter_context(centre_lock(root, centre_id))
        yield
