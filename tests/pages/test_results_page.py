"""活动复盘 page: a planner sees their city's campaign with its figures and downloads; the
reviewer sees the city's last 复盘 beside a new plan; an outlet manager is refused."""

from datetime import datetime

from sqlmodel import Session

from core.jobs.tasks import results_freeze
from core.platform.permissions import Actor
from core.results.coupons import import_coupons
from db.engine import get_engine
from db.models import Role
from tests.factories import make_campaign, make_stages
from tests.results_world import coupon_csv, ended_campaign


def _ended_with_coupons(world, sqlite_url: str) -> int:
    with Session(get_engine(sqlite_url), expire_on_commit=False) as session:
        cid, design = ended_campaign(session)
        rows = [
            (
                "E1",
                cid,
                1,
                "O111",
                design.merchant_ids[0],
                "a",
                "核销",
                "20",
                "20",
                "2026-11-08 10:00:00",
            ),
            ("E2", cid, 2, "O112", "", "b", "领取", "5", "0", "2026-11-09 10:00:00"),
        ]
        assert import_coupons(
            session, actor=world[1][Role.ADMIN], data=coupon_csv(rows), filename="c.csv"
        ).ok
    return cid


def test_planner_sees_spend_and_downloads_the_workbook(app_for, world, sqlite_url, downloads):
    cid = _ended_with_coupons(world, sqlite_url)
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert at.selectbox(key="results_campaign").value == cid
    values = {m.label: m.value for m in at.metric}
    assert values["邮政实际出资"] == "¥12.00" and values["商户实际出资"] == "¥8.00"
    assert any("活动尚未结束" in c.value or "定稿" in c.value for c in at.caption)
    assert f"活动复盘_{cid}.xlsx" in downloads
    at.button(key="res_pdf_make").click().run()
    assert downloads[f"活动复盘_{cid}.pdf"].startswith(b"%PDF")


def test_reviewer_sees_the_last_retrospectives_beside_a_new_plan(app_for, world, sqlite_url):
    _ended_with_coupons(world, sqlite_url)
    with Session(get_engine(sqlite_url), expire_on_commit=False) as session:
        make_stages(session, ["reviewer"])
        results_freeze(session, Actor.system("t"), datetime(2026, 11, 30, 9))
        make_campaign(session, "C1", "新方案", state="submitted")
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/approvals.py").run()
    assert not at.exception
    expander = next(e for e in at.expander if "近三次活动复盘" in e.label)
    history = expander.dataframe[0].value
    assert list(history["活动"]) == ["11月权益日（编号 1）"]


def test_an_outlet_manager_has_no_results_page(app_for, world, sqlite_url):
    from tests.pages.test_navigation import assert_refused

    at = app_for(Role.OUTLET_MANAGER).run()
    assert_refused(at, "pages/results.py")
