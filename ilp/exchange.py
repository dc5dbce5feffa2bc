"""Federated rounds between the hub and a centre over a shared folder, for what no package can carry ahead of time:
the Cox model's Newton iterations, one request per iteration.

The hub writes each request as `requests/<n>.json` in the centre's folder and waits for `answers/<n>.json`; the
centre runs `ilp serve`, which answers each request from its published, validated cohort with aggregates
only (`analytics.federated.Site`) and logs every request it answered, so the centre has a record of what left.
Any way of sharing a folder carries them (a mounted share, a synchronised SFTP folder); files are written
atomically, so neither side reads half of one.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from analytics.federated import Site
from analytics.policy import Refused
from foundation.errors import SourceUnreachable
from foundation.fileio import write_json_atomically

log = logging.getLogger(__name__)
STOP = {"kind": "stop"}


def _number(path: Path) -> int:
    return int(path.stem)


class FolderTransport:
    """The hub's side: a request written to the centre's folder, and its answer waited for."""

    def __init__(self, folder: Path, timeout_s: float = 600.0, poll_s: float = 0.1) -> None:
        self.folder = Path(folder)
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        requests = self.folder / "requests"
        requests.mkdir(parents=True, exist_ok=True)
        number = max((_number(p) for p in requests.glob("*.json")), default=0) + 1
        write_json_atomically(requests / f"{number:06d}.json", request)
        answer_path = self.folder / "answers" / f"{number:06d}.json"
        deadline = time.monotonic() + self.timeout_s
        while not answer_path.exists():
            if time.monotonic() > deadline:
                raise SourceUnreachable(f"no answer to request {number} in {self.folder} within "
                                        f"{self.timeout_s:.0f} s: is `ilp serve` running at the centre, on this "
                                        "folder?")
            time.sleep(self.poll_s)
        answer: dict[str, Any] = json.loads(answer_path.read_text(encoding="utf-8"))
        if "refused" in answer:
            raise Refused(f"the centre at {self.folder} refused request {number}: {answer['refused']}")
        return answer


def serve(site: Site, folder: Path, idle_timeout_s: float | None = None, poll_s: float = 0.1) -> int:
    """The centre's side: answer every request in `folder` until a stop request (or `idle_timeout_s` without
    one); return how many were answered."""
    requests, answers = Path(folder) / "requests", Path(folder) / "answers"
    requests.mkdir(parents=True, exist_ok=True)
    answered, idle_since = 0, time.monotonic()
    while idle_timeout_s is None or time.monotonic() - idle_since < idle_timeout_s:
        pending = sorted(p for p in requests.glob("*.json") if not (answers / p.name).exists())
        if not pending:
            time.sleep(poll_s)
            continue
        for path in pending:
            request = json.loads(path.read_text(encoding="utf-8"))
            if request == STOP:
                write_json_atomically(answers / path.name, {"stopped": True})
                return answered
            try:
                answer = site.answer(request)
            except (ValueError, KeyError) as error:  # outside the allow-list or the policy: say why, answer nothing
                answer = {"refused": str(error)}
            write_json_atomically(answers / path.name, answer)
            asked = {k: v for k, v in request.items() if k != "beta"}
            if "refused" in answer:
                log.warning("refused request %s: %s: %s", path.stem, asked, answer["refused"])
            else:
                answered += 1
                log.info("answered request %s: %s", path.stem, asked)
        idle_since = time.monotonic()
    return answered
