"""渠道转化: the funnel scan → friend → group → conversion by channel type, code, outlet or
staff member, over time, with an export of the table."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.channels.funnel import STAGES, GroupBy, daily, funnel, funnel_total
from core.platform.clock import shanghai_today
from core.platform.permissions import Action
from db.models import EventType
from ui import charts, widgets

actor = widgets.require(Action.VIEW_CHANNEL_STATS)
st.title("渠道转化")

today = shanghai_today()
left, right = st.columns([2, 1])
period = left.date_input(
    "日期范围", value=(today - timedelta(days=29), today), max_value=today, key="funnel_period"
)
group_by = right.selectbox(
    "按…汇总", list(GroupBy), format_func=lambda g: g.label, key="funnel_group"
)
if not isinstance(period, tuple) or len(period) != 2:
    st.caption("请选择结束日期")
    st.stop()
start, end = period

with widgets.db() as session:
    rows = funnel(session, actor=actor, start=start, end=end, group_by=group_by)
    series = daily(session, actor=actor, start=start, end=end)
if not rows:
    widgets.empty_state(
        "这段时间没有渠道事件。客户扫描活码后会自动记录扫码；加好友、进群、转化事件可在「渠道活码」页导入。"
    )
    st.stop()

total = funnel_total(rows)
for column, (step, stage) in zip(st.columns(4), enumerate(STAGES), strict=True):
    rate = total.rate(stage, STAGES[step - 1]) if step else None
    column.metric(
        stage.label,
        f"{total.counts[stage]:,}",
        f"上一步转化 {rate:.0%}" if rate is not None else None,
        delta_color="off",
    )
charts.show(charts.stage_funnel(total), key="funnel_chart")

frame = pd.DataFrame(
    [
        {
            group_by.label: r.key,
            **{s.label: r.counts[s] for s in STAGES},
            "扫码→加好友": r.rate(EventType.ADD_FRIEND, EventType.SCAN),
            "加好友→进群": r.rate(EventType.JOIN_GROUP, EventType.ADD_FRIEND),
            "加好友→转化": r.rate(EventType.CONVERT, EventType.ADD_FRIEND),
        }
        for r in rows
    ]
)
percent = st.column_config.NumberColumn(format="percent")
st.dataframe(
    frame,
    placeholder="—",
    hide_index=True,
    key="funnel_table",
    column_config={c: percent for c in frame.columns if "→" in c},
)
widgets.table_download(frame, f"渠道转化_{group_by.label}_{start}_{end}", key="funnel_dl")

if series:
    charts.show(charts.stage_trend(series), key="funnel_trend", title="每日事件")
