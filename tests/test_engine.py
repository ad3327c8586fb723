"""Engine semantics (SPEC §2-§3): order of checks, stale versions, routes, available events,
all-or-nothing effects, definition versioning, request creation and history entries."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from models import DefinitionVersion, Department, HistoryEntry, Request, User
from tests.helpers import (
    PATHS,
    Flow,
    Step,
    creation_fields,
    estimate_input,
)
from workflow import engine as engine_module
from workflow.definition import load_definition_text
from workflow.engine import Catalog, available_events, create_request, definition_for, fire
from workflow.errors import (
    Forbidden,
    GuardFailed,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleVersion,
    WorkflowError,
)
from workflow.history import GENESIS
from workflow.registry import EFFECTS, Callable_

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def refused(flow, request, code, event, actor, fields=None, comment=None, expected_version=None):
    """Fire and expect ``code``; asserts nothing changed. Returns the error."""
    before = flow.snapshot(request)
    with pytest.raises(WorkflowError) as caught:
        flow.fire(request, event, actor, fields, comment, expected_version)
    assert caught.value.code == code, caught.value.message
    assert flow.snapshot(request) == before
    return caught.value


# ---------------------------------------------------------------- order of checks (SPEC §3)


class TestOrderOfChecks:
    def test_unknown_event_by_out_of_scope_user_is_invalid_transition(self, flow):
        request = flow.walk_to("requirement", "draft")
        error = refused(flow, request, "invalid_transition", "no_such_event", "other_dept_user")
        assert isinstance(error, InvalidTransition)
        assert error.details["available"] == ["submit", "cancel"]
        assert error.details["state"] == "draft"

    def test_event_not_leaving_state_beats_scope_role_and_input(self, flow):
        request = flow.walk_to("requirement", "draft")
        # other_vendor has the role for 'deliver' but not the scope; the input is bad too.
        error = refused(
            flow, request, "invalid_transition", "deliver", "other_vendor", {"actual_days": "x"}
        )
        assert "submit" in error.message

    def test_invalid_transition_beats_stale_version(self, flow):
        request = flow.walk_to("requirement", "draft")
        refused(flow, request, "invalid_transition", "triage", "it_staff", expected_version=99)

    def test_wrong_role_with_bad_input_is_forbidden(self, flow):
        request = flow.walk_to("requirement", "submitted")
        error = refused(flow, request, "forbidden", "triage", "dept_user", {"priority": "urgent"})
        assert isinstance(error, Forbidden)
        assert error.details["roles"] == ["it_staff"]

    def test_out_of_scope_with_right_role_and_bad_input_is_forbidden(self, flow):
        request = flow.walk_to("requirement", "triaged")
        refused(flow, request, "forbidden", "estimate", "other_vendor", {"estimate_days": "x"})

    def test_forbidden_beats_failing_guard_and_stale_version(self, flow):
        request = flow.walk_to("upgrade", "draft")  # no test report: the guard would fail
        refused(flow, request, "forbidden", "submit_for_review", "it_signer", expected_version=0)

    def test_locked_or_inactive_user_is_forbidden(self, flow, db):
        request = flow.walk_to("requirement", "submitted")
        flow.user("it_staff").locked_at = datetime(2026, 1, 1)
        refused(flow, request, "forbidden", "triage", "it_staff")
        flow.user("it_staff2").is_active = False
        refused(flow, request, "forbidden", "triage", "it_staff2")

    def test_bad_input_with_failing_guard_is_invalid_input(self, flow):
        request = flow.walk_to("upgrade", "scheduled")
        # '' is not a version and also differs from the signed target version.
        error = refused(
            flow, request, "invalid_input", "deploy", "vendor_engineer", {"deployed_version": ""}
        )
        assert isinstance(error, InvalidInput)
        assert set(error.details["fields"]) == {"deployed_version"}

    def test_unknown_field_with_self_approval_is_invalid_input(self, flow):
        request = flow.walk_to("requirement", "estimated", "it_staff_signer")
        error = refused(flow, request, "invalid_input", "it_confirm", "it_staff_signer", {"x": 1})
        assert "x" in error.details["fields"]

    def test_missing_required_comment_is_invalid_input_per_field(self, flow):
        request = flow.walk_to("requirement", "submitted")
        error = refused(flow, request, "invalid_input", "reject", "it_staff", comment="")
        assert list(error.details["fields"]) == ["comment"]

    def test_per_field_messages(self, flow):
        request = flow.walk_to("requirement", "triaged")
        fields = {"estimate_days": "0.3", "analysis": "a", "promised_date": "later"}
        error = refused(flow, request, "invalid_input", "estimate", "vendor_engineer", fields)
        assert set(error.details["fields"]) == {
            "estimate_days",
            "modification_plan",
            "promised_date",
        }
        assert all(isinstance(m, list) and m for m in error.details["fields"].values())

    def test_non_object_fields_are_invalid_input(self, flow):
        request = flow.walk_to("requirement", "submitted")
        refused(flow, request, "invalid_input", "triage", "it_staff", ["high"])

    def test_failing_guard_with_stale_version_is_guard_failed(self, flow):
        request = flow.walk_to("upgrade", "scheduled")
        error = refused(
            flow,
            request,
            "guard_failed",
            "deploy",
            "vendor_engineer",
            {"deployed_version": "1.0.9"},
            expected_version=request.version - 1,
        )
        assert isinstance(error, GuardFailed)
        assert [r["guard"] for r in error.details["reasons"]] == ["matches_signature"]
        assert "is not the signed version 1.1.0" in error.message

    def test_guard_failed_lists_all_reasons(self, flow):
        request = flow.walk_to("upgrade", "draft")  # no test report, and not the submitter
        error = refused(flow, request, "guard_failed", "submit_for_review", "vendor_manager")
        guards = [r["guard"] for r in error.details["reasons"]]
        assert guards == ["is_submitter", "has_attachment"]
        assert all(r["code"] == "guard_failed" and r["message"] for r in error.details["reasons"])


# ---------------------------------------------------------------- stale versions


class TestStaleVersion:
    @pytest.mark.parametrize("offset", [-1, 1, -100])
    def test_wrong_expected_version_is_stale_and_changes_nothing(self, flow, offset):
        request = flow.walk_to("requirement", "submitted")
        current = request.version
        error = refused(
            flow, request, "stale_version", "triage", "it_staff", expected_version=current + offset
        )
        assert isinstance(error, StaleVersion)
        assert error.details == {"expected": current + offset, "current": current}
        # Reloading and trying again with the right version works.
        flow.fire(request, "triage", "it_staff", expected_version=current)
        assert (request.state, request.version) == ("triaged", current + 1)

    def test_version_counts_history_entries(self, flow):
        request = flow.walk_to("upgrade", "under_review")  # create, attach, submit
        assert request.version == 3 == flow.history_count(request)

    def test_two_people_at_once_exactly_one_wins(self, flow, app, db):
        request = flow.walk_to("requirement", "submitted")
        db.commit()
        version = request.version
        make = sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)
        with make() as first, make() as second:
            # Both people load the request at version ``version`` ...
            r2 = second.get(Request, request.id)
            staff2 = second.get(User, flow.user("it_staff2").id)
            assert r2.version == version and staff2.roles
            second.commit()  # (SQLite serialises transactions: the page load has ended)
            r1 = first.get(Request, request.id)
            staff1 = first.get(User, flow.user("it_staff").id)
            # ... the first one's click is committed first ...
            fire(first, r1, "triage", staff1, {"priority": "high"}, version)
            first.commit()
            # ... and the second one's, sent with the same version, loses.
            with pytest.raises(StaleVersion):
                fire(second, r2, "triage", staff2, {"priority": "low"}, version)
            second.rollback()
            # The loser's session is still usable.
            assert second.scalar(select(func.count()).select_from(Request)) == 1
        db.expire_all()
        request = db.get(Request, request.id)
        assert (request.state, request.version) == ("triaged", version + 1)
        assert request.data["priority"] == "high"
        assert flow.history_count(request) == version + 1
        actors = [e.actor_name for e in flow.history(request)]
        assert actors[-1] == "it_staff" and "it_staff2" not in actors


# ---------------------------------------------------------------- routes (requirement, Q1)


class TestRequirementRoutes:
    @pytest.mark.parametrize(
        ("days", "expected"),
        [
            ("0.5", "confirmed"),
            ("9.5", "confirmed"),
            ("10", "confirmed"),  # at the cap is still free
            ("10.5", "awaiting_agreement"),
            ("12", "awaiting_agreement"),
        ],
    )
    @pytest.mark.parametrize("order", ["it_first", "vendor_first"])
    def test_second_confirmation_routes_by_policy_cap(self, flow, days, expected, order):
        contract = flow.quota_contract("10")
        assert contract.policy["quota"]["per_request_free_max"] == "10"
        request = flow.create("requirement", contract=contract)
        flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
        flow.fire(request, "estimate", "vendor_engineer", estimate_input(days))
        first, second = [("it_confirm", "it_signer"), ("vendor_confirm", "vendor_manager")][
            :: 1 if order == "it_first" else -1
        ]
        flow.fire(request, *first)
        # One confirmation never leaves the two-sided state, whatever the effort.
        assert request.state == ("it_confirmed" if order == "it_first" else "vendor_confirmed")
        flow.fire(request, *second)
        assert request.state == expected
        assert request.data["it_confirmation"]["user"] == "it_signer"
        assert request.data["vendor_confirmation"]["user"] == "vendor_manager"
        assert flow.history(request)[-1].to_state == expected

    def test_cap_follows_the_contract_not_the_definition(self, flow):
        """The same effort routes differently under a contract with a higher cap."""
        low = flow.quota_contract("10")
        high = low.__class__(
            code="C-A-HIGH",
            name="Contract A (cap 20)",
            vendor_id=low.vendor_id,
            start_date=low.start_date,
            end_date=low.end_date,
            policy_key=low.policy_key,
            policy_hash=low.policy_hash,
            policy={**low.policy, "quota": {**low.policy["quota"], "per_request_free_max": "20"}},
        )
        flow.db.add(high)
        flow.db.flush()
        results = {}
        for contract in (low, high):
            request = flow.create("requirement", contract=contract)
            flow.run(
                request,
                [
                    *PATHS["requirement"]["triaged"],
                    Step("estimate", "vendor_engineer", estimate_input("15")),
                    Step("vendor_confirm", "vendor_manager"),
                    Step("it_confirm", "it_signer"),
                ],
                "dept_user",
            )
            results[contract.code] = request.state
        assert results == {"C-A-Q": "awaiting_agreement", "C-A-HIGH": "confirmed"}

    @pytest.mark.parametrize(
        ("confirmed_state", "voided"),
        [("it_confirmed", "it_confirmation"), ("vendor_confirmed", "vendor_confirmation")],
    )
    def test_re_estimating_voids_confirmations(self, flow, confirmed_state, voided):
        request = flow.walk_to("requirement", confirmed_state)
        assert request.data[voided]["user"] in ("it_signer", "vendor_manager")
        flow.fire(request, "estimate", "vendor_manager", estimate_input("4"))
        assert request.state == "estimated"
        assert "it_confirmation" not in request.data
        assert "vendor_confirmation" not in request.data
        assert request.data["estimate_days"] == "4"
        # Both sides must confirm the new estimate again: one confirmation is not enough.
        flow.fire(request, "it_confirm", "it_signer")
        assert request.state == "it_confirmed"
        flow.fire(request, "vendor_confirm", "vendor_manager")
        assert request.state == "confirmed"

    def test_re_estimate_is_stored_in_the_database(self, flow, db):
        request = flow.walk_to("requirement", "it_confirmed")
        flow.fire(request, "estimate", "vendor_engineer", estimate_input("2.5"))
        db.flush()
        db.expire_all()
        data = db.scalar(select(Request.data).where(Request.id == request.id))
        assert "it_confirmation" not in data and data["estimate_days"] == "2.5"


# ---------------------------------------------------------------- available_events


def options(db, request, user):
    return {o.event.name: o for o in available_events(db, request, user)}


class TestAvailableEvents:
    def test_every_event_from_the_state_in_definition_order(self, flow, db):
        request = flow.walk_to("requirement", "estimated")
        names = [o.event.name for o in available_events(db, request, flow.user("it_signer"))]
        assert names == ["estimate", "it_confirm", "vendor_confirm", "cancel"]
        assert names == [e.name for e in definition_for(request).events_from("estimated")]

    def test_allowed_flags_and_role_reasons(self, flow, db):
        request = flow.walk_to("requirement", "estimated")
        signer = options(db, request, flow.user("it_signer"))
        assert {n: o.allowed for n, o in signer.items()} == {
            "estimate": False,
            "it_confirm": True,
            "vendor_confirm": False,
            "cancel": True,
        }
        assert signer["it_confirm"].reasons == []
        (reason,) = signer["estimate"].reasons
        assert reason["code"] == "forbidden"
        assert reason["roles"] == ["vendor_engineer", "vendor_manager"]
        assert "vendor_engineer" in reason["message"]
        manager = options(db, request, flow.user("vendor_manager"))
        assert {n: o.allowed for n, o in manager.items()} == {
            "estimate": True,
            "it_confirm": False,
            "vendor_confirm": True,
            "cancel": False,
        }

    def test_out_of_scope_user_sees_every_event_refused(self, flow, db):
        request = flow.walk_to("requirement", "estimated")
        for name in ("other_vendor", "other_dept_user", "auditor", "sys_admin"):
            opts = options(db, request, flow.user(name))
            assert set(opts) == {"estimate", "it_confirm", "vendor_confirm", "cancel"}
            assert not any(o.allowed for o in opts.values()), name
            assert all(o.reasons[0]["code"] == "forbidden" for o in opts.values())

    def test_guard_reasons_for_self_approval(self, flow, db):
        request = flow.walk_to("requirement", "estimated", "it_staff_signer")
        opts = options(db, request, flow.user("it_staff_signer"))
        assert opts["it_confirm"].allowed is False
        (reason,) = opts["it_confirm"].reasons
        assert reason["code"] == "guard_failed"
        assert reason["guard"] == "not_submitter"
        assert reason["message"]
        assert opts["cancel"].allowed is True  # holds it_signer: may cancel

    def test_guard_reasons_change_with_attachments(self, flow, db):
        request = flow.walk_to("upgrade", "draft")
        opts = options(db, request, flow.user("vendor_engineer"))
        assert opts["submit_for_review"].allowed is False
        assert [r["guard"] for r in opts["submit_for_review"].reasons] == ["has_attachment"]
        assert opts["withdraw"].allowed is True
        flow.attach(request, "vendor_engineer", "test_report")
        assert options(db, request, flow.user("vendor_engineer"))["submit_for_review"].allowed
        # Someone else of the vendor may not submit another's upgrade.
        other = options(db, request, flow.user("vendor_manager"))["submit_for_review"]
        assert other.allowed is False
        assert [r["guard"] for r in other.reasons] == ["is_submitter"]

    def test_final_state_has_no_events(self, flow, db):
        request = flow.walk_to("incident", "closed")
        assert available_events(db, request, flow.user("it_staff")) == []

    def test_listing_changes_nothing_and_serialises(self, flow, db):
        request = flow.walk_to("requirement", "submitted")
        before = flow.snapshot(request)
        opts = available_events(db, request, flow.user("it_staff"))
        assert flow.snapshot(request) == before
        triage = next(o for o in opts if o.event.name == "triage").to_dict()
        assert set(triage) == {"event", "label", "allowed", "reasons", "fields", "comment_required"}
        assert triage["event"] == "triage" and triage["allowed"] is True
        assert "priority" in triage["fields"]
        reject = next(o for o in opts if o.event.name == "reject").to_dict()
        assert reject["comment_required"] is True

    def test_event_whose_guard_checks_its_own_input_is_offered(self, flow, db):
        """'deploy' compares the deployed version *typed into the form* with the signed one.

        Before the form is filled in there is no input, so the button must not be disabled
        for lack of it — otherwise nobody could ever open the deploy form in the UI.
        """
        request = flow.walk_to("upgrade", "scheduled")
        deploy = options(db, request, flow.user("vendor_engineer"))["deploy"]
        assert deploy.reasons == []
        assert deploy.allowed is True


# ---------------------------------------------------------------- all or nothing


BOOM_YAML = """
key: test_boom
title: {zh: 测试, en: Boom}
initial: open
create_roles: [it_staff]
states:
  open: {label: {zh: 开, en: Open}}
  done: {label: {zh: 完, en: Done}, final: true}
events:
  go:
    label: {zh: 走, en: Go}
    from: open
    to: done
    roles: [it_staff]
    fields:
      note: {type: string, required: true}
    effects:
      - store_input
      - assign_to_actor
      - test_explode
"""


def test_failing_effect_leaves_nothing_behind(flow, app, db, tmp_path, monkeypatch):
    switch = {"explode": True}

    def explode(ctx):
        ctx.session.add(Department(code="ghost", name="written by the effect"))
        ctx.session.flush()
        if switch["explode"]:
            raise RuntimeError("the effect failed")

    monkeypatch.setitem(EFFECTS, "test_explode", Callable_("test_explode", explode, {}, ""))
    definition = load_definition_text(BOOM_YAML, "boom.yaml")
    assert [e.target.name for e in definition.events["go"].effects] == [
        "store_input",
        "assign_to_actor",
        "test_explode",
    ]
    (tmp_path / "wf").mkdir()
    (tmp_path / "wf" / "boom.yaml").write_text(BOOM_YAML, encoding="utf-8")
    boom_catalog = Catalog(tmp_path / "wf")
    assert boom_catalog.get("test_boom").content_hash == definition.content_hash

    staff = flow.user("it_staff")
    request = create_request(
        db, boom_catalog, staff, kind="test_boom", contract_id=flow.world.contract.id, title="x"
    )
    db.commit()
    before = flow.snapshot(request)

    with pytest.raises(RuntimeError, match="the effect failed"):
        fire(db, request, "go", staff, {"note": "hello"}, request.version)

    assert flow.snapshot(request) == before
    assert (request.state, request.version, request.assignee_id) == ("open", 1, None)
    assert "note" not in (request.data or {})
    assert db.scalar(select(Department).where(Department.code == "ghost")) is None

    # The session is still usable: the same step succeeds once the effect works.
    switch["explode"] = False
    entry = fire(db, request, "go", staff, {"note": "hello"}, request.version)
    db.commit()
    assert entry.to_state == "done"
    with sessionmaker(app.extensions["changeflow.engine"])() as fresh:
        row = fresh.get(Request, request.id)
        assert (row.state, row.version, row.data, row.assignee_id) == (
            "done",
            2,
            {"note": "hello"},
            staff.id,
        )
        ghosts = fresh.scalar(
            select(func.count()).select_from(Department).where(Department.code == "ghost")
        )
        assert ghosts == 1
        seqs = fresh.scalars(
            select(HistoryEntry.seq)
            .where(HistoryEntry.request_id == request.id)
            .order_by(HistoryEntry.seq)
        ).all()
        assert seqs == [1, 2]


# ---------------------------------------------------------------- definition versioning


def _copy_workflows(tmp_path: Path) -> Path:
    target = tmp_path / "definitions" / "workflows"
    shutil.copytree(ROOT / "definitions" / "workflows", target)
    return target


def _change_requirement_rules(path: Path) -> None:
    """Remove 'return_to_submitter' and let only an IT signer triage."""
    text = path.read_text(encoding="utf-8")
    text, removed = re.subn(r"\n  return_to_submitter:\n(?:    .*\n)+", "\n", text)
    assert removed == 1
    start = text.index("\n  triage:\n")
    end = text.index("\n  reject:\n", start)
    block = text[start:end]
    assert "roles: [it_staff]" in block
    text = text[:start] + block.replace("roles: [it_staff]", "roles: [it_signer]") + text[end:]
    path.write_text(text, encoding="utf-8")


def _versions(db, key):
    return db.scalars(
        select(DefinitionVersion).where(DefinitionVersion.key == key).order_by(DefinitionVersion.id)
    ).all()


class TestVersioning:
    def test_requests_keep_the_version_they_started_with(self, flow, db, tmp_path):
        workflows = _copy_workflows(tmp_path)
        first = Catalog(workflows)
        old = flow.create("requirement", catalog=first)
        flow.fire(old, "submit", "dept_user")

        _change_requirement_rules(workflows / "requirement.yaml")
        second = Catalog(workflows)
        old_hash = first.get("requirement").content_hash
        new_hash = second.get("requirement").content_hash
        assert old_hash != new_hash
        new = flow.create("requirement", catalog=second)
        flow.fire(new, "submit", "dept_user")

        # The request in flight keeps the old rules ...
        assert definition_for(old).content_hash == old_hash
        assert "return_to_submitter" in options(db, old, flow.user("it_staff"))
        # ... new requests follow the new ones.
        assert definition_for(new).content_hash == new_hash
        assert "return_to_submitter" not in options(db, new, flow.user("it_staff"))
        refused(flow, new, "invalid_transition", "return_to_submitter", "it_staff")
        refused(flow, new, "forbidden", "triage", "it_staff")
        flow.fire(new, "triage", "it_signer")
        assert new.state == "triaged"
        flow.fire(old, "triage", "it_staff")
        assert old.state == "triaged"

        rows = _versions(db, "requirement")
        assert [r.content_hash for r in rows] == [old_hash, new_hash]
        assert old.definition_version_id == rows[0].id and new.definition_version_id == rows[1].id
        assert {e.definition_hash for e in flow.history(old)} == {old_hash}
        assert {e.definition_hash for e in flow.history(new)} == {new_hash}

    def test_stored_version_works_without_files_or_cache(self, flow, db, tmp_path, monkeypatch):
        workflows = _copy_workflows(tmp_path)
        first = Catalog(workflows)
        old = flow.create("requirement", catalog=first)
        flow.fire(old, "submit", "dept_user")
        _change_requirement_rules(workflows / "requirement.yaml")
        Catalog(workflows)
        db.commit()
        # A new process: nothing compiled yet, and the YAML of the old version is gone.
        shutil.rmtree(workflows)
        monkeypatch.setattr(engine_module, "_COMPILED", {})
        db.expire_all()
        old = db.get(Request, old.id)
        assert "return_to_submitter" in options(db, old, flow.user("it_staff"))
        flow.fire(old, "return_to_submitter", "it_staff")
        assert old.state == "draft"

    def test_cosmetic_edit_keeps_the_version(self, flow, db, tmp_path):
        workflows = _copy_workflows(tmp_path)
        first = Catalog(workflows)
        flow.create("requirement", catalog=first)
        path = workflows / "requirement.yaml"
        path.write_text(
            "# A new comment at the top.\n\n"
            + path.read_text(encoding="utf-8").replace(
                "\nstates:\n", "\n# states follow\nstates:\n\n"
            ),
            encoding="utf-8",
        )
        second = Catalog(workflows)
        assert second.get("requirement").content_hash == first.get("requirement").content_hash
        flow.create("requirement", catalog=second)
        assert len(_versions(db, "requirement")) == 1

    def test_rule_edit_in_one_file_leaves_other_kinds_alone(self, tmp_path):
        workflows = _copy_workflows(tmp_path)
        first = Catalog(workflows)
        _change_requirement_rules(workflows / "requirement.yaml")
        second = Catalog(workflows)
        for kind in ("upgrade", "schema_change", "incident"):
            assert first.get(kind).content_hash == second.get(kind).content_hash


# ---------------------------------------------------------------- create_request


def _counts(db):
    db.flush()
    return (
        db.scalar(select(func.count()).select_from(Request)),
        db.scalar(select(func.count()).select_from(HistoryEntry)),
    )


class TestCreateRequest:
    def test_creates_in_initial_state_with_first_history_entry(self, flow, db, catalog):
        actor = flow.user("dept_user")
        now = datetime(2026, 7, 1, 1, 2, 3)
        request = create_request(
            db,
            catalog,
            actor,
            kind="requirement",
            contract_id=flow.world.contract.id,
            title="  Add a follow-up note  ",
            description="Cardiology needs a free-text note.",
            fields={"req_type": "report", "module": "Follow-up"},
            now=now,
        )
        assert (request.state, request.version, request.kind) == ("draft", 1, "requirement")
        assert request.title == "Add a follow-up note"
        assert request.submitter_id == actor.id
        assert request.department_id == flow.world.departments["cardiology"].id
        assert request.data == {"req_type": "report", "module": "Follow-up"}
        (entry,) = flow.history(request)
        assert (entry.seq, entry.event, entry.from_state, entry.to_state) == (
            1,
            "create",
            None,
            "draft",
        )
        assert (entry.actor_id, entry.actor_name) == (actor.id, "dept_user")
        assert entry.at == now
        assert entry.fields["data"] == request.data
        assert entry.fields["contract_id"] == flow.world.contract.id
        assert entry.prev_hash == GENESIS and request.head_hash == entry.entry_hash
        assert entry.definition_hash == catalog.get("requirement").content_hash

    def test_unknown_kind_is_not_found(self, flow, db, catalog):
        before = _counts(db)
        with pytest.raises(NotFound) as caught:
            create_request(
                db,
                catalog,
                flow.user("it_staff"),
                kind="purchase",
                contract_id=flow.world.contract.id,
                title="t",
            )
        assert caught.value.code == "not_found"
        assert _counts(db) == before

    @pytest.mark.parametrize(
        ("kind", "creator", "contract"),
        [
            ("upgrade", "vendor_engineer", "other_contract"),  # vendor A on vendor B's contract
            ("upgrade", "other_vendor", "contract"),  # vendor B on vendor A's contract
            ("upgrade", "dept_user", "contract"),  # not a role that raises upgrades
            ("schema_change", "it_signer", "contract"),
            ("requirement", "vendor_manager", "contract"),
            ("incident", "auditor", "contract"),
            ("incident", "sys_admin", "contract"),
        ],
    )
    def test_out_of_scope_or_wrong_role_is_forbidden(self, flow, db, kind, creator, contract):
        before = _counts(db)
        target = getattr(flow.world, contract)
        with pytest.raises(Forbidden) as caught:
            create_request(
                db,
                flow.catalog,
                flow.user(creator),
                kind=kind,
                contract_id=target.id,
                title="t",
                fields=creation_fields(kind),
            )
        assert caught.value.code == "forbidden"
        assert _counts(db) == before

    def test_other_department_is_forbidden(self, flow, db):
        before = _counts(db)
        with pytest.raises(Forbidden):
            create_request(
                db,
                flow.catalog,
                flow.user("other_dept_user"),
                kind="incident",
                contract_id=flow.world.contract.id,
                department_id=flow.world.departments["cardiology"].id,
                title="t",
                fields=creation_fields("incident"),
            )
        assert _counts(db) == before

    @pytest.mark.parametrize(
        ("title", "fields", "bad"),
        [
            ("t", {"req_type": "feature", "module": "m"}, "req_type"),
            ("t", {"req_type": "bug"}, "module"),
            ("t", {"req_type": "bug", "module": "m", "priority": "high"}, "priority"),
            ("t", {"req_type": "bug", "module": "m", "wanted_date": "next week"}, "wanted_date"),
            ("t", {"req_type": "bug", "module": "m" * 121}, "module"),
        ],
    )
    def test_bad_fields_are_invalid_input(self, flow, db, title, fields, bad):
        before = _counts(db)
        with pytest.raises(InvalidInput) as caught:
            flow.create("requirement", fields=fields, title=title)
        assert caught.value.code == "invalid_input"
        assert bad in caught.value.details["fields"]["fields"]
        assert _counts(db) == before

    @pytest.mark.parametrize("title", ["", "   ", "x" * 301])
    def test_bad_title_is_invalid_input(self, flow, db, title):
        before = _counts(db)
        with pytest.raises(InvalidInput) as caught:
            create_request(
                db,
                flow.catalog,
                flow.user("dept_user"),
                kind="requirement",
                contract_id=flow.world.contract.id,
                title=title,
                fields=creation_fields("requirement"),
            )
        assert "title" in caught.value.details["fields"]
        assert _counts(db) == before

    def test_system_of_another_contract_is_invalid_input(self, flow, db):
        before = _counts(db)
        with pytest.raises(InvalidInput) as caught:
            create_request(
                db,
                flow.catalog,
                flow.user("other_vendor"),
                kind="upgrade",
                contract_id=flow.world.other_contract.id,
                system_id=flow.world.system.id,  # belongs to contract A
                title="t",
                fields=creation_fields("upgrade"),
            )
        assert caught.value.code == "invalid_input"
        assert "system_id" in caught.value.details["fields"]
        assert _counts(db) == before

    @pytest.mark.parametrize("contract_id", [999_999, "1", None, True])
    def test_bad_contract_id_is_invalid_input(self, flow, db, contract_id):
        before = _counts(db)
        with pytest.raises(InvalidInput) as caught:
            create_request(
                db,
                flow.catalog,
                flow.user("dept_user"),
                kind="requirement",
                contract_id=contract_id,
                title="t",
                fields=creation_fields("requirement"),
            )
        assert "contract_id" in caught.value.details["fields"]
        assert _counts(db) == before


# ---------------------------------------------------------------- history entries


class TestHistoryEntries:
    def test_entry_holds_actor_states_validated_fields_and_comment(self, flow, db):
        request = flow.walk_to("requirement", "triaged")
        previous = flow.history(request)[-1]
        at = datetime(2026, 7, 1, 2, 30)
        entry = fire(
            db,
            request,
            "estimate",
            flow.user("vendor_manager"),
            {
                "estimate_days": 3,
                "analysis": "Add one column.",
                "modification_plan": "Migration plus form field.",
                "promised_date": "2026-09-01",
            },
            request.version,
            comment="Estimated with the department on the phone.",
            now=at,
        )
        db.flush()
        assert entry.actor_id == flow.user("vendor_manager").id
        assert entry.actor_name == "vendor_manager"
        assert (entry.event, entry.from_state, entry.to_state) == (
            "estimate",
            "triaged",
            "estimated",
        )
        # Validated and normalised: person-days as a decimal string, nothing else added.
        assert entry.fields == {
            "estimate_days": "3",
            "analysis": "Add one column.",
            "modification_plan": "Migration plus form field.",
            "promised_date": "2026-09-01",
        }
        assert entry.comment == "Estimated with the department on the phone."
        assert entry.at == at
        assert entry.seq == request.version == previous.seq + 1
        assert entry.prev_hash == previous.entry_hash
        assert request.head_hash == entry.entry_hash
        assert entry.definition_hash == definition_for(request).content_hash
        assert request.updated_at == at

    def test_only_given_fields_are_recorded(self, flow):
        request = flow.walk_to("requirement", "submitted")
        entry = flow.fire(request, "triage", "it_staff", {"priority": "low"})
        assert entry.fields == {"priority": "low"}
        assert entry.comment == ""
        assert request.data["priority"] == "low"
        assert "policy_interface" not in request.data

    def test_every_step_of_a_walk_is_one_entry(self, flow):
        request = flow.walk_to("schema_change", "closed")
        entries = flow.history(request)
        assert [e.event for e in entries] == [
            "create",
            "submit_for_review",
            "approve",
            "execute",
            "verify",
            "close",
        ]
        assert [e.seq for e in entries] == list(range(1, 7))
        assert [e.actor_name for e in entries] == [
            "vendor_engineer",
            "vendor_engineer",
            "it_dba",
            "vendor_engineer",
            "it_dba",
            "it_staff",
        ]
        for before, after in zip(entries, entries[1:], strict=False):
            assert after.from_state == before.to_state
            assert after.prev_hash == before.entry_hash
