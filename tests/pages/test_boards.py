"""网点排行 and 市州排名 pages as Streamlit renders them."""

from datetime import timedelta

from sqlmodel import Session

from core.metrics.importing import import_metrics
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import Role
from tests.factories import metrics_csv

YESTERDAY = shanghai_today() - timedelta(days=1)
FRIENDS = {"O111": 2, "O112": 9, "O113": 5, "O121": 7, "O211": 30, "O212": 1}


def _seed(url: str, admin) -> None:
    rows = [
        (YESTERDAY - timedelta(days=d), code, n, 100, 2, 50, 1, "10.00")
        for d in range(5)
        for code, n in FRIENDS.items()
    ]
    with Session(get_engine(url)) as session:
        assert import_metrics(session, actor=admin, data=metrics_csv(rows), filename="m.csv").ok


def test_outlet_manager_sees_their_position_and_their_city(app_for, world, sqlite_url) -> None:
    _seed(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.OUTLET_MANAGER).run()
    assert any("排第 4 名" in i.value for i in at.info)  # the home page says where they stand
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    assert at.selectbox(key="board_city").options == ["C1市"]  # no province board for them
    ranks = {m.label: m.value for m in at.metric}
    assert ranks["本范围名次（共 4）"] == "第 4 名"
    table = at.dataframe[0].value
    # Their own row is pinned first (visible without scrolling), then the ranking.
    assert list(table["网点编码"]) == ["O111", "O112", "O121", "O113", "O111"]
    assert table["网点"].iloc[0].endswith("（本网点）")
    assert list(table["新增好友"]) == ["10", "45", "35", "25", "10"]
    assert list(table.columns[:3]) == ["名次", "网点", "新增好友"]  # the value fits a phone


def test_reviewer_switches_metric_scope_and_top(app_for, world, sqlite_url) -> None:
    _seed(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/leaderboard.py").run()
    assert at.dataframe[0].value["网点编码"].iloc[0] == "O211"
    at.segmented_control(key="board_metric").set_value("deposits").run()
    assert "新增存款(元)" in at.dataframe[0].value.columns
    at.selectbox(key="board_top").set_value(10).run()
    at.selectbox(key="board_city").set_value(world[0].cities["C2"].id).run()
    assert list(at.dataframe[0].value["网点编码"]) == ["O211", "O212"]
    assert not at.exception


def test_empty_board_says_what_to_do(app_for) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/leaderboard.py").run()
    assert any("还没有指标数据" in i.value for i in at.info)


def test_city_ranking_page(app_for, world, sqlite_url) -> None:
    _seed(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/city_ranking.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["市州"]) == ["C2市", "C1市 （本市）"]  # 155 against 115 friends
    assert list(table["网点平均"]) == ["78", "29"]  # 155/2 = 77.5 rounds half up; 115/4 = 28.75
    assert list(table["平均名次"]) == [1, 2]


def test_a_period_without_data_says_so_and_offers_the_last_one(app_for, world, sqlite_url) -> None:
    from core.platform.periods import PeriodPreset

    last_month_end = shanghai_today().replace(day=1) - timedelta(days=1)
    rows = [
        (last_month_end - timedelta(days=d), code, n, 100, 2, 50, 1, "10.00")
        for d in range(3)
        for code, n in FRIENDS.items()
    ]
    with Session(get_engine(sqlite_url)) as session:
        admin = world[1][Role.ADMIN]
        assert import_metrics(session, actor=admin, data=metrics_csv(rows), filename="m.csv").ok
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/leaderboard.py").run()
    at.selectbox(key="board_period_preset").set_value(PeriodPreset.THIS_MONTH).run()
    assert any("还没有数据" in i.value for i in at.info)
    assert not at.dataframe  # no board of zeros
    offer = at.button(key="board_period_fallback")
    assert f"{last_month_end.month}月" in offer.label
    offer.click().run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="board_period_preset").value is PeriodPreset.CUSTOM
    assert f"{last_month_end.replace(day=1)} 至 {last_month_end}" in at.caption[0].value.replace(
        "\\", ""
    )
    assert at.dataframe[0].value["网点编码"].iloc[0] == "O211"
