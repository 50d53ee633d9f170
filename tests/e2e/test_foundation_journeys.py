"""Journeys through the foundation: login that survives a reload, refusals, imports."""

import re
from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.conftest import login, settle
from ui.widgets import SESSION_COOKIE

re_rank = re.compile(r"本网点近 30 天新增好友在长沙市排第 \d+ 名")


def test_login_survives_a_reload_and_logout_ends_it(server: str, page) -> None:
    login(page, server, "admin")
    expect(page.get_by_role("heading", name="您好，张敏")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="您好，张敏")).to_be_visible()
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="登录")).to_be_visible()


def test_a_login_form_on_another_site_cannot_log_the_browser_in(server: str, page) -> None:
    """Login CSRF: a page elsewhere auto-submits the attacker's credentials to our login."""
    evil = "http://evil.example/"
    page.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<form method="post" action="{server}/auth/login">'
            '<input name="username" value="planner"><input name="password" value="Demo2026">'
            "</form><script>document.forms[0].submit()</script>",
        ),
    )
    page.goto(evil)
    expect(page.get_by_text("请求来源无法确认")).to_be_visible()
    page.goto(server)
    expect(page.get_by_role("button", name="登录")).to_be_visible()
    assert SESSION_COOKIE not in {c["name"] for c in page.context.cookies(server)}


def test_wrong_password_is_refused_in_chinese(server: str, page) -> None:
    login(page, server, "planner", "wrong-password")
    expect(page.get_by_text("用户名或密码错误")).to_be_visible()


def test_outlet_manager_on_a_phone_sees_their_outlet(server: str, browser) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    try:
        login(page, server, "manager")
        expect(page.get_by_role("heading", name="您好，周杰")).to_be_visible(timeout=20_000)
        expect(page.get_by_text("长沙市 · ").first).to_be_visible()
        expect(page.get_by_text("新增好友").first).to_be_visible()
        expect(page.get_by_text(re_rank)).to_be_visible()  # where their outlet stands, on landing
        page.get_by_role("link", name="前往「网点排行」").click()
        expect(page.get_by_text("本范围名次")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"page scrolls sideways at 390 px ({width})"
    finally:
        context.close()


def test_forbidden_page_by_url_is_refused(server: str, page) -> None:
    login(page, server, "manager")
    expect(page.get_by_role("heading", name="您好，周杰")).to_be_visible()
    page.goto(f"{server}/users")  # a new browser session; the cookie keeps the login
    expect(page.get_by_text("无权访问「用户管理」")).to_be_visible()
    expect(page.get_by_role("link", name="用户管理")).to_have_count(0)


def test_bad_metrics_file_is_rejected_with_the_line_named(server: str, page, tmp_path) -> None:
    bad = tmp_path / "日报.csv"
    bad.write_bytes(
        "日期,网点编码,新增好友,好友总数,客户群数,群成员数,转化客户,新增存款(元)\n"
        '2026-11-01,430101001,3,100,2,50,1,"1,000.00"\n'
        "2026-11-01,NOPE,3,100,2,50,1,100\n".encode("gbk")
    )
    login(page, server, "admin")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="数据导入").click()
    # the page has one uploader per import kind (tabs): wait until it has settled, then use
    # the open tab's (网点日报) uploader
    expect(page.get_by_role("tab", name="网点日报")).to_be_visible()
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(bad))
    expect(
        page.locator('[data-testid="stFileChipName"]:visible', has_text="日报.csv")
    ).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="开始导入").first.click()
    expect(page.get_by_text("文件未导入")).to_be_visible()
    expect(page.get_by_text("发现 1 处问题（涉及 1 行）")).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="下载 CSV").click()
    problems = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert problems[0].startswith("行号") and problems[1].startswith("3,")  # line 3 named
    assert "网点编码不存在" in problems[1]
