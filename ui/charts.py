"""Plotly figures of the boards (top N, distribution, daily trend, rank walk), so pages only
say which to show. Money arrives in fen and is plotted in yuan (display only)."""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go

from core.rankings import BoardRow

GREEN, GOLD, LIGHT = "#007A3D", "#E0A100", "#7FBF9A"
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _plot(value: int, money: bool) -> float:
    return value / 100 if money else value


def top_bar(rows: list[BoardRow], *, money: bool) -> go.Figure:
    shown = rows[::-1]
    figure = go.Figure(
        go.Bar(
            x=[_plot(r.value, money) for r in shown],
            y=[f"{r.rank}. {r.name}" for r in shown],
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
    figure = go.Figure(
        go.Scatter(
            x=[d for d, _ in points],
            y=[_plot(v, money) for _, v in points],
            mode="lines+markers",
            line_color=GREEN,
        )
    )
    figure.update_layout(title=title, height=300, margin=MARGIN)
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
