"""Typed errors every stage raises, each mapped to a documented exit code (Cumulus ETL's pattern).

A scheduler reads the exit code; a data engineer reads the message, which says what failed and what to do,
and never carries a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class IlpError(Exception):
    """Base of the errors the CLI reports without a traceback."""

    exit_code = 1


class ConfigError(IlpError):
    """The configuration is missing, malformed or names something that does not exist."""

    exit_code = 2


class SourceUnreachable(IlpError):
    """A FHIR server could not be reached, or kept failing after every retry."""

    exit_code = 3


class AuthenticationFailed(IlpError):
    """A FHIR server or its token endpoint refused the credentials (`status`: the HTTP status, when one came)."""

    exit_code = 4

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ValidationBlocked(IlpError):
    """A critical expectation failed: the cohort was not published. `failures` names each failing expectation
    (one line each), `summary` is the audit's validation summary."""

    exit_code = 5

    def __init__(self, message: str, failures: Sequence[str] = (), summary: Path | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.summary = summary


class SourceProtocolError(IlpError):
    """A FHIR server answered, but not as FHIR says it should (bad JSON, wrong resource, broken paging), or refused
    a request (`status`: the HTTP status, when one came)."""

    exit_code = 6

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RunLocked(IlpError):
    """Another run of the same centre holds its lock."""

    exit_code = 7


class CohortNotFound(IlpError):
    """The cohort definition selects no patient of a centre that has patients: nothing is published, and the
    message says what the centre's data holds instead (its procedure kinds and the codes that mean nothing)."""

    exit_code = 9


class PackageRefused(IlpError):
    """A centre package failed verification at the hub: unsigned, signed by another key, or changed since signing."""

    exit_code = 8


class ReleaseHeld(IlpError):
    """An export of protected aggregates is held back: a few patients apart from an earlier release, it would
    give theirs away (`analytics.releases`). Nothing is wrong; the next export goes once enough have changed."""

    exit_code = 10
