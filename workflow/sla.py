"""Service-level clocks of a fault ticket, computed from its history (DOMAIN §4; docs/SLA.md).

Nothing here is stored: every deadline, warning and breach is worked out on read from the
contract's SLA table, the contract's calendar and the request's history, so it is right even
when no job has run. ``changeflow sla sweep`` (``workflow.sla_sweep``) only records what this
module finds, to notify people once.

The rules, per target of the ticket's level (response, on site, temporary recovery, resolution):

* the clock starts at the report (the request's creation); a report outside business hours
  uses the level's ``outside_hours_targets`` where the table has them (D3);
* it counts only while the ticket is in a state whose ``clock`` is ``runs``: time in
  ``waiting_hospital`` (``paused``) or ``resolved`` (``stopped``) does not count;
* it stops for good at the first event that lists it in ``stops_clocks`` (``acknowledge``
  stops ``response``); a target without such an event is finished while the ticket is in a
  ``stopped`` state, and runs on when a reopen takes it back to a running one;
* the level is the ticket's *current* severity: changing it recomputes every deadline from the
  report time, as if the new level had been given at once.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from models import HistoryEntry, Request
from workflow.business_calendar import WorkingCalendar, is_provisional, load_overrides
from workflow.business_time import ZERO, BusinessClock, WallClock, day_intervals
from workflow.definition import Definition

WARNING_SHARE = 0.75
UNIT_MINUTES = {"minutes": 1, "hours": 60}


class Moment(NamedTuple):
    """What the clocks need of one history entry (a tuple: one is made per entry read)."""

    at: datetime
    event: str
    to_state: str


class ContractClocks:
    """The 7×24 clock and the business clock of one contract's policy."""

    def __init__(self, policy: dict, overrides: Mapping[date, bool]):
        calendar_spec = policy.get("calendar") or {}
        self.timezone = ZoneInfo(policy.get("timezone") or "Asia/Shanghai")
        calendar = WorkingCalendar(
            overrides, statutory=calendar_spec.get("workdays", "statutory") == "statutory"
        )
        hours = calendar_spec.get("business_hours")
        self.wall = WallClock()
        self.business = (
            BusinessClock(calendar, day_intervals(hours), self.timezone) if hours else None
        )
        self.statutory = calendar.statutory

    def clock(self, kind: str):
        """The clock a target runs on (``7x24`` or ``business_hours``)."""
        if kind == "business_hours" and self.business is not None:
            return self.business
        return self.wall

    def inside_hours(self, at: datetime) -> bool:
        """Whether a report at ``at`` falls inside business hours (always, without hours)."""
        return self.business is None or self.business.is_open(at)

    def budget(self, target: dict) -> timedelta:
        """A target's amount as clock time (working days are business days' worth of hours)."""
        amount = float(target["amount"])
        if target["unit"] == "working_days":
            business = self.business
            return business.day_length * amount if business else timedelta(days=amount)
        return timedelta(minutes=amount * UNIT_MINUTES[target["unit"]])


# Contract clocks depend only on a policy's time zone and calendar and on the overrides, so a
# process keeps them across requests: what their business clocks remember (days, measured
# stretches) then serves every later request. A change of overrides is a new key.
_SHARED_CLOCKS: dict[tuple, ContractClocks] = {}
SHARED_CLOCKS_MAX = 16


def _shared_clocks(policy: dict, overrides: Mapping[date, bool], overrides_key) -> ContractClocks:
    key = (
        policy.get("timezone"),
        json.dumps(policy.get("calendar"), sort_keys=True, default=str),
        overrides_key,
    )
    found = _SHARED_CLOCKS.get(key)
    if found is None:
        if len(_SHARED_CLOCKS) >= SHARED_CLOCKS_MAX:
            _SHARED_CLOCKS.clear()
        found = _SHARED_CLOCKS[key] = ContractClocks(policy, overrides)
    return found


class ClockCache:
    """Contract clocks built once per contract and overrides read once, for a page of tickets."""

    def __init__(self, session: Session):
        self.session = session
        self._overrides: dict[date, bool] | None = None
        self._overrides_key: frozenset | None = None
        self._clocks: dict[int, ContractClocks] = {}

    def for_contract(self, contract) -> ContractClocks:
        """The clocks of ``contract`` (reads the overrides on first use)."""
        if self._overrides is None:
            self._overrides = load_overrides(self.session)
            self._overrides_key = frozenset(self._overrides.items())
        found = self._clocks.get(contract.id)
        if found is None:
            found = self._clocks[contract.id] = _shared_clocks(
                contract.policy, self._overrides, self._overrides_key
            )
        return found


@dataclass
class TargetStatus:
    """One target of one ticket, as it stands at ``now``."""

    name: str
    amount: str
    unit: str
    clock: str
    outside_hours: bool
    budget: timedelta
    used: timedelta
    due_at: datetime | None  # None while paused before the deadline
    warn_at: datetime | None
    finished_at: datetime | None
    state: str  # running, paused, met, missed
    provisional: bool

    @property
    def remaining(self) -> timedelta:
        """Clock time left (negative once breached)."""
        return self.budget - self.used

    @property
    def share(self) -> float:
        """The share of the target used, 0.0 … (above 1.0 once breached)."""
        return self.used / self.budget if self.budget > ZERO else 1.0

    @property
    def breached(self) -> bool:
        """Whether the target was or is missed."""
        return self.used > self.budget

    @property
    def warning(self) -> bool:
        """Whether at least 75 % is used and the target is not done yet."""
        return self.state in ("running", "paused") and self.share >= WARNING_SHARE

    @property
    def open(self) -> bool:
        """Whether the clock can still move (running or paused)."""
        return self.state in ("running", "paused")


@dataclass
class SlaStatus:
    """Every target of one ticket; ``level`` is None when its severity is not in the table."""

    level: dict | None
    targets: list[TargetStatus]
    reported_at: datetime
    outside_hours: bool

    @property
    def provisional(self) -> bool:
        """Whether some deadline rests on a year whose official schedule is not published yet."""
        return any(t.provisional for t in self.targets)

    @property
    def next_open(self) -> TargetStatus | None:
        """The open target due first (what a countdown shows)."""
        open_targets = [t for t in self.targets if t.open]
        return min(open_targets, key=lambda t: t.remaining, default=None)


class _Stretches(NamedTuple):
    """Where one target's clock ran: the first ``closed`` stretches of the timeline, then
    ``tail`` (open when its end is None); when it finished, its phase (``running``, ``paused``
    or ``finished``) and the end of its last stretch."""

    closed: int
    tail: tuple[datetime, datetime | None] | None
    finished_at: datetime | None
    phase: str
    last_end: datetime | None


class _Timeline:
    """One walk over a ticket's history: the stretches during which a clock runs, and where
    each clock-stopping event first happened.

    Every target of a ticket shares these stretches up to its own first stop event, so they are
    worked out once; each clock measures each stretch once (``totals``), and a target's used
    time and due instants then come from running sums instead of a walk per target. The walk
    is a fold over the moments, so a remembered timeline (TIMELINES) goes on from where it
    stopped when a ticket's history grows, instead of measuring every stretch again.
    """

    def __init__(self, definition: Definition):
        self.definition = definition
        self._stopping = {e.name for e in definition.events.values() if e.stops_clocks}
        self._runs_in = {
            name: spec.get("clock", "runs") == "runs" for name, spec in definition.states.items()
        }
        self.segments: list[tuple[datetime, datetime]] = []  # closed stretches, in order
        # event name -> (position in the history, closed stretches so far, open since, at)
        self.stops: dict[str, tuple[int, int, datetime | None, datetime]] = {}
        self.walked = 0  # moments folded in so far
        self.latest: datetime | None = None  # the latest instant among them
        self.state: str | None = None
        self.entered: datetime | None = None
        self.open_since: datetime | None = None
        # clock -> running totals over the closed stretches; a clock is its own key (a clock
        # held here stays alive, so an id can never be reused by another)
        self._totals: dict[object, list[timedelta]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, moments: Sequence[Moment], definition: Definition, now: datetime) -> _Timeline:
        """The timeline of ``moments`` up to ``now`` (later moments have not happened yet)."""
        timeline = cls(definition)
        timeline.advance(moments, now)
        return timeline

    def advance(self, moments: Sequence[Moment], now: datetime) -> None:
        """Fold in ``moments[self.walked:]`` up to ``now``."""
        stopping, runs_in = self._stopping, self._runs_in
        state, entered, open_since = self.state, self.entered, self.open_since
        latest, position = self.latest, self.walked
        for position in range(self.walked, len(moments)):
            moment = moments[position]
            if moment.at > now:
                break
            if latest is None or moment.at > latest:
                latest = moment.at
            if moment.event in stopping and moment.event not in self.stops:
                self.stops[moment.event] = (position, len(self.segments), open_since, moment.at)
            if moment.to_state != state:
                state, entered = moment.to_state, moment.at
                runs = runs_in[state]
                if runs and open_since is None:
                    open_since = moment.at
                elif not runs and open_since is not None:
                    self.segments.append((open_since, moment.at))
                    open_since = None
        else:
            position = len(moments)
        self.walked, self.latest = position, latest
        self.state, self.entered, self.open_since = state, entered, open_since

    @property
    def state_clock(self) -> str:
        """The clock setting of the state the ticket is in (``runs`` before any moment)."""
        if self.state is None:
            return "runs"
        return self.definition.states[self.state].get("clock", "runs")

    def copy(self) -> _Timeline:
        """An independent timeline at the same point, to advance without touching this one."""
        twin = _Timeline.__new__(_Timeline)
        twin.__dict__.update(self.__dict__)
        twin.segments = list(self.segments)
        twin.stops = dict(self.stops)
        with self._lock:
            twin._totals = {clock: list(totals) for clock, totals in self._totals.items()}
        twin._lock = threading.Lock()
        return twin

    def totals(self, clock, count: int) -> list[timedelta]:
        """Running totals of ``clock`` time over the closed stretches, at least ``count`` long."""
        with self._lock:  # a remembered timeline serves every thread of the process
            totals = self._totals.setdefault(clock, [])
            total = totals[-1] if totals else ZERO
            for begin, end in self.segments[len(totals) : count]:
                total += clock.measured(begin, end)
                totals.append(total)
            return totals

    def for_target(self, stop_events: set[str]) -> _Stretches:
        """The stretches of one target, whose clock stops for good at any of ``stop_events``."""
        first = min((self.stops[e] for e in stop_events if e in self.stops), default=None)
        if first is not None:
            _position, closed, open_since, at = first
            if open_since is not None:
                return _Stretches(closed, (open_since, at), at, "finished", at)
            return _Stretches(closed, None, at, "finished", self._end_of(closed))
        closed = len(self.segments)
        if self.open_since is not None:
            return _Stretches(closed, (self.open_since, None), None, "running", None)
        if self.state_clock == "stopped":
            return _Stretches(closed, None, self.entered, "finished", self._end_of(closed))
        return _Stretches(closed, None, None, "paused", self._end_of(closed))

    def _end_of(self, closed: int) -> datetime | None:
        return self.segments[closed - 1][1] if closed else None

    def used(self, clock, stretches: _Stretches, until: datetime) -> timedelta:
        """The clock time a target has used by ``until``."""
        closed, tail = stretches.closed, stretches.tail
        used = self.totals(clock, closed)[closed - 1] if closed else ZERO
        if tail is not None:
            used += clock.elapsed(tail[0], min(tail[1] or until, until))
        return used

    def crossing(self, clock, stretches: _Stretches, budget: timedelta) -> datetime | None:
        """When ``budget`` of running clock time is used up; None if the stretches end first."""
        closed, tail = stretches.closed, stretches.tail
        totals = self.totals(clock, closed)
        index = bisect_left(totals, budget, 0, closed)
        if index < closed:
            before = totals[index - 1] if index else ZERO
            return clock.add(self.segments[index][0], budget - before)
        left = budget - (totals[closed - 1] if closed else ZERO)
        if tail is None:
            return None
        begin, end = tail
        if end is None or left <= clock.elapsed(begin, end):
            return clock.add(begin, left)
        return None


def level_keys(policy: dict | None) -> list[str]:
    """The keys of a policy's SLA levels, in order (none without an SLA table)."""
    return [lvl["key"] for lvl in ((policy or {}).get("sla") or {}).get("levels") or []]


def level_of(policy: dict, severity: str | None) -> dict | None:
    """The SLA table's level with key ``severity``, or None."""
    sla = policy.get("sla") or {}
    return next((lvl for lvl in sla.get("levels") or [] if lvl["key"] == severity), None)


def evaluate(
    request: Request,
    definition: Definition,
    moments: Sequence[Moment],
    clocks: ContractClocks,
    now: datetime,
) -> SlaStatus | None:
    """The service-level status of a ticket at ``now``; None when its contract has no SLA."""
    policy = request.contract.policy
    if not policy.get("sla"):
        return None
    reported_at = moments[0].at if moments else request.created_at
    outside = not clocks.inside_hours(reported_at)
    level = level_of(policy, (request.data or {}).get("severity"))
    status = SlaStatus(level=level, targets=[], reported_at=reported_at, outside_hours=outside)
    if level is None:
        return status
    targets = dict(level["targets"])
    swapped = set()
    if outside:
        for name, target in (level.get("outside_hours_targets") or {}).items():
            targets[name] = target
            swapped.add(name)
    timeline = TIMELINES.timeline(getattr(request, "id", None), definition, moments, now)
    for name, target in targets.items():
        stop_events = {e.name for e in definition.events.values() if name in e.stops_clocks}
        clock = clocks.clock(
            target["clock"] if target["unit"] != "working_days" else "business_hours"
        )
        budget = clocks.budget(target)
        stretches = timeline.for_target(stop_events)
        finished_at, phase = stretches.finished_at, stretches.phase
        until = finished_at or now
        used = timeline.used(clock, stretches, until)
        due_at = timeline.crossing(clock, stretches, budget)
        if due_at is None and phase == "finished" and (stretches.closed or stretches.tail):
            # Met before the deadline: the deadline as it stood when the clock stopped.
            due_at = clock.add(stretches.last_end or until, budget - used)
        state = {"running": "running", "paused": "paused"}.get(phase) or (
            "missed" if used > budget else "met"
        )
        years = {reported_at.year} | ({due_at.year} if due_at else set())
        status.targets.append(
            TargetStatus(
                name=name,
                amount=str(target["amount"]),
                unit=target["unit"],
                clock=clock.kind,
                outside_hours=name in swapped,
                budget=budget,
                used=used,
                due_at=due_at,
                warn_at=timeline.crossing(clock, stretches, budget * WARNING_SHARE),
                finished_at=finished_at,
                state=state,
                provisional=clock is clocks.business
                and clocks.statutory
                and any(is_provisional(y) for y in years),
            )
        )
    return status


# Core on the table, built once: every fault ticket shown or moved reads its history here, and
# the ORM's execution path cost twice the query (a quarter of a transition's worker CPU). Each
# row carries its entry's hash, so the last one names the chain head the moments belong to.
_history = HistoryEntry.__table__
_MOMENTS = (
    select(
        _history.c.request_id,
        _history.c.at,
        _history.c.event,
        _history.c.to_state,
        _history.c.entry_hash,
    )
    .where(_history.c.request_id.in_(bindparam("ids", expanding=True)))
    .order_by(_history.c.request_id, _history.c.seq)
)
# One request's entries from the one its remembered head names on (MomentMemo.extend).
_MOMENTS_FROM = (
    select(
        _history.c.at,
        _history.c.event,
        _history.c.to_state,
        _history.c.prev_hash,
        _history.c.entry_hash,
    )
    .where(_history.c.request_id == bindparam("request_id"), _history.c.seq >= bindparam("seq"))
    .order_by(_history.c.seq)
)


class _MomentBoundedMemo:
    """Per-process memory keyed by request id, bounded by the moments its entries hold; the
    least recently used entries go first. Subclasses say what an entry is."""

    def __init__(self, capacity: int = 50_000):
        self.capacity = capacity
        self._lock = threading.Lock()
        self._held: OrderedDict[int, tuple] = OrderedDict()
        self._weights: dict[int, int] = {}
        self._size = 0

    def _store(self, request_id: int, entry: tuple, moments: int) -> None:
        """Keep ``entry`` for a request, worth ``moments``; nothing larger than the memory."""
        if moments > self.capacity:
            return
        with self._lock:
            self._held.pop(request_id, None)
            self._size += moments - self._weights.pop(request_id, 0)
            self._held[request_id] = entry
            self._weights[request_id] = moments
            while self._size > self.capacity:
                evicted, _gone = self._held.popitem(last=False)
                self._size -= self._weights.pop(evicted)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._held.clear()
            self._weights.clear()
            self._size = 0


class MomentMemo(_MomentBoundedMemo):
    """The clock histories of recently read or moved tickets, per process, keyed by chain head.

    A chain head is a SHA-256 over the previous head and the last entry, its time, event and
    new state among them: one head names one history. So a memory found under the head a
    request now has is that request's history, whoever committed or rolled back what since, and
    a transition needs to read no history to show its clocks: it adds its own entry to what the
    previous head named. Only what was read in one statement, or built from such a memory and
    a new entry, is kept. Bounded by the moments held; the least recently used go first.
    """

    def get(self, request_id: int, head: str | None) -> tuple[Moment, ...] | None:
        """The history ending at ``head``, or None when it is not remembered."""
        with self._lock:
            known = self._held.get(request_id)
            if known is None or known[0] != head:
                return None
            self._held.move_to_end(request_id)
            return known[1]

    def put(self, request_id: int, head: str, moments: tuple[Moment, ...]) -> None:
        """Remember ``moments`` as the history ending at ``head`` (replacing an older head)."""
        self._store(request_id, (head, moments), len(moments))

    def latest(self, request_id: int) -> tuple[str, tuple[Moment, ...]] | None:
        """The head and history last remembered for a request, whichever head it was."""
        with self._lock:
            return self._held.get(request_id)

    def extend(
        self, request_id: int, head: str, known: tuple[Moment, ...], rows: Sequence
    ) -> tuple[Moment, ...] | None:
        """``known``, the history ending at ``head``, plus the entries after it; remembered.

        ``rows`` are (at, event, to_state, prev_hash, entry_hash) in chain order, read in one
        statement from the entry ``head`` names on. Returns None, remembering nothing, unless
        the first row is that entry and each later one links to the row before it.
        """
        if not rows or rows[0][4] != head:
            return None
        for earlier, later in zip(rows, rows[1:], strict=False):
            if later[3] != earlier[4]:
                return None
        moments = known + tuple(Moment(at, event, to) for at, event, to, _p, _h in rows[1:])
        self.put(request_id, rows[-1][4], moments)
        return moments


MOMENTS = MomentMemo()


class TimelineMemo(_MomentBoundedMemo):
    """The timelines of recently shown tickets, per process, keyed by request.

    A timeline is a fold over a ticket's moments, so one remembered for a prefix of the
    moments now shown goes on from where it stopped: showing a ticket after a transition
    measures one new stretch instead of every stretch of its history again. Whether the
    remembered moments are a prefix is checked by comparing them, so nothing here trusts
    where the moments came from. Bounded by the moments walked; least recently used go first.
    """

    def timeline(
        self, request_id: int | None, definition: Definition, moments: Sequence[Moment], now
    ) -> _Timeline:
        """The timeline of ``moments`` up to ``now``, from what is remembered where it can."""
        moments = tuple(moments)
        with self._lock:
            known = self._held.get(request_id)
            if known is not None:
                self._held.move_to_end(request_id)
        if known is not None:
            seen, timeline = known
            if (
                timeline.definition is definition
                and (timeline.latest is None or timeline.latest <= now)
                and len(seen) <= len(moments)
                and (seen is moments or moments[: len(seen)] == seen)
            ):
                if timeline.walked == len(moments):
                    return timeline
                grown = timeline.copy()  # others may be reading the remembered one
                grown.advance(moments, now)
                self._store(request_id, (moments, grown), len(moments))
                return grown
        fresh = _Timeline.of(moments, definition, now)
        if request_id is not None:
            self._store(request_id, (moments, fresh), len(moments))
        return fresh


TIMELINES = TimelineMemo()


def moments_of(session: Session, request_ids: Iterable[int]) -> dict[int, list[Moment]]:
    """The clock-relevant part of the history of several requests, in order, in one query;
    remembers each (MOMENTS). Raises what the driver raises."""
    ids = list(request_ids)
    found: dict[int, list[Moment]] = {i: [] for i in ids}
    if not ids:
        return found
    session.flush()  # what the ORM would autoflush before a query of its own
    connection = session.connection()
    if len(ids) == 1 and (latest := MOMENTS.latest(ids[0])) is not None:
        # Another process moved it since: read only what was added after what is remembered.
        head, known = latest
        rows = connection.execute(_MOMENTS_FROM, {"request_id": ids[0], "seq": len(known)})
        extended = MOMENTS.extend(ids[0], head, known, rows.all())
        if extended is not None:
            return {ids[0]: list(extended)}
    heads = {}
    for request_id, at, event, to_state, head in connection.execute(_MOMENTS, {"ids": ids}):
        found[request_id].append(Moment(at, event, to_state))
        heads[request_id] = head
    for request_id, head in heads.items():
        MOMENTS.put(request_id, head, tuple(found[request_id]))
    return found


def has_clocks(definition: Definition) -> bool:
    """Whether a definition's requests carry service-level clocks (some event stops one)."""
    return any(event.stops_clocks for event in definition.events.values())


def statuses_for(
    session: Session, requests: Iterable[Request], now: datetime
) -> dict[int, SlaStatus]:
    """The SLA status of every request among ``requests`` that has clocks, keyed by id.

    One history query for all of them; contract clocks and overrides are read once.
    """
    from workflow.engine import definition_for  # the engine imports this module's users

    timed = [(r, definition_for(r)) for r in requests]
    timed = [(r, d) for r, d in timed if has_clocks(d)]
    if not timed:
        return {}
    moments = {r.id: m for r, _ in timed if (m := MOMENTS.get(r.id, r.head_hash)) is not None}
    moments.update(moments_of(session, [r.id for r, _ in timed if r.id not in moments]))
    cache = ClockCache(session)
    found = {}
    for request, definition in timed:
        status = evaluate(
            request, definition, moments[request.id], cache.for_contract(request.contract), now
        )
        if status is not None:
            found[request.id] = status
    return found


def _minutes(delta: timedelta) -> float:
    return round(delta.total_seconds() / 60, 1)


def sla_data(status: SlaStatus, request: Request) -> dict:
    """A ticket's SLA status as plain data (API and pages); minutes are clock minutes."""
    data = request.data or {}
    return {
        "level": status.level["key"] if status.level else (data.get("severity") or None),
        "level_label": status.level["label"] if status.level else None,
        "known_level": status.level is not None,
        "reported_at": status.reported_at,
        "outside_hours": status.outside_hours,
        "provisional": status.provisional,
        "recurring": bool(data.get("recurring")),
        "reopen_count": int(data.get("reopen_count") or 0),
        "targets": [
            {
                "name": t.name,
                "amount": t.amount,
                "unit": t.unit,
                "clock": t.clock,
                "outside_hours": t.outside_hours,
                "state": t.state,
                "due_at": t.due_at,
                "warn_at": t.warn_at,
                "finished_at": t.finished_at,
                "budget_minutes": _minutes(t.budget),
                "used_minutes": _minutes(t.used),
                "remaining_minutes": _minutes(t.remaining),
                "share": round(t.share, 3),
                "warning": t.warning,
                "breached": t.breached,
            }
            for t in status.targets
        ],
    }
