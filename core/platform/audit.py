"""The audit trail: typed events, one function that writes them, one query for the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from core.platform.clock import SHANGHAI
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import AuditLog


class AuditAction(StrEnum):
    """Every kind of audited event. `record` refuses anything else."""

    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    ACCOUNT_LOCKED = "auth.locked"
    LOGOUT = "auth.logout"
    USER_CREATE = "user.create"
    USER_UPDATE = "user.update"
    USER_UNLOCK = "user.unlock"
    USER_PASSWORD_RESET = "user.password_reset"
    ORG_IMPORT = "org.import"
    METRICS_IMPORT = "metrics.import"
    DEMO_SEED = "demo.seed"
    CAMPAIGN_SAVE = "campaign.save"
    CAMPAIGN_COPY = "campaign.copy"
    CAMPAIGN_DELETE = "campaign.delete"
    PLAN_SUBMIT = "plan.submit"
    PLAN_WITHDRAW = "plan.withdraw"
    PLAN_DECIDE = "plan.decide"
    CAMPAIGN_STATE = "campaign.state"
    ATTACHMENT_ADD = "attachment.add"
    ATTACHMENT_REMOVE = "attachment.remove"
    MERCHANT_SAVE = "merchant.save"
    MERCHANT_IMPORT = "merchant.import"
    SETTINGS_CHANGE = "settings.change"
    CODE_CREATE = "code.create"
    CODE_UPDATE = "code.update"
    STAFF_HANDOVER = "staff.handover"
    EVENTS_IMPORT = "events.import"
    POSTER_EXPORT = "poster.export"
    COUPONS_IMPORT = "coupons.import"
    TARGETS_IMPORT = "targets.import"
    RETROSPECTIVE_FREEZE = "retrospective.freeze"

    @property
    def label(self) -> str:
        return AUDIT_LABELS[self]


AUDIT_LABELS: dict[AuditAction, str] = {
    AuditAction.LOGIN: "登录",
    AuditAction.LOGIN_FAILED: "登录失败",
    AuditAction.ACCOUNT_LOCKED: "账户锁定",
    AuditAction.LOGOUT: "退出登录",
    AuditAction.USER_CREATE: "新建用户",
    AuditAction.USER_UPDATE: "修改用户",
    AuditAction.USER_UNLOCK: "解锁用户",
    AuditAction.USER_PASSWORD_RESET: "重置密码",
    AuditAction.ORG_IMPORT: "导入机构",
    AuditAction.METRICS_IMPORT: "导入指标",
    AuditAction.DEMO_SEED: "生成演示数据",
    AuditAction.CAMPAIGN_SAVE: "保存活动",
    AuditAction.CAMPAIGN_COPY: "复制活动",
    AuditAction.CAMPAIGN_DELETE: "删除草稿",
    AuditAction.PLAN_SUBMIT: "提交方案",
    AuditAction.PLAN_WITHDRAW: "撤回方案",
    AuditAction.PLAN_DECIDE: "审核方案",
    AuditAction.CAMPAIGN_STATE: "活动状态变更",
    AuditAction.ATTACHMENT_ADD: "上传附件",
    AuditAction.ATTACHMENT_REMOVE: "删除附件",
    AuditAction.MERCHANT_SAVE: "保存商户",
    AuditAction.MERCHANT_IMPORT: "导入商户",
    AuditAction.SETTINGS_CHANGE: "修改设置",
    AuditAction.CODE_CREATE: "创建活码",
    AuditAction.CODE_UPDATE: "修改活码",
    AuditAction.STAFF_HANDOVER: "离职继承",
    AuditAction.EVENTS_IMPORT: "导入渠道事件",
    AuditAction.POSTER_EXPORT: "导出海报",
    AuditAction.COUPONS_IMPORT: "导入权益券事件",
    AuditAction.TARGETS_IMPORT: "导入网点目标",
    AuditAction.RETROSPECTIVE_FREEZE: "活动复盘定稿",
}


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: AuditAction,
    target_type: str = "",
    target_id: str | int = "",
    summary: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> AuditLog:
    """Add an audit row to the caller's transaction (it commits with the change it describes)."""
    if not isinstance(action, AuditAction):
        raise TypeError(f"unknown audit action: {action!r}")
    entry = AuditLog(
        actor_id=actor.user_id if actor else None,
        actor_name=actor_name or (actor.username if actor else "anonymous"),
        action=action.value,
        target_type=target_type,
        target_id=str(target_id),
        summary=summary[:500],
        before=before,
        after=after,
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditFilter:
    start: date | None = None
    end: date | None = None
    actor_name: str = ""
    actions: tuple[AuditAction, ...] = ()
    text: str = ""
    limit: int = 500


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor_name: str
    action: str
    action_label: str
    target: str
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _day_start_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)


def list_audit(session: Session, *, actor: Actor, filters: AuditFilter) -> list[AuditEntry]:
    """Newest first, filtered by Shanghai date range, actor, action and free text."""
    ensure_allowed(actor, Action.VIEW_AUDIT)
    query = select(AuditLog).order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
    if filters.start:
        query = query.where(AuditLog.at >= _day_start_utc(filters.start))
    if filters.end:
        query = query.where(AuditLog.at < _day_start_utc(filters.end + timedelta(days=1)))
    if filters.actor_name.strip():
        query = query.where(col(AuditLog.actor_name).contains(filters.actor_name.strip()))
    if filters.actions:
        query = query.where(col(AuditLog.action).in_([a.value for a in filters.actions]))
    if filters.text.strip():
        query = query.where(col(AuditLog.summary).contains(filters.text.strip()))
    rows = session.exec(query.limit(filters.limit)).all()
    labels = {a.value: a.label for a in AuditAction}
    return [
        AuditEntry(
            at=row.at,
            actor_name=row.actor_name,
            action=row.action,
            action_label=labels.get(row.action, row.action),
            target=f"{row.target_type}:{row.target_id}" if row.target_type else "",
            summary=row.summary,
            before=row.before,
            after=row.after,
        )
        for row in rows
    ]
