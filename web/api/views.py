"""API views: parse → authorise → call one operation → render. Nothing else lives here."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, send_file
from flask_login import login_required
from marshmallow import Schema, ValidationError

from models import User, utcnow
from web.api import schemas as s
from web.api.commit import render_after_commit
from web.auth import current_actor, ensure_reauthenticated
from web.db import get_session
from workflow import attachments as attachment_ops
from workflow import engine, queries
from workflow.errors import IntegrityFailed, InvalidInput, NotFound
from workflow.localtime import hospital_today
from workflow.quota import quota_overview
from workflow.schema_rules import revision_numbered, revisions_of
from workflow.security_log import ATTACHMENT_INTEGRITY_FAILED, record_security_event
from workflow.service_levels import quarter_report
from workflow.sla import sla_data, statuses_for
from workflow.systems import system_status

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _catalog() -> engine.Catalog:
    return current_app.extensions["changeflow.catalog"]


def parse_json(schema: Schema) -> dict:
    """Load the JSON body with a schema; raises InvalidInput (malformed JSON included)."""
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidInput(
            "The body must be a JSON object (Content-Type: application/json).",
            {"fields": {"_body": ["Malformed or missing JSON."]}},
        )
    if not isinstance(body, dict):
        raise InvalidInput(
            "The body must be a JSON object.", {"fields": {"_body": ["Not an object."]}}
        )
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise InvalidInput("Some fields are not valid.", {"fields": exc.messages}) from exc


def parse_args(schema: Schema) -> dict:
    """Load query-string arguments with a schema; raises InvalidInput."""
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise InvalidInput(
            "Some query parameters are not valid.", {"fields": exc.messages}
        ) from exc


def request_data(req, with_events: bool = True, sla=None) -> dict:
    """A request as plain data for RequestOut / RequestSummaryOut (``sla``: its SlaStatus, looked
    up here when not given)."""
    definition = engine.definition_for(req)
    state = definition.states.get(req.state, {})
    data = {
        "id": req.id,
        "kind": req.kind,
        "title": req.title,
        "description": req.description,
        "state": req.state,
        "state_label": state.get("label"),
        "final": bool(state.get("final")),
        "version": req.version,
        "definition_version": queries.definition_hash(req),
        "contract_id": req.contract_id,
        "system_id": req.system_id,
        "department_id": req.department_id,
        "submitter": queries.username_of(req, "submitter"),
        "assignee": queries.username_of(req, "assignee"),
        "fields_": req.data or {},
        "created_at": req.created_at,
        "updated_at": req.updated_at,
    }
    if with_events:
        session = get_session()
        if sla is None:
            sla = statuses_for(session, [req], utcnow()).get(req.id)
        data["attachments"] = queries.live_attachments(session, req)
        data["available_events"] = [
            {**o.to_dict(), "fields_": o.event.fields}
            for o in engine.available_events(session, req, current_actor())
        ]
    data["sla"] = sla_data(sla, req) if sla is not None else None
    return data


def render_request(req) -> dict:
    """A request in its API form, with the actor's available events."""
    return s.shared(s.RequestOut).dump(request_data(req))


@bp.get("/me")
@login_required
def me():
    """The caller and their roles."""
    return jsonify(s.shared(s.MeOut).dump(current_actor()))


@bp.get("/definitions")
@login_required
def list_definitions():
    """The current workflow definitions."""
    return jsonify([_definition_summary(d) for d in _catalog().current.values()])


@bp.get("/definitions/<key>")
@login_required
def get_definition(key: str):
    """One definition with its content and Mermaid diagram."""
    d = _catalog().get(key)
    return jsonify(
        s.shared(s.DefinitionOut).dump(
            {**_definition_summary(d), "content": d.content, "mermaid": d.mermaid()}
        )
    )


def _definition_summary(d) -> dict:
    return s.shared(s.DefinitionSummaryOut).dump(
        {
            "key": d.key,
            "title": d.title,
            "version": d.content_hash,
            "initial": d.initial,
            "states": list(d.states),
        }
    )


@bp.get("/contracts")
@login_required
def list_contracts():
    """Contracts the caller may see."""
    return jsonify(
        s.shared(s.ContractOut, many=True).dump(
            queries.visible_contracts(get_session(), current_actor())
        )
    )


@bp.get("/contracts/<int(max=2147483647):contract_id>/quota")
@login_required
def contract_quota(contract_id: int):
    """The contract's free quota in the current period, with every ledger entry."""
    session = get_session()
    contract = queries.get_contract(session, current_actor(), contract_id)
    view = quota_overview(session, contract, hospital_today(), with_entries=True)
    return jsonify(s.shared(s.QuotaOut).dump(view))


@bp.get("/contracts/<int(max=2147483647):contract_id>/service-levels")
@login_required
def contract_service_levels(contract_id: int):
    """The contract's service-level figures for one quarter (X4): resolution rate, on-time rate,
    average satisfaction, breaches per target."""
    args = parse_args(s.shared(s.ServiceLevelsQuery))
    session = get_session()
    contract = queries.get_contract(session, current_actor(), contract_id)
    report = quarter_report(session, contract, args["quarter"], utcnow())
    return jsonify(s.shared(s.ServiceLevelsOut).dump({**report, "from_": report["from"]}))


@bp.get("/systems")
@login_required
def list_systems():
    """Systems under the caller's contracts, with their releases and Z3 standing
    (``?stale=true``: only those older than their contract allows)."""
    args = parse_args(s.shared(s.SystemListQuery))
    rows = []
    for system in queries.visible_systems(get_session(), current_actor()):
        status = system_status(system)
        if args.get("stale") is None or status.stale == args["stale"]:
            rows.append({**s.shared(s.SystemOut).dump(system), "status": status.as_data()})
    return jsonify(rows)


@bp.post("/requests")
@login_required
def create_request():
    """Raise a new request."""
    args = parse_json(s.shared(s.RequestCreateIn))
    req = engine.create_request(
        get_session(),
        _catalog(),
        current_actor(),
        kind=args["kind"],
        contract_id=args["contract_id"],
        system_id=args.get("system_id"),
        department_id=args.get("department_id"),
        title=args["title"],
        description=args["description"],
        fields=args["fields_"],
    )
    return render_after_commit(lambda: render_request(req), 201)


@bp.get("/requests")
@login_required
def list_requests():
    """A page of the requests the caller may see."""
    args = parse_args(s.shared(s.RequestListQuery))
    session = get_session()
    items, total, exact = queries.list_requests(session, current_actor(), args)
    page, per_page = args["page"], args["per_page"]
    clocks = statuses_for(session, items, utcnow())
    return jsonify(
        s.shared(s.RequestPageOut).dump(
            {
                "items": [request_data(r, False, clocks.get(r.id)) for r in items],
                "page": page,
                "per_page": per_page,
                "total": total,
                "total_exact": exact,
                "pages": queries.page_count(total, exact, page, per_page, len(items)),
            }
        )
    )


@bp.get("/requests/<int(max=2147483647):request_id>")
@login_required
def get_request(request_id: int):
    """One request with the caller's available events."""
    return jsonify(render_request(queries.get_request(get_session(), current_actor(), request_id)))


@bp.post("/requests/<int(max=2147483647):request_id>/events/<event>")
@login_required
def fire_event(request_id: int, event: str):
    """Fire an event at the version the caller saw."""
    args = parse_json(s.shared(s.EventIn))
    session = get_session()
    actor = current_actor()
    req = queries.get_request(session, actor, request_id)
    definition = engine.definition_for(req)
    step = definition.events.get(event)
    if step is not None and step.reauthenticate and engine.may_fire(session, req, actor, event):
        # A browser session signs only after typing the password again (the sign-off page).
        ensure_reauthenticated(step, None)
    engine.fire(session, req, event, actor, args["fields_"], args["version"], args["comment"])
    return render_after_commit(lambda: render_request(req))


@bp.get("/requests/<int(max=2147483647):request_id>/history")
@login_required
def get_history(request_id: int):
    """The request's hash-chained history."""
    session = get_session()
    req = queries.get_request(session, current_actor(), request_id)
    return jsonify(
        s.shared(s.HistoryOut).dump(
            {
                "request_id": req.id,
                "head_hash": req.head_hash,
                "entries": queries.history_of(session, req),
            }
        )
    )


def _schema_change(request_id: int):
    req = queries.get_request(get_session(), current_actor(), request_id)
    if req.kind != "schema_change":
        raise NotFound("This request is not a schema change.", {"request_id": request_id})
    return req


@bp.get("/requests/<int(max=2147483647):request_id>/revisions")
@login_required
def list_revisions(request_id: int):
    """Every revision of a schema change, oldest first, without the SQL text."""
    req = _schema_change(request_id)
    return jsonify(s.shared(s.RevisionSummaryOut, many=True).dump(revisions_of(get_session(), req)))


@bp.get("/requests/<int(max=2147483647):request_id>/revisions/<int(max=100000):number>")
@login_required
def get_revision(request_id: int, number: int):
    """One revision with its exact SQL and its analysis."""
    req = _schema_change(request_id)
    revision = revision_numbered(get_session(), req, number)
    return jsonify(s.shared(s.RevisionOut).dump(revision))


@bp.post("/requests/<int(max=2147483647):request_id>/attachments")
@login_required
def add_attachment(request_id: int):
    """Attach a document (multipart: file, kind, optional version)."""
    upload = request.files.get("file")
    try:
        args = s.shared(s.AttachmentIn).load(request.form.to_dict())
    except ValidationError as exc:
        raise InvalidInput("Some fields are not valid.", {"fields": exc.messages}) from exc
    if upload is None:
        raise InvalidInput(
            "Send the document as multipart field 'file'.", {"fields": {"file": ["Missing file."]}}
        )
    session = get_session()
    req = queries.get_request(session, current_actor(), request_id)
    attachment = attachment_ops.add_attachment(
        session,
        req,
        current_actor(),
        kind=args["kind"],
        filename=upload.filename or "",
        stream=upload.stream,
        storage_dir=current_app.config["ATTACHMENTS_DIR"],
        max_bytes=current_app.config["MAX_UPLOAD_BYTES"],
        expected_version=args.get("version"),
    )
    return jsonify(s.shared(s.AttachmentOut).dump(attachment)), 201


@bp.get("/attachments/<int(max=2147483647):attachment_id>")
@login_required
def download_attachment(attachment_id: int):
    """Download a document after re-checking its SHA-256."""
    attachment = queries.get_attachment(get_session(), current_actor(), attachment_id)
    try:
        path = attachment_ops.open_attachment(current_app.config["ATTACHMENTS_DIR"], attachment)
    except (OSError, ValueError) as exc:
        _integrity_failed(attachment, exc)
    response = send_file(
        path,
        mimetype=attachment.content_type,
        as_attachment=True,
        download_name=attachment.filename,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Checksum-SHA256"] = attachment.sha256
    return response


def _integrity_failed(attachment, exc: Exception):
    """Withhold the bytes, tell IT (a security event that outlives this failing request)."""
    problem = "missing" if isinstance(exc, OSError) else "altered"
    attachment_id, request_id = attachment.id, attachment.request_id
    actor_id = current_actor().id
    current_app.logger.error("attachment %s withheld (%s): %s", attachment_id, problem, exc)
    # The request's transaction ends first (it wrote nothing to keep): on SQLite it holds the
    # write lock (BEGIN IMMEDIATE) and the event's own transaction would wait for it.
    get_session().rollback()
    with current_app.extensions["changeflow.sessionmaker"]() as log:
        record_security_event(
            log,
            ATTACHMENT_INTEGRITY_FAILED,
            log.get(User, actor_id),
            f"attachment {attachment_id} of request {request_id}",
            f"{problem}: {exc}",
        )
        log.commit()
    raise IntegrityFailed(
        "The stored file no longer matches its SHA-256 and is withheld; IT has been told.",
        {"attachment_id": attachment_id, "request_id": request_id, "problem": problem},
    ) from exc


@bp.delete("/attachments/<int(max=2147483647):attachment_id>")
@login_required
def remove_attachment(attachment_id: int):
    """Remove a document from its request (optional JSON body: the version the caller saw)."""
    args = parse_json(s.shared(s.AttachmentRemoveIn)) if request.get_data(cache=True) else {}
    session = get_session()
    attachment = queries.get_attachment(session, current_actor(), attachment_id)
    req = attachment.request
    attachment_ops.remove_attachment(
        session, req, current_actor(), attachment_id, expected_version=args.get("version")
    )
    return render_after_commit(lambda: render_request(req))


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description generated from the marshmallow schemas."""
    from web.api.openapi import build_spec

    return jsonify(build_spec())
