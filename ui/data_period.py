"""The notice shown instead of a board for a period with no data yet, with a button that
switches the page's period picker to the last period that has data."""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.metrics.coverage import last_period_with_data
from core.platform.periods import Period, PeriodPreset


def _switch(key: str, fallback: Period) -> None:
    # A callback runs before the next script run, so it may still set the picker's widgets.
    st.session_state[f"{key}_preset"] = PeriodPreset.CUSTOM
    st.session_state[f"{key}_range"] = (fallback.start, fallback.end)


def stop_if_no_data(key: str, period: Period, latest: date | None) -> None:
    """When `period` (from widgets.period_picker with this `key`) has no data yet: say so,
    offer the last period with data, and stop the page (no board of zeros)."""
    preset = st.session_state.get(f"{key}_preset")
    fallback = last_period_with_data(period, latest, preset)
    if fallback is None:
        return
    st.info(
        f"{period.text()}还没有数据：网点日报导入到 {latest}（通常次日上午导入前一天的数据）。",
        icon=":material/event_busy:",
    )
    st.button(
        f"查看{fallback.text()}",
        key=f"{key}_fallback",
        type="primary",
        on_click=_switch,
        args=(key, fallback),
        icon=":material/history:",
    )
    st.stop()
