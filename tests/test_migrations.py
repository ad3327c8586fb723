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
