"""Every chart of the app, through one helper so they all read the same way to a Chinese
user: dates as 11月8日, numbers with thousands separators and in 万 / 万元 once they are
large (never "10k"), at least five y ticks, legends above the plot area (never over an axis),
one y axis per chart (two measures get two small charts), and no toolbar on phones.

Pages call a builder here and pass the figure to `show`. Money arrives in fen and is plotted
in 元 or 万元 (display only).

Figures are plain Plotly dicts, not plotly.graph_objects: building a graph object and its
default template cost 30-60 ms of server CPU per chart (Streamlit validates and copies it
again), a dict a few ms. The empty template leaves the look to Streamlit's theme."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import streamlit as st

from core.channels.funnel import STAGES, FunnelRow
from core.metrics.rankings import BoardRow
from db.models import EventType
from ui.text import md, plot_text

GREEN, GOLD, LIGHT, PALE = "#007A3D", "#E0A100", "#7FBF9A", "#B7DCC5"
DATE_TICKS = "%-m月%-d日"
DATE_HOVER = "%Y年%-m月%-d日"
NUMBER_TICKS = ",.2~f"  # 12,345 / 1.59 / 0.25: grouped, no SI suffix ("10k")
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


Figure = dict[str, Any]


def _figure(data: list[dict], *, height: int, legend: bool, y_unit: str = "") -> Figure:
    return {
        "data": data,
        "layout": {
            "template": {},
            "height": height,
            "margin": {"l": 8, "r": 8, "t": 32 if legend else 12, "b": 8},
            "separators": ".,",
            "showlegend": legend,
            "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
            "hoverlabel": {"namelength": -1},
            "xaxis": {"automargin": True},
            "yaxis": {
                "tickformat": NUMBER_TICKS,
                "automargin": True,
                **({"title": {"text": y_unit}} if y_unit else {}),
            },
        },
    }


def nice_step(low: float, high: float, *, at_least: int = 4, whole: bool = False) -> float:
    """A 1-2-5 tick step that gives at least `at_least` intervals over [low, high] (Plotly's
    own choice leaves small charts with two ticks)."""
    span = max(high - low, 1e-9)
    magnitude = 10 ** math.floor(math.log10(span / at_least))
    step = magnitude
    for factor in (5, 2, 1):
        if span / (factor * magnitude) >= at_least:
            step = factor * magnitude
            break
    return max(step, 1) if whole else step


def _y_ticks(figure: Figure, values: list[float], *, whole: bool = False) -> None:
    if not values:
        return
    low, high = (min(values), max(values)) if whole else (min(0, *values), max(0, *values))
    if high > low:  # a flat series keeps Plotly's ticks (a tiny step would draw millions)
        figure["layout"]["yaxis"].update(tick0=0, dtick=nice_step(low, high, whole=whole))


def _dates(figure: Figure) -> Figure:
    figure["layout"]["xaxis"].update(type="date", tickformat=DATE_TICKS, hoverformat=DATE_HOVER)
    return figure


def show(figure: Figure, *, key: str, title: str = "") -> None:
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
) -> Figure:
    """One measure per chart: a line (or bars) per named series over days."""
    scale = scale_for([v for values in series.values() for v in values], money=money, unit=unit)
    colors = [GREEN, GOLD, LIGHT, "#2E9A5E"]
    data = []
    for (name, values), color in zip(series.items(), colors * 3, strict=False):
        trace: dict[str, Any] = {"x": days, "y": [scale(v) for v in values], "name": name}
        if bars:
            trace.update(type="bar", marker={"color": color})
        else:
            trace.update(type="scatter", mode="lines+markers", line={"color": color})
        data.append(trace)
    figure = _dates(_figure(data, height=height, legend=len(series) > 1, y_unit=scale.unit))
    figure["layout"]["hovermode"] = "x unified"
    _y_ticks(
        figure, [y for trace in data for y in trace["y"]], whole=scale.factor == 1 and not money
    )
    if bars:
        figure["layout"]["yaxis"]["rangemode"] = "tozero"
    return figure


def _axis_unit(unit: str) -> dict:
    return {"tickformat": NUMBER_TICKS, **({"title": {"text": unit}} if unit else {})}


def top_bar(rows: list[BoardRow], *, money: bool) -> Figure:
    shown = rows[::-1]
    scale = scale_for([r.value for r in shown], money=money)
    bar = {
        "type": "bar",
        "orientation": "h",
        "x": [scale(r.value) for r in shown],
        "y": [f"{r.rank}. {plot_text(r.name)}" for r in shown],
        "marker": {"color": [GOLD if r.is_mine else GREEN for r in shown]},
        "hovertemplate": "%{y}：%{x:,.2~f}" + scale.unit + "<extra></extra>",
    }
    figure = _figure([bar], height=max(300, 26 * len(shown)), legend=False)
    figure["layout"]["xaxis"].update(_axis_unit(scale.unit))
    figure["layout"]["yaxis"] = {"automargin": True}
    return figure


def distribution(values: list[int], mine: int | None, *, money: bool) -> Figure:
    """How many outlets reach each value: 40 bins counted here, so 50,000 outlets send 40
    bars to the browser, not 50,000 numbers."""
    scale = scale_for(values, money=money)
    counts, edges = np.histogram(np.asarray(values, dtype=float) * scale.factor, bins=40)
    bars = {
        "type": "bar",
        "x": ((edges[:-1] + edges[1:]) / 2).tolist(),
        "y": counts.tolist(),
        "width": float(edges[1] - edges[0]),
        "marker": {"color": LIGHT},
        "name": "网点数",
        "hovertemplate": "约 %{x:,.2~f}" + scale.unit + "：%{y:,d} 个网点<extra></extra>",
    }
    figure = _figure([bars], height=300, legend=False, y_unit="网点数")
    figure["layout"]["xaxis"].update(_axis_unit(scale.unit))
    figure["layout"]["bargap"] = 0
    _y_ticks(figure, bars["y"], whole=True)
    if mine is not None:
        x = scale(mine)
        figure["layout"]["shapes"] = [
            {
                "type": "line",
                "x0": x,
                "x1": x,
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": GOLD, "width": 2},
            }
        ]
        figure["layout"]["annotations"] = [
            {
                "x": x,
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "text": "本网点",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"color": GOLD},
            }
        ]
    return figure


def daily(points: list[tuple[date, int]], name: str, *, money: bool) -> Figure:
    """`name` is plain text (it names the measure)."""
    return lines([d for d, _ in points], {plot_text(name): [v for _, v in points]}, money=money)


def rank_walk(ranks: list[tuple[date, int, int]]) -> tuple[Figure, Figure]:
    """City and province rank over time as two small charts (rank 1 at the top): their
    scales differ too much to share an axis."""
    days = [d for d, _, _ in ranks]
    charts = []
    for name, values, color in (
        ("市内名次", [c for _, _, c in ranks], GREEN),
        ("全省名次", [p for _, p, _ in ranks], GOLD),
    ):
        line = {
            "type": "scatter",
            "x": days,
            "y": values,
            "name": name,
            "mode": "lines+markers",
            "line": {"color": color},
        }
        figure = _dates(_figure([line], height=200, legend=False, y_unit="名"))
        figure["layout"]["yaxis"].update(autorange="reversed", tickformat="d")
        _y_ticks(figure, values, whole=True)
        charts.append(figure)
    return charts[0], charts[1]


def city_bars(names: list[str], totals: list[int], mine: list[bool], *, money: bool) -> Figure:
    scale = scale_for(totals, money=money)
    bar = {
        "type": "bar",
        "x": [plot_text(n) for n in names],
        "y": [scale(t) for t in totals],
        "marker": {"color": [GOLD if m else GREEN for m in mine]},
        "hovertemplate": "%{x}：%{y:,.2~f}" + scale.unit + "<extra></extra>",
    }
    figure = _figure([bar], height=340, legend=False, y_unit=scale.unit)
    figure["layout"]["yaxis"]["rangemode"] = "tozero"
    _y_ticks(figure, bar["y"], whole=scale.factor == 1)
    return figure


def stage_funnel(total: FunnelRow) -> Figure:
    """Scan → friend → group → conversion as a funnel."""
    funnel = {
        "type": "funnel",
        "y": [s.label for s in STAGES],
        "x": [total.counts[s] for s in STAGES],
        "marker": {"color": [GREEN, "#2E9A5E", LIGHT, GOLD]},
    }
    figure = _figure([funnel], height=300, legend=False)
    figure["layout"]["yaxis"] = {"automargin": True}
    return figure


def stage_trend(series: list[tuple[date, EventType, int]]) -> Figure:
    """One line per stage: the events of each day."""
    days = sorted({day for day, _, _ in series})
    counts = {(day, event): n for day, event, n in series}
    return lines(
        days,
        {s.label: [counts.get((day, s), 0) for day in days] for s in STAGES},
        unit="次",
        height=300,
    )
