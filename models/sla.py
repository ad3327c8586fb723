"""Service levels: calendar overrides, recorded SLA alerts (warnings and breaches) and the outbox.

Breaches are always *computed* from the request's history (``workflow.sla``); ``SlaAlert`` only
records that ``changeflow sla sweep`` noticed one, once, so notifications go out once. The unique
constraint is what makes the sweep idempotent, even when two nodes run it at the same moment.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class CalendarOverride(Base):
    """One date declared a working day or a day off by IT, winning over the statutory calendar."""

    __tablename__ = "calendar_overrides"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    working: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SlaAlert(Base):
    """A warning (75 % of a target used) or a breach, recorded once per request, target and kind."""

    __tablename__ = "sla_alerts"
    __table_args__ = (UniqueConstraint("request_id", "target", "kind", name="uq_sla_alert_once"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    target: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # "warning" or "breach"
    due_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Notification(Base):
    """An in-app message to one user (the outbox): read on the site, mailed when SMTP is set."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime)
    mailed_at: Mapped[datetime | None] = mapped_column(DateTime)
