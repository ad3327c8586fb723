"""indexes that keep request lists and title search flat as the table grows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 14:00:00

* ``(kind, state, id)`` replaces ``(kind, state)``: a filtered list is read in id order
  straight from the index and stops after one page, instead of sorting every match.
* Title search (``q``) uses a trigram index: ``pg_trgm`` GIN on PostgreSQL, an FTS5 trigram
  table kept by triggers on SQLite. Both serve ``LIKE '%needle%'`` for needles of three or more
  characters (Chinese included); shorter needles still work, by scanning.

On PostgreSQL ``CREATE EXTENSION pg_trgm`` needs a role allowed to create it (a trusted
extension since PostgreSQL 13: the database owner may). Without it the migration goes on
without the index and says so: search stays correct, only slower.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE requests_title_fts USING fts5("
    "title, content='requests', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER requests_title_fts_insert AFTER INSERT ON requests BEGIN "
    "INSERT INTO requests_title_fts (rowid, title) VALUES (new.id, new.title); END",
    "CREATE TRIGGER requests_title_fts_delete AFTER DELETE ON requests BEGIN "
    "INSERT INTO requests_title_fts (requests_title_fts, rowid, title) "
    "VALUES ('delete', old.id, old.title); END",
    "CREATE TRIGGER requests_title_fts_update AFTER UPDATE OF title ON requests BEGIN "
    "INSERT INTO requests_title_fts (requests_title_fts, rowid, title) "
    "VALUES ('delete', old.id, old.title); "
    "INSERT INTO requests_title_fts (rowid, title) VALUES (new.id, new.title); END",
    "INSERT INTO requests_title_fts (requests_title_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_kind_state")
        batch_op.create_index("ix_requests_kind_state", ["kind", "state", "id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():
                bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError as exc:
            log.warning("pg_trgm unavailable, title search will scan: %s", exc.orig)
            return
        op.execute("CREATE INDEX ix_requests_title_trgm ON requests USING gin (title gin_trgm_ops)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS requests_title_fts_{name}")
        op.execute("DROP TABLE IF EXISTS requests_title_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_requests_title_trgm")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_kind_state")
        batch_op.create_index("ix_requests_kind_state", ["kind", "state"], unique=False)
