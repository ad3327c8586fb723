"""Database schema change review (DOMAIN §3: D1, Z5, Q5, Q7): revisions, findings and written
waivers, a DBA approval pinned to the exact SQL, and execution only of the approved bytes."""

from __future__ import annotations

import copy
import hashlib
from collections import Counter

import pytest
from helpers import CHANGE_SQL, ROLLBACK_SQL, Flow, creation_fields
from sqlalchemy import select
from test_concurrency import N, fire_in_own_session, outcome, race, sessions, stored

from models import Contract, SchemaRevision
from workflow.canonical import content_hash
from workflow.errors import WorkflowError
from workflow.schema_rules import approval_body, revisions_of, sql_sha256

DESTRUCTIVE = (
    "ALTER TABLE patient DROP COLUMN old_note;\nCREATE INDEX ix_patient_name ON patient (name);"
)
DESTRUCTIVE_ROLLBACK = "ALTER TABLE patient ADD COLUMN old_note VARCHAR(200);"


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def schema_change(flow, change=CHANGE_SQL, rollback=ROLLBACK_SQL, creator=None, contract=None):
    fields = {**creation_fields("schema_change"), "change_sql": change, "rollback_sql": rollback}
    return flow.create("schema_change", creator, fields=fields, contract=contract)


def refusal(flow, request, event, actor, fields=None, comment=None) -> WorkflowError:
    before = (request.state, request.version, copy.deepcopy(request.data))
    with pytest.raises(WorkflowError) as caught:
        flow.fire(request, event, actor, fields, comment)
    assert (request.state, request.version, request.data) == before
    return caught.value


def reasons(error: WorkflowError) -> list[str]:
    return [r["guard"] for r in error.details.get("reasons", [])]


def contract_with(flow, **rules) -> Contract:
    """Another contract of vendor A whose schema_change policy has these rules."""
    return flow.policy_contract("C-SC", "Schema rules", section="schema_change", **rules)


def approved(flow, request, waive=()):
    flow.fire(request, "submit_for_review", "vendor_engineer")
    for finding in waive:
        flow.fire(request, "waive", "it_dba", {"finding": finding, "reason": "Checked by hand."})
    flow.fire(request, "approve", "it_dba")
    return request


# ---------------------------------------------------------------- revisions


def test_creation_writes_revision_one_with_its_analysis(flow):
    request = schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK)
    (revision,) = revisions_of(flow.db, request)
    assert (revision.number, revision.reason, revision.dialect) == (1, "created", "mysql")
    assert revision.change_sha256 == sha(DESTRUCTIVE)
    assert revision.rollback_sha256 == sha(DESTRUCTIVE_ROLLBACK)
    assert revision.risk == "error"
    assert [f["id"] for f in revision.analysis["findings"]] == ["1-drop-column"]
    assert {"type": "column", "name": "patient.old_note", "action": "drop"} in (
        revision.analysis["objects"]
    )
    # The request keeps the hashes and the counts; the SQL lives in the revision only.
    assert "change_sql" not in request.data and "rollback_sql" not in request.data
    assert request.data["revision"] == 1 and request.data["risk"] == "error"
    assert request.data["findings"] == {"error": 1, "warning": 0, "info": 0}


def test_every_edit_is_a_new_revision(flow):
    request = schema_change(flow)
    flow.fire(request, "revise", "vendor_engineer", {"change_sql": DESTRUCTIVE})
    flow.fire(request, "revise", "vendor_engineer", {"change_sql": CHANGE_SQL, "rollback_sql": ""})
    revisions = revisions_of(flow.db, request)
    assert [(r.number, r.reason) for r in revisions] == [
        (1, "created"),
        (2, "revised"),
        (3, "revised"),
    ]
    # An edit without rollback SQL keeps the previous rollback; an empty one clears it.
    assert revisions[1].rollback_sql == ROLLBACK_SQL
    assert revisions[2].rollback_sql == ""
    assert request.data["revision"] == 3
    assert request.data["change_sha256"] == sha(CHANGE_SQL)


def test_line_endings_are_normalised_before_hashing(flow):
    request = schema_change(flow, "ALTER TABLE a ADD b INT;\r\nALTER TABLE a ADD c INT;\r\n")
    revision = revisions_of(flow.db, request)[0]
    assert "\r" not in revision.change_sql
    assert revision.change_sha256 == sha("ALTER TABLE a ADD b INT;\nALTER TABLE a ADD c INT;\n")
    assert sql_sha256("x;\r\n") == sql_sha256("x;\n")


def test_only_the_author_revises_and_only_in_draft(flow):
    request = schema_change(flow)
    assert reasons(refusal(flow, request, "revise", "vendor_manager", {"change_sql": "x"})) == [
        "is_submitter"
    ]
    flow.fire(request, "submit_for_review", "vendor_engineer")
    assert refusal(flow, request, "revise", "vendor_engineer", {"change_sql": "x"}).code == (
        "invalid_transition"
    )


# ---------------------------------------------------------------- review and approval


def test_an_error_finding_without_a_waiver_blocks_approval(flow):
    request = schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK)
    flow.fire(request, "submit_for_review", "vendor_engineer")
    error = refusal(flow, request, "approve", "it_dba")
    assert reasons(error) == ["findings_waived"]
    assert "1-drop-column" in error.message
    assert error.details["reasons"][0]["values"]["count"] == 1

    flow.fire(
        request,
        "waive",
        "it_dba",
        {"finding": "1-drop-column", "reason": "Unused since 2024; backup BK-1 kept."},
    )
    waiver = request.data["waivers"]["1-drop-column"]
    assert (waiver["user"], waiver["revision"], waiver["rule"]) == ("it_dba", 1, "drop-column")
    flow.fire(request, "approve", "it_dba")
    approval = request.data["approval"]
    assert approval["revision"] == 1
    assert approval["change_sha256"] == sha(DESTRUCTIVE)
    assert approval["rollback_sha256"] == sha(DESTRUCTIVE_ROLLBACK)
    assert approval["waivers"] == [
        {
            "finding": "1-drop-column",
            "reason": "Unused since 2024; backup BK-1 kept.",
            "user": "it_dba",
        }
    ]
    assert approval["digest"] == content_hash(approval_body(approval))


def test_a_finding_is_waived_once_and_must_exist(flow):
    request = schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK)
    flow.fire(request, "submit_for_review", "vendor_engineer")
    unknown = refusal(flow, request, "waive", "it_dba", {"finding": "7-truncate", "reason": "x"})
    assert reasons(unknown) == ["finding_waivable"]
    flow.fire(request, "waive", "it_dba", {"finding": "1-drop-column", "reason": "Checked."})
    again = refusal(flow, request, "waive", "it_dba2", {"finding": "1-drop-column", "reason": "x"})
    assert "already waived" in again.message


def test_nobody_approves_or_waives_their_own_sql(flow):
    request = schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK, creator="it_dba")
    flow.fire(request, "submit_for_review", "it_dba")
    waive = refusal(flow, request, "waive", "it_dba", {"finding": "1-drop-column", "reason": "x"})
    assert "not_submitter" in reasons(waive)
    assert "not_submitter" in reasons(refusal(flow, request, "approve", "it_dba"))
    flow.fire(request, "waive", "it_dba2", {"finding": "1-drop-column", "reason": "Checked."})
    flow.fire(request, "approve", "it_dba2")
    assert request.state == "approved"


def test_request_changes_starts_a_new_revision_and_voids_the_approval(flow):
    request = approved(
        flow, schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK), waive=["1-drop-column"]
    )
    flow.fire(request, "request_changes", "it_dba", comment="Use a partial index instead.")
    assert request.state == "draft"
    assert "approval" not in request.data and request.data["waivers"] == {}
    revisions = revisions_of(flow.db, request)
    assert [(r.number, r.reason) for r in revisions] == [(1, "created"), (2, "changes_requested")]
    assert revisions[1].change_sha256 == revisions[0].change_sha256  # same bytes, new review
    # Resubmitted unchanged, the old waiver does not carry over to revision 2.
    flow.fire(request, "submit_for_review", "vendor_engineer")
    assert reasons(refusal(flow, request, "approve", "it_dba")) == ["findings_waived"]


def test_a_revision_after_approval_cannot_be_executed_on_the_old_approval(flow):
    request = approved(flow, schema_change(flow))
    flow.fire(request, "request_changes", "it_dba", comment="One more column.")
    flow.fire(
        request,
        "revise",
        "vendor_engineer",
        {"change_sql": CHANGE_SQL + "\nALTER TABLE p ADD q INT;"},
    )
    flow.fire(request, "submit_for_review", "vendor_engineer")
    flow.fire(request, "approve", "it_dba")
    old = refusal(
        flow,
        request,
        "execute",
        "vendor_engineer",
        {"executed_sql_sha256": sha(CHANGE_SQL), "result": "success"},
    )
    assert reasons(old) == ["matches_approval"]
    assert (
        old.details["reasons"][0]["values"]["approved"] == request.data["approval"]["change_sha256"]
    )


# ---------------------------------------------------------------- execution (D1, Q5, Q7)


def test_execution_with_different_bytes_is_refused_naming_both_hashes(flow):
    request = approved(flow, schema_change(flow))
    other = CHANGE_SQL.replace("200", "20")
    error = refusal(
        flow, request, "execute", "vendor_engineer", {"executed_sql": other, "result": "success"}
    )
    assert sha(other) in error.message and sha(CHANGE_SQL) in error.message
    values = error.details["reasons"][0]["values"]
    assert (values["ran"], values["approved"]) == (sha(other), sha(CHANGE_SQL))


def test_execution_of_the_approved_bytes_is_recorded(flow):
    request = approved(flow, schema_change(flow))
    flow.fire(
        request,
        "execute",
        "vendor_engineer",
        {"executed_sql": CHANGE_SQL.replace("\n", "\r\n"), "result": "success", "output": "OK"},
    )
    run = request.data["execution"]
    assert (run["user"], run["revision"], run["sha256"]) == ("vendor_engineer", 1, sha(CHANGE_SQL))
    assert (run["result"], run["output"]) == ("success", "OK")


def test_a_tampered_revision_voids_the_approval(flow):
    request = approved(flow, schema_change(flow))
    revision = flow.db.scalar(select(SchemaRevision).where(SchemaRevision.request_id == request.id))
    revision.change_sql = CHANGE_SQL + " -- edited in the database"
    flow.db.flush()
    error = refusal(
        flow,
        request,
        "execute",
        "vendor_engineer",
        {"executed_sql_sha256": sha(CHANGE_SQL), "result": "success"},
    )
    assert "no intact approval" in error.message


def test_a_destructive_change_needs_a_backup_reference(flow):
    request = approved(
        flow, schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK), waive=["1-drop-column"]
    )
    run = {"executed_sql_sha256": sha(DESTRUCTIVE), "result": "success"}
    error = refusal(flow, request, "execute", "it_dba", run)
    assert reasons(error) == ["backup_for_destructive"]
    assert "drop-column" in error.message
    flow.fire(request, "execute", "it_dba", {**run, "backup_reference": "RMAN-2026-11-25-01"})
    assert request.data["execution"]["backup_reference"] == "RMAN-2026-11-25-01"


def test_without_the_backup_rule_no_reference_is_needed(flow):
    contract = contract_with(flow, require_backup_for_destructive=False)
    request = schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK, contract=contract)
    approved(flow, request, waive=["1-drop-column"])
    flow.fire(
        request, "execute", "it_dba", {"executed_sql_sha256": sha(DESTRUCTIVE), "result": "success"}
    )
    assert request.state == "executed"


def test_two_person_rule_needs_another_active_user_as_witness(flow):
    contract = contract_with(flow, two_person_execution=True)
    request = approved(flow, schema_change(flow, contract=contract))
    run = {"executed_sql_sha256": sha(CHANGE_SQL), "result": "success"}
    assert reasons(refusal(flow, request, "execute", "it_dba", run)) == ["witness_present"]
    assert reasons(refusal(flow, request, "execute", "it_dba", {**run, "witness": "it_dba"})) == [
        "witness_present"
    ]
    assert reasons(refusal(flow, request, "execute", "it_dba", {**run, "witness": "nobody"})) == [
        "witness_present"
    ]
    flow.fire(request, "execute", "it_dba", {**run, "witness": "it_staff"})
    assert request.data["execution"]["witness"] == "it_staff"


def test_a_failed_run_is_rolled_back_with_the_approved_rollback_only(flow):
    request = approved(flow, schema_change(flow))
    flow.fire(
        request,
        "execute",
        "vendor_engineer",
        {"executed_sql_sha256": sha(CHANGE_SQL), "result": "failure", "output": "ERROR 1060"},
    )
    assert reasons(refusal(flow, request, "verify", "it_dba")) == ["execution_succeeded"]
    wrong = refusal(
        flow,
        request,
        "roll_back",
        "it_dba",
        {"rollback_run_sql": "DROP TABLE patient;"},
        comment="Duplicate column.",
    )
    assert reasons(wrong) == ["matches_approval"]
    flow.fire(
        request,
        "roll_back",
        "it_dba",
        {"rollback_run_sql": ROLLBACK_SQL},
        comment="Duplicate column.",
    )
    assert request.state == "rolled_back"
    assert request.data["rollback"]["sha256"] == sha(ROLLBACK_SQL)


def test_the_verifier_is_not_the_executor(flow):
    request = approved(flow, schema_change(flow))
    flow.fire(
        request, "execute", "it_dba", {"executed_sql_sha256": sha(CHANGE_SQL), "result": "success"}
    )
    assert reasons(refusal(flow, request, "verify", "it_dba")) == ["not_actor_of"]
    flow.fire(request, "verify", "it_staff")
    flow.fire(request, "close", "it_staff")
    assert request.state == "closed"


def test_policy_severity_overrides_change_what_blocks(flow):
    contract = contract_with(flow, severity_overrides={"drop-column": "warning"})
    request = schema_change(flow, DESTRUCTIVE, DESTRUCTIVE_ROLLBACK, contract=contract)
    revision = revisions_of(flow.db, request)[0]
    assert revision.risk == "warning"
    approved(flow, request)  # no waiver needed any more
    assert request.state == "approved"


# ---------------------------------------------------------------- concurrency (PostgreSQL)


def _committed(flow, db, request) -> tuple[int, int]:
    request_id, version = request.id, request.version
    db.commit()
    db.close()
    return request_id, version


def _fire(app, request_id, event, actor_id, fields, version, barrier):
    """One person's click in its own session (test_concurrency's), loaded before the race."""
    return fire_in_own_session(
        app, request_id, event, actor_id, fields, "", version, barrier, load_first=True
    )


def test_two_dbas_approving_at_once_one_wins(pg_only, app, db, flow):
    request = schema_change(flow)
    flow.fire(request, "submit_for_review", "vendor_engineer")
    dbas = [flow.user("it_dba").id, flow.user("it_dba2").id]
    request_id, version = _committed(flow, db, request)
    results = race(2, lambda i, b: _fire(app, request_id, "approve", dbas[i], {}, version, b))
    assert Counter(outcome(r) for r in results) == Counter({"ok": 1, "stale_version": 1})
    state, new_version, entries, problem = stored(app, request_id)
    assert (state, new_version, problem) == ("approved", version + 1, None)


def test_double_revise_writes_one_revision(pg_only, app, db, flow):
    request = schema_change(flow)
    author = flow.user("vendor_engineer").id
    request_id, version = _committed(flow, db, request)
    edit = {"change_sql": CHANGE_SQL + "\n-- v2"}
    results = race(N, lambda i, b: _fire(app, request_id, "revise", author, edit, version, b))
    assert Counter(outcome(r) for r in results) == Counter({"ok": 1, "stale_version": N - 1})
    with sessions(app)() as session:
        numbers = session.scalars(
            select(SchemaRevision.number).where(SchemaRevision.request_id == request_id)
        ).all()
    assert sorted(numbers) == [1, 2]
