"""`ilp run`: every stage for the configured centres, incremental and idempotent, safe to call from a scheduler.

Per centre (under its lock): pull what changed since the last run. If no centre brought a new resource version
or deletion and the cohort is already published, stop: nothing is rewritten ("nothing new"). Otherwise
transform the centres with changes into a new snapshot, carry over the other centres' partitions from the
published snapshot unchanged, audit the whole and publish it, then analyse the published cohort.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import connectors
from analytics import AnalysisPlan, CohortData, OutputPolicy, ReleaseLedger, analyse, read_snapshot
from expectations import audit_and_publish
from foundation import logs
from foundation.errors import ValidationBlocked
from foundation.manifests import ValidationSummary
from foundation.model import TABLES
from foundation.publication import published_snapshot, read_pointer
from foundation.zones import Snapshot, Zones
from ilp.config import CentreConfig, ConsortiumConfig
from ilp.locks import centre_locks
from ilp.spark import get_spark
from transforms import (
    CentreFindings,
    CentreSettings,
    CurrentState,
    TransformOptions,
    new_run_id,
    profile_centres,
    transform,
)

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    landed: dict[str, int] = field(default_factory=dict)  # centre -> resource lines landed by this run
    changes: dict[str, int] = field(default_factory=dict)  # centre -> new versions or deletions
    snapshot: Snapshot | None = None
    data_docs: Path | None = None
    report: Path | None = None
    seconds: float = 0.0

    @property
    def nothing_new(self) -> bool:
        return self.snapshot is None


def run_consortium(config: ConsortiumConfig, centre_ids: list[str] | None = None,
                   echo: Callable[[str], None] = print, progress: connectors.PullProgress | None = None,
                   accept_smaller_cohort: bool = False) -> RunOutcome:
    """Pull, transform, audit and publish, analyse; `accept_smaller_cohort`: a centre's cohort may be less than
    half the published one's (patients withdrawn), which otherwise stops the run."""
    started = time.perf_counter()
    root = config.root
    selected = [config.centre(c) for c in centre_ids] if centre_ids else list(config.centres)
    outcome = RunOutcome()
    state = CurrentState(root, [c.id for c in selected])
    with centre_locks(root, list(state.centre_ids)):
        for centre in selected:
            with logs.context(centre=centre.id, step="ingest"):
                search = cohort_search(config, centre)
                with connectors.open_source(centre.source, centre.pulled_types, search) as source:
                    run = connectors.ingest(source, connectors.LandingZone(root, centre.id), progress=progress)
                outcome.landed[centre.id] = connectors.landed_count(run)
                outcome.changes[centre.id] = state.pending_changes(centre.id, centre.pulled_types)
                echo(f"{centre.id}: landed {outcome.landed[centre.id]} resources, "
                     f"{outcome.changes[centre.id]} new versions or deletions")
        pointer = read_pointer(root)
        published = set(pointer.centres) if pointer else set()
        changed = [c for c in selected if outcome.changes[c.id] or c.id not in published]
        if not changed:
            state.record_unchanged()
            outcome.seconds = time.perf_counter() - started
            echo(f"nothing new: the published cohort ({pointer.snapshot if pointer else '-'}) is unchanged")
            return outcome
        run_id = new_run_id()
        with logs.context(run=run_id, step="transform"):
            outcome.snapshot = _transform(config, changed, run_id, echo, accept_smaller_cohort)
            if pointer:
                _carry_over(published_snapshot(root), outcome.snapshot, {c.id for c in changed})
        plan = AnalysisPlan(ci_method=config.analysis.ci, horizons_years=config.analysis.horizons_years,
                            policy=OutputPolicy(**config.analysis.policy.model_dump()))
        with logs.context(run=run_id, step="audit"):
            try:
                publication = audit_and_publish(get_spark(config.spark), root, outcome.snapshot)
            except ValidationBlocked as blocked:
                raise _with_preview(blocked, config, outcome.snapshot, plan) from None
            outcome.data_docs = publication.report.data_docs
            echo(publication.report.published_line())
        in_force = published_snapshot(root)
        with logs.context(run=in_force.folder.name.removeprefix("run="), step="analyse"):
            outcome.report = released_report(read_snapshot(in_force), Zones(root), in_force, plan, config.name,
                                             echo)
    outcome.seconds = time.perf_counter() - started
    return outcome


def released_report(data: CohortData, zones: Zones, snapshot: Snapshot, plan: AnalysisPlan, title: str,
                    echo: Callable[[str], None], folder: Path | None = None) -> Path | None:
    """The snapshot's report, unless the release ledger holds it back (`analytics.releases`): then the earlier
    reports stay the latest, and the reason is said."""
    ledger = ReleaseLedger(zones.releases)
    held = ledger.check(data, plan.policy)
    if held is not None:
        echo(f"report of {snapshot.name} {held}")
        return None
    started = time.perf_counter()
    report = analyse(data, folder or zones.reports(snapshot), plan, title=title).report
    ledger.record(data, snapshot.name, plan.policy)
    policy = f"protected (threshold {plan.policy.threshold})" if plan.policy.protect else "UNPROTECTED"
    echo(f"analysed {snapshot.name}: {len(data.cohort)} patients of {len(data.centres)} centres, {policy}, "
         f"in {time.perf_counter() - started:.0f} s -> {report}")
    return report


def _with_preview(blocked: ValidationBlocked, config: ConsortiumConfig, snapshot: Snapshot,
                  plan: AnalysisPlan) -> ValidationBlocked:
    """A blocked run still shows what it would have published: the analyses of the failed snapshot, marked as a
    preview with the failures first, written apart from the published reports (and named in the validation
    summary, for schedulers)."""
    try:
        preview = analyse(read_snapshot(snapshot), Zones(config.root).preview(snapshot), plan, title=config.name,
                          unpublished=blocked.failures).report
    except Exception as error:  # the failure to report is the validation's: a broken preview must not hide it
        log.warning("no preview of the unpublished snapshot %s: %s", snapshot.name, error)
        return blocked
    if blocked.summary is not None:
        summary = ValidationSummary.read(blocked.summary)
        summary.model_copy(update={"preview_report": str(preview)}).write(blocked.summary)
    return ValidationBlocked(f"{blocked}\npreview of what would have been published (NOT published): {preview}",
                             blocked.failures, blocked.summary)


def cohort_search(config: ConsortiumConfig, centre: CentreConfig) -> connectors.CohortSearch:
    """How the centre's source finds the cohort's patients, where it searches by code (`cohort_only`)."""
    maps = tuple(json.loads(p.read_text(encoding="utf-8")) for p in sorted(centre.conceptmaps.glob("*.json"))
                 ) if centre.conceptmaps else ()
    return connectors.CohortSearch(config.cohort.definition(), maps, centre.cohort_may_be_empty)


def centre_settings(centres: list[CentreConfig]) -> list[CentreSettings]:
    """What the transform needs of each centre's configuration."""
    return [CentreSettings(c.id, tuple(sorted(c.conceptmaps.glob("*.json"))) if c.conceptmaps else (),
                           c.conceptmaps_from_source, c.views, c.cohort_may_be_empty) for c in centres]


def transform_options(config: ConsortiumConfig, accept_smaller_cohort: bool = False) -> TransformOptions:
    return TransformOptions(config.linkage.resolve() if config.linkage else None, config.shift_dates,
                            cohort=config.cohort.definition(), accept_smaller_cohort=accept_smaller_cohort)


def profile_consortium(config: ConsortiumConfig, centre_ids: list[str] | None = None, pull: bool = False,
                       progress: connectors.PullProgress | None = None) -> dict[str, CentreFindings]:
    """`ilp profile`: what the views make of the centres' landed data (pulled first with `pull`), each report
    written under `profiles/`. The other centres that have landed data are transformed beside them (not
    reported): a column is only known to be missing at one centre because another fills it."""
    selected = [config.centre(c) for c in centre_ids] if centre_ids else list(config.centres)
    zones = Zones(config.root)
    beside = [c for c in config.centres if c not in selected and zones.landing_runs(c.id)]
    with centre_locks(config.root, [c.id for c in selected + beside]):
        if pull:
            for centre in selected:
                search = cohort_search(config, centre)
                with connectors.open_source(centre.source, centre.pulled_types, search) as source:
                    connectors.ingest(source, connectors.LandingZone(config.root, centre.id), progress=progress)
        return profile_centres(get_spark(config.spark), config.root, centre_settings(selected + beside),
                               config.secret.resolve(), transform_options(config), [c.id for c in selected])


def _transform(config: ConsortiumConfig, centres: list[CentreConfig], run_id: str,
               echo: Callable[[str], None], accept_smaller_cohort: bool) -> Snapshot:
    spark = get_spark(config.spark)
    reports = transform(spark, config.root, centre_settings(centres), config.secret.resolve(), run_id,
                        transform_options(config, accept_smaller_cohort))
    for centre, report in reports.items():
        with logs.context(centre=centre):
            for line in report.lines():
                echo(line)
    return Zones(config.root).snapshot(run_id)


def _carry_over(published: Snapshot, snapshot: Snapshot, transformed: set[str]) -> None:
    """Copy the partitions of centres not transformed now from the published snapshot (hard links where possible:
    snapshots are immutable once written)."""
    for centre in published.centres():
        if centre in transformed:
            continue
        for table in TABLES:
            source = published.partition(table.name, centre)
            if source.is_dir():
                shutil.copytree(source, snapshot.partition(table.name, centre), copy_function=_link_or_copy)
        shutil.copy2(published.manifest_path(centre), snapshot.manifest_path(centre))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
