"""`ilp run`: every stage for the configured centres, incremental and idempotent, safe to call from a scheduler.

Per centre (under its lock): pull what changed since the last run. If no centre brought a new resource version
or deletion and the cohort is already published, stop: nothing is rewritten ("nothing new"). Otherwise
transform the centres with changes into a new snapshot, carry over the other centres' partitions from the
published snapshot unchanged, audit the whole and publish it, then analyse the published cohort.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import connectors
from analytics import AnalysisPlan, analyse, read_snapshot
from expectations import audit_and_publish
from ilp.config import BulkSource, CentreConfig, ConsortiumConfig, FilesSource, RestSource
from ilp.locks import centre_locks
from ilp.model import TABLES
from ilp.publication import published_snapshot, read_pointer
from ilp.spark import get_spark
from ilp.zones import Snapshot, Zones
from transforms.changes import pending_changes, record_unchanged
from transforms.pipeline import CentreSettings, TransformOptions, new_run_id, transform


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


def source_for(centre: CentreConfig) -> connectors.Source:
    """The connector a centre's configuration describes."""
    spec = centre.source
    if isinstance(spec, FilesSource):
        return connectors.FilesSource(connectors.FilesSettings(spec.folder, centre.pulled_types))
    auth = connectors.AuthSettings(
        kind=spec.auth.kind, username=spec.auth.username, client_id=spec.auth.client_id, key_id=spec.auth.key_id,
        algorithm=spec.auth.algorithm, scope=spec.auth.scope, token_url=spec.auth.token_url,
        audience=spec.auth.audience, **{name: getattr(spec.auth, name).ref() for name in
                                        ("password", "token", "client_secret", "private_key")
                                        if getattr(spec.auth, name) is not None})
    transport = connectors.TransportSettings(timeout_s=spec.timeout_s, max_attempts=spec.max_attempts,
                                             ca_bundle=spec.ca_bundle)
    if isinstance(spec, RestSource):
        codes = connectors.ILP_PROCEDURE_CODES if spec.cohort_only else ()
        return connectors.RestSource(connectors.RestSettings(
            spec.base_url, centre.pulled_types, spec.page_size, spec.concurrency, cohort_codes=codes, auth=auth,
            transport=transport))
    assert isinstance(spec, BulkSource)
    return connectors.BulkSource(connectors.BulkSettings(
        spec.base_url, spec.level, spec.group_id, centre.pulled_types, spec.max_wait_s, spec.poll_interval_s,
        spec.file_hosts, auth=auth, transport=transport))


def run_consortium(config: ConsortiumConfig, centre_ids: list[str] | None = None,
                   echo: Callable[[str], None] = print, progress: connectors.PullProgress | None = None) -> RunOutcome:
    started = time.perf_counter()
    root = config.root
    selected = [config.centre(c) for c in centre_ids] if centre_ids else list(config.centres)
    outcome = RunOutcome()
    with centre_locks(root, [c.id for c in selected]):
        for centre in selected:
            with source_for(centre) as source:
                run = connectors.ingest(source, connectors.LandingZone(root, centre.id), progress=progress)
            outcome.landed[centre.id] = connectors.landed_count(run)
            outcome.changes[centre.id] = pending_changes(root, centre.id, centre.pulled_types)
            echo(f"{centre.id}: landed {outcome.landed[centre.id]} resources, "
                 f"{outcome.changes[centre.id]} new versions or deletions")
        pointer = read_pointer(root)
        published = set(pointer.centres) if pointer else set()
        changed = [c for c in selected if outcome.changes[c.id] or c.id not in published]
        if not changed:
            for centre in selected:
                record_unchanged(root, centre.id)
            outcome.seconds = time.perf_counter() - started
            echo(f"nothing new: the published cohort ({pointer.snapshot if pointer else '-'}) is unchanged")
            return outcome
        outcome.snapshot = _transform(config, changed, new_run_id(), echo)
        if pointer:
            _carry_over(published_snapshot(root), outcome.snapshot, {c.id for c in changed})
        publication = audit_and_publish(get_spark(config.spark), root, outcome.snapshot)
        outcome.data_docs = publication.report.data_docs
        echo(f"published {outcome.snapshot.name}: {publication.report.evaluated} expectations, "
             f"{len(publication.report.findings)} warnings")
        plan = AnalysisPlan(ci_method=config.analysis.ci, horizons_years=config.analysis.horizons_years,
                            min_cell=config.analysis.min_cell,
                            suppress_small_cells=config.analysis.suppress_small_cells)
        in_force = published_snapshot(root)
        result = analyse(read_snapshot(in_force), Zones(root).reports(in_force), plan,
                         title=config.name)
        outcome.report = result.report
    outcome.seconds = time.perf_counter() - started
    return outcome


def _transform(config: ConsortiumConfig, centres: list[CentreConfig], run_id: str,
               echo: Callable[[str], None]) -> Snapshot:
    spark = get_spark(config.spark)
    settings = [CentreSettings(c.id, tuple(sorted(c.conceptmaps.glob("*.json"))) if c.conceptmaps else (),
                               c.conceptmaps_from_source) for c in centres]
    reports = transform(spark, config.root, settings, config.secret.ref().resolve(), run_id,
                        TransformOptions(config.identifier_system, config.shift_dates))
    for report in reports.values():
        echo(report.line())
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
