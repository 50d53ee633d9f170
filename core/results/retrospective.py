"""The 复盘 of one campaign: plan against actual, spend against budget, cost per result,
the uplift with its interval, the attribution chain and the outlets, as one plain,
JSON-ready dict. The page, the PDF, the XLSX and the CLI all read this dict; when a
campaign ends a job freezes it (`freeze`), and a frozen 复盘 is what everyone sees after.

`as_json` gives exactly the fields of the CLI (money in integer fen; `treated` and
`control` as outlet codes, so anyone can recompute the uplift from the daily rows).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, time, timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns.budget import COMMITTED_STATES
from core.campaigns.design import CampaignDesign
from core.campaigns.plans import campaign_scope
from core.campaigns.targets import outlet_targets, target_outlets
from core.metrics import snapshots
from core.metrics.values import period_values
from core.platform import audit, notifications
from core.platform.audit import AuditAction
from core.platform.clock import SHANGHAI, utcnow
from core.platform.directory import OutletDirectory, outlet_directory
from core.platform.errors import NotFound, ValidationFailed
from core.platform.formatting import round_half_up
from core.platform.permissions import Action, Actor, ensure_allowed
from core.results import uplift as did
from core.results.coupons import GRACE_DAYS
from core.results.spend import campaign_people, campaign_spend
from db.engine import write_transaction
from db.models import (
    Campaign,
    ChannelCode,
    ChannelEvent,
    CouponEvent,
    CouponEventKind,
    EventType,
    OrgUnit,
    PlanState,
    Retrospective,
)

JSON_KEYS = ("spend_post_fen", "spend_merchant_fen", "claimed", "redeemed", "kpi", "uplift")
METRIC_LABELS = {"new_friends": "新增好友", "conversions": "转化客户", "deposits": "新增存款"}
KPI_FIELDS = {
    "new_friends": "kpi_new_friends",
    "conversions": "kpi_conversions",
    "deposits": "kpi_deposits_fen",
}
BEST_WORST = 5


def as_json(report: dict[str, Any]) -> dict[str, Any]:
    """The CLI's JSON: exactly the fields the issue names."""
    return {key: report[key] for key in JSON_KEYS}


def load_campaign(session: Session, actor: Actor, campaign_id: int) -> Campaign:
    """The campaign, if the actor may see its results and it has any (approved or later)."""
    ensure_allowed(actor, Action.VIEW_RESULTS)
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"活动 {campaign_id} 不存在")
    ensure_allowed(actor, Action.VIEW_RESULTS, session.get(OrgUnit, campaign.city_id))
    if campaign.state not in COMMITTED_STATES:
        raise ValidationFailed(
            [], summary=f"活动「{campaign.name}」尚未通过审核（{campaign.state.label}），没有复盘"
        )
    return campaign


def retrospective(session: Session, *, actor: Actor, campaign_id: int) -> dict[str, Any]:
    """The frozen 复盘 when the campaign has ended and it was frozen, else computed now."""
    campaign = load_campaign(session, actor, campaign_id)
    frozen = session.get(Retrospective, campaign.id)
    if frozen is not None:
        return frozen.data
    return compute(session, campaign)


def compute(session: Session, campaign: Campaign) -> dict[str, Any]:
    """Everything the 复盘 shows, computed from the daily rows and the coupon events now."""
    design = CampaignDesign.model_validate(campaign.design)
    directory = outlet_directory(session)
    treated_ids = target_outlets(session, design)
    win = did.windows(campaign.start_date, campaign.end_date, snapshots.latest_date(session))
    spend = campaign_spend(session, campaign)
    report: dict[str, Any] = {
        "campaign": {
            "id": campaign.id,
            "name": campaign.name,
            "city": directory.unit_names.get(campaign.city_id, ""),
            "start": campaign.start_date.isoformat(),
            "end": campaign.end_date.isoformat(),
            "state": campaign.state.label,
        },
        "window": None,
        "spend_post_fen": spend.post_fen,
        "spend_merchant_fen": spend.merchant_fen,
        "claimed": spend.counts[CouponEventKind.CLAIMED.value],
        "redeemed": spend.counts[CouponEventKind.REDEEMED.value],
        "issued": spend.counts[CouponEventKind.ISSUED.value],
        "expired": spend.counts[CouponEventKind.EXPIRED.value],
        "budget": {
            "approved_post_fen": spend.approved_post_fen,
            "expected_post_fen": spend.expected_post_fen,
            "approved_total_fen": spend.approved_total_fen,
            "cap_fen": spend.cap_fen,
            "city_spent_fen": spend.city_spent_fen,
            "used_pct": None if spend.used_pct is None else round(spend.used_pct, 1),
        },
        "lines": [asdict(line) for line in spend.lines],
        "frozen_at": None,
    }
    actual = {key: 0 for key in did.FLOW_METRICS}
    outlets: list[dict[str, Any]] = []
    uplifts: dict[str, did.Uplift] = {}
    if win is not None:
        report["window"] = {
            "start": win.start.isoformat(),
            "end": win.end.isoformat(),
            "pre_start": win.pre_start.isoformat(),
            "pre_end": win.pre_end.isoformat(),
            "days": win.days,
        }
        during = period_values(session, directory, win.start, win.end, list(did.FLOW_METRICS))
        before = period_values(
            session, directory, win.pre_start, win.pre_end, list(did.FLOW_METRICS)
        )
        treated = np.array(treated_ids, dtype=np.int64)
        control = _control_ids(session, directory, campaign, win)
        codes = _codes(directory)
        for key in did.FLOW_METRICS:
            actual[key] = int(during[key][treated].sum()) if len(treated) else 0
            delta = during[key] - before[key]
            uplifts[key] = did.estimate(
                key,
                delta[treated],
                delta[control],
                [codes[i] for i in treated],
                [codes[i] for i in control],
            )
        outlets = _outlet_rows(session, campaign, directory, treated, during, before)
    else:
        for key in did.FLOW_METRICS:
            uplifts[key] = did.Uplift(key, None, None, None, None, [], [], "活动期内还没有日报数据")
    report["kpi"] = {
        key: {"target": getattr(design, KPI_FIELDS[key]), "actual": actual[key]}
        for key in did.FLOW_METRICS
    }
    report["uplift"] = {key: u.as_json() for key, u in uplifts.items()}
    report["uplift_reason"] = {key: u.reason for key, u in uplifts.items()}
    report["uplift_sentence"] = {key: _sentence(u) for key, u in uplifts.items()}
    report["cost"] = _cost(spend.post_fen, actual)
    report["chain"] = attribution_chain(session, campaign, actual["deposits"])
    report["outlets"] = outlets
    ranked = sorted(outlets, key=lambda o: (-o["d_deposits_fen"], o["code"]))
    report["best"] = [o["code"] for o in ranked[:BEST_WORST]]
    report["worst"] = [o["code"] for o in ranked[::-1][:BEST_WORST]]
    return report


def _codes(directory: OutletDirectory) -> dict[int, str]:
    return dict(zip(directory.ids.tolist(), directory.codes, strict=True))


def _control_ids(
    session: Session, directory: OutletDirectory, campaign: Campaign, win: did.Windows
) -> np.ndarray:
    """The province's outlets in no campaign (approved or later) overlapping either window
    (this campaign's own outlets included among those excluded)."""
    overlapping = session.exec(
        select(Campaign).where(
            Campaign.state.in_(COMMITTED_STATES),
            Campaign.start_date <= win.end,
            Campaign.end_date >= win.pre_start,
        )
    ).all()
    busy: set[int] = set()
    for other in overlapping:
        busy.update(target_outlets(session, CampaignDesign.model_validate(other.design)))
    ids = directory.ids
    return np.sort(ids[~np.isin(ids, np.array(sorted(busy), dtype=np.int64))])


def _sentence(u: did.Uplift) -> str:
    label = METRIC_LABELS[u.metric]
    if u.metric in did.MONEY_METRICS:
        return did.sentence(u, label, " 元", lambda v: f"{v / 100:,.2f}")
    unit = " 人" if u.metric == "new_friends" else " 户"
    return did.sentence(u, label, unit)


def _cost(post_fen: int, actual: dict[str, int]) -> dict[str, int | None]:
    """Post spend per new friend, per conversion and per 万元 of new deposits (fen)."""

    def per(amount: Fraction) -> int | None:
        return round_half_up(Fraction(post_fen) / amount) if amount > 0 else None

    return {
        "per_new_friend_fen": per(Fraction(actual["new_friends"])),
        "per_conversion_fen": per(Fraction(actual["conversions"])),
        "per_wan_deposits_fen": per(Fraction(actual["deposits"], 1_000_000)),
    }


def _outlet_rows(
    session: Session,
    campaign: Campaign,
    directory: OutletDirectory,
    treated: np.ndarray,
    during: dict[str, np.ndarray],
    before: dict[str, np.ndarray],
) -> list[dict[str, Any]]:
    redeemed = dict(
        session.execute(
            sa.select(CouponEvent.outlet_id, sa.func.count())
            .where(
                CouponEvent.campaign_id == campaign.id,
                CouponEvent.kind == CouponEventKind.REDEEMED,
            )
            .group_by(CouponEvent.outlet_id)
        ).all()
    )
    targets = outlet_targets(session, campaign_id=campaign.id, metric="deposits")
    names = dict(zip(directory.ids.tolist(), directory.names, strict=True))
    codes = _codes(directory)
    rows = []
    for oid in treated.tolist():
        deposits = int(during["deposits"][oid])
        target = targets.get(oid)
        rows.append(
            {
                "code": codes[oid],
                "name": names[oid],
                "new_friends": int(during["new_friends"][oid]),
                "conversions": int(during["conversions"][oid]),
                "deposits_fen": deposits,
                "d_new_friends": int(during["new_friends"][oid] - before["new_friends"][oid]),
                "d_conversions": int(during["conversions"][oid] - before["conversions"][oid]),
                "d_deposits_fen": int(during["deposits"][oid] - before["deposits"][oid]),
                "redeemed": int(redeemed.get(oid, 0)),
                "deposits_target_fen": target,
                "deposits_completion_pct": round(100 * deposits / target, 1) if target else None,
            }
        )
    return sorted(rows, key=lambda r: r["code"])


def attribution_chain(
    session: Session, campaign: Campaign, deposits_fen: int
) -> list[dict[str, Any]]:
    """Scans of the campaign's codes → friends added through them → of those customers, who
    claimed a coupon of the campaign → who redeemed one → who converted (a conversion event
    on any code), joined on the hashed customer id, inside the campaign window plus the
    grace period. Deposits cannot be joined per customer: the last step is the new
    deposits of the participating outlets over the campaign days, without a drop."""
    first = datetime.combine(campaign.start_date, time(0), tzinfo=SHANGHAI)
    last = datetime.combine(
        campaign.end_date + timedelta(days=GRACE_DAYS + 1), time(0), tzinfo=SHANGHAI
    )
    codes = sa.select(ChannelCode.id).where(ChannelCode.campaign_id == campaign.id)

    def channel(kind: EventType, on_campaign_codes: bool = True) -> sa.Select:
        query = sa.select(ChannelEvent.customer).where(
            ChannelEvent.event_type == kind, ChannelEvent.at >= first, ChannelEvent.at < last
        )
        return query.where(ChannelEvent.code_id.in_(codes)) if on_campaign_codes else query

    def customers(query: sa.Select) -> set[str]:
        # Each step is one plain query; the joins are set intersections here (nested IN
        # subqueries make PostgreSQL pick nested loops over freshly loaded tables).
        return set(session.execute(query.distinct()).scalars()) - {""}

    def coupons(kind: CouponEventKind) -> set[str]:
        return customers(
            sa.select(CouponEvent.customer).where(
                CouponEvent.campaign_id == campaign.id, CouponEvent.kind == kind
            )
        )

    scans = session.execute(
        sa.select(sa.func.count()).select_from(channel(EventType.SCAN).subquery())
    ).scalar_one()
    friends = customers(channel(EventType.ADD_FRIEND))
    claimed = friends & coupons(CouponEventKind.CLAIMED)
    redeemed = claimed & coupons(CouponEventKind.REDEEMED)
    converted = redeemed & customers(channel(EventType.CONVERT, on_campaign_codes=False))
    counts = [
        ("scans", "扫码次数（活动活码）", scans),
        ("friends", "经活动活码添加的好友（人）", len(friends)),
        ("claimed", "其中领取了本活动权益券（人）", len(claimed)),
        ("redeemed", "其中核销了权益券（人）", len(redeemed)),
        ("conversions", "其中成为金融客户（人）", len(converted)),
    ]
    steps, previous = [], None
    for key, label, count in counts:
        drop = None if not previous else round(100 * (previous - count) / previous, 1)
        steps.append({"step": key, "label": label, "count": int(count), "drop_pct": drop})
        previous = count
    steps.append(
        {
            "step": "deposits",
            "label": "参与网点活动期新增存款（无法按客户关联，不计流失）",
            "count": deposits_fen,
            "drop_pct": None,
        }
    )
    return steps


def freeze(session: Session, *, actor: Actor, campaign: Campaign) -> bool:
    """Store the 复盘 of an ended campaign once; False when it was already frozen. Runs
    inside the caller's transaction (the job's)."""
    if session.get(Retrospective, campaign.id) is not None:
        return False
    report = compute(session, campaign)
    report["frozen_at"] = utcnow().isoformat()
    session.add(Retrospective(campaign_id=campaign.id, data=report))
    audit.record(
        session,
        actor=actor,
        action=AuditAction.RETROSPECTIVE_FREEZE,
        target_type="campaign",
        target_id=str(campaign.id),
        summary=f"活动「{campaign.name}」结束，复盘已定稿",
    )
    return True


def city_history(session: Session, *, actor: Actor, campaign_id: int) -> list[dict[str, Any]]:
    """The last three frozen 复盘 of the campaign's city (newest first, the campaign itself
    left out), for a reviewer deciding a new plan."""
    ensure_allowed(actor, Action.VIEW_RESULTS)
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"活动 {campaign_id} 不存在")
    ensure_allowed(actor, Action.VIEW_RESULTS, session.get(OrgUnit, campaign.city_id))
    query = (
        select(Retrospective)
        .join(Campaign, Campaign.id == Retrospective.campaign_id)
        .where(Campaign.city_id == campaign.city_id, Campaign.id != campaign.id)
        .order_by(Campaign.end_date.desc(), Campaign.id.desc())
        .limit(3)
    )
    return [r.data for r in session.exec(query)]


def freeze_ended(session: Session, actor: Actor) -> list[Campaign]:
    """Freeze every ended campaign without a 复盘 yet and tell its planners and the stage
    reviewers, in one transaction; returns the campaigns frozen."""
    ended = session.exec(
        select(Campaign)
        .where(Campaign.state == PlanState.ENDED)
        .where(~Campaign.id.in_(sa.select(Retrospective.campaign_id)))
        .order_by(Campaign.id)
    ).all()
    frozen = []
    with write_transaction(session):
        for campaign in ended:
            if not freeze(session, actor=actor, campaign=campaign):
                continue
            frozen.append(campaign)
            notifications.notify(
                session,
                campaign_people(session, campaign),
                title=f"活动已结束，复盘已生成：{campaign.name}",
                body=f"「{campaign.name}」（{campaign.start_date} 至 {campaign.end_date}）的支出、"
                "目标完成和提升效果已定稿，可在「活动复盘」查看并下载报告。",
                link=f"results?campaign={campaign.id}",
                dedupe_key=f"results-frozen:{campaign.id}",
            )
    return frozen


def result_campaigns(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Campaigns (approved or later) whose 复盘 the actor may see, newest first."""
    ensure_allowed(actor, Action.VIEW_RESULTS)
    frozen = set(session.exec(select(Retrospective.campaign_id)).all())
    query = (
        select(Campaign)
        .where(Campaign.state.in_(COMMITTED_STATES))
        .where(campaign_scope(actor, Action.VIEW_RESULTS))
        .order_by(Campaign.end_date.desc(), Campaign.id.desc())
    )
    return [
        {
            "id": c.id,
            "name": c.name,
            "city_id": c.city_id,
            "start": c.start_date,
            "end": c.end_date,
            "state": c.state.label,
            "frozen": c.id in frozen,
        }
        for c in session.exec(query)
    ]
