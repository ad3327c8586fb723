"""Who is calling is looked up before the request's own transaction takes SQLite's write lock;
SQLite's writers wait their turn on a queue file rather than by polling."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading

from sqlalchemy import event, make_url

from tests.helpers import creation_fields
from web import db as db_module
from web.db import QueuedWriterConnection, make_engine


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


# ---------------------------------------------------------------- SQLite's writer queue


def _turn_is_taken(database) -> bool:
    """Whether some connection holds the writers' turn on ``database`` (probed, never waiting)."""
    probe = os.open(f"{database}-writers", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False
    finally:
        os.close(probe)


def test_a_sqlite_writer_holds_the_queue_from_begin_to_commit_or_rollback(tmp_path):
    database = tmp_path / "queue.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert _turn_is_taken(database)
        conn.commit()
        assert not _turn_is_taken(database)
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert _turn_is_taken(database)
        conn.rollback()
        assert not _turn_is_taken(database)
    # A read-only step (read_first) begins DEFERRED and leaves the queue to the writers.
    with engine.connect() as conn:
        token = db_module._READ_ONLY_BEGIN.set(True)
        try:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            assert not _turn_is_taken(database)
        finally:
            db_module._READ_ONLY_BEGIN.reset(token)
    engine.dispose()


def test_a_second_sqlite_writer_waits_its_turn_and_writes_after_the_first(tmp_path):
    database = tmp_path / "queue.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    first = engine.connect()
    first.exec_driver_sql("INSERT INTO t VALUES (1)")
    queued = threading.Event()

    def second_writer():
        with engine.connect() as conn:
            queued.set()
            conn.exec_driver_sql("INSERT INTO t SELECT count(*) + 1 FROM t")
            conn.commit()

    writer = threading.Thread(target=second_writer)
    writer.start()
    queued.wait()
    writer.join(timeout=0.2)  # it cannot finish: the first writer holds the turn
    still_waiting = writer.is_alive()
    first.commit()
    first.close()
    writer.join()
    assert still_waiting
    with engine.connect() as conn:
        # The second saw the first's committed row: it wrote strictly after it.
        assert [r[0] for r in conn.exec_driver_sql("SELECT x FROM t ORDER BY rowid")] == [1, 2]
    assert not _turn_is_taken(database)
    engine.dispose()


def test_a_thread_holding_the_turn_never_waits_for_itself(tmp_path):
    database = tmp_path / "queue.sqlite3"
    one = sqlite3.connect(str(database), factory=QueuedWriterConnection, isolation_level=None)
    other = sqlite3.connect(str(database), factory=QueuedWriterConnection, isolation_level=None)
    try:
        one.join_queue()
        assert one.queued and _turn_is_taken(database)
        # A second connection of the same thread would wait for ever on the file lock; it is
        # left to SQLite's busy timeout instead, as before the queue existed.
        other.join_queue()
        assert not other.queued
        one.commit()  # nothing to commit: still gives the turn back
        assert not _turn_is_taken(database)
        other.join_queue()
        assert other.queued
    finally:
        other.close()
        one.close()
    assert not _turn_is_taken(database)


def test_an_in_memory_sqlite_database_has_no_queue_file(tmp_path):
    engine = make_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert conn.connection.dbapi_connection.queue_fd is None
    engine.dispose()
