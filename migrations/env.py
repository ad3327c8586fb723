"""Alembic environment: the URL comes from the caller, the metadata from ``models``."""

from __future__ import annotations

import os

from alembic import context

from models import Base

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
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
