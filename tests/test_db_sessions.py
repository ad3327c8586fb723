"""Who is calling is looked up before the request's own transaction takes SQLite's write lock."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

from sqlalchemy import event, make_url, text
from sqlalchemy.orm import Session

from tests.helpers import creation_fields
from web.db import QueuedWriterConnection, read_first


def _record_transactions(engine) -> list[str]:
    """BEGINs, statements and COMMITs on ``engine`` from now on, in order, as short labels.

    On SQLite they are what SQLite itself runs (its trace callback): web/db.py issues BEGIN on
    the driver's connection, below SQLAlchemy's statement events."""
    seen: list[str] = []

    def label(sql: str) -> None:
        seen.append(" ".join(sql.split()[:2]).upper())

    if engine.dialect.name == "sqlite":

        def trace(dbapi_connection, _record, _proxy):
            dbapi_connection.set_trace_callback(label)

        engine.dispose()  # connections made from here on are traced from their checkout
        event.listen(engine, "checkout", trace)
        return seen

    def commit(_conn):
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: label(sql))
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
        # the answer is read after the write's COMMIT, without the lock (web/api/commit.py)
        written = seen.index("COMMIT", first_write)
        answer = seen[written + 1 :]
        assert "BEGIN IMMEDIATE" not in answer, seen
        assert not any(label.startswith(("INSERT", "UPDATE", "DELETE")) for label in answer)
        assert answer in ([], ["BEGIN", *answer[1:-1], "COMMIT"]), seen
        assert seen.count("COMMIT") == 2 + bool(answer), seen
    else:
        # PostgreSQL has no database-wide lock to spare: one transaction, committed once
        assert seen[:first_write].count("COMMIT") == 0, seen
        assert seen.count("COMMIT") == 1, seen


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


def _queue_is_free(database: str) -> bool:
    """Whether another process could join the writer queue of ``database`` right now."""
    fd = os.open(f"{database}-writers", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # and with it the lock, if taken
    return True


def test_sqlite_writers_hold_the_queue_exactly_while_their_transaction_is_open(app, world):
    engine = app.extensions["changeflow.engine"]
    if engine.dialect.name != "sqlite":
        assert engine.dialect.name == "postgresql"  # PostgreSQL's writers need no queue
        return
    database = make_url(app.config["DATABASE_URL"]).database
    session = app.extensions["changeflow.sessionmaker"]()
    try:
        assert read_first(session, lambda: session.scalar(text("SELECT count(*) FROM users")))
        assert _queue_is_free(database)  # a read takes no place in the queue
        session.execute(text("UPDATE users SET display_name = display_name"))
        assert not _queue_is_free(database)
        session.commit()
        assert _queue_is_free(database)
        session.execute(text("UPDATE users SET display_name = display_name"))
        assert not _queue_is_free(database)
        session.rollback()
        assert _queue_is_free(database)
    finally:
        session.close()
    assert _queue_is_free(database)


def test_a_queued_writer_goes_on_when_the_holder_commits(app, world):
    engine = app.extensions["changeflow.engine"]
    if engine.dialect.name != "sqlite":
        assert engine.dialect.name == "postgresql"
        return
    database = make_url(app.config["DATABASE_URL"]).database
    holder = sqlite3.connect(database, isolation_level=None, factory=QueuedWriterConnection)
    holder.join_writer_queue()
    first = world.user("dept_user").id
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(f"UPDATE users SET display_name = display_name || '-held' WHERE id = {first}")
    seen: list[str] = []

    def write():
        with Session(engine) as session:
            appended = "display_name = display_name || '-next'"
            session.execute(text(f"UPDATE users SET {appended} WHERE id = {first}"))
            session.commit()
            seen.append(session.scalar(text(f"SELECT display_name FROM users WHERE id = {first}")))

    writer = threading.Thread(target=write)
    try:
        writer.start()
        writer.join(timeout=0.5)
        waited = writer.is_alive()  # it must still be queued behind the open transaction
        holder.commit()
        writer.join(timeout=60)
    finally:
        holder.close()
    assert waited and not writer.is_alive()
    assert len(seen) == 1 and seen[0].endswith("-held-next"), seen


def test_an_in_memory_database_has_no_queue():
    connection = sqlite3.connect(":memory:", isolation_level=None, factory=QueuedWriterConnection)
    try:
        connection.join_writer_queue()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (0,)
    finally:
        connection.close()
