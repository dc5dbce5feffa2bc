"""Files: a folder holding a bulk export done elsewhere (NDJSON, gzipped or not) or FHIR Bundles (JSON).

Every file below the folder is read in name order; a `.json` file is a Bundle (its entries' resources land) or a
single resource; `.ndjson` and `.ndjson.gz` files are one resource per line. What cannot land is rejected with
the file, the line (or entry) and the reason. A killed run resumes at the first file not yet landed.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from connectors import jsonio
from connectors.base import Source
from connectors.landing import LandingRun, StreamProgress
from connectors.ndjson import Unreadable, land_items, parse_lines
from connectors.progress import PullProgress
from connectors.settings import FilesSettings
from foundation.errors import ConfigError
from foundation.model.resources import RESOURCE_TYPES

FILES = "_files"
SUFFIXES = (".ndjson", ".ndjson.gz", ".json")


class FilesSource(Source):
    kind = "files"

    def __init__(self, settings: FilesSettings, resource_types: tuple[str, ...] = RESOURCE_TYPES) -> None:
        if not settings.folder.is_dir():
            raise ConfigError(f"files source {settings.folder} is not a folder: set the source's folder to where "
                              "the centre's NDJSON or Bundle files are (relative paths are from the configuration)")
        super().__init__(resource_types)
        self.settings = settings
        self.paths = sorted(p for p in settings.folder.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))

    def fingerprint(self) -> dict[str, Any]:
        listing = [[str(p.relative_to(self.settings.folder)), p.stat().st_size, p.stat().st_mtime_ns]
                   for p in self.paths]
        return {"kind": self.kind, "folder": str(self.settings.folder.resolve()), "files": listing,
                "types": list(self.resource_types)}

    def pull(self, run: LandingRun, progress: PullProgress) -> dict[str, Any]:
        state = run.progress.setdefault(FILES, StreamProgress()).state
        done = state.setdefault("done", [])
        for path in self.paths:
            name = str(path.relative_to(self.settings.folder))
            if name in done:
                continue
            counts = land_items(run, self._counted(self._items(path), state), name, self.resource_types)
            progress.advance("files", sum(counts.values()), note=name)
            done.append(name)
            run.checkpoint()
        for resource_type in self.resource_types:
            run.progress[resource_type].done = True
        return {"source": {"kind": self.kind, "folder": str(self.settings.folder.resolve()),
                           "files": len(self.paths), "items": state.get("items", 0)}}

    @staticmethod
    def _counted(items: Iterable[tuple[int, Any, str]], state: dict[str, Any]) -> Iterator[tuple[int, Any, str]]:
        """Count every item read (lines, Bundle entries), so the manifest can show they all landed somewhere."""
        for item in items:
            state["items"] = state.get("items", 0) + 1
            yield item

    def _items(self, path: Path) -> Iterable[tuple[int, Any, str]]:
        if path.name.endswith(".json"):
            return _bundle_items(path)
        if path.name.endswith(".gz"):
            return _gzip_items(path)
        return parse_lines(_read_lines(open, path))


def _read_lines(opener: Any, path: Path) -> Iterator[str]:
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        yield from handle


def _gzip_items(path: Path) -> Iterator[tuple[int, Any, str]]:
    """The lines of a gzipped NDJSON file; a file cut short or corrupt keeps the lines before the damage and
    rejects the rest as one unreadable item (a partial last line is rejected as not JSON)."""
    number = 0
    try:
        for number, item, raw in parse_lines(_read_lines(gzip.open, path)):
            yield number, item, raw
    except (EOFError, OSError, zlib.error) as error:
        yield number + 1, Unreadable(f"truncated or corrupt gzip after line {number}: {error}"), ""


def _bundle_items(path: Path) -> Iterator[tuple[int, Any, str]]:
    """A Bundle's entry resources (numbered by entry), or the file's single resource."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        document = jsonio.loads(text)
    except ValueError:
        yield 1, None, text[:100_000]
        return
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        for number, entry in enumerate(document.get("entry") or [], start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else entry
            yield number, resource if resource is not None else {}, json.dumps(entry)[:100_000]
    else:
        yield 1, document, text[:100_000]
