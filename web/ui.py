"""Request pages for people: list, detail with one button per event, create forms.

Views stay thin: parse the form → authorise (the engine checks role and scope) → call one
operation → render. Every error re-renders the page with the messages and changes nothing.
"""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_login import login_required

from models import utcnow
from web import export
from web.auth import current_actor, ensure_reads_requests, ensure_reauthenticated
from web.db import get_session
from web.forms import input_kind, parse_form, step_of
from web.i18n import DOCUMENT_KINDS, label, local_time, reason_text, translate
from web.messages import N_
from web.signin import safe_next
from workflow import attachments as attachment_ops
from workflow import engine, queries
from workflow.errors import InvalidInput, NotFound, WorkflowError
from workflow.localtime import hospital_today
from workflow.schema_rules import current_revision
from workflow.sla import statuses_for

bp = Blueprint("ui", __name__)


def _catalog() -> engine.Catalog:
    return current_app.extensions["changeflow.catalog"]


@bp.app_context_processor
def _helpers():
    return {"input_kind": input_kind, "step_of": step_of}


LIST_SORTS = (
    "-id",
    "id",
    "-updated_at",
    "updated_at",
    "-created_at",
    "created_at",
    "title",
    "-title",
)


def list_filters(args) -> dict:
    """Filters of the request list from the query string; anything malformed is ignored."""
    args = {k: v.strip() for k, v in args.items() if isinstance(v, str) and v.strip()}
    return {
        "page": max(1, _int(args.get("page"), 1)),
        "per_page": 25,
        "sort": args.get("sort") if args.get("sort") in LIST_SORTS else "-id",
        "kind": args.get("kind"),
        "state": args.get("state"),
        "q": (args.get("q") or "")[:200] or None,
        "contract_id": _int(args.get("contract_id"), None),
        "system_id": _int(args.get("system_id"), None),
        "department_id": _int(args.get("department_id"), None),
        "created_from": _date(args.get("created_from")),
        "created_to": _date(args.get("created_to")),
    }


def _date(value):
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.get("/requests")
@login_required
def request_list():
    """The requests I may see, filtered, sorted and paged."""
    session, actor = get_session(), current_actor()
    ensure_reads_requests()
    filters = list_filters(request.args)
    items, total, exact = queries.list_requests(session, actor, filters)
    page, per_page = filters["page"], filters["per_page"]
    return render_template(
        "requests/list.html",
        items=items,
        clocks=statuses_for(session, items, utcnow()),
        total=total,
        total_exact=exact,
        filters=filters,
        pages=queries.page_count(total, exact, page, per_page, len(items)),
        catalog=_catalog(),
        contracts=queries.visible_contracts(session, actor),
        systems=queries.visible_systems(session, actor),
        departments=queries.visible_departments(session, actor),
        definition_for=engine.definition_for,
        sorts=LIST_SORTS,
        creatable_kinds=[
            k for k, d in _catalog().current.items() if d.may_create(actor.role_names())
        ],
    )


@bp.get("/requests/export.xlsx")
@login_required
def request_export():
    """The filtered list as an Excel workbook (every page, only what I may see)."""
    session, actor = get_session(), current_actor()
    ensure_reads_requests()
    filters = list_filters(request.args)
    path = export.write_requests_xlsx(
        queries.iter_requests(session, actor, filters),
        engine.definition_for,
        label,
        local_time,
        current_app.config["EXPORT_DIR"],
    )
    stamp = hospital_today().strftime("%Y%m%d")
    return export.send_and_delete(path, f"changeflow-requests-{stamp}.xlsx")


def _int(value, default):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if 0 < number < 2**31 else default


def _render_request(
    req, status: int = 200, errors: dict | None = None, open_event=None, posted=None
):
    session = get_session()
    prefill, hidden = {}, set()
    if req.kind == "schema_change":
        hidden = {"waivers", "findings"}
        revision = current_revision(session, req)
        if revision is not None:  # the revise form starts from the current SQL
            prefill = {f"revise.{n}": getattr(revision, n) for n in ("change_sql", "rollback_sql")}
    return render_template(
        "requests/detail.html",
        req=req,
        prefill=prefill,
        hidden_fields=hidden,
        definition=engine.definition_for(req),
        options=engine.available_events(session, req, current_actor()),
        history=queries.history_of(session, req),
        sla=statuses_for(session, [req], utcnow()).get(req.id),
        errors=errors or {},
        open_event=open_event,
        posted=posted or {},
        document_kinds=list(DOCUMENT_KINDS),
        accepted_files=",".join(f".{ext}" for ext in attachment_ops.FILE_TYPES),
        removable={
            a.id
            for a in req.attachments
            if a.removed_at is None
            and attachment_ops.may_remove_attachment(current_actor(), req, a)
        },
    ), status


@bp.get("/requests/<int(max=2147483647):request_id>")
@login_required
def request_detail(request_id: int):
    """One request: fields, state, diagram, history, documents and what I can do next."""
    req = _visible(request_id)
    return _render_request(req)


def visible_request(request_id: int, kind: str | None = None):
    """The request if the signed-in user may see it (and it is of ``kind``); else aborts 404."""
    try:
        req = queries.get_request(get_session(), current_actor(), request_id)
    except NotFound:
        abort(404)
    if kind is not None and req.kind != kind:
        abort(404)
    return req


_visible = visible_request


@bp.post("/requests/<int(max=2147483647):request_id>/events/<event>")
@login_required
def request_fire(request_id: int, event: str):
    """Fire one event from its form; on refusal show why next to the fields."""
    session = get_session()
    req = _visible(request_id)
    definition = engine.definition_for(req)
    specs = definition.events[event].fields if event in definition.events else {}
    values = parse_form(specs, request.form)
    try:
        if event in definition.events and engine.may_fire(session, req, current_actor(), event):
            ensure_reauthenticated(definition.events[event], request.form.get("password"))
        engine.fire(
            session,
            req,
            event,
            current_actor(),
            values,
            _int(request.form.get("version"), 0),
            request.form.get("comment", ""),
        )
    except WorkflowError as exc:
        session.rollback()
        req = _visible(request_id)
        errors = {"_message": _error_message(exc, definition), **_field_errors(exc)}
        return _render_request(req, exc.status, errors, open_event=event, posted=request.form)
    flash(gettext("Done: %(step)s.", step=label(definition.events[event].label)))
    if request.form.get("next"):  # e.g. back to the review page after a waiver
        return redirect(safe_next(request.form["next"]))
    return redirect(url_for("ui.request_detail", request_id=request_id))


def _error_message(exc: WorkflowError, definition=None) -> str:
    """The refusal in the reader's language: each guard's reason, or the engine's sentence."""
    details = exc.details if isinstance(exc.details, dict) else {}
    if details.get("reasons"):
        return " ".join(reason_text(r, definition) for r in details["reasons"])
    if exc.code == "forbidden" and details.get("roles"):
        return reason_text({"code": "forbidden", "roles": details["roles"]})
    if exc.code == "stale_version":
        return gettext("The request changed since you loaded it. Reload the page and try again.")
    if exc.code == "invalid_transition" and definition is not None:
        return gettext("This step is not possible in the request's current state.")
    file_type = details.get("file_type")
    if isinstance(file_type, dict):
        return _file_type_message(file_type)
    if details.get("known_kinds"):
        return gettext("Choose one of the listed kinds of document.")
    return translate(exc.message)


def _file_type_message(problem: dict) -> str:
    """Why a file was refused, in the reader's language (the engine's sentence is English)."""
    name, ext = problem.get("filename", ""), problem.get("extension", "")
    accepted = ", ".join(problem.get("accepted", ()))
    if problem.get("problem") == "content_mismatch":
        return gettext(
            "The file “%(name)s” is not really a .%(ext)s file: its content does not match its "
            "name. Save or export it again as .%(ext)s, or send it in another accepted format.",
            name=name,
            ext=ext,
        )
    return gettext(
        "Files like “%(name)s” are not accepted here. Accepted types: %(types)s.",
        name=name,
        types=accepted,
    )


def _field_errors(exc: WorkflowError) -> dict:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if not isinstance(fields, dict):
        return {}
    nested = fields.get("fields") if isinstance(fields.get("fields"), dict) else {}
    flat = {**{k: v for k, v in fields.items() if k != "fields"}, **nested}
    return {
        k: "; ".join(translate(str(m)) for m in v) if isinstance(v, list) else translate(str(v))
        for k, v in flat.items()
    }


@bp.post("/requests/<int(max=2147483647):request_id>/attachments")
@login_required
def request_attach(request_id: int):
    """Attach a document from the request page."""
    session = get_session()
    req = _visible(request_id)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise InvalidInput("Choose a file first.", {"fields": {"file": ["Required."]}})
        attachment_ops.add_attachment(
            session,
            req,
            current_actor(),
            kind=request.form.get("kind", ""),
            filename=upload.filename,
            stream=upload.stream,
            storage_dir=current_app.config["ATTACHMENTS_DIR"],
            max_bytes=current_app.config["MAX_UPLOAD_BYTES"],
            expected_version=_int(request.form.get("version"), None),
        )
    except WorkflowError as exc:
        session.rollback()
        return _render_request(_visible(request_id), exc.status, {"_attach": _error_message(exc)})
    flash(gettext("Document attached."))
    return redirect(url_for("ui.request_detail", request_id=request_id))


@bp.post(
    "/requests/<int(max=2147483647):request_id>/attachments/"
    "<int(max=2147483647):attachment_id>/remove"
)
@login_required
def request_detach(request_id: int, attachment_id: int):
    """Remove a document from the request page."""
    session = get_session()
    req = _visible(request_id)
    try:
        attachment_ops.remove_attachment(
            session,
            req,
            current_actor(),
            attachment_id,
            expected_version=_int(request.form.get("version"), None),
        )
    except WorkflowError as exc:
        session.rollback()
        return _render_request(_visible(request_id), exc.status, {"_detach": _error_message(exc)})
    flash(gettext("Document removed."))
    return redirect(url_for("ui.request_detail", request_id=request_id))


# Fixed sentences of document removal, marked for the catalogue (web.i18n.translate shows them).
DOCUMENT_MESSAGES = (
    N_("Only whoever uploaded this document, or IT staff, may remove it."),
    N_("This document has already been removed."),
    N_("This request is finished; documents can no longer be removed."),
)


@bp.route("/requests/new/<kind>", methods=["GET", "POST"])
@login_required
def request_create(kind: str):
    """Raise a new request of one kind, with the form generated from its definition."""
    try:
        definition = _catalog().get(kind)
    except NotFound:
        abort(404)
    if not definition.may_create(current_actor().role_names()):
        abort(403)
    session = get_session()
    contracts = queries.visible_contracts(session, current_actor())
    errors: dict = {}
    if request.method == "POST":
        try:
            req = engine.create_request(
                session,
                _catalog(),
                current_actor(),
                kind=kind,
                contract_id=_int(request.form.get("contract_id"), None),
                system_id=_int(request.form.get("system_id"), None),
                title=request.form.get("title", ""),
                description=request.form.get("description", ""),
                fields=parse_form(definition.fields, request.form),
            )
        except WorkflowError as exc:
            session.rollback()
            errors = {"_message": _error_message(exc), **_field_errors(exc)}
        else:
            flash(gettext("Request created."))
            return redirect(url_for("ui.request_detail", request_id=req.id))
    return render_template(
        "requests/new.html",
        definition=definition,
        contracts=contracts,
        systems=queries.visible_systems(session, current_actor()),
        errors=errors,
        posted=request.form,
    ), (422 if errors else 200)
