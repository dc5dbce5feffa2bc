"""What the views could not read: codes that mean nothing, and extensions nothing reads.

A resource whose own code means nothing is quarantined, and its code listed; but a code inside it (a value, a
method, a component, an extension's value) that means nothing only leaves a column empty. So every coding any
`Coding` column of the views yields (overrides included) is checked against every canonical ValueSet and the
centre's ConceptMaps, and one that means nothing is listed with the view column it came from. A coding that
means nothing beside one that does (a display-only local code next to SNOMED) is listed too, but counted apart:
`resources_left_unmapped` counts the resources where no coding of that column meant anything.

Extensions are read only where a view names their URL; any other URL seen in a centre's data (on the resource
or its bodySite) is listed with its type and count, since a centre's own extension is the likeliest home of a
value the views miss.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from transforms.view import ResourceView
from transforms.views.catalogue import view_for

CODED_TYPES = ("Condition", "Procedure", "Observation", "MedicationAdministration")


def _component_codings(components: Column) -> Column:
    return F.flatten(F.transform(components, lambda c: F.concat(
        F.coalesce(c["code"]["coding"], F.array()), F.coalesce(c["valueCodeableConcept"]["coding"], F.array()))))


def element_codings(view: ResourceView) -> DataFrame:
    """(centre_id, resource_type, ref, element, codings, any_meaning) for each Coding column of each resource
    whose kind is known (a resource of unknown kind is reported by its code already)."""
    parts = []
    for resource_type in CODED_TYPES:
        definition = view_for(resource_type)
        coded = [n for n in definition.columns() if definition.column(n).get("type") == "Coding"]
        if resource_type == "Observation":
            coded.append("components")
        facts = view.facts(resource_type).where(F.col("kind").isNotNull())
        for column in coded:
            codings = _component_codings(F.col(column)) if column == "components" else F.col(column)
            parts.append(facts.select("centre_id", "resource_type", "ref",
                                      F.lit(f"{definition.name}.{column}").alias("element"),
                                      codings.alias("codings")))
    rows = reduce(DataFrame.unionByName, parts)
    return rows.select("*", F.exists("codings", view.lookup.meaningful).alias("any_meaning"))


def unmapped_element_codes(view: ResourceView) -> DataFrame:
    """(centre_id, resource_type, element, system, code, display, resources, resources_left_unmapped): every
    coding a view column yields that means nothing."""
    rows = element_codings(view)
    codings = rows.select("centre_id", "resource_type", "element", "ref", "any_meaning",
                          F.explode("codings").alias("c")).where(~view.lookup.meaningful(F.col("c")))
    return codings.groupBy("centre_id", "resource_type", "element", F.col("c.system").alias("system"),
                           F.col("c.code").alias("code")).agg(
        F.max(F.col("c.display")).alias("display"), F.countDistinct("ref").alias("resources"),
        F.countDistinct(F.when(~F.col("any_meaning"), F.col("ref"))).alias("resources_left_unmapped"))


def unknown_extensions(view: ResourceView) -> DataFrame:
    """(centre_id, resource_type, url, resources): extension URLs on resources or their bodySite that no view of
    the centre reads."""
    urls = F.concat(F.coalesce(F.col("r.extension.url"), F.array()),
                    F.flatten(F.transform(F.coalesce(F.col("r.bodySite"), F.array()),
                                          lambda s: F.coalesce(s["extension"]["url"], F.array()))))
    seen = (view.resources.where(F.col("impossible").isNull())
            .select("centre_id", "resource_type", "ref", F.explode(F.array_distinct(urls)).alias("url"))
            .groupBy("centre_id", "resource_type", "url").agg(F.count("*").alias("resources")))
    read = [(centre, resource_type, url) for centre in view.centres
            for resource_type, urls_read in view.catalogue.extension_urls(centre).items() for url in urls_read]
    if not read:
        return seen
    known = seen.sparkSession.createDataFrame(read, "centre_id string, resource_type string, url string")
    return seen.join(known, ["centre_id", "resource_type", "url"], "left_anti")
