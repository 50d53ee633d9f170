"""渠道转化: the funnel scan → friend → group → conversion by channel type, code, outlet or
staff member, over time, with an export of the table."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.channels.funnel import (
    STAGE_BASE,
    STAGE_UNITS,
    STAGES,
    GroupBy,
    daily,
    funnel,
    funnel_total,
    rate_label,
)
from core.platform.clock import shanghai_today
from core.platform.formatting import format_percent
from core.platform.permissions import Action, allowed
from db.models import EventType
from ui import charts, widgets

actor = widgets.require(Action.VIEW_CHANNEL_STATS)
st.title("渠道转化")


def _percent(rate: float | None) -> float | None:
    # Percent points rounded to one decimal: the table shows and exports 12.8, like the cards.
    return None if rate is None else round(rate * 100, 1)


today = shanghai_today()
left, right = st.columns([2, 1])
period = left.date_input(
    "日期范围", value=(today - timedelta(days=29), today), max_value=today, key="funnel_period"
)
group_by = right.selectbox(
    "按…汇总",
    list(GroupBy),
    format_func=lambda g: g.label,
    key="funnel_group",
    placeholder="请选择",
)
if not isinstance(period, tuple) or len(period) != 2:
    st.caption("请选择结束日期")
    st.stop()
start, end = period

with widgets.db() as session:
    rows = funnel(session, actor=actor, start=start, end=end, group_by=group_by)
    series = daily(session, actor=actor, start=start, end=end)
if not rows:
    if allowed(actor, Action.MANAGE_CHANNEL_CODES):
        hint = "客户扫描活码后会自动记录扫码；加好友、进群、转化事件可在「渠道活码」页导入。"
    else:  # an outlet manager cannot import: say what will fill the page instead
        hint = "客户扫描本网点的渠道活码、添加客户经理为好友后，这里会显示扫码、加好友、进群和转化的人数。"
    widgets.empty_state(f"这段时间还没有渠道事件。{hint}")
    st.stop()

total = funnel_total(rows)
for column, stage in zip(st.columns(4), STAGES, strict=True):
    rate = total.stage_rate(stage)
    column.metric(
        stage.label,
        f"{total.counts[stage]:,} {STAGE_UNITS[stage]}",
        f"{rate_label(stage)} {format_percent(rate)}" if stage in STAGE_BASE else None,
        delta_color="off",
        delta_arrow="off",  # a rate, not a change
    )
if total.counts[EventType.LOSS]:
    st.caption(
        f"同期流失（客户删除员工或被删除，来自企业微信回调）：{total.counts[EventType.LOSS]:,} 人"
    )
charts.show(charts.stage_funnel(total), key="funnel_chart")

frame = pd.DataFrame(
    [
        {
            group_by.label: r.key,
            **{f"{s.label}({STAGE_UNITS[s]})": r.counts[s] for s in STAGES},
            f"{EventType.LOSS.label}(人)": r.counts[EventType.LOSS],
            **{rate_label(s): _percent(r.stage_rate(s)) for s in STAGE_BASE},
        }
        for r in rows
    ]
)
percent = st.column_config.NumberColumn(format="%.1f%%")
count = st.column_config.NumberColumn(format="localized")
st.dataframe(
    frame,
    placeholder="—",
    hide_index=True,
    key="funnel_table",
    column_config={c: percent if "→" in c else count for c in frame.columns[1:]},
)
widgets.table_download(frame, f"渠道转化_{group_by.label}_{start}_{end}", key="funnel_dl")

if series:
    charts.show(charts.stage_trend(series), key="funnel_trend", title="每日事件")
