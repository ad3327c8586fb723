"""SQLAlchemy 2.x mapped classes, one module per aggregate. Never imports ``web``."""

from models.base import Base, as_naive_utc, utcnow
from models.contracts import Contract, Vendor
from models.people import ROLES, ApiToken, Department, RoleAssignment, User
from models.quota import QuotaEntry, QuotaPeriod
from models.requests import Attachment, DefinitionVersion, HistoryEntry, Request
from models.schema_changes import SchemaRevision
from models.security import SecurityEvent
from models.sla import CalendarOverride, Notification, SlaAlert
from models.systems import Release, System

__all__ = [
    "ROLES",
    "ApiToken",
    "Attachment",
    "Base",
    "CalendarOverride",
    "as_naive_utc",
    "Contract",
    "DefinitionVersion",
    "Department",
    "HistoryEntry",
    "Notification",
    "QuotaEntry",
    "QuotaPeriod",
    "Release",
    "Request",
    "RoleAssignment",
    "SchemaRevision",
    "SecurityEvent",
    "SlaAlert",
    "System",
    "User",
    "Vendor",
    "utcnow",
]
