"""Stateful property test of the engine (SPEC §3): random events, actors, inputs and versions.

Hypothesis drives requests of all four kinds with every event name of every definition (plus a
few that exist nowhere), as every user of the test hospital, with valid and junk input and now and
then a stale version. A model of each request (state, version, history length, who did what)
is kept beside the database, and after every step:

- every request is in a state its definition declares, and the database agrees with the model;
- a successful fire raised the version by exactly one and appended exactly one chained entry;
- a refused fire (WorkflowError) changed nothing, even when the caller commits afterwards —
  checked from a fresh session;
- every hash chain verifies (``workflow.history.verify_all``).

Each example starts from an empty database with a freshly built world and empties it again in
``teardown``, so examples never see each other's rows.
"""

from __future__ import annotations

import copy
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ROLE_SCOPES, build_world, truncate_all
from hypothesis import HealthCheck, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from models import Attachment, HistoryEntry, Request, User
from workflow.attachments import add_attachment
from workflow.definition import load_definition_dir
from workflow.engine import create_request, definition_for, fire
from workflow.errors import WorkflowError
from workflow.history import verify_all

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = load_definition_dir(ROOT / "definitions" / "workflows")
KINDS = sorted(DEFINITIONS)
USERS = sorted(ROLE_SCOPES)

# Every event name of every definition, plus names that exist nowhere.
ALL_EVENTS = sorted(
    {name for d in DEFINITIONS.values() for name in d.events}
    | {"no_such_event", "create", "attach", "", "SUBMIT"}
)

FIRE_CODES = {"invalid_transition", "forbidden", "invalid_input", "guard_failed", "stale_version"}

CHANGE_SQL = "ALTER TABLE patient ADD COLUMN follow_up_note VARCHAR(200);"


def _estimate(days: str) -> dict:
    return {
        "estimate_days": days,
        "analysis": "Add a field to the form.",
        "modification_plan": "One new column and a form field.",
        "promised_date": "2026-09-01",
    }


# Valid input of the events that take fields (event names are unique among those).
VALID_FIELDS: dict[str, list[dict]] = {
    "triage": [{"priority": "high"}, {"priority": "low", "policy_interface": True}],
    "estimate": [_estimate("1"), _estimate("12.5")],
    "record_agreement": [{"paid_days": "2", "fee_fen": 200000}],
    "deliver": [{"delivery_note": "Build 42.", "actual_days": "1.5"}, {"delivery_note": "交付"}],
    "schedule": [{"window_start": "2026-07-01T22:00:00+08:00"}],
    "deploy": [{"deployed_version": "1.1.0"}],
    "execute": [
        {
            "executed_sql_sha256": hashlib.sha256(CHANGE_SQL.encode()).hexdigest(),
            "backup_reference": "BK-1",
            "result": "success",
        }
    ],
    "resolve": [{"resolution": "Restarted the print service.", "root_cause": "Spooler"}],
    "confirm_fixed": [{"satisfaction": 95}, {}],
    "change_severity": [{"severity": "L1"}],
}

JUNK_FIELDS: list = [
    None,
    {},
    {"bogus": 1},
    {"priority": "urgent"},
    {"priority": None},
    {"estimate_days": "0.3", "analysis": "", "modification_plan": "x", "promised_date": "no"},
    {"satisfaction": 101},
    {"satisfaction": True},
    {"deployed_version": "9.9.9"},
    {"deployed_version": "../etc"},
    {"executed_sql_sha256": "xyz", "result": "success"},
    {"window_start": "2026-07-01T22:00:00"},
    {"paid_days": "2", "fee_fen": -1},
    {"severity": "x" * 21},
    "not a mapping",
    [1, 2],
]

ALL_FIELDS = [f for pool in VALID_FIELDS.values() for f in pool] + JUNK_FIELDS

COMMENTS = ["", "   ", "Because the ward asked for it.", "因为科室需要，请尽快处理。", "x" * 10_001]

CREATION_FIELDS = {
    "requirement": {"req_type": "new_feature", "module": "Follow-up"},
    "upgrade": {"from_version": "1.0.0", "to_version": "1.1.0", "impact": "Whole system"},
    "schema_change": {
        "database_name": "followup",
        "dialect": "mysql",
        "change_sql": CHANGE_SQL,
        "reason": "Store a note per follow-up.",
    },
    "incident": {"severity": "L2", "location": "Ward 3", "reported_via": "phone"},
}
DEFAULT_CREATOR = {
    "requirement": "dept_user",
    "upgrade": "vendor_engineer",
    "schema_change": "vendor_engineer",
    "incident": "dept_user",
}
# Steps that end a request early or send it back; ``advance`` takes them only now and then.
DETOURS = {
    "cancel",
    "withdraw",
    "reject",
    "roll_back",
    "return_to_submitter",
    "request_changes",
    "reopen",
    "dept_reject",
    "wait_for_hospital",
    "change_severity",
}
# Each example starts with these (kind, creator): every kind, and hospital IT staff raising
# requests they could then be tempted to approve, sign or review themselves.
INITIAL_REQUESTS = [
    *DEFAULT_CREATOR.items(),
    ("requirement", "it_staff"),
    ("upgrade", "it_staff"),
    ("schema_change", "it_dba"),
]
PEOPLE_GUARDS = {"is_submitter", "not_submitter", "not_actor_of"}
DOCUMENT_KINDS = ["test_report", "upgrade_report", "supplementary_agreement", "Bad Kind"]


def event_note(label: str) -> None:
    """Statistics for ``--hypothesis-show-statistics`` (which states the runs reach)."""
    hypothesis_event(label)


def scoped_roles(username: str, department: str | None) -> set[str]:
    """The oracle of SPEC §5 for the world's contract (vendor_a): roles covering a request."""
    roles, user_department, vendor = ROLE_SCOPES[username]
    if vendor not in (None, "vendor_a"):
        return set()
    return {r for r in roles if r != "dept_user" or user_department == department}


@dataclass
class Model:
    """What the test believes about one request."""

    kind: str
    department: str | None
    submitter: str
    state: str
    version: int = 1
    done: list[tuple[str, str]] = field(default_factory=list)  # (event, actor) of each fire
    documents: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Snapshot:
    state: str
    version: int
    data: dict
    head_hash: str
    assignee_id: int | None
    history: int
    last: tuple | None


class EngineMachine(RuleBasedStateMachine):
    """One hospital per example; requests of every kind; one session per action, as the web."""

    app = None  # set by the test below

    requests = Bundle("requests")

    def __init__(self):
        super().__init__()
        self.engine = self.app.extensions["changeflow.engine"]
        self.catalog = self.app.extensions["changeflow.catalog"]
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        truncate_all(self.engine)
        with self.Session() as session:
            world = build_world(session)
            self.user_ids = {name: user.id for name, user in world.users.items()}
            self.contract_id = world.contract.id
            self.system_id = world.system.id
            self.department_ids = {code: d.id for code, d in world.departments.items()}
        self.models: dict[int, Model] = {}

    def teardown(self):
        truncate_all(self.engine)

    # ------------------------------------------------------------ reading the truth

    def snapshot(self, request_id: int) -> Snapshot:
        """The request as stored, read in a fresh session."""
        with self.Session() as session:
            row = session.execute(
                select(
                    Request.state,
                    Request.version,
                    Request.data,
                    Request.head_hash,
                    Request.assignee_id,
                ).where(Request.id == request_id)
            ).one()
            entries = session.execute(
                select(
                    HistoryEntry.seq,
                    HistoryEntry.event,
                    HistoryEntry.from_state,
                    HistoryEntry.to_state,
                    HistoryEntry.actor_name,
                    HistoryEntry.prev_hash,
                    HistoryEntry.entry_hash,
                )
                .where(HistoryEntry.request_id == request_id)
                .order_by(HistoryEntry.seq)
            ).all()
        return Snapshot(
            state=row.state,
            version=row.version,
            data=copy.deepcopy(row.data),
            head_hash=row.head_hash,
            assignee_id=row.assignee_id,
            history=len(entries),
            last=tuple(entries[-1]) if entries else None,
        )

    def counts(self) -> tuple[int, int, int]:
        with self.Session() as session:
            return (
                session.scalar(select(func.count()).select_from(Request)),
                session.scalar(select(func.count()).select_from(HistoryEntry)),
                session.scalar(select(func.count()).select_from(Attachment)),
            )

    # ------------------------------------------------------------ one action, checked

    def attempt(self, request_id: int, actor_name: str, action):
        """Run ``action(session, request, actor)`` in its own session, like one web request.

        Returns (error or None, before, after). On refusal the session is *committed*: a
        refused step must leave nothing behind that a commit could persist.
        """
        before = self.snapshot(request_id)
        totals = self.counts()
        with self.Session() as session:
            request = session.get(Request, request_id)
            actor = session.get(User, self.user_ids[actor_name])
            in_memory = (request.state, request.version, copy.deepcopy(request.data))
            try:
                action(session, request, actor)
            except WorkflowError as exc:
                assert (request.state, request.version, request.data) == in_memory, (
                    f"refused with {exc.code}, but the loaded request changed in memory"
                )
                session.commit()
                after = self.snapshot(request_id)
                assert after == before, f"refused with {exc.code}, but the request changed"
                assert self.counts() == totals, f"refused with {exc.code}, but rows changed"
                return exc, before, after
            session.commit()
        after = self.snapshot(request_id)
        assert after.version == before.version + 1, "a success must raise the version by one"
        assert after.history == before.history + 1, "a success must add exactly one entry"
        seq, _event, from_state, to_state, _actor, prev_hash, entry_hash = after.last
        assert seq == after.version
        assert from_state == before.state and to_state == after.state
        assert prev_hash == before.head_hash and entry_hash == after.head_hash
        assert after.last[4] == actor_name
        return None, before, after

    # ------------------------------------------------------------ rules

    def _create(self, kind, creator, department, fields):
        with self.Session() as session:
            actor = session.get(User, self.user_ids[creator])
            try:
                request = create_request(
                    session,
                    self.catalog,
                    actor,
                    kind=kind,
                    contract_id=self.contract_id,
                    system_id=self.system_id,
                    department_id=self.department_ids[department] if department else None,
                    title=f"{kind} by {creator}",
                    description="Raised by the state machine.",
                    fields=fields,
                )
            except WorkflowError as exc:
                session.rollback()
                return exc, None
            session.commit()
            return None, request.id

    @initialize(target=requests)
    def one_of_each_kind(self):
        ids = []
        for kind, creator in INITIAL_REQUESTS:
            department = "cardiology" if kind in ("requirement", "incident") else None
            error, request_id = self._create(kind, creator, department, CREATION_FIELDS[kind])
            assert error is None, f"creating a {kind}: {error and error.message}"
            self._remember(request_id, kind, department, creator)
            ids.append(request_id)
        return multiple(*ids)

    def _remember(self, request_id, kind, department, creator):
        self.models[request_id] = Model(
            kind=kind,
            department=department,
            submitter=creator,
            state=DEFINITIONS[kind].initial,
        )
        snap = self.snapshot(request_id)
        assert (snap.version, snap.history) == (1, 1)
        assert snap.last[1] == "create" and snap.last[2] is None
        assert snap.last[3] == DEFINITIONS[kind].initial

    @rule(
        target=requests,
        kind=st.sampled_from([*KINDS, "no_such_kind"]),
        creator=st.sampled_from(USERS),
        department=st.sampled_from(["cardiology", "lab", None]),
        valid=st.booleans(),
    )
    def create(self, kind, creator, department, valid):
        fields = CREATION_FIELDS.get(kind, {}) if valid else {"bogus": "x"}
        totals = self.counts()
        error, request_id = self._create(kind, creator, department, fields)
        roles, own_department, _vendor = ROLE_SCOPES[creator]
        if department is None and roles == ["dept_user"]:
            department = own_department
        may = kind in DEFINITIONS and bool(
            scoped_roles(creator, department) & set(DEFINITIONS[kind].content["create_roles"])
        )
        if error is not None:
            assert self.counts() == totals, f"refused create ({error.code}) left rows behind"
            assert not (may and valid), f"{creator} may raise a {kind}: {error.message}"
            return multiple()
        assert may and valid, f"{creator} raised a {kind} ({valid=}) without the right"
        self._remember(request_id, kind, department, creator)
        return request_id

    def _fire(self, request_id, event, actor_name, fields, comment, offset):
        model = self.models[request_id]
        definition = DEFINITIONS[model.kind]
        event_def = definition.events.get(event)

        def action(session, request, actor):
            fire(
                session,
                request,
                event,
                actor,
                copy.deepcopy(fields),
                request.version + offset,
                comment=comment,
            )

        error, before, after = self.attempt(request_id, actor_name, action)
        assert before.state == model.state and before.version == model.version
        leaves = event_def is not None and before.state in event_def.sources
        has_role = leaves and bool(
            scoped_roles(actor_name, model.department) & set(event_def.roles)
        )
        if error is not None:
            assert error.code in FIRE_CODES, error.code
            if not leaves:
                assert error.code == "invalid_transition", (event, before.state, error.code)
            elif not has_role:
                assert error.code == "forbidden", (event, actor_name, error.code)
            else:
                assert error.code not in ("invalid_transition", "forbidden"), error.message
            if error.code == "stale_version":
                assert offset != 0, "stale_version at the current version with nobody else"
            event_note(f"refused {error.code}")
            return
        # Success: everything that must have been checked was.
        assert leaves, f"'{event}' fired from '{before.state}'"
        assert has_role, f"{actor_name} fired '{event}' without a role in scope"
        assert offset == 0, f"fired with expected version {before.version + offset}"
        assert after.state in definition.states
        assert after.state in event_def.possible_targets(before.state), (event, after.state)
        assert after.last[1] == event
        for bound in event_def.guards:
            name, params = bound.target.name, bound.params
            if name == "is_submitter":
                assert actor_name == model.submitter
            elif name == "not_submitter":
                assert actor_name != model.submitter, f"{actor_name} approved own request"
            elif name == "not_actor_of":
                assert (params["event"], actor_name) not in model.done, "two-person rule broken"
            elif name == "has_attachment":
                assert params["kind"] in model.documents
        if event_def.comment_required:
            assert comment.strip()
        model.state = after.state
        model.version = after.version
        model.done.append((event, actor_name))
        event_note(f"reached {model.kind}.{after.state}")

    @rule(
        request_id=requests,
        event=st.sampled_from(ALL_EVENTS),
        actor=st.sampled_from(USERS),
        fields=st.sampled_from(ALL_FIELDS),
        comment=st.sampled_from(COMMENTS),
        offset=st.sampled_from([0, 0, 0, -1, 1, 7]),
    )
    def fire_anything(self, request_id, event, actor, fields, comment, offset):
        self._fire(request_id, event, actor, fields, comment, offset)

    @rule(request_id=requests, data=st.data())
    def fire_likely(self, request_id, data):
        """An event that leaves the current state, mostly by someone holding its role."""
        model = self.models[request_id]
        definition = DEFINITIONS[model.kind]
        events = definition.events_from(model.state) or list(definition.events.values())
        event = data.draw(st.sampled_from(events), label="event")
        holders = [u for u in USERS if set(ROLE_SCOPES[u][0]) & set(event.roles)]
        actor = data.draw(
            st.just(model.submitter) | st.sampled_from(holders) | st.sampled_from(USERS),
            label="actor",
        )
        valid = VALID_FIELDS.get(event.name, [{}])
        fields = data.draw(st.sampled_from(valid) | st.sampled_from(JUNK_FIELDS), label="fields")
        reason = "Reason given." if event.comment_required else ""
        comment = data.draw(st.just(reason) | st.sampled_from(COMMENTS), label="comment")
        offset = data.draw(st.sampled_from([0, 0, 0, 0, 0, -1, 1]), label="offset")
        self._fire(request_id, event.name, actor, fields, comment, offset)

    def good_actors(self, model: Model, event) -> list[str]:
        """Users who hold the event's role in scope and pass the people guards (the oracle)."""
        good = []
        for user in USERS:
            if not scoped_roles(user, model.department) & set(event.roles):
                continue
            ok = True
            for bound in event.guards:
                name = bound.target.name
                if name == "is_submitter":
                    ok &= user == model.submitter
                elif name == "not_submitter":
                    ok &= user != model.submitter
                elif name == "not_actor_of":
                    ok &= (bound.params["event"], user) not in model.done
            if ok:
                good.append(user)
        return good

    @rule(request_id=requests, data=st.data(), steps=st.integers(1, 4))
    def advance(self, request_id, data, steps):
        """A short walk that should succeed: right people, valid input, documents attached.

        Each step is checked like any other fire; the walk stops at a final state or when
        nobody may take the drawn step.
        """
        for _ in range(steps):
            model = self.models[request_id]
            events = DEFINITIONS[model.kind].events_from(model.state)
            if not events:
                return
            forward = [e for e in events if e.name not in DETOURS] or events
            if data.draw(st.integers(0, 4), label="detour") == 0:
                forward = events
            event = data.draw(st.sampled_from(forward), label="event")
            actors = self.good_actors(model, event)
            if not actors:
                return
            if data.draw(st.booleans(), label="tempt first"):
                self._tempt(request_id, event, data)
            actor = data.draw(st.sampled_from(actors), label="actor")
            self._attach_needed(request_id, event, actor)
            fields = data.draw(st.sampled_from(VALID_FIELDS.get(event.name, [{}])), label="fields")
            comment = "Reason given." if event.comment_required else ""
            self._fire(request_id, event.name, actor, fields, comment, 0)

    def _tempt(self, request_id, event, data) -> None:
        """Fire ``event`` as someone holding its role who fails a people guard: own work,
        the two-person rule, or not the submitter. It must be refused."""
        model = self.models[request_id]
        if not {b.target.name for b in event.guards} & PEOPLE_GUARDS:
            return
        good = self.good_actors(model, event)
        tempted = [
            u
            for u in USERS
            if scoped_roles(u, model.department) & set(event.roles) and u not in good
        ]
        if not tempted:
            return
        actor = data.draw(st.sampled_from(tempted), label="tempted actor")
        self._attach_needed(request_id, event, actor)
        fields = data.draw(st.sampled_from(VALID_FIELDS.get(event.name, [{}])), label="fields")
        comment = "Reason given." if event.comment_required else ""
        version = self.models[request_id].version
        self._fire(request_id, event.name, actor, fields, comment, 0)
        assert self.models[request_id].version == version, f"{actor} passed '{event.name}'"

    def _attach_needed(self, request_id, event, actor) -> None:
        for bound in event.guards:
            kind = bound.params.get("kind")
            if (
                bound.target.name == "has_attachment"
                and kind not in self.models[request_id].documents
            ):
                self.attach(request_id, actor, kind, None)

    @rule(request_id=requests, data=st.data())
    def tempt(self, request_id, data):
        """Someone holding the role tries a step a people guard forbids them."""
        model = self.models[request_id]
        events = DEFINITIONS[model.kind].events_from(model.state)
        if events:
            self._tempt(request_id, data.draw(st.sampled_from(events), label="event"), data)

    @rule(
        request_id=requests,
        actor=st.sampled_from(USERS),
        kind=st.sampled_from(DOCUMENT_KINDS),
        offset=st.sampled_from([None, 0, 0, -1]),
    )
    def attach(self, request_id, actor, kind, offset):
        model = self.models[request_id]
        storage = self.app.config["ATTACHMENTS_DIR"]

        def action(session, request, user):
            add_attachment(
                session,
                request,
                user,
                kind=kind,
                filename=f"{kind}.pdf",
                stream=io.BytesIO(f"%PDF-1.4 {kind} {request_id}".encode()),
                storage_dir=storage,
                max_bytes=self.app.config["MAX_UPLOAD_BYTES"],
                expected_version=None if offset is None else request.version + offset,
            )

        error, before, after = self.attempt(request_id, actor, action)
        if error is not None:
            return
        assert offset in (None, 0), "attached with a stale version"
        assert not DEFINITIONS[model.kind].is_final(before.state), "attached to a final request"
        assert scoped_roles(actor, model.department) - {"sys_admin", "sec_admin", "auditor"}
        assert after.last[1] == "attach"
        # A document added where the definition voids a signature moves the request back.
        changes = DEFINITIONS[model.kind].content.get("document_changes") or {}
        expected = changes["to"] if before.state in changes.get("void_in", ()) else before.state
        assert after.state == expected
        model.state = after.state
        model.version = after.version
        model.documents.add(kind)

    # ------------------------------------------------------------ invariants

    @invariant()
    def database_matches_model_and_chains_verify(self):
        with self.Session() as session:
            requests = session.scalars(select(Request).order_by(Request.id)).all()
            assert {r.id for r in requests} == set(self.models)
            for request in requests:
                model = self.models[request.id]
                definition = definition_for(request)
                assert request.state in definition.states, request.state
                assert (request.state, request.version) == (model.state, model.version)
                history = session.scalar(
                    select(func.count())
                    .select_from(HistoryEntry)
                    .where(HistoryEntry.request_id == request.id)
                )
                assert history == request.version, "version must equal the number of entries"
            count, _entries, problem = verify_all(session)
            assert problem is None, str(problem)
            assert count == len(self.models)


SETTINGS = settings(
    max_examples=25,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_engine_state_machine(app):
    EngineMachine.app = app
    try:
        run_state_machine_as_test(EngineMachine, settings=SETTINGS)
    finally:
        EngineMachine.app = None
