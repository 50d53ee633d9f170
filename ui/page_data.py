"""Cached reads behind the pages most users open every morning (首页, 网点排行).

They live in a module, not in the page scripts: a page script runs again on every rerun, and a
cache decorator defined there is rebuilt each time (Streamlit then hashes the function's
source again). Arguments are hashed once per call, so the actor and the query come in
unhashed (leading underscore) beside a short text key that names them exactly (their repr).
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.campaigns.targets import CampaignPeriod, board_campaigns
from core.metrics.dashboard import HomeOverview, home_overview, scope_label
from core.metrics.outlet_detail import OutletDetail, outlet_detail
from core.metrics.rankings import Board, BoardQuery, ScopeChoices, board_scopes, leaderboard
from core.metrics.values import latest_date
from core.platform.permissions import Action, Actor
from ui import widgets


def key_of(*parts: object) -> str:
    """The cache key of frozen dataclasses (Actor, BoardQuery, Period): their repr names
    every field."""
    return repr(parts)


@st.cache_data(ttl=300, show_spinner=False)
def _scope_label(_actor: Actor, key: str) -> str:
    with widgets.db() as session:
        return scope_label(session, _actor, Action.VIEW_DASHBOARD)


def sidebar_scope(actor: Actor) -> str:
    """ "长沙市 · 五一路网点" under the user's name on every run of every page: org names change
    rarely (an org import), so five minutes of staleness is fine."""
    return _scope_label(actor, key_of(actor))


@st.cache_data(ttl=120, show_spinner="正在汇总数据…")
def home(_actor: Actor, key: str) -> HomeOverview:
    with widgets.db() as session:
        return home_overview(session, actor=_actor)


def load_home(actor: Actor, today: date) -> HomeOverview:
    return home(actor, key_of(actor, today))


@st.cache_data(ttl=60, show_spinner="正在计算排名…")
def _board(_actor: Actor, _query: BoardQuery, key: str) -> Board:
    with widgets.db() as session:
        return leaderboard(session, actor=_actor, query=_query)


def load_board(actor: Actor, query: BoardQuery) -> Board:
    return _board(actor, query, key_of(actor, query))


@st.cache_data(ttl=60, show_spinner="正在读取网点明细…")
def _detail(_actor: Actor, outlet_id: int, _query: BoardQuery, key: str) -> OutletDetail:
    with widgets.db() as session:
        return outlet_detail(session, actor=_actor, outlet_id=outlet_id, query=_query)


def load_detail(actor: Actor, outlet_id: int, query: BoardQuery) -> OutletDetail:
    return _detail(actor, outlet_id, query, key_of(actor, query))


@st.cache_data(ttl=60, show_spinner=False)
def _filters(_actor: Actor, key: str) -> tuple[ScopeChoices, date | None, list[CampaignPeriod]]:
    with widgets.db() as session:
        return (
            board_scopes(session, actor=_actor),
            latest_date(session),
            board_campaigns(session, actor=_actor),
        )


def load_filters(actor: Actor) -> tuple[ScopeChoices, date | None, list[CampaignPeriod]]:
    """What the board's pickers offer: the same for every run of this user for a minute."""
    return _filters(actor, key_of(actor))
