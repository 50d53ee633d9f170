"""Page times in a real browser: `python bench/pages.py [--scale small|full] [--visits 5]`.

Serves the demo province with `streamlit run app.py`, logs in as each demo role in Debian's
Chromium and clicks through every sidebar page of that role, round after round. A visit is
timed from the sidebar click until the page's script run has finished and its title shows.
One unmeasured round first warms the process (imports, caches), as a morning's first user
would. Writes the median and p95 of the measured visits per page as `page_<role>_<page>` into
bench/results.json (merged by name, like bench/run.py).

`--scale full` also times the board (网点排行) as an outlet manager and as the admin on a
national data set of 50,000 outlets (bench/national.py), as `page_national_<role>_board`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BENCH_DIR, DATA_DIR, Result  # noqa: E402

ROLES = ["admin", "reviewer1", "planner", "designer", "manager"]
PASSWORD = "Demo2026"
GOAL_S, BOARD_NATIONAL_GOAL_S = 1.0, 1.5
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@dataclass
class PageResult(Result):
    """A page's time: `value` is the p95 (what the goal is about), with the median beside it."""

    median: float = 0.0
    p95: float = 0.0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _login(page, base: str, username: str) -> None:
    page.goto(base)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=60_000)
    page.wait_for_selector(DONE, timeout=60_000)


def _nav_links(page) -> list[tuple[str, str]]:
    """(url path, title) of each sidebar page."""
    links = page.locator('[data-testid="stSidebarNav"] a')
    found = []
    for i in range(links.count()):
        link = links.nth(i)
        href = link.get_attribute("href") or ""
        found.append(
            (urlparse(href).path.strip("/") or "home", link.inner_text().strip().splitlines()[-1])
        )
    return found


def _visit(page, url_path: str, title: str) -> float:
    """Click the sidebar link; seconds until the run finished with the new page's title."""
    before = page.locator("h1").first.inner_text() if page.locator("h1").count() else ""
    link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first
    started = time.perf_counter()
    link.click()
    page.wait_for_function(
        """([before]) => {
            const app = document.querySelector('[data-testid="stApp"]');
            const h1 = document.querySelector('h1');
            return app && app.getAttribute('data-test-script-state') === 'notRunning'
                && h1 && h1.innerText !== before;
        }""",
        arg=[before],
        timeout=60_000,
        polling=10,
    )
    return time.perf_counter() - started


def time_role(browser, base: str, username: str, visits: int, only: set[str] | None = None):
    """{url path: [seconds per visit]} for every sidebar page of this user."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(60_000)
    _login(page, base, username)
    links = [(u, t) for u, t in _nav_links(page) if only is None or u in only]
    if only is not None and "home" not in only:
        links = [("home", "首页"), *links]  # something to come from
    links = links[1:] + links[:1]  # login lands on the first page: leave it first
    times: dict[str, list[float]] = {u: [] for u, _ in links}
    for round_ in range(visits + 1):
        for url_path, title in links:
            try:
                seconds = _visit(page, url_path, title)
            except Exception as exc:
                raise RuntimeError(f"{username}: {url_path} ({title}) did not finish") from exc
            if round_:  # round 0 warms the process
                times[url_path].append(seconds)
    context.close()
    return {u: t for u, t in times.items() if only is None or u in only}


def _results(prefix: str, role: str, times: dict[str, list[float]], goal, scale: str):
    out = []
    for url_path, values in times.items():
        median, high = statistics.median(values), p95(values)
        limit = goal(url_path)
        out.append(
            PageResult(
                f"page_{prefix}{role}_{url_path}",
                round(high, 3),
                "s (p95)",
                f"goal p95 < {limit} s",
                limit,
                scale,
                f"median {median:.3f} s over {len(values)} visits, Chromium, sidebar click to run end"
                + f", machine load average {os.getloadavg()[0]:.1f}"
                + ("" if high < limit else " · ABOVE GOAL"),
                median=round(median, 3),
                p95=round(high, 3),
            )
        )
    return out


def _demo_database() -> str:
    from sqlmodel import Session

    from core.demo.seed import seed_demo
    from core.platform.clock import shanghai_today
    from db.engine import get_engine
    from db.migrate import upgrade_to_head

    path = Path(tempfile.mkdtemp()) / "pages.db"
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    with Session(get_engine(url)) as session:
        seed_demo(session, end_date=shanghai_today() - timedelta(days=1))
    get_engine(url).dispose()
    return url


def _national_database() -> str:
    """50,000 outlets x 60 days (bench/national.py) plus an admin and one outlet manager."""
    import sqlalchemy as sa
    from sqlmodel import Session

    from bench.national import build
    from core.platform.auth import hash_password
    from db.engine import get_engine
    from db.models import OrgLevel, OrgUnit, Role, User

    DATA_DIR.mkdir(exist_ok=True)
    # 60 days cover 近 30 天 and the 30 days before it (rank change); cached like bench_board's.
    url = f"sqlite:///{DATA_DIR / 'pages-national.db'}"
    build(url, 50_000, 60, say=lambda m: print(m, flush=True))
    with Session(get_engine(url)) as session:
        session.execute(sa.delete(User).where(User.username.in_(["admin", "manager"])))
        outlet = session.exec(
            sa.select(OrgUnit).where(OrgUnit.level == OrgLevel.OUTLET).offset(777).limit(1)
        ).scalar_one()
        province = session.exec(
            sa.select(OrgUnit).where(OrgUnit.level == OrgLevel.PROVINCE)
        ).scalar_one()
        secret = hash_password(PASSWORD)
        for name, role, org in (
            ("admin", Role.ADMIN, province),
            ("manager", Role.OUTLET_MANAGER, outlet),
        ):
            session.add(
                User(
                    username=name, display_name=name, role=role, org_id=org.id, password_hash=secret
                )
            )
        session.commit()
    get_engine(url).dispose()
    return url


def run(scale: str, visits: int = 5, roles: list[str] | None = None) -> list[Result]:
    from playwright.sync_api import sync_playwright

    from tests.e2e.app_server import running_app

    log = Path(tempfile.mkdtemp()) / "server.log"
    results: list[Result] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
        )
        with running_app(_demo_database(), log) as base:
            for role in roles or ROLES:
                print(f"  {role}…", flush=True)
                times = time_role(browser, base, role, visits)
                results += _results("", role, times, lambda _u: GOAL_S, "demo")
        if scale == "full":
            with running_app(_national_database(), log) as base:
                for role in ("manager", "admin"):
                    print(f"  national {role}…", flush=True)
                    times = time_role(browser, base, role, visits, only={"board"})
                    results += _results(
                        "national_", role, times, lambda _u: BOARD_NATIONAL_GOAL_S, "50k outlets"
                    )
        browser.close()
    return results


def write(fresh: list[Result]) -> None:
    """Merge into bench/results.json by name."""
    path = BENCH_DIR / "results.json"
    previous = json.loads(path.read_text()) if path.exists() else []
    names = {r.name for r in fresh}
    merged = [r for r in previous if r["name"] not in names] + [r.as_dict() for r in fresh]
    path.write_text(json.dumps(merged, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--role", action="append", choices=ROLES)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    fresh = run(args.scale, args.visits, args.role)
    if not args.no_write:
        write(fresh)
    print(f"\n{'name':44} {'median':>8} {'p95':>8}")
    for r in fresh:
        print(
            f"{r.name:44} {r.median:>8} {r.p95:>8}{'  ABOVE GOAL' if r.p95 >= r.baseline_value else ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
