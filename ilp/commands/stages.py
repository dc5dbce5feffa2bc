"""Each stage run alone: pull a centre, transform centres, audit and publish a snapshot, analyse a cohort.

They read and write the zones under --root, as `ilp run` does for the whole consortium."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

import connectors
from foundation.errors import ConfigError
from ilp.commands.options import (
    ZONES,
    AcceptSmallerCohort,
    ProtectOption,
    SparkConf,
    ThresholdOption,
    spark_overrides,
)
from ilp.locks import centre_locks


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
    from foundation.zones import Zones

    counts = ", ".join(f"{name} {f.count}" for name, f in Zones.landing_manifest(run).files.items())
    typer.echo(f"landed {run}: {counts}")


def transform_command(
    centre: Annotated[list[str], typer.Option("--centre", help="Centre to transform (repeatable).")],
    root: Annotated[Path, typer.Option("--root", help="Root of the zones.")] = ZONES,
    secret_env: Annotated[str | None, typer.Option(
        "--secret-env", help="Environment variable holding the centre's own pseudonymisation secret.")] = None,
    secret_file: Annotated[Path | None, typer.Option(
        "--secret-file", help="File holding the centre's own pseudonymisation secret.")] = None,
    conceptmaps: Annotated[Path | None, typer.Option(
        "--conceptmaps", help="Folder of ConceptMap JSON files, one sub-folder per centre id.")] = None,
    conceptmaps_from_source: Annotated[bool, typer.Option(
        "--conceptmaps-from-source", help="Also use the ConceptMaps landed from each centre's source.")] = False,
    identifier_system: Annotated[str | None, typer.Option(
        "--identifier-system", help="Opt in to linkage: patients with an identifier of this system get one "
        "pseudonym at every centre, under the linkage secret.")] = None,
    linkage_secret_env: Annotated[str | None, typer.Option(
        "--linkage-secret-env", help="Environment variable holding the consortium's linkage secret.")] = None,
    linkage_secret_file: Annotated[Path | None, typer.Option(
        "--linkage-secret-file", help="File holding the consortium's linkage secret.")] = None,
    spark_conf: SparkConf = None,
    shift_dates: Annotated[bool, typer.Option(
        "--shift-dates", help="Move each patient's dates by a keyed offset of up to a year (intervals kept).")] = False,
    accept_smaller_cohort: AcceptSmallerCohort = False,
) -> None:
    """Merge new landings and build the canonical tables of each centre into a new cohort snapshot.

    Examples:

      ilp transform --centre aurora --secret-env ILP_CENTRE_SECRET

      ilp transform --centre borealis --conceptmaps maps/ --secret-file /run/secrets/centre

      ilp transform --centre aurora --secret-env ILP_CENTRE_SECRET --identifier-system urn:oid:1.2.3
      --linkage-secret-env ILP_LINKAGE_SECRET

      ilp transform --centre aurora --secret-env KEY --spark-conf spark.master=spark://head:7077
    """
    from foundation.secrets import SecretRef
    from ilp.spark import get_spark
    from transforms import CentreSettings, Linkage, TransformOptions, new_run_id, transform
    from transforms.pipeline import check_landed

    if (secret_env is None) == (secret_file is None):
        raise ConfigError("the centre's secret is required for pseudonymisation: give --secret-env or "
                          "--secret-file (there is no default key)")
    secret = SecretRef(env=secret_env, file=secret_file).resolve()
    linkage = None
    if identifier_system is not None or linkage_secret_env is not None or linkage_secret_file is not None:
        if identifier_system is None or (linkage_secret_env is None) == (linkage_secret_file is None):
            raise ConfigError("linkage needs --identifier-system and one of --linkage-secret-env or "
                              "--linkage-secret-file")
        linkage = Linkage(identifier_system, SecretRef(env=linkage_secret_env, file=linkage_secret_file).resolve())
    settings = [CentreSettings(c, tuple(sorted((conceptmaps / c).glob("*.json"))) if conceptmaps else (),
                               conceptmaps_from_source) for c in centre]
    with centre_locks(root, centre):  # not beside an `ilp run` or `ilp ingest` of the same centres
        check_landed(root, centre)  # before Spark starts
        reports = transform(get_spark(spark_overrides(spark_conf)), root, settings, secret, new_run_id(),
                            TransformOptions(linkage, shift_dates,
                                             accept_smaller_cohort=accept_smaller_cohort))
    for report in reports.values():
        for line in report.lines():
            typer.echo(line)


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
    from foundation.publication import latest_snapshot
    from foundation.zones import Snapshot
    from ilp.spark import get_spark

    target = snapshot or latest_snapshot(root)
    if not Snapshot.at(target).exists():
        raise ConfigError(f"no cohort snapshot at {target}: give a folder under cohort/snapshots/")
    publication = audit_and_publish(get_spark(spark_overrides(spark_conf)), root, target)
    report = publication.report
    for finding in report.findings:
        typer.echo(finding.line())
    typer.echo(report.published_line())
    typer.echo(f"Data Docs: {report.data_docs}")


def analyse_command(
    root: Annotated[Path, typer.Option("--root", help="Root of the zones.")] = ZONES,
    snapshot: Annotated[Path | None, typer.Option(
        "--snapshot", help="Analyse this snapshot instead of the published one (e.g. to preview).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for tables, figures and the report (default: <root>/reports/<snapshot name>).")] = None,
    ci: Annotated[str, typer.Option("--ci", help="Survival CI method: log (R's default), log-log or plain.")] = "log",
    protect: ProtectOption = True,
    threshold: ThresholdOption = 5,
) -> None:
    """Survival, toxicity and response outputs (Tables 1-3, Figure 1, HTML report), pooled and per centre.

    Reads the published cohort (see `ilp validate`) unless --snapshot names another.

    Examples:

      ilp analyse --root /data/ilp

      ilp analyse --root /data/ilp --threshold 10 --out /share/ilp-report

      ilp analyse --root /data/ilp --unprotected --out /secure/centre-only-report
    """
    from analytics import AnalysisPlan, OutputPolicy, read_snapshot
    from analytics.kaplan_meier import CI_METHODS
    from foundation.publication import published_snapshot
    from ilp.run import released_report

    if ci not in CI_METHODS:
        raise ConfigError(f"--ci must be one of {', '.join(CI_METHODS)}, not {ci!r}")
    from foundation.zones import Snapshot, Zones

    source = Snapshot.at(snapshot) if snapshot else published_snapshot(root)
    if not source.exists():
        raise ConfigError(f"no cohort snapshot at {source.folder}")
    plan = AnalysisPlan(ci_method=ci, policy=OutputPolicy(threshold, threshold, protect=protect))
    # the release ledger is the zones' the snapshot lies in (a snapshot named with --snapshot: its own)
    zones = Zones(source.folder.parents[2]) if snapshot and source.folder.parent.name == "snapshots" else Zones(root)
    report = released_report(read_snapshot(source), zones, source, plan, "Isolated limb perfusion cohort",
                             typer.echo, out)
    if report is not None:
        typer.echo(f"report: {report}")
        typer.echo(f"tables: {report.parent / 'tables'} (as CSV and Parquet)")
