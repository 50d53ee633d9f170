"""Campaigns (活动) and their review (方案审核): the design document, submitted plan
versions, the review stages, history, attachments, notifications and the settings the
budget and compliance checks read (city budget caps, risky expressions)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import enum_column, utcnow


class CampaignKind(StrEnum):
    RIGHTS_DAY = "rights_day"
    ECOMMERCE = "ecommerce"
    FESTIVAL = "festival"
    OTHER = "other"

    @property
    def label(self) -> str:
        return CAMPAIGN_KIND_LABELS[self]


CAMPAIGN_KIND_LABELS = {
    CampaignKind.RIGHTS_DAY: "会员权益日",
    CampaignKind.ECOMMERCE: "电商节",
    CampaignKind.FESTIVAL: "节日营销",
    CampaignKind.OTHER: "其他",
}


class PlanState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    RETURNED = "returned"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    ENDED = "ended"

    @property
    def label(self) -> str:
        return PLAN_STATE_LABELS[self]


PLAN_STATE_LABELS = {
    PlanState.DRAFT: "草稿",
    PlanState.SUBMITTED: "已提交",
    PlanState.IN_REVIEW: "审核中",
    PlanState.APPROVED: "已通过",
    PlanState.RETURNED: "已退回",
    PlanState.REJECTED: "已驳回",
    PlanState.SCHEDULED: "待开始",
    PlanState.RUNNING: "进行中",
    PlanState.ENDED: "已结束",
}


class Campaign(SQLModel, table=True):
    """A city's campaign. The editable design lives in `design` (JSON, see
    core/campaigns/design.py); the columns beside it are what lists and jobs filter on."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="org_unit.id", index=True)
    name: str = Field(max_length=60)
    kind: CampaignKind = Field(sa_column=enum_column(CampaignKind, nullable=False))
    start_date: date = Field(index=True)
    end_date: date = Field(index=True)
    state: PlanState = Field(sa_column=enum_column(PlanState, nullable=False, index=True))
    current_stage: int | None = None  # 1-based review stage while submitted / in review
    version: int = 0  # number of the latest submitted plan version (0: never submitted)
    lock_version: int = 1  # optimistic lock: every state change bumps it
    design: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    copied_from_id: int | None = Field(default=None, foreign_key="campaign.id")
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None  # when it reached its current review stage


class PlanVersion(SQLModel, table=True):
    """The design as submitted: immutable, one per submission (v1, v2 …)."""

    __tablename__ = "plan_version"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version: int
    design: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    submitted_by: int | None = Field(default=None, foreign_key="app_user.id")
    submitted_at: datetime = Field(default_factory=utcnow)


class PlanEvent(SQLModel, table=True):
    """One step in a plan's history (created, saved, submitted, approved at stage k …)."""

    __tablename__ = "plan_event"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    actor_id: int | None = None
    actor_name: str = Field(max_length=64)
    action: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str | None = Field(default=None, max_length=16)
    stage: int | None = None
    version: int | None = None
    comment: str = Field(default="", max_length=2000)


class ReviewStage(SQLModel, table=True):
    """Ordered review stages (审核环节), e.g. 1 专业部门审核 → 2 项目组审核."""

    __tablename__ = "review_stage"

    id: int | None = Field(default=None, primary_key=True)
    position: int = Field(unique=True)
    name: str = Field(max_length=40)


class ReviewStageMember(SQLModel, table=True):
    __tablename__ = "review_stage_member"

    stage_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("review_stage.id", ondelete="CASCADE"), primary_key=True)
    )
    user_id: int = Field(foreign_key="app_user.id", primary_key=True)


class CampaignAttachment(SQLModel, table=True):
    """A plan attachment (PDF or image), stored in the database so every app process sees it."""

    __tablename__ = "campaign_attachment"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    filename: str = Field(max_length=120)
    content_type: str = Field(max_length=40)
    size: int
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    uploaded_by: int | None = Field(default=None, foreign_key="app_user.id")
    uploaded_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """An in-app message to one user (plan decided, plan waiting for you, reminders)."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    title: str = Field(max_length=100)
    body: str = Field(default="", max_length=1000)
    link: str = Field(default="", max_length=200)  # url path of the page that deals with it
    read_at: datetime | None = None
    # Keeps jobs idempotent: the same reminder for the same thing is created once.
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True)


class CityBudget(SQLModel, table=True):
    """The yearly cap on post-funded campaign cost of a city (市分营销预算)."""

    __tablename__ = "city_budget"

    city_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    year: int = Field(primary_key=True)
    cap_fen: int = Field(sa_type=sa.BigInteger)
    updated_at: datetime = Field(default_factory=utcnow)


class ComplianceTerm(SQLModel, table=True):
    """An expression financial marketing copy must not (prohibited) or should not (risky) use."""

    __tablename__ = "compliance_term"

    id: int | None = Field(default=None, primary_key=True)
    term: str = Field(max_length=40, unique=True)
    severity: str = Field(max_length=16)  # "prohibited" | "risky"
    suggestion: str = Field(default="", max_length=200)
    active: bool = True
