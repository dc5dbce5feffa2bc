"""Write, audit, publish: a snapshot becomes the published cohort only when no critical expectation fails.

The transform has written the snapshot; `audit_and_publish` validates it and, if it passes, moves the pointer
(`foundation.publication`). If it fails, the pointer is not touched, so the previous publication stays exactly as it
was, and `ValidationBlocked` (exit code 5) names each failing expectation, its table, the count and a few row
keys. A run killed at any point leaves the old pointer or the new one: the pointer is written last, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from expectations.validate import ValidationReport, validate_snapshot
from foundation.errors import ValidationBlocked
from foundation.manifests import PublicationRecord
from foundation.publication import publish
from foundation.zones import VALIDATION_SUMMARY, Snapshot

MAX_LINES = 12


@dataclass(frozen=True)
class Publication:
    report: ValidationReport
    record: PublicationRecord


def audit_and_publish(spark: SparkSession, root: Path, snapshot: Path | Snapshot) -> Publication:
    report = validate_snapshot(spark, root, snapshot)
    if not report.passed:
        lines = [f.line() for f in report.blocking]
        more = f"\n  ... and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
        raise ValidationBlocked(
            f"snapshot {report.snapshot.name} not published: {len(lines)} critical expectation(s) failed "
            f"(the previous publication is unchanged; Data Docs: {report.data_docs}):\n  "
            + "\n  ".join(lines[:MAX_LINES]) + more,
            failures=lines, summary=report.folder / VALIDATION_SUMMARY)
    record = publish(root, report.snapshot, report.folder, report.evaluated, len(report.findings))
    return Publication(report, record)
