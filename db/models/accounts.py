"""Users, login sessions and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from db.models.base import enum_column, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    PROVINCE_REVIEWER = "province_reviewer"
    CITY_PLANNER = "city_planner"
    OUTLET_MANAGER = "outlet_manager"
    DESIGNER = "designer"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.ADMIN: "系统管理员",
    Role.PROVINCE_REVIEWER: "省分审核员",
    Role.CITY_PLANNER: "市分策划",
    Role.OUTLET_MANAGER: "网点负责人",
    Role.DESIGNER: "营销设计",
}


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=50)
    role: Role = Field(sa_column=enum_column(Role, nullable=False))
    org_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    password_hash: str = Field(max_length=200)
    active: bool = Field(default=True)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class AuthSession(SQLModel, table=True):
    """A logged-in browser. Only the SHA-256 of the cookie token is stored."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class AuditLog(SQLModel, table=True):
    """Who did what, when, with the record before and after (JSON)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor_name: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    summary: str = Field(default="", max_length=500)
    before: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
