"""The JSON API under /api/v1 (SPEC §4)."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.exc import DBAPIError, IntegrityError

from web.api import errors
from web.api.views import bp


def init_app(app: Flask) -> None:
    """Register the blueprint, the error shape and the commit-once policy."""
    app.register_blueprint(bp)
    errors.register(app)

    @app.after_request
    def _commit(response):
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
            app.logger.warning("commit refused by the database", exc_info=True)
            return errors.error_response(
                409,
                "conflict",
                "The database refused the change (a concurrent update?). Reload and try again.",
            )
        return response
