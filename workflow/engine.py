"""Requests moving through definitions: ``fire``, ``available_events``, ``create_request``.

All of it runs in the caller's transaction and only flushes. ``fire`` follows SPEC §3 in
order: transition exists → role and scope → input → guards → expected version → effects,
state, version and one history entry, all inside a savepoint so a failing effect leaves
nothing behind.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from marshmallow import ValidationError
from sqlalchemy import bindparam, exists, insert, null, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from models import (
    Contract,
    DefinitionVersion,
    Department,
    HistoryEntry,
    Request,
    System,
    as_naive_utc,
    utcnow,
)
from workflow.definition import Definition, EventDef, compile_definition, load_definition_dir
from workflow.errors import (
    Forbidden,
    GuardFailed,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleVersion,
)
from workflow.fields import REFERENCE_TYPES, validate_fields
from workflow.history import append_entry, next_entry
from workflow.registry import FireContext, Refusal
from workflow.scope import roles_for_contract, roles_for_request
from workflow.sla import MOMENTS, Moment

MAX_COMMENT = 10_000
MAX_TITLE = 300
MAX_DESCRIPTION = 20_000

# (key, content hash) → compiled definition: one Machine per definition version, process-wide.
_COMPILED: dict[tuple[str, str], Definition] = {}


class Catalog:
    """The current definitions from a directory, plus every stored version requests run on."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.current: dict[str, Definition] = load_definition_dir(self.directory)
        for d in self.current.values():
            _COMPILED.setdefault((d.key, d.content_hash), d)

    def get(self, key: str) -> Definition:
        """The current definition of a kind; raises NotFound."""
        try:
            return self.current[key]
        except KeyError:
            raise NotFound(f"There is no workflow called '{key}'.", {"kind": key}) from None

    def store(self, session: Session, definition: Definition) -> DefinitionVersion:
        """The stored row of this version, inserted the first time a request uses it."""
        row = session.scalar(
            select(DefinitionVersion).where(
                DefinitionVersion.key == definition.key,
                DefinitionVersion.content_hash == definition.content_hash,
            )
        )
        if row is None:
            row = DefinitionVersion(
                key=definition.key,
                content_hash=definition.content_hash,
                content=definition.content,
                source=definition.source,
                source_file=str(definition.file),
            )
            # A savepoint so that a concurrent first use (unique key) does not spoil the caller.
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:  # the other writer won; use its row
                row = session.scalar(
                    select(DefinitionVersion).where(
                        DefinitionVersion.key == definition.key,
                        DefinitionVersion.content_hash == definition.content_hash,
                    )
                )
                if row is None:
                    raise
        return row


def definition_for(request: Request) -> Definition:
    """The definition version the request started with, compiled once per process."""
    # The one-request load brings only the version's hash (queries.get_request); a definition
    # compiled under the request's kind with that hash is the one, without the version's row.
    known = request.definition_hash
    if known is not None:
        definition = _COMPILED.get((request.kind, known))
        if definition is not None:
            return definition
    stored = request.definition_version
    cache_key = (stored.key, stored.content_hash)
    definition = _COMPILED.get(cache_key)
    if definition is None:
        definition = compile_definition(
            stored.content,
            f"definition_versions[{stored.key}@{stored.content_hash[:12]}]",
            stored.source,
        )
        _COMPILED[cache_key] = definition
    return definition


class _Token:
    """The transient model a Machine moves: one per fire, never an ORM object."""

    def __init__(self, state: str):
        self.state = state


@dataclass
class EventOption:
    """One event from the current state as seen by one actor."""

    event: EventDef
    allowed: bool
    reasons: list[dict]

    def to_dict(self, locale: str = "zh") -> dict:
        """JSON form for the API."""
        return {
            "event": self.event.name,
            "label": self.event.label,
            "allowed": self.allowed,
            "reasons": self.reasons,
            "fields": self.event.fields,
            "comment_required": self.event.comment_required,
        }


def _check_guards(event: EventDef, ctx: FireContext, without_input: bool = False) -> list[dict]:
    reasons = []
    for bound in event.guards:
        if without_input and bound.reads_input(event.fields):
            continue  # judged when the form is sent, not before it is filled in
        message = bound(ctx)
        if message:
            # The parameters let a user interface word the reason in the reader's language.
            reasons.append(
                {
                    "code": "guard_failed",
                    "guard": bound.target.name,
                    "params": dict(bound.params),
                    "message": str(message),
                    **({"values": message.values} if isinstance(message, Refusal) else {}),
                }
            )
    return reasons


def _context(session, request, actor, definition, event, fields, now, comment="") -> FireContext:
    return FireContext(
        session=session,
        request=request,
        actor=actor,
        definition=definition,
        event=event,
        fields=fields,
        now=now,
        comment=comment,
    )


def _role_reason(event: EventDef) -> dict:
    return {
        "code": "forbidden",
        "message": "This step needs one of the roles "
        + ", ".join(event.roles)
        + " for this request's department and contract.",
        "roles": event.roles,
    }


def available_events(session: Session, request: Request, actor) -> list[EventOption]:
    """Every event leaving the current state, with ``allowed`` and the reasons when not."""
    definition = definition_for(request)
    roles = roles_for_request(actor, request)
    now = utcnow()
    options = []
    for event in definition.events_from(request.state):
        if not roles & set(event.roles):
            options.append(EventOption(event, False, [_role_reason(event)]))
            continue
        ctx = _context(session, request, actor, definition, event, {}, now)
        reasons = _check_guards(event, ctx, without_input=True)
        options.append(EventOption(event, not reasons, reasons))
    return options


def may_fire(session: Session, request: Request, actor, event_name: str) -> bool:
    """Whether the actor could fire the event now (ignoring input fields)."""
    return any(
        o.allowed and o.event.name == event_name for o in available_events(session, request, actor)
    )


def fire(
    session: Session,
    request: Request,
    event_name: str,
    actor,
    fields: dict | None,
    expected_version: int,
    comment: str = "",
    now: datetime | None = None,
):
    """Fire an event; returns the new history entry.

    Raises InvalidTransition, Forbidden, InvalidInput, GuardFailed or StaleVersion (SPEC §3).
    """
    definition = definition_for(request)
    event = definition.events.get(event_name)
    if event is None or request.state not in event.sources:
        existing = [e.name for e in definition.events_from(request.state)]
        raise InvalidTransition(
            f"'{event_name}' is not possible from state '{request.state}'."
            + (f" Possible here: {', '.join(existing)}." if existing else ""),
            {"state": request.state, "event": event_name, "available": existing},
        )
    if not roles_for_request(actor, request) & set(event.roles):
        raise Forbidden(_role_reason(event)["message"], {"roles": event.roles})

    comment = comment or ""
    try:
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ValidationError({"comment": [f"At most {MAX_COMMENT} characters of text."]})
        if event.comment_required and not comment.strip():
            raise ValidationError({"comment": ["A comment is required for this step."]})
        values = validate_fields(event.fields, fields)
    except ValidationError as exc:
        raise InvalidInput("Some fields are not valid.", {"fields": exc.messages}) from exc
    check_references(session, event.fields, values, request.contract_id, request.id)

    now = as_naive_utc(now) if now else utcnow()
    ctx = _context(session, request, actor, definition, event, values, now, comment)
    reasons = _check_guards(event, ctx)
    if reasons:
        raise GuardFailed(" ".join(r["message"] for r in reasons), {"reasons": reasons})

    if expected_version != request.version:
        raise StaleVersion(
            f"The request changed since you loaded it (you have version {expected_version}, "
            f"it is at {request.version}). Reload and try again.",
            {"expected": expected_version, "current": request.version},
        )

    from_state = request.state
    # Effects and conditional routes may write before the transition does: they run inside a
    # savepoint, so a failure leaves none of it behind. A plain event writes nothing until its
    # versioned UPDATE, so it needs none (two round trips less on the busiest path).
    guarded = session.begin_nested() if event.effects or event.routes else nullcontext()
    try:
        with guarded:
            token = _Token(from_state)
            definition.machine.events[event.name].trigger(token, ctx=ctx)
            # Whatever the effects changed is written first, still at the expected version.
            session.flush()
            entry = _record_transition(
                session, request, event, token.state, actor, values, comment, now, definition
            )
    except StaleDataError as exc:
        raise StaleVersion(
            "Someone else changed this request at the same moment. Reload and try again.",
            {"expected": expected_version},
        ) from exc
    return entry


# Core statements on the tables, built once: the ORM's bulk paths cost more than the unit of
# work, and building the statements on every transition cost as much as running them.
_requests, _history = Request.__table__, HistoryEntry.__table__
_ADVANCE = (
    update(_requests)
    .where(_requests.c.id == bindparam("request_id"), _requests.c.version == bindparam("expected"))
    .values(
        state=bindparam("new_state"),
        version=bindparam("new_version"),
        updated_at=bindparam("new_updated_at"),
        head_hash=bindparam("new_head_hash"),
    )
)
_APPEND = insert(_history).returning(_history.c.id)
_HISTORY_KEYS = tuple(c.key for c in _history.columns if c.key != "id")


def _moment_columns(columns, ident, *hashes):
    return ident, columns.seq, columns.at, columns.event, columns.to_state, *hashes


def _advance_and_append(from_remembered: bool):
    """PostgreSQL: the versioned UPDATE, the history INSERT and the earlier entries the clocks
    need, in one round trip: all of them, or with ``from_remembered`` only those from the one
    the remembered history ends at (sla.MOMENTS), with their hashes to check the links. Every
    part of a WITH statement sees one snapshot, so the earlier entries are read as they stood;
    the new one comes back from the INSERT. When the version moved, the UPDATE changes nothing,
    the INSERT inserts nothing and no row carries an id."""
    hashes = (_history.c.prev_hash, _history.c.entry_hash) if from_remembered else ()
    advanced = _ADVANCE.returning(_requests.c.id).cte("advanced")
    values = select(*[bindparam(k, type_=_history.c[k].type) for k in _HISTORY_KEYS])
    appended = (
        insert(_history)
        .from_select(list(_HISTORY_KEYS), values.select_from(advanced))
        .returning(*_moment_columns(_history.c, _history.c.id, *hashes))
        .cte("appended")
    )
    appended_hashes = [appended.c[h.key] for h in hashes]
    earlier = select(*_moment_columns(_history.c, null().label("id"), *hashes)).where(
        _history.c.request_id == bindparam("request_id"),
        _history.c.seq < bindparam("seq"),
        exists(select(advanced.c.id)),
    )
    if from_remembered:
        earlier = earlier.where(_history.c.seq >= bindparam("remembered_seq"))
    new_entry = select(*_moment_columns(appended.c, appended.c.id, *appended_hashes))
    return union_all(new_entry, earlier).order_by("seq")


_ADVANCE_AND_APPEND = _advance_and_append(from_remembered=False)
_ADVANCE_AND_APPEND_FROM = _advance_and_append(from_remembered=True)


def _record_transition(
    session: Session, request: Request, event, to_state, actor, values, comment, now, definition
):
    """One versioned UPDATE (state, version, chain head) and one INSERT of the history entry.

    Written as plain statements rather than through the unit of work, which cost more than the
    rest of the transition; the request's in-memory state is then set as committed. On
    PostgreSQL both, and the read of the history the SLA clocks need, are one statement.
    Raises StaleVersion when the version moved (a concurrent loser fails on the UPDATE, never on
    the history row's unique (request_id, seq)).
    """
    expected = request.version
    entry = next_entry(
        request,
        seq=expected + 1,
        at=now,
        actor=actor,
        event=event.name,
        from_state=request.state,
        to_state=to_state,
        fields=values,
        comment=comment,
        definition_hash=definition.content_hash,
    )
    changed = {"state": to_state, "version": expected + 1, "updated_at": now}
    changed["head_hash"] = entry.entry_hash
    advance = {
        "request_id": request.id,
        "expected": expected,
        **{f"new_{k}": v for k, v in changed.items()},
    }
    columns = {key: getattr(entry, key) for key in _HISTORY_KEYS}
    connection = session.connection()
    moments = None
    if connection.dialect.name == "postgresql":
        # Read only the entries added since the history this process remembers, if any.
        latest = MOMENTS.latest(request.id)
        if latest is None:
            rows = connection.execute(_ADVANCE_AND_APPEND, {**advance, **columns}).all()
            # Unpacked, not read by name: a long-lived ticket has hundreds of entries.
            moments = tuple(Moment(at, name, state) for _id, _seq, at, name, state in rows)
        else:
            head, known = latest
            remembered = {**advance, **columns, "remembered_seq": len(known)}
            rows = connection.execute(_ADVANCE_AND_APPEND_FROM, remembered).all()
            moments = MOMENTS.extend(request.id, head, known, [row[2:] for row in rows])
        entry.id = next((row[0] for row in rows if row[0] is not None), None)
    else:
        entry.id = None
        if connection.execute(_ADVANCE, advance).rowcount == 1:
            entry.id = connection.execute(_APPEND, columns).scalar_one()
        # SQLite reads no history here: extend the one remembered for the head it moved from.
        known = MOMENTS.get(request.id, request.head_hash)
        if known is not None:
            moments = (*known, Moment(now, event.name, to_state))
    if entry.id is None:
        raise StaleVersion(
            "Someone else changed this request at the same moment. Reload and try again.",
            {"expected": expected},
        )
    for key, value in changed.items():
        set_committed_value(request, key, value)
    if moments is not None:
        # Even if this transaction rolls back, the history stays true of its head.
        MOMENTS.put(request.id, entry.entry_hash, moments)
    return entry


def check_references(
    session: Session, specs: dict, values: dict, contract_id: int | None, own_id: int | None
) -> None:
    """Links to other requests must name existing requests of the declared kinds under the same
    contract (never the request itself); raises InvalidInput naming the field."""
    problems: dict[str, list[str]] = {}
    for name, spec in specs.items():
        if spec["type"] not in REFERENCE_TYPES or values.get(name) is None:
            continue
        idents = values[name] if isinstance(values[name], list) else [values[name]]
        found = {
            row.id: row for row in session.scalars(select(Request).where(Request.id.in_(idents)))
        }
        kinds = spec.get("kinds")
        for ident in idents:
            row = found.get(ident)
            if row is None or row.contract_id != contract_id:
                problems.setdefault(name, []).append(f"No request #{ident} under this contract.")
            elif ident == own_id:
                problems.setdefault(name, []).append("A request cannot name itself.")
            elif kinds and row.kind not in kinds:
                problems.setdefault(name, []).append(
                    f"Request #{ident} is a '{row.kind}'; expected one of {', '.join(kinds)}."
                )
    if problems:
        raise InvalidInput("Some linked requests are not valid.", {"fields": problems})


def _resolve(session: Session, model, ident, label: str):
    if ident is None:
        return None
    if isinstance(ident, bool) or not isinstance(ident, int) or not 0 < ident < 2**31:
        raise InvalidInput(f"{label} must be an id.", {"fields": {label: ["Not a valid id."]}})
    row = session.get(model, ident)
    if row is None:
        raise InvalidInput(f"Unknown {label}.", {"fields": {label: [f"No such {label}."]}})
    return row


def create_request(
    session: Session,
    catalog: Catalog,
    actor,
    *,
    kind: str,
    contract_id: int,
    title: str,
    description: str = "",
    system_id: int | None = None,
    department_id: int | None = None,
    fields: dict | None = None,
    now: datetime | None = None,
) -> Request:
    """Create a request in its definition's initial state with its first history entry.

    Raises NotFound (unknown kind), InvalidInput or Forbidden.
    """
    definition = catalog.get(kind)
    problems: dict[str, list[str]] = {}
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        problems["title"] = [f"A title of 1 to {MAX_TITLE} characters is required."]
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems["description"] = [f"At most {MAX_DESCRIPTION} characters of text."]
    try:
        values = validate_fields(definition.fields, fields)
    except ValidationError as exc:
        problems["fields"] = exc.messages
    if problems:
        raise InvalidInput("Some fields are not valid.", {"fields": problems})

    contract = _resolve(session, Contract, contract_id, "contract_id")
    if contract is None:
        raise InvalidInput("A contract is required.", {"fields": {"contract_id": ["Required."]}})
    system = _resolve(session, System, system_id, "system_id")
    if system is not None and system.contract_id != contract.id:
        raise InvalidInput(
            "That system is not under this contract.",
            {"fields": {"system_id": ["Not under the chosen contract."]}},
        )
    if department_id is None:
        own = {a.department_id for a in actor.roles if a.role == "dept_user" and a.department_id}
        department_id = own.pop() if len(own) == 1 else None
    department = _resolve(session, Department, department_id, "department_id")
    check_references(session, definition.fields, values, contract.id, None)

    allowed = definition.content.get("create_roles") or []
    roles = roles_for_contract(actor, contract, department.id if department else None)
    if not roles & set(allowed):
        raise Forbidden(
            f"Raising a '{kind}' request under this contract needs one of the roles "
            + ", ".join(allowed)
            + ".",
            {"roles": allowed},
        )

    now = as_naive_utc(now) if now else utcnow()
    request = Request(
        kind=kind,
        definition_version=catalog.store(session, definition),
        title=title.strip(),
        description=description,
        state=definition.initial,
        version=1,
        contract_id=contract.id,
        system_id=system.id if system else None,
        department_id=department.id if department else None,
        submitter_id=actor.id,
        data=values,
        head_hash="",
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()
    append_entry(
        session,
        request,
        seq=1,
        at=now,
        actor=actor,
        event="create",
        from_state=None,
        to_state=request.state,
        fields={
            "title": request.title,
            "description": description,
            "contract_id": contract.id,
            "system_id": request.system_id,
            "department_id": request.department_id,
            "data": values,
        },
        comment="",
        definition_hash=definition.content_hash,
    )
    if definition.on_create:
        ctx = _context(session, request, actor, definition, None, values, now)
        for bound in definition.on_create:
            bound(ctx)
    session.flush()
    return request
