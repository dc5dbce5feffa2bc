"""Small-cell suppression for outputs that leave a centre.

A count from 1 to `min_cell - 1` could single out a patient; when suppression is on, such counts, and every
figure derived from them in the same row (percent, interval, survival estimates), are blanked and the row says
so. Zero is not suppressed: it discloses nothing about a person.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

NOTE = "suppressed: count below {min_cell}"


def suppress(table: pd.DataFrame, counts: Sequence[str], derived: Sequence[str], min_cell: int) -> pd.DataFrame:
    """A copy of `table` with small counts in `counts` blanked, and `derived` blanked on those rows."""
    result = table.copy()
    present = [c for c in counts if c in result.columns]
    if not present:
        return result
    small = pd.Series(False, index=result.index)
    for column in present:
        values = pd.to_numeric(result[column], errors="coerce")
        small |= (values > 0) & (values < min_cell)
    blanked = [c for c in (*present, *derived) if c in result.columns]
    result[blanked] = result[blanked].astype(object)
    result.loc[small, blanked] = None
    notes = result["disclosure"] if "disclosure" in result.columns else pd.Series("", index=result.index)
    result["disclosure"] = notes.where(~small, NOTE.format(min_cell=min_cell))
    return result
