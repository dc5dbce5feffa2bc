"""A source of FHIR resources, and the one verb every source shares: ingest into the landing zone."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from connectors.landing import LandingRun, LandingZone
from connectors.progress import CentreProgress, PullProgress, pull_progress

CONNECTOR_VERSION = "0.1.0"


class Source(ABC):
    """Where a centre's resources come from: a FHIR REST API, a Bulk Data export, or files."""

    kind: ClassVar[str]

    def __init__(self, resource_types: tuple[str, ...]) -> None:
        self.resource_types = resource_types

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """What identifies this pull (server, types, options): a checkpoint resumes only the same pull."""

    def stream_names(self) -> list[str]:
        """The output streams (resource types) the pull writes."""
        return list(self.resource_types)

    @abstractmethod
    def pull(self, run: LandingRun, progress: PullProgress) -> dict[str, Any]:
        """Land everything the run's window covers; return what the manifest should say about the source."""

    def close(self) -> None:  # noqa: B027 - sources without connections have nothing to close
        """Release connections."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def ingest(source: Source, zone: LandingZone, incremental: bool = True,
           progress: PullProgress | None = None) -> Path:
    """Pull from `source` into `zone` (resuming an interrupted pull of the same source); return the run folder.
    A failed pull notes how it failed in its checkpoint: a resume that fails the same way again is given up."""
    run = zone.start(source.fingerprint(), source.stream_names(), incremental=incremental)
    started = time.perf_counter()
    try:
        if progress is None:
            with pull_progress() as bars:
                described = source.pull(run, CentreProgress(bars, zone.centre_id))
        else:
            described = source.pull(run, CentreProgress(progress, zone.centre_id))
    except Exception as error:
        run.failed(error)
        raise
    return run.complete({**described, "connector": {"kind": source.kind, "version": CONNECTOR_VERSION},
                         "timings": {"pull_seconds": round(time.perf_counter() - started, 3)}})
