"""Plotly figures of the boards (top N, distribution, daily trend, rank walk) and of the
channel funnel, so pages only
say which to show. Money arrives in fen and is plotted in yuan (display only)."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go

from core.channels.funnel import STAGES, FunnelRow
from core.metrics.rankings import BoardRow
from db.models import EventType
from ui.text import plot_text

GREEN, GOLD, LIGHT = "#007A3D", "#E0A100", "#7FBF9A"
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _plot(value: int, money: bool) -> float:
    return value / 100 if money else value


def top_bar(rows: list[BoardRow], *, money: bool) -> go.Figure:
    shown = rows[::-1]
    figure = go.Figure(
        go.Bar(
            x=[_plot(r.value, money) for r in shown],
            y=[f"{r.rank}. {plot_text(r.name)}" for r in shown],
            orientation="h",
            marker_color=[GOLD if r.is_mine else GREEN for r in shown],
        )
    )
    figure.update_layout(
        title=f"前 {len(shown)} 名", height=max(300, 26 * len(shown)), margin=MARGIN
    )
    return figure


def distribution(values: list[int], mine: int | None, *, money: bool) -> go.Figure:
    figure = go.Figure(
        go.Histogram(x=[_plot(v, money) for v in values], marker_color=LIGHT, nbinsx=40)
    )
    if mine is not None:
        figure.add_vline(x=_plot(mine, money), line_color=GOLD, annotation_text="本网点")
    figure.update_layout(title="全部网点分布", height=320, margin=MARGIN)
    return figure


def daily(points: list[tuple[date, int]], title: str, *, money: bool) -> go.Figure:
    """`title` is plain text (it names the outlet)."""
    figure = go.Figure(
        go.Scatter(
            x=[d for d, _ in points],
            y=[_plot(v, money) for _, v in points],
            mode="lines+markers",
            line_color=GREEN,
        )
    )
    figure.update_layout(title=plot_text(title), height=300, margin=MARGIN)
    return figure


def rank_walk(ranks: list[tuple[date, int, int]]) -> go.Figure:
    """City and province rank over time, rank 1 at the top."""
    days = [d for d, _, _ in ranks]
    figure = go.Figure()
    figure.add_scatter(x=days, y=[c for _, _, c in ranks], name="市内名次", line_color=GREEN)
    figure.add_scatter(
        x=days, y=[p for _, p, _ in ranks], name="全省名次", line_color=GOLD, yaxis="y2"
    )
    figure.update_layout(
        title="名次走势（每日快照，近 30 天滚动）",
        height=280,
        margin=MARGIN,
        legend={"orientation": "h"},
        yaxis={"autorange": "reversed", "title": "市内"},
        yaxis2={
            "autorange": "reversed",
            "overlaying": "y",
            "side": "right",
            "title": "全省",
            "showgrid": False,
        },
    )
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
    figure.update_layout(height=300, margin={**MARGIN, "t": 10})
    return figure


def stage_trend(series: list[tuple[date, EventType, int]]) -> go.Figure:
    """One line per stage: the events of each day."""
    figure = go.Figure()
    for stage in STAGES:
        days = [(day, count) for day, event, count in series if event is stage]
        figure.add_scatter(
            x=[d for d, _ in days], y=[n for _, n in days], name=stage.label, mode="lines+markers"
        )
    figure.update_layout(title="每日事件", height=320, margin=MARGIN, legend={"orientation": "h"})
    return figure
