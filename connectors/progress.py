"""Progress of a pull: a bar per resource type on a terminal, plain log lines otherwise (cron, CI, JSON logs)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from foundation import logs

log = logging.getLogger("connectors.progress")


class PullProgress(Protocol):
    def advance(self, stream: str, resources: int, total: int | None = None, note: str = "") -> None: ...

    def finish(self, stream: str) -> None: ...


class LogProgress:
    """One log line per page: what schedulers and log collectors want."""

    def advance(self, stream: str, resources: int, total: int | None = None, note: str = "") -> None:
        of = f" of {total}" if total is not None else ""
        log.info("%s: +%d resources%s%s", stream, resources, of, f" ({note})" if note else "")

    def finish(self, stream: str) -> None:
        log.info("%s: done", stream)


class CentreProgress:
    """Another progress with each stream named by its centre too (`borealis Observation`): a consortium's pulls
    share one log, and "Observation: +200 of 2733" thirteen times says not whose."""

    def __init__(self, inner: PullProgress, centre_id: str) -> None:
        self.inner, self.centre_id = inner, centre_id

    def advance(self, stream: str, resources: int, total: int | None = None, note: str = "") -> None:
        self.inner.advance(f"{self.centre_id} {stream}", resources, total, note)

    def finish(self, stream: str) -> None:
        self.inner.finish(f"{self.centre_id} {stream}")


class BarProgress:
    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def _task(self, stream: str) -> TaskID:
        with self.lock:
            if stream not in self.tasks:
                self.tasks[stream] = self.bars.add_task(stream, total=None)
            return self.tasks[stream]

    def advance(self, stream: str, resources: int, total: int | None = None, note: str = "") -> None:
        self.bars.update(self._task(stream), advance=resources, total=total,
                         description=f"{stream} {note}".strip())

    def finish(self, stream: str) -> None:
        task = self._task(stream)
        done = self.bars.tasks[task].completed
        self.bars.update(task, total=done, completed=done)


@contextmanager
def pull_progress(interactive: bool | None = None, console: Console | None = None) -> Iterator[PullProgress]:
    """Bars where a person watches (or `interactive`), log lines otherwise (cron, CI, `--log-format json`)."""
    if interactive if interactive is not None else logs.interactive():
        columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=False, console=console) as bars:
            yield BarProgress(bars)
    else:
        yield LogProgress()
