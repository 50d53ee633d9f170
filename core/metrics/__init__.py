"""Outlet metrics (网点指标): the metric definitions and period values (`values`), the daily
import (`importing`), the running-total snapshots (`snapshots`), boards and rankings
(`rankings`), the home dashboard and the data-quality checks.

May import: `core.platform`, `core.campaigns`.
"""
