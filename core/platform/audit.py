"""The audit trail: typed events, one function that writes them, one query for the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from core.platform.clock import SHANGHAI
from core.platform.formatting import format_yuan
from core.platform.permissions import Action, Actor, ensure_allowed
from db.models import AuditLog, Campaign, ChannelCode, Merchant, OrgUnit, Staff, User


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
    CODE_EXTEND = "code.extend"
    CODE_RESTAFF = "code.restaff"
    CODE_DISABLE = "code.disable"
    CODE_ENABLE = "code.enable"
    CODE_WECOM_SYNC = "code.wecom_sync"
    STAFF_HANDOVER = "staff.handover"
    EVENTS_IMPORT = "events.import"
    POSTER_EXPORT = "poster.export"
    METRIC_DEF_SAVE = "metric_def.save"
    STAFF_METRICS_IMPORT = "staff_metrics.import"
    STAFF_TARGETS_IMPORT = "staff_targets.import"
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
    AuditAction.CODE_EXTEND: "延长活码有效期",
    AuditAction.CODE_RESTAFF: "更换接待员工",
    AuditAction.CODE_DISABLE: "停用活码",
    AuditAction.CODE_ENABLE: "启用活码",
    AuditAction.CODE_WECOM_SYNC: "为现有活码创建联系我",
    AuditAction.STAFF_HANDOVER: "离职继承",
    AuditAction.EVENTS_IMPORT: "导入渠道事件",
    AuditAction.POSTER_EXPORT: "导出海报",
    AuditAction.METRIC_DEF_SAVE: "修改指标库",
    AuditAction.STAFF_METRICS_IMPORT: "导入员工指标",
    AuditAction.STAFF_TARGETS_IMPORT: "导入员工目标",
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
    people = _display_names(session, {r.actor_id for r in rows if r.actor_id})
    names = _target_names(session, rows)
    return [
        AuditEntry(
            at=row.at,
            actor_name=_person(row.actor_name, people.get(row.actor_id)),
            action=row.action,
            action_label=labels.get(row.action, row.action),
            target=_target_text(row, names),
            summary=row.summary,
            before=row.before,
            after=row.after,
        )
        for row in rows
    ]


# --- reading: names instead of ids ---------------------------------------------------------

TARGET_LABELS = {
    "campaign": "活动",
    "user": "用户",
    "channel_code": "活码",
    "merchant": "商户",
    "city": "市州",
    "city_budget": "年度预算",
    "compliance_term": "合规用语",
    "file": "文件",
    "review_stages": "审核环节",
    "staff": "员工",
}
# target type -> (table, its name column); ids of these are integer keys
_NAMED = {
    "campaign": (Campaign, Campaign.name),
    "user": (User, User.display_name),
    "channel_code": (ChannelCode, ChannelCode.name),
    "merchant": (Merchant, Merchant.name),
    "city": (OrgUnit, OrgUnit.name),
    "staff": (Staff, Staff.name),
}


def _display_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    query = select(User.id, User.display_name).where(col(User.id).in_(ids))
    return {user_id: name for user_id, name in session.exec(query).all()}


def _person(username: str, display_name: str | None) -> str:
    """ "李娜（reviewer1）"; system actors and unknown users as recorded."""
    if display_name and display_name != username:
        return f"{display_name}（{username}）"
    return {"anonymous": "未登录访客", "system": "系统"}.get(username, username)


def _target_names(session: Session, rows: list[AuditLog]) -> dict[tuple[str, str], str]:
    wanted: dict[str, set[int]] = {}
    for row in rows:
        if row.target_type in _NAMED and str(row.target_id).isdigit():
            wanted.setdefault(row.target_type, set()).add(int(row.target_id))
    names: dict[tuple[str, str], str] = {}
    for kind, ids in wanted.items():
        model, name = _NAMED[kind]
        query = select(model.id, name).where(col(model.id).in_(ids))
        for key, value in session.exec(query).all():
            names[(kind, str(key))] = value
    budget_cities = {
        int(r.target_id.split("/")[0])
        for r in rows
        if r.target_type == "city_budget" and r.target_id.split("/")[0].isdigit()
    }
    if budget_cities:
        query = select(OrgUnit.id, OrgUnit.name).where(col(OrgUnit.id).in_(budget_cities))
        for key, value in session.exec(query).all():
            names[("city", str(key))] = value
    return names


def _target_text(row: AuditLog, names: dict[tuple[str, str], str]) -> str:
    """ "活动「12月逢8会员权益日」" rather than campaign:7."""
    if not row.target_type:
        return ""
    label = TARGET_LABELS.get(row.target_type, row.target_type)
    target_id = str(row.target_id)
    if row.target_type == "city_budget" and "/" in target_id:
        city, year = target_id.split("/", 1)
        return f"{names.get(('city', city), '市州 ' + city)} {year} 年预算"
    name = names.get((row.target_type, target_id))
    if name:
        return f"{label}「{name}」"
    if row.target_type in _NAMED and target_id.isdigit():
        return f"{label}（编号 {target_id}，已删除）"
    return f"{label}「{target_id}」" if target_id else label


FIELD_LABELS = {
    "username": "用户名",
    "display_name": "姓名",
    "role": "角色",
    "org": "所属机构",
    "active": "启用",
    "locked_until": "锁定至",
    "cap_fen": "年度预算",
    "severity": "级别",
    "suggestion": "建议用语",
    "stages": "审核环节",
    "reviewers": "审核员",
    "name": "名称",
    "rows": "行数",
    "created": "新增",
    "updated": "更新",
    "to_staff": "继承员工",
    "customers": "客户数",
    "seed": "随机种子",
    "end_date": "截止日期",
    "channel_type": "渠道类型",
    "outlet": "网点",
    "staff": "接待员工",
    "rule": "分配规则",
    "city": "市州",
    "outlets": "绑定网点",
}


def _value_text(key: str, value: Any) -> str:
    if value is None:
        return "无"
    if isinstance(value, bool):
        return "是" if value else "否"
    if key.endswith("_fen") and isinstance(value, int):
        return format_yuan(value)
    if isinstance(value, dict):
        return "，".join(f"{FIELD_LABELS.get(k, k)} {_value_text(k, v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        shown = "、".join(_value_text(key, v) for v in value[:10])
        return shown + (f" 等 {len(value)} 项" if len(value) > 10 else "")
    return str(value)


def describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """An audit record's details as a sentence: "启用：是 → 否；年度预算：¥0.00 → 180万元"."""
    before, after = before or {}, after or {}
    parts = []
    for key in [*after, *(k for k in before if k not in after)]:
        label = FIELD_LABELS.get(key, key)
        if key in before and key in after:
            if before[key] == after[key]:
                continue
            parts.append(
                f"{label}：{_value_text(key, before[key])} → {_value_text(key, after[key])}"
            )
        elif key in after:
            parts.append(f"{label}：{_value_text(key, after[key])}")
        else:
            parts.append(f"{label}：原为 {_value_text(key, before[key])}")
    return "；".join(parts)
