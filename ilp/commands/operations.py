"""The consortium's scheduled job and what shows its state: run, profile, status, query, dictionary."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from foundation.errors import ConfigError
from foundation.model import dictionary
from ilp.commands.options import AcceptSmallerCohort, ConfigOption


def run_command(
    config: ConfigOption,
    centre: Annotated[list[str] | None, typer.Option("--centre", help="Only this centre (repeatable).")] = None,
    accept_smaller_cohort: AcceptSmallerCohort = False,
) -> None:
    """Every stage for the consortium (or some centres): pull, transform, audit and publish, analyse.

    Incremental and idempotent: a run with nothing new says so and changes nothing, so cron or any scheduler can
    call it. Centres are locked while they run (exit 7 if another run holds a lock).

    Examples:

      ilp run --config consortium.toml

      ilp run --config consortium.toml --centre aurora

      ilp --log-format json run --config /etc/ilp/consortium.toml
    """
    from ilp.config import load_config
    from ilp.run import run_consortium

    log = logging.getLogger("ilp.run")
    outcome = run_consortium(load_config(config), centre, echo=log.info, accept_smaller_cohort=accept_smaller_cohort)
    if outcome.nothing_new:
        log.info(f"done in {outcome.seconds:.1f} s: nothing new")
        return
    log.info(f"done in {outcome.seconds:.0f} s: published {outcome.snapshot}; Data Docs {outcome.data_docs}; "
             f"report {outcome.report}")


def profile_command(
    config: ConfigOption,
    centre: Annotated[list[str] | None, typer.Option("--centre", help="Only this centre (repeatable).")] = None,
    pull: Annotated[bool, typer.Option("--pull", help="Pull the centre from its source first.")] = False,
) -> None:
    """What the views make of a centre's landed data, before any transform is trusted (docs/onboarding.md).

    Per centre: coverage of every canonical column and the ones it leaves empty where others fill them,
    extensions no view reads, codes that mean nothing, resources no table used and why, each with the
    override or ConceptMap entry that would fix it. The other centres with landed data are transformed beside it
    for comparison. Nothing is published; the report is written under `profiles/` in the zones.

    Example: ilp profile --config consortium.toml --centre dorado --pull
    """
    from foundation.zones import Zones
    from ilp.config import load_config
    from ilp.run import profile_consortium

    loaded = load_config(config)
    for centre_id, profile in profile_consortium(loaded, centre, pull).items():
        typer.echo(f"{centre_id}: {len(profile.gaps)} columns empty where other centres fill them, "
                   f"{len(profile.extensions)} extensions no view reads, {len(profile.unmapped)} codes that mean "
                   f"nothing, {sum(profile.unused.values())} resources no table used")
        typer.echo(f"    {profile.cohort_line()}")
        for gap in profile.gaps:
            typer.echo(f"    empty: {gap.column} (fed by {', '.join(f for f, _ in gap.feeders) or '-'})")
        for extension in profile.extensions:
            typer.echo(f"    extension no view reads: {extension.resource_type} {extension.url} "
                       f"({extension.resources} resources): {extension.path()}")
        typer.echo(f"    report: {Zones(loaded.root).profile(centre_id, profile.run_id) / 'profile.md'}")


def status_command(
    config: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Per centre: last landing run, watermarks, current resources, lock; and what is published.

    Example: ilp status --config consortium.toml
    """
    from ilp.config import load_config
    from ilp.status import status

    state = status(load_config(config))
    if as_json:
        typer.echo(json.dumps(state, indent=2))
        return
    published = state["published"]
    typer.echo(f"zones: {state['root']}")
    typer.echo(f"published: {published['snapshot']} at {published['published_at']} ({', '.join(published['centres'])})"
               if published else "published: nothing yet")
    if state["last_validation"]:
        v = state["last_validation"]
        typer.echo(f"validation: {v['evaluated']} expectations, {v['critical_failures']} critical, "
                   f"{v['warnings']} warnings; Data Docs {v['data_docs']}")
    for centre_id, c in state["centres"].items():
        current = sum(c["current_resources"].values())
        typer.echo(f"{centre_id}: last landing {c['last_landing_run'] or '-'} ({c['last_landing_resources'] or 0} "
                   f"resources), {c['landing_runs']} runs, {current} current resources, "
                   f"{'published' if c['published'] else 'not published'}"
                   + (f", running: {c['running']}" if c["running"] else ""))
        for resource_type, watermark in sorted(c["watermarks"].items()):
            typer.echo(f"    watermark {resource_type}: {watermark}")


def query_command(
    sql: Annotated[str, typer.Argument(help="SQL over the published tables (patients, ..., cohort).")],
    config: ConfigOption,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """SQL over the published cohort (DuckDB; one view per canonical table).

    Examples:

      ilp query --config consortium.toml "SELECT centre_id, count(*) FROM cohort GROUP BY 1"

      ilp query --config consortium.toml --csv "SELECT * FROM perfusions" > perfusions.csv
    """
    from ilp.config import load_config
    from ilp.query import query

    frame = query(load_config(config).root, sql)
    typer.echo(frame.to_csv(index=False).rstrip("\n") if csv else frame.to_string(index=False))


def dictionary_command(
    out: Annotated[Path | None, typer.Option(
        "--out", help="File to write (default: docs/data-dictionary.md in a source checkout, else standard output).")]
    = None,
    check: Annotated[bool, typer.Option("--check", help="Fail if the file is stale; write nothing.")] = False,
) -> None:
    """Write the data dictionary (Markdown) from the canonical model.

    Examples:

      ilp dictionary --check

      ilp dictionary --out /share/ilp/data-dictionary.md
    """
    target = out or (dictionary.DICTIONARY_PATH if dictionary.in_checkout() else None)
    if check:
        if target is None:
            raise ConfigError("--check compares a written dictionary with the model: give --out FILE")
        if not target.exists() or target.read_text(encoding="utf-8") != dictionary.render():
            typer.echo(f"{target} is stale: run `ilp dictionary`", err=True)
            raise typer.Exit(1)
        typer.echo("data dictionary is up to date")
        return
    if target is None:
        typer.echo(dictionary.render(), nl=False)
        return
    typer.echo(f"wrote {dictionary.write(target)}")
