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
    meaning = 'internal error (a bug: run again with --debug and report the traceback)'


class ConfigError(IlpError):
    """The configuration is missing, malformed or names something that does not exist."""

    exit_code = 2
    meaning = 'configuration or usage error'


class SourceUnreachable(IlpError):
    """A FHIR server could not be reached, or kept failing after every retry."""

    exit_code = 3
    meaning = 'source unreachable (retries exhausted)'


class AuthenticationFailed(IlpError):
    """A FHIR server or its token endpoint refused the credentials (`status`: the HTTP status, when one came)."""

    exit_code = 4
    meaning = 'authentication refused'

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ValidationBlocked(IlpError):
    """A critical expectation failed: the cohort was not published. `failures` names each failing expectation
    (one line each), `summary` is the audit's validation summary."""

    exit_code = 5
    meaning = 'validation blocked publication (the previous publication stays)'

    def __init__(self, message: str, failures: Sequence[str] = (), summary: Path | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.summary = summary


class SourceProtocolError(IlpError):
    """A FHIR server answered, but not as FHIR says it should (bad JSON, wrong resource, broken paging), or refused
    a request (`status`: the HTTP status, when one came)."""

    exit_code = 6
    meaning = 'a server broke the FHIR protocol'

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RunLocked(IlpError):
    """Another run of the same centre holds its lock."""

    exit_code = 7
    meaning = "another run holds a centre's lock"


class CohortNotFound(IlpError):
    """The cohort definition selects no patient of a centre that has patients: nothing is published, and the
    message says what the centre's data holds instead (its procedure kinds and the codes that mean nothing)."""

    exit_code = 9
    meaning = 'the cohort definition found no patient at a centre (nothing published; the message names the codes)'


class PackageRefused(IlpError):
    """A centre package failed verification at the hub: unsigned, signed by another key, or changed since signing."""

    exit_code = 8
    meaning = 'a centre package was refused at the hub (unsigned, signed by another key, or changed after signing)'


class ReleaseHeld(IlpError):
    """An export of protected aggregates is held back: a few patients apart from an earlier release, it would
    give theirs away (`analytics.releases`). Nothing is wrong; the next export goes once enough have changed."""

    exit_code = 10
    meaning = "a package of aggregates is held back (too few patients changed since the centre's last release)"


def exit_codes() -> dict[int, str]:
    """Every exit code an `ilp` command ends with, and what it means: 0, then each typed error's, read from the
    classes themselves so that `ilp --help` and the docs say the same."""
    codes = {0: "done"}

    def add(error: type[IlpError]) -> None:
        codes.setdefault(error.exit_code, error.meaning)
        for subclass in error.__subclasses__():
            add(subclass)
    add(IlpError)
    return dict(sorted(codes.items()))


def exit_codes_text() -> str:
    """The exit codes as one sentence: '0 done; 1 ...; 10 ...'."""
    return "; ".join(f"{code} {meaning}" for code, meaning in exit_codes().items())
