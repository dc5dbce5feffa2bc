"""Log output for people (plain lines on a terminal) or for schedulers (`--log-format json`: one JSON object per
line with time, level, logger, message and the fields of the `context` it was logged in: `centre`, `run`,
`step`). Stage progress goes through logging, so both see the same events."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal, ParamSpec, TypeVar

LogFormat = Literal["text", "json"]
_format: LogFormat = "text"
_context: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("log_context", default=())
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def context(**fields: str) -> Iterator[None]:
    """Fields every log line inside carries (JSON logs), added to those of the contexts around it: a scheduler's
    log collector can then select one centre's, run's or step's lines without parsing messages."""
    token = _context.set(tuple({**dict(_context.get()), **fields}.items()))
    try:
        yield
    finally:
        _context.reset(token)


def in_context(function: Callable[P, R]) -> Callable[P, R]:
    """`function` to run in another thread with the fields of the context it was handed over in."""
    captured = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(function, *args, **kwargs)
    return run


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                 **dict(_context.get())}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def interactive() -> bool:
    """Whether a person watches: text logs to a terminal. Progress bars only then; log lines otherwise."""
    return _format == "text" and sys.stderr.isatty()


def configure(log_format: LogFormat = "text", debug: bool = False) -> None:
    global _format
    _format = log_format
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s" if debug
                                               else "%(message)s"))
    if not debug:
        handler.addFilter(_quiet_libraries)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)


NOISY = ("py4j", "httpx", "httpcore", "great_expectations", "matplotlib")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Libraries' own info lines are not ours to show (GX sets one of its loggers to INFO when imported, so a
    level set here beforehand would not hold): only their warnings and errors pass, unless `--debug`."""
    return record.levelno >= logging.WARNING or not record.name.startswith(NOISY)
