"""Which connector a source's settings describe: the one place that maps a settings kind to its class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import Source
from connectors.bulk import BulkSource
from connectors.files import FilesSource
from connectors.rest import CohortSearch, RestSource
from connectors.settings import SOURCE_KINDS, RestSettings, SourceSettings
from foundation.model.resources import RESOURCE_TYPES

SOURCES: dict[str, Callable[[Any, tuple[str, ...]], Source]] = {
    source.kind: source for source in (RestSource, BulkSource, FilesSource)}
assert set(SOURCES) == set(SOURCE_KINDS), "every kind of source settings needs its Source class"


def open_source(settings: SourceSettings, resource_types: tuple[str, ...] = RESOURCE_TYPES,
                cohort: CohortSearch | None = None) -> Source:
    """The connector for `settings`, pulling `resource_types` (close it, or use it as a context manager). `cohort`:
    how a REST source with `cohort_only` finds the cohort's patients (other sources land everything they are
    given, and the transform keeps the cohort)."""
    if isinstance(settings, RestSettings):
        return RestSource(settings, resource_types, cohort=cohort)
    return SOURCES[settings.kind](settings, resource_types)
