"""Every table of the app; importing this package registers them on `SQLModel.metadata`."""

from db.models.accounts import ROLE_LABELS, AuditLog, AuthSession, Role, User
from db.models.metrics import DailyMetric, MetricSnapshot
from db.models.org import (
    ORG_LEVEL_LABELS,
    PARENT_LEVEL,
    STAFF_ROLE_LABELS,
    Merchant,
    MerchantOutlet,
    OrgLevel,
    OrgUnit,
    Staff,
    StaffRole,
)

__all__ = [
    "ORG_LEVEL_LABELS",
    "PARENT_LEVEL",
    "ROLE_LABELS",
    "STAFF_ROLE_LABELS",
    "AuditLog",
    "AuthSession",
    "DailyMetric",
    "Merchant",
    "MerchantOutlet",
    "MetricSnapshot",
    "OrgLevel",
    "OrgUnit",
    "Role",
    "Staff",
    "StaffRole",
    "User",
]
