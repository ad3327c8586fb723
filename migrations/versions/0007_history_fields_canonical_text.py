"""history entries keep their fields as canonical JSON text, byte for byte what each entry's
hash covers, so that audit verify can re-hash every entry inside the database

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from workflow.canonical import canonical_json

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 5000
_history = sa.table(
    "history_entries", sa.column("id", sa.BigInteger()), sa.column("fields", sa.Text())
)


def _rewrite_as_canonical(bind) -> None:
    """Rewrite every entry's fields text in canonical form (JSONB and json.dumps add spaces)."""
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_history.c.id, _history.c.fields)
            .where(_history.c.id > last)
            .order_by(_history.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        changed = []
        for entry_id, text in rows:
            canonical = canonical_json(json.loads(text) if text else {}).decode()
            if canonical != text:
                changed.append({"entry_id": entry_id, "canonical": canonical})
        if changed:
            bind.execute(
                _history.update()
                .where(_history.c.id == sa.bindparam("entry_id"))
                .values(fields=sa.bindparam("canonical")),
                changed,
            )
        last = rows[-1][0]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.alter_column(
            "history_entries",
            "fields",
            type_=sa.Text(),
            existing_type=postgresql.JSONB(astext_type=sa.Text()),
            existing_nullable=False,
            postgresql_using="fields::text",
        )
    else:
        with op.batch_alter_table("history_entries") as batch:
            batch.alter_column(
                "fields", type_=sa.Text(), existing_type=sa.JSON(), existing_nullable=False
            )
    _rewrite_as_canonical(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "history_entries",
            "fields",
            type_=postgresql.JSONB(astext_type=sa.Text()),
            existing_type=sa.Text(),
            existing_nullable=False,
            postgresql_using="fields::jsonb",
        )
    else:
        with op.batch_alter_table("history_entries") as batch:
            batch.alter_column(
                "fields", type_=sa.JSON(), existing_type=sa.Text(), existing_nullable=False
            )
