"""The start page: a dashboard by role for people signed in, the workflows for everyone else."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from models import utcnow
from web.auth import current_actor, works_on_requests
from web.db import get_session
from workflow import dashboard, queries
from workflow.localtime import hospital_today
from workflow.quota import quota_overview
from workflow.systems import stale_systems

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    """Dashboard for the signed-in user's roles; the landing page otherwise."""
    catalog = current_app.extensions["changeflow.catalog"]
    actor = current_actor()
    if actor is None:
        return render_template(
            "index.html",
            definitions=list(catalog.current.values()),
            demo=current_app.config["DEMO_MODE"],
        )
    session = get_session()
    roles = actor.role_names()
    today = hospital_today()
    vendor = bool(roles & {"vendor_engineer", "vendor_manager"})
    return render_template(
        "dashboard.html",
        roles=roles,
        catalog=catalog,
        steps=dashboard.awaiting_steps(session, actor, catalog),
        awaiting=dashboard.awaiting_me(session, actor, catalog),
        overdue=dashboard.overdue(session, actor, catalog, today),
        faults=dashboard.open_faults(session, actor, catalog, utcnow()),
        assigned=dashboard.assigned_to(session, actor, catalog) if vendor else [],
        recent=dashboard.recent(session, actor),
        quotas=[
            quota_overview(session, c, today) for c in queries.visible_contracts(session, actor)
        ]
        if works_on_requests()
        else [],
        # Z3: IT and the vendor see which systems run a version older than the contract allows.
        stale=stale_systems(queries.visible_systems(session, actor), today)
        if roles & {"it_staff", "it_signer", "vendor_engineer", "vendor_manager"}
        else [],
        today=today,
    )


@bp.get("/healthz")
def healthz():
    """Liveness probe for load balancers."""
    return {"status": "ok"}
