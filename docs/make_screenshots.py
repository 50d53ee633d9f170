"""Regenerate docs/screenshots: a demo province, the real server, Chromium, one picture per
page (as the role that uses it most) plus the outlet manager on a phone.

    python docs/make_screenshots.py            # needs Debian's chromium and fonts-noto-cjk
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"

# (file, role's username, page title in the sidebar or None for the landing page, caption)
SHOTS = [
    ("login", None, None, "登录页（演示模式下列出演示账户）"),
    ("home-admin", "admin", None, "首页 · 系统管理员：全省近 30 天概览与待办"),
    ("home-manager", "manager", None, "首页 · 网点负责人：本网点名次与差距"),
    ("board", "manager", "网点排行", "网点排行：本网点置顶、名次变化、全省名次"),
    ("cities", "reviewer1", "市州排名", "市州排名：合计与网点平均"),
    ("design", "planner", "活动设计", "活动设计：逢8 规则、权益券、实时预算与合规提示"),
    ("plans", "planner", "活动方案", "活动方案：状态、审核环节、下一步"),
    ("approvals", "reviewer1", "方案审核", "方案审核：按等待时间排序、超时标记、审核操作"),
    ("merchants", "planner", "联盟商户", "联盟商户：检索、新增、导入（电话脱敏）"),
    ("codes", "designer", "渠道活码", "渠道活码：失效提醒、批量生成、打包下载"),
    ("funnel", "designer", "渠道转化", "渠道转化：扫码 → 加好友 → 进群 → 转化"),
    ("posters", "designer", "海报工坊", "海报工坊：模板、实时预览、批量专属海报"),
    ("import", "admin", "数据导入", "数据导入：全有或全无，逐行指出问题"),
    ("quality", "admin", "数据质量", "数据质量：未上报网点与异常值"),
    ("settings", "admin", "审核与预算设置", "审核环节、市州预算、合规词库"),
    ("jobs", "admin", "定时任务", "定时任务：下次运行、运行记录、立即运行"),
    ("audit", "admin", "审计日志", "审计日志：谁在何时改了什么"),
    ("notifications", "reviewer1", "消息通知", "消息通知"),
]


def main() -> int:
    from playwright.sync_api import sync_playwright
    from sqlmodel import Session

    from core.demo.seed import seed_demo
    from core.platform.clock import shanghai_today
    from db.engine import get_engine
    from db.migrate import upgrade_to_head
    from tests.e2e.app_server import running_app

    db = Path(tempfile.mkdtemp()) / "shots.db"
    url = f"sqlite:///{db}"
    upgrade_to_head(url)
    with Session(get_engine(url)) as session:
        seed_demo(session, end_date=shanghai_today() - timedelta(days=1), progress=print)
    with running_app(url, db.with_suffix(".log")) as base:
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
            )
            for name, user, title, _caption in SHOTS:
                _shoot(browser, base, user, title, OUT / f"{name}.png", width=1280, height=900)
            _shoot(
                browser,
                base,
                "manager",
                "网点排行",
                OUT / "board-phone.png",
                width=390,
                height=844,
                mobile=True,
            )
            browser.close()
    lines = [
        "# 界面截图 · Screenshots",
        "",
        "Made by `python docs/make_screenshots.py` against the demo province.",
        "",
    ]
    for name, _user, _title, caption in [
        *SHOTS,
        ("board-phone", "manager", "网点排行", "网点排行 · 手机（390 px）"),
    ]:
        if (OUT / f"{name}.png").exists():
            lines += [f"## {caption}", "", f"![{caption}]({name}.png)", ""]
    (OUT / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return 0


def _shoot(
    browser,
    base: str,
    user: str | None,
    title: str | None,
    path: Path,
    *,
    width: int,
    height: int,
    mobile: bool = False,
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": height},
        is_mobile=mobile,
        has_touch=mobile,
        locale="zh-CN",
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(base)
    page.get_by_role("button", name="登录").wait_for()
    if user:
        page.get_by_label("用户名").fill(user)
        page.get_by_label("密码").fill("Demo2026")
        page.get_by_role("button", name="登录").click()
        page.get_by_role("heading").first.wait_for()
        if title:
            if mobile:
                page.get_by_test_id("stExpandSidebarButton").click()
            link = page.get_by_role("link", name=title)
            if link.count() == 0:
                context.close()
                return
            link.first.click()
            page.get_by_role("heading", name=title).wait_for()
            if mobile:
                page.get_by_test_id("stSidebarCollapseButton").locator("button").click()
    page.wait_for_timeout(2500)  # charts and tables settle
    page.screenshot(path=str(path))
    context.close()
    print("saved", path.name)


if __name__ == "__main__":
    sys.exit(main())
