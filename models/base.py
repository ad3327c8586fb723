"""Declarative base, naming convention and portable column types."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import JSON, MetaData, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from workflow.canonical import canonical_json

# Stable constraint names, so Alembic migrations match on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class CanonicalJSON(TypeDecorator):
    """A JSON value stored as its canonical text (sorted keys, no spaces, UTF-8 kept).

    The stored text is byte for byte what a history entry's hash covers, so the database itself
    can re-hash entries (``workflow.history``); JSONB would reorder keys and add spaces.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else canonical_json(value).decode()

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    """Base class of every mapped class."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Current time as naive UTC, microseconds kept: the one form stored and hashed."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_naive_utc(moment: datetime) -> datetime:
    """The stored form of any timestamp: aware values are converted to UTC, then made naive."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None)
