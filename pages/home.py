"""首页: the role's totals for the last 30 days, the trend, and what needs attention."""

import streamlit as st

from core.platform.clock import shanghai_today
from core.platform.permissions import Action
from ui import charts, nav, page_data, widgets
from ui.text import md

actor = widgets.require(Action.VIEW_DASHBOARD)


overview = page_data.load_home(actor, shanghai_today())
st.title(f"您好，{md(actor.display_name)}")
st.caption(
    f"{md(overview.scope_label)} · 近 30 天（{overview.start} 至 {overview.end}），与前 30 天对比"
    + (f" · 数据截至 {overview.latest_date}" if overview.latest_date else "")
)

if overview.attention:
    st.subheader("需要关注")
    for item in overview.attention:
        show = {"warning": st.warning, "success": st.success}.get(item.level, st.info)
        show(md(item.text))  # names outlets and campaigns
        nav.link_to(actor, item.page)

if overview.latest_date is None:
    widgets.empty_state(
        "还没有指标数据。管理员或市分策划可在「数据导入」上传网点日报后，这里会显示汇总和趋势。"
    )
    st.stop()

for start in range(0, len(overview.kpis), 3):  # row by row, so phones stack them in order
    for column, kpi in zip(st.columns(3), overview.kpis[start : start + 3], strict=False):
        suffix = "（期末）" if kpi.is_stock else ""
        column.metric(
            f"{md(kpi.label)}{suffix}",
            kpi.text,
            kpi.change,
            border=True,
            delta_arrow="off" if kpi.unchanged else "auto",
            delta_color="off" if kpi.unchanged else "normal",
        )

st.subheader("每日趋势")
if not overview.trend:
    widgets.empty_state("近 30 天没有上报数据。")
else:
    days = [p.day for p in overview.trend]
    # Two measures of different kinds: two small charts, never two y axes.
    charts.show(
        charts.lines(
            days,
            {
                "新增好友": [p.new_friends for p in overview.trend],
                "转化客户": [p.conversions for p in overview.trend],
            },
            unit="人",
        ),
        key="home_trend",
        title="新增好友与转化客户",
    )
    charts.show(
        charts.lines(
            days, {"新增存款": [p.deposits_fen for p in overview.trend]}, money=True, bars=True
        ),
        key="home_deposits",
        title="新增存款",
    )
    st.caption("逢 8（每月 8、18、28 日）为会员权益日，通常出现明显高峰。")
