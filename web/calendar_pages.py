"""IT's working-day calendar page: the statutory schedule per year and the overrides (DOMAIN §4)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("calendar_pages", __name__)


def init_app(app: Flask) -> None:
    """Register the calendar pages."""
    app.register_blueprint(bp)
