"""Channel codes (渠道活码): create them (one, or one per outlet / staff member in a batch),
list them in the actor's scope, say why a code can no longer work, and flag such codes to
their owners. Scans and the events that follow live in `events`; leavers in `staff`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from core.channels.assignment import slot_problems
from core.channels.wecom_queue import queue_contact_way
from core.platform import audit, notifications
from core.platform.audit import AuditAction
from core.platform.clock import shanghai_today
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, Scope, ensure_allowed, scope_filter, scope_of
from core.platform.references import BINDABLE_STATES, ensure_references, reference_problems
from core.platform.settings import get_settings
from db.engine import write_transaction
from db.models import (
    AssignmentRule,
    ChannelCode,
    ChannelCodeStaff,
    ChannelType,
    OrgLevel,
    OrgUnit,
    Staff,
)

SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud without mistakes
SLUG_LENGTH = 10  # 31^10 ≈ 8×10^14 possibilities: not guessable by scanning
WELCOME_PLACEHOLDERS = ("{客户昵称}", "{网点名称}", "{员工姓名}")
DEFAULT_WELCOME = "您好{客户昵称}，我是{网点名称}的{员工姓名}，很高兴为您服务！"


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


def code_url(slug: str) -> str:
    """What the QR encodes: the app's public address plus the slug."""
    return f"{get_settings().base_url}/c/{slug}"


@dataclass(frozen=True)
class CodeInput:
    name: str
    channel_type: ChannelType
    outlet_id: int
    staff_ids: tuple[int, ...]
    fallback_staff_ids: tuple[int, ...] = ()
    rule: AssignmentRule = AssignmentRule.ROUND_ROBIN
    daily_cap: int | None = None
    tags: tuple[str, ...] = ()
    welcome_message: str = DEFAULT_WELCOME
    campaign_id: int | None = None
    merchant_id: int | None = None
    active_from: date | None = None
    active_until: date | None = None
    max_adds: int | None = None
    slots: dict | None = None


@dataclass(frozen=True)
class CodeRead:
    id: int
    slug: str
    url: str
    name: str
    channel_type: ChannelType
    outlet_id: int
    outlet_name: str
    campaign_id: int | None
    rule: AssignmentRule
    staff_names: tuple[str, ...]
    tags: tuple[str, ...]
    welcome_message: str
    scans: int
    adds: int
    max_adds: int | None
    active_until: date | None
    problem: str | None  # why the code can no longer work, if it cannot
    personal_staff: str | None  # the one staff member a personal code (专属活码) adds customers to
    enabled: bool = True
    active_from: date | None = None
    losses: int = 0  # customers lost again (WeCom callbacks)
    contact_way_url: str | None = None  # live WeCom: the code's 联系我 QR page


def code_problems(
    session: Session, actor: Actor, data: CodeInput, outlet: OrgUnit
) -> list[FieldProblem]:
    problems = [FieldProblem("slots", p) for p in slot_problems(data.slots)]
    if not data.name.strip() or len(data.name) > 80:
        problems.append(FieldProblem("name", "活码名称须为 1–80 个字"))
    if not data.staff_ids:
        problems.append(FieldProblem("staff", "请至少选择一名接待员工"))
    # Staff, merchant and campaign: the code's city's own, and a campaign it may carry.
    problems += reference_problems(
        session,
        actor=actor,
        action=Action.MANAGE_CHANNEL_CODES,
        city_id=outlet.city_id,
        staff=data.staff_ids + data.fallback_staff_ids,
        merchants=() if data.merchant_id is None else (data.merchant_id,),
        campaign=data.campaign_id,
    )
    staff = session.exec(select(Staff.id, Staff.active).where(Staff.id.in_(data.staff_ids))).all()
    if any(not active for _, active in staff):
        problems.append(FieldProblem("staff", "不能把已离职的员工放进接待名单"))
    if set(data.staff_ids) & set(data.fallback_staff_ids):
        problems.append(FieldProblem("staff", "同一员工不能既是接待员工又是备用员工"))
    if data.daily_cap is not None and data.daily_cap < 1:
        problems.append(FieldProblem("daily_cap", "每日上限须至少为 1"))
    if data.rule is AssignmentRule.DAILY_CAP and data.daily_cap is None:
        problems.append(FieldProblem("daily_cap", "「每人每日上限」规则须填写上限"))
    if data.max_adds is not None and data.max_adds < 1:
        problems.append(FieldProblem("max_adds", "添加上限须至少为 1"))
    if data.active_from and data.active_until and data.active_until < data.active_from:
        problems.append(FieldProblem("active", "结束日期不能早于开始日期"))
    if len(data.welcome_message) > 500:
        problems.append(FieldProblem("welcome_message", "欢迎语最多 500 字"))
    if any(len(t) > 20 for t in data.tags) or len(data.tags) > 10:
        problems.append(FieldProblem("tags", "标签最多 10 个，每个不超过 20 字"))
    return problems


def code_outlet(session: Session, outlet_id: int) -> OrgUnit:
    outlet = session.get(OrgUnit, outlet_id)
    if outlet is None or outlet.level != OrgLevel.OUTLET:
        raise NotFound("网点不存在")
    return outlet


def create_code(session: Session, *, actor: Actor, data: CodeInput) -> CodeRead:
    outlet = code_outlet(session, data.outlet_id)
    ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES, outlet)
    problems = code_problems(session, actor, data, outlet)
    if problems:
        raise ValidationFailed(problems, summary="活码未创建")
    with write_transaction(session):
        code = _insert(session, actor, data, outlet)
    return _read(session, code)


def _insert(session: Session, actor: Actor, data: CodeInput, outlet: OrgUnit) -> ChannelCode:
    code = ChannelCode(
        slug=new_slug(),
        name=data.name.strip(),
        channel_type=data.channel_type,
        outlet_id=outlet.id,
        city_id=outlet.city_id,
        campaign_id=data.campaign_id,
        merchant_id=data.merchant_id,
        rule=data.rule,
        daily_cap=data.daily_cap,
        slots=data.slots,
        tags=list(data.tags),
        welcome_message=data.welcome_message,
        active_from=data.active_from,
        active_until=data.active_until,
        max_adds=data.max_adds,
        created_by=actor.user_id,
    )
    session.add(code)
    session.flush()
    for position, staff_id in enumerate(data.staff_ids):
        session.add(ChannelCodeStaff(code_id=code.id, staff_id=staff_id, position=position))
    for position, staff_id in enumerate(data.fallback_staff_ids):
        session.add(
            ChannelCodeStaff(code_id=code.id, staff_id=staff_id, position=position, fallback=True)
        )
    audit.record(
        session,
        actor=actor,
        action=AuditAction.CODE_CREATE,
        target_type="channel_code",
        target_id=code.id,
        summary=f"创建活码「{code.name}」（{outlet.name}，{data.channel_type.label}）",
        after={
            "slug": code.slug,
            "staff": list(data.staff_ids),
            "fallback": list(data.fallback_staff_ids),
            "rule": data.rule.value,
        },
    )
    queue_contact_way(session, code.id)  # live WeCom: the code's contact way (联系我)
    return code


@dataclass(frozen=True)
class BatchResult:
    created: list[CodeRead]
    reused: list[CodeRead]

    @property
    def codes(self) -> list[CodeRead]:
        return sorted(self.created + self.reused, key=lambda c: (c.outlet_name, c.name))


def batch_codes(
    session: Session,
    *,
    actor: Actor,
    city_id: int,
    per: str = "outlet",
    campaign_id: int | None = None,
    channel_type: ChannelType = ChannelType.COUNTER,
    rule: AssignmentRule = AssignmentRule.LEAST_LOADED,
    outlet_ids: list[int] | None = None,
) -> BatchResult:
    """One code per outlet of a city (its active staff, least loaded first), or one per
    staff member; codes that already exist for the same outlet/staff, campaign and channel
    type are reused, so running it again creates nothing twice."""
    city = session.get(OrgUnit, city_id)
    if city is None or city.level != OrgLevel.CITY:
        raise NotFound("城市不存在")
    ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES, city)
    if per not in ("outlet", "staff"):
        raise ValidationFailed([FieldProblem("per", "批量方式须为每网点或每员工")])
    ensure_references(
        session,
        actor=actor,
        action=Action.MANAGE_CHANNEL_CODES,
        city_id=city.id,
        summary="活码未生成",
        outlets=outlet_ids or (),
        campaign=campaign_id,
    )
    outlets = session.exec(
        select(OrgUnit)
        .where(OrgUnit.city_id == city_id, OrgUnit.level == OrgLevel.OUTLET)
        .order_by(OrgUnit.code)
    ).all()
    if outlet_ids is not None:
        outlets = [o for o in outlets if o.id in set(outlet_ids)]
    staff_by_outlet: dict[int, list[Staff]] = {}
    for staff in session.exec(
        select(Staff)
        .where(Staff.outlet_id.in_([o.id for o in outlets]), Staff.active)
        .order_by(Staff.id)
    ):
        staff_by_outlet.setdefault(staff.outlet_id, []).append(staff)
    existing = {
        (c.outlet_id, c.name): c
        for c in session.exec(
            select(ChannelCode).where(
                ChannelCode.city_id == city_id,
                ChannelCode.channel_type == channel_type,
                ChannelCode.campaign_id == campaign_id
                if campaign_id
                else ChannelCode.campaign_id.is_(None),
            )
        )
    }
    created, reused = [], []
    with write_transaction(session):
        for outlet in outlets:
            staff = staff_by_outlet.get(outlet.id, [])
            if not staff:
                continue
            groups = (
                [(f"{outlet.name}·{channel_type.label}", staff)]
                if per == "outlet"
                else [(f"{outlet.name}·{s.name}", [s]) for s in staff]
            )
            for name, members in groups:
                if (outlet.id, name) in existing:
                    reused.append(existing[(outlet.id, name)])
                    continue
                others = [s.id for s in staff if s not in members][:2] if per == "staff" else []
                data = CodeInput(
                    name=name,
                    channel_type=channel_type,
                    outlet_id=outlet.id,
                    staff_ids=tuple(s.id for s in members),
                    fallback_staff_ids=tuple(others),
                    rule=rule,
                    campaign_id=campaign_id,
                    tags=(channel_type.label, outlet.name),
                )
                created.append(_insert(session, actor, data, outlet))
    return BatchResult(_reads(session, created), _reads(session, reused))


def list_codes(
    session: Session,
    *,
    actor: Actor,
    city_id: int | None = None,
    outlet_id: int | None = None,
    campaign_id: int | None = None,
) -> list[CodeRead]:
    ensure_allowed(actor, Action.VIEW_CHANNEL_CODES)
    query = (
        select(ChannelCode)
        .where(code_scope(actor, Action.VIEW_CHANNEL_CODES))
        .order_by(ChannelCode.city_id, ChannelCode.outlet_id, ChannelCode.name)
    )
    if city_id:
        query = query.where(ChannelCode.city_id == city_id)
    if outlet_id:
        query = query.where(ChannelCode.outlet_id == outlet_id)
    if campaign_id:
        query = query.where(ChannelCode.campaign_id == campaign_id)
    return _reads(session, list(session.exec(query)))


def code_scope(actor: Actor, action: Action) -> sa.ColumnElement[bool]:
    """The channel codes within the actor's scope for `action` (a WHERE clause)."""
    return scope_filter(
        actor, action, city_column=ChannelCode.city_id, outlet_column=ChannelCode.outlet_id
    )


Pool = list[tuple[ChannelCodeStaff, Staff]]


def code_pool(session: Session, code: ChannelCode) -> Pool:
    return _pools(session, [code.id]).get(code.id, [])


def _pools(session: Session, code_ids: list[int]) -> dict[int, Pool]:
    """The staff pools of many codes in one query, primaries first, in order."""
    pools: dict[int, Pool] = {}
    for start in range(0, len(code_ids), 1000):  # bounded IN lists
        for member, staff in session.exec(
            select(ChannelCodeStaff, Staff)
            .join(Staff, Staff.id == ChannelCodeStaff.staff_id)
            .where(ChannelCodeStaff.code_id.in_(code_ids[start : start + 1000]))
            .order_by(ChannelCodeStaff.fallback, ChannelCodeStaff.position)
        ):
            pools.setdefault(member.code_id, []).append((member, staff))
    return pools


def code_problem(code: ChannelCode, pool: Pool, today: date) -> str | None:
    """Why a code cannot bring anyone in any more (None: it works)."""
    if not code.enabled:
        return "已停用"
    if code.active_until and code.active_until < today:
        return f"有效期已于 {code.active_until} 结束"
    if code.max_adds is not None and code.adds_count >= code.max_adds:
        return f"已达添加上限 {code.max_adds} 人"
    if not any(staff.active for _, staff in pool):
        return "接待员工和备用员工均已离职"
    return None


def read_code(session: Session, code: ChannelCode) -> CodeRead:
    """One stored code as pages see it."""
    return _reads(session, [code])[0]


def _read(session: Session, code: ChannelCode) -> CodeRead:
    return _reads(session, [code])[0]


def _reads(session: Session, codes: list[ChannelCode]) -> list[CodeRead]:
    pools = _pools(session, [c.id for c in codes])
    outlet_ids = {c.outlet_id for c in codes}
    outlets = dict(
        session.exec(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(outlet_ids))).all()
    )
    today = shanghai_today()
    return [
        _code_read(code, pools.get(code.id, []), outlets.get(code.outlet_id, ""), today)
        for code in codes
    ]


def _code_read(code: ChannelCode, pool: Pool, outlet_name: str, today: date) -> CodeRead:
    primaries = [s for m, s in pool if not m.fallback]
    return CodeRead(
        code.id,
        code.slug,
        code_url(code.slug),
        code.name,
        code.channel_type,
        code.outlet_id,
        outlet_name,
        code.campaign_id,
        code.rule,
        tuple(
            s.name + ("（备用）" if m.fallback else "") + ("（已离职）" if not s.active else "")
            for m, s in pool
        ),
        tuple(code.tags),
        code.welcome_message,
        code.scans_count,
        code.adds_count,
        code.max_adds,
        code.active_until,
        code_problem(code, pool, today),
        primaries[0].name if len(primaries) == 1 else None,
        code.enabled,
        code.active_from,
        code.losses_count,
        code.wecom_qr_url,
    )


# --- scans and events -----------------------------------------------------------------------


# --- leavers --------------------------------------------------------------------------------


def flag_dead_codes(session: Session, *, today: date) -> int:
    """Tell each code's owner, once per reason, that it can no longer bring anyone in."""
    sent = 0
    with write_transaction(session):
        codes = session.exec(select(ChannelCode).where(ChannelCode.enabled)).all()
        pools = _pools(session, [code.id for code in codes])
        for code in codes:
            problem = code_problem(code, pools.get(code.id, []), today)
            if problem and code.created_by:
                sent += notifications.notify(
                    session,
                    [code.created_by],
                    title=f"活码「{code.name}」已失效",
                    body=f"原因：{problem}。请在「渠道活码 → 管理活码」中更换接待员工、延长有效期或停用该活码。",
                    link="codes",
                    dedupe_key=f"dead-code:{code.id}:{problem}",
                )
    return sent


@dataclass(frozen=True)
class CodeChoices:
    """What a code designer picks from: outlets and their staff, campaigns, merchants."""

    outlets: list[tuple[int, str]]
    staff: dict[int, list[tuple[int, str]]]  # outlet id → active staff (id, "name · role")
    campaigns: list[tuple[int, str]]
    merchants: list[tuple[int, str]]


def code_choices(session: Session, *, actor: Actor, city_id: int) -> CodeChoices:
    from db.models import Campaign, Merchant

    city = session.get(OrgUnit, city_id)
    if city is None or city.level != OrgLevel.CITY:
        raise NotFound("城市不存在")
    ensure_allowed(actor, Action.MANAGE_CHANNEL_CODES, city)
    outlets = session.exec(
        select(OrgUnit.id, OrgUnit.name)
        .where(OrgUnit.city_id == city_id, OrgUnit.level == OrgLevel.OUTLET)
        .order_by(OrgUnit.code)
    ).all()
    staff: dict[int, list[tuple[int, str]]] = {}
    rows = session.exec(
        select(Staff)
        .where(Staff.outlet_id.in_([o for o, _ in outlets]), Staff.active)
        .order_by(Staff.id)
    )
    for s in rows:
        staff.setdefault(s.outlet_id, []).append((s.id, f"{s.name} · {s.role.label}"))
    campaigns = session.exec(
        select(Campaign.id, Campaign.name).where(
            Campaign.city_id == city_id,
            Campaign.state.in_(BINDABLE_STATES),
        )
    ).all()
    merchants = session.exec(
        select(Merchant.id, Merchant.name).where(Merchant.city_id == city_id, Merchant.active)
    ).all()
    return CodeChoices(list(outlets), staff, list(campaigns), list(merchants))


def code_cities(session: Session, *, actor: Actor) -> list[tuple[int, str]]:
    """Cities whose codes the actor may see."""
    ensure_allowed(actor, Action.VIEW_CHANNEL_CODES)
    query = (
        select(OrgUnit.id, OrgUnit.name)
        .where(OrgUnit.level == OrgLevel.CITY)
        .order_by(OrgUnit.code)
    )
    if scope_of(actor, Action.VIEW_CHANNEL_CODES) is not Scope.PROVINCE:
        query = query.where(OrgUnit.id == actor.city_id)
    return list(session.exec(query))
