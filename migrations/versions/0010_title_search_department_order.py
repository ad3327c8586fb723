"""a department's title matches in id order, from one index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:10:00

A search inside one department (a department user's, or anyone's with a department filter)
found a common word's matches through the ``(department_id, title)`` trigram index of
migrations 0008/0009: ~40 titles at 10,000 requests, ~4,000 at a million, each one a visit to a
heap page before the count could stop at its cap, and the page past the cap then walked the
requests' primary key through every department. ``(department_id, request_id) INCLUDE (title)``
on ``requests_title_search`` lets ``workflow/queries.py::_search_in_id_order`` walk one
department's titles in id order inside the index, filter them there and stop at the count's cap
(1,001 matches among ~6,900 entries at 1M, no heap page read). Transitions do not pay for it:
the table changes only when a title or a department does. SQLite's FTS5 table has no department
and is left as it is.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX requests_title_search_department_request"
        " ON requests_title_search (department_id, request_id) INCLUDE (title)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX requests_title_search_department_request")
