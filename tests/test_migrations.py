"""Alembic migrations and the mapped models describe the same schema."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from models import Base


def test_migrations_match_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_every_table_is_migrated(engine):
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
