"""Tables whose rows the user picks (st.dataframe with on_select).

Streamlit keeps a table's selection as row *positions* under the widget key. When the rows
change (a plan approved leaves the queue, a filter narrows the list) the old position points
past the end or at another row. `selectable_table` keys the widget by the ids of the rows it
shows, so a different set of rows starts with no selection, and `picked_index` checks a
position against the rows before anyone indexes with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import streamlit as st


def rows_key(key: str, ids: Sequence[object]) -> str:
    """A widget key that changes whenever the shown rows (their ids, in order) change."""
    digest = hashlib.blake2s(repr(list(ids)).encode(), digest_size=6).hexdigest()
    return f"{key}_{digest}"


def picked_index(event: Any, row_count: int) -> int | None:
    """The selected row position if it is still a row of the table, else None."""
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if not rows:
        return None
    index = rows[0]
    return index if isinstance(index, int) and 0 <= index < row_count else None


def selectable_table(data: Any, ids: Sequence[object], *, key: str, **kwargs: Any) -> int | None:
    """A single-row selectable table; returns the picked position (valid for `ids`) or None."""
    event = st.dataframe(
        data,
        key=rows_key(key, ids),
        on_select="rerun",
        selection_mode="single-row",
        **kwargs,
    )
    return picked_index(event, len(ids))
