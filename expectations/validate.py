"""Audit a cohort snapshot with great_expectations: results as JSON for schedulers, Data Docs as HTML for people.

Each run gets its own validation folder, `validation/run=<snapshot run id>/`, holding the Data Docs site
(`data_docs/index.html`), the raw GX results per suite (`results/<suite>.json`) and our `summary.json`: every
failed expectation with its suite, severity, count and a few offending row keys. Keys are pseudonyms; values
never enter the summary.

Suites run in two passes: every expectation with GX's cheapest result format, then only the failed ones again
for counts and offending keys (SUMMARY costs about four times as much on Spark).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.core import ExpectationSuiteValidationResult
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.validator.v1_validator import Validator
from pyspark.sql import DataFrame, SparkSession

from expectations import checks
from expectations.offline import make_offline
from expectations.rules import CRITICAL, WARNING
from expectations.suites import all_suites, index_columns
from foundation import logs
from foundation.manifests import Finding, ValidationSummary
from foundation.progress import steps as progress_steps
from foundation.zones import VALIDATION_SUMMARY, Snapshot, Zones

SAMPLE_KEYS = 5
WARNING_LABEL = "Warning (does not block publication): "
PARALLEL_SUITES = 3
log = logging.getLogger(__name__)
logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class ValidationReport:
    snapshot: Snapshot
    folder: Path
    evaluated: int = 0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == CRITICAL.value]

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def data_docs(self) -> Path:
        return self.folder / "data_docs" / "index.html"

    def published_line(self) -> str:
        """What a run says of the snapshot it published (whose findings are all warnings)."""
        warnings = len(self.findings)
        return (f"published {self.snapshot.folder.name}: {self.evaluated} expectations, {warnings} "
                f"warning{'' if warnings == 1 else 's'} ({self.seconds:.0f} s)")

    def summary(self) -> ValidationSummary:
        return ValidationSummary(
            snapshot=str(self.snapshot.folder), passed=self.passed, evaluated=self.evaluated,
            critical_failures=len(self.blocking), warnings=len(self.findings) - len(self.blocking),
            findings=self.findings, data_docs=str(self.data_docs),
            seconds=round(self.seconds, 1))


def validate_snapshot(spark: SparkSession, root: Path, snapshot: Path | Snapshot) -> ValidationReport:
    """Run every suite on the snapshot; write results, summary and Data Docs under the validation zone."""
    started = time.perf_counter()
    snapshot = Snapshot.at(snapshot)
    folder = Zones(root).validation(snapshot)
    shutil.rmtree(folder, ignore_errors=True)  # a rerun of the same snapshot replaces its validation
    context = _context(folder / "data_docs")
    source = context.data_sources.add_spark("cohort")
    tables = checks.read_tables(spark, snapshot)
    manifests = snapshot.manifests()
    centres = sorted(m.centre_id for m in manifests)
    frames: dict[str, DataFrame] = {**tables, "links": checks.links(tables),
                                    "reconciliation": checks.reconciliation(spark, tables, manifests),
                                    "pooled": checks.pooled(tables),
                                    "completeness": checks.completeness(spark, tables, centres)}
    report = ValidationReport(snapshot, folder)
    (folder / "results").mkdir(parents=True, exist_ok=True)
    run_name = snapshot.run_id  # Data Docs put it in paths: keep URL-safe
    suites = all_suites(centres)
    batches = {name: source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("snapshot")
               for name in suites}
    definitions = {name: _definition(context, batches[name], suite) for name, suite in suites.items()}

    with progress_steps(f"audit {snapshot.run_id}", len(suites) + 2, spark) as steps:

        def first_pass(name: str) -> ExpectationSuiteValidationResult:
            suite_started = time.perf_counter()
            result = _run(definitions[name], frames[name], {"result_format": "BOOLEAN_ONLY"}, run_name)
            steps.done(f"suite {name}", time.perf_counter() - suite_started)
            return result

        # Suites are independent: running them side by side overlaps one suite's Python work (GX builds every
        # metric through py4j) with another's Spark jobs.
        with ThreadPoolExecutor(max_workers=PARALLEL_SUITES) as pool:
            results = dict(zip(suites, pool.map(logs.in_context(first_pass), suites), strict=True))
        with steps.step("failures in detail"):
            for name, result in results.items():
                report.evaluated += len(result.results)
                findings, kept = _failures(batches[name], frames[name], name, result)
                report.findings.extend(findings)
                _store_for_docs(context, name, run_name, kept)
                (folder / "results" / f"{name}.json").write_text(json.dumps(kept.to_json_dict(), indent=1),
                                                                 encoding="utf-8")
        for frame in tables.values():
            frame.unpersist()
        with steps.step("Data Docs"):
            context.build_data_docs()
            if still_online := make_offline(folder / "data_docs"):
                log.warning("Data Docs still link %s from the network: no offline copy is declared in "
                            "expectations.offline", ", ".join(still_online))
    report.seconds = time.perf_counter() - started
    report.summary().write(folder / VALIDATION_SUMMARY)
    return report


def _failures(batch: Any, frame: DataFrame, name: str, result: ExpectationSuiteValidationResult
              ) -> tuple[list[Finding], ExpectationSuiteValidationResult]:
    """The suite's failed expectations run again, alone, for counts, observed values and offending keys (4x the
    cost of the first pass, so only for what failed); their findings, and the suite's result with those details
    in place of the first pass's bare verdicts (one Data Docs page per suite, none of its own for the details)."""
    failed = [r.expectation_config for r in result.results if not r.success and r.expectation_config]
    if not failed:
        return [], result
    details = gx.ExpectationSuite(name=f"{name}-failures", expectations=failed)
    detailed = Validator(batch, {"result_format": "SUMMARY", "unexpected_index_column_names": index_columns(name),
                                 "partial_unexpected_count": SAMPLE_KEYS},
                         {"dataframe": frame}).validate_expectation_suite(details)
    by_expectation = {_identity(r.expectation_config): r for r in detailed.results}
    result.results = [by_expectation.get(_identity(r.expectation_config), r) for r in result.results]
    return _findings(name, detailed), result


def _store_for_docs(context: Any, name: str, run_name: str, result: ExpectationSuiteValidationResult) -> None:
    """The suite's result as its Data Docs page shows it: with the details of what failed, and each warning
    saying that it is one (GX marks every unmet expectation as failed, whatever its severity)."""
    for outcome in result.results:
        config = outcome.expectation_config
        if config is not None and str(getattr(config.severity, "value", config.severity)) == WARNING.value:
            config.description = f"{WARNING_LABEL}{config.description or ''}"  # once: each result is stored once
    store = context.validation_results_store
    store.set(next(k for k in store.list_keys() if k.expectation_suite_identifier.name == name
                   and k.run_id.run_name == run_name), result)


def _identity(config: Any) -> str:
    """An expectation as its type and arguments (the same in the first pass and in the detailed one)."""
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"} if config is not None else {}
    return json.dumps([getattr(config, "type", None), kwargs], sort_keys=True, default=str)


def _context(docs: Path) -> Any:
    """An in-memory GX context (suites and results need no YAML round trips) whose Data Docs site is a folder."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # GX's TypedDict for site configs lists only some of the keys its SiteBuilder takes.
    context.add_data_docs_site("cohort", {  # type: ignore[typeddict-unknown-key]
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
        "show_how_to_buttons": False,
        "site_section_builders": {"profiling": "0"}})  # we profile nothing; skip re-rendering for it
    return context


def _definition(context: Any, batch: Any, suite: gx.ExpectationSuite) -> gx.ValidationDefinition:
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=context.suites.add(suite)))


def _run(definition: gx.ValidationDefinition, frame: DataFrame, result_format: dict[str, Any],
         run_name: str) -> ExpectationSuiteValidationResult:
    return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format,
                          run_id=RunIdentifier(run_name=run_name))


def _findings(suite: str, result: ExpectationSuiteValidationResult) -> list[Finding]:
    keys = index_columns(suite)
    found = []
    for outcome in result.results:
        if outcome.success:
            continue
        config = outcome.expectation_config
        if config is None:
            continue
        details = outcome.result or {}
        error = (outcome.exception_info or {}).get("exception_message")
        samples = [{k: _plain(row.get(k)) for k in keys if k in row}
                   for row in details.get("partial_unexpected_index_list") or [] if isinstance(row, dict)]
        found.append(Finding(
            suite=suite, expectation=config.type, column=config.kwargs.get("column") or config.kwargs.get("column_A"),
            description=config.description or (f"could not be evaluated: {error}" if error else None),
            severity=str(getattr(config.severity, "value", config.severity) or CRITICAL.value),
            unexpected_count=details.get("unexpected_count"),
            observed=_plain(details.get("observed_value")), sample_keys=samples))
    return found


def _plain(value: Any) -> Any:
    """JSON-friendly: dates and other objects as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
