"""Request pages for people: list, detail with one button per event, create forms.

Views stay thin: parse the form → authorise (the engine checks role and scope) → call one
operation → render. Every error re-renders the page with the messages and changes nothing.
"""

from __future__ import annotations

import math

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
from flask_login import login_required

from web.auth import current_actor
from web.db import get_session
from web.forms import input_kind, parse_form, step_of
from workflow import attachments as attachment_ops
from workflow import engine, queries
from workflow.errors import InvalidInput, NotFound, WorkflowError

bp = Blueprint("ui", __name__)


def _catalog() -> engine.Catalog:
    return current_app.extensions["changeflow.catalog"]


def label(value, lang: str | None = None) -> str:
    """The zh/en label in the user's language (Chinese by default)."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    lang = lang or getattr(current_actor(), "locale", "zh_CN") or "zh_CN"
    return value.get("en" if lang.startswith("en") else "zh") or value.get("zh") or ""


@bp.app_context_processor
def _helpers():
    return {"label": label, "input_kind": input_kind, "step_of": step_of}


@bp.get("/requests")
@login_required
def request_list():
    """The requests I may see, filtered and paged."""
    args = {k: v for k, v in request.args.items() if v}
    filters = {
        "page": max(1, _int(args.get("page"), 1)),
        "per_page": 25,
        "sort": "-id",
        "kind": args.get("kind"),
        "state": args.get("state"),
        "q": (args.get("q") or "")[:200] or None,
        "contract_id": _int(args.get("contract_id"), None),
    }
    items, total = queries.list_requests(get_session(), current_actor(), filters)
    return render_template(
        "requests/list.html",
        items=items,
        total=total,
        filters=filters,
        pages=math.ceil(total / 25) if total else 0,
        catalog=_catalog(),
        contracts=queries.visible_contracts(get_session(), current_actor()),
        definition_for=engine.definition_for,
    )


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
    return render_template(
        "requests/detail.html",
        req=req,
        definition=engine.definition_for(req),
        options=engine.available_events(session, req, current_actor()),
        history=queries.history_of(session, req),
        errors=errors or {},
        open_event=open_event,
        posted=posted or {},
    ), status


@bp.get("/requests/<int(max=2147483647):request_id>")
@login_required
def request_detail(request_id: int):
    """One request: fields, state, diagram, history, documents and what I can do next."""
    req = _visible(request_id)
    return _render_request(req)


def _visible(request_id: int):
    try:
        return queries.get_request(get_session(), current_actor(), request_id)
    except NotFound:
        abort(404)


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
        errors = {"_message": exc.message, **_field_errors(exc)}
        return _render_request(req, exc.status, errors, open_event=event, posted=request.form)
    flash(f"{label(definition.events[event].label)} ✓")
    return redirect(url_for("ui.request_detail", request_id=request_id))


def _field_errors(exc: WorkflowError) -> dict:
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if not isinstance(fields, dict):
        return {}
    nested = fields.get("fields") if isinstance(fields.get("fields"), dict) else {}
    flat = {**{k: v for k, v in fields.items() if k != "fields"}, **nested}
    return {k: "; ".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in flat.items()}


@bp.post("/requests/<int(max=2147483647):request_id>/attachments")
@login_required
def request_attach(request_id: int):
    """Attach a document from the request page."""
    session = get_session()
    req = _visible(request_id)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise InvalidInput(
                "Choose a file first. 请先选择文件。", {"fields": {"file": ["Required."]}}
            )
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
        return _render_request(_visible(request_id), exc.status, {"_attach": exc.message})
    flash("文件已上传。 Document attached.")
    return redirect(url_for("ui.request_detail", request_id=request_id))


@bp.route("/requests/new/<kind>", methods=["GET", "POST"])
@login_required
def request_create(kind: str):
    """Raise a new request of one kind, with the form generated from its definition."""
    try:
        definition = _catalog().get(kind)
    except NotFound:
        abort(404)
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
            errors = {"_message": exc.message, **_field_errors(exc)}
        else:
            flash("已创建。 Request created.")
            return redirect(url_for("ui.request_detail", request_id=req.id))
    return render_template(
        "requests/new.html",
        definition=definition,
        contracts=contracts,
        systems=queries.visible_systems(session, current_actor()),
        errors=errors,
        posted=request.form,
    ), (422 if errors else 200)
