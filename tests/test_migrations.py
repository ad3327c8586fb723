"""Alembic migrations and the mapped models describe the same schema."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base
from models.requests import is_search_helper


def _mapped(obj, name, type_, reflected, compare_to) -> bool:
    return not is_search_helper(name)


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _mapped}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_every_table_is_migrated(engine):
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_history_fields_are_rewritten_as_canonical_text():
    """Migration 0007 rewrites each entry's fields in canonical form (JSONB and json.dumps add
    spaces and reorder keys), so the database can re-hash entries byte for byte."""
    import importlib
    import json

    from sqlalchemy import create_engine, text

    from workflow.canonical import canonical_json

    migration = importlib.import_module("migrations.versions.0007_history_fields_canonical_text")
    stored = [
        '{"b": 1, "a": {"y": [1, 2], "x": "随访"}}',
        "{}",
        '{"a":1}',
        '{"t": "\\u968f"}',
    ]
    engine = create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE history_entries (id INTEGER PRIMARY KEY, fields TEXT)"))
        for text_ in stored:
            conn.execute(text("INSERT INTO history_entries (fields) VALUES (:f)"), {"f": text_})
        migration._rewrite_as_canonical(conn)
        rewritten = list(conn.execute(text("SELECT fields FROM history_entries ORDER BY id")))
    assert [r[0] for r in rewritten] == [canonical_json(json.loads(t)).decode() for t in stored]
    assert rewritten[0][0] == '{"a":{"x":"随访","y":[1,2]},"b":1}'
    assert rewritten[3][0] == '{"t":"随"}'
