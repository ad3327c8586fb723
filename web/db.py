"""Engine and per-request session: operations flush, the request commits once (or rolls back)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# Set while a read-only step runs on SQLite: its transaction begins DEFERRED, taking no lock.
_READ_ONLY_BEGIN: ContextVar[bool] = ContextVar("sqlite_read_only_begin", default=False)


class QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection that queues for the write lock on a lock file beside the database.

    SQLite's own busy handler makes a writer that finds the lock taken sleep 1, 2, 5, 10 … ms
    and try again, so with several writers the lock lies idle between holders while they
    sleep. Before ``BEGIN IMMEDIATE`` each connection takes an exclusive ``flock`` on
    ``<database>-writers``; the kernel wakes a waiter the moment the holder's COMMIT or
    ROLLBACK releases it. SQLite's own locking still decides what is safe: the queue only
    orders the writers of this application (a tool that ignores it meets the busy timeout).
    An in-memory database has no file and no queue.
    """

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._queue_fd: int | None = None
        self._queued = False
        path = os.fspath(database) if isinstance(database, str | os.PathLike) else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            self._queue_fd = os.open(f"{path}-writers", os.O_RDWR | os.O_CREAT, 0o644)

    def join_writer_queue(self) -> None:
        """Wait until this application's other writers have committed or rolled back; then
        this connection holds the queue until its own transaction ends."""
        if self._queue_fd is not None and not self._queued:
            fcntl.flock(self._queue_fd, fcntl.LOCK_EX)  # releases the GIL while it waits
            self._queued = True

    def commit(self) -> None:
        """COMMIT, then let the next writer in; raises what sqlite3 raises (still queued)."""
        super().commit()
        self.leave_writer_queue()

    def rollback(self) -> None:
        """ROLLBACK, then let the next writer in, whatever the rollback raised."""
        try:
            super().rollback()
        finally:
            self.leave_writer_queue()

    def close(self) -> None:
        """Close the connection and its lock file, which lets the next writer in."""
        try:
            super().close()
        finally:
            if self._queue_fd is not None:
                os.close(self._queue_fd)  # closing drops the flock too
                self._queue_fd, self._queued = None, False

    def leave_writer_queue(self) -> None:
        """Let the next writer in, unless a transaction is still open on this connection."""
        if self._queued and not self.in_transaction:
            fcntl.flock(self._queue_fd, fcntl.LOCK_UN)
            self._queued = False


def _begin_sqlite(connection) -> None:
    """BEGIN IMMEDIATE after queueing for the write lock, or a DEFERRED BEGIN for a step known
    to only read (read_first); what sqlite3 raises leaves the queue and reaches the caller
    wrapped by SQLAlchemy as a DBAPIError.

    IMMEDIATE takes the write lock up front: two writers queue instead of one failing with
    "database is locked" when both upgrade a read lock at once.
    """
    queued = connection.driver_connection
    if _READ_ONLY_BEGIN.get():
        queued.execute("BEGIN")
        return
    queued.join_writer_queue()
    try:
        queued.execute("BEGIN IMMEDIATE")
    except BaseException:
        queued.leave_writer_queue()
        raise


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL, a busy timeout and real SAVEPOINTs."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": QueuedWriterConnection,
            },
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy issue BEGIN.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        # BEGIN is the dialect's to issue, not a "begin" event's: any connection event makes
        # SQLAlchemy walk its event lists around every statement executed (see BENCHMARKS.md).
        engine.dialect.do_begin = _begin_sqlite
        return engine
    if make_url(url).get_driver_name() == "psycopg":
        from web.pg_cursor import DeferredDescriptionCursor

        connect_args = {"cursor_factory": DeferredDescriptionCursor}
        connect_args.update(kwargs.pop("connect_args", {}))
        kwargs["connect_args"] = connect_args
    return create_engine(url, pool_pre_ping=True, **kwargs)


def read_first(session: Session, read: Callable[[], T]) -> T:
    """Run ``read`` (queries only) as a transaction of its own before the request's, on SQLite;
    elsewhere, or once the session's transaction has begun, simply run it. Returns its result.

    SQLite has one writer, and every transaction takes the write lock at BEGIN: who is calling
    (the token's user and roles) would otherwise be looked up while holding it, so that no other
    worker could write meanwhile. Raises whatever ``read`` raises, having ended its transaction.
    """
    if session.in_transaction() or session.get_bind().dialect.name != "sqlite":
        return read()
    marker = _READ_ONLY_BEGIN.set(True)
    try:
        result = read()
    except BaseException:
        session.rollback()
        raise
    finally:
        _READ_ONLY_BEGIN.reset(marker)
    if session.in_transaction():
        session.commit()  # writes nothing: ends the read so the next BEGIN is IMMEDIATE again
    return result


def init_app(app: Flask) -> None:
    """Attach the engine and session factory to the app."""
    from web import token_users

    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["changeflow.engine"] = engine
    token_users.init_app(app, engine)
    app.extensions["changeflow.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The session of the current request or command, created on first use."""
    found = g._get_current_object()  # one look through the proxy: a call asks several times
    session = found.get("db_session")
    if session is None:
        session = found.db_session = current_app.extensions["changeflow.sessionmaker"]()
    return session


def _close_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()  # anything not committed by now is rolled back
