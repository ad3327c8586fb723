"""The deferred cursor description on PostgreSQL says what psycopg's own would."""

from __future__ import annotations

import psycopg
import pytest

from web.pg_cursor import DeferredDescription, DeferredDescriptionCursor


def _columns(description):
    """Every DB-API field of every column: name, type code, sizes, precision, scale, null_ok."""
    return [tuple(column) for column in description]


@pytest.fixture
def raw_connection(pg_only, engine):
    """The engine's psycopg connection, whose cursors are the deferred kind."""
    with engine.connect() as connection:
        yield connection.connection.driver_connection


QUERIES = [
    "SELECT 1 AS a, 'x'::text AS b, 2.5::numeric(6, 2) AS c, now() AS d",
    "SELECT id, title, state, version FROM requests WHERE false",
    "SELECT",
]


def test_the_engines_cursors_defer_their_description(raw_connection):
    assert isinstance(raw_connection.cursor(), DeferredDescriptionCursor)


@pytest.mark.parametrize("query", QUERIES)
def test_a_deferred_description_equals_psycopgs_own(raw_connection, query):
    deferred = raw_connection.cursor()
    deferred.execute(query)
    plain = psycopg.Cursor(raw_connection)
    plain.execute(query)
    description = deferred.description
    assert isinstance(description, DeferredDescription)
    assert len(description) == len(plain.description)
    assert _columns(description) == _columns(plain.description)
    assert [c.type_display for c in description] == [c.type_display for c in plain.description]


def test_a_statement_without_rows_has_no_description(raw_connection):
    cursor = raw_connection.cursor()
    cursor.execute("SET LOCAL statement_timeout = 0")
    assert cursor.description is None


def test_a_description_read_later_still_describes_its_own_result(raw_connection):
    cursor = raw_connection.cursor()
    cursor.execute("SELECT 1 AS first_column, 'x'::text AS second_column")
    taken = cursor.description
    cursor.execute("SELECT 2::bigint AS other")
    assert [c.name for c in taken] == ["first_column", "second_column"]
    assert [c.name for c in cursor.description] == ["other"]
