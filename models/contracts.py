"""Vendors and their maintenance contracts, each holding a validated policy document."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, SharedJSONDoc


class Vendor(Base):
    """A software vendor (乙方)."""

    __tablename__ = "vendors"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Contract(Base):
    """A maintenance contract; ``policy`` is the validated policy document, frozen per contract."""

    __tablename__ = "contracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    policy_key: Mapped[str] = mapped_column(String(80))
    policy_hash: Mapped[str] = mapped_column(String(64))
    policy: Mapped[dict] = mapped_column(SharedJSONDoc)

    vendor: Mapped[Vendor] = relationship(lazy="joined")
