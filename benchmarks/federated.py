"""Benchmark: what a coarser time grid costs the hub's pooled estimates, and what each centre sends.

Centres share event and censoring counts per distinct time; distinct times are the patients' own times, so a centre
may round them up to a grid first. For each grid this prints how far the pooled Kaplan-Meier curve (anywhere, and at
the grid's times), its median and
5-year survival, and the between-centre log-rank p-value move from the exact ones, how many distinct times each
centre discloses, and the bytes and requests a centre answers (the Cox model's rounds are on exact times at the
centre, so the grid does not touch it).

    .venv/bin/python benchmarks/federated.py [--snapshot zones/cohort/snapshots/run=...] [--patients 300]

Without a snapshot: a random consortium of three centres (the test suite's generator, scaled).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.cohort import CohortData, read_snapshot
from analytics.federated import FederatedCox, Site, Transport, pooled_kaplan_meier, pooled_logrank
from analytics.kaplan_meier import KaplanMeier
from analytics.logrank import LogRankTest
from analytics.plan import AnalysisPlan
from analytics.policy import UNPROTECTED
from analytics.survival_tables import CATEGORICAL, COX_COVARIATES
from tests.test_federated import _random_consortium

PLAN = AnalysisPlan(policy=UNPROTECTED)  # what the time grid alone costs, without the output policy
GRIDS = (None, 0.5, 1.0, 3.0, 6.0, 12.0)


class Metered:
    """A JSON transport that counts the requests a centre answers and the bytes it sends."""

    def __init__(self, site: Site) -> None:
        self.site, self.requests, self.bytes, self.distinct_times = site, 0, 0, 0

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        answer = self.site.answer(json.loads(json.dumps(request)))
        text = json.dumps(answer)
        self.requests += 1
        self.bytes += len(text)
        if "counts" in answer:
            self.distinct_times = max(self.distinct_times, len({row[0] for row in answer["counts"]}))
        return dict(json.loads(text))


def _curve_gaps(exact: KaplanMeier, coarse: KaplanMeier, grid: float | None) -> tuple[float, float]:
    """The largest vertical distance between the two step curves anywhere, and at the grid's own times (where a
    curve from rounded-up times is meant to be read: every event up to that time is in both)."""
    anywhere = np.union1d(exact.table_["time"], coarse.table_["time"])
    on_grid = np.arange(grid, anywhere.max() + grid, grid) if grid else anywhere

    def at(km: KaplanMeier, times: np.ndarray) -> np.ndarray:
        steps = np.searchsorted(km.table_["time"].to_numpy(), times, side="right") - 1
        return np.where(steps >= 0, km.table_["survival"].to_numpy()[np.maximum(steps, 0)], 1.0)

    return (float(np.max(np.abs(at(exact, anywhere) - at(coarse, anywhere)))),
            float(np.max(np.abs(at(exact, on_grid) - at(coarse, on_grid)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path)
    parser.add_argument("--patients", type=int, default=300, help="per centre, for the random consortium")
    args = parser.parse_args()
    data: CohortData = read_snapshot(args.snapshot) if args.snapshot else _scaled(args.patients)
    print(f"{len(data.cohort)} patients in {len(data.centres)} centres ({data.source})")
    print(f"{'grid (months)':>14} {'endpoint':>8} {'max |dS|':>9} {'on grid':>8} {'d median':>9} {'d S(5y)':>8} "
          f"{'d p (centres)':>13} {'times/centre':>12} {'bytes/centre':>12}")
    for endpoint in ("os", "lrfs"):
        exact = _pooled(data, endpoint, None)
        for grid in GRIDS:
            km, test, meters = _pooled(data, endpoint, grid)
            gap_5y = km.at([60.0])[0].survival - exact[0].at([60.0])[0].survival
            times = np.mean([m.distinct_times for m in meters.values()])
            anywhere, on_grid = _curve_gaps(exact[0], km, grid)
            print(f"{grid or 'exact':>14} {endpoint:>8} {anywhere:9.4f} {on_grid:8.4f} "
                  f"{km.median_ - exact[0].median_:9.2f} {gap_5y:8.4f} {test.p_value_ - exact[1].p_value_:13.2e} "
                  f"{times:12.0f} {np.mean([m.bytes for m in meters.values()]):12,.0f}")
    meters = {c: Metered(Site(data.for_centre(c), PLAN)) for c in data.centres}
    model = FederatedCox(PLAN.alpha).fit(dict(meters), "os", COX_COVARIATES, CATEGORICAL)
    print(f"Cox (os, stratified by centre): {len(model.summary_)} terms, {model.rounds_} requests per centre, "
          f"{np.mean([m.bytes for m in meters.values()]):,.0f} bytes per centre")


def _pooled(data: CohortData, endpoint: str, grid: float | None
            ) -> tuple[KaplanMeier, LogRankTest, dict[str, Metered]]:
    """The pooled KM and between-centre log-rank from centres counting on `grid`, and what each centre sent."""
    meters = {c: Metered(Site(data.for_centre(c), PLAN, grid)) for c in data.centres}
    sites: dict[str, Transport] = dict(meters)
    km = pooled_kaplan_meier(sites, endpoint, PLAN)
    if km is None:
        raise SystemExit(f"no patient has the {endpoint} endpoint")
    return km, pooled_logrank(sites, endpoint), meters


def _scaled(patients: int) -> CohortData:
    """Three random centres of about `patients` each (the test suite's generator, its consortia merged)."""
    frames, seed = [], 0
    while sum(len(f) for f in frames) < 3 * patients:
        frames.append(_random_consortium(seed).cohort.assign(centre_id=f"centre-{seed % 3}"))
        seed += 1
    cohort = pd.concat(frames, ignore_index=True)
    return CohortData(cohort, pd.DataFrame({"centre_id": pd.Series(dtype=str)}), f"random, {len(cohort)} patients")


if __name__ == "__main__":
    main()
