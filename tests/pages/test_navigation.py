"""Login page, role-based navigation and refusals, as Streamlit renders them."""

import pytest

from db.models import Role

EXPECTED_PAGES = {
    Role.ADMIN: ["首页", "数据导入", "用户管理", "审计日志"],
    Role.PROVINCE_REVIEWER: ["首页"],
    Role.CITY_PLANNER: ["首页", "数据导入"],
    Role.OUTLET_MANAGER: ["首页"],
    Role.DESIGNER: ["首页"],
}
PAGE_FILES = {
    "数据导入": "pages/data_import.py",
    "用户管理": "pages/users.py",
    "审计日志": "pages/audit_log.py",
}


def test_anonymous_visitor_gets_the_login_form(app_for) -> None:
    at = app_for(None).run()
    assert not at.exception
    html = "".join(str(h.proto.body) for h in at.get("html"))
    assert 'action="/auth/login"' in html and "用户名" in html and "密码" in html
    assert not at.get("expandable")  # demo accounts are hidden outside demo mode


def test_demo_accounts_are_listed_only_in_demo_mode(app_for, monkeypatch) -> None:
    from core.settings import get_settings

    monkeypatch.setenv("DEMO_MODE", "1")
    get_settings.cache_clear()
    at = app_for(None).run()
    assert "演示账户" in at.expander[0].label
    assert "Demo2026" in at.expander[0].caption[0].value


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_exactly_its_pages(app_for, role: Role) -> None:
    at = app_for(role).run()
    assert not at.exception
    assert at.title[0].value.startswith("您好")
    for title, path in PAGE_FILES.items():
        if title in EXPECTED_PAGES[role]:
            at.switch_page(path).run()
            assert not at.exception and at.title[0].value == title
        else:
            with pytest.raises(ValueError, match="Could not find"):
                at.switch_page(path)


def test_expired_session_shows_the_login_again(app_for, sqlite_url) -> None:
    at = app_for(Role.ADMIN)
    at.session_state["session_token"] = "not-a-valid-token"
    at.run()
    html = "".join(str(h.proto.body) for h in at.get("html"))
    assert 'action="/auth/login"' in html
    assert any("过期" in w.value for w in at.warning)
