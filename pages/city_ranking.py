"""市州排名: cities by total and by average per outlet, for one metric and period."""

import pandas as pd
import streamlit as st

from core.metrics.cities import city_ranking
from core.metrics.values import METRICS, latest_date
from core.platform.formatting import change_text, format_metric, metric_number, round_half_up
from core.platform.permissions import Action
from ui import charts, data_period, widgets

actor = widgets.require(Action.VIEW_CITY_RANKING)
st.title("市州排名")

with widgets.db() as session:
    latest = latest_date(session)
with widgets.filter_bar("city"):
    metric = widgets.metric_picker("city_metric")
    left, _ = st.columns([1, 2])
    with left:
        period, _ = widgets.period_picker("city_period", latest)
if period is None:
    st.stop()
if latest is None:
    widgets.empty_state("还没有指标数据。导入网点日报后，这里会显示各市州的排名。")
    st.stop()
data_period.stop_if_no_data("city_period", period, latest)

with widgets.db() as session:
    rows = city_ranking(session, actor=actor, metric=metric, period=period)
spec = METRICS[metric]
money = spec.is_money
st.caption(f"{spec.label} · {period.text()} · 网点平均 = 市州合计 ÷ 全部网点数（含未上报网点）")
had_previous = any(r.previous_rank_total is not None for r in rows)


def average_text(value) -> str:
    return format_metric(round_half_up(value), is_money=money, compact=False)


unit = "(元)" if money else ""
total_header, average_header = f"合计{unit}", f"网点平均{unit}"
frame = pd.DataFrame(
    [
        {
            "名次": r.rank_total,
            "变化": change_text(r.change, had_previous=had_previous),
            "市州": r.name + (" （本市）" if r.city_id == actor.city_id else ""),
            "网点数": r.outlets,
            total_header: format_metric(r.total, is_money=money, compact=False),
            average_header: average_text(r.average),
            "平均名次": r.rank_average,
        }
        for r in rows
    ]
)
st.dataframe(frame, hide_index=True, key="city_table")
numbers = {  # the same table, with its amounts as numbers
    total_header: [metric_number(r.total, is_money=money) for r in rows],
    average_header: [metric_number(round_half_up(r.average), is_money=money) for r in rows],
}
widgets.table_download(
    frame.assign(**numbers), f"市州排名_{spec.label}_{period.start}_{period.end}", key="city_dl"
)

charts.show(
    charts.city_bars(
        [r.name for r in rows],
        [r.total for r in rows],
        [r.city_id == actor.city_id for r in rows],
        money=money,
    ),
    key="city_bar",
    title=f"各市州{spec.label}合计",
)
