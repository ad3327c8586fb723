"""each title's contract, so a vendor's search is scoped on the title table

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 19:30:00

A search that nothing but its title and the actor's scope selects (IT's, the auditor's, a
vendor's) is read from ``requests_title_search`` alone (``workflow/queries.py::_titles_alone``).
IT's and the auditor's scope is every request; a vendor's is its contracts, which the table did
not hold, so each of a rare word's ~980 matches at 1M was probed in ``requests`` for its
contract (7.3 ms of the statement). The table now carries ``contract_id``, kept by the same
trigger as the title and department, and the scope is written over its columns. Nothing is
indexed on it: the matches come from the trigram index, and the contract is read from the row
the trigram match is rechecked on anyway. SQLite's FTS5 table is left as it is.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _sync_function(columns: list[str]) -> str:
    copied = [*columns, "title"]
    listed = ", ".join(copied)
    values = ", ".join(f"NEW.{c}" for c in copied)
    assignments = ", ".join(f"{c} = NEW.{c}" for c in copied)
    return f"""CREATE OR REPLACE FUNCTION requests_title_search_sync() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO requests_title_search (request_id, {listed})
            VALUES (NEW.id, {values});
        ELSE
            UPDATE requests_title_search SET {assignments} WHERE request_id = NEW.id;
        END IF;
        RETURN NULL;
    END
    $$"""


def _update_trigger(columns: list[str]) -> str:
    watched = ["title", *columns]
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
    return (
        f"CREATE TRIGGER requests_title_search_update AFTER UPDATE OF {', '.join(watched)}"
        f" ON requests FOR EACH ROW WHEN ({changed})"
        " EXECUTE FUNCTION requests_title_search_sync()"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE requests_title_search ADD COLUMN contract_id INTEGER")
    op.execute(
        "UPDATE requests_title_search t SET contract_id = r.contract_id"
        " FROM requests r WHERE r.id = t.request_id"
    )
    op.execute(_sync_function(["department_id", "contract_id"]))
    op.execute("DROP TRIGGER requests_title_search_update ON requests")
    op.execute(_update_trigger(["department_id", "contract_id"]))
    op.execute("ANALYZE requests_title_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER requests_title_search_update ON requests")
    op.execute(_update_trigger(["department_id"]))
    op.execute(_sync_function(["department_id"]))
    op.execute("ALTER TABLE requests_title_search DROP COLUMN contract_id")
