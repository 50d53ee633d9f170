"""The plan journey in a browser: a city planner designs and submits a 逢8 campaign, a
reviewer returns it, the planner reworks and resubmits, both stages approve."""

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import login

NAME = "E2E逢8会员权益日"


def open_newest_link(page: Page, server: str, username: str, link_text: str) -> None:
    login(page, server, username)
    page.get_by_role("link", name="消息通知").click()
    expect(page.get_by_role("heading", name="消息通知")).to_be_visible()
    page.get_by_role("link", name=link_text).first.click()


def decide(page: Page, button: str, comment: str = "") -> None:
    if comment:
        page.get_by_label("审核意见").fill(comment)
    page.get_by_role("button", name=button, exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=re.compile(f"^确认{button}")).click()
    expect(page.get_by_text(re.compile(f"^已{button}"))).to_be_visible()


def test_design_submit_return_resubmit_and_approve_both_stages(server: str, page: Page) -> None:
    context = page.context
    if True:
        # the planner starts from last month's rights day and submits
        login(page, server, "planner")
        page.get_by_role("link", name="活动设计").click()
        expect(page.get_by_role("heading", name="活动设计")).to_be_visible()
        page.get_by_role("button", name="以已有活动为模板").click()
        page.get_by_role("combobox", name="模板").click()
        page.get_by_role("option", name=re.compile("逢8会员权益日（进行中）")).click()
        page.get_by_role("button", name="复制为新草稿").click()
        expect(page.get_by_text(re.compile("已复制为「.*逢8会员权益日（副本）」"))).to_be_visible()
        name_box = page.get_by_label("活动名称")
        expect(name_box).to_have_count(1)
        expect(name_box).to_have_value(re.compile("逢8会员权益日（副本）"))
        name_box.fill(NAME)
        name_box.press("Tab")
        page.get_by_role("button", name="保存并提交审核").click()
        expect(page.get_by_role("heading", name="活动方案")).to_be_visible()
        expect(page.get_by_role("heading", name=NAME)).to_be_visible()
        expect(page.get_by_text("已提交 · 第 1/2 环节")).to_be_visible()
        context.clear_cookies()

        # stage 1 returns it with a comment
        open_newest_link(page, server, "reviewer1", "前往「方案审核」")
        expect(page.get_by_role("heading", name=re.compile(NAME))).to_be_visible()
        decide(page, "退回修改", "请把寄递券数量减半")
        context.clear_cookies()

        # the planner reads the comment, reworks and resubmits
        open_newest_link(page, server, "planner", "前往「活动方案」")
        expect(page.get_by_text("请把寄递券数量减半").first).to_be_visible()
        page.get_by_role("button", name="去修改").click()
        expect(page.get_by_role("heading", name="活动设计")).to_be_visible()
        page.get_by_role("tab", name="方案说明").click()
        page.get_by_role("textbox", name="方案说明").fill("寄递券已按意见减半。")
        page.get_by_role("textbox", name="方案说明").press("Tab")
        page.get_by_role("button", name="保存并提交审核").click()
        expect(page.get_by_text("已提交 · 第 1/2 环节")).to_be_visible()
        context.clear_cookies()

        # both stages approve
        open_newest_link(page, server, "reviewer1", "前往「方案审核」")
        expect(page.get_by_role("heading", name=re.compile(NAME))).to_be_visible()
        expect(page.get_by_text("第 2 版")).to_be_visible()
        decide(page, "通过")
        context.clear_cookies()
        open_newest_link(page, server, "reviewer2", "前往「方案审核」")
        expect(page.get_by_role("heading", name=re.compile(NAME))).to_be_visible()
        decide(page, "通过", "同意")
        context.clear_cookies()

        login(page, server, "planner")
        page.get_by_role("link", name="消息通知").click()
        expect(page.get_by_text(f"方案「{NAME}」已审核通过")).to_be_visible()
