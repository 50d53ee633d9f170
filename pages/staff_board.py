"""员工排行: staff ranked on one metric over a period for an outlet, a county, a city or the
province; who is behind target; code-added friends beside the imported figure; the
scope's conversion breakdown; a drill-down with the daily trend; an export of what is shown."""

import pandas as pd
import streamlit as st

from core.metrics import series
from core.metrics.staff_rankings import (
    StaffBoard,
    StaffBoardQuery,
    StaffDetail,
    scope_figures,
    staff_detail,
    staff_leaderboard,
    staff_scopes,
)
from core.platform.errors import DomainError
from core.platform.formatting import change_text, format_metric, metric_number
from core.platform.permissions import Action, Actor
from ui import charts, widgets
from ui.text import md

actor = widgets.require(Action.VIEW_STAFF_METRICS)
st.title("员工排行")
TOPS = (10, 20, 50, 100, 500)


@st.cache_data(ttl=60, show_spinner="正在计算员工排名…")
def load_board(actor: Actor, query: StaffBoardQuery) -> StaffBoard:
    with widgets.db() as session:
        return staff_leaderboard(session, actor=actor, query=query)


@st.cache_data(ttl=60, show_spinner="正在读取员工明细…")
def load_detail(actor: Actor, staff_id: int, metric: str, query: StaffBoardQuery) -> StaffDetail:
    with widgets.db() as session:
        return staff_detail(
            session, actor=actor, staff_id=staff_id, metric=metric, period=query.period
        )


with widgets.db() as session:
    scopes = staff_scopes(session, actor=actor)
    latest = series.latest_date(session, "staff")

with widgets.filter_bar("staff"):
    metric = widgets.metric_picker("staff_metric", level="staff")
    period_col, city_col, county_col, outlet_col, top_col = st.columns([1.3, 1, 1, 1.2, 0.6])
    with period_col:
        period, _ = widgets.period_picker("staff_period", latest)
    city_id = county_id = outlet_id = None
    if scopes.own_outlet is not None:
        outlet_id = scopes.own_outlet
        names = {o: n for outlets in scopes.outlets.values() for o, n in outlets}
        outlet_col.markdown(f"**网点**  \n{md(names.get(outlet_id, ''))}")
    else:
        city_names = dict(scopes.cities)
        city_options = ([None] if scopes.province else []) + list(city_names)
        city_id = city_col.selectbox(
            "市州",
            city_options,
            format_func=lambda c: "全省" if c is None else city_names[c],
            key="staff_city",
            placeholder="请选择",
        )
        county_names = dict(scopes.counties.get(city_id, [])) if city_id else {}
        county_id = county_col.selectbox(
            "区县",
            [None, *county_names],
            format_func=lambda k: "全部区县" if k is None else county_names[k],
            key="staff_county",
            placeholder="请选择",
            disabled=city_id is None,
        )
        outlet_names = dict(scopes.outlets.get(county_id, [])) if county_id else {}
        outlet_id = outlet_col.selectbox(
            "网点",
            [None, *outlet_names],
            format_func=lambda o: "全部网点" if o is None else outlet_names[o],
            key="staff_outlet",
            placeholder="请选择",
            disabled=county_id is None,
        )
    top = top_col.selectbox("显示前", TOPS, index=3, key="staff_top", placeholder="请选择")

if period is None:
    st.stop()
if latest is None:
    widgets.empty_state("还没有员工指标。在「数据导入」上传员工日报后，这里会显示员工排名。")
    st.stop()

query = StaffBoardQuery(
    metric, period, city_id=city_id, county_id=county_id, outlet_id=outlet_id, top=top
)
try:
    board = load_board(actor, query)
    with widgets.db() as session:
        figures = scope_figures(session, actor=actor, query=query)
except DomainError as exc:
    widgets.show_error(exc)
    st.stop()

money = board.metric.is_money
st.caption(
    f"{md(board.scope_label)} · {md(board.metric.label)} · {md(board.period.text())} · 共 {board.staff_count} 名员工"
    f" · 名次变化对比 {board.previous.start} 至 {board.previous.end} · 数据截至 {board.data_until}"
)
if figures:
    st.markdown("**转化明细（本范围网点合计）**")
    columns = widgets.figure_pairs("staff_figures").columns(len(figures))
    for column, fig in zip(columns, figures, strict=True):
        column.metric(md(fig.label), format_metric(fig.value, is_money=fig.is_money))
if board.behind:
    names = "、".join(
        f"{r.name}（{float(r.completion or 0) * 100:.0f}%）" for r in board.behind[:10]
    )
    st.warning(f"落后于时间进度的员工 {len(board.behind)} 名：" + md(names), icon=":material/flag:")

friends = board.metric.key == "new_friends"
value_header = f"{board.metric.label}{'(元)' if money else ''}"
had_previous = any(r.previous_rank is not None for r in board.rows)
has_targets = any(r.target for r in [*board.rows, *board.mine])
rows = [*board.rows, *board.mine]
frame = pd.DataFrame(
    [
        {
            "名次": r.rank,
            "变化": change_text(r.change, had_previous=had_previous),
            "员工": r.name + ("" if r.active else "（离职）"),
            "员工编码": r.code,
            "网点": r.outlet_name + ("（本网点）" if r.is_mine and outlet_id is None else ""),
            "网点编码": r.outlet_code,
            value_header: format_metric(r.value, is_money=money, compact=False),
            **({"活码加好友": r.code_friends} if friends else {}),
            **(
                {
                    "目标": format_metric(r.target.value, is_money=money, compact=False)
                    if r.target
                    else "—",
                    "完成率": float(r.completion * 100) if r.completion is not None else None,
                    "落后": "落后" if r.behind else "",
                }
                if has_targets
                else {}
            ),
        }
        for r in rows
    ]
)

ranking_tab, detail_tab = st.tabs(["排行榜", "员工详情"])
with ranking_tab:
    if friends:
        st.caption(
            "「活码加好友」是通过渠道活码添加的好友数，仅供参考；排名以导入的员工日报为准，两者不相加。"
        )
    styled = frame.style.apply(
        lambda r: ["background-color: #FDE2E1" if r.get("落后") == "落后" else "" for _ in r],
        axis=1,
    )
    st.dataframe(
        styled,
        placeholder="—",
        hide_index=True,
        key="staff_table",
        height=min(38 * (len(frame) + 1), 720),
        column_config={
            "完成率": st.column_config.ProgressColumn(
                "目标完成率", min_value=0, max_value=100, format="%.0f%%"
            )
        },
    )
    numbers = {value_header: [metric_number(r.value, is_money=money) for r in rows]}
    if has_targets:
        numbers["目标"] = [
            metric_number(r.target.value, is_money=money) if r.target else None for r in rows
        ]
    widgets.table_download(
        frame.assign(**numbers),
        f"员工排行_{board.metric.label}_{board.period.start}_{board.period.end}",
        key="staff_dl",
    )

with detail_tab:
    if not rows:
        widgets.empty_state("这里可以查看单个员工的每日走势。")
        st.stop()
    pick = st.selectbox(
        "员工",
        rows,
        format_func=lambda r: f"{r.rank}. {r.name}（{r.outlet_name}）",
        key="staff_pick",
        placeholder="请选择",
    )
    try:
        detail = load_detail(actor, pick.staff_id, metric, query)
    except DomainError as exc:
        widgets.show_error(exc)
        st.stop()
    st.plotly_chart(
        charts.daily(
            [(d.day, d.value) for d in detail.daily],
            f"{detail.name} · 每日{board.metric.label}",
            money=money,
        ),
        key="staff_trend",
    )
    left, right = st.columns(2)
    left.metric(f"本期{md(board.metric.label)}", format_metric(detail.total, is_money=money))
    right.metric("活码加好友", detail.code_friends, help="通过渠道活码添加的好友，不计入导入数据")
    if detail.daily:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "日期": d.day,
                        board.metric.label: format_metric(d.value, is_money=money, compact=False),
                        "所在网点": d.outlet_code,
                    }
                    for d in detail.daily
                ]
            ),
            hide_index=True,
            key="staff_daily",
        )
