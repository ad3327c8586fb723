"""schema change revisions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:05:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("database_name", sa.String(length=128), nullable=False),
        sa.Column("dialect", sa.String(length=16), nullable=False),
        sa.Column("change_sql", sa.Text(), nullable=False),
        sa.Column("rollback_sql", sa.Text(), nullable=False),
        sa.Column("change_sha256", sa.String(length=64), nullable=False),
        sa.Column("rollback_sha256", sa.String(length=64), nullable=False),
        sa.Column("risk", sa.String(length=10), nullable=False),
        sa.Column(
            "analysis",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_schema_revisions_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_schema_revisions_request_id_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schema_revisions")),
        sa.UniqueConstraint(
            "request_id", "number", name=op.f("uq_schema_revisions_request_id_number")
        ),
    )
    with op.batch_alter_table("schema_revisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schema_revisions_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("schema_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schema_revisions_request_id"))
    op.drop_table("schema_revisions")
