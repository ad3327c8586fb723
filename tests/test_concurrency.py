"""Two (or eight) people clicking at once (SPEC §3 step 5, §7): exactly one wins, the others get
``stale_version``, and no history entry is lost or duplicated.

The PostgreSQL tests race real threads, each with its own session and connection: every thread
loads the request first, all meet at a barrier, then all fire and commit. SQLite serialises
writers (``BEGIN IMMEDIATE``, see web/db.py), so its variant meets at the barrier before the
transaction starts and lets the database queue them; exactly one must still win.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from models import DefinitionVersion, HistoryEntry, Request, User
from workflow.engine import create_request, fire
from workflow.errors import WorkflowError
from workflow.history import verify_all

N = 8
TIMEOUT = 60  # seconds a thread may wait at the barrier or take to finish (a hang guard only)


# ---------------------------------------------------------------- helpers


def race(n: int, work) -> list:
    """Run ``work(i, barrier)`` in ``n`` threads; returns each result or the exception raised."""
    barrier = threading.Barrier(n, timeout=TIMEOUT)
    results: list = [None] * n

    def run(i):
        try:
            results[i] = work(i, barrier)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not swallowed
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


def outcome(result) -> str:
    """'ok', a WorkflowError code, or the repr of anything else (a bug: e.g. IntegrityError)."""
    if isinstance(result, WorkflowError):
        return result.code
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {str(result).splitlines()[0] if str(result) else ''}"
    return result


def sessions(app):
    return sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)


def new_request(db, catalog, world, kind: str, steps=()) -> tuple[int, int]:
    """A committed request of ``kind`` after ``steps`` [(event, actor, fields, comment)]."""
    u = world.users
    fields = {
        "requirement": {"req_type": "new_feature", "module": "Follow-up"},
        "incident": {"severity": "L2", "location": "Ward 3"},
    }[kind]
    request = create_request(
        db,
        catalog,
        u["dept_user"],
        kind=kind,
        contract_id=world.contract.id,
        system_id=world.system.id,
        department_id=world.departments["cardiology"].id,
        title=f"Concurrent {kind}",
        fields=fields,
    )
    for event, actor, event_fields, comment in steps:
        fire(db, request, event, u[actor], event_fields, request.version, comment=comment)
    db.commit()
    request_id, version = request.id, request.version
    db.close()  # nothing of this session may hold a lock while the threads run
    return request_id, version


def stored(app, request_id: int):
    """(state, version, history entries in seq order) read in a fresh session, and the chains
    check."""
    with sessions(app)() as s:
        request = s.get(Request, request_id)
        entries = s.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.request_id == request_id)
            .order_by(HistoryEntry.seq)
        ).all()
        _, _, problem = verify_all(s)
        return (
            request.state,
            request.version,
            [(e.seq, e.event, e.actor_name) for e in entries],
            (problem),
        )


def fire_in_own_session(
    app, request_id, event, actor_id, fields, comment, version, barrier, *, load_first: bool
):
    """One person's click: own session, load, (barrier), fire at ``version``, commit."""
    maker = sessions(app)
    if not load_first:
        barrier.wait()
    with maker() as session:
        request = session.get(Request, request_id)
        actor = session.get(User, actor_id)
        assert actor.roles  # loaded before the race, not in the middle of it
        if load_first:
            barrier.wait()
        try:
            fire(session, request, event, actor, dict(fields), version, comment=comment)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return "ok"


# ---------------------------------------------------------------- same event, same version


@pytest.mark.parametrize(
    ("kind", "steps", "event", "actor", "to_state"),
    [
        ("requirement", [], "submit", "dept_user", "submitted"),
        ("incident", [], "acknowledge", "vendor_engineer", "acknowledged"),
    ],
    ids=["requirement-submit", "incident-acknowledge"],
)
def test_same_event_same_version_exactly_one_wins(
    pg_only, app, db, catalog, world, kind, steps, event, actor, to_state
):
    request_id, version = new_request(db, catalog, world, kind, steps)
    actor_id = world.users[actor].id

    results = race(
        N,
        lambda i, barrier: fire_in_own_session(
            app, request_id, event, actor_id, {}, "", version, barrier, load_first=True
        ),
    )

    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == Counter({"ok": 1, "stale_version": N - 1}), outcomes
    state, new_version, entries, problem = stored(app, request_id)
    assert (state, new_version) == (to_state, version + 1)
    assert len(entries) == version + 1, entries
    assert entries[-1] == (version + 1, event, actor)
    assert problem is None, str(problem)


# change_severity leads from 'reported' back to 'reported': a loser that loads the request after
# the winner committed still passes every check before the version, so it must be stale_version.
SEVERITY = ("change_severity", "it_staff", {"severity": "L1"}, "The whole ward is affected.")


def test_same_event_same_version_serialised_writers(app, db, catalog, world):
    """The SQLite shape of the race (runs on both databases): the threads start their
    transactions together and the database queues them; still exactly one wins."""
    request_id, version = new_request(db, catalog, world, "incident")
    event, actor, fields, comment = SEVERITY
    actor_id = world.users[actor].id

    results = race(
        N,
        lambda i, barrier: fire_in_own_session(
            app, request_id, event, actor_id, fields, comment, version, barrier, load_first=False
        ),
    )

    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == Counter({"ok": 1, "stale_version": N - 1}), outcomes
    state, new_version, entries, problem = stored(app, request_id)
    assert (state, new_version) == ("reported", version + 1)
    assert [e[1] for e in entries] == ["create", event]
    assert problem is None, str(problem)


def test_same_submit_serialised_writers(app, db, catalog, world):
    """The same with 'submit': a loser queued behind the winner sees 'submitted' and gets
    invalid_transition (SPEC §3 checks the transition first); one that loaded before gets
    stale_version. Either way one wins and nothing is duplicated."""
    request_id, version = new_request(db, catalog, world, "requirement")
    actor_id = world.users["dept_user"].id

    results = race(
        N,
        lambda i, barrier: fire_in_own_session(
            app, request_id, "submit", actor_id, {}, "", version, barrier, load_first=False
        ),
    )

    outcomes = [outcome(r) for r in results]
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) <= {"ok", "stale_version", "invalid_transition"}, outcomes
    state, new_version, entries, problem = stored(app, request_id)
    assert (state, new_version) == ("submitted", version + 1)
    assert [e[1] for e in entries] == ["create", "submit"]
    assert problem is None, str(problem)


# ---------------------------------------------------------------- different events at once

# From 'submitted' every one of these is allowed for its actor; they lead to four states.
DIFFERENT = [
    ("triage", "it_staff", {"priority": "high"}, "", "triaged"),
    ("triage", "it_staff2", {"priority": "low"}, "", "triaged"),
    ("reject", "it_staff", {}, "Out of scope.", "rejected"),
    ("reject", "it_staff2", {}, "Duplicate.", "rejected"),
    ("return_to_submitter", "it_staff", {}, "Please add the columns.", "draft"),
    ("return_to_submitter", "it_staff2", {}, "Which ward?", "draft"),
    ("cancel", "dept_user", {}, "No longer needed.", "cancelled"),
    ("cancel", "it_signer", {}, "Budget withdrawn.", "cancelled"),
]


def test_different_events_at_once_exactly_one_wins(pg_only, app, db, catalog, world):
    request_id, version = new_request(
        db, catalog, world, "requirement", [("submit", "dept_user", {}, "")]
    )
    ids = {name: user.id for name, user in world.users.items()}

    def click(i, barrier):
        event, actor, fields, comment, _ = DIFFERENT[i]
        return fire_in_own_session(
            app, request_id, event, ids[actor], fields, comment, version, barrier, load_first=True
        )

    results = race(len(DIFFERENT), click)

    outcomes = [outcome(r) for r in results]
    assert Counter(outcomes) == Counter({"ok": 1, "stale_version": len(DIFFERENT) - 1}), outcomes
    event, actor, _, _, to_state = DIFFERENT[outcomes.index("ok")]
    state, new_version, entries, problem = stored(app, request_id)
    assert (state, new_version) == (to_state, version + 1)
    assert len(entries) == version + 1
    assert entries[-1] == (version + 1, event, actor)
    assert problem is None, str(problem)


# ---------------------------------------------------------------- no false conflicts


def test_different_requests_at_once_all_succeed(app, db, catalog, world):
    """Eight people each submitting their own request at once: nobody loses."""
    requests = [new_request(db, catalog, world, "requirement") for _ in range(N)]
    actor_id = world.users["dept_user"].id
    pg = app.extensions["changeflow.engine"].dialect.name == "postgresql"

    results = race(
        N,
        lambda i, barrier: fire_in_own_session(
            app,
            requests[i][0],
            "submit",
            actor_id,
            {},
            "",
            requests[i][1],
            barrier,
            load_first=pg,
        ),
    )

    assert [outcome(r) for r in results] == ["ok"] * N
    for request_id, version in requests:
        state, new_version, entries, problem = stored(app, request_id)
        assert (state, new_version, len(entries)) == ("submitted", version + 1, version + 1)
        assert problem is None, str(problem)


def test_first_requests_of_a_definition_at_once(app, catalog, world):
    """The first use of a definition version stores it; racing first uses store it once."""
    ids = {name: user.id for name, user in world.users.items()}
    contract_id, system_id = world.contract.id, world.system.id
    department_id = world.departments["cardiology"].id

    def raise_request(i, barrier):
        barrier.wait()
        with sessions(app)() as session:
            request = create_request(
                session,
                catalog,
                session.get(User, ids["dept_user"]),
                kind="incident",
                contract_id=contract_id,
                system_id=system_id,
                department_id=department_id,
                title=f"Printer {i}",
                fields={"severity": "L3"},
            )
            session.commit()
            return request.id

    results = race(N, raise_request)

    assert all(isinstance(r, int) for r in results), [outcome(r) for r in results]
    assert len(set(results)) == N
    with sessions(app)() as s:
        stored_versions = s.scalar(
            select(func.count())
            .select_from(DefinitionVersion)
            .where(DefinitionVersion.key == "incident")
        )
        assert stored_versions == 1
        assert s.scalar(select(func.count()).select_from(HistoryEntry)) == N
        assert verify_all(s) == (N, N, None)


# ---------------------------------------------------------------- double submission over HTTP


def post_at_once(app, url, body, headers) -> list[tuple[int, dict]]:
    """POST the same body from N threads at once, each with its own test client."""

    def post(i, barrier):
        client = app.test_client()
        barrier.wait()
        response = client.post(url, json=body, headers=headers)
        return response.status_code, response.get_json()

    results = race(N, post)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, [outcome(r) for r in errors]
    return results


def assert_history_over_http(app, request_id, headers, length):
    history = app.test_client().get(f"/api/v1/requests/{request_id}/history", headers=headers)
    assert history.status_code == 200
    assert len(history.get_json()["entries"]) == length
    _, _, entries, problem = stored(app, request_id)
    assert len(entries) == length
    assert problem is None, str(problem)


def test_double_submission_over_http(app, db, catalog, world):
    """The same click sent N times at once through the API: one 200, the rest 409
    stale_version, never a 500 and never a second history entry."""
    request_id, version = new_request(db, catalog, world, "incident")
    event, actor, fields, comment = SEVERITY
    headers = world.auth(actor)

    results = post_at_once(
        app,
        f"/api/v1/requests/{request_id}/events/{event}",
        {"version": version, "fields": fields, "comment": comment},
        headers,
    )

    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({200: 1, 409: N - 1}), [
        (status, (body or {}).get("error")) for status, body in results
    ]
    for status, body in results:
        if status == 409:
            assert body["error"]["code"] == "stale_version", body
        else:
            assert (body["state"], body["version"]) == ("reported", version + 1)
            assert body["fields"]["severity"] == "L1"
    assert_history_over_http(app, request_id, headers, version + 1)


def test_double_submit_click_over_http(app, db, catalog, world):
    """'submit' sent N times at once: one 200, the rest 409 (stale_version, or
    invalid_transition for a request that arrived after the winner committed)."""
    request_id, version = new_request(db, catalog, world, "requirement")
    headers = world.auth("dept_user")

    results = post_at_once(
        app,
        f"/api/v1/requests/{request_id}/events/submit",
        {"version": version, "fields": {}, "comment": ""},
        headers,
    )

    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({200: 1, 409: N - 1}), [
        (status, (body or {}).get("error")) for status, body in results
    ]
    codes = {body["error"]["code"] for status, body in results if status == 409}
    assert codes <= {"stale_version", "invalid_transition"}, codes
    assert_history_over_http(app, request_id, headers, version + 1)
