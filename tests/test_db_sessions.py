"""Who is calling is looked up before the request's own transaction takes SQLite's write lock."""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy import event, make_url

from tests.helpers import creation_fields


def _record_transactions(engine) -> list[str]:
    """BEGINs, statements and COMMITs on ``engine`` from now on, in order, as short labels."""
    seen: list[str] = []

    def statement(_conn, _cursor, sql, *_args):
        seen.append(" ".join(sql.split()[:2]).upper())

    def commit(_conn):
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    return seen


def _create_body(world) -> dict:
    return {
        "kind": "requirement",
        "contract_id": world.contract.id,
        "system_id": world.system.id,
        "title": "Lock order",
        "description": "Who is calling is read first.",
        "fields": creation_fields("requirement"),
    }


def test_the_token_is_read_before_the_write_transaction_begins(app, client, world):
    engine = app.extensions["changeflow.engine"]
    seen = _record_transactions(engine)
    response = client.post(
        "/api/v1/requests", json=_create_body(world), headers=world.auth("dept_user")
    )
    assert response.status_code == 201, response.get_json()
    first_write = next(i for i, label in enumerate(seen) if label.startswith("INSERT"))
    if engine.dialect.name == "sqlite":
        # a read-only transaction for the token, ended, then the request's own with the lock
        assert seen[0] == "BEGIN", seen
        assert seen[1].startswith("SELECT"), seen
        assert seen[2] == "COMMIT", seen
        assert seen[3] == "BEGIN IMMEDIATE", seen
        assert "BEGIN IMMEDIATE" not in seen[:3]
        assert seen.index("BEGIN IMMEDIATE") < first_write
    else:
        # PostgreSQL has no database-wide lock to spare: one transaction, committed once
        assert seen[:first_write].count("COMMIT") == 0, seen
    assert seen.count("COMMIT") == (2 if engine.dialect.name == "sqlite" else 1), seen


def test_a_caller_is_recognised_while_another_writer_holds_sqlites_lock(app, client, world):
    engine = app.extensions["changeflow.engine"]
    if engine.dialect.name != "sqlite":
        # PostgreSQL locks rows, never the database: nothing to wait for there
        assert engine.dialect.name == "postgresql"
        return
    holder = sqlite3.connect(make_url(app.config["DATABASE_URL"]).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another worker in the middle of a write
    answers: list[int] = []
    try:
        caller = threading.Thread(
            target=lambda: answers.append(
                client.get("/api/v1/me", headers=world.auth("it_staff")).status_code
            )
        )
        caller.start()
        # /me only reads; before read_first its token lookup queued for the write lock
        caller.join(timeout=60)
        finished = not caller.is_alive()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    caller.join()
    assert finished and answers == [200], answers
