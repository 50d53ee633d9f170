"""The one chart helper (ui/charts.py): Chinese dates and numbers, one y axis per chart."""

import json
from datetime import date, timedelta

import plotly.graph_objects as go

from ui import charts

DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]


def _all_figures() -> list[dict]:
    walk = [(d, 3 + i % 4, 40 + i) for i, d in enumerate(DAYS)]
    return [
        charts.lines(DAYS, {"新增好友": list(range(30)), "转化客户": list(range(30))}, unit="人"),
        charts.lines(DAYS, {"新增存款": [1_950_000_00] * 30}, money=True, bars=True),
        charts.distribution([100, 2_000_000_00], 500, money=True),
        charts.city_bars(["长沙市", "株洲市"], [5, 7], [True, False], money=False),
        *charts.rank_walk(walk),
    ]


def test_large_amounts_are_plotted_in_wan_and_never_with_si_suffixes() -> None:
    deposits = charts.lines(DAYS, {"新增存款": [1_950_000_00] * 30}, money=True, bars=True)
    assert deposits["data"][0]["y"][0] == 195.0  # 1.95 亿 fen = 195 万元
    assert deposits["layout"]["yaxis"]["title"]["text"] == "万元"
    assert charts.scale_for([9_999_00], money=True).unit == "元"
    assert charts.scale_for([150_000], money=False, unit="人").unit == "万人"
    for figure in _all_figures():
        for axis in ("xaxis", "yaxis"):
            tickformat = figure["layout"].get(axis, {}).get("tickformat", "")
            assert "s" not in tickformat  # d3's SI format is what shows "10k"


def test_dates_read_as_month_and_day_and_no_chart_has_two_y_axes() -> None:
    for figure in _all_figures():
        assert "yaxis2" not in figure["layout"]
        if figure["layout"]["xaxis"].get("type") == "date":
            assert figure["layout"]["xaxis"]["tickformat"] == "%-m月%-d日"
        assert (
            figure["layout"]["yaxis"].get("nticks", 6) >= 5
            or "autorange" in figure["layout"]["yaxis"]
        )


def test_every_figure_is_valid_plotly_and_legends_sit_above_the_plot() -> None:
    for figure in _all_figures():
        go.Figure(figure)  # raises on an invalid property
        json.dumps(figure, default=str)
        legend = figure["layout"]["legend"]
        assert legend["yanchor"] == "bottom" and legend["y"] >= 1


def test_the_distribution_sends_bins_not_every_outlet() -> None:
    figure = charts.distribution(list(range(50_000)), 25_000, money=False)
    bars = figure["data"][0]
    assert len(bars["x"]) == 40 and sum(bars["y"]) == 50_000
    assert figure["layout"]["shapes"][0]["x0"] == 25_000


def test_tick_steps_are_round_and_leave_at_least_four_intervals() -> None:
    assert charts.nice_step(0, 1.95) == 0.2
    assert charts.nice_step(0, 25_000) == 5_000
    assert charts.nice_step(3, 6, whole=True) == 1  # ranks: whole steps
    assert charts.nice_step(0, 100) == 20


def test_a_flat_series_keeps_plotlys_own_ticks() -> None:
    flat = charts.lines(DAYS, {"新增存款": [0] * 30}, money=True)
    assert "dtick" not in flat["layout"]["yaxis"]
