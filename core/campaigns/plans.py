"""Campaign plans (活动方案): create, save, copy and delete drafts, list and read them with
their budget, calendar, history and names, and the choices the editor offers. Submission
and review live in `approvals`, attachments in `attachments`, outlets and KPIs in `targets`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.budget import Budget, budget_for
from core.campaigns.compliance import ComplianceHit, check
from core.campaigns.design import (
    CampaignDesign,
    DesignNames,
    draft_problems,
    flatten,
    new_design,
)
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.clock import shanghai_today, utcnow
from core.platform.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from core.platform.permissions import Action, Actor, ensure_allowed, scope_filter
from core.platform.references import ensure_references, own_ids
from db.engine import write_transaction
from db.models import (
    Campaign,
    CampaignAttachment,
    CampaignKind,
    Merchant,
    OrgLevel,
    OrgUnit,
    PlanEvent,
    PlanState,
    PlanVersion,
    User,
)

EDITABLE_STATES = (PlanState.DRAFT, PlanState.RETURNED)


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    kind: CampaignKind
    city: str
    start_date: date
    end_date: date
    state: PlanState
    current_stage: int | None
    version: int
    updated_at: datetime
    lock_version: int


@dataclass(frozen=True)
class EventRead:
    at: datetime
    actor_name: str
    action: str
    from_state: str | None
    to_state: str | None
    stage: int | None
    version: int | None
    comment: str


@dataclass(frozen=True)
class AttachmentRead:
    id: int
    filename: str
    content_type: str
    size: int
    uploaded_at: datetime


@dataclass(frozen=True)
class CampaignDetail:
    row: CampaignRow
    design: CampaignDesign
    budget: Budget
    hits: list[ComplianceHit]
    events: list[EventRead]
    attachments: list[AttachmentRead]
    versions: list[int]
    names: DesignNames = field(default_factory=DesignNames)  # ids in the design → names


def load_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"活动 {campaign_id} 不存在")
    return campaign


def ensure_campaign_allowed(
    session: Session, actor: Actor, action: Action, campaign: Campaign
) -> None:
    ensure_allowed(actor, action, session.get(OrgUnit, campaign.city_id))


def campaign_scope(actor: Actor, action: Action) -> sa.ColumnElement[bool]:
    """The campaigns within the actor's scope for `action` (a WHERE clause)."""
    return scope_filter(actor, action, city_column=Campaign.city_id)


def design_references(design: CampaignDesign) -> dict[str, list[int]]:
    """The org units and merchants a design names, as `ensure_references` takes them."""
    merchants = list(design.merchant_ids) + [m for c in design.coupons for m in c.merchant_ids]
    return {
        "outlets": list(design.target_outlet_ids),
        "counties": list(design.target_county_ids),
        "merchants": merchants,
    }


def ensure_design_references(
    session: Session, actor: Actor, design: CampaignDesign, summary: str
) -> None:
    """Targets and merchants of a design must be its own city's (and in the actor's scope)."""
    ensure_references(
        session,
        actor=actor,
        action=Action.MANAGE_CAMPAIGNS,
        city_id=design.city_id,
        summary=summary,
        **design_references(design),
    )


def _row(session: Session, c: Campaign) -> CampaignRow:
    city = session.get(OrgUnit, c.city_id)
    return CampaignRow(
        c.id,
        c.name,
        c.kind,
        city.name if city else "",
        c.start_date,
        c.end_date,
        c.state,
        c.current_stage,
        c.version,
        c.updated_at,
        c.lock_version,
    )


def starting_design(
    session: Session, *, actor: Actor, city_id: int | None = None
) -> CampaignDesign:
    """A new design for the actor's city (admins choose the city)."""
    ensure_allowed(actor, Action.MANAGE_CAMPAIGNS)
    city_id = city_id or actor.city_id
    city = session.get(OrgUnit, city_id) if city_id else None
    if city is None or city.level != OrgLevel.CITY:
        raise ValidationFailed([FieldProblem("city_id", "请选择活动所属的市")])
    ensure_allowed(actor, Action.MANAGE_CAMPAIGNS, city)
    return new_design(city.id, shanghai_today())


def save_draft(
    session: Session,
    *,
    actor: Actor,
    design: CampaignDesign,
    campaign_id: int | None = None,
    expected_lock: int | None = None,
) -> CampaignRow:
    """Create or update a draft (or a returned plan being reworked). Nothing is lost: a
    half-finished design saves as long as it has a name and a readable period."""
    ensure_allowed(actor, Action.MANAGE_CAMPAIGNS, session.get(OrgUnit, design.city_id))
    problems = draft_problems(design)
    if problems:
        raise ValidationFailed(problems, summary="草稿未保存")
    ensure_design_references(session, actor, design, "草稿未保存")
    with write_transaction(session):
        if campaign_id is None:
            campaign = _insert_draft(session, actor, design)
            before = None
        else:
            campaign = load_campaign(session, campaign_id)
            ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, campaign)
            if campaign.state not in EDITABLE_STATES:
                raise Conflict(f"方案当前状态为「{campaign.state.label}」，不能修改")
            if expected_lock is not None and campaign.lock_version != expected_lock:
                raise Conflict("方案已被他人修改或已提交，请刷新后再编辑")
            if design.city_id != campaign.city_id:
                raise ValidationFailed([FieldProblem("city_id", "不能更改活动所属的市")])
            before = campaign.design
            campaign.design = design.model_dump(mode="json")
            campaign.name, campaign.kind = design.name.strip(), design.kind
            campaign.start_date, campaign.end_date = design.start_date, design.end_date
            campaign.updated_at = utcnow()
            campaign.lock_version += 1
            session.add(campaign)
            record_event(session, campaign, actor, "save", campaign.state, campaign.state)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CAMPAIGN_SAVE,
            target_type="campaign",
            target_id=campaign.id,
            summary=f"保存活动「{campaign.name}」",
            before=before,
            after=campaign.design,
        )
    return _row(session, campaign)


def _insert_draft(
    session: Session, actor: Actor, design: CampaignDesign, copied_from_id: int | None = None
) -> Campaign:
    campaign = Campaign(
        city_id=design.city_id,
        name=design.name.strip(),
        kind=design.kind,
        start_date=design.start_date,
        end_date=design.end_date,
        state=PlanState.DRAFT,
        design=design.model_dump(mode="json"),
        created_by=actor.user_id,
        copied_from_id=copied_from_id,
    )
    session.add(campaign)
    session.flush()
    record_event(session, campaign, actor, "create", None, PlanState.DRAFT)
    return campaign


def copy_campaign(session: Session, *, actor: Actor, source_id: int) -> CampaignRow:
    """A new draft that starts from an earlier campaign (any state) of a city the actor manages."""
    source = load_campaign(session, source_id)
    ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, source)
    design, dropped = _own_city_only(session, CampaignDesign.model_validate(source.design))
    fresh = new_design(source.city_id, shanghai_today())
    copied = design.model_copy(
        update={
            "name": f"{design.name}（副本）"[:60],
            "start_date": fresh.start_date,
            "end_date": fresh.end_date,
        }
    )
    problems = draft_problems(copied)
    if problems:
        raise ValidationFailed(problems, summary="未能复制")
    ensure_design_references(session, actor, copied, "未能复制")
    note = f"（已去掉不再属于本市的{dropped}）" if dropped else ""
    with write_transaction(session):
        campaign = _insert_draft(session, actor, copied, copied_from_id=source.id)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CAMPAIGN_COPY,
            target_type="campaign",
            target_id=campaign.id,
            summary=f"以「{source.name}」为模板新建活动{note}",
            after=campaign.design,
        )
    return _row(session, campaign)


def _own_city_only(session: Session, design: CampaignDesign) -> tuple[CampaignDesign, str]:
    """The design without the targets and merchants that are no longer its city's (an outlet
    moved to another city since, say): a copy is a new reference and may not cross cities,
    while the source keeps its history. Also says what was dropped, for the audit."""
    city, named = design.city_id, design_references(design)
    outlets = own_ids(session, city, OrgUnit, named["outlets"])
    counties = own_ids(session, city, OrgUnit, named["counties"])
    merchants = own_ids(session, city, Merchant, named["merchants"])
    dropped = (
        set(named["outlets"]) - outlets,
        set(named["counties"]) - counties,
        set(named["merchants"]) - merchants,
    )
    if not any(dropped):
        return design, ""
    words = "、".join(
        f"{label}「{'、'.join(_sorted_names(session, model, ids))}」"
        for label, model, ids in zip(
            ("网点", "区县", "商户"), (OrgUnit, OrgUnit, Merchant), dropped, strict=True
        )
        if ids
    )
    coupons = [
        c.model_copy(update={"merchant_ids": [m for m in c.merchant_ids if m in merchants]})
        for c in design.coupons
    ]
    kept = design.model_copy(
        update={
            "target_outlet_ids": [i for i in design.target_outlet_ids if i in outlets],
            "target_county_ids": [i for i in design.target_county_ids if i in counties],
            "merchant_ids": [i for i in design.merchant_ids if i in merchants],
            "coupons": coupons,
        }
    )
    return kept, words


def delete_draft(session: Session, *, actor: Actor, campaign_id: int) -> None:
    """Only a draft that was never submitted can be deleted."""
    with write_transaction(session):
        campaign = load_campaign(session, campaign_id)
        ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, campaign)
        if campaign.state is not PlanState.DRAFT or campaign.version > 0:
            raise Conflict("只能删除从未提交过的草稿")
        for model in (CampaignAttachment, PlanEvent):
            session.execute(sa.delete(model).where(model.campaign_id == campaign.id))
        # copies made from this draft keep their content, just not the link back
        session.execute(
            sa.update(Campaign)
            .where(Campaign.copied_from_id == campaign.id)
            .values(copied_from_id=None)
        )
        session.delete(campaign)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.CAMPAIGN_DELETE,
            target_type="campaign",
            target_id=campaign_id,
            summary=f"删除草稿「{campaign.name}」",
            before=campaign.design,
        )


@dataclass(frozen=True)
class CampaignFilter:
    states: tuple[PlanState, ...] = ()
    kinds: tuple[CampaignKind, ...] = ()
    city_id: int | None = None
    text: str = ""


def list_campaigns(
    session: Session, *, actor: Actor, filters: CampaignFilter | None = None
) -> list[CampaignRow]:
    ensure_allowed(actor, Action.VIEW_CAMPAIGNS)
    filters = filters or CampaignFilter()
    query = (
        select(Campaign)
        .where(campaign_scope(actor, Action.VIEW_CAMPAIGNS))
        .order_by(Campaign.updated_at.desc(), Campaign.id.desc())
    )
    if filters.states:
        query = query.where(Campaign.state.in_(filters.states))
    if filters.kinds:
        query = query.where(Campaign.kind.in_(filters.kinds))
    if filters.city_id:
        query = query.where(Campaign.city_id == filters.city_id)
    if filters.text.strip():
        query = query.where(Campaign.name.contains(filters.text.strip()))
    return [_row(session, c) for c in session.exec(query)]


def version_design(session: Session, campaign: Campaign, version: int | None) -> CampaignDesign:
    """A submitted version of the plan's design, or the current one (`version=None`)."""
    if version is None:
        return CampaignDesign.model_validate(campaign.design)
    stored = session.exec(
        select(PlanVersion).where(
            PlanVersion.campaign_id == campaign.id, PlanVersion.version == version
        )
    ).first()
    if stored is None:
        raise NotFound(f"方案没有第 {version} 版")
    return CampaignDesign.model_validate(stored.design)


@dataclass(frozen=True)
class DesignPreview:
    budget: Budget
    hits: list[ComplianceHit]


def design_preview(
    session: Session, *, actor: Actor, design: CampaignDesign, campaign_id: int | None = None
) -> DesignPreview:
    """The live budget (against the city's cap, less its other approved plans) and the
    compliance hints of a design being edited, before it is saved."""
    ensure_allowed(actor, Action.MANAGE_CAMPAIGNS, session.get(OrgUnit, design.city_id))
    return DesignPreview(
        budget_for(session, design, exclude_campaign_id=campaign_id),
        check(session, design.texts()),
    )


def campaign_detail(
    session: Session, *, actor: Actor, campaign_id: int, version: int | None = None
) -> CampaignDetail:
    """Everything a planner or reviewer sees about a plan; `version` shows a submitted one."""
    campaign = load_campaign(session, campaign_id)
    ensure_campaign_allowed(session, actor, Action.VIEW_CAMPAIGNS, campaign)
    design = version_design(session, campaign, version)
    events = session.exec(
        select(PlanEvent)
        .where(PlanEvent.campaign_id == campaign.id)
        .order_by(PlanEvent.at, PlanEvent.id)
    )
    attachments = session.exec(
        select(
            CampaignAttachment.id,
            CampaignAttachment.filename,
            CampaignAttachment.content_type,
            CampaignAttachment.size,
            CampaignAttachment.uploaded_at,
        )
        .where(CampaignAttachment.campaign_id == campaign.id)
        .order_by(CampaignAttachment.id)
    )
    versions = session.exec(
        select(PlanVersion.version)
        .where(PlanVersion.campaign_id == campaign.id)
        .order_by(PlanVersion.version)
    )
    return CampaignDetail(
        row=_row(session, campaign),
        design=design,
        budget=budget_for(session, design, exclude_campaign_id=campaign.id),
        hits=check(session, design.texts()),
        events=[
            EventRead(
                e.at,
                e.actor_name,
                e.action,
                e.from_state,
                e.to_state,
                e.stage,
                e.version,
                e.comment,
            )
            for e in events
        ],
        attachments=[AttachmentRead(*a) for a in attachments],
        versions=list(versions),
        names=design_names(session, design),
    )


def _sorted_names(session: Session, model: type, ids: set[int]) -> list[str]:
    rows = session.execute(sa.select(model.id, model.name).where(model.id.in_(ids))).all()
    return [name for _, name in sorted(rows)]


def design_names(session: Session, design: CampaignDesign) -> DesignNames:
    """Names of the org units and merchants a design refers to (for display and diffs)."""
    unit_ids = set(design.target_county_ids) | set(design.target_outlet_ids)
    merchant_ids = set(design.merchant_ids) | {m for c in design.coupons for m in c.merchant_ids}
    return DesignNames(
        units=_names(session, OrgUnit, unit_ids), merchants=_names(session, Merchant, merchant_ids)
    )


def _names(
    session: Session, table: type[OrgUnit] | type[Merchant], ids: set[int]
) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(sa.select(table.id, table.name).where(table.id.in_(ids))).all())


def flat_design(session: Session, design: CampaignDesign) -> dict[str, str]:
    return flatten(design, names=design_names(session, design))


# --- history ---------------------------------------------------------------------------


def record_event(
    session: Session,
    campaign: Campaign,
    actor: Actor,
    action: str,
    from_state: PlanState | None,
    to_state: PlanState | None,
    *,
    stage: int | None = None,
    version: int | None = None,
    comment: str = "",
) -> None:
    session.add(
        PlanEvent(
            campaign_id=campaign.id,
            actor_id=actor.user_id,
            actor_name=actor.display_name,
            action=action,
            from_state=from_state.value if from_state else None,
            to_state=to_state.value if to_state else None,
            stage=stage,
            version=version,
            comment=comment,
        )
    )


def city_planners(session: Session, city_id: int) -> list[int]:
    """Users who plan for a city (they hear about their plans' decisions)."""
    from db.models import Role

    query = select(User.id).where(
        User.role == Role.CITY_PLANNER, User.org_id == city_id, User.active
    )
    return list(session.exec(query))


def ensure_not_own(actor: Actor, campaign: Campaign) -> None:
    if actor.user_id is not None and campaign.created_by == actor.user_id:
        raise PermissionDenied("不能审核自己提交的方案")


@dataclass(frozen=True)
class EditorChoices:
    """What a planner can pick from when designing a campaign for one city."""

    city_id: int
    city_name: str
    counties: list[tuple[int, str]]
    outlets: list[tuple[int, str]]
    merchants: list[tuple[int, str]]


def editor_choices(session: Session, *, actor: Actor, city_id: int) -> EditorChoices:
    city = session.get(OrgUnit, city_id)
    if city is None or city.level != OrgLevel.CITY:
        raise NotFound("城市不存在")
    ensure_allowed(actor, Action.MANAGE_CAMPAIGNS, city)
    counties, outlets, merchants = city_members(session, city_id)
    return EditorChoices(city.id, city.name, counties, outlets, merchants)


Named = list[tuple[int, str]]


def city_members(session: Session, city_id: int) -> tuple[Named, Named, Named]:
    """A city's counties, outlets (by code) and active merchants (by name): what a design
    may target and bind. No permission check: callers check theirs."""
    units = session.exec(
        select(OrgUnit.id, OrgUnit.name, OrgUnit.level)
        .where(OrgUnit.city_id == city_id)
        .order_by(OrgUnit.code)
    ).all()
    merchants = session.exec(
        select(Merchant.id, Merchant.name)
        .where(Merchant.city_id == city_id, Merchant.active)
        .order_by(Merchant.name)
    ).all()
    return (
        [(u, n) for u, n, level in units if level == OrgLevel.COUNTY],
        [(u, n) for u, n, level in units if level == OrgLevel.OUTLET],
        [(m, n) for m, n in merchants],
    )


def managed_cities(session: Session, *, actor: Actor) -> list[tuple[int, str]]:
    """Cities the actor may design campaigns for."""
    ensure_allowed(actor, Action.MANAGE_CAMPAIGNS)
    query = (
        select(OrgUnit.id, OrgUnit.name)
        .where(OrgUnit.level == OrgLevel.CITY, scope_filter(actor, Action.MANAGE_CAMPAIGNS))
        .order_by(OrgUnit.code)
    )
    return [(i, n) for i, n in session.exec(query)]
