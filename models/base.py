"""Declarative base, naming convention and portable column types."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import JSON, MetaData, Text, cast, type_coerce
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


def _refuse(self, *_args, **_kwargs):
    raise TypeError("This document is shared and read-only: change a copy (dict(...)) instead.")


class _ReadOnlyJSON:
    """What both read-only JSON containers share: every copy of one is a plain container."""

    _plain: type

    def __copy__(self):
        return self._plain(self)

    def __deepcopy__(self, memo):
        return json.loads(json.dumps(self))

    def __reduce__(self):
        return (self._plain, (self._plain(self),))


class ReadOnlyDict(_ReadOnlyJSON, dict):
    """A JSON object that refuses changes; copies of it (dict(), copy, deepcopy) are plain."""

    _plain = dict
    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


class ReadOnlyList(_ReadOnlyJSON, list):
    """A JSON array that refuses changes; copies of it (list(), copy, deepcopy) are plain."""

    _plain = list
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse


def read_only(value):
    """``value`` (decoded JSON) with every object and array in it made read-only."""
    if isinstance(value, dict):
        return ReadOnlyDict((k, read_only(v)) for k, v in value.items())
    if isinstance(value, list):
        return ReadOnlyList(read_only(v) for v in value)
    return value


# Decoded documents by their stored text, shared by every load of that text in this process.
_SHARED_DOCUMENTS: dict[str, object] = {}
SHARED_DOCUMENTS_MAX = 256


def _shared_document(stored):
    if stored is None:
        return None
    if not isinstance(stored, str | bytes):  # decoded by the driver already
        return read_only(stored)
    found = _SHARED_DOCUMENTS.get(stored)
    if found is None:
        if len(_SHARED_DOCUMENTS) >= SHARED_DOCUMENTS_MAX:
            _SHARED_DOCUMENTS.clear()
        found = _SHARED_DOCUMENTS[stored] = read_only(json.loads(stored))
    return found


class SharedJSONDoc(TypeDecorator):
    """A JSON document read far more often than written and never changed in place (a
    contract's policy): each distinct stored text is decoded once per process, and every load
    of it shares that read-only decoding. JSON on SQLite, JSONB on PostgreSQL, read as text.

    Decoding a 2-6 kB policy on every load of a request's contract was 5 % of a transition's
    worker CPU.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def column_expression(self, colexpr):
        # The stored text, not the driver's decoding of it (psycopg decodes JSONB itself).
        return type_coerce(cast(colexpr, Text), self)

    def result_processor(self, dialect, coltype):
        return _shared_document


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
