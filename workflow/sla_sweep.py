"""Record SLA warnings and breaches of open fault tickets once, and notify people once.

``workflow.sla`` computes every deadline from the history on read; this sweep only *records*
what it finds (``SlaAlert``) so that each warning and each breach is announced exactly once:

* a target of an open ticket that has used at least 75 % of its time and is not breached yet
  gets a ``warning``; a breached target (running, paused, or finished late — "missed") gets a
  ``breach``. A target already breached when first seen gets only the breach: a "75 % used"
  message next to "breached" would be noise;
* each alert is inserted with ``INSERT … ON CONFLICT DO NOTHING RETURNING`` on the unique
  (request, target, kind); only the rows this sweep really inserted produce notifications,
  one to the ticket's assignee and one to every active IT staff member whose ``it_staff`` role
  covers the ticket (each person once);
* on PostgreSQL the sweep first takes a transaction-scoped advisory lock, so sweeps started on
  several nodes at once run one after the other (the unique constraint alone would already
  keep alerts single; the lock also keeps the work single). SQLite serialises writers anyway.

Subjects and bodies are written in the recipient's language (``User.locale``) with deadlines
in the contract's local time. Like every operation here it only flushes; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models import DefinitionVersion, Notification, Request, RoleAssignment, SlaAlert, User
from workflow.business_time import ZERO
from workflow.policy import TARGET_NAMES
from workflow.scope import assignment_covers
from workflow.sla import ClockCache, ContractClocks, TargetStatus, evaluate, moments_of

KIND = "incident"
# pg_advisory_xact_lock key of the sweep: any constant, the same on every node.
ADVISORY_LOCK_KEY = 0x5C_A5_EE_90  # "SLA sweep"
BATCH = 200
NOTIFY_ROLE = "it_staff"

TARGET_LABELS = {
    "response": {"en": "response", "zh": "响应"},
    "on_site": {"en": "on-site arrival", "zh": "到场"},
    "temporary_recovery": {"en": "temporary recovery", "zh": "临时恢复"},
    "resolution": {"en": "resolution", "zh": "解决"},
}


@dataclass(frozen=True)
class RecordedAlert:
    """One alert this sweep inserted (what the command prints)."""

    request_id: int
    title: str
    target: str
    kind: str  # "warning" or "breach"
    due_at: datetime  # naive UTC
    due_local: str  # "2026-11-25 10:30" in the contract's time zone
    timezone: str
    percent: int  # share of the target used, in whole per cent
    paused: bool


@dataclass
class SweepResult:
    """What one sweep did."""

    checked: int = 0
    warnings: int = 0
    breaches: int = 0
    notifications: int = 0
    recorded: list[RecordedAlert] = field(default_factory=list)

    @property
    def breaches_recorded(self) -> list[RecordedAlert]:
        """The breaches this sweep recorded, in the order it found them."""
        return [alert for alert in self.recorded if alert.kind == "breach"]


@dataclass(frozen=True)
class _Candidate:
    request: Request
    target: TargetStatus
    kind: str
    due_at: datetime
    clocks: ContractClocks


def sweep(session: Session, now: datetime) -> SweepResult:
    """Check every open incident at ``now`` (naive UTC); record new alerts and notify once."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    result = SweepResult()
    always_final = _always_final_states(session)
    cache = ClockCache(session)
    staff: list[tuple[User, RoleAssignment]] | None = None
    last_id = 0
    while True:
        query = (
            select(Request)
            .where(Request.kind == KIND, Request.id > last_id)
            .order_by(Request.id)
            .limit(BATCH)
        )
        if always_final:
            query = query.where(Request.state.not_in(always_final))
        batch = list(session.scalars(query))
        if not batch:
            break
        last_id = batch[-1].id
        candidates = _candidates(session, batch, cache, now, result)
        inserted = _record(session, candidates, now)
        if not inserted:
            continue
        if staff is None:
            staff = _staff(session)
        assignees = _users(session, {c.request.assignee_id for c in inserted})
        for candidate in inserted:
            alert = _recorded(candidate)
            result.recorded.append(alert)
            if alert.kind == "breach":
                result.breaches += 1
            else:
                result.warnings += 1
            for user in _recipients(candidate.request, assignees, staff):
                session.add(_notification(user, candidate.request, alert, now))
                result.notifications += 1
    session.flush()
    return result


def _always_final_states(session: Session) -> list[str]:
    """States final in every stored version of the incident definition (filtered in SQL; a
    state final in only some versions is checked per ticket)."""
    finals: set[str] | None = None
    for content in session.scalars(
        select(DefinitionVersion.content).where(DefinitionVersion.key == KIND)
    ):
        states = (content or {}).get("states") or {}
        names = {name for name, spec in states.items() if (spec or {}).get("final")}
        finals = names if finals is None else finals & names
    return sorted(finals or ())


def _candidates(
    session: Session, batch: list[Request], cache: ClockCache, now: datetime, result: SweepResult
) -> list[_Candidate]:
    from workflow.engine import definition_for  # the engine imports modules that import this

    moments = moments_of(session, [r.id for r in batch])
    found = []
    for request in batch:
        definition = definition_for(request)
        if definition.is_final(request.state):
            continue
        result.checked += 1
        clocks = cache.for_contract(request.contract)
        status = evaluate(request, definition, moments[request.id], clocks, now)
        if status is None:
            continue
        for target in sorted(status.targets, key=_target_order):
            if target.breached:
                kind = "breach"
            elif target.warning:
                kind = "warning"
            else:
                continue
            due_at = target.due_at
            if due_at is None:  # paused before its deadline: due if the clock ran on from now
                due_at = clocks.clock(target.clock).add(now, max(target.remaining, ZERO))
            found.append(_Candidate(request, target, kind, due_at, clocks))
    return found


def _target_order(target: TargetStatus) -> tuple[int, str]:
    """Targets in the order a ticket meets them (response first), unknown names last."""
    order = TARGET_NAMES.index(target.name) if target.name in TARGET_NAMES else len(TARGET_NAMES)
    return order, target.name


def _insert_statement(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"The SLA sweep does not support the {dialect} database.")
    return insert(SlaAlert)


def _record(session: Session, candidates: list[_Candidate], now: datetime) -> list[_Candidate]:
    """Insert the alerts not recorded yet; the candidates whose row this call inserted."""
    if not candidates:
        return []
    rows = [
        {
            "request_id": c.request.id,
            "target": c.target.name,
            "kind": c.kind,
            "due_at": c.due_at,
            "recorded_at": now,
        }
        for c in candidates
    ]
    statement = (
        _insert_statement(session)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["request_id", "target", "kind"])
        .returning(SlaAlert.request_id, SlaAlert.target, SlaAlert.kind)
    )
    inserted = {tuple(row) for row in session.execute(statement)}
    return [c for c in candidates if (c.request.id, c.target.name, c.kind) in inserted]


def _staff(session: Session) -> list[tuple[User, RoleAssignment]]:
    """Every active user's ``it_staff`` assignment (with the user)."""
    return list(
        session.execute(
            select(User, RoleAssignment)
            .join(RoleAssignment, RoleAssignment.user_id == User.id)
            .where(RoleAssignment.role == NOTIFY_ROLE, User.is_active.is_(True))
            .order_by(User.id)
        ).all()
    )


def _users(session: Session, ids: Iterable[int | None]) -> dict[int, User]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _recipients(
    request: Request, assignees: dict[int, User], staff: list[tuple[User, RoleAssignment]]
) -> list[User]:
    """The assignee (if any and active) and IT staff covering the ticket, each once."""
    found: dict[int, User] = {}
    assignee = assignees.get(request.assignee_id) if request.assignee_id else None
    if assignee is not None and assignee.is_active:
        found[assignee.id] = assignee
    vendor_id = request.contract.vendor_id if request.contract is not None else None
    for user, assignment in staff:
        if user.id not in found and assignment_covers(
            assignment,
            department_id=request.department_id,
            contract_id=request.contract_id,
            vendor_id=vendor_id,
        ):
            found[user.id] = user
    return list(found.values())


def _recorded(candidate: _Candidate) -> RecordedAlert:
    target, tz = candidate.target, candidate.clocks.timezone
    local = candidate.due_at.replace(tzinfo=UTC).astimezone(tz)
    return RecordedAlert(
        request_id=candidate.request.id,
        title=candidate.request.title,
        target=target.name,
        kind=candidate.kind,
        due_at=candidate.due_at,
        due_local=local.strftime("%Y-%m-%d %H:%M"),
        timezone=tz.key,
        percent=int(target.share * 100),
        paused=target.state == "paused",
    )


def _language(user: User) -> str:
    return "en" if (user.locale or "").lower().startswith("en") else "zh"


def subject_of(alert: RecordedAlert, language: str = "en") -> str:
    """The one-line subject of a notification about ``alert``, in ``language`` (en or zh)."""
    number = alert.request_id
    name = TARGET_LABELS.get(alert.target, {}).get(language, alert.target)
    if language == "zh":
        if alert.kind == "breach":
            return f"故障 #{number}：{name}已超时（时限 {alert.due_local}）"
        paused = "，计时暂停中" if alert.paused else ""
        return f"故障 #{number}：{name}时限 {alert.due_local}（已用 {alert.percent}%{paused}）"
    if alert.kind == "breach":
        return f"Incident #{number}: {name} breached (due at {alert.due_local})"
    paused = ", clock paused" if alert.paused else ""
    return f"Incident #{number}: {name} due at {alert.due_local} ({alert.percent} % used{paused})"


def body_of(alert: RecordedAlert, request: Request, language: str = "en") -> str:
    """The notification's text: the ticket, the target, the deadline and where to open it."""
    severity = (request.data or {}).get("severity") or "?"
    path = f"/requests/{alert.request_id}"
    name = TARGET_LABELS.get(alert.target, {}).get(language, alert.target)
    if language == "zh":
        due = f"应于 {alert.due_local}（{alert.timezone}）前完成"
        what = (
            f"{name}时限已过：{due}。"
            if alert.kind == "breach"
            else f"{name}时限已用 {alert.percent}%，{due}"
            + ("；计时暂停中，此时间按现在恢复计时推算。" if alert.paused else "。")
        )
        return f"故障 #{alert.request_id}（{severity}）：{request.title}\n{what}\n查看：{path}\n"
    what = (
        f"The {name} target was breached: it was due at {alert.due_local} ({alert.timezone})."
        if alert.kind == "breach"
        else f"{alert.percent} % of the {name} target is used; it is due at {alert.due_local} "
        f"({alert.timezone})"
        + ("; the clock is paused, so this assumes it runs again now." if alert.paused else ".")
    )
    return f"Incident #{alert.request_id} ({severity}): {request.title}\n{what}\nOpen: {path}\n"


def _notification(user: User, request: Request, alert: RecordedAlert, now: datetime):
    language = _language(user)
    return Notification(
        user_id=user.id,
        request_id=request.id,
        subject=subject_of(alert, language)[:300],
        body=body_of(alert, request, language),
        created_at=now,
    )
