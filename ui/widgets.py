"""Shared Streamlit helpers: the one way to get the user, the login form, and the small
widgets every page uses (errors, empty states, downloads, money formatting)."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components
from sqlmodel import Session

from core.platform import auth, export
from core.platform.clock import shanghai_today
from core.platform.errors import DomainError
from core.platform.periods import Period
from core.platform.permissions import Action, Actor, ensure_allowed
from core.platform.settings import get_settings
from db.engine import session_scope
from ui.text import md

SESSION_COOKIE = "rds_session"
TOKEN_KEY = "session_token"  # AppTest presets this; browsers use the cookie


@contextmanager
def db() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def session_token() -> str | None:
    token = st.session_state.get(TOKEN_KEY)
    if token:
        return token
    try:
        cookie = st.context.cookies.get(SESSION_COOKIE)
    except Exception:
        return None
    return cookie if isinstance(cookie, str) else None


def current_actor() -> Actor | None:
    """The logged-in user, checked against the database on every run (expiry, idle time)."""
    token = session_token()
    if not token:
        return None
    with db() as session:
        return auth.actor_for_token(session, token)


_this_run = threading.local()  # the actor Home.py resolved for the script run in this thread


@contextmanager
def running_as(actor: Actor | None) -> Iterator[None]:
    """Home.py runs the page inside this, so the page's `require` does not look the user up
    a second time in the same run."""
    _this_run.known, _this_run.actor = True, actor
    try:
        yield
    finally:
        _this_run.known, _this_run.actor = False, None


def require(action: Action) -> Actor:
    """First line of every page: the actor, or a login prompt / refusal and a stop."""
    actor = _this_run.actor if getattr(_this_run, "known", False) else current_actor()
    if actor is None:
        render_login(next_path="")
        st.stop()
    try:
        ensure_allowed(actor, action)
    except DomainError as exc:
        st.error(md(exc.message))
        st.stop()
    return actor


def show_error(exc: DomainError) -> None:
    # Messages quote what users typed (names, file names, cells): show them as plain text.
    st.error(md(exc.message), icon=":material/error:")


def empty_state(text: str, icon: str = ":material/inbox:") -> None:
    st.info(text, icon=icon)


_LOGIN_CSS = """
<style>
.rds-login {max-width: 400px; margin: 3rem auto 1rem; padding: 2rem 2rem 1.5rem;
  border: 1px solid #d7e7dc; border-radius: 12px; background: #fff;
  box-shadow: 0 4px 18px rgba(0, 80, 40, .08);}
.rds-login h2 {margin: 0 0 .25rem; color: #007A3D; font-size: 1.5rem; display: flex; align-items: center; gap: .5rem;}
.rds-badge {display: inline-flex; width: 2rem; height: 2rem; border-radius: 8px; background: #007A3D;
  color: #fff; font-size: 1.1rem; align-items: center; justify-content: center;}
.rds-login p.sub {margin: 0 0 1.25rem; color: #5b6b62; font-size: .9rem;}
.rds-login label {display: block; font-size: .9rem; margin: .75rem 0 .25rem; color: #1F2A24;}
.rds-login input {width: 100%; box-sizing: border-box; padding: .6rem .75rem; font-size: 1rem;
  border: 1px solid #b9d3c2; border-radius: 8px;}
.rds-login input:focus {outline: 2px solid #007A3D; border-color: #007A3D;}
.rds-login button {width: 100%; margin-top: 1.25rem; padding: .65rem; font-size: 1rem;
  color: #fff; background: #007A3D; border: 0; border-radius: 8px; cursor: pointer;}
.rds-login button:hover {background: #00632f;}
</style>
"""


def render_login(next_path: str) -> None:
    """The login form. It posts to /auth/login (ui/routes.py), which sets the session cookie."""
    _, middle, _ = st.columns([1, 1.6, 1])
    with middle:
        st.html(
            _LOGIN_CSS
            + '<form class="rds-login" method="post" action="/auth/login">'
            + '<h2><span class="rds-badge">邮</span>邮惠运营工作台</h2>'
            + '<p class="sub">会员权益日 · 渠道活码 · 网点排行</p>'
            + '<label for="rds-user">用户名</label>'
            + '<input id="rds-user" name="username" autocomplete="username" required>'
            + '<label for="rds-pass">密码</label>'
            + '<input id="rds-pass" name="password" type="password" autocomplete="current-password" required>'
            + f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
            + '<button type="submit">登录</button></form>'
        )
        outcome = st.query_params.get("login")
        if outcome == "failed":
            # One message for a wrong password, an unknown name, a locked account and too
            # many attempts: telling them apart would tell an outsider which names exist.
            st.error(
                "用户名或密码错误，或尝试次数过多，请稍后再试。"
                "连续 5 次密码错误将锁定账户 15 分钟，急需登录请联系管理员解锁。"
            )
        elif outcome == "expired":
            st.warning("登录已过期，请重新登录。")
        if get_settings().demo_mode:
            _demo_accounts()


def _demo_accounts() -> None:
    from core.demo.seed import DEMO_PASSWORD, demo_accounts  # only in demo mode

    with db() as session:
        accounts = demo_accounts(session)
    with st.expander("演示账户（仅演示模式显示）", expanded=True):
        st.caption(f"所有演示账户的密码均为 `{DEMO_PASSWORD}`")
        st.dataframe(
            pd.DataFrame(
                [{"用户名": a.username, "角色": a.role.label, "说明": a.note} for a in accounts]
            ),
            hide_index=True,
        )


_GLOBAL_CSS = """
<style>
/* Streamlit has no locale setting: put the file uploader's English texts into Chinese. */
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p {font-size: 0;}
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p::after {
  content: "选择文件"; font-size: .875rem;}
[data-testid="stFileUploaderDropzoneInstructions"] span {font-size: 0;}
[data-testid="stFileUploaderDropzoneInstructions"] span::after {
  content: "拖入文件或点击选择，单个文件不超过 20MB"; font-size: .8rem;}
/* A table's own CSV download bypasses the export encoder (formula neutralising, BOM):
   tables that may be downloaded have download buttons of their own under them. */
[data-testid="stElementToolbarButton"]:has(button[aria-label="Download as CSV"]),
[data-testid="stElementToolbarButton"]:has(button[aria-label="下载 CSV"]) {display: none;}
/* The translation helper's frame (height 0) takes no room on the page. */
.stElementContainer:has(> iframe[srcdoc*="__rdsZh"]) {display: none;}
</style>
"""


# Streamlit's own English strings (tooltips of the table toolbar, empty select boxes, its
# fallback dialogs) in Chinese. A fixed script with no user input, installed once per tab:
# it rewrites exactly these strings wherever Streamlit draws them.
_ZH = {
    "Search": "搜索",
    "Fullscreen": "全屏",
    "Close fullscreen": "退出全屏",
    "Show/hide columns": "显示/隐藏列",
    "Download as CSV": "下载 CSV",
    "Choose an option": "请选择",
    "Choose options": "请选择",
    "Select...": "请选择…",
    "Select…": "请选择…",
    "No results": "没有匹配的选项",
    "Page not found": "页面不存在",
    "Clear all": "全部清除",
}
# It runs in a zero-height component frame (st.html with scripts lost st.toast messages in
# the same run) and works on the app's document, which has the same origin.
_TRANSLATE_JS = (
    "<script>(() => {const window = parent; const document = parent.document;"
    "if (window.__rdsZh) return; window.__rdsZh = true;"
    f"const T = {json.dumps(_ZH, ensure_ascii=False)};"
    """
const fixNode = (n) => {
  if (n.nodeType === 3) { const k = n.nodeValue.trim(); if (T[k]) n.nodeValue = T[k]; return; }
  if (n.nodeType !== 1) return;
  for (const a of ["placeholder", "aria-label", "title"]) {
    const v = n.getAttribute && n.getAttribute(a); if (v && T[v]) n.setAttribute(a, T[v]);
  }
  const walker = document.createTreeWalker(n, 5);  // text and element nodes
  let c; while ((c = walker.nextNode())) {
    if (c.nodeType === 3) { const k = c.nodeValue.trim(); if (T[k]) c.nodeValue = T[k]; }
    else for (const a of ["placeholder", "aria-label", "title"]) {
      const v = c.getAttribute(a); if (v && T[v]) c.setAttribute(a, T[v]);
    }
  }
};
new window.MutationObserver((ms) => { for (const m of ms) {
  if (m.type === "characterData") fixNode(m.target);
  else if (m.type === "attributes") fixNode(m.target);
  else m.addedNodes.forEach(fixNode);
}}).observe(document.body, {subtree: true, childList: true, characterData: true,
  attributes: true, attributeFilter: ["placeholder", "aria-label"]});
fixNode(document.body);
})();</script>"""
)


def apply_global_style() -> None:
    st.html(_GLOBAL_CSS)
    components.html(_TRANSLATE_JS, height=0)


def sidebar_user(actor: Actor, org_label: str, unread: int) -> None:
    with st.sidebar:
        st.markdown(f"**{md(actor.display_name)}**  \n{actor.role.label} · {md(org_label)}")
        if unread:
            st.page_link(
                "pages/notifications.py",
                label=f"{unread} 条未读消息",
                icon=":material/mark_email_unread:",
            )
        # A form in this tab (st.link_button would open a new one) posting to ui/routes.py.
        st.html(
            '<form method="post" action="/auth/logout" class="rds-logout">'
            '<button type="submit">退出登录</button></form>'
            "<style>.rds-logout button {padding: .35rem .9rem; border: 1px solid #b9d3c2; border-radius: 8px;"
            " background: #fff; color: #1F2A24; cursor: pointer; font-size: .9rem;}"
            ".rds-logout button:hover {border-color: #007A3D; color: #007A3D;}</style>"
        )


def number_columns(frame: pd.DataFrame, **overrides: Any) -> dict[str, Any]:
    """column_config giving every numeric column thousands separators ("10,852", not
    "10852" beside "6,150"); `overrides` keep their own configuration."""
    config: dict[str, Any] = {
        name: st.column_config.NumberColumn(format="localized")
        for name, dtype in frame.dtypes.items()
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    }
    config.update(overrides)
    return config


def table_download(
    frame: pd.DataFrame, file_stem: str, *, key: str, formats: Sequence[str] = ("csv", "xlsx")
) -> None:
    """Download buttons for exactly the table shown, through the one export encoder (CSV
    opens in Excel thanks to the BOM; text that a spreadsheet would run is neutralised)."""
    columns = st.columns(len(formats) + 3)
    for column, fmt in zip(columns, formats, strict=False):
        column.download_button(
            f"下载 {fmt.upper()}",
            _encoder(frame, fmt),  # encoded on click, not on every run
            file_name=f"{file_stem}.{fmt}",
            mime=export.CSV_MIME if fmt == "csv" else export.XLSX_MIME,
            key=f"{key}_{fmt}",
            on_click="ignore",
            icon=":material/download:",
        )


def _encoder(frame: pd.DataFrame, fmt: str) -> Callable[[], bytes]:
    return lambda: export.encode(*export.frame_table(frame), fmt)[0]


def city_filter(container: Any, names: dict[int, str], *, key: str) -> int | None:
    """A 市州 select led by 全部市州 (None): every city the user may see."""
    return container.selectbox(
        "市州",
        [None, *names],
        format_func=lambda i: "全部市州" if i is None else names[i],
        key=key,
        placeholder="请选择",
    )


# Phones: a page's filters (a metric picker and a row of selectboxes) and a row of figures
# would stack into one full-width item per line and push the content below the first
# screen. Inside a filter_bar the metric chips become one row that scrolls sideways and the
# columns pair up two per line; inside a figure_pairs container the columns pair up too,
# with smaller figures. Emitted once per run by nav.phone_support; desktop is untouched.
_FILTERS, _PAIRS = '[class*="st-key-filters_"]', '[class*="st-key-pairs_"]'
PHONE_COMPACT_CSS = (
    "<style>@media (max-width: 640px) {"
    f" {_FILTERS} {{gap: 0.5rem;}}"
    f' {_FILTERS} [data-testid="stColumn"], {_PAIRS} [data-testid="stColumn"]'
    " {min-width: calc(50% - 0.5rem) !important; flex: 1 1 calc(50% - 0.5rem) !important;}"
    f' {_FILTERS} [data-testid="stHorizontalBlock"] {{gap: 0.5rem 1rem;}}'
    f' {_PAIRS} [data-testid="stHorizontalBlock"] {{gap: 0.75rem 1rem;}}'
    f' {_FILTERS} [data-testid="stColumn"]:not(:has([data-testid="stElementContainer"]))'
    " {display: none;}"
    f' {_FILTERS} [data-testid="stColumn"]:has([data-testid="stDateInput"])'
    " {min-width: 100% !important;}"
    f' {_FILTERS} [role="radiogroup"] {{flex-wrap: nowrap; overflow-x: auto; scrollbar-width: none;}}'
    f' {_FILTERS} [role="radiogroup"] > button {{flex: 0 0 auto;}}'
    f' {_PAIRS} [data-testid="stMetricValue"] {{font-size: 1.75rem;}}'
    "}</style>"
)


def filter_bar(key: str) -> Any:
    """The container for a page's filters (see PHONE_COMPACT_CSS): compact on phones."""
    return st.container(key=f"filters_{key}")


def figure_pairs(key: str, *, border: bool = False) -> Any:
    """A container whose columns of st.metric figures pair up two per line on phones."""
    return st.container(key=f"pairs_{key}", border=border)


def metric_picker(key: str, default: str = "new_friends", level: str = "outlet") -> str:
    """The active registry metrics of a level as a segmented control; returns the key."""
    from core.metrics.registry import Level, specs

    with db() as session:
        found = specs(session, Level(level))
    options = list(found) or [default]
    default = default if default in found else options[0]
    choice = st.segmented_control(
        "指标",
        options,
        format_func=lambda k: found[k].label if k in found else k,
        default=default,
        key=key,
    )
    return choice if choice in found else default


def period_picker(
    key: str, latest: date | None, campaigns: Sequence = ()
) -> tuple[Period | None, int | None]:
    """(period, campaign id): a preset, a campaign's period or a custom range. The period
    is None while a custom range is half picked."""
    from core.platform.periods import PeriodPreset, custom, resolve

    today = shanghai_today()
    presets = [p for p in PeriodPreset if campaigns or p is not PeriodPreset.CAMPAIGN]
    preset = st.selectbox(
        "时间",
        presets,
        format_func=lambda p: p.label,
        index=3,
        key=f"{key}_preset",
        placeholder="请选择",
    )
    if preset is PeriodPreset.CAMPAIGN:
        campaign = st.selectbox(
            "活动",
            campaigns,
            format_func=lambda c: f"{c.name}（{c.start_date:%m-%d}～{c.end_date:%m-%d}）",
            key=f"{key}_campaign",
            placeholder="请选择",
        )
        return custom(campaign.start_date, campaign.end_date, campaign.name), campaign.id
    if preset is PeriodPreset.CUSTOM:
        default_end = latest or today
        picked = st.date_input(
            "起止日期",
            value=(default_end - timedelta(days=29), default_end),
            max_value=today,
            key=f"{key}_range",
        )
        if not isinstance(picked, tuple) or len(picked) != 2:
            st.caption("请选择结束日期")
            return None, None
        try:
            return custom(picked[0], picked[1], "自定义"), None
        except DomainError as exc:
            show_error(exc)
            return None, None
    return resolve(preset, today=today, latest=latest), None


def rank_delta(change: int | None) -> str | None:
    """st.metric delta for a rank change: green "+3 名" up, red "-2 名" down."""
    if change is None:
        return None
    return f"{change:+d} 名" if change else "名次不变"


def data_changed() -> None:
    """After a write that changes what summaries say (a decision, a submission, a saved or
    deleted draft): drop this process's cached reads, so the next page (the planner's home,
    the queue, the boards) shows the new state at once instead of after its TTL."""
    st.cache_data.clear()


def flash(message: str) -> None:
    """A success message that survives the rerun that follows a change (plain text: it
    often names what was changed)."""
    st.session_state["_flash"] = message


def show_flash() -> None:
    # The slot is taken even without a message, so what follows keeps its place from one run
    # to the next; otherwise the page below a vanished message is drawn twice (the stale copy
    # faded) until the run ends.
    slot = st.empty()
    if message := st.session_state.pop("_flash", None):
        slot.success(md(message), icon=":material/check_circle:")


def columns_hint(columns: Sequence, note: str) -> None:
    """The expected columns of an upload, Chinese name with the English key."""
    st.markdown("列：" + "、".join(f"{c.zh}（`{c.key}`）" for c in columns) + "。" + note)


def import_panel(
    *,
    key: str,
    columns: Sequence,
    note: str,
    run: Callable[..., Any],
    template_name: str | None = None,
    dry_run: bool = False,
    done: str = "导入完成",
) -> None:
    """An all-or-nothing upload: the expected columns, a blank template, the file, an
    optional validate-only switch, progress, and the report. `run(session, data, filename,
    dry_run, progress)` calls the core import and returns its report."""
    columns_hint(columns, note)
    st.caption(
        "CSV（UTF-8 或 GBK）或 XLSX，表头用中文或英文均可。整个文件要么全部导入，要么一行都不导入。"
    )
    if template_name:
        st.download_button(
            "下载空白模板",
            export.to_csv_bytes([c.zh for c in columns], []),
            f"{template_name}.csv",
            export.CSV_MIME,
            key=f"{key}_template",
            on_click="ignore",
            icon=":material/download:",
        )
    upload = st.file_uploader("选择文件", type=["csv", "xlsx"], key=f"{key}_upload")
    check_only = dry_run and st.checkbox("仅校验，不写入", key=f"{key}_dry_run")
    if st.button("开始导入", type="primary", key=f"{key}_submit", disabled=upload is None):
        bar = st.progress(0.0, text="准备中…")
        with db() as session:
            report = run(
                session,
                upload.getvalue(),
                upload.name,
                check_only,
                lambda fraction, text: bar.progress(fraction, text=text),
            )
        bar.empty()
        if report.ok and not check_only:
            st.cache_data.clear()  # boards, totals and lists must show what was imported
            st.toast(done, icon=":material/check_circle:")
        import_report(report, key)


def import_report(report, key: str) -> None:
    """The outcome of an all-or-nothing import: a success line, or every problem as a table
    the user can download and fix from."""
    from core.platform.tabular import problems_as_rows

    if report.ok:
        st.success(md(report.summary()))
        if getattr(report, "ignored_columns", None):
            st.caption("已忽略无法识别的列：" + md("、".join(report.ignored_columns)))
        return
    st.error(md(report.summary()))
    problems = pd.DataFrame(problems_as_rows(report.problems))
    st.dataframe(problems, hide_index=True, key=f"{key}_problems")
    table_download(problems, "导入问题清单", key=f"{key}_problems_dl")
