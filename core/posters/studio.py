"""The poster studio's services (海报工坊): poster text from a campaign, the compliance check
of poster copy, and batches of personalised posters (one per outlet or staff member, each
with its own channel code) as a ZIP — the same functions the page and the CLI call."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from sqlmodel import Session

from core.campaigns.compliance import ComplianceHit, check
from core.campaigns.design import CampaignDesign, Coupon
from core.campaigns.plans import ensure_campaign_allowed, load_campaign
from core.campaigns.targets import CampaignPeriod
from core.channels.code_export import safe_name
from core.channels.codes import CodeRead, batch_codes, list_codes
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, ensure_allowed
from core.platform.references import BINDABLE_STATES, ensure_references, reference_problems
from core.posters.batch import render_many
from core.posters.templates import (
    LIMITS,
    MAX_BENEFITS,
    PosterContent,
    PosterJob,
    get_template,
    sample_content,
)
from db.engine import write_transaction
from db.models import CampaignKind, ChannelType, OrgLevel, OrgUnit

ProgressFn = Callable[[int, int], None]
DEFAULT_TEMPLATE = "rights_day"
BATCH_SCALE = (
    750 / 1080
)  # 750 × 1333: the size WeChat shows full screen, and a quarter of the bytes


def campaign_content(session: Session, *, actor: Actor, campaign_id: int) -> PosterContent:
    """Poster text drawn from a campaign: its name, its rights days, its coupons."""
    campaign = load_campaign(session, campaign_id)
    ensure_campaign_allowed(session, actor, Action.VIEW_CAMPAIGNS, campaign)
    design = CampaignDesign.model_validate(campaign.design)
    days = design.rights_days()
    if days and len(days) <= 4:
        date_line = " · ".join(f"{d.month}月{d.day}日" for d in days)
    elif days:
        date_line = f"{design.rule.describe()} · {_day(design.start_date)}—{_day(design.end_date)}"
    else:
        date_line = f"{_day(design.start_date)}—{_day(design.end_date)}"
    benefits = tuple(_benefit_line(c)[:40] for c in design.coupons[:MAX_BENEFITS])
    return PosterContent(
        title=design.name[: LIMITS["title"]],
        subtitle="星级会员专享 · 邮政与联盟商户联合让利",
        benefits=benefits,
        date_line=date_line[:40],
    )


# The template that suits each kind of campaign (the studio applies it when a campaign is
# chosen; the designer may still pick another).
TEMPLATE_OF_KIND = {
    CampaignKind.RIGHTS_DAY: "rights_day",
    CampaignKind.ECOMMERCE: "ecommerce",
    CampaignKind.FESTIVAL: "festival",
}
MERCHANT_TEMPLATE = "merchant"


def campaign_template(session: Session, *, actor: Actor, campaign_id: int) -> str:
    """The template id for a campaign's posters: by its kind; other campaigns run with
    merchants get the merchant-alliance template, the rest the rights-day one."""
    campaign = load_campaign(session, campaign_id)
    ensure_campaign_allowed(session, actor, Action.VIEW_CAMPAIGNS, campaign)
    if campaign.kind in TEMPLATE_OF_KIND:
        return TEMPLATE_OF_KIND[campaign.kind]
    design = CampaignDesign.model_validate(campaign.design)
    return MERCHANT_TEMPLATE if design.merchant_ids else DEFAULT_TEMPLATE


@dataclass(frozen=True)
class BatchTarget:
    """Where a batch of posters goes when a campaign was chosen: the campaign's city, and
    the campaign itself only while codes may still be bound to it."""

    city_id: int
    campaign_id: int | None
    note: str  # what the designer is told about the binding


def batch_target(campaign: CampaignPeriod) -> BatchTarget:
    if campaign.state in BINDABLE_STATES:
        return BatchTarget(
            campaign.city_id, campaign.id, f"活码和海报关联活动「{campaign.name}」。"
        )
    return BatchTarget(campaign.city_id, None, "该活动已结束，新生成的活码不再关联它。")


def _day(day: date) -> str:
    return f"{day.month}月{day.day}日"  # 1月1日, not 01月01日


def _benefit_line(coupon: Coupon) -> str:
    """ "逢8满减券：满100减20元", or just "满100减20元" when the name says it already."""
    name, text = coupon.name.strip(), coupon.describe()
    return text if not name or text.startswith(name) else f"{name}：{text}"


def poster_hits(session: Session, content: PosterContent) -> list[ComplianceHit]:
    """The compliance hints for a poster's copy (shown, never blocking)."""
    texts = [
        ("海报标题", content.title),
        ("海报副标题", content.subtitle),
        *(("海报权益", b) for b in content.benefits),
    ]
    return check(session, [(where, text) for where, text in texts if text])


def _jobs(
    codes: list[CodeRead], base: PosterContent, template_id: str
) -> list[tuple[str, PosterJob]]:
    """One poster per code; a personal code's poster names its staff member."""
    jobs = []
    for code in codes:
        staff = code.personal_staff
        content = replace(
            base,
            outlet_name=code.outlet_name[:30],
            staff_name=f"客户经理 {staff}"[:20] if staff else "",
            qr_url=code.url,
        )
        path = f"{safe_name(code.outlet_name)}/{safe_name(code.name)}.png"
        jobs.append((path, PosterJob(template_id, content, BATCH_SCALE, name=path)))
    return jobs


def _zip(
    folder: str, named_jobs: list[tuple[str, PosterJob]], progress: ProgressFn | None, workers: int
) -> bytes:
    buffer = io.BytesIO()
    # Posters are PNGs already compressed: store them, zipping again costs time and saves nothing.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, png in render_many(
            [job for _, job in named_jobs], workers=workers, progress=progress
        ):
            archive.writestr(f"{safe_name(folder)}/{named_jobs[index][0]}", png)
    return buffer.getvalue()


def batch_posters(
    session: Session,
    *,
    actor: Actor,
    city_id: int,
    per: str = "outlet",
    campaign_id: int | None = None,
    template_id: str = DEFAULT_TEMPLATE,
    content: PosterContent | None = None,
    outlet_ids: list[int] | None = None,
    progress: ProgressFn | None = None,
    workers: int = 2,
) -> tuple[bytes, int]:
    """A ZIP of personalised posters for a city (or some of its outlets) and how many.
    Each poster carries its own channel code, created or reused as `batch_codes` does.
    The text is `content`, else the campaign's, else the template's own default text; a
    campaign must be the city's own and approved, scheduled or running."""
    city = session.get(OrgUnit, city_id)
    if city is None or city.level != OrgLevel.CITY:
        raise NotFound("城市不存在")
    ensure_allowed(actor, Action.MANAGE_POSTERS, city)
    ensure_references(
        session,
        actor=actor,
        action=Action.MANAGE_POSTERS,
        city_id=city.id,
        summary="海报未生成",
        outlets=outlet_ids or (),
        campaign=campaign_id,
    )
    template = get_template(template_id)
    if content is None and campaign_id is not None:
        content = campaign_content(session, actor=actor, campaign_id=campaign_id)
    elif content is None:
        content = sample_content(template)
    codes = batch_codes(
        session,
        actor=actor,
        city_id=city_id,
        per=per,
        campaign_id=campaign_id,
        channel_type=ChannelType.POSTER,
        outlet_ids=outlet_ids,
    ).codes
    if not codes:
        raise ValidationFailed(
            [FieldProblem("city", "所选范围内没有在职员工的网点，无法生成专属海报")]
        )
    data = _zip(f"{city.name}_海报", _jobs(codes, content, template_id), progress, workers)
    with write_transaction(session):
        audit.record(
            session,
            actor=actor,
            action=AuditAction.POSTER_EXPORT,
            target_type="city",
            target_id=city_id,
            summary=f"导出{city.name}专属海报 {len(codes)} 张（模板 {template_id}，{'每员工' if per == 'staff' else '每网点'}）",
        )
    return data, len(codes)


def outlet_posters(
    session: Session,
    *,
    actor: Actor,
    template_id: str = DEFAULT_TEMPLATE,
    progress: ProgressFn | None = None,
) -> tuple[bytes, int]:
    """An outlet manager's own posters: one per channel code of their outlet."""
    ensure_allowed(actor, Action.VIEW_CHANNEL_CODES)
    if actor.outlet_id is None:
        raise ValidationFailed([FieldProblem("outlet", "只有网点负责人可以下载本网点海报")])
    codes = list_codes(session, actor=actor, outlet_id=actor.outlet_id)
    if not codes:
        raise ValidationFailed([FieldProblem("codes", "本网点还没有渠道活码，请联系市分生成")])
    outlet = session.get(OrgUnit, actor.outlet_id)
    texts: dict[int | None, PosterContent] = {None: OUTLET_DEFAULT_TEXT}
    jobs = []
    for code in codes:
        if code.campaign_id not in texts:
            texts[code.campaign_id] = _campaign_text(session, actor, outlet, code.campaign_id)
        jobs += _jobs([code], texts[code.campaign_id], template_id)
    return _zip(f"{outlet.name}_海报", jobs, progress, workers=1), len(jobs)


def _campaign_text(
    session: Session, actor: Actor, outlet: OrgUnit, campaign_id: int
) -> PosterContent:
    """The text of the campaign a code was made for, while a poster may still carry it (the
    outlet's city's own, approved, scheduled or running); the outlet's default text after
    it ended, or once the outlet moved to another city."""
    reader = _reader(actor)
    if reference_problems(
        session,
        actor=reader,
        action=Action.MANAGE_POSTERS,
        city_id=outlet.city_id,
        campaign=campaign_id,
    ):
        return OUTLET_DEFAULT_TEXT
    return campaign_content(session, actor=reader, campaign_id=campaign_id)


OUTLET_DEFAULT_TEXT = PosterContent(
    title="会员权益日",
    subtitle="扫码添加客户经理，领取专属权益",
    benefits=("会员专享权益，详询网点",),
)


def _reader(actor: Actor) -> Actor:
    # An outlet manager does not browse plans; reading the approved campaign their own
    # codes belong to, to print its poster text, is covered by their access to the codes.
    return Actor.system(f"posters-for:{actor.username}")
