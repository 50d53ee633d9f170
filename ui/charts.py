"""Every chart of the app, through one helper so they all read the same way to a Chinese
user: dates as 11月8日, numbers with thousands separators and in 万 / 万元 once they are
large (never "10k"), at least five y ticks, legends above the plot area (never over an axis),
one y axis per chart (two measures get two small charts), and no toolbar on phones.

Pages call a builder here and pass the figure to `show`. Money arrives in fen and is plotted
in 元 or 万元 (display only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import plotly.graph_objects as go
import streamlit as st

from core.channels.funnel import STAGES, FunnelRow
from core.metrics.rankings import BoardRow
from db.models import EventType
from ui.text import md, plot_text

GREEN, GOLD, LIGHT, PALE = "#007A3D", "#E0A100", "#7FBF9A", "#B7DCC5"
DATE_TICKS = "%-m月%-d日"
DATE_HOVER = "%Y年%-m月%-d日"
NUMBER_TICKS = ",.4~r"  # 12,345 / 1.59 / 0.25: grouped, no SI suffix ("10k")
WAN = 10_000
# The toolbar adds nothing a manager needs on a phone and covers titles and legends there.
PLOT_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
PHONE_CSS = (
    "<style>@media (max-width: 640px) {"
    ' [data-testid="stPlotlyChart"] .modebar-container {display: none !important;}}</style>'
)


@dataclass(frozen=True)
class Scale:
    """How stored values become plotted numbers: value * factor, in `unit`."""

    factor: float
    unit: str

    def __call__(self, value: int | float) -> float:
        return value * self.factor


def scale_for(values: list[int] | list[float], *, money: bool, unit: str = "") -> Scale:
    """元 or 万元 for money in fen; the plain unit or 万+unit for counts, by the largest value."""
    peak = max((abs(v) for v in values), default=0)
    if money:
        return Scale(1 / 1_000_000, "万元") if peak >= 100 * WAN else Scale(0.01, "元")
    return Scale(1 / WAN, f"万{unit}") if peak >= 10 * WAN else Scale(1, unit)


def _layout(figure: go.Figure, *, height: int, legend: bool, y_unit: str = "") -> go.Figure:
    figure.update_layout(
        height=height,
        margin={"l": 8, "r": 8, "t": 32 if legend else 12, "b": 8},
        separators=".,",
        showlegend=legend,
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "title": None},
        hoverlabel={"namelength": -1},
        font={"family": "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif"},
    )
    figure.update_yaxes(
        tickformat=NUMBER_TICKS, nticks=6, title={"text": y_unit} if y_unit else None
    )
    return figure


def _dates(figure: go.Figure) -> None:
    figure.update_xaxes(type="date", tickformat=DATE_TICKS, hoverformat=DATE_HOVER)


def show(figure: go.Figure, *, key: str, title: str = "") -> None:
    """The chart with its title above it as text (a toolbar can never cover it)."""
    if title:
        st.markdown(f"**{md(title)}**")
    st.plotly_chart(figure, key=key, config=PLOT_CONFIG)


def lines(
    days: list[date],
    series: dict[str, list[int]],
    *,
    money: bool = False,
    unit: str = "",
    height: int = 260,
    bars: bool = False,
) -> go.Figure:
    """One measure per chart: a line (or bars) per named series over days."""
    scale = scale_for([v for values in series.values() for v in values], money=money, unit=unit)
    figure = go.Figure()
    colors = [GREEN, GOLD, LIGHT, "#2E9A5E"]
    for (name, values), color in zip(series.items(), colors * 3, strict=False):
        points = [scale(v) for v in values]
        if bars:
            figure.add_bar(x=days, y=points, name=name, marker_color=color)
        else:
            figure.add_scatter(x=days, y=points, name=name, mode="lines+markers", line_color=color)
    _layout(figure, height=height, legend=len(series) > 1, y_unit=scale.unit)
    _dates(figure)
    figure.update_layout(hovermode="x unified")
    if bars:
        figure.update_yaxes(rangemode="tozero")
    return figure


def top_bar(rows: list[BoardRow], *, money: bool) -> go.Figure:
    shown = rows[::-1]
    scale = scale_for([r.value for r in shown], money=money)
    figure = go.Figure(
        go.Bar(
            x=[scale(r.value) for r in shown],
            y=[f"{r.rank}. {plot_text(r.name)}" for r in shown],
            orientation="h",
            marker_color=[GOLD if r.is_mine else GREEN for r in shown],
            hovertemplate="%{y}：%{x:,.4~r}" + scale.unit + "<extra></extra>",
        )
    )
    _layout(figure, height=max(300, 26 * len(shown)), legend=False)
    figure.update_xaxes(tickformat=NUMBER_TICKS, title={"text": scale.unit} if scale.unit else None)
    figure.update_yaxes(tickformat=None, nticks=None, automargin=True)
    return figure


def distribution(values: list[int], mine: int | None, *, money: bool) -> go.Figure:
    scale = scale_for(values, money=money)
    figure = go.Figure(
        go.Histogram(x=[scale(v) for v in values], marker_color=LIGHT, nbinsx=40, name="网点数")
    )
    if mine is not None:
        figure.add_vline(x=scale(mine), line_color=GOLD, annotation_text="本网点")
    _layout(figure, height=300, legend=False, y_unit="网点数")
    figure.update_xaxes(tickformat=NUMBER_TICKS, title={"text": scale.unit} if scale.unit else None)
    return figure


def daily(points: list[tuple[date, int]], name: str, *, money: bool) -> go.Figure:
    """`name` is plain text (it names the measure)."""
    return lines([d for d, _ in points], {plot_text(name): [v for _, v in points]}, money=money)


def rank_walk(ranks: list[tuple[date, int, int]]) -> tuple[go.Figure, go.Figure]:
    """City and province rank over time as two small charts (rank 1 at the top): their
    scales differ too much to share an axis."""
    days = [d for d, _, _ in ranks]
    charts = []
    for name, values, color in (
        ("市内名次", [c for _, _, c in ranks], GREEN),
        ("全省名次", [p for _, p, _ in ranks], GOLD),
    ):
        figure = go.Figure(
            go.Scatter(x=days, y=values, name=name, mode="lines+markers", line_color=color)
        )
        _layout(figure, height=200, legend=False, y_unit="名")
        _dates(figure)
        figure.update_yaxes(autorange="reversed", tickformat="d")
        charts.append(figure)
    return charts[0], charts[1]


def city_bars(names: list[str], totals: list[int], mine: list[bool], *, money: bool) -> go.Figure:
    scale = scale_for(totals, money=money)
    figure = go.Figure(
        go.Bar(
            x=[plot_text(n) for n in names],
            y=[scale(t) for t in totals],
            marker_color=[GOLD if m else GREEN for m in mine],
            hovertemplate="%{x}：%{y:,.4~r}" + scale.unit + "<extra></extra>",
        )
    )
    _layout(figure, height=340, legend=False, y_unit=scale.unit)
    figure.update_yaxes(rangemode="tozero")
    return figure


def stage_funnel(total: FunnelRow) -> go.Figure:
    """Scan → friend → group → conversion as a funnel."""
    figure = go.Figure(
        go.Funnel(
            y=[s.label for s in STAGES],
            x=[total.counts[s] for s in STAGES],
            marker={"color": [GREEN, "#2E9A5E", LIGHT, GOLD]},
        )
    )
    _layout(figure, height=300, legend=False)
    figure.update_yaxes(tickformat=None, nticks=None)
    return figure


def stage_trend(series: list[tuple[date, EventType, int]]) -> go.Figure:
    """One line per stage: the events of each day."""
    days = sorted({day for day, _, _ in series})
    counts = {(day, event): n for day, event, n in series}
    return lines(
        days,
        {s.label: [counts.get((day, s), 0) for day in days] for s in STAGES},
        unit="次",
        height=300,
    )
