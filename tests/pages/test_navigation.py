"""Login page, role-based navigation and refusals, as Streamlit renders them."""

import pytest
from streamlit.testing.v1 import AppTest

from db.models import Role
from ui import nav

COMMON = ["首页", "消息通知", "网点排行", "市州排名"]
CODES = ["渠道活码", "渠道转化"]
POSTERS = [*CODES, "海报工坊"]
STAFF = [*COMMON[:3], "员工排行", *COMMON[3:]]  # 员工排行 follows 网点排行
EXPECTED_PAGES = {
    Role.ADMIN: [
        *STAFF,
        "活动设计",
        "活动方案",
        "活动复盘",
        "联盟商户",
        *POSTERS,
        "数据导入",
        "数据质量",
        "指标库",
        "审核与预算设置",
        "定时任务",
        "用户管理",
        "审计日志",
    ],
    Role.PROVINCE_REVIEWER: [
        *STAFF,
        "活动方案",
        "方案审核",
        "活动复盘",
        "联盟商户",
        *CODES,
        "数据质量",
    ],
    Role.CITY_PLANNER: [
        *STAFF,
        "活动设计",
        "活动方案",
        "活动复盘",
        "联盟商户",
        *POSTERS,
        "数据导入",
        "数据质量",
    ],
    Role.OUTLET_MANAGER: [*STAFF, *CODES],
    Role.DESIGNER: [*COMMON, "活动方案", "活动复盘", "联盟商户", *POSTERS],
}


def test_anonymous_visitor_gets_the_login_form(app_for) -> None:
    at = app_for(None).run()
    assert not at.exception
    html = "".join(str(h.proto.body) for h in at.get("html"))
    assert 'action="/auth/login"' in html and "用户名" in html and "密码" in html
    assert not at.get("expandable")  # demo accounts are hidden outside demo mode


def test_demo_accounts_are_listed_only_in_demo_mode(app_for, monkeypatch) -> None:
    from core.platform.settings import get_settings

    monkeypatch.setenv("DEMO_MODE", "1")
    get_settings.cache_clear()
    at = app_for(None).run()
    assert "演示账户" in at.expander[0].label
    assert "Demo2026" in at.expander[0].caption[0].value


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_exactly_its_pages_and_each_renders(app_for, world, role: Role) -> None:
    at = app_for(role).run()
    assert not at.exception
    assert at.title[0].value.startswith("您好")
    actor = world[1][role]
    assert [spec.title for spec in nav.visible_pages(actor)] == EXPECTED_PAGES[role]
    for spec in nav.PAGES:
        if spec.title in EXPECTED_PAGES[role]:
            at.switch_page(spec.path).run()
            assert not at.exception, (spec.title, at.exception)
            assert at.title[0].value.startswith("您好" if spec.url_path == "home" else spec.title)
        else:
            assert_refused(at, spec.path)


def assert_refused(at: AppTest, path: str) -> None:
    """A page outside the role is either not registered at all (AppTest raises) or, when
    reached by its URL, answered by the refusal page registered in its place."""
    try:
        at.switch_page(path).run()
    except ValueError as exc:
        assert "Could not find" in str(exc)
        return
    assert any("无权" in e.value for e in at.error), path  # the page checks again (core)


def test_expired_session_shows_the_login_again(app_for, sqlite_url) -> None:
    at = app_for(Role.ADMIN)
    at.session_state["session_token"] = "not-a-valid-token"
    at.run()
    html = "".join(str(h.proto.body) for h in at.get("html"))
    assert 'action="/auth/login"' in html
    assert any("过期" in w.value for w in at.warning)


def test_the_user_is_looked_up_once_per_run(app_for, monkeypatch) -> None:
    from core.platform import auth

    calls: list[int] = []
    real = auth.actor_for_token
    monkeypatch.setattr(auth, "actor_for_token", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/plans.py").run()
    assert not at.exception
    assert len(calls) == 2  # one per run: the landing page, then 活动方案
