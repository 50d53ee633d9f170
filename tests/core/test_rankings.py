"""The ranking rules of DESIGN.md, one by one, through the engine the page and CLI share."""

from datetime import date, datetime, time, timedelta
from fractions import Fraction

import numpy as np
import pytest
from sqlmodel import Session

from core.metrics.cities import city_ranking
from core.metrics.importing import import_metrics
from core.metrics.outlet_detail import outlet_detail
from core.metrics.rankings import BoardQuery, competition_ranks, leaderboard
from core.platform.errors import PermissionDenied
from core.platform.periods import Period
from db.models import Role
from tests.factories import make_tree, make_users, metrics_csv

D = date(2026, 11, 10)


def day(n: int) -> date:
    return D + timedelta(days=n)


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    return tree, make_users(session)


def load(session: Session, admin, rows: list[tuple]) -> None:
    assert import_metrics(session, actor=admin, data=metrics_csv(rows), filename="m.csv").ok


def r(d: date, code: str, nf: int = 0, tf: int = 0, conv: int = 0, dep: str = "0") -> tuple:
    return (d, code, nf, tf, 1, 1, conv, dep)


def board(session: Session, actor, metric: str, start: date, end: date, **kw):
    return leaderboard(session, actor=actor, query=BoardQuery(metric, Period(start, end), **kw))


def ranking(b) -> list[tuple[int, str, int]]:
    return [(row.rank, row.code, row.value) for row in b.rows]


def test_competition_ranks_helper() -> None:
    order, ranks = competition_ranks(np.array([5, 9, 5, 1]), np.array([3, 2, 1, 0]))
    assert order.tolist() == [1, 2, 0, 3] and ranks.tolist() == [2, 1, 2, 4]


def test_ties_rank_1_2_2_4_listed_by_code_and_every_outlet_counts(session: Session, world) -> None:
    _, users = world
    load(
        session,
        users[Role.ADMIN],
        [
            r(day(0), "O211", nf=9),
            r(day(0), "O112", nf=5),
            r(day(0), "O111", nf=5),
            r(day(0), "O113", nf=1),
        ],
    )
    b = board(session, users[Role.ADMIN], "new_friends", day(0), day(0))
    assert ranking(b) == [
        (1, "O211", 9),
        (2, "O111", 5),
        (2, "O112", 5),
        (4, "O113", 1),
        (5, "O121", 0),
        (5, "O212", 0),
    ]
    assert b.outlet_count == 6 and b.total == 20
    never = next(row for row in b.rows if row.code == "O121")
    assert not never.reported


def test_flows_sum_stocks_take_the_last_known_value(session: Session, world) -> None:
    _, users = world
    load(
        session,
        users[Role.ADMIN],
        [
            r(day(0), "O111", nf=3, tf=100),
            r(day(1), "O111", nf=4, tf=104),  # reports every day
            r(day(0), "O112", nf=10, tf=300),  # silent on day 1: keeps its stock, adds no flow
        ],
    )
    flows = board(session, users[Role.ADMIN], "new_friends", day(0), day(1))
    assert ranking(flows)[:2] == [(1, "O112", 10), (2, "O111", 7)]
    stocks = board(session, users[Role.ADMIN], "total_friends", day(1), day(1))
    assert ranking(stocks)[:2] == [(1, "O112", 300), (2, "O111", 104)]
    only_day1 = board(session, users[Role.ADMIN], "new_friends", day(1), day(1))
    assert ranking(only_day1)[0] == (1, "O111", 4)
    assert next(row.value for row in only_day1.rows if row.code == "O112") == 0


def test_negative_deposits_rank_below_zero(session: Session, world) -> None:
    _, users = world
    load(
        session,
        users[Role.ADMIN],
        [
            r(day(0), "O111", dep="-1,500.25"),
            r(day(0), "O112", dep="20.00"),
            r(day(1), "O111", dep="100.25"),
        ],
    )
    b = board(session, users[Role.ADMIN], "deposits", day(0), day(1), city_id=None)
    values = {row.code: row.value for row in b.rows}
    assert values["O111"] == -140000 and values["O112"] == 2000 and values["O113"] == 0
    assert [row.code for row in b.rows][-1] == "O111"


def test_scope_city_and_county(session: Session, world) -> None:
    tree, users = world
    load(
        session,
        users[Role.ADMIN],
        [r(day(0), c, nf=n) for c, n in (("O111", 1), ("O121", 2), ("O211", 3))],
    )
    city = board(
        session, users[Role.ADMIN], "new_friends", day(0), day(0), city_id=tree.cities["C1"].id
    )
    assert [row.code for row in city.rows] == [
        "O121",
        "O111",
        "O112",
        "O113",
    ] and city.scope_label == "C1市"
    county = board(
        session,
        users[Role.ADMIN],
        "new_friends",
        day(0),
        day(0),
        city_id=tree.cities["C1"].id,
        county_id=tree.counties["K11"].id,
    )
    assert [row.code for row in county.rows] == [
        "O111",
        "O112",
        "O113",
    ] and county.scope_label == "C1市 · K11区"


def test_rank_change_against_the_previous_period_of_equal_length(session: Session, world) -> None:
    _, users = world
    load(
        session,
        users[Role.ADMIN],
        [
            r(day(0), "O111", nf=1),
            r(day(1), "O111", nf=1),
            r(day(0), "O112", nf=9),
            r(day(1), "O112", nf=0),  # previous: O112 first
            r(day(2), "O111", nf=8),
            r(day(3), "O111", nf=0),
            r(day(2), "O112", nf=2),
            r(day(3), "O112", nf=2),  # current: O111 first
        ],
    )
    b = board(session, users[Role.ADMIN], "new_friends", day(2), day(3))
    assert b.previous.start == day(0) and b.previous.end == day(1)
    rows = {row.code: row for row in b.rows}
    assert (rows["O111"].rank, rows["O111"].previous_rank, rows["O111"].change) == (1, 2, 1)
    assert (rows["O112"].rank, rows["O112"].change) == (2, -1)
    assert rows["O113"].previous_rank is None  # had never reported: no change to show
    first = board(session, users[Role.ADMIN], "new_friends", day(0), day(1))
    assert all(row.previous_rank is None for row in first.rows)  # no data before: no change


def test_reimporting_an_old_day_after_the_fast_path_was_built(session: Session, world) -> None:
    _, users = world
    admin = users[Role.ADMIN]
    load(
        session, admin, [r(day(n), c, nf=1, tf=10 + n) for n in range(5) for c in ("O111", "O112")]
    )
    assert ranking(board(session, admin, "new_friends", day(0), day(4)))[:2] == [
        (1, "O111", 5),
        (1, "O112", 5),
    ]
    load(session, admin, [r(day(1), "O112", nf=11, tf=500)])  # correction of an old day
    after = board(session, admin, "new_friends", day(0), day(4))
    assert ranking(after)[:2] == [(1, "O112", 15), (2, "O111", 5)]
    stock = board(session, admin, "total_friends", day(2), day(2))
    assert {row.code: row.value for row in stock.rows}[
        "O112"
    ] == 12  # day 2's own value, not day 1's
    stock1 = board(session, admin, "total_friends", day(1), day(1))
    assert {row.code: row.value for row in stock1.rows}["O112"] == 500


def test_periods_outside_the_data(session: Session, world) -> None:
    _, users = world
    load(session, users[Role.ADMIN], [r(day(0), "O111", nf=4, tf=40)])
    later = board(session, users[Role.ADMIN], "total_friends", day(10), day(12))
    assert {row.code: row.value for row in later.rows}["O111"] == 40  # stock carried past the data
    assert board(session, users[Role.ADMIN], "new_friends", day(10), day(12)).total == 0
    assert board(session, users[Role.ADMIN], "new_friends", day(-9), day(-1)).total == 0


def test_my_outlet_is_pinned_even_outside_the_top(session: Session, world) -> None:
    tree, users = world
    manager = users[Role.OUTLET_MANAGER]  # O111 in C1
    load(
        session,
        users[Role.ADMIN],
        [r(day(0), c, nf=n) for c, n in (("O111", 1), ("O112", 5), ("O113", 7), ("O121", 9))],
    )
    b = board(session, manager, "new_friends", day(0), day(0), city_id=tree.cities["C1"].id, top=2)
    assert [row.code for row in b.rows] == ["O121", "O113"]
    assert b.mine.code == "O111" and b.mine.rank == 4 and b.mine.position == 4 and b.mine.is_mine
    # a manager may open only their own outlet's detail; a planner any outlet of the city
    assert b.mine.drillable and not any(row.drillable for row in b.rows)
    planner = users[Role.CITY_PLANNER]
    b = board(session, planner, "new_friends", day(0), day(0), city_id=tree.cities["C1"].id)
    assert all(row.drillable for row in b.rows)


def test_who_sees_which_board(session: Session, world) -> None:
    tree, users = world
    c1, c2 = tree.cities["C1"].id, tree.cities["C2"].id
    for role in (Role.ADMIN, Role.PROVINCE_REVIEWER, Role.DESIGNER):
        board(session, users[role], "new_friends", day(0), day(0))
    for role in (Role.CITY_PLANNER, Role.OUTLET_MANAGER):
        board(session, users[role], "new_friends", day(0), day(0), city_id=c1)
        with pytest.raises(PermissionDenied):
            board(session, users[role], "new_friends", day(0), day(0))
        with pytest.raises(PermissionDenied):
            board(session, users[role], "new_friends", day(0), day(0), city_id=c2)


def test_outlet_detail_gaps_daily_trend_and_moves(session: Session, world) -> None:
    tree, users = world
    load(
        session,
        users[Role.ADMIN],
        [
            r(day(0), "O111", nf=2, tf=50, conv=5),
            r(day(1), "O111", nf=1, tf=51),
            r(day(0), "O112", nf=9, tf=10),
            r(day(0), "O113", nf=6, tf=20),
        ],
    )
    query = BoardQuery("new_friends", Period(day(0), day(1)), city_id=tree.cities["C1"].id)
    detail = outlet_detail(
        session, actor=users[Role.OUTLET_MANAGER], outlet_id=tree.outlets["O111"].id, query=query
    )
    assert detail.row.rank == 3 and detail.outlet_count == 4
    assert detail.next_name == "O113支局" and detail.gap_to_next == 3
    assert detail.gap_to_top10 is None  # already in the top 10
    assert detail.daily == [(day(0), 2), (day(1), 1)]
    assert detail.province_rank == 3 and detail.province_count == 6
    moves = {m.key: m for m in detail.moves}
    assert moves["conversions"].rank == 1 and moves["total_friends"].value == 51


def test_outlet_manager_cannot_open_another_outlets_detail(session: Session, world) -> None:
    tree, users = world
    query = BoardQuery("new_friends", Period(day(0), day(0)), city_id=tree.cities["C1"].id)
    with pytest.raises(PermissionDenied):
        outlet_detail(
            session,
            actor=users[Role.OUTLET_MANAGER],
            outlet_id=tree.outlets["O112"].id,
            query=query,
        )
    with pytest.raises(PermissionDenied):
        outlet_detail(
            session, actor=users[Role.CITY_PLANNER], outlet_id=tree.outlets["O211"].id, query=query
        )


def test_city_ranking_by_total_and_average(session: Session, world) -> None:
    _tree, users = world
    load(
        session,
        users[Role.ADMIN],
        [r(day(0), "O111", nf=8), r(day(0), "O211", nf=6), r(day(0), "O212", nf=1)],
    )
    rows = city_ranking(
        session,
        actor=users[Role.OUTLET_MANAGER],
        metric="new_friends",
        period=Period(day(0), day(0)),
    )
    by_name = {row.name: row for row in rows}
    assert (by_name["C1市"].total, by_name["C1市"].outlets, by_name["C1市"].rank_total) == (8, 4, 1)
    assert by_name["C1市"].average == Fraction(2) and by_name["C2市"].average == Fraction(7, 2)
    assert (by_name["C2市"].rank_total, by_name["C2市"].rank_average) == (2, 1)


def test_campaign_period_brings_each_outlets_target(session: Session, world) -> None:
    from core.campaigns.plans import save_draft
    from tests.factories import complete_design

    tree, users = world
    load(session, users[Role.ADMIN], [r(day(0), "O111", nf=30), r(day(0), "O112", nf=90)])
    design = complete_design(session, kpi_new_friends=300, start_date=day(0), end_date=day(1))
    cid = save_draft(session, actor=users[Role.CITY_PLANNER], design=design).id
    query = BoardQuery(
        "new_friends", Period(day(0), day(1)), city_id=tree.cities["C1"].id, campaign_id=cid
    )
    rows = {
        row.code: row
        for row in leaderboard(session, actor=users[Role.CITY_PLANNER], query=query).rows
    }
    assert rows["O111"].target == 75 and rows["O111"].completion == Fraction(
        30, 75
    )  # 300 over 4 outlets
    assert rows["O112"].completion == Fraction(90, 75)
    deposits = BoardQuery(
        "groups", Period(day(0), day(1)), city_id=tree.cities["C1"].id, campaign_id=cid
    )
    assert all(
        row.target is None
        for row in leaderboard(session, actor=users[Role.CITY_PLANNER], query=deposits).rows
    )


def test_rank_history_from_daily_snapshots(session: Session, world) -> None:
    from core.jobs import tasks as jobs
    from core.metrics.outlet_detail import rank_history
    from core.platform.clock import SHANGHAI
    from core.platform.permissions import Actor

    tree, users = world
    load(
        session,
        users[Role.ADMIN],
        [
            r(day(n), c, nf=(n + 1) * (3 if c == "O111" else 2))
            for n in range(3)
            for c in ("O111", "O112")
        ],
    )
    for n in range(1, 4):
        jobs.rank_snapshot(
            session, Actor.system(), datetime.combine(day(n), time(3), tzinfo=SHANGHAI)
        )
    history = rank_history(
        session,
        actor=users[Role.OUTLET_MANAGER],
        outlet_id=tree.outlets["O111"].id,
        metric="new_friends",
    )
    assert [(d, p, c) for d, p, c in history] == [(day(0), 1, 1), (day(1), 1, 1), (day(2), 1, 1)]
    with pytest.raises(PermissionDenied):
        rank_history(
            session,
            actor=users[Role.OUTLET_MANAGER],
            outlet_id=tree.outlets["O112"].id,
            metric="new_friends",
        )
