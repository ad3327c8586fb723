"""Flask application factory (flaskr style: no side effects at import)."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; settings from defaults, ``CHANGEFLOW_*``/``DATABASE_URL`` env, then tests."""
    app = Flask(
        __name__, instance_path=os.environ.get("CHANGEFLOW_INSTANCE") or str(ROOT / "instance")
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("CHANGEFLOW_SECRET_KEY") or None,
        DATABASE_URL=os.environ.get("DATABASE_URL")
        or f"sqlite:///{Path(app.instance_path) / 'changeflow.sqlite3'}",
        DEFINITIONS_DIR=os.environ.get("CHANGEFLOW_DEFINITIONS") or str(ROOT / "definitions"),
        ATTACHMENTS_DIR=str(Path(app.instance_path) / "attachments"),
        EXPORT_DIR=str(Path(app.instance_path) / "exports"),
        MAX_UPLOAD_BYTES=int(os.environ.get("CHANGEFLOW_MAX_UPLOAD_MB", "50")) * 1024 * 1024,
        DEMO_MODE=os.environ.get("CHANGEFLOW_DEMO") == "1",
        JSON_AS_ASCII=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("CHANGEFLOW_SECURE_COOKIES") == "1",
        IDLE_TIMEOUT_MINUTES=int(os.environ.get("CHANGEFLOW_IDLE_MINUTES", "30")),
        # How long a worker may remember who a bearer token belongs to when nothing in
        # changeflow changed users, roles or tokens meanwhile (web/token_users.py); 0 = never.
        TOKEN_CACHE_SECONDS=float(os.environ.get("CHANGEFLOW_TOKEN_CACHE_SECONDS", "10")),
        # Rewritten by every commit that changes users, roles or tokens; all workers of one
        # installation (and its CLI) must share it.
        AUTH_EPOCH_FILE=str(Path(app.instance_path) / "auth-epoch"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (idle timeout applies)
        # SLA notifications by mail: off unless a server is named (workflow/outbox.py).
        SMTP_HOST=os.environ.get("CHANGEFLOW_SMTP_HOST", ""),
        SMTP_PORT=int(os.environ.get("CHANGEFLOW_SMTP_PORT", "25")),
        SMTP_USER=os.environ.get("CHANGEFLOW_SMTP_USER", ""),
        SMTP_PASSWORD=os.environ.get("CHANGEFLOW_SMTP_PASSWORD", ""),
        SMTP_STARTTLS=os.environ.get("CHANGEFLOW_SMTP_STARTTLS") == "1",
        MAIL_FROM=os.environ.get("CHANGEFLOW_MAIL_FROM", ""),
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    # Leave room for the multipart envelope around the largest allowed upload.
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_UPLOAD_BYTES"] + 1024 * 1024

    from web import (
        admin,
        auth,
        calendar_pages,
        db,
        errors_html,
        i18n,
        notifications,
        pages,
        quota_pages,
        schema_pages,
        signin,
        sla_view,
        ui,
        upgrade_pages,
    )
    from web.api import init_app as init_api
    from workflow.engine import Catalog

    db.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)
    app.extensions["changeflow.catalog"] = Catalog(
        Path(app.config["DEFINITIONS_DIR"]) / "workflows"
    )
    init_api(app)
    from web.api.views import bp as api_bp

    auth.csrf.exempt(api_bp)  # bearer scripts; cookie writes are checked in web.auth
    app.register_blueprint(pages.bp)
    app.register_blueprint(signin.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(admin.bp)
    quota_pages.init_app(app)
    upgrade_pages.init_app(app)
    schema_pages.init_app(app)
    calendar_pages.init_app(app)
    sla_view.init_app(app)
    notifications.init_app(app)
    errors_html.register(app)
    app.after_request(_security_headers)

    from web.cli import register_commands

    register_commands(app)
    return app


# Scripts only from our own static folder (no inline script, nothing from the internet); Mermaid
# draws its SVG with inline styles, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def _instance_secret(instance: Path) -> str:
    """A per-installation secret kept in the instance folder (created once, mode 0600)."""
    import secrets

    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
