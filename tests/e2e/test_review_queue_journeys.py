"""The review queue in a browser: picking the last row of the queue and approving it must
not leave a stale selection behind (the queue shrinks by that row)."""

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, settle

ROW_HEIGHT = 35  # Streamlit's data grid: header and rows are 35 px high


def queue_size(page: Page) -> int:
    caption = page.get_by_text(re.compile(r"^共 \d+ 个方案")).inner_text()
    return int(re.search(r"共 (\d+) 个方案", caption).group(1))


def pick_row(page: Page, position: int) -> None:
    """Click the selection cell at the left of row `position` (0-based) of the first table."""
    # ":visible": while a rerun settles, the previous page's (stale, hidden) grids may still be
    # in the document ahead of the queue's.
    grid = page.locator('[data-testid="stDataFrame"]:visible').first
    expect(grid).to_be_visible()
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + ROW_HEIGHT * (position + 1) + ROW_HEIGHT / 2)
    settle(page)


def test_approving_the_last_row_of_the_queue_shows_no_error(server: str, page: Page) -> None:
    login(page, server, "reviewer1")
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="方案审核").click()
    expect(page.get_by_role("heading", name="方案审核")).to_be_visible()
    settle(page)
    size = queue_size(page)
    assert 2 <= size <= 10, "the demo queue should hold a few plans and fit without scrolling"
    first = page.get_by_role("heading", level=3).first.inner_text()
    heading = page.get_by_role("heading", level=3).first
    for attempt in range(3):
        pick_row(page, size - 1)
        try:
            # clicking the last row opens that plan
            expect(heading).not_to_have_text(first, timeout=10_000)
            break
        except AssertionError:
            # On a loaded machine the grid sometimes takes a click before it is ready for it:
            # no tick, no rerun (seen 2 in 10 runs). A person clicks again; so does the journey.
            if attempt == 2:
                raise
    page.screenshot(path="test-artifacts/review-last-row-picked.png", full_page=True)

    page.get_by_role("button", name="通过", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="确认通过").click()
    expect(page.get_by_text(re.compile("^已通过「"))).to_be_visible()
    settle(page)
    expect(page.get_by_text("页面出错了")).to_have_count(0)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert queue_size(page) == size - 1
    # the next plan in line is open and can be decided in turn
    expect(page.get_by_role("button", name="通过", exact=True)).to_be_visible()
    page.screenshot(path="test-artifacts/review-last-row-approved.png", full_page=True)


def test_an_unknown_address_gets_a_chinese_page_not_streamlits_dialog(
    server: str, page: Page
) -> None:
    page.goto(f"{server}/no-such-page")
    expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    login(page, server, "manager")
    expect(page.get_by_role("link", name="首页")).to_be_visible()
    page.goto(f"{server}/another_typo")
    expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()
    page.get_by_role("link", name="返回首页").click()
    expect(page.get_by_role("heading", name=re.compile("^您好"))).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
