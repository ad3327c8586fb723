"""Sign-in and sign-out for browsers: argon2id passwords, a fresh session, CSRF on every form."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from web.auth import Principal
from web.db import get_session
from workflow.accounts import sign_in
from workflow.errors import SignInRefused

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    """Username and password; ``next`` is where to go afterwards (same site only)."""

    username = StringField(validators=[DataRequired(), Length(max=80)])
    password = PasswordField(validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


def safe_next(target: str | None) -> str:
    """A local path to continue to; anything pointing off-site becomes the start page."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("pages.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the sign-in form, or sign in: parse → check password → start a new session."""
    form = LoginForm(next=request.args.get("next", ""))
    error = None
    if form.validate_on_submit():
        try:
            user = sign_in(
                get_session(),
                form.username.data,
                form.password.data,
                demo_mode=current_app.config["DEMO_MODE"],
            )
        except SignInRefused as exc:
            error = exc.message
        else:
            # A new session on sign-in: nothing from before (fixation) carries over but the
            # language chosen on the sign-in page, which becomes the user's own when none is set.
            _fresh_session()
            session.permanent = True
            login_user(Principal(user), fresh=True)
            return redirect(safe_next(form.next.data))
    return render_template(
        "login.html", form=form, error=error, demo=current_app.config["DEMO_MODE"]
    )


def _fresh_session() -> None:
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


@bp.post("/logout")
@login_required
def logout():
    """Sign out and forget the session."""
    logout_user()
    _fresh_session()
    flash(gettext("Signed out."))
    return redirect(url_for("auth.login"))
