"""Log output for people (plain lines on a terminal) or for schedulers (`--log-format json`: one JSON object per
line with time, level, logger and message). Stage progress goes through logging, so both see the same events."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
_format: LogFormat = "text"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("py4j", "httpx", "httpcore", "great_expectations", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
