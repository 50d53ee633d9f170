"""渠道转化: the funnel scan → friend → group → conversion by channel type, code, outlet or
staff member, over time, with an export of the table."""

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.clock import shanghai_today
from core.funnel import STAGES, GroupBy, daily, funnel
from core.permissions import Action
from db.models import EventType
from ui import widgets

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

totals = {stage: sum(r.counts[stage] for r in rows) for stage in STAGES}
columns = st.columns(4)
for column, stage in zip(columns, STAGES, strict=True):
    previous = STAGES[STAGES.index(stage) - 1] if stage is not EventType.SCAN else None
    rate = f"{totals[stage] / totals[previous]:.0%}" if previous and totals[previous] else None
    column.metric(
        stage.label, f"{totals[stage]:,}", f"上一步转化 {rate}" if rate else None, delta_color="off"
    )

chart = go.Figure(
    go.Funnel(
        y=[s.label for s in STAGES],
        x=[totals[s] for s in STAGES],
        marker={"color": ["#007A3D", "#2E9A5E", "#7FBF9A", "#E0A100"]},
    )
)
chart.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10})
st.plotly_chart(chart, key="funnel_chart")

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
    trend = pd.DataFrame([{"日期": d, "事件": e.label, "次数": n} for d, e, n in series])
    figure = go.Figure()
    for stage in STAGES:
        part = trend[trend["事件"] == stage.label]
        figure.add_scatter(x=part["日期"], y=part["次数"], name=stage.label, mode="lines+markers")
    figure.update_layout(
        title="每日事件",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h"},
    )
    st.plotly_chart(figure, key="funnel_trend")
