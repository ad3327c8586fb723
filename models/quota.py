"""The free development quota ledger: one row per contract period, append-only entries (Z1, Q1)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# Person-days in steps of 0.5 up to 99 999.5: exact decimals, never floats.
PersonDays = Numeric(7, 1, asdecimal=True)
ENTRY_KINDS = ("reserve", "release", "consume", "adjust")


class QuotaPeriod(Base):
    """One quota period of a contract; the row every quota decision of the period locks."""

    __tablename__ = "quota_periods"
    __table_args__ = (UniqueConstraint("contract_id", "start_date"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    # The pool as the policy stated it when the period opened (None: no cumulative pool).
    pool: Mapped[Decimal | None] = mapped_column(PersonDays)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    contract = relationship("Contract")


class QuotaEntry(Base):
    """An append-only ledger line: reserve, release, consume or adjust, in person-days."""

    __tablename__ = "quota_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('reserve', 'release', 'consume', 'adjust')", name="kind_known"),
        CheckConstraint("kind = 'adjust' OR days > 0", name="days_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("quota_periods.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    days: Mapped[Decimal] = mapped_column(PersonDays)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str] = mapped_column(Text, default="")

    period: Mapped[QuotaPeriod] = relationship()
