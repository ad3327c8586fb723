"""title search moves out of the requests table on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:30:00

Every transition updates its request's row. ``state`` is indexed, so PostgreSQL cannot make the
update a heap-only one: each of the row's indexes gets a new entry, and the two trigram GIN
indexes of migrations 0005 and 0008 got one per trigram of the title (about 60 for a Chinese
title), touching pages all over both indexes. Measured on the 10,000-request benchmark database,
one transition's UPDATE cost the PostgreSQL backend 500 us of CPU and wrote 16.8 kB of WAL; without
the two indexes, 175 us and 1.4 kB.

A title is set when a request is raised and hardly ever changes, so the trigram indexes now live
on their own table, ``requests_title_search (request_id, department_id, title)``, which
triggers keep equal to the requests' titles and departments (an update only fires them when
one of the two actually changes). SQLite keeps its FTS5 table of migration 0005, kept by
triggers the same way.
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

CREATE = [
    "CREATE TABLE requests_title_search ("
    " request_id INTEGER PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,"
    " department_id INTEGER,"
    " title VARCHAR(300) NOT NULL)",
    "INSERT INTO requests_title_search (request_id, department_id, title)"
    " SELECT id, department_id, title FROM requests",
    "ANALYZE requests_title_search",
    """CREATE FUNCTION requests_title_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO requests_title_search (request_id, department_id, title)
            VALUES (NEW.id, NEW.department_id, NEW.title);
        ELSE
            UPDATE requests_title_search
               SET department_id = NEW.department_id, title = NEW.title
             WHERE request_id = NEW.id;
        END IF;
        RETURN NULL;
    END
    $$""",
    "CREATE TRIGGER requests_title_search_insert AFTER INSERT ON requests"
    " FOR EACH ROW EXECUTE FUNCTION requests_title_search_sync()",
    "CREATE TRIGGER requests_title_search_update AFTER UPDATE OF title, department_id"
    " ON requests FOR EACH ROW"
    " WHEN (OLD.title IS DISTINCT FROM NEW.title"
    " OR OLD.department_id IS DISTINCT FROM NEW.department_id)"
    " EXECUTE FUNCTION requests_title_search_sync()",
]


def _has_extension(bind, name: str) -> bool:
    return bool(
        bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = :n"), {"n": name}).scalar()
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for statement in CREATE:
        op.execute(statement)
    op.execute("DROP INDEX IF EXISTS ix_requests_title_trgm_department")
    op.execute("DROP INDEX IF EXISTS ix_requests_title_trgm")
    if not _has_extension(bind, "pg_trgm"):
        log.warning("pg_trgm unavailable, title search will scan requests_title_search")
        return
    op.execute(
        "CREATE INDEX requests_title_search_trgm ON requests_title_search"
        " USING gin (title gin_trgm_ops) WITH (fastupdate = off)"
    )
    if not _has_extension(bind, "btree_gin"):
        log.warning("btree_gin unavailable, a department's title search stays slower")
        return
    op.execute(
        "CREATE INDEX requests_title_search_trgm_department ON requests_title_search"
        " USING gin (department_id, title gin_trgm_ops) WITH (fastupdate = off)"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER requests_title_search_update ON requests")
    op.execute("DROP TRIGGER requests_title_search_insert ON requests")
    op.execute("DROP FUNCTION requests_title_search_sync()")
    op.execute("DROP TABLE requests_title_search")
    if _has_extension(bind, "pg_trgm"):
        op.execute(
            "CREATE INDEX ix_requests_title_trgm ON requests"
            " USING gin (title gin_trgm_ops) WITH (fastupdate = off)"
        )
    if _has_extension(bind, "btree_gin"):
        op.execute(
            "CREATE INDEX ix_requests_title_trgm_department ON requests"
            " USING gin (department_id, title gin_trgm_ops) WITH (fastupdate = off)"
        )
