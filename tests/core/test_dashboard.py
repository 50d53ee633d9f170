"""Home page numbers per role: each sees the totals of their own scope."""

from datetime import date, timedelta

from sqlmodel import Session

from core.metrics.dashboard import home_overview
from core.metrics.importing import import_metrics
from db.models import Role
from tests.factories import make_tree, make_users, metrics_csv

TODAY = date(2026, 11, 25)
YESTERDAY = TODAY - timedelta(days=1)


def test_each_role_sees_its_scope(session: Session) -> None:
    make_tree(session)
    users = make_users(session)
    rows = []
    for code, friends in (("O111", 10), ("O112", 20), ("O211", 40)):
        rows.append((YESTERDAY, code, friends, friends * 10, 1, 5, 1, "100.00"))
        rows.append(
            (YESTERDAY - timedelta(days=30), code, 1, friends * 9, 1, 4, 0, "-5")
        )  # previous period
    assert import_metrics(
        session, actor=users[Role.ADMIN], data=metrics_csv(rows), filename="m.csv"
    ).ok

    def kpis(role: Role) -> dict[str, tuple[int, int]]:
        overview = home_overview(session, actor=users[role], today=TODAY)
        return {k.key: (k.value, k.previous) for k in overview.kpis}

    assert kpis(Role.ADMIN)["new_friends"] == (70, 3)
    assert kpis(Role.CITY_PLANNER)["new_friends"] == (30, 2)
    assert kpis(Role.OUTLET_MANAGER)["new_friends"] == (10, 1)
    assert kpis(Role.OUTLET_MANAGER)["total_friends"] == (100, 90)
    assert kpis(Role.ADMIN)["deposits"] == (30000, -1500)
    overview = home_overview(session, actor=users[Role.CITY_PLANNER], today=TODAY)
    assert overview.scope_label == "C1市" and overview.trend[-1].new_friends == 30
    # O113 and O121 sent nothing yesterday: the planner is told
    assert any("O113支局" in item.text and item.level == "warning" for item in overview.attention)


def test_empty_database_says_what_to_do(session: Session) -> None:
    make_tree(session)
    overview = home_overview(session, actor=make_users(session)[Role.ADMIN], today=TODAY)
    assert overview.latest_date is None and all(k.value == 0 for k in overview.kpis)
    assert "数据导入" in overview.attention[0].text
