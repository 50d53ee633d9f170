"""The home page of each role: totals of its scope for the last 30 days against the 30
before, a daily trend, and what needs this user's attention."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import values as metrics
from core.platform.clock import shanghai_today, utcnow
from core.platform.directory import outlet_directory
from core.platform.formatting import format_change
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_of
from db.models import OrgUnit, Role, User

PERIOD_DAYS = 30


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: int
    previous: int
    is_money: bool
    is_stock: bool

    @property
    def text(self) -> str:
        return metrics.METRICS[self.key].format(self.value)  # with its unit: "171 人"

    @property
    def change(self) -> str:
        return format_change(self.value, self.previous)

    @property
    def unchanged(self) -> bool:
        return self.value == self.previous


@dataclass(frozen=True)
class AttentionItem:
    level: str  # "info" | "warning" | "success"
    text: str
    page: str | None = None  # url_path of the page that deals with it


@dataclass(frozen=True)
class HomeOverview:
    scope_label: str
    start: date
    end: date
    kpis: list[Kpi]
    trend: list[metrics.DailyPoint]
    latest_date: date | None
    outlets_reporting: int
    attention: list[AttentionItem]


AttentionSource = Callable[[Session, Actor, date], list[AttentionItem]]
# Later capabilities (plans to review, dead channel codes, reminders) register here.
ATTENTION_SOURCES: list[AttentionSource] = []


def attention_source(fn: AttentionSource) -> AttentionSource:
    ATTENTION_SOURCES.append(fn)
    return fn


def home_overview(session: Session, *, actor: Actor, today: date | None = None) -> HomeOverview:
    ensure_allowed(actor, Action.VIEW_DASHBOARD)
    today = today or shanghai_today()
    end = today - timedelta(days=1)
    start = end - timedelta(days=PERIOD_DAYS - 1)
    prev_end = start - timedelta(days=1)
    prev_start = prev_end - timedelta(days=PERIOD_DAYS - 1)
    directory = outlet_directory(session)
    mask = directory.mask_for(actor, Action.VIEW_DASHBOARD)
    current = metrics.totals(session, directory, mask, start, end)
    previous = metrics.totals(session, directory, mask, prev_start, prev_end)
    kpis = [
        Kpi(
            key,
            spec.label,
            current[key],
            previous[key],
            spec.is_money,
            spec.kind is metrics.MetricKind.STOCK,
        )
        for key, spec in metrics.METRICS.items()
    ]
    attention: list[AttentionItem] = []
    for source in ATTENTION_SOURCES:
        attention.extend(source(session, actor, today))
    return HomeOverview(
        scope_label=scope_label(session, actor, Action.VIEW_DASHBOARD),
        start=start,
        end=end,
        kpis=kpis,
        trend=metrics.daily_series(session, directory, mask, start, end),
        latest_date=metrics.latest_date(session),
        outlets_reporting=current.outlets_reporting,
        attention=attention,
    )


def scope_label(session: Session, actor: Actor, action: Action) -> str:
    scope = scope_of(actor, action)
    if scope is Scope.CITY and actor.city_id:
        return session.get(OrgUnit, actor.city_id).name
    if scope is Scope.OUTLET and actor.outlet_id:
        outlet = session.get(OrgUnit, actor.outlet_id)
        city = session.get(OrgUnit, outlet.city_id) if outlet.city_id else None
        return f"{city.name} · {outlet.name}" if city else outlet.name
    return "全省"


@attention_source
def _data_freshness(session: Session, actor: Actor, today: date) -> list[AttentionItem]:
    latest = metrics.latest_date(session)
    yesterday = today - timedelta(days=1)
    if latest is None:
        hint = (
            "请在「数据导入」上传网点日报"
            if actor.role in (Role.ADMIN, Role.CITY_PLANNER)
            else "请联系管理员导入"
        )
        return [AttentionItem("info", f"还没有任何指标数据，{hint}。", "import")]
    if latest < yesterday:
        return [
            AttentionItem(
                "warning",
                f"指标数据只更新到 {latest}，已有 {(yesterday - latest).days} 天未导入。",
                "import",
            )
        ]
    directory = outlet_directory(session)
    silent = metrics.silent_outlets(
        session, directory, directory.mask_for(actor, Action.VIEW_DASHBOARD), yesterday
    )
    if not silent:
        return [AttentionItem("success", f"昨日（{yesterday}）数据已全部上报。")]
    if actor.role is Role.OUTLET_MANAGER:
        return [
            AttentionItem("warning", f"本网点昨日（{yesterday}）没有上报数据，请联系市分核实。")
        ]
    names = "、".join(name for _, name in silent[:3])
    more = f"等 {len(silent)} 个网点" if len(silent) > 3 else ""
    return [AttentionItem("warning", f"昨日（{yesterday}）未上报数据：{names}{more}。")]


@attention_source
def _locked_accounts(session: Session, actor: Actor, today: date) -> list[AttentionItem]:
    if actor.role is not Role.ADMIN:
        return []
    count = session.execute(
        sa.select(sa.func.count()).select_from(User).where(User.locked_until > utcnow())
    ).scalar_one()
    if not count:
        return []
    return [AttentionItem("warning", f"有 {count} 个账户因多次密码错误被锁定。", "users")]


@attention_source
def _plans_waiting(session: Session, actor: Actor, today: date) -> list[AttentionItem]:
    """Reviewers: plans at their stages; planners: plans returned to them."""
    from core.campaigns.plans import CampaignFilter, list_campaigns
    from core.campaigns.review import review_queue
    from core.platform.permissions import allowed
    from db.models import PlanState

    items = []
    if allowed(actor, Action.REVIEW_PLANS):
        mine = [r for r in review_queue(session, actor=actor) if r.mine]
        if mine:
            late = sum(r.overdue for r in mine)
            extra = f"，其中 {late} 个已超过 2 个工作日" if late else ""
            items.append(
                AttentionItem(
                    "warning" if late else "info",
                    f"有 {len(mine)} 个方案等待您审核{extra}。",
                    "approvals",
                )
            )
    if allowed(actor, Action.MANAGE_CAMPAIGNS) and actor.city_id is not None:
        returned = list_campaigns(
            session, actor=actor, filters=CampaignFilter(states=(PlanState.RETURNED,))
        )
        if returned:
            names = "、".join(f"「{r.name}」" for r in returned[:3])
            items.append(
                AttentionItem("warning", f"{names}被退回，请按审核意见修改后重新提交。", "plans")
            )
    return items


@attention_source
def _own_rank(session: Session, actor: Actor, today: date) -> list[AttentionItem]:
    """An outlet manager lands on where their outlet stands (新增好友, last 30 days)."""
    from core.metrics.outlet_detail import my_position
    from core.platform.periods import Period

    if actor.outlet_id is None or metrics.latest_date(session) is None:
        return []
    end = today - timedelta(days=1)
    position = my_position(
        session,
        actor=actor,
        metric="new_friends",
        period=Period(end - timedelta(days=PERIOD_DAYS - 1), end),
    )
    row = position.row
    change = ""
    if row.change:
        change = f"，较上期{'上升' if row.change > 0 else '下降'} {abs(row.change)} 名"
    gap = (
        "，已是第一"
        if position.gap_to_next is None
        else f"；再多 {position.gap_to_next} 位好友可超过「{position.next_name}」"
    )
    text = f"本网点近 30 天新增好友在{position.scope_label}排第 {row.rank} 名（共 {position.outlet_count} 个网点）{change}{gap}。"
    return [AttentionItem("info", text, "board")]
