"""IT's working-day calendar page: the statutory schedule per year and the overrides (DOMAIN §4).

``/calendar`` is read by IT staff, signers and DBAs; only IT staff set and remove overrides.
The same is offered to scripts under ``/api/v1/calendar`` (bearer token or sign-in cookie, the
SPEC §4 error shape). Views parse, authorise, call one operation of
``workflow.calendar_overrides`` and render; the request commits (``web.api``'s commit hook).
"""

from __future__ import annotations

from datetime import date

from babel.dates import format_date
from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext, lazy_gettext
from flask_login import login_required

from web.admin import require_role
from web.api.schemas import CalendarOverrideIn, CalendarOverrideOut, CalendarYearOut, shared
from web.api.views import parse_json
from web.auth import current_actor
from web.db import get_session
from web.i18n import is_english
from workflow.calendar_overrides import (
    EDIT_ROLES,
    HOLIDAY,
    MAKEUP,
    OVERRIDE,
    VIEW_ROLES,
    WEEKEND,
    WORKDAY,
    may_edit,
    may_view,
    remove_override,
    set_override,
    year_view,
)
from workflow.errors import Forbidden, InvalidInput, WorkflowError
from workflow.localtime import hospital_today

bp = Blueprint("calendar_pages", __name__)
api = Blueprint("calendar_api", __name__, url_prefix="/api/v1/calendar")

WHY_LABELS = {
    WORKDAY: lazy_gettext("working day"),
    WEEKEND: lazy_gettext("weekend"),
    HOLIDAY: lazy_gettext("public holiday"),
    MAKEUP: lazy_gettext("make-up working day"),
    OVERRIDE: lazy_gettext("override"),
}


def why_label(why: str) -> str:
    """The words for why a day is worked or not."""
    return str(WHY_LABELS.get(why, why))


def _language() -> str:
    return "en_US" if is_english() else "zh_CN"


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _back(year: int | None, anchor: str = ""):
    year = year or hospital_today().year
    return redirect(url_for("calendar_pages.calendar", year=year) + anchor)


# ---------------------------------------------------------------- pages


@bp.get("/calendar")
@require_role(*VIEW_ROLES)
def calendar():
    """One year: statutory holidays, make-up days, IT's overrides, month grids."""
    year = request.args.get("year", type=int) or hospital_today().year
    try:
        view = year_view(get_session(), year, _language())
    except InvalidInput:
        abort(404)
    locale = str(get_locale() or "zh_CN")
    return render_template(
        "calendar/year.html",
        view=view,
        may_edit=may_edit(current_actor()),
        why_label=why_label,
        weekday_names=[format_date(date(2024, 1, 1 + i), "EEE", locale=locale) for i in range(7)],
        month_names=[format_date(date(2024, m, 1), "LLLL", locale=locale) for m in range(1, 13)],
        weekday_of=lambda day: format_date(day, "EEE", locale=locale),
        prefill=_parse_day(request.args.get("day")),
        today=hospital_today(),
    )


@bp.post("/calendar/overrides")
@require_role(*EDIT_ROLES)
def override_set():
    """Declare one date a working day or a day off, with a reason (the request commits)."""
    day = _parse_day(request.form.get("day"))
    working = {"1": True, "0": False}.get(request.form.get("working", ""))
    session = get_session()
    try:
        set_override(session, current_actor(), day, working, request.form.get("reason") or "")
    except WorkflowError as exc:
        session.rollback()
        flash(gettext(exc.message), "error")
        return _back(day.year if day else request.form.get("year", type=int), "#override-form")
    flash(gettext("Calendar override saved for %(day)s.", day=day.isoformat()))
    return _back(day.year, "#overrides")


@bp.post("/calendar/overrides/<day>/delete")
@require_role(*EDIT_ROLES)
def override_remove(day: str):
    """Remove one date's override: the statutory calendar applies again."""
    parsed = _parse_day(day)
    if parsed is None:
        abort(404)
    session = get_session()
    try:
        remove_override(session, current_actor(), parsed)
    except WorkflowError as exc:
        session.rollback()
        flash(gettext(exc.message), "error")
    else:
        flash(gettext("Calendar override removed for %(day)s.", day=parsed.isoformat()))
    return _back(parsed.year if 2000 <= parsed.year <= 2099 else None, "#overrides")


# ---------------------------------------------------------------- JSON API


def _api_day(day: str) -> date:
    parsed = _parse_day(day)
    if parsed is None:
        raise InvalidInput("Choose a date.", {"fields": {"day": ["A date (YYYY-MM-DD)."]}})
    return parsed


def _ensure_api_edit() -> None:
    if not may_edit(current_actor()):
        raise Forbidden(
            "Only IT staff may change the working-day calendar.", {"roles": sorted(EDIT_ROLES)}
        )


@api.get("")
@login_required
def api_year():
    """GET /api/v1/calendar?year=2026: the year's calendar (provisional flag included)."""
    if not may_view(current_actor()):
        raise Forbidden("Only the hospital's IT reads the calendar.", {"roles": sorted(VIEW_ROLES)})
    raw = request.args.get("year")
    year = hospital_today().year if raw is None else (int(raw) if raw.isdigit() else raw)
    return jsonify(shared(CalendarYearOut).dump(year_view(get_session(), year, "en_US")))


@api.put("/overrides/<day>")
@login_required
def api_override_set(day: str):
    """PUT {working, reason}: set or replace the date's override (IT staff)."""
    _ensure_api_edit()
    parsed = _api_day(day)
    body = parse_json(shared(CalendarOverrideIn))
    set_override(get_session(), current_actor(), parsed, body["working"], body["reason"])
    view = year_view(get_session(), parsed.year, "en_US")
    return jsonify(shared(CalendarOverrideOut).dump(view.day(parsed).override))


@api.delete("/overrides/<day>")
@login_required
def api_override_remove(day: str):
    """DELETE: remove the date's override (IT staff); 204."""
    _ensure_api_edit()
    remove_override(get_session(), current_actor(), _api_day(day))
    return "", 204


def init_app(app: Flask) -> None:
    """Register the calendar pages and the calendar API (bearer scripts need no CSRF token;
    cookie writes under /api are checked by ``web.auth``)."""
    from web.auth import csrf

    app.register_blueprint(bp)
    app.register_blueprint(api)
    csrf.exempt(api)
