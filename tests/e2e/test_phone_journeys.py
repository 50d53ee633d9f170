"""The outlet manager's pages on a 390 px phone: the sidebar gets out of the way after a
page is chosen, charts have no toolbar, and the board starts with their own outlet."""

from playwright.sync_api import expect

from tests.e2e.conftest import login, settle

SIDEBAR = '[data-testid="stSidebar"]'


def test_phone_sidebar_closes_after_a_page_choice(server: str, browser) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    try:
        login(page, server, "manager")
        expect(page.get_by_role("heading", name="您好，周杰")).to_be_visible(timeout=20_000)
        settle(page)
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "false")
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text="网点排行").click()
        expect(page.get_by_role("heading", name="网点排行")).to_be_visible()
        expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "true")
        settle(page)
        expect(page.get_by_text("本网点：")).to_be_in_viewport()  # their outlet, no scrolling
        # the filters pair up two per line instead of one full-width control per line
        boxes = page.get_by_test_id("stSelectbox")
        period = boxes.filter(has_text="时间").bounding_box()
        scope = boxes.filter(has_text="范围").bounding_box()
        assert abs(period["y"] - scope["y"]) < 2 and period["x"] < scope["x"]
        assert page.get_by_text("本网点：").bounding_box()["y"] < 560
        chips = page.get_by_role("radiogroup", name="指标").bounding_box()
        assert chips["height"] < 60, "the metric chips take one row that scrolls sideways"
        page.get_by_role("tab", name="图表").click()
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        expect(chart).to_be_visible()
        chart.hover()
        assert page.locator(".modebar-container").first.is_hidden()
        page.screenshot(path="/tmp/uispeed/phone-chart.png")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, f"page scrolls sideways at 390 px ({width})"
    finally:
        context.close()
