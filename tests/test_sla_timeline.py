"""The SLA clocks' single walk over a ticket's history gives what replaying the history once per
target gives (docs/SLA.md).

``workflow.sla.evaluate`` walks a history once, shares the stretches between targets and takes
used time and due instants from running sums of remembered stretch lengths. The oracle below is
the plain reading of the rules: for every target, replay the whole history from the report, cut
it at the target's first stop event and measure every stretch afresh. Hypothesis draws histories
(simultaneous entries, pauses, stops, reopens, entries after ``now``) under every shipped policy
and level, with and without calendar overrides.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow import business_time, sla
from workflow.business_calendar import WorkingCalendar
from workflow.business_time import BusinessClock, day_intervals
from workflow.definition import load_definition_file
from workflow.policy import load_policy_dir
from workflow.sla import WARNING_SHARE, ZERO, ContractClocks, Moment, evaluate

ROOT = Path(__file__).resolve().parent.parent
POLICIES = {
    key: p.document for key, p in load_policy_dir(ROOT / "definitions" / "policies").items()
}
SLA_POLICIES = sorted(key for key, document in POLICIES.items() if document.get("sla"))
INCIDENT = load_definition_file(ROOT / "definitions" / "workflows" / "incident.yaml")
START = datetime(2026, 9, 28, 0, 0)  # spans National Day and its make-up Saturday


def replay(moments, stop_events, now):
    """One target's stretches by a fresh walk: (stretches, finished_at, phase)."""
    stretches, state, entered, open_since = [], None, None, None
    for moment in moments:
        if moment.at > now:
            break
        if moment.event in stop_events:
            if open_since is not None:
                stretches.append((open_since, moment.at))
            return stretches, moment.at, "finished"
        if moment.to_state != state:
            state, entered = moment.to_state, moment.at
            runs = INCIDENT.states[state].get("clock", "runs") == "runs"
            if runs and open_since is None:
                open_since = moment.at
            elif not runs and open_since is not None:
                stretches.append((open_since, moment.at))
                open_since = None
    if open_since is not None:
        return stretches + [(open_since, None)], None, "running"
    stopped = state is not None and INCIDENT.states[state].get("clock", "runs") == "stopped"
    return stretches, (entered if stopped else None), ("finished" if stopped else "paused")


def crossing(stretches, clock, budget):
    """When ``budget`` is used up, stretch by stretch; None if the stretches end first."""
    left = budget
    for begin, end in stretches:
        if end is None:
            return clock.add(begin, left)
        length = clock.elapsed(begin, end)
        if left <= length:
            return clock.add(begin, left)
        left -= length
    return None


def oracle(policy, severity, moments, clocks, now):
    """Every target of the level as (name, state, used, due_at, warn_at, finished_at)."""
    level = sla.level_of(policy, severity)
    reported = moments[0].at
    targets = dict(level["targets"])
    if not clocks.inside_hours(reported):
        targets.update(level.get("outside_hours_targets") or {})
    found = []
    for name, target in targets.items():
        stops = {e.name for e in INCIDENT.events.values() if name in e.stops_clocks}
        kind = target["clock"] if target["unit"] != "working_days" else "business_hours"
        clock, budget = clocks.clock(kind), clocks.budget(target)
        stretches, finished_at, phase = replay(moments, stops, now)
        until = finished_at or now
        used = sum(
            (clock.elapsed(b, min(e or until, until)) for b, e in stretches),
            ZERO,
        )
        due_at = crossing(stretches, clock, budget)
        if due_at is None and phase == "finished" and stretches:
            due_at = clock.add(stretches[-1][1] or until, budget - used)
        state = phase if phase != "finished" else ("missed" if used > budget else "met")
        warn_at = crossing(stretches, clock, budget * WARNING_SHARE)
        found.append((name, state, used, due_at, warn_at, finished_at))
    return found


EVENTS = sorted(INCIDENT.events) + ["create", "comment"]
STATES = sorted(INCIDENT.states)


@st.composite
def histories(draw):
    """A report followed by entries minutes to days apart (some at the same instant)."""
    at = START + timedelta(minutes=draw(st.integers(0, 14 * 24 * 60)))
    moments = [Moment(at, "create", "reported")]
    for _ in range(draw(st.integers(0, 40))):
        at += timedelta(minutes=draw(st.sampled_from([0, 1, 17, 59, 60, 240, 600, 1440, 4000])))
        moments.append(Moment(at, draw(st.sampled_from(EVENTS)), draw(st.sampled_from(STATES))))
    return moments


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy_key=st.sampled_from(SLA_POLICIES),
    data=st.data(),
    moments=histories(),
    now_offset=st.integers(-3000, 6000),
    holiday=st.booleans(),
    shown_before=st.one_of(
        st.none(),
        st.tuples(st.integers(0, 41), st.integers(-3000, 6000), st.booleans(), histories()),
    ),
)
def test_one_walk_gives_what_a_replay_per_target_gives(
    policy_key, data, moments, now_offset, holiday, shown_before
):
    policy = POLICIES[policy_key]
    severity = data.draw(st.sampled_from(sla.level_keys(policy)))
    # An override that makes a working Thursday a day off, or none.
    overrides = {date(2026, 10, 15): False} if holiday else {}
    now = moments[-1].at + timedelta(minutes=now_offset)
    ticket = SimpleNamespace(
        id=7,
        contract=SimpleNamespace(policy=policy),
        data={"severity": severity},
        created_at=moments[0].at,
    )
    # The same clocks serve both sides, so the oracle also checks what they remember.
    clocks = ContractClocks(policy, overrides)
    sla.TIMELINES.clear()
    if shown_before is not None:
        # The ticket was shown earlier, with part of its history, at another instant: the
        # remembered timeline must go on correctly or be set aside (sla.TIMELINES).
        # Either part of the same history or (as if the memory were stale) another one.
        cut, offset, same, other = shown_before
        shown_at = moments[-1].at + timedelta(minutes=offset)
        evaluate(ticket, INCIDENT, (moments if same else other)[:cut], clocks, shown_at)
    for _ in range(2):  # the second time from the clocks' memory of measured stretches
        status = evaluate(ticket, INCIDENT, moments, clocks, now)
        got = [
            (t.name, t.state, t.used, t.due_at, t.warn_at, t.finished_at) for t in status.targets
        ]
        assert got == oracle(policy, severity, moments, ContractClocks(policy, overrides), now)


def test_a_remembered_timeline_is_never_changed_by_the_one_grown_from_it():
    """Another thread may still be reading the timeline a ticket had before its transition."""
    start = datetime(2026, 11, 2, 9, 0)
    moments = [Moment(start, "create", "reported")]
    for n, state in enumerate(["in_progress", "waiting_hospital"] * 3, start=1):
        moments.append(Moment(start + timedelta(hours=n), "move", state))
    now = moments[-1].at + timedelta(hours=1)
    clock = sla.WallClock()
    before = sla.TIMELINES.timeline(3, INCIDENT, moments[:4], now)
    snapshot = (before.walked, list(before.segments), list(before.totals(clock, 9)))
    after = sla.TIMELINES.timeline(3, INCIDENT, moments, now)
    assert after is not before
    assert (before.walked, before.segments, before.totals(clock, 9)) == snapshot
    fresh = sla._Timeline.of(moments, INCIDENT, now)
    assert (after.walked, after.segments, after.totals(clock, 9)) == (
        fresh.walked,
        fresh.segments,
        fresh.totals(clock, 9),
    )
    # Asked again for the same moments, the process answers from memory.
    assert sla.TIMELINES.timeline(3, INCIDENT, tuple(moments), now) is after


def test_timelines_are_forgotten_least_recently_used_first_by_moments_held():
    memo = sla.TimelineMemo(capacity=5)
    history = [Moment(START + timedelta(hours=n), "move", "in_progress") for n in range(3)]
    first = memo.timeline(1, INCIDENT, history, START + timedelta(days=1))
    memo.timeline(2, INCIDENT, history[:2], START + timedelta(days=1))
    assert memo.timeline(1, INCIDENT, history, START + timedelta(days=1)) is first
    memo.timeline(3, INCIDENT, history[:2], START + timedelta(days=1))  # 3 + 2 + 2 > 5
    assert memo.timeline(1, INCIDENT, history, START + timedelta(days=1)) is first
    assert 2 not in memo._held


def test_a_business_clock_remembers_what_it_measured_and_forgets_all_when_full(monkeypatch):
    monkeypatch.setattr(business_time, "MEASURED_MEMO", 3)
    clock = BusinessClock(
        WorkingCalendar(), day_intervals({"start": "08:00", "end": "18:00"}), sla.ZoneInfo("UTC")
    )
    monday = datetime(2026, 11, 2, 7, 0)
    stretches = [(monday, monday + timedelta(hours=h)) for h in (2, 3, 4, 30)]
    assert [clock.measured(b, e) for b, e in stretches[:3]] == [
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=3),
    ]
    assert len(clock._measured) == 3
    # The fourth does not fit: the memory starts again rather than growing.
    assert clock.measured(*stretches[3]) == clock.elapsed(*stretches[3]) == timedelta(hours=15)
    assert list(clock._measured) == [stretches[3]]


def test_clocks_are_shared_per_calendar_and_overrides_but_never_across_overrides():
    policy = POLICIES[SLA_POLICIES[0]]
    plain = sla._shared_clocks(policy, {}, frozenset())
    assert sla._shared_clocks(dict(policy), {}, frozenset()) is plain
    holiday = {date(2026, 10, 15): False}
    other = sla._shared_clocks(policy, holiday, frozenset(holiday.items()))
    assert other is not plain
    assert other.business is None or not other.business.calendar.is_working_day(date(2026, 10, 15))
