"""Requests, the definition versions they run on, their hash-chained history and attachments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from models.base import Base, CanonicalJSON, JSONDoc, utcnow


class DefinitionVersion(Base):
    """A workflow definition as it was when a request first used it; never changes afterwards."""

    __tablename__ = "definition_versions"
    __table_args__ = (UniqueConstraint("key", "content_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    content_hash: Mapped[str] = mapped_column(String(64))
    # Deferred: every request loads its version row (key, hash) but the compiled definition is
    # cached per process, so the document itself is read only the first time.
    content: Mapped[dict] = mapped_column(JSONDoc, deferred=True)
    source: Mapped[str] = mapped_column(Text, deferred=True)
    source_file: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# Title search helpers made by migrations 0005, 0008, 0009 and 0010 outside the mapped tables (the
# PostgreSQL title table with its trigram indexes, SQLite's FTS5 table and its shadow tables):
# schema comparisons leave them alone.
SEARCH_HELPERS = ("ix_requests_title_trgm", "requests_title_fts", "requests_title_search")


def is_search_helper(name: str | None) -> bool:
    """Whether a database object belongs to title search rather than to the mapped schema."""
    return bool(name) and name.startswith(SEARCH_HELPERS)


class Request(Base):
    """A change or requirement request; ``data`` holds the kind-specific, definition-typed fields.

    ``version`` is the optimistic-concurrency counter: it equals the number of history entries.
    """

    __tablename__ = "requests"
    __table_args__ = (
        # id last: a filtered list reads one page in id order from the index and stops.
        Index("ix_requests_kind_state", "kind", "state", "id"),
        Index("ix_requests_contract_created", "contract_id", "created_at"),
        Index("ix_requests_department_created", "department_id", "created_at"),
        # A department user's filtered list, in id order from the index (migration 0008).
        Index("ix_requests_department_kind_state", "department_id", "kind", "state", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    definition_version_id: Mapped[int] = mapped_column(ForeignKey("definition_versions.id"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer, default=1)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    system_id: Mapped[int | None] = mapped_column(ForeignKey("systems.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    submitter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    data: Mapped[dict] = mapped_column(JSONDoc, default=dict)
    head_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    definition_version: Mapped[DefinitionVersion] = relationship(lazy="joined")
    contract = relationship("Contract", lazy="joined")
    # Loaded when shown (request pages, exports), not joined into every read of a request.
    department = relationship("Department")
    system = relationship("System")
    submitter = relationship("User", foreign_keys=[submitter_id])
    assignee = relationship("User", foreign_keys=[assignee_id])
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="request", order_by="Attachment.id"
    )

    # Filled only by the one-request load (workflow.queries.get_request), None otherwise: what an
    # answer shows of the submitter, the assignee and the definition version, as three columns
    # instead of three joined rows (each joined entity costs the worker more than its columns).
    # Read them through queries.username_of and queries.definition_hash, which fall back to the
    # relationships.
    submitter_name: Mapped[str | None] = query_expression()
    assignee_name: Mapped[str | None] = query_expression()
    definition_hash: Mapped[str | None] = query_expression()

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class HistoryEntry(Base):
    """One link of a request's hash chain: ``entry_hash = sha256(prev_hash || canonical JSON)``."""

    __tablename__ = "history_entries"
    __table_args__ = (UniqueConstraint("request_id", "seq"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(80))
    event: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str] = mapped_column(String(60))
    fields: Mapped[dict] = mapped_column(CanonicalJSON, default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    definition_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class Attachment(Base):
    """A file attached to a request; the bytes live under the instance folder, named by SHA-256."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(120))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)

    request: Mapped[Request] = relationship(back_populates="attachments")
    uploaded_by = relationship("User")
