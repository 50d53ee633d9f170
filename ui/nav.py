"""Which pages exist and who sees them: built from the permission registry.

A page the role may not use is still registered under its URL, but hidden and replaced by
a refusal, so a typed or bookmarked URL gets a clear Chinese answer instead of a blank.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from core.platform.permissions import ACTIONS, Action, Actor, allowed
from ui import charts, widgets
from ui.text import md


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    url_path: str
    section: str
    action: Action


# fmt: off
PAGES: list[PageSpec] = [
    PageSpec("pages/home.py", "首页", ":material/home:", "home", "概览", Action.VIEW_DASHBOARD),
    PageSpec("pages/notifications.py", "消息通知", ":material/notifications:", "notifications", "概览", Action.VIEW_NOTIFICATIONS),
    PageSpec("pages/leaderboard.py", "网点排行", ":material/leaderboard:", "board", "排名", Action.VIEW_METRICS),
    PageSpec("pages/staff_board.py", "员工排行", ":material/badge:", "staff", "排名", Action.VIEW_STAFF_METRICS),
    PageSpec("pages/city_ranking.py", "市州排名", ":material/location_city:", "cities", "排名", Action.VIEW_CITY_RANKING),
    PageSpec("pages/campaigns.py", "活动设计", ":material/edit_calendar:", "design", "活动", Action.MANAGE_CAMPAIGNS),
    PageSpec("pages/plans.py", "活动方案", ":material/event_note:", "plans", "活动", Action.VIEW_CAMPAIGNS),
    PageSpec("pages/approvals.py", "方案审核", ":material/fact_check:", "approvals", "活动", Action.REVIEW_PLANS),
    PageSpec("pages/results.py", "活动复盘", ":material/assessment:", "results", "活动", Action.VIEW_RESULTS),
    PageSpec("pages/merchants.py", "联盟商户", ":material/storefront:", "merchants", "活动", Action.VIEW_MERCHANTS),
    PageSpec("pages/codes.py", "渠道活码", ":material/qr_code_2:", "codes", "渠道与海报", Action.VIEW_CHANNEL_CODES),
    PageSpec("pages/funnel.py", "渠道转化", ":material/filter_alt:", "funnel", "渠道与海报", Action.VIEW_CHANNEL_STATS),
    PageSpec("pages/posters.py", "海报工坊", ":material/photo_library:", "posters", "渠道与海报", Action.MANAGE_POSTERS),
    PageSpec("pages/data_import.py", "数据导入", ":material/upload_file:", "import", "数据", Action.IMPORT_METRICS),
    PageSpec("pages/data_quality.py", "数据质量", ":material/rule:", "quality", "数据", Action.VIEW_DATA_QUALITY),
    PageSpec("pages/metric_registry.py", "指标库", ":material/list_alt:", "metrics", "系统", Action.MANAGE_METRIC_REGISTRY),
    PageSpec("pages/review_settings.py", "审核与预算设置", ":material/tune:", "settings", "系统", Action.MANAGE_SETTINGS),
    PageSpec("pages/jobs.py", "定时任务", ":material/schedule:", "jobs", "系统", Action.MANAGE_JOBS),
    PageSpec("pages/users.py", "用户管理", ":material/group:", "users", "系统", Action.MANAGE_USERS),
    PageSpec("pages/audit_log.py", "审计日志", ":material/history:", "audit", "系统", Action.VIEW_AUDIT),
]
# fmt: on


def visible_pages(actor: Actor) -> list[PageSpec]:
    return [spec for spec in PAGES if allowed(actor, spec.action)]


def link_to(
    actor: Actor, url_path: str | None, *, query_params: dict[str, str] | None = None
) -> None:
    """A link to the page at `url_path`, when this actor may open it."""
    for spec in visible_pages(actor):
        if spec.url_path == url_path:
            st.page_link(
                spec.path,
                label=f"前往「{spec.title}」",
                icon=":material/arrow_forward:",
                query_params=query_params,
            )


def _refusal(spec: PageSpec, actor: Actor) -> Callable[[], None]:
    def refuse() -> None:
        st.title(spec.title)
        st.error(
            f"您的角色（{actor.role.label}）无权访问「{spec.title}」：需要「{ACTIONS[spec.action].label}」权限。"
        )
        st.page_link("pages/home.py", label="返回首页", icon=":material/home:")

    refuse.__name__ = f"refuse_{spec.url_path}"
    return refuse


def _login_stub(spec: PageSpec) -> Callable[[], None]:
    def login() -> None:
        widgets.render_login(next_path=spec.url_path)

    login.__name__ = f"login_{spec.url_path}"
    return login


_PATH = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _requested_path() -> str:
    """The page path the browser asked for ("" for the app's root)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        name = ctx.pages_manager.intended_page_name if ctx else None
    except Exception:  # an internal of Streamlit's: without it, Streamlit's own dialog shows
        return ""
    return (name or "").strip("/")


def _not_found(path: str, actor: Actor | None) -> st.Page:
    """A Chinese "page not found" registered under the unknown path itself, so Streamlit
    renders it instead of its English dialog and a silent jump to the main page."""

    def not_found() -> None:
        st.title("页面不存在")
        st.warning(
            f"没有找到地址为「/{md(path)}」的页面，可能是链接有误或页面已调整。",
            icon=":material/travel_explore:",
        )
        if actor is None:
            st.markdown("[前往登录](/)")
        else:
            st.page_link("pages/home.py", label="返回首页", icon=":material/home:")

    not_found.__name__ = "not_found"
    return st.Page(not_found, title="页面不存在", url_path=path, visibility="hidden")


def _unknown_path(known: set[str]) -> str | None:
    """The unknown path asked for, kept for the session: the reruns that follow ask for the
    page by its id, not its path, and must still find it registered."""
    path = _requested_path()
    if path and path not in known and _PATH.fullmatch(path):
        st.session_state["_nav_unknown_path"] = path
        return path
    return st.session_state.get("_nav_unknown_path")


def navigation_for(actor: Actor | None) -> dict[str, list[st.Page]] | list[st.Page]:
    """The st.navigation argument for this visitor (with a Chinese 404 for unknown paths)."""
    pages = _navigation_for(actor)
    unknown = _unknown_path({s.url_path for s in PAGES} | {"login"})
    if unknown is None:
        return pages
    extra = _not_found(unknown, actor)
    if isinstance(pages, list):
        return [*pages, extra]
    first = next(iter(pages))
    return {**pages, first: [*pages[first], extra]}


def _navigation_for(actor: Actor | None) -> dict[str, list[st.Page]] | list[st.Page]:
    if actor is None:
        entry = st.Page(
            lambda: widgets.render_login(next_path=""), title="登录", url_path="login", default=True
        )
        return [
            entry,
            *(
                st.Page(_login_stub(s), title="登录", url_path=s.url_path, visibility="hidden")
                for s in PAGES
            ),
        ]
    sections: dict[str, list[st.Page]] = {}
    for spec in PAGES:
        if allowed(actor, spec.action):
            page = st.Page(
                spec.path,
                title=spec.title,
                icon=spec.icon,
                url_path=spec.url_path,
                default=spec.url_path == "home",
            )
            sections.setdefault(spec.section, []).append(page)
        else:
            hidden = st.Page(
                _refusal(spec, actor), title=spec.title, url_path=spec.url_path, visibility="hidden"
            )
            sections.setdefault(spec.section, []).append(hidden)
    return {name: pages for name, pages in sections.items()}


# Phones: the sidebar covers the whole page, so close it once a page is chosen (Streamlit
# leaves it open), hide chart toolbars, which cover titles and legends at that width, and
# make filter bars and rows of figures compact (widgets.PHONE_COMPACT_CSS).
_PHONE_JS = """
<script>
(() => {
  if (window.rdsPhoneNav) return;
  window.rdsPhoneNav = true;
  document.addEventListener("click", (event) => {
    if (window.innerWidth > 640 || !event.target.closest('[data-testid="stSidebarNav"] a')) return;
    setTimeout(() => {
      const open = document.querySelector('[data-testid="stSidebar"][data-collapsed="false"]');
      const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (open && close) close.click();
    }, 0);
  }, true);
})();
</script>
"""


def phone_support() -> None:
    """Once per run, from Home.py: the phone behaviour above (CSS and a click handler), as
    one element (every element is a message and a wake-up of the server's event loop)."""
    st.sidebar.html(
        charts.PHONE_CSS + widgets.PHONE_COMPACT_CSS + _PHONE_JS, unsafe_allow_javascript=True
    )
