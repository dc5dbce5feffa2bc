"""The `ilp` command: one entry point for every stage.

Commands grow as the stages land; each one is a thin shell over a stage's public API.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

import connectors
from ilp import logs, synth
from ilp.errors import ConfigError, IlpError
from ilp.locks import centre_locks
from ilp.model import dictionary

DEMO_OUT = Path("demo-output")
ZONES = DEMO_OUT / "zones"  # every stage run alone reads and writes here unless told otherwise
_debug = False  # set by `run()` from --debug, which may appear anywhere on the command line
SYNTH_OUT = DEMO_OUT / "synthetic"

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Multicentre FHIR data integration for isolated limb perfusion (ILP) in limb sarcoma.")


def _spark_overrides(spark_conf: list[str] | None) -> dict[str, str]:
    overrides = dict(pair.split("=", 1) for pair in spark_conf or [] if "=" in pair)
    if len(overrides) != len(spark_conf or []):
        raise ConfigError("--spark-conf takes key=value, e.g. --spark-conf spark.master=local[2]")
    return overrides


SparkConf = Annotated[list[str] | None, typer.Option(
    "--spark-conf", help="A Spark setting as key=value (repeatable), e.g. spark.master=yarn.")]


@app.callback()
def main(
    log_format: Annotated[str, typer.Option(
        "--log-format", help="text (for people) or json (one object per line, for schedulers).")] = "text",
) -> None:
    """Multicentre FHIR data integration for isolated limb perfusion (ILP) in limb sarcoma.

    Exit codes: 0 done; 1 internal error; 2 configuration or usage error; 3 source unreachable; 4 authentication
    refused; 5 validation blocked publication; 6 a server broke the FHIR protocol; 7 another run holds the lock.
    Add --debug anywhere for a traceback.
    """
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, not {log_format!r}")
    logs.configure("json" if log_format == "json" else "text", debug=_debug)


@app.command("dictionary")
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


@app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the consortium to.")] = SYNTH_OUT,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed, the same bytes.")] = synth.DEMO_SEED,
    patients: Annotated[int | None, typer.Option(
        "--patients", min=3, help="Total patients, split like the demo centres (default: 41/208/54).")] = None,
    centre: Annotated[list[str] | None, typer.Option(
        "--centre", help="Only this centre (repeatable); `dorado` (coded in its own extensions) is not a demo centre "
                         "and is written only when named.")] = None,
    bundle_patients: Annotated[int, typer.Option(
        "--bundle-patients", min=0, help="Patients per transaction Bundle; 0 writes no Bundles.")] = 50,
) -> None:
    """Write the synthetic demo consortium: FHIR per centre dialect, ConceptMaps and ground truth.

    Examples:

      ilp synth --out /tmp/consortium

      ilp synth --patients 100000 --bundle-patients 0 --out /data/bench

      ilp synth --centre borealis --seed 7

      ilp synth --centre dorado --out /tmp/onboarding     (docs/onboarding.md)
    """
    profiles = synth.scaled_consortium(patients) + synth.OTHER_CENTRES
    known = {p.centre_id for p in profiles}
    centre = centre or []
    if unknown := set(centre) - known:
        typer.echo(f"unknown centre(s) {sorted(unknown)}; synthetic centres are {sorted(known)}", err=True)
        raise typer.Exit(2)
    chosen = [p for p in profiles if p.centre_id in centre or (not centre and p not in synth.OTHER_CENTRES)]
    started = time.perf_counter()
    description = synth.generate(chosen, seed, out, bundle_patients)
    for c in description["centres"]:
        typer.echo(f"{c['centre_id']:<10} {c['dialect']:<12} {c['patients']:>7} patients "
                   f"{sum(c['resources'].values()):>9} resources")
    typer.echo(f"wrote {out} in {time.perf_counter() - started:.1f} s")


@app.command("demo")
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
    from ilp.demo import run_demo
    from ilp.zones import Zones

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


@app.command("ingest")
def ingest_command(
    centre: Annotated[str, typer.Option("--centre", help="Consortium id of the centre.")],
    root: Annotated[Path, typer.Option("--root", help="Root of the zones (landing/, state/, ...).")] = ZONES,
    rest: Annotated[str | None, typer.Option("--rest", help="FHIR base URL to pull by REST search.")] = None,
    bulk: Annotated[str | None, typer.Option("--bulk", help="FHIR base URL to pull by Bulk Data $export.")] = None,
    files: Annotated[Path | None, typer.Option("--files", help="Folder of NDJSON or Bundle files.")] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, help="REST search page size.")] = 200,
    full: Annotated[bool, typer.Option("--full", help="Ignore watermarks: pull everything again.")] = False,
    cohort_only: Annotated[bool, typer.Option(
        "--cohort-only", help="REST: only patients with an ILP procedure, and their resources.")] = False,
    with_conceptmaps: Annotated[bool, typer.Option(
        "--conceptmaps", help="Also pull the ConceptMaps the source publishes.")] = False,
) -> None:
    """Pull one centre's resources into the landing zone (resumes an interrupted pull of the same source).

    Examples:

      ilp ingest --centre aurora --rest http://localhost:8080/fhir

      ilp ingest --centre cascade --bulk https://fhir.example.org/fhir --root /data/zones

      ilp ingest --centre borealis --files /exports/2026-11
    """
    given = {kind: value for kind, value in (("rest", rest), ("bulk", bulk), ("files", files)) if value is not None}
    if len(given) != 1:
        raise ConfigError("give exactly one of --rest, --bulk or --files")
    options: dict[str, dict[str, Any]] = {
        "rest": {"base_url": rest, "page_size": page_size, "cohort_only": cohort_only},
        "bulk": {"base_url": bulk}, "files": {"folder": files}}
    (kind,) = given
    try:
        settings = connectors.SOURCE_SETTINGS.validate_python({"kind": kind, **options[kind]})
    except ValidationError as error:
        raise ConfigError(f"--{kind}: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    types = connectors.RESOURCE_TYPES + (connectors.TERMINOLOGY_TYPES if with_conceptmaps else ())
    source = connectors.open_source(settings, types)
    with centre_locks(root, [centre]), source:
        run = connectors.ingest(source, connectors.LandingZone(root, centre), incremental=not full)
    from ilp.zones import Zones

    counts = ", ".join(f"{name} {f.count}" for name, f in Zones.landing_manifest(run).files.items())
    typer.echo(f"landed {run}: {counts}")


@app.command("transform")
def transform_command(
    centre: Annotated[list[str], typer.Option("--centre", help="Centre to transform (repeatable).")],
    root: Annotated[Path, typer.Option("--root", help="Root of the zones.")] = ZONES,
    secret_env: Annotated[str | None, typer.Option(
        "--secret-env", help="Environment variable holding the consortium secret.")] = None,
    secret_file: Annotated[Path | None, typer.Option(
        "--secret-file", help="File holding the consortium secret.")] = None,
    conceptmaps: Annotated[Path | None, typer.Option(
        "--conceptmaps", help="Folder of ConceptMap JSON files, one sub-folder per centre id.")] = None,
    conceptmaps_from_source: Annotated[bool, typer.Option(
        "--conceptmaps-from-source", help="Also use the ConceptMaps landed from each centre's source.")] = False,
    identifier_system: Annotated[str | None, typer.Option(
        "--identifier-system", help="Patient identifier system that identifies a person across centres.")] = None,
    spark_conf: SparkConf = None,
    shift_dates: Annotated[bool, typer.Option(
        "--shift-dates", help="Move each patient's dates by a keyed offset of up to a year (intervals kept).")] = False,
) -> None:
    """Merge new landings and build the canonical tables of each centre into a new cohort snapshot.

    Examples:

      ilp transform --centre aurora --secret-env ILP_CONSORTIUM_SECRET

      ilp transform --centre borealis --conceptmaps maps/ --secret-file /run/secrets/consortium

      ilp transform --centre aurora --secret-env KEY --spark-conf spark.master=spark://head:7077
    """
    from ilp.secrets import SecretRef
    from ilp.spark import get_spark
    from transforms.pipeline import CentreSettings, TransformOptions, new_run_id, transform

    if (secret_env is None) == (secret_file is None):
        raise ConfigError("the consortium secret is required for pseudonymisation: give --secret-env or "
                          "--secret-file (there is no default key)")
    secret = SecretRef(env=secret_env, file=secret_file).resolve()
    settings = [CentreSettings(c, tuple(sorted((conceptmaps / c).glob("*.json"))) if conceptmaps else (),
                               conceptmaps_from_source) for c in centre]
    with centre_locks(root, centre):  # not beside an `ilp run` or `ilp ingest` of the same centres
        reports = transform(get_spark(_spark_overrides(spark_conf)), root, settings, secret, new_run_id(),
                            TransformOptions(identifier_system, shift_dates))
    for report in reports.values():
        for line in report.lines():
            typer.echo(line)


@app.command("validate")
def validate_command(
    root: Annotated[Path, typer.Option("--root", help="Root of the zones.")] = ZONES,
    snapshot: Annotated[Path | None, typer.Option(
        "--snapshot", help="Snapshot to audit (default: the newest under cohort/snapshots/).")] = None,
    spark_conf: SparkConf = None,
) -> None:
    """Audit a cohort snapshot with the great_expectations suites; publish it if nothing critical fails.

    Exit code 5 when publication is blocked: the previous publication stays, and each failing expectation is
    named with its table, count and a few row keys. Data Docs and JSON results go under validation/.

    Examples:

      ilp validate --root /data/ilp

      ilp validate --root /data/ilp --snapshot /data/ilp/cohort/snapshots/run=20261128T081500Z
    """
    from expectations import audit_and_publish
    from ilp.publication import latest_snapshot
    from ilp.spark import get_spark

    target = snapshot or latest_snapshot(root)
    publication = audit_and_publish(get_spark(_spark_overrides(spark_conf)), root, target)
    report = publication.report
    for finding in report.findings:
        typer.echo(finding.line())
    typer.echo(f"published {target.name}: {report.evaluated} expectations, {len(report.findings)} warnings "
               f"({report.seconds:.0f} s)")
    typer.echo(f"Data Docs: {report.data_docs}")


SuppressOption = Annotated[bool, typer.Option(
    "--suppress-small-cells/--no-suppress-small-cells",
    help="Blank counts below --min-cell and the counts that would give them back (off: outputs that stay inside "
         "the centre only).")]
MinCellOption = Annotated[int, typer.Option("--min-cell", min=1, help="Small-cell threshold.")]
GridOption = Annotated[float | None, typer.Option(
    "--grid-months", min=0.01, help="Round times up to this grid before counting (aggregates).")]


@app.command("analyse")
def analyse_command(
    root: Annotated[Path, typer.Option("--root", help="Root of the zones.")] = ZONES,
    snapshot: Annotated[Path | None, typer.Option(
        "--snapshot", help="Analyse this snapshot instead of the published one (e.g. to preview).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for tables, figures and the report (default: <root>/reports/<snapshot name>).")] = None,
    ci: Annotated[str, typer.Option("--ci", help="Survival CI method: log (R's default), log-log or plain.")] = "log",
    suppress_small_cells: SuppressOption = True,
    min_cell: MinCellOption = 5,
) -> None:
    """Survival, toxicity and response outputs (Tables 1-3, Figure 1, HTML report), pooled and per centre.

    Reads the published cohort (see `ilp validate`) unless --snapshot names another.

    Examples:

      ilp analyse --root /data/ilp

      ilp analyse --root /data/ilp --min-cell 10 --out /share/ilp-report

      ilp analyse --root /data/ilp --no-suppress-small-cells --out /secure/centre-only-report
    """
    from analytics import AnalysisPlan, analyse, read_snapshot
    from analytics.kaplan_meier import CI_METHODS
    from ilp.publication import published_snapshot

    if ci not in CI_METHODS:
        raise ConfigError(f"--ci must be one of {', '.join(CI_METHODS)}, not {ci!r}")
    from ilp.zones import Snapshot, Zones

    source = Snapshot.at(snapshot) if snapshot else published_snapshot(root)
    if not source.exists():
        raise ConfigError(f"no cohort snapshot at {source.folder}")
    plan = AnalysisPlan(ci_method=ci, suppress_small_cells=suppress_small_cells, min_cell=min_cell)
    result = analyse(read_snapshot(source), out or Zones(root).reports(source), plan)
    typer.echo(f"report: {result.report}")
    typer.echo(f"tables: {result.folder / 'tables'} ({len(result.tables)} as CSV and Parquet)")


ConfigOption = Annotated[Path, typer.Option("--config", help="The consortium's TOML configuration file.")]


@app.command("run")
def run_command(
    config: ConfigOption,
    centre: Annotated[list[str] | None, typer.Option("--centre", help="Only this centre (repeatable).")] = None,
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
    outcome = run_consortium(load_config(config), centre, echo=log.info)
    if outcome.nothing_new:
        log.info(f"done in {outcome.seconds:.1f} s: nothing new")
        return
    log.info(f"done in {outcome.seconds:.0f} s: published {outcome.snapshot}; Data Docs {outcome.data_docs}; "
             f"report {outcome.report}")


@app.command("profile")
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
    from ilp.config import load_config
    from ilp.run import profile_consortium
    from ilp.zones import Zones

    loaded = load_config(config)
    for centre_id, profile in profile_consortium(loaded, centre, pull).items():
        typer.echo(f"{centre_id}: {len(profile.gaps)} columns empty where other centres fill them, "
                   f"{len(profile.extensions)} extensions no view reads, {len(profile.unmapped)} codes that mean "
                   f"nothing, {sum(profile.unused.values())} resources no table used")
        for gap in profile.gaps:
            typer.echo(f"    empty: {gap.column} (fed by {', '.join(f for f, _ in gap.feeders) or '-'})")
        for extension in profile.extensions:
            typer.echo(f"    extension no view reads: {extension.resource_type} {extension.url} "
                       f"({extension.resources} resources): {extension.path()}")
        typer.echo(f"    report: {Zones(loaded.root).profile(centre_id, profile.run_id) / 'profile.md'}")


@app.command("status")
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


@app.command("query")
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


@app.command("keys")
def keys_command(
    centre: Annotated[str, typer.Option("--centre", help="The centre the key pair is for.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <centre>.key (private) and <centre>.pub.")],
) -> None:
    """A new Ed25519 key pair for a centre to sign its packages: keep the .key, send the .pub to the hub.

    Example: ilp keys --centre aurora --out /etc/ilp/keys
    """
    from ilp.packages import generate_keys

    private, public = generate_keys(centre, out)
    typer.echo(f"private key (keep it at the centre, readable by the pipeline only): {private}")
    typer.echo(f"public key (for the hub's trust folder): {public}")


@app.command("package")
def package_command(
    centre: Annotated[str, typer.Option("--centre", help="The centre whose published cohort leaves.")],
    key: Annotated[Path, typer.Option("--key", help="The centre's private key (from `ilp keys`).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the package into.")],
    root: Annotated[Path, typer.Option("--root", help="Root of the centre's zones.")] = ZONES,
    kind: Annotated[str, typer.Option("--kind", help="rows (the validated cohort) or aggregates.")] = "aggregates",
    grid_months: GridOption = None,
) -> None:
    """A signed package of the centre's published, validated cohort for the consortium's hub.

    `rows`: the pseudonymised cohort tables, where the centre's agreement lets rows leave; `aggregates`: event and
    censoring counts per time for every endpoint and prognostic factor (docs/federated.md says what they disclose).

    Example: ilp package --root /data/ilp --centre aurora --key /etc/ilp/keys/aurora.key --out /outbox
    """
    from ilp.packages import export_package

    if kind not in ("rows", "aggregates"):
        raise ConfigError(f"--kind must be rows or aggregates, not {kind!r}")
    if not key.is_file():
        raise ConfigError(f"no key file at {key}: make the centre's key pair with `ilp keys --centre {centre}`")
    package = export_package(root, centre, "rows" if kind == "rows" else "aggregates", key.read_bytes(), out,
                             grid_months=grid_months)
    typer.echo(f"signed package: {package}")


@app.command("serve")
def serve_command(
    centre: Annotated[str, typer.Option("--centre", help="The centre answering.")],
    exchange: Annotated[Path, typer.Option("--exchange", help="The folder shared with the hub for this centre.")],
    root: Annotated[Path, typer.Option("--root", help="Root of the centre's zones.")] = ZONES,
    grid_months: GridOption = None,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", min=1, help="Stop after this many seconds without a request.")] = None,
) -> None:
    """The centre's side of federated rounds: answer the hub's requests (the Cox model's iterations, survival
    counts) from the published, validated cohort with aggregates only, until the hub says stop.

    Example: ilp serve --root /data/ilp --centre aurora --exchange /mnt/consortium/aurora
    """
    from analytics import AnalysisPlan, read_snapshot
    from analytics.federated import Site
    from ilp.exchange import serve
    from ilp.packages import published_centre

    snapshot, _ = published_centre(root, centre)
    answered = serve(Site(read_snapshot(snapshot).for_centre(centre), AnalysisPlan(), grid_months), exchange,
                     idle_timeout)
    logging.getLogger("ilp.exchange").info("answered %d requests", answered)


@app.command("pool")
def pool_command(
    packages: Annotated[list[Path], typer.Argument(help="Centre package folders.")],
    trust: Annotated[Path, typer.Option("--trust", help="Folder of the centres' public keys (<centre>.pub).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the consortium's report.")],
    live: Annotated[Path | None, typer.Option(
        "--live", help="Folder of per-centre exchange folders (`ilp serve`): the Cox model for aggregates centres.")]
        = None,
    suppress_small_cells: SuppressOption = True,
    min_cell: MinCellOption = 5,
) -> None:
    """The hub: verify every centre's signed package (exit 8 if one is unsigned or tampered with) and pool them,
    rows or aggregates, into one report.

    Example: ilp pool --trust /etc/ilp/trusted --out /share/consortium-report /inbox/*
    """
    from analytics import AnalysisPlan
    from analytics.hub import Contribution, hub_report
    from ilp.exchange import STOP, FolderTransport
    from ilp.packages import open_package

    plan = AnalysisPlan(suppress_small_cells=suppress_small_cells, min_cell=min_cell)
    contributions = []
    for folder in packages:
        manifest, site, rows = open_package(folder, trust, plan)
        rounds = FolderTransport(live / manifest.centre_id) if live and rows is None else None
        contributions.append(Contribution(manifest.centre_id, site, rows, f"{manifest.kind} from {manifest.snapshot}, "
                                          f"ilp-cohort {manifest.software}", rounds))
        typer.echo(f"verified {manifest.centre_id}: {manifest.kind}, {len(manifest.files)} files, signed")
    centres = [c.centre_id for c in contributions]
    if len(set(centres)) < len(centres):
        raise ConfigError(f"more than one package per centre: {', '.join(sorted(centres))}; give the newest only")
    try:
        result = hub_report(contributions, out, plan)
    finally:
        for contribution in contributions:
            if contribution.live is not None:
                contribution.live(STOP)  # the centre's `ilp serve` may end
    typer.echo(f"report: {result.report}")


def run() -> None:
    """Console entry point: typed errors become their exit code and one clear line, no traceback."""
    global _debug
    debug = _debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    logs.configure("text", debug)  # until the callback has read --log-format
    try:
        code = app(standalone_mode=False)  # in this mode typer returns an Exit's code instead of exiting
    except IlpError as error:
        if debug:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except typer.exceptions.TyperException as error:  # usage errors: unknown option, missing value
        typer.echo(f"error: {error.format_message()} (see --help)", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as stop:
        sys.exit(stop.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
