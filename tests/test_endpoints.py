"""The default endpoint declaration reproduces the reference study's definitions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from foundation.model import DEFAULT_ENDPOINTS
from foundation.model.dates import months_between

ENDPOINTS = {e.name: e for e in DEFAULT_ENDPOINTS}
DX, ILP, RESECTION = date(2010, 1, 10), date(2010, 2, 1), date(2010, 4, 1)


def _row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"diagnosis_date": DX, "first_ilp_date": ILP, "resection_date": RESECTION,
                            "radiological_response": "SD", "local_relapse_date": None,
                            "distant_metastasis_date": None, "death_date": None,
                            "last_contact_date": date(2015, 4, 1)}
    base.update(kw)
    return base


def test_os_runs_from_diagnosis_to_death() -> None:
    death = date(2013, 1, 10)
    assert ENDPOINTS["os"].evaluate(_row(death_date=death, last_contact_date=death)) == (
        months_between(DX, death), True)


def test_os_is_censored_at_last_contact() -> None:
    assert ENDPOINTS["os"].evaluate(_row()) == (months_between(DX, date(2015, 4, 1)), False)


def test_rfs_takes_the_earliest_relapse_from_resection() -> None:
    local, distant = date(2012, 1, 1), date(2011, 6, 1)
    row = _row(local_relapse_date=local, distant_metastasis_date=distant)
    assert ENDPOINTS["rfs"].evaluate(row) == (months_between(RESECTION, distant), True)
    assert ENDPOINTS["lrfs"].evaluate(row) == (months_between(RESECTION, local), True)
    assert ENDPOINTS["mfs"].evaluate(row) == (months_between(RESECTION, distant), True)


def test_death_censors_relapse_endpoints() -> None:
    death = date(2012, 1, 1)
    months, event = ENDPOINTS["rfs"].evaluate(_row(death_date=death, last_contact_date=death))
    assert (months, event) == (months_between(RESECTION, death), False)


def test_unresected_patients_start_at_first_ilp() -> None:
    row = _row(resection_date=None)
    assert ENDPOINTS["rfs"].origin_kind(row) == "first_ilp_date"
    assert ENDPOINTS["rfs"].evaluate(row)[0] == pytest.approx(months_between(ILP, date(2015, 4, 1)))


def test_progressive_unresected_patients_are_excluded_but_resected_ones_are_not() -> None:
    assert ENDPOINTS["rfs"].evaluate(_row(resection_date=None, radiological_response="PD")) == (None, None)
    assert ENDPOINTS["rfs"].evaluate(_row(radiological_response="PD"))[1] is False
    assert ENDPOINTS["os"].evaluate(_row(resection_date=None, radiological_response="PD"))[1] is False
