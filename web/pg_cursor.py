"""A psycopg cursor whose ``description`` is built only when someone reads it.

SQLAlchemy asks every result for ``cursor.description`` but, once a statement's result
metadata is cached (every statement after its first run), only looks at whether it is None.
psycopg builds one Python ``Column`` per result column on each call: ~2 µs a column, some
200 µs of a transition's ~2.5 ms of worker CPU across its joined loads (docs/BENCHMARKS.md).
Here the columns are built from a snapshot of that result on first use, so a description read
after the cursor has moved on still describes the result it was taken from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import Column
from psycopg.pq import ExecStatus

_TUPLES = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class _ResultSnapshot:
    """What psycopg's Column reads from its cursor, fixed to one result.

    ``_encoding`` is private to psycopg (Column reads it so as of 3.3). tests/test_pg_cursor.py
    compares every field with psycopg's own description: an upgrade that changes Column fails
    there."""

    __slots__ = ("pgresult", "adapters", "_encoding")

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self.pgresult = cursor.pgresult
        self.adapters = cursor.adapters
        self._encoding = cursor._encoding


class DeferredDescription(Sequence):
    """The Column list psycopg would return, built on first indexing or iteration."""

    __slots__ = ("_snapshot", "_size", "_columns")

    def __init__(self, cursor: psycopg.Cursor, size: int) -> None:
        self._snapshot = _ResultSnapshot(cursor)
        self._size = size
        self._columns: list[Column] | None = None

    def _built(self) -> list[Column]:
        if self._columns is None:
            self._columns = [Column(self._snapshot, i) for i in range(self._size)]
        return self._columns

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: Any) -> Any:
        return self._built()[index]

    def __iter__(self):
        return iter(self._built())


class DeferredDescriptionCursor(psycopg.Cursor):
    """psycopg's client-side cursor with a description that costs nothing until read."""

    @property
    def description(self) -> DeferredDescription | None:
        """The current result's columns, or None when it returned no tuples (psycopg's rule)."""
        res = self.pgresult
        if res and (res.nfields or res.status in _TUPLES):
            return DeferredDescription(self, res.nfields)
        return None
