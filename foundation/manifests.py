"""What each stage records for the next one and for people: the manifests and pointers of the zones, typed.

Every record is a pydantic model, written atomically as JSON and validated when read, so a stage that reads a
field another stage never wrote fails at once with the file named, not later with a KeyError. Fields added in
later versions have defaults, so zones written by earlier versions still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from foundation.errors import IlpError
from foundation.fileio import write_json_atomically


class Record(BaseModel):
    """A JSON record of the zones: read validated, written atomically."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def read(cls, path: Path) -> Self:
        try:
            return cls.model_validate_json(Path(path).read_bytes())
        except FileNotFoundError:
            raise IlpError(f"{path} is missing") from None
        except ValidationError as error:
            raise IlpError(f"{path} is not a valid {cls.__name__}: {error.errors()[0]['msg']} at "
                           f"{'.'.join(str(p) for p in error.errors()[0]['loc'])}") from None

    @classmethod
    def read_if_present(cls, path: Path) -> Self | None:
        return cls.read(path) if Path(path).exists() else None

    def write(self, path: Path) -> None:
        write_json_atomically(Path(path), self.model_dump(mode="json", by_alias=True))


class LandedFile(Record):
    """One stream of a pull: a resource type's NDJSON, or the tombstones or rejects."""

    file: str
    count: int
    duplicates: int = 0
    bytes: int
    sha256: str


class LandingManifest(Record):
    """What one pull of one centre landed (`landing/centre=<id>/run=<id>/manifest.json`). Besides these fields it
    carries what the source says of itself (server, FHIR version, export, requests), which varies by source."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    centre_id: str
    started_at: str
    finished_at: str
    resumed: bool = False
    window: dict[str, dict[str, str | None]] = {}
    files: dict[str, LandedFile]
    watermarks: dict[str, str] = {}
    warnings: list[str] = []
    outcome: str = "complete"

    @property
    def resources(self) -> int:
        """Resource lines landed (resource types' streams; not tombstones or rejects)."""
        return sum(f.count for name, f in self.files.items() if name[:1].isupper())


class StatePointer(Record):
    """The pointer to a centre's current state (`resources/centre=<id>/current.json`): the segments and dropped
    list in force, the landing runs merged, and what the merges counted. A pointer of another layout (another
    `schema`) is rebuilt from the landing zone, so keys it has and this one lacks are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    segments: list[str] = []
    dropped: str | None = None
    runs: list[str] = []
    counts: dict[str, dict[str, int]] = {}  # resource type -> in/current/superseded/deleted/...
    transform_run: str | None = None
    harmonisation: str | None = None
    current_rows: int = 0
    dropped_rows: int = 0
    schema_id: str | None = Field(default=None, alias="schema")


class Reconciled(Record):
    """Per resource type: every current resource is used by a row, quarantined, or out of the cohort's scope
    (about a patient the cohort definition does not select: counted, never quarantined)."""

    resources: int
    used: int
    quarantined: int
    out_of_scope: int = 0


class SnapshotManifest(Record):
    """What the transform made of one centre in one snapshot (`cohort/snapshots/run=<id>/manifest-<centre>.json`)."""

    run_id: str
    centre_id: str
    merged_landing_runs: list[str]
    merge_counts: dict[str, dict[str, int]]
    rows: dict[str, int]
    reconciliation: dict[str, Reconciled]
    unmapped_codes: int
    endpoints: list[str]
    # The cohort found: its `definition` (`CohortDefinition`), `patients` in it and `other_patients` (out of scope),
    # patients perfused `without_condition`, the procedure `codes` that selected them (patients each), a `warning`.
    cohort: dict[str, Any] = {}
    unknown_extensions: int = 0  # extension URLs in the centre's data that no view reads
    dates_shifted: bool = False  # every date moved by the patient's keyed offset (intervals unchanged)
    conceptmaps: list[str] = []
    conceptmaps_rejected: list[str] = []
    timings: dict[str, float] = {}
    # table -> column -> rows with a value (and `rows`); gaps: `table.column` empty here that other centres fill,
    # each with its warning.
    completeness: dict[str, dict[str, int]] = {}
    gaps: list[str] = []
    warnings: list[str] = []
    finished_at: str

    @property
    def quarantined(self) -> int:
        return sum(c.quarantined for c in self.reconciliation.values())


class PublicationRecord(Record):
    """The publication pointer (`cohort/published.json`): which snapshot readers see, and the audit that let it."""

    snapshot: str  # relative to cohort/
    run_id: str
    validation: str  # relative to the root
    published_at: str
    centres: list[str]
    expectations_evaluated: int
    warnings: int


class Finding(Record):
    """One failed expectation, as the audit reports and its summary records it (keys are pseudonyms, never
    values)."""

    suite: str
    expectation: str
    column: str | None
    description: str | None
    severity: str
    unexpected_count: int | None
    observed: Any
    sample_keys: list[dict[str, Any]]

    def line(self) -> str:
        count = f"{self.unexpected_count} rows" if self.unexpected_count is not None else f"observed {self.observed}"
        target = f"{self.suite}.{self.column}" if self.column else self.suite
        keys = "; ".join(", ".join(f"{k}={v}" for k, v in key.items()) for key in self.sample_keys[:3])
        what = self.description or self.expectation
        return f"[{self.severity}] {target}: {self.expectation} ({what}): {count}" + (f"; e.g. {keys}" if keys else "")


class ValidationSummary(Record):
    """One audit (`validation/run=<id>/summary.json`), for schedulers."""

    snapshot: str
    passed: bool
    evaluated: int
    critical_failures: int
    warnings: int
    findings: list[Finding]
    data_docs: str
    seconds: float
    preview_report: str | None = None  # the report of what a blocked run would have published


class PackageManifest(Record):
    """What a centre package holds (`manifest.json`, signed beside it): every file with its SHA-256 and size."""

    centre_id: str
    kind: str  # "rows" (the validated cohort tables) or "aggregates" (answers to the hub's standard requests)
    created_at: str
    software: str  # the ilp-cohort version that wrote it
    snapshot: str  # the published snapshot it comes from
    validation: dict[str, Any]  # that snapshot's validation verdict: passed, and how many checks (no row keys)
    grid_months: float | None = None  # times rounded up to this grid before counting (aggregates)
    output_policy: dict[str, Any] = {}  # the policy its aggregates were released under (`OutputPolicy`)
    dates_shifted: bool = False  # rows: every date moved by the patient's keyed offset
    files: dict[str, dict[str, Any]]  # path in the package: {"sha256", "bytes"}
