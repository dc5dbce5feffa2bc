"""The built-in synthetic consortium: write it (`ilp synth`), or run every stage on it behind local FHIR servers
(`ilp demo`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from demo import synth
from ilp.commands.options import (
    DEMO_OUT,
)


def synth_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the consortium to.")] = DEMO_OUT / "synthetic",
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed, the same bytes.")] = synth.DEMO_SEED,
    patients: Annotated[int | None, typer.Option(
        "--patients", min=3, help="Total patients, split like the demo centres (default: 41/208/54).")] = None,
    centre: Annotated[list[str] | None, typer.Option(
        "--centre", help="Only this centre (repeatable); `dorado` (coded in its own extensions) is not a demo centre "
                         "and is written only when named.")] = None,
    bundle_patients: Annotated[int, typer.Option(
        "--bundle-patients", min=0, help="Patients per transaction Bundle; 0 writes no Bundles.")] = 50,
    population: Annotated[int, typer.Option(
        "--population", min=0, help="The hospital's other patients beside each centre's cohort (vital signs, "
                                    "laboratory results, other diagnoses, deaths): a whole-hospital export.")] = 0,
) -> None:
    """Write the synthetic demo consortium: FHIR per centre dialect, ConceptMaps and ground truth.

    Examples:

      ilp synth --out /tmp/consortium

      ilp synth --patients 100000 --bundle-patients 0 --out /data/bench

      ilp synth --centre borealis --seed 7

      ilp synth --centre dorado --out /tmp/onboarding     (docs/onboarding.md)

      ilp synth --centre borealis --population 2000 --out /tmp/hospital
    """
    profiles = synth.scaled_consortium(patients) + synth.OTHER_CENTRES
    known = {p.centre_id for p in profiles}
    centre = centre or []
    if unknown := set(centre) - known:
        typer.echo(f"unknown centre(s) {sorted(unknown)}; synthetic centres are {sorted(known)}", err=True)
        raise typer.Exit(2)
    chosen = [p for p in profiles if p.centre_id in centre or (not centre and p not in synth.OTHER_CENTRES)]
    started = time.perf_counter()
    description = synth.generate(chosen, seed, out, bundle_patients, population)
    for c in description["centres"]:
        others = f" (+{c['population']} other patients)" if c["population"] else ""
        typer.echo(f"{c['centre_id']:<10} {c['dialect']:<12} {c['patients']:>7} patients{others} "
                   f"{sum(c['resources'].values()):>9} resources")
    typer.echo(f"wrote {out} in {time.perf_counter() - started:.1f} s")


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Root folder of the demo's zones.")] = DEMO_OUT,
) -> None:
    """Run the main job on the built-in demo consortium, behind real local FHIR servers.

    Generates the three demo centres, serves each from its own FHIR server in its own dialect, pulls two by
    REST search and one by Bulk Data $export into the landing zone, transforms them into the canonical
    tables of a cohort snapshot, audits it with the great_expectations suites, publishes it, and analyses the
    published cohort (Tables 1-3, Figure 1, HTML report).

    Example: ilp demo --out /tmp/ilp-demo
    """
    from foundation.zones import Zones
    from ilp.demo import run_demo

    result = run_demo(out, typer.echo)
    outcome = result.outcome
    typer.echo(f"demo done in {result.seconds:.0f} s")
    typer.echo(f"  configuration:      {result.config} (its servers stop with the demo)")
    zones = Zones(out.resolve() / "zones")
    typer.echo(f"  landing zone:       {zones.landing_root}")
    typer.echo(f"  published cohort:   {outcome.snapshot} (Parquet, partitioned by centre; pointer "
               f"{zones.publication})")
    typer.echo(f"  Data Docs:          {outcome.data_docs}")
    typer.echo(f"  report:             {outcome.report}")
