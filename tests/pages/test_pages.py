"""Each foundation page renders for its users and does what its buttons say."""

from datetime import date, timedelta

import pandas as pd
from sqlmodel import Session, select

from core.metrics.importing import import_metrics
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import AuditLog, DailyMetric, Role, User
from tests import hostile
from tests.factories import metrics_csv

YESTERDAY = shanghai_today() - timedelta(days=1)


def _seed_metrics(url: str, admin) -> None:
    rows = [
        (YESTERDAY - timedelta(days=d), code, 3 + d, 100 + d, 2, 50, 1, "1,000.00")
        for d in range(10)
        for code in ("O111", "O112", "O211")
    ]
    with Session(get_engine(url)) as session:
        assert import_metrics(session, actor=admin, data=metrics_csv(rows), filename="m.csv").ok


def test_home_shows_kpis_trend_and_attention(app_for, world, sqlite_url) -> None:
    _seed_metrics(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.OUTLET_MANAGER).run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels[0] == "新增好友" and len(labels) == 6
    assert at.metric[0].value == "75 人"  # O111 only: 3+4+…+12
    assert at.get("plotly_chart")
    assert "O111支局" in at.caption[0].value


def test_home_empty_state(app_for) -> None:
    at = app_for(Role.ADMIN).run()
    assert not at.exception
    assert any("还没有指标数据" in i.value for i in at.info)


def test_import_page_rejects_a_bad_file_with_the_line_and_keeps_nothing(
    app_for, sqlite_url
) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/data_import.py").run()
    bad = metrics_csv(
        [
            (date(2026, 11, 1), "O111", 1, 1, 1, 1, 1, 1),
            (date(2026, 11, 1), "ZZZ", 1, 1, 1, 1, 1, 1),
        ]
    )
    at.file_uploader(key="metrics_upload").upload("bad.csv", bad, "text/csv").run()
    at.button(key="metrics_submit").click().run()
    assert not at.exception
    assert "文件未导入" in at.error[0].value
    problems = at.dataframe[0].value
    assert list(problems["行号"]) == [3] and "不存在" in problems["原因"][0]
    with Session(get_engine(sqlite_url)) as session:
        assert session.exec(select(DailyMetric)).first() is None


def test_import_page_refuses_a_hostile_workbook_in_chinese(app_for, sqlite_url) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/data_import.py").run()
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    with hostile.memory_cap():  # a regression fails here instead of eating the machine
        at.file_uploader(key="metrics_upload").upload("bomb.xlsx", hostile.dimension_bomb(), xlsx)
        at.run()
        at.button(key="metrics_submit").click().run()
    assert not at.exception
    assert "文件未导入" in at.error[0].value
    problems = at.dataframe[0].value
    assert list(problems["行号"]) == ["整个文件"] and "行数过多" in problems["原因"][0]
    with Session(get_engine(sqlite_url)) as session:
        assert session.exec(select(DailyMetric)).first() is None


def test_import_page_imports_a_good_file(app_for, sqlite_url) -> None:
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/data_import.py").run()
    # planners import daily reports, targets and coupon events, not the org tree
    assert [t.label for t in at.tabs] == [
        "网点日报",
        "员工日报",
        "网点目标",
        "员工目标",
        "权益券事件",
    ]
    good = metrics_csv([(date(2026, 11, 1), "O111", 1, 1, 1, 1, 1, "12.50")])
    at.file_uploader(key="metrics_upload").upload("good.csv", good, "text/csv").run()
    at.button(key="metrics_submit").click().run()
    assert at.success[0].value.startswith("导入成功")
    with Session(get_engine(sqlite_url)) as session:
        assert session.exec(select(DailyMetric.deposits_fen)).one() == 1250


def test_users_page_creates_a_user_and_keeps_input_on_error(app_for, sqlite_url) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/users.py").run()
    assert "manager" in list(at.dataframe[0].value["用户名"])
    at.text_input(key="new_username").input("wanger")
    at.text_input(key="new_display_name").input("王二")
    at.selectbox(key="new_role").select(Role.OUTLET_MANAGER)
    at.text_input(key="new_org").input("C1")  # a city: wrong for an outlet manager
    at.text_input(key="new_password").input("Abcdefg1")
    _submit(at)
    assert "网点" in at.error[0].value
    assert at.text_input(key="new_username").value == "wanger"  # the form kept its input
    at.text_input(key="new_org").input("O112")
    _submit(at)
    assert not at.error
    with Session(get_engine(sqlite_url)) as session:
        assert (
            session.exec(select(User).where(User.username == "wanger")).one().display_name == "王二"
        )


def _submit(at) -> None:
    buttons = [b for b in at.button if b.proto.is_form_submitter]
    buttons[0].click().run()


def test_audit_page_lists_and_filters(app_for, sqlite_url) -> None:
    at = app_for(Role.ADMIN).run()  # the login itself is audited
    at.switch_page("pages/audit_log.py").run()
    frame: pd.DataFrame = at.dataframe[0].value
    assert "登录" in list(frame["操作"])
    at.text_input(key="audit_actor").input("nobody").run()
    assert any("没有审计记录" in i.value for i in at.info)
    with Session(get_engine(sqlite_url)) as session:
        assert session.exec(select(AuditLog)).first() is not None
