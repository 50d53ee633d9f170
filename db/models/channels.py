"""Channel codes (渠道活码): a QR code per channel that hands each scanning customer to a
staff member by a rule, tags them and greets them; the staff pool of each code; and the
events (scan → friend → group → conversion) the funnel is built from."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import enum_column, utcnow


class ChannelType(StrEnum):
    COUNTER = "counter"
    MERCHANT = "merchant"
    POSTER = "poster"
    DELIVERY = "delivery"
    MOMENTS = "moments"
    GROUP = "group"

    @property
    def label(self) -> str:
        return CHANNEL_TYPE_LABELS[self]


CHANNEL_TYPE_LABELS = {
    ChannelType.COUNTER: "网点柜台",
    ChannelType.MERCHANT: "商户门店",
    ChannelType.POSTER: "海报",
    ChannelType.DELIVERY: "投递",
    ChannelType.MOMENTS: "朋友圈",
    ChannelType.GROUP: "社群",
}


class AssignmentRule(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    DAILY_CAP = "daily_cap"

    @property
    def label(self) -> str:
        return {
            "round_robin": "轮流分配",
            "least_loaded": "优先分给客户最少的员工",
            "daily_cap": "每人每日上限",
        }[self.value]


class EventType(StrEnum):
    SCAN = "scan"
    ADD_FRIEND = "add_friend"
    JOIN_GROUP = "join_group"
    CONVERT = "convert"
    LOSS = "loss"  # the customer deleted the staff member, or was deleted (WeCom callback)

    @property
    def label(self) -> str:
        return {
            "scan": "扫码",
            "add_friend": "加好友",
            "join_group": "进群",
            "convert": "转化",
            "loss": "流失",
        }[self.value]


class ChannelCode(SQLModel, table=True):
    __tablename__ = "channel_code"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=16, unique=True, index=True)
    name: str = Field(max_length=80)
    channel_type: ChannelType = Field(sa_column=enum_column(ChannelType, nullable=False))
    outlet_id: int = Field(foreign_key="org_unit.id", index=True)
    city_id: int = Field(foreign_key="org_unit.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    merchant_id: int | None = Field(default=None, foreign_key="merchant.id")
    rule: AssignmentRule = Field(sa_column=enum_column(AssignmentRule, nullable=False))
    daily_cap: int | None = None  # per staff member per day
    # {"weekly": {"0": [["09:00","17:30"]], …}, "overrides": {"2026-12-08": [["08:00","20:00"]], "2026-10-01": []}}
    slots: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    tags: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    welcome_message: str = Field(default="", max_length=500)
    active_from: dt.date | None = None
    active_until: dt.date | None = None
    max_adds: int | None = None
    adds_count: int = 0
    scans_count: int = 0
    losses_count: int = 0
    # The code's WeCom contact way (联系我) in live mode: its config id and QR address, where
    # the scan route then redirects (None: the staff member's hand-typed contact link).
    wecom_config_id: str | None = Field(default=None, max_length=64)
    wecom_qr_url: str | None = Field(default=None, max_length=300)
    cursor: int = 0  # round-robin position
    enabled: bool = True
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ChannelCodeStaff(SQLModel, table=True):
    """A staff member in a code's pool: primary (in order) or fallback when all are full."""

    __tablename__ = "channel_code_staff"

    code_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("channel_code.id", ondelete="CASCADE"), primary_key=True)
    )
    staff_id: int = Field(foreign_key="staff.id", primary_key=True, index=True)
    position: int = 0
    fallback: bool = False
    assigned_total: int = 0
    assigned_today: int = 0
    today: dt.date | None = None  # the day assigned_today counts


class ChannelEvent(SQLModel, table=True):
    """One step of a customer through a code. The customer's WeCom id is stored only as a
    salted SHA-256 (`customer`); scans from the QR route have no customer yet."""

    __tablename__ = "channel_event"
    __table_args__ = (
        sa.Index("ix_channel_event_code_at", "code_id", "at"),
        sa.Index("ix_channel_event_customer", "customer"),  # a loss finds its friend event
        sa.UniqueConstraint("code_id", "customer", "event_type", "at", name="uq_channel_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code_id: int = Field(foreign_key="channel_code.id")
    at: dt.datetime
    event_type: EventType = Field(sa_column=enum_column(EventType, nullable=False))
    customer: str = Field(default="", max_length=64)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    source: str = Field(default="import", max_length=16)  # route | callback | import


class StaffHandover(SQLModel, table=True):
    """离职继承: customers of a staff member who left now belong to a colleague."""

    __tablename__ = "staff_handover"

    id: int | None = Field(default=None, primary_key=True)
    from_staff_id: int = Field(foreign_key="staff.id", index=True)
    to_staff_id: int = Field(foreign_key="staff.id")
    customers: int = 0
    at: dt.datetime = Field(default_factory=utcnow)
    by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
