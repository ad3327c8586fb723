"""Consoles of the three administrators, kept apart (三权分立, SPEC §5).

``sys_admin`` sees users, contracts and systems; ``sec_admin`` sees roles and locks and locks or
unlocks accounts; ``auditor`` reads the history and verifies its hash chains. None of them sees
another's console, and none of them acts on requests.
"""

from __future__ import annotations

import math
from datetime import date
from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import login_required
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models import Contract, Department, HistoryEntry, Request, SecurityEvent, System, User, Vendor
from web.auth import current_actor
from web.db import get_session
from web.i18n import translate
from workflow import accounts, history
from workflow.calendar_overrides import CALENDAR_OVERRIDE_REMOVED, CALENDAR_OVERRIDE_SET
from workflow.errors import WorkflowError
from workflow.security_log import ATTACHMENT_INTEGRITY_FAILED
from workflow.systems import register_release, register_system, system_status

bp = Blueprint("admin", __name__)
PER_PAGE = 50
SECURITY_EVENTS_SHOWN = 100
SECURITY_EVENT_LABELS = {
    ATTACHMENT_INTEGRITY_FAILED: lazy_gettext("Stored document failed its SHA-256 check"),
    CALENDAR_OVERRIDE_SET: lazy_gettext("Working-day calendar override set"),
    CALENDAR_OVERRIDE_REMOVED: lazy_gettext("Working-day calendar override removed"),
}


def require_role(*roles: str):
    """Let the view run only for holders of one of ``roles``; 403 for everyone else."""

    def decorate(view):
        @wraps(view)
        @login_required
        def wrapper(*args, **kwargs):
            actor = current_actor()
            if actor is None or not actor.role_names() & set(roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorate


@bp.get("/admin/users")
@require_role("sys_admin", "sec_admin")
def users():
    """Every account with its roles, scope and lock state."""
    session = get_session()
    rows = session.scalars(select(User).options(selectinload(User.roles)).order_by(User.username))
    return render_template(
        "admin/users.html",
        users=list(rows),
        can_lock="sec_admin" in current_actor().role_names(),
        departments={d.id: d for d in session.scalars(select(Department))},
        vendors={v.id: v for v in session.scalars(select(Vendor))},
        contracts={c.id: c for c in session.scalars(select(Contract))},
    )


@bp.post("/admin/users/<int(max=2147483647):user_id>/lock")
@require_role("sec_admin")
def lock(user_id: int):
    """Lock (``locked=1``) or unlock (``locked=0``) an account."""
    session = get_session()
    user = session.get(User, user_id)
    if user is None:
        abort(404)
    locked = request.form.get("locked") == "1"
    try:
        accounts.set_locked(session, current_actor(), user, locked)
    except WorkflowError as exc:
        session.rollback()
        flash(gettext(exc.message), "error")
    else:
        flash(gettext("Account locked.") if locked else gettext("Account unlocked."))
    return redirect(url_for("admin.users"))


@bp.get("/admin/contracts")
@require_role("sys_admin")
def contracts():
    """Contracts with their vendor, term, policy and systems."""
    session = get_session()
    return render_template(
        "admin/contracts.html",
        contracts=list(session.scalars(select(Contract).order_by(Contract.code))),
        systems=[
            system_status(system)
            for system in session.scalars(
                select(System).options(selectinload(System.releases)).order_by(System.code)
            )
        ],
    )


@bp.post("/admin/systems")
@require_role("sys_admin")
def system_add():
    """Register a system under a contract (the request commits)."""
    session = get_session()
    contract = session.get(Contract, request.form.get("contract_id", type=int) or 0)
    if contract is None:
        flash(gettext("Choose a contract."), "error")
        return redirect(url_for("admin.contracts"))
    form = request.form
    return _registry_write(
        lambda: register_system(
            session,
            current_actor(),
            contract,
            form.get("code", ""),
            form.get("name", ""),
            form.get("current_version", ""),
        ),
        gettext("System registered."),
    )


@bp.post("/admin/systems/<int(max=2147483647):system_id>/releases")
@require_role("sys_admin")
def release_add(system_id: int):
    """Register a release of a system (Z3 compares upgrades with the newest one)."""
    session = get_session()
    system = session.get(System, system_id)
    if system is None:
        abort(404)
    form = request.form
    try:
        released_on = date.fromisoformat(form.get("released_on", ""))
    except ValueError:
        released_on = None
    return _registry_write(
        lambda: register_release(
            session,
            current_actor(),
            system,
            form.get("version", ""),
            released_on,
            form.get("notes", ""),
        ),
        gettext("Release registered."),
    )


def _registry_write(write, done: str):
    """Run one registry operation: flash what it refused (rolled back) or ``done``; back to
    the systems table."""
    try:
        write()
    except WorkflowError as exc:
        get_session().rollback()
        fields = (exc.details or {}).get("fields") or {}
        parts = [f"{name}: {gettext(m)}" for name, messages in fields.items() for m in messages]
        flash(gettext(exc.message) + (" " + "; ".join(parts) if parts else ""), "error")
    else:
        flash(done)
    return redirect(url_for("admin.contracts") + "#systems")


@bp.get("/audit")
@require_role("auditor")
def audit():
    """The history of every request, newest first, the chains' checkpoint digest and the
    latest security events (documents that failed their SHA-256 check, …)."""
    session = get_session()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    total = session.scalar(select(func.count()).select_from(HistoryEntry)) or 0
    entries = session.scalars(
        select(HistoryEntry)
        .order_by(HistoryEntry.id.desc())
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    titles = dict(
        session.execute(
            select(Request.id, Request.title).where(Request.id.in_({e.request_id for e in entries}))
        ).all()
    )
    digest, chains = history.checkpoint(session)
    security_events = session.scalars(
        select(SecurityEvent).order_by(SecurityEvent.id.desc()).limit(SECURITY_EVENTS_SHOWN)
    ).all()
    return render_template(
        "admin/audit.html",
        entries=entries,
        titles=titles,
        page=page,
        pages=math.ceil(total / PER_PAGE),
        total=total,
        digest=digest,
        chains=chains,
        security_events=security_events,
        security_event_label=lambda kind: str(SECURITY_EVENT_LABELS.get(kind, kind)),
    )


@bp.post("/audit/verify")
@require_role("auditor")
def audit_verify():
    """Re-check every hash chain now and say whether any was altered."""
    # A separate session: the walk expunges as it goes and must not detach the signed-in user.
    # The request's own transaction ends first (it wrote nothing): on SQLite it holds the write
    # lock (BEGIN IMMEDIATE) and the walk's connection would wait for it forever.
    session = get_session()
    session.commit()
    with Session(bind=session.get_bind()) as walk:
        requests, entries, problem = history.verify_all(walk)
    if problem is None:
        flash(
            gettext(
                "All %(requests)s chains verified (%(entries)s entries): nothing was altered.",
                requests=requests,
                entries=entries,
            )
        )
    else:
        flash(
            gettext(
                "Chain of request #%(request)s is broken at entry %(seq)s: %(reason)s",
                request=problem.request_id,
                seq=problem.seq,
                reason=translate(problem.problem),
            ),
            "error",
        )
    return redirect(url_for("admin.audit"))
