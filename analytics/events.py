"""Event indicators read as R's `Surv` reads them, so a status column means the same here as in R.

Accepted: booleans; 0/1 (1 = event); 1/2 (2 = event, R's other convention, recognised when no value is 0).
Anything else (a 3, a -1, a missing status) is an error naming the values, never silently an event.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def event_indicator(values: Sequence[object] | pd.Series | np.ndarray) -> np.ndarray:
    """The events as booleans."""
    raw = np.asarray(values)
    if raw.dtype == bool:
        return raw
    try:
        numbers = raw.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"event indicators must be booleans, 0/1 or 1/2; got {sorted(set(raw.tolist()), key=str)[:5]}"
                         ) from None
    if np.isnan(numbers).any():
        raise ValueError("event indicators must not be missing")
    seen = set(np.unique(numbers).tolist())
    if seen <= {0.0, 1.0}:
        return numbers == 1.0
    if seen <= {1.0, 2.0}:
        return numbers == 2.0
    raise ValueError(f"event indicators must be booleans, 0/1 (1 = event) or 1/2 (2 = event, as R's Surv); "
                     f"got the values {sorted(seen)[:5]}")
