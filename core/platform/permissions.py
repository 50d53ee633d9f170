"""Who may do what, on which data: the role × action × scope matrix of DESIGN.md.

Permissions are data: `ACTIONS` declares every action with the scope each role gets.
Services call `ensure_allowed(actor, action, target)` first; queries narrow rows with
`scope_filter(actor, action)`, so a data scope is never re-implemented per query.
Navigation is built from the same table (ui/nav.py), but hiding a page is only a
convenience: core checks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from core.platform.errors import PermissionDenied
from db.models import OrgUnit, Role

__all__ = [
    "ACTIONS",
    "Action",
    "ActionSpec",
    "Actor",
    "Role",
    "Scope",
    "allowed",
    "ensure_allowed",
    "in_scope",
    "scope_filter",
    "scope_of",
]


class Scope(StrEnum):
    """How much of the org tree a role sees for one action."""

    PROVINCE = "province"  # 全省
    CITY = "city"  # 本市
    OUTLET = "outlet"  # 本网点


class Action(StrEnum):
    VIEW_DASHBOARD = "dashboard.view"
    VIEW_METRICS = "metrics.view"
    VIEW_CITY_RANKING = "cities.view"
    VIEW_OUTLET_DETAIL = "outlet.detail"
    IMPORT_METRICS = "metrics.import"
    IMPORT_ORG = "org.import"
    MANAGE_USERS = "users.manage"
    VIEW_AUDIT = "audit.view"
    VIEW_CAMPAIGNS = "campaigns.view"
    MANAGE_CAMPAIGNS = "campaigns.manage"
    REVIEW_PLANS = "plans.review"
    ADVANCE_CAMPAIGNS = "campaigns.advance"
    VIEW_MERCHANTS = "merchants.view"
    MANAGE_MERCHANTS = "merchants.manage"
    MANAGE_SETTINGS = "settings.manage"
    VIEW_NOTIFICATIONS = "notifications.view"
    MANAGE_JOBS = "jobs.manage"
    VIEW_CHANNEL_CODES = "codes.view"
    MANAGE_CHANNEL_CODES = "codes.manage"
    VIEW_CHANNEL_STATS = "codes.stats"
    MANAGE_POSTERS = "posters.manage"
    VIEW_DATA_QUALITY = "data_quality.view"
    VIEW_STAFF_METRICS = "staff_metrics.view"
    MANAGE_METRIC_REGISTRY = "metric_registry.manage"
    IMPORT_COUPONS = "coupons.import"
    IMPORT_TARGETS = "targets.import"
    VIEW_RESULTS = "results.view"


@dataclass(frozen=True)
class ActionSpec:
    label: str
    grants: Mapping[Role, Scope]


_ALL = Scope.PROVINCE
ADMIN, REVIEWER, PLANNER, MANAGER, DESIGNER = (
    Role.ADMIN,
    Role.PROVINCE_REVIEWER,
    Role.CITY_PLANNER,
    Role.OUTLET_MANAGER,
    Role.DESIGNER,
)

ACTIONS: dict[Action, ActionSpec] = {
    Action.VIEW_DASHBOARD: ActionSpec(
        "查看首页概览",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, MANAGER: Scope.OUTLET, DESIGNER: _ALL},
    ),
    # Outlet boards (网点排行). DESIGN.md: a city planner sees their city's outlets, an
    # outlet manager their own outlet plus their city's ranking.
    Action.VIEW_METRICS: ActionSpec(
        "查看网点排行",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, MANAGER: Scope.CITY, DESIGNER: _ALL},
    ),
    # City totals compare cities, not outlets: every role sees how the cities stand.
    Action.VIEW_CITY_RANKING: ActionSpec(
        "查看市州排名",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: _ALL, MANAGER: _ALL, DESIGNER: _ALL},
    ),
    # ... but the daily detail (trend, drill-down) only of what they are responsible for.
    Action.VIEW_OUTLET_DETAIL: ActionSpec(
        "查看网点明细",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, MANAGER: Scope.OUTLET, DESIGNER: _ALL},
    ),
    Action.IMPORT_METRICS: ActionSpec("导入网点指标", {ADMIN: _ALL, PLANNER: Scope.CITY}),
    Action.IMPORT_ORG: ActionSpec("导入机构", {ADMIN: _ALL}),
    Action.MANAGE_USERS: ActionSpec("管理用户", {ADMIN: _ALL}),
    Action.VIEW_AUDIT: ActionSpec("查看审计日志", {ADMIN: _ALL}),
    Action.VIEW_CAMPAIGNS: ActionSpec(
        "查看活动方案", {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, DESIGNER: _ALL}
    ),
    Action.MANAGE_CAMPAIGNS: ActionSpec("设计和提交活动方案", {ADMIN: _ALL, PLANNER: Scope.CITY}),
    # Which stage a reviewer may decide is checked by core.campaigns.approvals against the stage members.
    Action.REVIEW_PLANS: ActionSpec("审核活动方案", {REVIEWER: _ALL}),
    Action.ADVANCE_CAMPAIGNS: ActionSpec("推进活动状态", {ADMIN: _ALL}),
    Action.VIEW_MERCHANTS: ActionSpec(
        "查看联盟商户", {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, DESIGNER: _ALL}
    ),
    Action.MANAGE_MERCHANTS: ActionSpec("管理联盟商户", {ADMIN: _ALL, PLANNER: Scope.CITY}),
    Action.MANAGE_SETTINGS: ActionSpec("管理审核环节、预算与合规词库", {ADMIN: _ALL}),
    Action.MANAGE_JOBS: ActionSpec("管理定时任务", {ADMIN: _ALL}),
    # Outlet managers fetch their own outlet's codes and posters.
    Action.VIEW_CHANNEL_CODES: ActionSpec(
        "查看渠道活码",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, MANAGER: Scope.OUTLET, DESIGNER: _ALL},
    ),
    Action.MANAGE_CHANNEL_CODES: ActionSpec(
        "创建和管理渠道活码", {ADMIN: _ALL, PLANNER: Scope.CITY, DESIGNER: _ALL}
    ),
    Action.VIEW_CHANNEL_STATS: ActionSpec(
        "查看渠道转化",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, MANAGER: Scope.OUTLET, DESIGNER: _ALL},
    ),
    Action.MANAGE_POSTERS: ActionSpec(
        "制作海报", {ADMIN: _ALL, PLANNER: Scope.CITY, DESIGNER: _ALL}
    ),
    # Staff boards (员工排行) name people: a manager sees their own outlet's staff only.
    Action.VIEW_STAFF_METRICS: ActionSpec(
        "查看员工排行",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, MANAGER: Scope.OUTLET},
    ),
    Action.MANAGE_METRIC_REGISTRY: ActionSpec("管理指标库", {ADMIN: _ALL}),
    Action.VIEW_DATA_QUALITY: ActionSpec(
        "查看数据质量", {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY}
    ),
    Action.IMPORT_COUPONS: ActionSpec("导入权益券事件", {ADMIN: _ALL, PLANNER: Scope.CITY}),
    Action.IMPORT_TARGETS: ActionSpec("导入网点目标", {ADMIN: _ALL, PLANNER: Scope.CITY}),
    # 复盘: planners their city's campaigns; reviewers and designers every campaign.
    Action.VIEW_RESULTS: ActionSpec(
        "查看活动复盘", {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: Scope.CITY, DESIGNER: _ALL}
    ),
    Action.VIEW_NOTIFICATIONS: ActionSpec(
        "查看消息",
        {ADMIN: _ALL, REVIEWER: _ALL, PLANNER: _ALL, MANAGER: _ALL, DESIGNER: _ALL},
    ),
}


@dataclass(frozen=True)
class Actor:
    """The acting user as core sees it; built by core.platform.auth from the user row."""

    user_id: int | None
    username: str
    display_name: str
    role: Role
    org_id: int | None = None
    city_id: int | None = None
    outlet_id: int | None = None

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        """The operator behind the CLI or the scheduler: full rights, audited by name."""
        return cls(user_id=None, username=name, display_name=name, role=Role.ADMIN)

    @property
    def label(self) -> str:
        return f"{self.display_name}（{self.role.label}）"


def scope_of(actor: Actor, action: Action) -> Scope | None:
    """The scope `actor` has for `action`, or None when the role lacks it."""
    return ACTIONS[action].grants.get(actor.role)


def in_scope(actor: Actor, scope: Scope, target: OrgUnit) -> bool:
    if scope is Scope.PROVINCE:
        return True
    if scope is Scope.CITY:
        return actor.city_id is not None and actor.city_id in (target.id, target.city_id)
    return actor.outlet_id is not None and target.id == actor.outlet_id


def allowed(actor: Actor, action: Action, target: OrgUnit | None = None) -> bool:
    scope = scope_of(actor, action)
    if scope is None:
        return False
    return target is None or in_scope(actor, scope, target)


def ensure_allowed(actor: Actor, action: Action, target: OrgUnit | None = None) -> None:
    """First line of every core service: raise PermissionDenied with a Chinese reason."""
    scope = scope_of(actor, action)
    if scope is None:
        raise PermissionDenied(f"您的角色（{actor.role.label}）无权{ACTIONS[action].label}")
    if target is not None and not in_scope(actor, scope, target):
        raise PermissionDenied(f"「{target.name}」不在您的数据范围内，无法{ACTIONS[action].label}")


def scope_filter(
    actor: Actor,
    action: Action,
    *,
    city_column: sa.ColumnElement | None = None,
    outlet_column: sa.ColumnElement | None = None,
) -> sa.ColumnElement[bool]:
    """A WHERE clause restricting rows to the actor's scope for `action`: on `OrgUnit` by
    default, or on any table that records its city and outlet (channel codes, say). A table
    that records only a city (campaigns, merchants) has no rows of one outlet: an
    outlet-scoped actor gets none of them."""
    scope = scope_of(actor, action)
    if scope is None:
        return sa.false()
    if scope is Scope.PROVINCE:
        return sa.true()
    if scope is Scope.CITY:
        return (OrgUnit.city_id if city_column is None else city_column) == actor.city_id
    if outlet_column is None and city_column is not None:
        return sa.false()
    return (OrgUnit.id if outlet_column is None else outlet_column) == actor.outlet_id
