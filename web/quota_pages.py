"""Quota pages: the contract's free quota with per-request lines and a burn-down, its statement
as Excel, and the printable written confirmation (需求确认单) of a requirement."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import login_required
from sqlalchemy import select

from models import Request
from web import export
from web.auth import current_actor, ensure_reads_requests
from web.db import get_session
from web.i18n import label, local_time
from web.ui import visible_request
from workflow import engine, queries
from workflow.errors import NotFound, WorkflowError
from workflow.localtime import hospital_today
from workflow.quota import QuotaView, adjust, days_text, may_adjust, quota_overview, quota_policy

bp = Blueprint("quota", __name__)

ENTRY_LABELS = {
    "reserve": lazy_gettext("reserved"),
    "release": lazy_gettext("released"),
    "consume": lazy_gettext("consumed"),
    "adjust": lazy_gettext("adjusted"),
}
# How each kind of entry moves the remaining figure (consume only turns reserved into used).
REMAINING_DELTA = {"reserve": -1, "release": 1, "consume": 0, "adjust": -1}


def burn_down(view: QuotaView) -> list[tuple[str, Decimal]]:
    """(day, remaining after that day's entries) from the period's start, for the chart."""
    if view.pool is None:
        return []
    points = [(view.period_start.isoformat(), view.pool)]
    remaining = view.pool
    for entry in view.entries:
        remaining += REMAINING_DELTA[entry.kind] * Decimal(str(entry.days))
        day = local_time(entry.at, "yyyy-MM-dd")
        if points[-1][0] == day:
            points[-1] = (day, remaining)
        else:
            points.append((day, remaining))
    return points


def chart_points(view: QuotaView, points, width: int = 640, height: int = 200) -> str:
    """SVG polyline points: x over the period's days, y over 0…pool (a step line)."""
    from datetime import date

    start, end = view.period_start, view.period_end
    span = max((end - start).days, 1)
    top = max(view.pool or Decimal(1), Decimal(1))
    coords = []
    for index, (day, remaining) in enumerate(points):
        x = (date.fromisoformat(day) - start).days * width / span
        y = height - float(max(remaining, Decimal(0)) / top) * height
        if index:
            coords.append(f"{x:.1f},{coords[-1].split(',')[1]}")
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


def request_lines(session, view: QuotaView) -> list[dict]:
    """Per request: free days reserved, released, consumed, still held; with its state."""
    totals: dict[int, dict] = defaultdict(lambda: defaultdict(Decimal))
    for entry in view.entries:
        if entry.request_id is not None:
            totals[entry.request_id][entry.kind] += Decimal(str(entry.days))
    requests = {
        r.id: r for r in session.scalars(select(Request).where(Request.id.in_(list(totals))))
    }
    lines = []
    for request_id, sums in totals.items():
        request = requests[request_id]
        held = sums["reserve"] - sums["release"] - sums["consume"]
        lines.append(
            {
                "request": request,
                "reserved": sums["reserve"],
                "released": sums["release"],
                "consumed": sums["consume"],
                "held": held,
                "paid": (request.data or {}).get("quota", {}).get("paid_days", "0"),
            }
        )
    return sorted(lines, key=lambda line: line["request"].id)


def _contract_view(contract_id: int):
    ensure_reads_requests()
    session, actor = get_session(), current_actor()
    try:
        contract = queries.get_contract(session, actor, contract_id)
    except NotFound:
        abort(404)
    return session, quota_overview(session, contract, hospital_today(), with_entries=True)


@bp.get("/contracts/<int(max=2147483647):contract_id>/quota")
@login_required
def contract_quota(contract_id: int):
    """The contract's free quota this period: figures, burn-down, requests and every entry."""
    session, view = _contract_view(contract_id)
    points = burn_down(view)
    return render_template(
        "quota/contract.html",
        view=view,
        policy=quota_policy(view.contract),
        lines=request_lines(session, view),
        points=points,
        polyline=chart_points(view, points) if points else "",
        definition_for=engine.definition_for,
        may_adjust=may_adjust(current_actor(), view.contract),
        today=hospital_today(),
    )


@bp.post("/contracts/<int(max=2147483647):contract_id>/quota/adjustments")
@login_required
def contract_quota_adjust(contract_id: int):
    """Record a signed correction of the quota (IT signer only); the request commits it."""
    from datetime import date

    session, view = _contract_view(contract_id)
    if not may_adjust(current_actor(), view.contract):
        abort(403)
    try:
        day = date.fromisoformat(request.form.get("day") or hospital_today().isoformat())
    except ValueError:
        day = None
    try:
        adjust(
            session,
            view.contract,
            day,
            (request.form.get("days") or "").strip(),
            current_actor(),
            engine.utcnow(),
            request.form.get("reason") or "",
        )
    except WorkflowError as exc:
        flash(gettext(exc.message), "error")
    else:
        flash(gettext("Adjustment recorded."))
    return redirect(url_for("quota.contract_quota", contract_id=contract_id) + "#quota-entries")


@bp.get("/contracts/<int(max=2147483647):contract_id>/quota.xlsx")
@login_required
def contract_quota_export(contract_id: int):
    """The quota statement as Excel: summary rows, then every ledger entry."""
    _session, view = _contract_view(contract_id)
    header = [
        gettext("Time"),
        gettext("Entry"),
        gettext("Person-days"),
        gettext("Request"),
        gettext("Who"),
        gettext("Reason"),
    ]
    summary = [
        [gettext("Contract"), view.contract.code, view.contract.name],
        [gettext("Period"), view.period_start.isoformat(), view.period_end.isoformat()],
        [gettext("Pool"), days_text(view.pool) if view.pool is not None else "—"],
        [gettext("Reserved"), days_text(view.reserved)],
        [gettext("Consumed"), days_text(view.consumed)],
        [gettext("Remaining"), days_text(view.remaining) if view.remaining is not None else "—"],
        [],
    ]
    rows = (
        [
            local_time(e.at),
            entry_label(e.kind),
            float(e.days),
            e.request_id or "",
            e.actor_name,
            e.reason,
        ]
        for e in view.entries
    )
    path = export.write_rows_xlsx(
        gettext("Quota statement"), [*summary, header], rows, current_app.config["EXPORT_DIR"]
    )
    name = f"quota-{view.contract.code}-{view.period_start.isoformat()}.xlsx"
    return export.send_and_delete(path, name)


@bp.get("/requests/<int(max=2147483647):request_id>/confirmation")
@login_required
def confirmation_sheet(request_id: int):
    """The printable written confirmation (需求确认单) with both confirmations and their hashes."""
    req = visible_request(request_id, "requirement")
    return render_template(
        "quota/confirmation.html", req=req, definition=engine.definition_for(req), label=label
    )


def entry_label(kind: str) -> str:
    """A ledger entry kind in the page's language."""
    return str(ENTRY_LABELS.get(kind, kind))


def init_app(app) -> None:
    """Register the pages and the helper their templates use."""
    app.register_blueprint(bp)
    app.jinja_env.globals["entry_label"] = entry_label
