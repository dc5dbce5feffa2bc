"""Which connector a source's settings describe: the one place that maps a settings kind to its class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import Source
from connectors.bulk import BulkSource
from connectors.files import FilesSource
from connectors.rest import RestSource
from connectors.settings import SOURCE_KINDS, SourceSettings
from foundation.model.resources import RESOURCE_TYPES

SOURCES: dict[str, Callable[[Any, tuple[str, ...]], Source]] = {
    source.kind: source for source in (RestSource, BulkSource, FilesSource)}
assert set(SOURCES) == set(SOURCE_KINDS), "every kind of source settings needs its Source class"


def open_source(settings: SourceSettings, resource_types: tuple[str, ...] = RESOURCE_TYPES) -> Source:
    """The connector for `settings`, pulling `resource_types` (close it, or use it as a context manager)."""
    return SOURCES[settings.kind](settings, resource_types)
