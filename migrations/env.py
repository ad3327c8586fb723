"""Alembic environment: the URL comes from the caller, the metadata from ``models``."""

from __future__ import annotations

import os

from alembic import context

from models import Base
from models.requests import is_search_helper


def _mapped(obj, name, type_, reflected, compare_to) -> bool:
    # Title search helpers (migration 0005) are not mapped; autogenerate must not drop them.
    return not is_search_helper(name)


config = context.config
url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")


def run_migrations_online() -> None:
    from web.db import make_engine

    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(
            connection=connectable, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=True,
            compare_type=True,
            include_object=_mapped,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
