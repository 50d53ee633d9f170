"""网点排行: outlets ranked on one metric over a period, with the user's own outlet pinned,
charts, a drill-down and an export of exactly what is shown."""

import pandas as pd
import streamlit as st

from core.metrics.outlet_detail import rank_history
from core.metrics.rankings import (
    TOP_CHOICES,
    BoardQuery,
)
from core.platform.errors import DomainError
from core.platform.formatting import change_text, format_metric, metric_number
from core.platform.permissions import Action
from ui import charts, data_period, page_data, widgets
from ui.text import md

actor = widgets.require(Action.VIEW_METRICS)
st.title("网点排行")


choices, latest, campaigns = page_data.load_filters(actor)

with widgets.filter_bar("board"):
    metric = widgets.metric_picker("board_metric")
    left, middle, right, last = st.columns([1.2, 1.2, 1.2, 0.8])
    with left:
        period, campaign_id = widgets.period_picker("board_period", latest, campaigns)
    city_options = ([None] if choices.province else []) + [cid for cid, _ in choices.cities]
    city_names = dict(choices.cities)
    own_city = actor.city_id if actor.city_id in city_names else None
    city_id = middle.selectbox(
        "范围",
        city_options,
        index=city_options.index(own_city) if own_city in city_options else 0,
        format_func=lambda c: "全省" if c is None else city_names[c],
        key="board_city",
        placeholder="请选择",
    )
    county_options = (
        [None] + [k for k, _ in choices.counties.get(city_id, [])] if city_id else [None]
    )
    county_names = dict(choices.counties.get(city_id, []))
    county_id = right.selectbox(
        "区县",
        county_options,
        format_func=lambda k: "全部区县" if k is None else county_names[k],
        key="board_county",
        placeholder="请选择",
        disabled=city_id is None,
    )
    top = last.selectbox(
        "显示前", TOP_CHOICES, index=len(TOP_CHOICES) - 1, key="board_top", placeholder="请选择"
    )

if period is None:
    st.stop()
if latest is None:
    widgets.empty_state("还没有指标数据。导入网点日报后，这里会显示各网点的排名。")
    st.stop()
data_period.stop_if_no_data("board_period", period, latest)

query = BoardQuery(
    metric, period, city_id=city_id, county_id=county_id, top=top, campaign_id=campaign_id
)
try:
    board = page_data.load_board(actor, query)
except DomainError as exc:
    widgets.show_error(exc)
    st.stop()

money = board.metric.is_money
had_previous = any(row.previous_rank is not None for row in board.rows)
st.caption(
    f"{md(board.scope_label)} · {board.metric.label} · {md(board.period.text())} · 共 {board.outlet_count} 个网点"
    f" · 名次变化对比 {board.previous.start} 至 {board.previous.end} · 数据截至 {board.data_until}"
)

if board.mine is not None:
    mine = board.mine
    detail = page_data.load_detail(actor, mine.outlet_id, query)
    card = widgets.figure_pairs("board_mine", border=True)
    card.markdown(f"**本网点：{md(mine.name)}**")
    a, b, c, d = card.columns(4)
    a.metric(
        f"本范围名次（共 {board.outlet_count}）",
        f"第 {mine.rank} 名",
        widgets.rank_delta(mine.change),
    )
    b.metric(md(board.metric.label), board.metric.format(mine.value))
    if detail.gap_to_next is not None:
        c.metric(
            "距上一名",
            board.metric.format(detail.gap_to_next),
            help=f"超过「{md(detail.next_name)}」还需要的量",
        )
    else:
        c.metric("距上一名", "已是第一")
    d.metric(f"全省名次（共 {detail.province_count}）", f"第 {detail.province_rank} 名")
    if detail.gap_to_top10 is not None:
        card.caption(f"再增加 {board.metric.format(detail.gap_to_top10)} 即可进入本范围前 10 名。")

value_header = f"{board.metric.label}{'(元)' if money else ''}"
has_targets = any(row.target for row in board.rows)
rows = list(board.rows)
if board.mine is not None:
    rows.insert(0, board.mine)  # pinned above the ranking: the user's own row, no scrolling
frame = pd.DataFrame(
    [
        {
            "名次": row.rank,
            "网点": row.name + ("（本网点）" if row.is_mine else ""),
            value_header: format_metric(row.value, is_money=money, compact=False),
            "变化": change_text(row.change, had_previous=had_previous),
            **(
                {
                    "目标": format_metric(row.target, is_money=money, compact=False)
                    if row.target
                    else "—",
                    "完成率": float(row.completion * 100) if row.completion is not None else None,
                }
                if has_targets
                else {}
            ),
            "区县": row.county,
            "市州": row.city,
            "网点编码": row.code,
        }
        for row in rows
    ]
)

# Only the open tab is built: hidden charts and tables cost server time on every run.
ranking_tab, chart_tab, detail_tab = st.tabs(
    ["排行榜", "图表", "网点详情"], key="board_tab", on_change="rerun"
)
if ranking_tab.open:
    with ranking_tab:
        if board.mine is not None:
            st.caption("第一行是本网点，其后为排行榜。")
        st.dataframe(
            frame,
            placeholder="—",
            hide_index=True,
            key="board_table",
            height=min(35 * (len(frame) + 1) + 3, 720),
            column_config={
                "名次": st.column_config.NumberColumn(width=48, pinned=True),
                "网点": st.column_config.TextColumn(width="medium"),
                "完成率": st.column_config.ProgressColumn(
                    "目标完成率", min_value=0, max_value=100, format="%.0f%%"
                ),
            },
        )
        if campaign_id and not has_targets:
            st.caption("该活动没有这个指标的目标（目标只设在新增好友、转化客户和新增存款上）。")
        numbers = {value_header: [metric_number(r.value, is_money=money) for r in rows]}
        if has_targets:
            numbers["目标"] = [
                metric_number(r.target, is_money=money) if r.target else None for r in rows
            ]
        widgets.table_download(
            frame.assign(**numbers),  # the same table, with its amounts as numbers
            f"网点排行_{board.metric.label}_{board.period.start}_{board.period.end}",
            key="board_dl",
        )

if chart_tab.open:
    with chart_tab:
        top_rows = board.rows[:20]
        charts.show(
            charts.top_bar(top_rows, money=money), key="board_bar", title=f"前 {len(top_rows)} 名"
        )
        mine_value = board.mine.value if board.mine else None
        charts.show(
            charts.distribution(board.values, mine_value, money=money),
            key="board_hist",
            title="全部网点分布",
        )

if detail_tab.open:
    with detail_tab:
        candidates = [r for r in board.rows if r.drillable]
        if board.mine is not None and board.mine.drillable:
            candidates = [board.mine] + [r for r in candidates if not r.is_mine]
        if not candidates:
            widgets.empty_state("这里可以查看单个网点的每日走势和各项指标名次变化。")
            st.stop()
        pick = st.selectbox(
            "网点",
            candidates,
            format_func=lambda r: f"{r.rank}. {r.name}",
            key="board_pick",
            placeholder="请选择",
        )
        try:
            detail = page_data.load_detail(actor, pick.outlet_id, query)
            with widgets.db() as session:
                ranks = rank_history(
                    session, actor=actor, outlet_id=pick.outlet_id, metric=board.metric.key
                )
        except DomainError as exc:
            widgets.show_error(exc)
            st.stop()
        charts.show(
            charts.daily(detail.daily, board.metric.label, money=money),
            key="board_trend",
            title=f"{pick.name} · 每日{board.metric.label}",
        )
        gap = (
            "已是第一"
            if detail.gap_to_next is None
            else f"距「{md(detail.next_name)}」差 {board.metric.format(detail.gap_to_next)}"
        )
        st.markdown(
            f"本范围第 **{detail.row.rank}** 名（共 {detail.outlet_count}），{gap}；全省第 {detail.province_rank} 名。"
        )
        if len(ranks) > 1:
            city_walk, province_walk = charts.rank_walk(ranks)
            st.caption("名次走势（每日快照，近 30 天滚动；第 1 名在最上方）")
            charts.show(city_walk, key="board_rank_walk", title="市内名次")
            charts.show(province_walk, key="board_rank_walk_province", title="全省名次")
        moves = pd.DataFrame(
            [
                {
                    "指标": m.label,
                    "本期": format_metric(m.value, is_money=m.is_money),
                    "上期": format_metric(m.previous_value, is_money=m.is_money),
                    "名次": m.rank,
                    "名次变化": change_text(m.change, had_previous=had_previous),
                }
                for m in detail.moves
            ]
        )
        st.caption("各项指标的名次变化（变化最大的在前）")
        st.dataframe(moves, placeholder="—", hide_index=True, key="board_moves")
