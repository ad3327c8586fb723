"""Who is calling: Flask-Login sessions for browsers, bearer tokens for scripts."""

from __future__ import annotations

from flask import Flask, request
from flask_login import LoginManager

from models import User
from web.db import get_session
from workflow.accounts import user_for_token

login_manager = LoginManager()


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
        user = get_session().get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    return Principal(user) if user is not None else None


@login_manager.request_loader
def _load_from_bearer(req):
    header = req.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    user = user_for_token(get_session(), raw.strip())
    return Principal(user) if user is not None else None


def current_actor() -> User | None:
    """The signed-in User row, or None."""
    from flask_login import current_user

    if current_user and current_user.is_authenticated and current_user.is_active:
        return current_user.user
    return None


def init_app(app: Flask) -> None:
    """Set up Flask-Login; API calls answer 401 JSON instead of redirecting."""
    login_manager.init_app(app)
    login_manager.session_protection = "strong"

    @login_manager.unauthorized_handler
    def _unauthorized():
        from web.api.errors import error_response

        if request.path.startswith("/api/"):
            return error_response(
                401, "unauthenticated", "Sign in, or send 'Authorization: Bearer <token>'."
            )
        from flask import abort

        abort(401)
