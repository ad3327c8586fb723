"""What each person should look at first: work awaiting them, overdue promises, their queue.

Everything is derived from the definitions (which events a role may fire from which state, which
date fields are promises) and filtered by the actor's scope, so a new workflow shows up on the
dashboards without code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session, selectinload

from models import Request
from workflow.engine import Catalog, EventOption, available_events
from workflow.scope import request_scope_clause
from workflow.sla import SlaStatus, has_clocks, statuses_for


@dataclass
class Step:
    """A (kind, state) where the actor holds a role for at least one event, with its count."""

    kind: str
    state: str
    events: list
    count: int


def open_clause(catalog: Catalog):
    """SQL condition: the request is not in a final state of its workflow."""
    parts = [
        and_(Request.kind == key, Request.state.in_(d.open_states()))
        for key, d in catalog.current.items()
    ]
    return or_(*parts) if parts else false()


def _actionable(catalog: Catalog, roles: set[str]) -> dict[tuple[str, str], list]:
    """(kind, state) → events from that state one of ``roles`` may fire."""
    found: dict[tuple[str, str], list] = {}
    for key, definition in catalog.current.items():
        for event in definition.events.values():
            if roles & set(event.roles):
                for source in event.sources:
                    found.setdefault((key, source), []).append(event)
    return found


def _actionable_clause(actionable: dict):
    parts = [and_(Request.kind == k, Request.state == s) for k, s in actionable]
    return or_(*parts) if parts else false()


def awaiting_steps(session: Session, actor, catalog: Catalog) -> list[Step]:
    """Counts of visible requests sitting in a state where the actor's roles have a step."""
    actionable = _actionable(catalog, actor.role_names())
    if not actionable:
        return []
    rows = session.execute(
        select(Request.kind, Request.state, func.count())
        .where(request_scope_clause(actor), _actionable_clause(actionable))
        .group_by(Request.kind, Request.state)
    ).all()
    steps = [Step(kind, state, actionable[(kind, state)], count) for kind, state, count in rows]
    return sorted(steps, key=lambda s: (s.kind, -s.count))


def awaiting_me(
    session: Session, actor, catalog: Catalog, limit: int = 15
) -> list[tuple[Request, list[EventOption]]]:
    """Requests where the actor may fire an event right now, oldest first, with those events.

    The SQL narrows by role and state; the engine then applies scope and guards (nobody is asked
    to approve their own work), so only steps the actor can really take are listed.
    """
    actionable = _actionable(catalog, actor.role_names())
    if not actionable:
        return []
    candidates = session.scalars(
        select(Request)
        .options(selectinload(Request.submitter), selectinload(Request.attachments))
        .where(request_scope_clause(actor), _actionable_clause(actionable))
        .order_by(Request.updated_at.asc(), Request.id.asc())
        .limit(limit * 4)
    ).all()
    found = []
    for request in candidates:
        allowed = [o for o in available_events(session, request, actor) if o.allowed]
        if allowed:
            found.append((request, allowed))
        if len(found) == limit:
            break
    return found


def overdue(
    session: Session, actor, catalog: Catalog, today: date, limit: int = 50
) -> list[tuple[Request, str, str]]:
    """Visible requests whose promised date passed while their clock runs: (request, field, date).

    Dates are stored as ISO text, so comparing the text compares the dates (SQLite and
    PostgreSQL alike).
    """
    parts = []
    for key, definition in catalog.current.items():
        for name in definition.deadline_fields():
            parts.append(
                (
                    key,
                    name,
                    and_(
                        Request.kind == key,
                        Request.state.in_(definition.clock_running_states()),
                        Request.data[name].as_string() < today.isoformat(),
                    ),
                )
            )
    if not parts:
        return []
    rows = session.scalars(
        select(Request)
        .where(request_scope_clause(actor), or_(*(clause for _, _, clause in parts)))
        .order_by(Request.id)
        .limit(limit)
    ).all()
    result = []
    for request in rows:
        for name in (n for key, n, _ in parts if key == request.kind):
            value = (request.data or {}).get(name)
            if isinstance(value, str) and value < today.isoformat():
                result.append((request, name, value))
                break
    return sorted(result, key=lambda item: item[2])


def assigned_to(session: Session, actor, catalog: Catalog, limit: int = 50) -> list[Request]:
    """Open requests assigned to the actor, in scope, oldest first."""
    return list(
        session.scalars(
            select(Request)
            .where(
                Request.assignee_id == actor.id,
                request_scope_clause(actor),
                open_clause(catalog),
            )
            .order_by(Request.created_at.asc(), Request.id.asc())
            .limit(limit)
        )
    )


def recent(session: Session, actor, limit: int = 10) -> list[Request]:
    """The most recently changed requests the actor may see."""
    return list(
        session.scalars(
            select(Request)
            .where(request_scope_clause(actor))
            .order_by(Request.updated_at.desc(), Request.id.desc())
            .limit(limit)
        )
    )


def open_faults(
    session: Session, actor, catalog: Catalog, now: datetime, limit: int = 200
) -> list[tuple[Request, SlaStatus]]:
    """Visible open fault tickets with their SLA status, the most urgent first: by the deadline
    of the next open target (breached ones first), paused and finished clocks last."""
    kinds = {key: d for key, d in catalog.current.items() if has_clocks(d)}
    if not kinds:
        return []
    clauses = [
        and_(Request.kind == key, Request.state.in_(d.open_states())) for key, d in kinds.items()
    ]
    rows = session.scalars(
        select(Request)
        .where(request_scope_clause(actor), or_(*clauses))
        .order_by(Request.id.desc())
        .limit(limit)
    ).all()
    statuses = statuses_for(session, rows, now)

    def urgency(item):
        target = item[1].next_open
        due = target.due_at if target is not None else None
        return (due or datetime.max, item[0].id)

    return sorted(((r, statuses[r.id]) for r in rows if r.id in statuses), key=urgency)
