"""员工排行 and 指标库 pages as Streamlit renders them."""

from datetime import timedelta

from sqlmodel import Session

from core.metrics.staff_importing import import_staff_metrics
from core.metrics.staff_targets import import_staff_targets
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import Role
from tests.factories import make_staff

YESTERDAY = shanghai_today() - timedelta(days=1)


def _seed(url: str, admin) -> None:
    with Session(get_engine(url), expire_on_commit=False) as session:
        for outlet, name in [
            ("O111", "张三"),
            ("O111", "李四"),
            ("O111", "王五"),
            ("O112", "赵六"),
        ]:
            make_staff(session, outlet, name)
        rows = ["date,staff_code,new_friends,conversions"]
        for d in range(3):
            day = YESTERDAY - timedelta(days=d)
            rows += [
                f"{day},wx_O111_张三,5,1",
                f"{day},wx_O111_李四,1,0",
                f"{day},wx_O112_赵六,9,2",
            ]
        data = ("\n".join(rows) + "\n").encode()
        assert import_staff_metrics(session, actor=admin, data=data, filename="s.csv").ok
        start, end = YESTERDAY.replace(day=1), YESTERDAY + timedelta(days=30)
        targets = (
            f"员工编码,指标,开始日期,结束日期,目标值\nwx_O111_李四,新增好友,{start},{end},500\n"
        )
        report = import_staff_targets(session, actor=admin, data=targets.encode(), filename="t.csv")
        assert report.ok, report.problems


def test_manager_sees_own_staff_with_behind_flag(app_for, world, sqlite_url) -> None:
    _seed(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.OUTLET_MANAGER).run()
    at.switch_page("pages/staff_board.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["员工"]) == ["张三", "李四", "王五"]  # only their outlet, ranked
    assert list(table["新增好友"]) == ["15", "3", "0"]
    assert "活码加好友" in table.columns


def test_behind_target_is_flagged_for_the_month(app_for, world, sqlite_url) -> None:
    _seed(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.OUTLET_MANAGER).run()
    at.switch_page("pages/staff_board.py").run()
    at.selectbox(key="staff_period_preset").set_value(
        at.selectbox(key="staff_period_preset").options[2]
    ).run()
    assert not at.exception
    assert any("李四" in w.value for w in at.warning)


def test_reviewer_scopes_and_drill_down(app_for, world, sqlite_url) -> None:
    _seed(sqlite_url, world[1][Role.ADMIN])
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/staff_board.py").run()
    assert list(at.dataframe[0].value["员工"])[:2] == ["赵六", "张三"]
    at.segmented_control(key="staff_metric").set_value("conversions").run()
    assert list(at.dataframe[0].value["转化客户"])[:2] == ["6", "3"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["本期转化客户"] == "6"  # the drill-down of the first row (赵六)
    assert list(at.dataframe[1].value["转化客户"]) == ["2", "2", "2"]  # daily trend rows
    at.selectbox(key="staff_city").set_value(world[0].cities["C2"].id).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 0  # no staff in C2


def test_designer_has_no_staff_board(app_for) -> None:
    from tests.pages.test_navigation import assert_refused

    at = app_for(Role.DESIGNER).run()
    assert_refused(at, "pages/staff_board.py")


def test_admin_adds_a_metric_on_the_registry_page(app_for, world, sqlite_url) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/metric_registry.py").run()
    assert not at.exception
    assert "deposits" in list(at.dataframe[0].value["编码"])
    field = {t.label: t for t in at.text_input}
    field["指标编码（英文，创建后不可修改）"].input("value_deposits")
    field["中文名称"].input("价值存款")
    field["单位"].input("元")
    next(c for c in at.checkbox if c.label == "金额（元）").check()
    at.button[0].click().run()
    assert not at.exception
    assert "value_deposits" in list(at.dataframe[0].value["编码"])
    at.switch_page("pages/staff_board.py").run()
    assert "价值存款" in at.segmented_control(key="staff_metric").options
    at.switch_page("pages/metric_registry.py").run()
    field = {t.label: t for t in at.text_input}
    field["指标编码（英文，创建后不可修改）"].input("Bad Key")
    field["中文名称"].input("坏")
    at.button[0].click().run()
    assert any("指标编码" in e.value for e in at.error)


def test_staff_import_tab_and_export_follow_the_registry(
    app_for, world, sqlite_url, downloads
) -> None:
    from core.metrics.kinds import MetricKind
    from core.metrics.registry import MetricForm, save_metric

    admin = world[1][Role.ADMIN]
    with Session(get_engine(sqlite_url), expire_on_commit=False) as session:
        make_staff(session, "O111", "ann")
        save_metric(
            session,
            actor=admin,
            form=MetricForm("value_deposits", "价值存款", "元", MetricKind.FLOW, True, True, True),
        )
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/data_import.py").run()
    assert (
        b"\xe4\xbb\xb7\xe5\x80\xbc\xe5\xad\x98\xe6\xac\xbe" in downloads["员工日报模板.csv"]
    )  # 价值存款
    data = f'日期,员工编码,价值存款\n{YESTERDAY},wx_O111_ann,"1,000.50"\n'.encode()
    at.file_uploader(key="staff_metrics_upload").upload("s.csv", data, "text/csv").run()
    at.button(key="staff_metrics_submit").click().run()
    assert not at.exception and "导入成功" in at.success[0].value
    at.switch_page("pages/staff_board.py").run()
    at.segmented_control(key="staff_metric").set_value("value_deposits").run()
    assert list(at.dataframe[0].value["价值存款(元)"]) == ["¥1,000.50"]
    stem = next(n for n in downloads if n.startswith("员工排行_价值存款") and n.endswith(".csv"))
    assert "1000.50" in downloads[stem].decode("utf-8-sig")  # numbers stay numbers


def test_an_admin_defined_metric_name_is_shown_as_text(app_for, world, sqlite_url) -> None:
    """A registry name is user text: Markdown or HTML in it reaches Streamlit escaped."""
    from core.metrics.kinds import MetricKind
    from core.metrics.registry import MetricForm, save_metric

    _seed(sqlite_url, world[1][Role.ADMIN])
    name = "**粗**<b>日</b>![x](http://e.cn/p.png)"
    with Session(get_engine(sqlite_url), expire_on_commit=False) as session:
        save_metric(
            session,
            actor=world[1][Role.ADMIN],
            form=MetricForm("odd_name", name, "人", MetricKind.FLOW, False, True, True),
        )
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/staff_board.py").run()
    at.segmented_control(key="staff_metric").set_value("odd_name").run()
    assert not at.exception
    shown = [c.value for c in at.caption] + [m.label for m in at.metric]
    assert any("粗" in text for text in shown)
    assert not [t for t in shown if "**粗**" in t or "<b>" in t or "![x]" in t]
