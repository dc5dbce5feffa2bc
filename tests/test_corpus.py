"""The bad-input corpus (`tests/corpus/cases.py`): every case lands and is transformed in one consortium run, and
each must end where its case says (in the tables, rejected or quarantined with the reason, or a clear error),
with every count reconciled. `scripts/corpus_report.py` prints the same run for reviewers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from tests.corpus.cases import CASES, Case
from tests.corpus.runner import Outcome, base_record, run_corpus

Consortium = tuple[Path, dict[str, Any]]


@pytest.fixture(scope="module")
def corpus(spark: SparkSession, demo_consortium: Consortium,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Outcome]]:
    record = base_record(demo_consortium[0] / "aurora")
    return record, run_corpus(spark, record, tmp_path_factory.mktemp("corpus"))


def test_the_corpus_has_forty_named_cases() -> None:
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_ends_where_it_should(corpus: tuple[list[dict[str, Any]], dict[str, Outcome]], case: Case) -> None:
    record, outcomes = corpus
    outcome, expect, baseline = outcomes[case.name], case.expect(record), outcomes["baseline"]
    assert outcome.error == expect.error or (expect.error and expect.error in (outcome.error or ""))
    assert len(outcome.rejected) == len(expect.rejected) and all(
        got.startswith(want) for got, want in zip(outcome.rejected, expect.rejected, strict=True)), outcome.rejected
    assert outcome.quarantined == expect.quarantined
    assert outcome.unreconciled == []
    if expect.rows == {"*": 0}:
        assert set(outcome.rows.values()) == {0}
    elif expect.rows is not None:
        assert outcome.rows == {t: n + expect.rows.get(t, 0) for t, n in baseline.rows.items()}
