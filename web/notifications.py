"""In-app notifications (the outbox): a user's inbox and the unread count in the navigation.

Everyone sees only their own notifications; marking another user's as read answers 404, as
any record outside one's scope does. Writes are form posts with a CSRF token; the request
commits once (``web.api`` registers the commit-once hook for every request).
"""

from __future__ import annotations

import math

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import login_required
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from models import Notification, utcnow
from web.auth import current_actor
from web.db import get_session

bp = Blueprint("notifications", __name__)

PER_PAGE = 50


def _page(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if 0 < number < 2**31 else 1


def _actor_or_404():
    actor = current_actor()
    if actor is None:  # signed in but deactivated or locked meanwhile
        abort(404)
    return actor


def unread_count() -> int:
    """How many notifications the signed-in user has not read (0 when anonymous)."""
    actor = current_actor()
    if actor is None:
        return 0
    try:
        return int(
            get_session().scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
            )
            or 0
        )
    except SQLAlchemyError:  # a count never breaks a page (e.g. an error page after a failure)
        return 0


@bp.get("/notifications")
@login_required
def inbox():
    """My notifications, newest first, unread ones highlighted."""
    session, actor = get_session(), _actor_or_404()
    mine = Notification.user_id == actor.id
    total = session.scalar(select(func.count()).select_from(Notification).where(mine)) or 0
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(_page(request.args.get("page")), pages)
    items = session.scalars(
        select(Notification)
        .where(mine)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    unread = session.scalar(
        select(func.count()).select_from(Notification).where(mine, Notification.read_at.is_(None))
    )
    return render_template(
        "notifications/inbox.html",
        items=items,
        total=total,
        unread=unread or 0,
        page=page,
        pages=pages,
    )


@bp.post("/notifications/<int(max=2147483647):notification_id>/read")
@login_required
def mark_read(notification_id: int):
    """Mark one of my notifications read."""
    session, actor = get_session(), _actor_or_404()
    notification = session.get(Notification, notification_id)
    if notification is None or notification.user_id != actor.id:
        abort(404)
    if notification.read_at is None:
        notification.read_at = utcnow()
    return redirect(url_for("notifications.inbox", page=_page(request.form.get("page"))))


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    """Mark every one of my unread notifications read."""
    session, actor = get_session(), _actor_or_404()
    session.execute(
        update(Notification)
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    flash(gettext("All notifications marked as read."))
    return redirect(url_for("notifications.inbox"))


def init_app(app: Flask) -> None:
    """Register the inbox and the ``unread_notifications()`` template helper."""
    app.register_blueprint(bp)

    @app.context_processor
    def _helpers():
        return {"unread_notifications": unread_count}
