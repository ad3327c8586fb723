"""Information systems under contract and their release history."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base


class System(Base):
    """A hospital information system maintained by a vendor under a contract."""

    __tablename__ = "systems"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    current_version: Mapped[str | None] = mapped_column(String(60))
    last_upgrade_at: Mapped[datetime | None] = mapped_column(DateTime)

    releases: Mapped[list[Release]] = relationship(
        back_populates="system", order_by="Release.released_on", cascade="all, delete-orphan"
    )
    contract = relationship("Contract")


class Release(Base):
    """A version of a system published by its vendor."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("system_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(60))
    released_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")

    system: Mapped[System] = relationship(back_populates="releases")
