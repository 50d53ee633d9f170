"""User text in a real browser: a campaign named with Markdown and a review comment holding
images from another host show as the characters typed, and nothing is asked of that host."""

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, settle
from tests.e2e.test_campaign_journeys import decide, open_newest_link

NAME = "[链接](http://evil.example)<b>E2E</b>**权益日**"
COMMENT = "请修改 ![x](http://evil.example/p.png) <img src=http://evil.example/q.png> :red[红]"


def loose(text: str) -> re.Pattern:
    """`text` as a pattern that allows the invisible word joiners the escaper puts into URLs."""
    # spelled out, and "/" escaped: Playwright hands the pattern on as a JavaScript /regex/
    return re.compile(r"\u2060?".join(re.escape(c).replace("/", r"\/") for c in text))


def shown(page: Page) -> str:
    return page.get_by_test_id("stMain").inner_text().replace("\u2060", "")


def nothing_live(page: Page, asked: list[str]) -> None:
    assert page.locator("img[src*='evil.example'], a[href*='evil.example']").count() == 0
    assert [url for url in asked if "evil.example" in url] == []


def test_markdown_in_a_campaign_name_and_a_comment_is_shown_as_text(
    server: str, page: Page
) -> None:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    login(page, server, "planner")
    page.get_by_role("link", name="活动设计").click()
    expect(page.get_by_role("heading", name="活动设计")).to_be_visible()
    page.get_by_role("button", name="以已有活动为模板").click()
    page.get_by_role("combobox", name="模板").click()
    page.get_by_role("option", name=re.compile("逢8会员权益日（进行中）")).click()
    page.get_by_role("button", name="复制为新草稿").click()
    expect(page.get_by_text(re.compile("已复制为「.*（副本）」"))).to_be_visible()
    name_box = page.get_by_label("活动名称")
    expect(name_box).to_have_count(1)
    expect(name_box).to_have_value(re.compile("（副本）"))
    name_box.fill(NAME)
    name_box.press("Tab")
    page.get_by_role("button", name="保存并提交审核").click()
    expect(page.get_by_role("heading", name=loose(NAME))).to_be_visible()
    settle(page)
    assert NAME in shown(page)
    nothing_live(page, asked)
    page.context.clear_cookies()

    open_newest_link(page, server, "reviewer1", "前往「方案审核」")
    expect(page.get_by_role("heading", name=loose(NAME))).to_be_visible()
    decide(page, "退回修改", COMMENT)
    page.context.clear_cookies()

    login(page, server, "planner")
    page.get_by_role("link", name="消息通知").click()
    expect(page.get_by_text(loose(COMMENT)).first).to_be_visible()
    settle(page)
    assert COMMENT in shown(page) and f"方案「{NAME}」被退回修改" in shown(page)
    nothing_live(page, asked)
