"""Fast JSON for the pull's hot path (orjson), falling back to the standard library for what orjson refuses
(integers beyond 64 bits), so unusual but valid input is never rejected because of the parser."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError when it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps_line(item: Any) -> bytes:
    """Compact UTF-8 JSON plus a newline: one NDJSON line."""
    try:
        return orjson.dumps(item) + b"\n"
    except TypeError:
        return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
