"""Progress of a Spark stage (the transform's steps, the audit's suites): a bar on a terminal, log lines otherwise.

On a terminal a data engineer sees which step runs and what Spark is doing in it (its active stage's tasks,
polled from Spark's status tracker). Under cron, in CI or with `--log-format json` the same events are plain
log lines, one per finished step, so schedulers and log collectors read what people see.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from foundation import logs

log = logging.getLogger("ilp.progress")
POLL_S = 0.5


class Steps:
    """The steps of one stage: `with steps.step("merge"):` times a step, logs it and advances the bar."""

    def __init__(self, name: str, bars: Progress | None = None, task: TaskID | None = None,
                 spark: Any = None) -> None:
        self.name = name
        self.timings: dict[str, float] = {}
        self._bars, self._task, self._spark = bars, task, spark
        self._lock = threading.Lock()

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        started = time.perf_counter()
        stop = threading.Event()
        watcher = None
        if self._bars is not None:
            self._describe(label)
            watcher = threading.Thread(target=self._watch, args=(label, stop), daemon=True)
            watcher.start()
        try:
            yield
        finally:
            stop.set()
            if watcher is not None:
                watcher.join()
        self.done(label, time.perf_counter() - started)

    def done(self, label: str, seconds: float) -> None:
        """Record a step that was timed elsewhere (suites run side by side report as they end)."""
        with self._lock:
            self.timings[label] = seconds
            if self._bars is not None and self._task is not None:
                self._bars.advance(self._task)
        log.info("%s: %s in %.1f s", self.name, label, seconds)

    def _describe(self, label: str, spark_note: str = "") -> None:
        if self._bars is not None and self._task is not None:
            self._bars.update(self._task, description=f"{self.name}: {label}{spark_note}")

    def _watch(self, label: str, stop: threading.Event) -> None:
        """While a step runs, show the tasks of Spark's active stages next to its name."""
        while not stop.wait(POLL_S):
            note = spark_activity(self._spark) if self._spark is not None else ""
            self._describe(label, f" ({note})" if note else "")


def spark_activity(spark: Any) -> str:
    """What Spark is doing now, from its status tracker: tasks done of the active stages' tasks."""
    try:
        tracker = spark.sparkContext.statusTracker()
        infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
    except Exception:  # a session stopping under us: nothing to show, nothing to fail
        return ""
    infos = [i for i in infos if i is not None]
    if not infos:
        return ""
    done, total = sum(i.numCompletedTasks for i in infos), sum(i.numTasks for i in infos)
    return f"Spark: {done}/{total} tasks in {len(infos)} stage{'s' if len(infos) > 1 else ''}"


@contextmanager
def steps(name: str, total: int, spark: Any = None, console: Console | None = None) -> Iterator[Steps]:
    """The steps of a stage: a bar with Spark's activity where people watch (a terminal, text logs), log lines
    elsewhere. `console`: where to draw (tests give one that records)."""
    if console is None and not logs.interactive():
        yield Steps(name)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description:<70}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        yield Steps(name, bars, bars.add_task(name, total=total), spark)
