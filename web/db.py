"""Engine and per-request session: operations flush, the request commits once (or rolls back)."""

from __future__ import annotations

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


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL, a busy timeout and real SAVEPOINTs."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
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

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # IMMEDIATE takes the write lock up front: two writers queue instead of one failing
            # with "database is locked" when both upgrade a read lock at once. Only a step
            # that is known to read and is ended right after (read_first) begins DEFERRED.
            conn.exec_driver_sql("BEGIN" if _READ_ONLY_BEGIN.get() else "BEGIN IMMEDIATE")

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
    session.commit()  # writes nothing: ends the read so the next BEGIN is IMMEDIATE again
    return result


def init_app(app: Flask) -> None:
    """Attach the engine and session factory to the app."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["changeflow.engine"] = engine
    app.extensions["changeflow.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The session of the current request or command, created on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["changeflow.sessionmaker"]()
    return g.db_session


def _close_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()  # anything not committed by now is rolled back
