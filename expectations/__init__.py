"""Expectations: great_expectations suites audit each cohort snapshot and gate its publication.

Verbs: `validate_snapshot` (audit only: results JSON and Data Docs under `validation/`), `audit_and_publish`
(audit, then move the published pointer if nothing critical failed; else `ValidationBlocked`).
"""

from expectations.gate import Publication, audit_and_publish
from expectations.validate import Finding, ValidationReport, validate_snapshot

__all__ = ["Finding", "Publication", "ValidationReport", "audit_and_publish", "validate_snapshot"]
