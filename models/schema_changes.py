"""Revisions of a database schema change: the exact SQL under review and what the analysis saw.

A revision never changes once written. Reviews (waivers) and the approval name a revision by
number and pin its SHA-256 hashes, so a new revision leaves them behind.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, JSONDoc, utcnow


class SchemaRevision(Base):
    """One revision of a schema change request's change and rollback SQL, with its analysis."""

    __tablename__ = "schema_revisions"
    __table_args__ = (UniqueConstraint("request_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # Why the revision exists: created, revised, changes_requested.
    reason: Mapped[str] = mapped_column(String(30))
    database_name: Mapped[str] = mapped_column(String(128))
    dialect: Mapped[str] = mapped_column(String(16))
    change_sql: Mapped[str] = mapped_column(Text)
    rollback_sql: Mapped[str] = mapped_column(Text, default="")
    change_sha256: Mapped[str] = mapped_column(String(64))
    rollback_sha256: Mapped[str] = mapped_column(String(64))
    risk: Mapped[str] = mapped_column(String(10))
    analysis: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    created_by = relationship("User")
