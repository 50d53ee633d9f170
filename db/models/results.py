"""Campaign results (活动复盘): coupon events from the coupon and payment systems, per-outlet
targets for a period or a campaign, and the frozen 复盘 of an ended campaign."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import enum_column, utcnow


class CouponEventKind(StrEnum):
    ISSUED = "issued"
    CLAIMED = "claimed"
    REDEEMED = "redeemed"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return COUPON_EVENT_LABELS[self]


COUPON_EVENT_LABELS = {
    CouponEventKind.ISSUED: "发放",
    CouponEventKind.CLAIMED: "领取",
    CouponEventKind.REDEEMED: "核销",
    CouponEventKind.EXPIRED: "过期",
}


class CouponEvent(SQLModel, table=True):
    """One coupon event as the coupon system reported it; `event_id` is that system's id,
    so a file imported twice stores each event once. The customer is a salted hash, like
    channel events, so the two can be joined without storing who the customer is."""

    __tablename__ = "coupon_event"
    __table_args__ = (sa.Index("ix_coupon_event_campaign_kind", "campaign_id", "kind"),)

    event_id: str = Field(primary_key=True, max_length=64)
    campaign_id: int = Field(foreign_key="campaign.id")
    coupon_line: int  # 1-based position of the coupon in the campaign design
    outlet_id: int = Field(foreign_key="org_unit.id")
    merchant_id: int | None = Field(default=None, foreign_key="merchant.id")
    customer: str = Field(default="", max_length=64)
    kind: CouponEventKind = Field(sa_column=enum_column(CouponEventKind, nullable=False))
    face_value_fen: int = Field(default=0, sa_type=sa.BigInteger)
    discount_fen: int = Field(default=0, sa_type=sa.BigInteger)
    at: dt.datetime
    imported_at: dt.datetime = Field(default_factory=utcnow)


class OutletTarget(SQLModel, table=True):
    """An outlet's own target for one metric, over a period or for one campaign's days.
    `period_key` is `campaign:<id>` or `<start>/<end>`; a re-import replaces by key."""

    __tablename__ = "outlet_target"

    period_key: str = Field(primary_key=True, max_length=40)
    outlet_id: int = Field(foreign_key="org_unit.id", primary_key=True)
    metric: str = Field(primary_key=True, max_length=20)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    start_date: dt.date
    end_date: dt.date
    target: int = Field(sa_type=sa.BigInteger)  # counts, or fen for deposits
    imported_at: dt.datetime = Field(default_factory=utcnow)


class Retrospective(SQLModel, table=True):
    """The 复盘 of an ended campaign as it was frozen when it ended (JSON of the CLI)."""

    __tablename__ = "retrospective"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    frozen_at: dt.datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))


class SpendAlert(SQLModel, table=True):
    """A spend threshold (90 or 100 % of the approved budget) already announced: once each."""

    __tablename__ = "spend_alert"

    campaign_id: int = Field(foreign_key="campaign.id", primary_key=True)
    threshold_pct: int = Field(primary_key=True)
    spend_fen: int = Field(sa_type=sa.BigInteger)
    sent_at: dt.datetime = Field(default_factory=utcnow)
