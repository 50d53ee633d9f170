"""The organisation tree (机构), staff (员工) and partner merchants (联盟商户)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import enum_column, utcnow


class OrgLevel(StrEnum):
    """省 → 市/州 → 区县 → 网点."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    OUTLET = "outlet"

    @property
    def label(self) -> str:
        return ORG_LEVEL_LABELS[self]


ORG_LEVEL_LABELS = {
    OrgLevel.PROVINCE: "省",
    OrgLevel.CITY: "市",
    OrgLevel.COUNTY: "区县",
    OrgLevel.OUTLET: "网点",
}

# The only parent level each level may have; the tree is strictly four deep.
PARENT_LEVEL: dict[OrgLevel, OrgLevel | None] = {
    OrgLevel.PROVINCE: None,
    OrgLevel.CITY: OrgLevel.PROVINCE,
    OrgLevel.COUNTY: OrgLevel.CITY,
    OrgLevel.OUTLET: OrgLevel.COUNTY,
}


class OrgUnit(SQLModel, table=True):
    """One node of the org tree. `city_id`/`county_id` are denormalised ancestors so that a
    data-scope filter is one indexed equality instead of a tree walk."""

    __tablename__ = "org_unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=100)
    level: OrgLevel = Field(sa_column=enum_column(OrgLevel, nullable=False, index=True))
    parent_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    city_id: int | None = Field(default=None, index=True)
    county_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class StaffRole(StrEnum):
    MARKETER = "marketer"
    TELLER = "teller"
    COURIER = "courier"
    BRANCH_HEAD = "branch_head"

    @property
    def label(self) -> str:
        return STAFF_ROLE_LABELS[self]


STAFF_ROLE_LABELS = {
    StaffRole.MARKETER: "营销员",
    StaffRole.TELLER: "营业员",
    StaffRole.COURIER: "投递员",
    StaffRole.BRANCH_HEAD: "支局长",
}


class Staff(SQLModel, table=True):
    """A WeCom member working at an outlet (员工)."""

    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    outlet_id: int = Field(foreign_key="org_unit.id", index=True)
    name: str = Field(max_length=50)
    role: StaffRole = Field(sa_column=enum_column(StaffRole, nullable=False))
    wecom_userid: str = Field(max_length=64, unique=True)
    mobile: str = Field(default="", max_length=20)
    # WeCom "联系我" link a channel-code scan is redirected to.
    contact_url: str = Field(default="", max_length=300)
    active: bool = Field(default=True)
    left_on: date | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Changes on every update (a transfer, a departure): staff boards' cached directory
    # compares max(updated_at) instead of reading every staff row. Bulk loads leave it NULL.
    updated_at: datetime | None = Field(
        default_factory=utcnow, index=True, sa_column_kwargs={"onupdate": utcnow}
    )


class Merchant(SQLModel, table=True):
    """A partner shop (联盟商户) of one city; co-funds coupons."""

    __tablename__ = "merchant"

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="org_unit.id", index=True)
    name: str = Field(max_length=100)
    category: str = Field(default="", max_length=30)
    address: str = Field(default="", max_length=200)
    contact_name: str = Field(default="", max_length=50)
    contact_phone: str = Field(default="", max_length=20)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MerchantOutlet(SQLModel, table=True):
    """Which outlets a merchant is bound to."""

    __tablename__ = "merchant_outlet"

    merchant_id: int = Field(
        sa_column=sa.Column(sa.ForeignKey("merchant.id", ondelete="CASCADE"), primary_key=True)
    )
    outlet_id: int = Field(foreign_key="org_unit.id", primary_key=True, index=True)
