"""The project's views (where each canonical element lives in FHIR), with each centre's overrides.

One ViewDefinition per resource type (`defaults/*.json`: mCODE's conventions) names the
elements the canonical tables read, as FHIRPath. A centre whose data keeps an element elsewhere overrides that
column's path in its configuration (`[centres.views.procedure] ilp_level = "..."`); the table builders read the
columns, never the resources, so an override reaches every table that uses the element, and the centre's
ConceptMaps apply to whatever a coded column yields.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

from pyspark.sql import Column, DataFrame

from transforms.views.definition import Overrides, ViewDefinition, view_columns
from transforms.views.fhirpath import ViewError, extension_urls, parse

DEFAULTS = Path(__file__).parent / "defaults"
# A centre's overrides: view name -> column -> FHIRPath.
CentreOverrides = Mapping[str, Mapping[str, str]]


@cache
def default_views() -> dict[str, ViewDefinition]:
    """The shipped views by name."""
    views = [ViewDefinition.load(path) for path in sorted(DEFAULTS.glob("*.json"))]
    return {v.name: v for v in views}


def view_for(resource_type: str) -> ViewDefinition:
    for view in default_views().values():
        if view.resource == resource_type:
            return view
    raise ViewError(f"no view reads {resource_type} resources")


def check_overrides(overrides: CentreOverrides, where: str) -> None:
    """ViewError naming `where` (the configuration key), the view and the column for an override of a view or
    column that does not exist, or a path that is not FHIRPath. Whether it compiles against the read schema is
    checked when the transform plans (it needs Spark)."""
    views = default_views()
    for view_name, columns in overrides.items():
        if view_name not in views:
            raise ViewError(f"{where}: no view {view_name!r} (views: {', '.join(sorted(views))})")
        for column, path in columns.items():
            try:
                views[view_name].column(column)
                parse(path)
            except ViewError as error:
                raise ViewError(f"{where}.{view_name}.{column}: {error}") from None


class Catalogue:
    """The views with every centre's overrides, compiled into one plan per resource type."""

    def __init__(self, overrides: Mapping[str, CentreOverrides] | None = None) -> None:
        self.overrides = {centre: dict(views) for centre, views in (overrides or {}).items() if views}
        for centre, views in self.overrides.items():
            check_overrides(views, f"centre {centre}: views")

    def _per_column(self, view: ViewDefinition) -> Overrides:
        columns: dict[str, dict[str, str]] = {}
        for centre, views in self.overrides.items():
            for column, path in views.get(view.name, {}).items():
                columns.setdefault(column, {})[centre] = path
        return columns

    def columns(self, resources: DataFrame, resource_type: str) -> dict[str, Column]:
        """The type's view columns (with the overrides) as expressions over `resources`."""
        view = view_for(resource_type)
        return view_columns(resources, view, overrides=self._per_column(view))

    def extension_urls(self, centre_id: str) -> dict[str, set[str]]:
        """Resource type -> the extension URLs the centre's views read (to list the ones nothing reads)."""
        urls: dict[str, set[str]] = {}
        for view in default_views().values():
            paths = [c["path"] for c in (view.column(n) for n in view.columns())]
            paths += list(self.overrides.get(centre_id, {}).get(view.name, {}).values())
            urls[view.resource] = set().union(*(extension_urls(parse(path)) for path in paths))
        return urls
