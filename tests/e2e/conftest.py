"""Browser journeys: the real server (`streamlit run app.py`) on a free port with a fresh
small demo province, driven by Playwright in Debian's Chromium.

Without Chromium the journeys are skipped locally; with REQUIRE_BROWSER=1 (CI) they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session

from core.demo.seed import seed_demo
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.migrate import upgrade_to_head
from tests.e2e.app_server import ROOT, running_app

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_path() -> str:
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
        pytest.skip("chromium is not installed")
    return CHROMIUM


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, browser_path: str) -> Iterator[str]:
    """Base URL of a running app over a two-city demo province with 60 days of data."""
    db_file = tmp_path_factory.mktemp("e2e") / "e2e.db"
    url = f"sqlite:///{db_file}"
    upgrade_to_head(url)
    with Session(get_engine(url)) as session:
        seed_demo(session, end_date=shanghai_today() - timedelta(days=1), days=60, city_limit=2)
    get_engine(url).dispose()
    log_path = tmp_path_factory.mktemp("e2e-log") / "server.log"
    try:
        with running_app(url, log_path) as base:
            yield base
    finally:
        if os.environ.get("KEEP_E2E_LOG"):
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(log_path, ARTIFACTS / "server.log")


@pytest.fixture(scope="session")
def browser(browser_path: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=browser_path,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):
    """A fresh browser context per test (no shared login); a screenshot is kept on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def settle(page) -> None:
    """Wait until the script run that the last action started has finished (a click during a
    rerun can land on an element that is about to be replaced)."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000
    )


def login(page, base: str, username: str, password: str = "Demo2026") -> None:
    page.goto(base)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
