"""The API's commit-once policy: operations flush, the request commits (or rolls back) here."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, g
from sqlalchemy.exc import DBAPIError, IntegrityError

from web.api.errors import error_response
from web.db import read_first


def render_after_commit(render: Callable[[], object], status: int = 200):
    """A JSON answer with ``status`` whose body ``render`` builds once the change is committed.

    On SQLite the write lock is held from the first write's BEGIN IMMEDIATE to COMMIT, and every
    other writer waits for it: showing the result (service-level clocks, the events now
    available, serialising) took longer than the change itself, so it runs after the COMMIT, in
    a read of its own (``read_first``), on what this request wrote. Raises nothing itself; what
    ``render`` raises after the commit answers 500 with the change kept.
    """
    g.render_after_commit = render
    return current_app.response_class(status=status, mimetype="application/json")


def commit_request(response):
    """Commit the request's session after a success, roll it back after an error; a commit the
    database refuses answers 409 in the SPEC §4 shape. Then renders a body left for after it."""
    render = g.pop("render_after_commit", None)
    session = g.get("db_session")
    if session is None:
        return response
    if response.status_code >= 400:
        session.rollback()
        return response
    try:
        session.commit()
    except (IntegrityError, DBAPIError):
        session.rollback()
        current_app.logger.warning("commit refused by the database", exc_info=True)
        return error_response(
            409,
            "conflict",
            "The database refused the change (a concurrent update?). Reload and try again.",
        )
    if render is not None:
        response.set_data(current_app.json.dumps(read_first(session, render)) + "\n")
    return response
