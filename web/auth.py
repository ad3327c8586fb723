"""Who is calling: Flask-Login sessions for browsers, bearer tokens for scripts."""

from __future__ import annotations

import time

from flask import Flask, current_app, flash, redirect, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import LoginManager, logout_user
from flask_wtf.csrf import CSRFProtect

from models import User
from models.people import ADMIN_ROLES
from web.db import get_session, read_first
from workflow.accounts import check_password
from workflow.errors import Forbidden

login_manager = LoginManager()
csrf = CSRFProtect()


class Principal:
    """Adapter giving a User row what Flask-Login expects, without models importing Flask."""

    def __init__(self, user: User):
        self.user = user

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return bool(self.user.is_active and self.user.locked_at is None)

    def get_id(self) -> str:
        return str(self.user.id)


@login_manager.user_loader
def _load_from_session(user_id: str):
    try:
        key = int(user_id)
    except (TypeError, ValueError):
        return None
    session = get_session()
    user = read_first(session, lambda: session.get(User, key))
    # A locked or deactivated account loses its open sessions at once: anonymous from here on.
    if user is None or not user.is_active or user.locked_at is not None:
        return None
    return Principal(user)


@login_manager.request_loader
def _load_from_bearer(req):
    header = req.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    session = get_session()
    cache = current_app.extensions["changeflow.token_users"]
    user = cache.user(session, raw.strip(), lambda lookup: read_first(session, lookup))
    return Principal(user) if user is not None else None


def current_actor() -> User | None:
    """The signed-in User row, or None."""
    from flask_login import current_user

    # One look through the proxy instead of one per attribute: the API asks several times a call.
    principal = current_user._get_current_object()
    if principal is not None and principal.is_authenticated and principal.is_active:
        return principal.user
    return None


def has_role(*names: str) -> bool:
    """Whether the signed-in user holds any of the named roles (whatever the scope)."""
    actor = current_actor()
    return bool(actor is not None and actor.role_names() & set(names))


def works_on_requests() -> bool:
    """Whether the signed-in user holds a role beyond the three administrators'."""
    actor = current_actor()
    return bool(actor is not None and actor.role_names() - set(ADMIN_ROLES))


def reads_requests() -> bool:
    """Whether the signed-in user may read requests: anyone but the system and security
    administrators, who manage accounts and contracts, never requests (三权分立)."""
    actor = current_actor()
    return bool(actor is not None and actor.role_names() - {"sys_admin", "sec_admin"})


def ensure_reads_requests() -> None:
    """Abort with 403 unless the signed-in user may read requests."""
    from flask import abort

    if not reads_requests():
        abort(403)


# A signature in the browser needs the password typed again within this many seconds.
REAUTH_SECONDS = 300


def recently_reauthenticated() -> bool:
    """Whether the signed-in user typed the password again in the last five minutes."""
    at = session.get("reauth_at")
    return isinstance(at, (int, float)) and 0 <= time.time() - at <= REAUTH_SECONDS


def ensure_reauthenticated(event_def, password: str | None) -> None:
    """A step declared ``reauthenticate`` needs, in a browser session, the password typed again
    within five minutes (scripts with a bearer token are exempt); raises Forbidden."""
    if not getattr(event_def, "reauthenticate", False) or request.headers.get("Authorization"):
        return
    if recently_reauthenticated():
        return
    actor = current_actor()
    if actor is not None and password:
        if check_password(actor, password, demo_mode=current_app.config.get("DEMO_MODE", False)):
            session["reauth_at"] = time.time()
            return
        raise Forbidden("The password is wrong.", {"reauthenticate": True})
    raise Forbidden(
        "Type your password again to do this step (it counts for five minutes).",
        {"reauthenticate": True},
    )


def init_app(app: Flask) -> None:
    """Set up Flask-Login, CSRF and the idle timeout; API calls answer 401 JSON, pages redirect."""
    app.jinja_env.globals.update(
        has_role=has_role,
        works_on_requests=works_on_requests,
        recently_reauthenticated=recently_reauthenticated,
    )
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please sign in first.")
    csrf.init_app(app)

    @app.before_request
    def _idle_timeout():
        # Sessions end after IDLE_TIMEOUT_MINUTES without a request (shared ward computers).
        if "_user_id" not in session:
            return None
        now = time.time()
        last = session.get("last_seen", now)
        if now - last > app.config["IDLE_TIMEOUT_MINUTES"] * 60:
            locale = session.get("locale")
            logout_user()
            session.clear()
            if locale:
                session["locale"] = locale
            if not request.path.startswith("/api/"):
                flash(gettext("Signed out after a period of inactivity."))
                return redirect(url_for("auth.login", next=request.full_path))
            return None
        session["last_seen"] = now
        return None

    @app.before_request
    def _csrf_for_cookie_api_writes():
        # Scripts authenticate with bearer tokens and need no CSRF token; a browser session
        # writing through the API must prove the request came from our own pages.
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        if (
            writes
            and request.path.startswith("/api/")
            and not request.headers.get("Authorization")
            and "_user_id" in session
        ):
            csrf.protect()

    @login_manager.unauthorized_handler
    def _unauthorized():
        from web.api.errors import error_response

        if request.path.startswith("/api/"):
            return error_response(
                401, "unauthenticated", "Sign in, or send 'Authorization: Bearer <token>'."
            )
        return redirect(url_for("auth.login", next=request.full_path))
