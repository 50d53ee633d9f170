"""The scheduled jobs (定时任务). Each is idempotent: running it twice for the same
scheduled time changes nothing the second time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from core.campaigns import approvals, review, stages
from core.campaigns.design import CampaignDesign
from core.campaigns.targets import target_outlets
from core.channels import codes as channels
from core.jobs.scheduler import JobSpec, job
from core.metrics import data_quality as quality
from core.metrics import snapshots
from core.metrics.rankings import competition_ranks
from core.metrics.staff_targets import furthest_behind
from core.metrics.values import METRICS, period_values
from core.platform import notifications
from core.platform.clock import SHANGHAI
from core.platform.directory import outlet_directory
from core.platform.permissions import Actor
from core.results import retrospective as results
from core.results import spend as results_spend
from db.engine import write_transaction
from db.models import Campaign, PlanState, RankSnapshot, Role, User

RANK_WINDOW_DAYS = 30


def _local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def campaign_dates(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    moved = approvals.advance_due_campaigns(session, actor=actor, today=_local_day(scheduled_for))
    if not moved:
        return "没有需要变更状态的活动"
    return f"{len({cid for cid, _ in moved})} 个活动按日期变更状态（共 {len(moved)} 步）"


def rank_snapshot(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    """Province and city ranks of every outlet over the 30 days ending the newest data day."""
    latest = snapshots.latest_date(session)
    if latest is None:
        return "还没有指标数据"
    day = min(latest, _local_day(scheduled_for) - timedelta(days=1))
    directory = outlet_directory(session)
    ids = directory.ids
    tiebreak = directory.code_order[ids]
    values = period_values(session, directory, day - timedelta(days=RANK_WINDOW_DAYS - 1), day)
    with write_transaction(session):
        for key in METRICS:
            province = np.zeros(directory.size, dtype=np.int32)
            city = np.zeros(directory.size, dtype=np.int32)
            _, ranks = competition_ranks(values[key][ids], tiebreak)
            province[ids] = ranks
            for city_id in np.unique(directory.city_ids):
                inside = directory.city_ids == city_id
                _, city_ranks = competition_ranks(values[key][ids[inside]], tiebreak[inside])
                city[ids[inside]] = city_ranks
            session.execute(
                sa.delete(RankSnapshot).where(RankSnapshot.date == day, RankSnapshot.metric == key)
            )
            session.add(
                RankSnapshot(
                    date=day,
                    metric=key,
                    size=directory.size,
                    province_rank=province.astype("<i4").tobytes(),
                    city_rank=city.astype("<i4").tobytes(),
                )
            )
    return f"已保存 {day} 的 {len(METRICS)} 项指标排名（{len(ids)} 个网点）"


def rights_day_reminders(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    """The day before a rights day, the managers of the campaign's outlets hear about it."""
    tomorrow = _local_day(scheduled_for) + timedelta(days=1)
    campaigns = session.exec(
        select(Campaign).where(
            Campaign.state.in_((PlanState.APPROVED, PlanState.SCHEDULED, PlanState.RUNNING)),
            Campaign.start_date <= tomorrow,
            Campaign.end_date >= tomorrow,
        )
    ).all()
    sent, rights_days = 0, 0
    day = f"{tomorrow.month}月{tomorrow.day}日"
    with write_transaction(session):
        for campaign in campaigns:
            design = CampaignDesign.model_validate(campaign.design)
            if tomorrow not in design.rights_days():
                continue
            rights_days += 1
            outlets = target_outlets(session, design)
            managers = session.exec(
                select(User.id, User.org_id).where(
                    User.role == Role.OUTLET_MANAGER, User.active, User.org_id.in_(outlets or [-1])
                )
            ).all()
            coupons = "、".join(c.name for c in design.coupons[:3])
            for manager_id, outlet_id in managers:
                sent += notifications.notify(
                    session,
                    [manager_id],
                    title=f"明天（{day}）是会员权益日",
                    link="board",
                    body=f"「{campaign.name}」明天为权益日，{coupons}等权益开放领取。请提前备好物料、通知社群客户。"
                    + _behind_text(session, outlet_id, tomorrow - timedelta(days=1)),
                    dedupe_key=f"rights-day:{campaign.id}:{tomorrow}",
                )
    if not rights_days:
        return f"明天（{day}）不是任何活动的权益日，无需提醒（提醒 0 人）"
    return f"明天（{day}）是 {rights_days} 个活动的权益日，提醒 {sent} 人"


def _behind_text(session: Session, outlet_id: int, day: date) -> str:
    """The staff of the manager's outlet furthest behind their targets, by name."""
    behind = furthest_behind(session, outlet_id, day)
    if not behind:
        return ""
    names = "、".join(
        f"{b.staff_name}（{b.metric_label}完成 {float(b.completion) * 100:.0f}%，"
        f"时间进度 {float(b.expected) * 100:.0f}%）"
        for b in behind
    )
    return f"目标进度落后最多的员工：{names}。"


def approval_sla(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    """Reviewers are nudged about plans waiting at their stage more than 2 working days."""
    overdue = [r for r in review.review_queue(session, actor=actor, now=scheduled_for) if r.overdue]
    stage_members = {s.position: s.reviewer_ids for s in stages.stages(session)}
    today = _local_day(scheduled_for)
    sent = 0
    with write_transaction(session):
        for row in overdue:
            sent += notifications.notify(
                session,
                stage_members.get(row.stage, []),
                title=f"方案已等待 {row.waiting_days} 个工作日：{row.name}",
                body=f"{row.city}的「{row.name}」在第 {row.stage} 环节「{row.stage_name}」等待审核，已超过 {review.SLA_WORKING_DAYS} 个工作日。",
                link=f"approvals?plan={row.campaign_id}",
                dedupe_key=f"sla:{row.campaign_id}:{row.stage}:{today}",
            )
    return f"{len(overdue)} 个方案超时，提醒 {sent} 人次"


def data_quality(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    return quality.check_day(session, _local_day(scheduled_for) - timedelta(days=1))


def dead_codes(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    sent = channels.flag_dead_codes(session, today=_local_day(scheduled_for))
    return f"提醒 {sent} 个失效活码的负责人"


def spend_alerts(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    """Planner and reviewers hear once when a campaign's spend passes 90 % and 100 %."""
    with write_transaction(session):
        sent = results_spend.spend_alerts(session)
    return f"支出预警 {sent} 人次"


def results_freeze(session: Session, actor: Actor, scheduled_for: datetime) -> str:
    """The 复盘 of each campaign that has ended is frozen once, and its people told."""
    frozen = results.freeze_ended(session, actor)
    return f"{len(frozen)} 个活动的复盘已定稿" if frozen else "没有新结束的活动"


JOB_LIST = [
    JobSpec("campaign_dates", "活动按日期开始与结束", time(0, 10), campaign_dates),
    JobSpec("rank_snapshot", "每日排名快照", time(3, 0), rank_snapshot),
    JobSpec("data_quality", "夜间数据质量检查", time(7, 0), data_quality),
    JobSpec("dead_codes", "失效活码提醒", time(8, 0), dead_codes),
    JobSpec("rights_day_reminders", "权益日前一天提醒网点", time(9, 0), rights_day_reminders),
    JobSpec("approval_sla", "审核超时提醒", time(9, 30), approval_sla, weekdays_only=True),
    JobSpec("spend_alerts", "活动支出达预算 90%/100% 提醒", time(8, 30), spend_alerts),
    # After campaign_dates (00:10) has ended the campaigns of the day.
    JobSpec("results_freeze", "活动结束后复盘定稿", time(1, 0), results_freeze),
]
for _spec in JOB_LIST:
    job(_spec)
