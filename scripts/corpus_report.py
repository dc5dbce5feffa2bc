"""Print the bad-input corpus run for reviewers: each case, what it feeds in, where it ended up and why.

    .venv/bin/python scripts/corpus_report.py

Runs what `tests/test_corpus.py` runs (every case as its own centre, one transform over all of them) on a
fresh copy of the demo consortium's first ILP patient, then prints one block per case.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ilp.spark import get_spark
from demo.synth import DEMO_CONSORTIUM, DEMO_SEED, generate
from tests.corpus.runner import base_record, run_corpus


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ilp-corpus-") as work:
        generate(DEMO_CONSORTIUM[:1], DEMO_SEED, Path(work) / "synthetic")
        record = base_record(Path(work) / "synthetic" / DEMO_CONSORTIUM[0].centre_id)
        outcomes = run_corpus(get_spark(), record, Path(work) / "zones")
    baseline = outcomes["baseline"].rows
    for name, outcome in outcomes.items():
        print(f"\n{name}: {outcome.case.what}")
        if outcome.error:
            print(f"  stopped with a clear error: {outcome.error}")
        for reason in outcome.rejected:
            print(f"  rejected at landing: {reason}")
        for resource_id, reason in sorted(outcome.quarantined.items()):
            print(f"  quarantined {resource_id}: {reason}")
        changes = {t: n - baseline.get(t, 0) for t, n in outcome.rows.items() if n != baseline.get(t, 0)}
        print("  tables: " + (", ".join(f"{t} {d:+d}" for t, d in changes.items()) if changes
                              else "the same rows as the valid record"))
        print(f"  COUNTS DO NOT RECONCILE: {outcome.unreconciled}" if outcome.unreconciled else "  counts reconcile")


if __name__ == "__main__":
    main()
