"""Transition tables: for every workflow, (state, event, actor) → the outcome the rules demand.

Each row is the specification of one step: ``ok(...)`` rows name the state the request ends
in; ``no(...)`` rows name the error code (SPEC §3/§4). The starting state is always reached by
real fires (tests/helpers.py), and a refused fire must change nothing: state, version, data,
head hash and the number of history entries stay as they were.
"""

from __future__ import annotations

import pytest

from tests.helpers import (
    CHANGE_SQL,
    DEFAULT_CREATOR,
    PATHS,
    SUBMITTER,
    Flow,
    Step,
    creation_fields,
    estimate_input,
)
from workflow.engine import definition_for
from workflow.errors import WorkflowError

S = SUBMITTER


def with_sql(change_sql: str) -> dict:
    """Creation fields of a schema change with this change SQL."""
    return {**creation_fields("schema_change"), "change_sql": change_sql}


def ok(state, event, actor, to, **opts):
    """A step that must succeed and end in ``to``."""
    return pytest.param(state, event, actor, "ok", to, opts, id=_id(state, event, actor, to, opts))


def no(state, event, actor, code, **opts):
    """A step that must be refused with ``code``."""
    return pytest.param(
        state, event, actor, code, None, opts, id=_id(state, event, actor, code, opts)
    )


def _id(state, event, actor, outcome, opts):
    extra = "-".join(sorted(k for k in opts if k != "path"))
    if "path" in opts:
        extra = (extra + "-custom_path").strip("-")
    who = actor.replace("@", "") if actor != S else "submitter"
    if "creator" in opts:
        who += f"(by:{opts['creator']})"
    return f"{state}:{event}:{who}:{outcome}" + (f"[{extra}]" if extra else "")


# ---------------------------------------------------------------- requirement (二次开发)


def actual_effort_path(*after: Step, days: str = "2") -> list[Step]:
    """Delivered with an actual effort (default 2) other than the estimate (1), then ``after``."""
    return [
        *PATHS["requirement"]["in_development"],
        Step("deliver", "vendor_engineer", {"delivery_note": "Build 43.", "actual_days": days}),
        *after,
    ]


IT_CONFIRMS = Step("confirm_actual_it", "it_signer")
VENDOR_CONFIRMS = Step("confirm_actual_vendor", "vendor_manager")
ACCEPTED = (Step("dept_accept", "dept_user"), Step("it_accept", "it_staff"))


REQUIREMENT = [
    # submit: draft → submitted, only by the person who raised it
    ok("draft", "submit", S, "submitted"),
    ok("draft", "submit", "it_staff", "submitted", creator="it_staff"),
    no("draft", "submit", "it_staff", "guard_failed"),  # not the submitter
    no("draft", "submit", "other_dept_user", "forbidden"),  # other department
    no("draft", "submit", "vendor_engineer", "forbidden"),
    no("submitted", "submit", "dept_user", "invalid_transition"),
    no("draft", "submit", S, "invalid_input", fields={"priority": "high"}),  # takes no fields
    # return_to_submitter: submitted → draft, comment required
    ok("submitted", "return_to_submitter", "it_staff", "draft"),
    no("submitted", "return_to_submitter", "it_staff", "invalid_input", comment=""),
    no("submitted", "return_to_submitter", "dept_user", "forbidden"),
    no("triaged", "return_to_submitter", "it_staff", "invalid_transition"),
    # triage: submitted → triaged
    ok("submitted", "triage", "it_staff", "triaged"),
    ok("submitted", "triage", "it_staff2", "triaged", fields={"priority": "low"}),
    no("submitted", "triage", "it_staff", "invalid_input", fields={}),
    no("submitted", "triage", "it_staff", "invalid_input", fields={"priority": "urgent"}),
    no("submitted", "triage", "it_signer", "forbidden"),
    no("submitted", "triage", "vendor_manager", "forbidden"),
    no("submitted", "triage", "dept_user", "forbidden"),
    no("draft", "triage", "it_staff", "invalid_transition"),
    # reject: submitted | triaged → rejected
    ok("submitted", "reject", "it_staff", "rejected"),
    ok("triaged", "reject", "it_staff", "rejected"),
    no("triaged", "reject", "it_staff", "invalid_input", comment="   "),
    no("triaged", "reject", "dept_user", "forbidden"),
    no("estimated", "reject", "it_staff", "invalid_transition"),
    # estimate: triaged | estimated | it_confirmed | vendor_confirmed → estimated
    ok("triaged", "estimate", "vendor_engineer", "estimated"),
    ok("triaged", "estimate", "vendor_manager", "estimated", fields=estimate_input("0.5")),
    ok("estimated", "estimate", "vendor_manager", "estimated", fields=estimate_input("3")),
    ok("it_confirmed", "estimate", "vendor_engineer", "estimated"),
    ok("vendor_confirmed", "estimate", "vendor_engineer", "estimated"),
    no("triaged", "estimate", "other_vendor", "forbidden"),  # vendor B on vendor A's contract
    no("triaged", "estimate", "it_staff", "forbidden"),
    no("triaged", "estimate", "vendor_engineer", "invalid_input", fields=estimate_input("1.3")),
    no("triaged", "estimate", "vendor_engineer", "invalid_input", fields=estimate_input("0")),
    no("triaged", "estimate", "vendor_engineer", "invalid_input", fields=estimate_input("1001")),
    no(
        "triaged",
        "estimate",
        "vendor_engineer",
        "invalid_input",
        fields={**estimate_input(), "promised_date": "soon"},
    ),
    no(
        "triaged",
        "estimate",
        "vendor_engineer",
        "invalid_input",
        fields={"analysis": "a", "modification_plan": "b", "promised_date": "2026-09-01"},
    ),
    no("submitted", "estimate", "vendor_engineer", "invalid_transition"),
    no("confirmed", "estimate", "vendor_engineer", "invalid_transition"),
    # it_confirm: estimated → it_confirmed; vendor_confirmed → confirmed | awaiting_agreement
    ok("estimated", "it_confirm", "it_signer", "it_confirmed"),
    ok("vendor_confirmed", "it_confirm", "it_signer", "confirmed"),
    ok(
        "vendor_confirmed",
        "it_confirm",
        "it_signer",
        "awaiting_agreement",
        contract="quota",
        path=[
            *PATHS["requirement"]["triaged"],
            Step("estimate", "vendor_engineer", estimate_input("10.5")),
            Step("vendor_confirm", "vendor_manager"),
        ],
    ),
    no("estimated", "it_confirm", "vendor_manager", "forbidden"),  # vendor signing for IT
    no("estimated", "it_confirm", "it_staff", "forbidden"),
    no("estimated", "it_confirm", "dept_user", "forbidden"),
    no("estimated", "it_confirm", "it_staff_signer", "guard_failed", creator="it_staff_signer"),
    no("estimated", "it_confirm", "it_signer", "invalid_input", fields={"note": "ok"}),
    no("it_confirmed", "it_confirm", "it_signer", "invalid_transition"),
    no("triaged", "it_confirm", "it_signer", "invalid_transition"),
    # vendor_confirm: estimated → vendor_confirmed; it_confirmed → confirmed | awaiting_agreement
    ok("estimated", "vendor_confirm", "vendor_manager", "vendor_confirmed"),
    ok("it_confirmed", "vendor_confirm", "vendor_manager", "confirmed"),
    ok(
        "it_confirmed",
        "vendor_confirm",
        "vendor_manager",
        "awaiting_agreement",
        contract="quota",
        path=[
            *PATHS["requirement"]["triaged"],
            Step("estimate", "vendor_engineer", estimate_input("12")),
            Step("it_confirm", "it_signer"),
        ],
    ),
    no("estimated", "vendor_confirm", "vendor_engineer", "forbidden"),
    no("estimated", "vendor_confirm", "it_signer", "forbidden"),
    no("estimated", "vendor_confirm", "other_vendor", "forbidden"),
    no("vendor_confirmed", "vendor_confirm", "vendor_manager", "invalid_transition"),
    # record_agreement: awaiting_agreement → confirmed, with the agreement attached
    ok(
        "awaiting_agreement",
        "record_agreement",
        "it_signer",
        "confirmed",
        attach=[("it_signer", "supplementary_agreement")],
    ),
    no("awaiting_agreement", "record_agreement", "it_signer", "guard_failed"),
    no(
        "awaiting_agreement",
        "record_agreement",
        "it_signer",
        "guard_failed",
        attach=[("it_signer", "quotation")],  # a document of another kind does not count
    ),
    no(
        "awaiting_agreement",
        "record_agreement",
        "it_signer",
        "invalid_input",
        attach=[("it_signer", "supplementary_agreement")],
        fields={"paid_days": "2"},
    ),
    no(
        "awaiting_agreement",
        "record_agreement",
        "it_signer",
        "invalid_input",
        attach=[("it_signer", "supplementary_agreement")],
        fields={"paid_days": "2", "fee_fen": -1},
    ),
    no(
        "awaiting_agreement",
        "record_agreement",
        "vendor_manager",
        "forbidden",
        attach=[("it_signer", "supplementary_agreement")],
    ),
    no("confirmed", "record_agreement", "it_signer", "invalid_transition"),
    # ... and after acceptance, when an actual effort beyond the free quota needs one
    ok(
        "accepted",
        "record_agreement",
        "it_signer",
        "accepted",
        attach=[("it_signer", "supplementary_agreement")],
    ),
    no("accepted", "record_agreement", "it_signer", "guard_failed"),
    # start_development: confirmed → in_development
    ok("confirmed", "start_development", "vendor_engineer", "in_development"),
    ok("confirmed", "start_development", "vendor_manager", "in_development"),
    no("confirmed", "start_development", "it_staff", "forbidden"),
    no("confirmed", "start_development", "other_vendor", "forbidden"),
    no("awaiting_agreement", "start_development", "vendor_engineer", "invalid_transition"),
    no("estimated", "start_development", "vendor_engineer", "invalid_transition"),
    # deliver: in_development → delivered
    ok("in_development", "deliver", "vendor_engineer", "delivered"),
    ok("in_development", "deliver", "vendor_manager", "delivered", fields={"delivery_note": "v2"}),
    no("in_development", "deliver", "vendor_engineer", "invalid_input", fields={}),
    no(
        "in_development",
        "deliver",
        "vendor_engineer",
        "invalid_input",
        fields={"delivery_note": "x", "actual_days": "1.2"},
    ),
    no(
        "in_development",
        "deliver",
        "vendor_engineer",
        "invalid_input",
        fields={"delivery_note": "x", "linked_requests": [2_000_000]},  # no such request
    ),
    no(
        "in_development",
        "deliver",
        "vendor_engineer",
        "invalid_input",
        fields={"delivery_note": "x", "linked_requests": "12"},
    ),
    no("in_development", "deliver", "dept_user", "forbidden"),
    no("confirmed", "deliver", "vendor_engineer", "invalid_transition"),
    # dept_accept: delivered → dept_accepted, by the raising department
    ok("delivered", "dept_accept", "dept_user", "dept_accepted"),
    no("delivered", "dept_accept", "other_dept_user", "forbidden"),
    no("delivered", "dept_accept", "it_staff", "forbidden"),
    no("delivered", "dept_accept", "vendor_manager", "forbidden"),
    no("in_development", "dept_accept", "dept_user", "invalid_transition"),
    # D7: under a 10-working-day wait, a delivery of today cannot be accepted yet
    no("delivered", "dept_accept", "dept_user", "guard_failed", contract="wait"),
    # confirm_actual_*: a different actual effort is confirmed again by both sides (Z1)
    *[
        ok(state, event, actor, state, path=actual_effort_path(*before))
        for event, actor in (
            ("confirm_actual_it", "it_signer"),
            ("confirm_actual_vendor", "vendor_manager"),
        )
        for state, before in (
            ("delivered", ()),
            ("dept_accepted", ACCEPTED[:1]),
            ("accepted", ACCEPTED),
        )
    ],
    no("delivered", "confirm_actual_it", "it_signer", "guard_failed"),  # actual = estimate
    no("delivered", "confirm_actual_vendor", "vendor_manager", "guard_failed"),
    no(
        "delivered",
        "confirm_actual_it",
        "it_signer",
        "guard_failed",  # confirming twice
        path=actual_effort_path(IT_CONFIRMS),
    ),
    no(
        "delivered",
        "confirm_actual_vendor",
        "vendor_manager",
        "guard_failed",
        path=actual_effort_path(VENDOR_CONFIRMS),
    ),
    no("delivered", "confirm_actual_it", "vendor_manager", "forbidden", path=actual_effort_path()),
    no("delivered", "confirm_actual_vendor", "it_signer", "forbidden", path=actual_effort_path()),
    no(
        "delivered",
        "confirm_actual_vendor",
        "vendor_engineer",
        "forbidden",
        path=actual_effort_path(),
    ),
    no(
        "delivered",
        "confirm_actual_it",
        "it_signer",
        "invalid_input",
        path=actual_effort_path(),
        fields={"actual_days": "3"},
    ),
    no("in_development", "confirm_actual_it", "it_signer", "invalid_transition"),
    # dept_reject: delivered → in_development, comment required
    ok("delivered", "dept_reject", "dept_user", "in_development"),
    ok("delivered", "dept_reject", "it_staff", "in_development"),
    no("delivered", "dept_reject", "dept_user", "invalid_input", comment=""),
    no("delivered", "dept_reject", "vendor_engineer", "forbidden"),
    # it_accept: dept_accepted → accepted, not by the submitter
    ok("dept_accepted", "it_accept", "it_staff", "accepted"),
    ok("dept_accepted", "it_accept", "it_signer", "accepted"),
    ok("dept_accepted", "it_accept", "it_staff2", "accepted", creator="it_staff"),
    no("dept_accepted", "it_accept", "it_staff", "guard_failed", creator="it_staff"),
    no("dept_accepted", "it_accept", "dept_user", "forbidden"),
    no("delivered", "it_accept", "it_staff", "invalid_transition"),
    # close: accepted → closed
    ok("accepted", "close", "it_staff", "closed"),
    ok(
        "accepted",
        "close",
        "it_staff",
        "closed",
        path=actual_effort_path(IT_CONFIRMS, VENDOR_CONFIRMS, *ACCEPTED),
    ),
    # a different actual effort not yet confirmed by both sides
    no("accepted", "close", "it_staff", "guard_failed", path=actual_effort_path(*ACCEPTED)),
    no(
        "accepted",
        "close",
        "it_staff",
        "guard_failed",
        path=actual_effort_path(IT_CONFIRMS, *ACCEPTED),
    ),
    no("accepted", "close", "it_signer", "forbidden"),
    no("accepted", "close", "vendor_manager", "forbidden"),
    no("dept_accepted", "close", "it_staff", "invalid_transition"),
    # cancel: from every state before delivery → cancelled, comment required
    ok("draft", "cancel", "dept_user", "cancelled"),
    ok("submitted", "cancel", "it_staff", "cancelled"),
    ok("triaged", "cancel", "it_signer", "cancelled"),
    ok("estimated", "cancel", "dept_user", "cancelled"),
    ok("it_confirmed", "cancel", "it_staff", "cancelled"),
    ok("vendor_confirmed", "cancel", "it_signer", "cancelled"),
    ok("awaiting_agreement", "cancel", "it_signer", "cancelled"),
    ok("confirmed", "cancel", "dept_user", "cancelled"),
    ok("in_development", "cancel", "it_staff", "cancelled"),
    no("draft", "cancel", "dept_user", "invalid_input", comment=""),
    no("draft", "cancel", "other_dept_user", "forbidden"),
    no("confirmed", "cancel", "vendor_manager", "forbidden"),
    no("delivered", "cancel", "it_staff", "invalid_transition"),
    # final states: nothing leaves them; unknown events never exist
    no("closed", "cancel", "it_staff", "invalid_transition"),
    no("closed", "close", "it_staff", "invalid_transition"),
    no("rejected", "triage", "it_staff", "invalid_transition"),
    no("cancelled", "submit", S, "invalid_transition"),
    no("draft", "approve", "it_staff", "invalid_transition"),
    no("draft", "create", S, "invalid_transition"),
]


# ---------------------------------------------------------------- upgrade (系统升级)

UPGRADE = [
    # submit_for_review: draft → under_review; by the submitter, with a test report (Z4)
    ok("draft", "submit_for_review", S, "under_review", attach=[(S, "test_report")]),
    ok(
        "draft",
        "submit_for_review",
        "it_staff",
        "under_review",
        creator="it_staff",
        attach=[("it_staff", "test_report")],
    ),
    no("draft", "submit_for_review", S, "guard_failed"),  # no test report
    no(
        "draft",
        "submit_for_review",
        S,
        "guard_failed",
        attach=[(S, "upgrade_report")],  # a document of another kind does not count
    ),
    no(
        "draft",
        "submit_for_review",
        "vendor_manager",
        "guard_failed",
        attach=[(S, "test_report")],
    ),
    no("draft", "submit_for_review", "other_vendor", "forbidden", attach=[(S, "test_report")]),
    no("draft", "submit_for_review", "dept_user", "forbidden"),
    no("draft", "submit_for_review", "it_signer", "forbidden"),
    no(
        "draft",
        "submit_for_review",
        S,
        "invalid_input",
        attach=[(S, "test_report")],
        fields={"to_version": "2.0"},
    ),
    no("under_review", "submit_for_review", S, "invalid_transition"),
    # Z3: an older target than the newest registered release (1.1.0) needs IT's override
    no(
        "draft",
        "submit_for_review",
        S,
        "guard_failed",
        path=[],
        create_fields={"from_version": "1.0.0", "to_version": "1.0.5"},
        attach=[(S, "test_report")],
    ),
    ok(
        "draft",
        "submit_for_review",
        S,
        "under_review",
        path=[Step("override_latest_release", "it_staff")],
        create_fields={"from_version": "1.0.0", "to_version": "1.0.5"},
        attach=[(S, "test_report")],
    ),
    # override_latest_release: draft | under_review → same state, IT only, with a reason
    ok("draft", "override_latest_release", "it_staff", "draft"),
    ok("under_review", "override_latest_release", "it_signer", "under_review"),
    no("draft", "override_latest_release", "it_staff", "invalid_input", comment=" "),
    no("draft", "override_latest_release", "vendor_manager", "forbidden"),
    no("signed", "override_latest_release", "it_staff", "invalid_transition"),
    # request_changes: under_review → draft
    ok("under_review", "request_changes", "it_staff", "draft"),
    ok("under_review", "request_changes", "it_signer", "draft"),
    no("under_review", "request_changes", "it_staff", "invalid_input", comment=""),
    no("under_review", "request_changes", "vendor_engineer", "forbidden"),
    no("signed", "request_changes", "it_signer", "invalid_transition"),
    # sign: under_review → signed, by an IT signer who did not submit it
    ok("under_review", "sign", "it_signer", "signed"),
    no("under_review", "sign", "vendor_manager", "forbidden"),  # vendor trying IT signing
    no("under_review", "sign", "it_staff", "forbidden"),
    no("under_review", "sign", "other_vendor", "forbidden"),
    no("under_review", "sign", "it_staff_signer", "guard_failed", creator="it_staff_signer"),
    no("draft", "sign", "it_signer", "invalid_transition"),
    no("signed", "sign", "it_signer", "invalid_transition"),
    # reject: under_review → rejected
    ok("under_review", "reject", "it_signer", "rejected"),
    no("under_review", "reject", "it_signer", "invalid_input", comment=""),
    no("under_review", "reject", "it_staff", "forbidden"),
    # schedule: signed → scheduled
    ok("signed", "schedule", "vendor_engineer", "scheduled"),
    ok(
        "signed",
        "schedule",
        "it_staff",
        "scheduled",
        fields={
            "window_start": "2026-07-01T22:00:00+08:00",
            "window_end": "2026-07-02T02:00:00+08:00",
        },
    ),
    no("signed", "schedule", "vendor_engineer", "invalid_input", fields={}),
    no(
        "signed",
        "schedule",
        "vendor_engineer",
        "invalid_input",
        fields={"window_start": "2026-07-01T22:00:00"},  # no time zone
    ),
    no("signed", "schedule", "dept_user", "forbidden"),
    no("signed", "schedule", "other_vendor", "forbidden"),
    no("under_review", "schedule", "vendor_engineer", "invalid_transition"),
    # deploy: scheduled → deployed, the signed version only
    ok("scheduled", "deploy", "vendor_engineer", "deployed"),
    ok("scheduled", "deploy", "it_staff", "deployed"),
    no(
        "scheduled",
        "deploy",
        "vendor_engineer",
        "guard_failed",
        fields={"deployed_version": "1.0.9"},
    ),
    no("scheduled", "deploy", "vendor_engineer", "invalid_input", fields={}),
    no(
        "scheduled",
        "deploy",
        "vendor_engineer",
        "invalid_input",
        fields={"deployed_version": "1.1.0 final"},
    ),
    no("scheduled", "deploy", "it_signer", "forbidden"),
    no("signed", "deploy", "vendor_engineer", "invalid_transition"),
    # verify: deployed → verified, by someone other than the deployer
    ok("deployed", "verify", "it_staff", "verified"),
    no(
        "deployed",
        "verify",
        "it_staff",
        "guard_failed",
        path=[*PATHS["upgrade"]["scheduled"], Step("deploy", "it_staff")],
    ),
    ok(
        "deployed",
        "verify",
        "it_staff2",
        "verified",
        path=[*PATHS["upgrade"]["scheduled"], Step("deploy", "it_staff")],
    ),
    no("deployed", "verify", "vendor_engineer", "forbidden"),
    no("scheduled", "verify", "it_staff", "invalid_transition"),
    # close: verified → closed once the upgrade report is attached (Z7/Q10)
    ok("verified", "close", "it_staff", "closed", attach=[("vendor_engineer", "upgrade_report")]),
    no("verified", "close", "it_staff", "guard_failed"),  # only the test report is there
    no("verified", "close", "vendor_engineer", "forbidden", attach=[(S, "upgrade_report")]),
    no("deployed", "close", "it_staff", "invalid_transition", attach=[(S, "upgrade_report")]),
    # roll_back: deployed | verified → rolled_back
    ok("deployed", "roll_back", "vendor_engineer", "rolled_back"),
    ok("verified", "roll_back", "it_staff", "rolled_back"),
    no("deployed", "roll_back", "vendor_engineer", "invalid_input", comment=""),
    no("deployed", "roll_back", "it_signer", "forbidden"),
    no("scheduled", "roll_back", "vendor_engineer", "invalid_transition"),
    # withdraw: draft | under_review | signed | scheduled → withdrawn
    ok("draft", "withdraw", S, "withdrawn"),
    ok("under_review", "withdraw", "vendor_manager", "withdrawn"),
    ok("signed", "withdraw", "it_staff", "withdrawn"),
    ok("scheduled", "withdraw", "vendor_engineer", "withdrawn"),
    no("draft", "withdraw", S, "invalid_input", comment=""),
    no("draft", "withdraw", "it_signer", "forbidden"),
    no("draft", "withdraw", "other_vendor", "forbidden"),
    no("deployed", "withdraw", "vendor_engineer", "invalid_transition"),
    # final states
    no("closed", "roll_back", "it_staff", "invalid_transition"),
    no("withdrawn", "sign", "it_signer", "invalid_transition"),
    no("rejected", "submit_for_review", S, "invalid_transition"),
    no("rolled_back", "close", "it_staff", "invalid_transition"),
    no("draft", "approve", "it_signer", "invalid_transition"),
]


# ---------------------------------------------------------------- schema_change (数据库结构变更)

SCHEMA_CHANGE = [
    # submit_for_review: draft → under_review, by the author
    ok("draft", "submit_for_review", S, "under_review"),
    ok("draft", "submit_for_review", "it_dba", "under_review", creator="it_dba"),
    no("draft", "submit_for_review", "vendor_manager", "guard_failed"),
    no("draft", "submit_for_review", "dept_user", "forbidden"),
    no("draft", "submit_for_review", "other_vendor", "forbidden"),
    no("under_review", "submit_for_review", S, "invalid_transition"),
    # request_changes: under_review → draft
    ok("under_review", "request_changes", "it_dba", "draft"),
    no("under_review", "request_changes", "it_dba", "invalid_input", comment=""),
    no("under_review", "request_changes", "it_staff", "forbidden"),
    ok("approved", "request_changes", "it_dba", "draft"),
    no("approved", "request_changes", "vendor_engineer", "forbidden"),
    # revise: draft → draft, a new revision by the author only
    ok("draft", "revise", S, "draft"),
    no("draft", "revise", "vendor_manager", "guard_failed"),
    no("draft", "revise", "it_dba", "guard_failed"),
    no("draft", "revise", S, "invalid_input", fields={"rollback_sql": "x"}),
    no("under_review", "revise", S, "invalid_transition"),
    # waive: a finding of the current revision, by a DBA who did not write it
    ok(
        "under_review",
        "waive",
        "it_dba",
        "under_review",
        create_fields=with_sql("ALTER TABLE patient DROP COLUMN old_note;"),
        fields={"finding": "1-drop-column", "reason": "Column unused since 2024 (checked)."},
    ),
    no(
        "under_review",
        "waive",
        "it_dba",
        "guard_failed",
        fields={"finding": "9-drop-table", "reason": "No such finding."},
    ),
    no("under_review", "waive", "it_dba", "invalid_input", fields={"finding": "1-x"}),
    no(
        "under_review",
        "waive",
        "it_dba",
        "guard_failed",
        creator="it_dba",
        create_fields=with_sql("DROP TABLE patient;"),
        fields={"finding": "1-drop-table", "reason": "My own change."},
    ),
    no(
        "under_review",
        "waive",
        "vendor_manager",
        "forbidden",
        fields={"finding": "1-drop-table", "reason": "x"},
    ),
    # approve: under_review → approved, by a DBA other than the author (D1)
    ok("under_review", "approve", "it_dba", "approved"),
    ok("under_review", "approve", "it_dba2", "approved", creator="it_dba"),
    no("under_review", "approve", "it_dba", "guard_failed", creator="it_dba"),
    no("under_review", "approve", "it_staff_dba", "guard_failed", creator="it_staff_dba"),
    no("under_review", "approve", "vendor_manager", "forbidden"),
    no("under_review", "approve", "it_staff", "forbidden"),
    no("under_review", "approve", "it_signer", "forbidden"),
    no("under_review", "approve", "it_dba", "invalid_input", fields={"waiver": "x"}),
    # an error finding without a written waiver blocks approval
    no(
        "under_review",
        "approve",
        "it_dba",
        "guard_failed",
        create_fields=with_sql("ALTER TABLE patient DROP COLUMN old_note;"),
    ),
    no("draft", "approve", "it_dba", "invalid_transition"),
    no("approved", "approve", "it_dba", "invalid_transition"),
    # reject: under_review → rejected
    ok("under_review", "reject", "it_dba", "rejected"),
    no("under_review", "reject", "it_dba", "invalid_input", comment=""),
    no("under_review", "reject", "vendor_engineer", "forbidden"),
    # execute: approved → executed
    ok("approved", "execute", "vendor_engineer", "executed"),
    ok(
        "approved",
        "execute",
        "it_dba",
        "executed",
        fields={"executed_sql": CHANGE_SQL, "result": "failure", "output": "ERROR 1060"},
    ),
    # only the approved bytes (D1)
    no(
        "approved",
        "execute",
        "it_dba",
        "guard_failed",
        fields={"executed_sql_sha256": "a" * 64, "result": "success"},
    ),
    no(
        "approved",
        "execute",
        "it_dba",
        "guard_failed",
        fields={"executed_sql": CHANGE_SQL + " ", "result": "success"},
    ),
    # neither the SQL run nor its hash: refused by the approval guard, naming what is missing
    no("approved", "execute", "vendor_engineer", "guard_failed", fields={"result": "success"}),
    no(
        "approved",
        "execute",
        "vendor_engineer",
        "invalid_input",
        fields={"executed_sql_sha256": "xyz", "result": "success"},
    ),
    no(
        "approved",
        "execute",
        "vendor_engineer",
        "invalid_input",
        fields={"executed_sql_sha256": "a" * 64, "result": "partial"},
    ),
    no("approved", "execute", "vendor_manager", "forbidden"),
    no("approved", "execute", "other_vendor", "forbidden"),
    no("approved", "execute", "it_staff", "forbidden"),
    no("under_review", "execute", "vendor_engineer", "invalid_transition"),
    # verify: executed → verified, not by the executor (Q7)
    ok("executed", "verify", "it_dba", "verified"),
    ok("executed", "verify", "it_staff", "verified"),
    no(
        "executed",
        "verify",
        "it_dba",
        "guard_failed",
        path=[*PATHS["schema_change"]["approved"], Step("execute", "it_dba")],
    ),
    ok(
        "executed",
        "verify",
        "it_dba2",
        "verified",
        path=[*PATHS["schema_change"]["approved"], Step("execute", "it_dba")],
    ),
    no("executed", "verify", "vendor_engineer", "forbidden"),
    no("approved", "verify", "it_dba", "invalid_transition"),
    # close: verified → closed
    ok("verified", "close", "it_staff", "closed"),
    ok("verified", "close", "it_dba", "closed"),
    no("verified", "close", "vendor_engineer", "forbidden"),
    no("executed", "close", "it_staff", "invalid_transition"),
    # roll_back: executed | verified → rolled_back
    ok("executed", "roll_back", "it_dba", "rolled_back"),
    ok("verified", "roll_back", "it_dba", "rolled_back"),
    no("executed", "roll_back", "it_dba", "invalid_input", comment=""),
    no("executed", "roll_back", "it_staff", "forbidden"),
    no(
        "executed",
        "roll_back",
        "it_dba",
        "guard_failed",
        fields={"rollback_run_sql": "DROP TABLE patient;"},
    ),
    no("approved", "roll_back", "it_dba", "invalid_transition"),
    # withdraw: draft | under_review | approved → withdrawn
    ok("draft", "withdraw", S, "withdrawn"),
    ok("under_review", "withdraw", "it_dba", "withdrawn"),
    ok("approved", "withdraw", "vendor_manager", "withdrawn"),
    no("draft", "withdraw", S, "invalid_input", comment=""),
    no("draft", "withdraw", "dept_user", "forbidden"),
    no("executed", "withdraw", "vendor_engineer", "invalid_transition"),
    # final states
    no("closed", "roll_back", "it_dba", "invalid_transition"),
    no("rejected", "submit_for_review", S, "invalid_transition"),
    no("withdrawn", "execute", "vendor_engineer", "invalid_transition"),
    no("rolled_back", "verify", "it_dba", "invalid_transition"),
]


# ---------------------------------------------------------------- incident (故障)

INCIDENT = [
    # acknowledge: reported → acknowledged
    ok("reported", "acknowledge", "vendor_engineer", "acknowledged"),
    ok("reported", "acknowledge", "vendor_manager", "acknowledged"),
    ok("reported", "acknowledge", "it_staff", "acknowledged"),
    no("reported", "acknowledge", "dept_user", "forbidden"),
    no("reported", "acknowledge", "other_vendor", "forbidden"),
    no("reported", "acknowledge", "it_signer", "forbidden"),
    no("reported", "acknowledge", "vendor_engineer", "invalid_input", fields={"eta": 5}),
    no("acknowledged", "acknowledge", "vendor_engineer", "invalid_transition"),
    # start_work: acknowledged → in_progress
    ok("acknowledged", "start_work", "vendor_manager", "in_progress"),
    ok("acknowledged", "start_work", "it_staff", "in_progress"),
    no("acknowledged", "start_work", "dept_user", "forbidden"),
    no("reported", "start_work", "vendor_engineer", "invalid_transition"),
    # arrive_on_site: stays put, stops the on-site clock
    ok("acknowledged", "arrive_on_site", "vendor_engineer", "acknowledged"),
    ok("in_progress", "arrive_on_site", "it_staff", "in_progress"),
    no("in_progress", "arrive_on_site", "dept_user", "forbidden"),
    no("reported", "arrive_on_site", "vendor_engineer", "invalid_transition"),
    # restore_service: temporary recovery (Q2), comment required
    ok("in_progress", "restore_service", "vendor_engineer", "in_progress"),
    no("in_progress", "restore_service", "vendor_engineer", "invalid_input", comment=""),
    no("acknowledged", "restore_service", "vendor_engineer", "invalid_transition"),
    # wait_for_hospital: in_progress → waiting_hospital (clock paused), comment required
    ok("in_progress", "wait_for_hospital", "vendor_engineer", "waiting_hospital"),
    no("in_progress", "wait_for_hospital", "vendor_engineer", "invalid_input", comment=""),
    no("in_progress", "wait_for_hospital", "dept_user", "forbidden"),
    no("acknowledged", "wait_for_hospital", "vendor_engineer", "invalid_transition"),
    # resume: waiting_hospital → in_progress, the department may resume too
    ok("waiting_hospital", "resume", "dept_user", "in_progress"),
    ok("waiting_hospital", "resume", "vendor_engineer", "in_progress"),
    no("waiting_hospital", "resume", "other_dept_user", "forbidden"),
    no("in_progress", "resume", "vendor_engineer", "invalid_transition"),
    # resolve: in_progress → resolved
    ok("in_progress", "resolve", "vendor_engineer", "resolved"),
    ok("in_progress", "resolve", "it_staff", "resolved", fields={"resolution": "Replaced cable."}),
    no("in_progress", "resolve", "vendor_engineer", "invalid_input", fields={"root_cause": "x"}),
    no("in_progress", "resolve", "dept_user", "forbidden"),
    no("waiting_hospital", "resolve", "vendor_engineer", "invalid_transition"),
    # confirm_fixed: resolved → closed, only the hospital (X2)
    ok("resolved", "confirm_fixed", "dept_user", "closed"),
    ok("resolved", "confirm_fixed", "it_staff", "closed", fields={"satisfaction": 0}),
    no("resolved", "confirm_fixed", "dept_user", "invalid_input", fields={}),  # X4 rating
    no("resolved", "confirm_fixed", "dept_user", "invalid_input", fields={"satisfaction": 101}),
    no("resolved", "confirm_fixed", "dept_user", "invalid_input", fields={"satisfaction": "high"}),
    no("resolved", "confirm_fixed", "vendor_engineer", "forbidden"),
    no("resolved", "confirm_fixed", "vendor_manager", "forbidden"),
    no("resolved", "confirm_fixed", "other_dept_user", "forbidden"),
    no("in_progress", "confirm_fixed", "dept_user", "invalid_transition"),
    # reopen: resolved → in_progress
    ok("resolved", "reopen", "dept_user", "in_progress"),
    ok("resolved", "reopen", "it_staff", "in_progress"),
    no("resolved", "reopen", "dept_user", "invalid_input", comment=""),
    no("resolved", "reopen", "vendor_manager", "forbidden"),
    # change_severity: stays in the same state
    ok("reported", "change_severity", "it_staff", "reported"),
    ok("acknowledged", "change_severity", "it_staff", "acknowledged"),
    ok("in_progress", "change_severity", "it_staff", "in_progress"),
    ok("waiting_hospital", "change_severity", "it_staff", "waiting_hospital"),
    no("reported", "change_severity", "it_staff", "invalid_input", fields={}),
    no("reported", "change_severity", "it_staff", "guard_failed", fields={"severity": "L9"}),
    no("reported", "change_severity", "it_staff", "invalid_input", comment=""),
    no("reported", "change_severity", "dept_user", "forbidden"),
    no("reported", "change_severity", "vendor_manager", "forbidden"),
    no("resolved", "change_severity", "it_staff", "invalid_transition"),
    # cancel: reported → cancelled
    ok("reported", "cancel", "dept_user", "cancelled"),
    ok("reported", "cancel", "it_staff", "cancelled"),
    no("reported", "cancel", "dept_user", "invalid_input", comment=""),
    no("reported", "cancel", "vendor_engineer", "forbidden"),
    no("reported", "cancel", "other_dept_user", "forbidden"),
    no("acknowledged", "cancel", "dept_user", "invalid_transition"),
    # final states
    no("closed", "reopen", "dept_user", "invalid_transition"),
    no("closed", "confirm_fixed", "dept_user", "invalid_transition"),
    no("cancelled", "acknowledge", "vendor_engineer", "invalid_transition"),
    no("reported", "resolve_all", "it_staff", "invalid_transition"),
]

TABLES = {
    "requirement": REQUIREMENT,
    "upgrade": UPGRADE,
    "schema_change": SCHEMA_CHANGE,
    "incident": INCIDENT,
}


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def check(flow, kind, state, event, actor, outcome, to, opts):
    """Reach ``state`` by real fires, then fire ``event`` as ``actor`` and check the outcome."""
    creator = opts.get("creator") or DEFAULT_CREATOR[kind]
    contract = {
        "quota": flow.quota_contract,
        "wait": flow.wait_contract,
    }.get(opts.get("contract"), lambda: None)()
    if "path" in opts or "create_fields" in opts:
        request = flow.create(kind, creator, contract=contract, fields=opts.get("create_fields"))
        flow.run(request, opts.get("path", PATHS[kind][state]), creator)
    else:
        request = flow.walk_to(kind, state, creator, contract=contract)
    assert request.state == state
    for who, doc in opts.get("attach", ()):
        flow.attach(request, creator if who == S else who, doc)
    actor = creator if actor == S else actor
    before = flow.snapshot(request)

    if outcome == "ok":
        entry = flow.fire(request, event, actor, opts.get("fields"), opts.get("comment"))
        flow.db.flush()
        assert request.state == to
        assert request.version == before["version"] + 1
        assert flow.history_count(request) == before["history"] + 1
        assert (entry.event, entry.from_state, entry.to_state) == (event, state, to)
        assert entry.actor_name == actor
        assert entry.seq == request.version
        after = flow.snapshot(request)
        assert (after["db_state"], after["db_version"]) == (to, request.version)
        return

    with pytest.raises(WorkflowError) as caught:
        flow.fire(request, event, actor, opts.get("fields"), opts.get("comment"))
    assert caught.value.code == outcome, caught.value.message
    assert flow.snapshot(request) == before


@pytest.mark.parametrize(("state", "event", "actor", "outcome", "to", "opts"), REQUIREMENT)
def test_requirement(flow, state, event, actor, outcome, to, opts):
    check(flow, "requirement", state, event, actor, outcome, to, opts)


@pytest.mark.parametrize(("state", "event", "actor", "outcome", "to", "opts"), UPGRADE)
def test_upgrade(flow, state, event, actor, outcome, to, opts):
    check(flow, "upgrade", state, event, actor, outcome, to, opts)


@pytest.mark.parametrize(("state", "event", "actor", "outcome", "to", "opts"), SCHEMA_CHANGE)
def test_schema_change(flow, state, event, actor, outcome, to, opts):
    check(flow, "schema_change", state, event, actor, outcome, to, opts)


@pytest.mark.parametrize(("state", "event", "actor", "outcome", "to", "opts"), INCIDENT)
def test_incident(flow, state, event, actor, outcome, to, opts):
    check(flow, "incident", state, event, actor, outcome, to, opts)


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_tables_cover_every_transition(catalog, kind):
    """Every event from every state it leaves, and every destination, has an ``ok`` row."""
    definition = catalog.get(kind)
    wanted = {
        (source, event.name, target)
        for event in definition.events.values()
        for source in event.sources
        for target in event.possible_targets(source)
    }
    covered = {(p.values[0], p.values[1], p.values[4]) for p in TABLES[kind] if p.values[3] == "ok"}
    assert wanted - covered == set()
    # ... and the table names no transition the definition does not have.
    assert covered - wanted == set()


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_paths_reach_every_state(catalog, kind):
    """The helper knows a path to every state, so every row's starting point is reachable."""
    assert set(PATHS[kind]) == set(catalog.get(kind).states)


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_refusals_cover_every_error_code(catalog, kind):
    """Each table exercises every refusal the engine has (guard_failed where guards exist)."""
    codes = {p.values[3] for p in TABLES[kind]}
    wanted = {"ok", "invalid_transition", "forbidden", "invalid_input"}
    if any(e.guards for e in catalog.get(kind).events.values()):
        wanted.add("guard_failed")
    assert wanted <= codes
    guarded = {e.name for e in catalog.get(kind).events.values() if e.guards}
    refused_by_guard = {p.values[1] for p in TABLES[kind] if p.values[3] == "guard_failed"}
    assert guarded <= refused_by_guard, "every guarded event has a guard_failed row"


def test_walk_uses_the_stored_definition(flow):
    """A walked request runs on the version the catalog stored for it."""
    request = flow.walk_to("upgrade", "signed")
    definition = definition_for(request)
    assert definition.content_hash == flow.catalog.get("upgrade").content_hash
    assert request.data["signature"]["user"] == "it_signer"
