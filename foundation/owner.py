"""Who owns a lock or a staging folder: host, pid and start time.

Recorded so a later run can tell what a killed process left behind (same host, process gone) from what a live
run is using. Nothing on another host is ever judged dead: its process cannot be seen from here.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": datetime.now(UTC).isoformat()}


def read_owner(path: Path) -> dict[str, Any]:
    """The owner recorded in `path`, or {} when it is unreadable (being written, or damaged)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def is_gone(owner: dict[str, Any]) -> bool:
    """Whether the owner was a process on this host that no longer runs."""
    pid = owner.get("pid")
    if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
