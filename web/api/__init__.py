"""The JSON API under /api/v1 (SPEC §4)."""

from __future__ import annotations

from flask import Flask

from web.api import errors
from web.api.commit import commit_request
from web.api.views import bp


def init_app(app: Flask) -> None:
    """Register the blueprint, the error shape and the commit-once policy."""
    app.register_blueprint(bp)
    errors.register(app)
    app.after_request(commit_request)
