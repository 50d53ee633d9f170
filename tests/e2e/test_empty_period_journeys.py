"""A period with no data yet (本月 on the 1st, or a custom range of today): the board says so
in Chinese instead of ranking every outlet 第1 at zero, and its button switches the period
picker to the last period that has data. The demo seed ends yesterday (Shanghai), so a custom
range of today..today has no data on any day of the calendar."""

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from core.platform.clock import shanghai_today
from tests.e2e.conftest import login, settle


def open_board(page: Page) -> None:
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="网点排行").click()
    expect(page.get_by_role("heading", name="网点排行")).to_be_visible()
    settle(page)


def pick_custom_range(page: Page, start, end) -> None:
    """Choose 自定义 in the period picker and type the range into its date input."""
    page.get_by_label("时间").first.click()
    page.get_by_role("option", name="自定义").click()
    settle(page)
    # Streamlit's date range input is two react-aria date fields, one spin button per part;
    # the end is typed first, so the range never runs backwards on the way
    for side, day in (("end", end), ("start", start)):
        for part, value in (("year", f"{day:%Y}"), ("month", f"{day:%m}"), ("day", f"{day:%d}")):
            segment = page.get_by_role("spinbutton", name=f"{part}, 起止日期 {side} date")
            segment.click()
            segment.press_sequentially(value)
    page.keyboard.press("Escape")
    settle(page)


@pytest.mark.parametrize(("username", "has_outlet"), [("manager", True), ("reviewer1", False)])
def test_a_period_with_no_data_offers_the_last_period_with_data(
    server: str, page: Page, username: str, has_outlet: bool
) -> None:
    today = shanghai_today()
    login(page, server, username)
    open_board(page)
    expect(page.locator('[data-testid="stDataFrame"]:visible')).to_have_count(1)

    pick_custom_range(page, today, today)
    expect(page.get_by_text(f"自定义（{today}）还没有数据")).to_be_visible()
    notice = page.get_by_text(re.compile(r"网点日报导入到 \d{4}-\d\d-\d\d"))
    # the seed ends yesterday; read the day from the page, so a run across midnight holds too
    latest = date.fromisoformat(re.search(r"导入到 (\S{10})", notice.inner_text()).group(1))
    assert today - timedelta(days=2) <= latest < today
    # no board of zeros: no table, no rank card
    expect(page.locator('[data-testid="stDataFrame"]:visible')).to_have_count(0)
    expect(page.get_by_text("本网点：")).to_have_count(0)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    page.screenshot(path=f"test-artifacts/empty-period-notice-{username}.png", full_page=True)

    page.get_by_role("button", name=f"查看最新一日（{latest}）").click()
    settle(page)
    expect(page.get_by_text(f"自定义（{today}）还没有数据")).to_have_count(0)
    expect(page.locator('[data-testid="stDataFrame"]:visible')).to_have_count(1)
    expect(page.get_by_text("本网点：")).to_have_count(1 if has_outlet else 0)
    expect(page.get_by_text(f"自定义（{latest}） · 共")).to_be_visible()  # the board caption
    page.screenshot(path=f"test-artifacts/empty-period-fallback-{username}.png", full_page=True)
