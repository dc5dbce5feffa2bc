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

Both come from the narrow columns stored for every resource (`ResourceView.read_all`): the views' coded columns
and the extension URLs.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from foundation.model import RESOURCE_TYPES
from transforms.facts import stored_name
from transforms.view import ResourceView
from transforms.views.catalogue import view_for

# (element, system, code, display) of each coding a resource's Coding columns yield.
ELEMENT_CODINGS = "array<struct<element:string,system:string,code:string,display:string>>"


def _component_codings(components: Column) -> Column:
    return F.flatten(F.transform(F.coalesce(components, F.array()), lambda c: F.concat(
        F.coalesce(c["code"]["coding"], F.array()), F.coalesce(c["valueCodeableConcept"]["coding"], F.array()))))


def _tagged(codings: Column, element: str) -> Column:
    """(element, system, code, display) of each of `codings`."""
    return F.transform(F.coalesce(codings, F.array()), lambda c: F.struct(
        F.lit(element).alias("element"), c["system"].alias("system"), c["code"].alias("code"),
        c["display"].alias("display")))


def _element_codings() -> Column:
    """Over every resource read (`ResourceView.read_all`), per resource of known kind: (element, system, code,
    display) of every coding a Coding column of its type's view yields (what they mean is decided later, by a join:
    a literal map looked up per coding is a linear scan of its keys, for every coding of every resource). Explode
    it where it is computed: exploding it from a column of a projection below lets Spark infer a filter that
    computes it twice more (2 s instead of 1 at 20,000 patients)."""
    by_type = F.lit(None).cast(ELEMENT_CODINGS)
    for resource_type in RESOURCE_TYPES:
        definition = view_for(resource_type)
        coded = {n: F.col(stored_name(definition, n)) for n in definition.columns()
                 if definition.column(n).get("type") == "Coding"}
        if "components" in definition.columns():
            coded["components"] = _component_codings(F.col(stored_name(definition, "components")))
        if coded:
            tagged = F.concat(*[_tagged(codings, f"{definition.name}.{name}") for name, codings in coded.items()])
            by_type = F.when(F.col("resource_type") == resource_type, tagged).otherwise(by_type)
    return F.when(F.col("kind").isNotNull(), by_type)


def unmapped_element_codes(view: ResourceView) -> DataFrame:
    """(centre_id, resource_type, element, system, code, display, resources, resources_left_unmapped) of the codings
    of the view's resources that mean nothing.

    The distinct codes are few: they are matched first with what means something at each centre, and only the
    resources holding a code that means nothing are looked at again, with broadcast joins (no shuffle of every
    coding of every resource)."""
    spark = view.resources.sparkSession
    key = F.concat_ws("|", F.coalesce(F.col("c.system"), F.lit("")), F.coalesce(F.col("c.code"), F.lit("")))
    codings = view.read_all().select("centre_id", "resource_type", "id", F.explode(_element_codings()).alias("c")) \
        .select("*", key.alias("key"), F.col("c.element").alias("element"))
    known = spark.createDataFrame([(centre, k) for centre in view.centres for k in view.lookup.meaningful_keys(centre)],
                                  "centre_id string, key string")
    unmapped_keys = codings.select("centre_id", "key").distinct().join(F.broadcast(known), ["centre_id", "key"],
                                                                        "left_anti").collect()
    columns = ("centre_id string, resource_type string, element string, system string, code string, "
               "display string, resources long, resources_left_unmapped long")
    if not unmapped_keys:
        return spark.createDataFrame([], columns)
    hits = codings.join(F.broadcast(spark.createDataFrame(unmapped_keys, "centre_id string, key string")),
                        ["centre_id", "key"])
    holders = hits.select("centre_id", "resource_type", "id", "element").distinct()
    meaning = (codings.join(F.broadcast(holders), ["centre_id", "resource_type", "id", "element"])
               .join(F.broadcast(known.withColumn("means", F.lit(True))), ["centre_id", "key"], "left")
               .groupBy("centre_id", "resource_type", "id", "element")
               .agg(F.max(F.col("means").isNotNull()).alias("any_meaning")))
    return hits.join(meaning, ["centre_id", "resource_type", "id", "element"]).groupBy(
        "centre_id", "resource_type", "element", F.col("c.system").alias("system"), F.col("c.code").alias("code")).agg(
        F.max("c.display").alias("display"), F.countDistinct("id").alias("resources"),
        F.countDistinct(F.when(~F.col("any_meaning"), F.col("id"))).alias("resources_left_unmapped"))


def unknown_extensions(view: ResourceView) -> DataFrame:
    """(centre_id, resource_type, url, resources): extension URLs on the view's resources that no view of their
    centre reads."""
    seen = (view.read_all().select("centre_id", "resource_type", F.explode("extension_urls").alias("url"))
            .groupBy("centre_id", "resource_type", "url").agg(F.count("*").alias("resources")))
    read = [(centre, resource_type, url) for centre in view.centres
            for resource_type, urls_read in view.catalogue.extension_urls(centre).items() for url in urls_read]
    if not read:
        return seen
    known = seen.sparkSession.createDataFrame(read, "centre_id string, resource_type string, url string")
    return seen.join(F.broadcast(known), ["centre_id", "resource_type", "url"], "left_anti")
