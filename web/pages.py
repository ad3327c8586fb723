"""The browser side for now: a landing page that shows the workflows and how to use the API.

The full UI (sign-in, dashboards, request pages) is built on top of this in its own issue.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    """Landing page: workflows with their diagrams, and where the API is."""
    catalog = current_app.extensions["changeflow.catalog"]
    return render_template(
        "index.html",
        definitions=list(catalog.current.values()),
        demo=current_app.config["DEMO_MODE"],
    )


@bp.get("/healthz")
def healthz():
    """Liveness probe for load balancers."""
    return {"status": "ok"}
