"""Upgrade sign-off (DOMAIN §2: Z4, Z3, Z7): a signature bound to the exact version and
documents, deployment checked against it, the system registry kept and stale versions flagged."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from helpers import PATHS, Flow
from sqlalchemy import select

from models import HistoryEntry, Release, System
from workflow.canonical import content_hash
from workflow.errors import WorkflowError
from workflow.systems import add_months, stale_systems, system_status
from workflow.upgrade_rules import signature_body


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def signed(flow):
    """An upgrade to 1.1.0 with a test report and test cases, signed by the IT signer."""
    request = flow.create("upgrade")
    flow.attach(request, "vendor_engineer", "test_report", b"%PDF-1.4 report")
    flow.attach(request, "vendor_engineer", "test_cases", b"%PDF-1.4 cases")
    flow.fire(request, "submit_for_review", "vendor_engineer")
    flow.fire(request, "sign", "it_signer")
    return request


def refusal(flow, request, event, actor, fields=None, comment=None):
    before = (request.state, request.version)
    with pytest.raises(WorkflowError) as caught:
        flow.fire(request, event, actor, fields, comment)
    assert (request.state, request.version) == before
    return caught.value


# ---------------------------------------------------------------- the signature


def test_the_signature_binds_system_versions_and_every_document(flow):
    request = signed(flow)
    signature = request.data["signature"]
    assert signature["user"] == "it_signer"
    assert signature["system"] == {"id": flow.world.system.id, "code": "sys_a"}
    assert (signature["from_version"], signature["to_version"]) == ("1.0.0", "1.1.0")
    hashes = {a.kind: a.sha256 for a in request.attachments}
    assert [(d["kind"], d["sha256"]) for d in signature["documents"]] == [
        ("test_report", hashes["test_report"]),
        ("test_cases", hashes["test_cases"]),
    ]
    assert signature["digest"] == content_hash(signature_body(signature))


def test_a_document_added_after_signing_voids_the_signature(flow):
    request = signed(flow)
    flow.attach(request, "vendor_engineer", "rollback_plan")
    assert request.state == "under_review"
    assert "signature" not in request.data
    entry = flow.db.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.request_id == request.id)
        .order_by(HistoryEntry.seq.desc())
    ).first()
    assert (entry.event, entry.from_state, entry.to_state) == ("attach", "signed", "under_review")
    assert "Signature void" in entry.comment
    # Signing again binds the new set of documents.
    flow.fire(request, "sign", "it_signer")
    assert len(request.data["signature"]["documents"]) == 3


def test_a_document_added_while_scheduled_also_voids_it(flow):
    request = signed(flow)
    flow.fire(request, "schedule", "vendor_engineer")
    flow.attach(request, "it_staff", "other")
    assert (request.state, request.data.get("signature")) == ("under_review", None)


def test_deploying_another_version_is_refused_naming_both(flow):
    request = signed(flow)
    flow.fire(request, "schedule", "vendor_engineer")
    error = refusal(flow, request, "deploy", "vendor_engineer", {"deployed_version": "1.2.0"})
    assert error.code == "guard_failed"
    assert "1.2.0" in error.message and "1.1.0" in error.message
    (reason,) = error.details["reasons"]
    assert reason["values"] == {"deployed": "1.2.0", "signed": "1.1.0"}


def test_deploying_another_package_is_refused_when_both_hashes_are_known(flow):
    request = flow.create(
        "upgrade",
        fields={"from_version": "1.0.0", "to_version": "1.1.0", "package_sha256": "a" * 64},
    )
    flow.attach(request, "vendor_engineer", "test_report")
    flow.fire(request, "submit_for_review", "vendor_engineer")
    flow.fire(request, "sign", "it_signer")
    flow.fire(request, "schedule", "vendor_engineer")
    error = refusal(
        flow,
        request,
        "deploy",
        "vendor_engineer",
        {"deployed_version": "1.1.0", "deployed_package_sha256": "b" * 64},
    )
    assert error.details["reasons"][0]["values"]["signed_package"] == "a" * 64
    flow.fire(
        request,
        "deploy",
        "vendor_engineer",
        {"deployed_version": "1.1.0", "deployed_package_sha256": "A" * 64},
    )
    assert request.state == "deployed"


def test_a_tampered_signature_cannot_be_deployed(flow):
    request = signed(flow)
    flow.fire(request, "schedule", "vendor_engineer")
    data = dict(request.data)
    data["signature"] = {**data["signature"], "to_version": "9.9.9"}
    request.data = data
    error = refusal(flow, request, "deploy", "vendor_engineer", {"deployed_version": "9.9.9"})
    assert "digest" in error.message


def test_verifying_installs_the_version_and_rolling_back_restores_it(flow):
    system = flow.world.system
    request = signed(flow)
    flow.fire(request, "schedule", "vendor_engineer")
    flow.fire(request, "deploy", "vendor_engineer")
    assert system.current_version == "1.0.0"  # deployed, not yet verified
    flow.fire(request, "verify", "it_staff")
    assert system.current_version == "1.1.0"
    assert system.last_upgrade_at is not None
    flow.fire(request, "roll_back", "it_staff", comment="Printing broke after the upgrade.")
    assert (system.current_version, system.last_upgrade_at) == ("1.0.0", None)
    assert request.data["restored_version"] == "1.0.0"


def test_a_rollback_before_verification_leaves_the_registry_alone(flow):
    system = flow.world.system
    request = signed(flow)
    flow.fire(request, "schedule", "vendor_engineer")
    flow.fire(request, "deploy", "vendor_engineer")
    flow.fire(request, "roll_back", "vendor_engineer", comment="Failed to start.")
    assert system.current_version == "1.0.0"
    assert "restored_version" not in request.data


# ---------------------------------------------------------------- Z3: newest release


def test_a_target_that_is_not_the_newest_release_needs_an_override(flow):
    request = flow.create("upgrade", fields={"from_version": "1.0.0", "to_version": "1.0.5"})
    flow.attach(request, "vendor_engineer", "test_report")
    error = refusal(flow, request, "submit_for_review", "vendor_engineer")
    (reason,) = error.details["reasons"]
    assert reason["guard"] == "latest_release"
    assert reason["values"] == {"target": "1.0.5", "newest": "1.1.0", "system": "sys_a"}
    assert refusal(flow, request, "override_latest_release", "it_staff", comment="").code == (
        "invalid_input"
    )
    flow.fire(request, "override_latest_release", "it_staff", comment="1.1.0 breaks the lab link.")
    assert request.data["release_override"]["reason"] == "1.1.0 breaks the lab link."
    flow.fire(request, "submit_for_review", "vendor_engineer")
    assert request.state == "under_review"


def test_a_newer_release_registered_before_signing_blocks_the_signature(flow, db):
    request = flow.create("upgrade")
    flow.attach(request, "vendor_engineer", "test_report")
    flow.fire(request, "submit_for_review", "vendor_engineer")
    flow.world.system.releases.append(Release(version="1.2.0", released_on=date(2026, 7, 1)))
    db.flush()
    assert refusal(flow, request, "sign", "it_signer").details["reasons"][0]["values"][
        "newest"
    ] == ("1.2.0")


def test_without_the_rule_in_the_policy_any_version_goes(flow, db):
    contract = db.get(type(flow.world.contract), flow.world.contract.id)
    policy = dict(contract.policy)
    policy["upgrade"] = {**policy["upgrade"], "require_latest_release": False}
    contract.policy = policy
    db.flush()
    request = flow.create("upgrade", fields={"from_version": "1.0.0", "to_version": "0.9.0"})
    flow.attach(request, "vendor_engineer", "test_report")
    flow.fire(request, "submit_for_review", "vendor_engineer")
    assert request.state == "under_review"


# ---------------------------------------------------------------- Z3: stale versions


@pytest.mark.parametrize(
    ("last", "today", "stale"),
    [
        (date(2026, 3, 1), date(2026, 6, 1), False),  # exactly three months: still due today
        (date(2026, 3, 1), date(2026, 6, 2), True),
        (date(2025, 11, 30), date(2026, 2, 28), False),  # due on 28 February
        (date(2025, 11, 30), date(2026, 3, 1), True),
    ],
)
def test_a_version_older_than_three_months_is_stale(flow, db, last, today, stale):
    system = flow.world.system
    system.releases.append(Release(version="1.0.0", released_on=last))
    db.flush()
    status = system_status(system, today)
    assert status.last_update == last
    assert status.stale is stale
    assert status.behind  # 1.1.0 is registered and not installed


def test_a_verified_upgrade_restarts_the_clock_and_unknown_age_is_stale(flow, db):
    system = flow.world.system
    assert system_status(system, date(2026, 11, 25)).stale  # 1.0.0 has no known date
    system.last_upgrade_at = datetime(2026, 10, 31, 17, 0)  # 1 November in Beijing
    assert system_status(system, date(2026, 11, 25)).last_update == date(2026, 11, 1)
    assert not system_status(system, date(2027, 2, 1)).stale
    assert system_status(system, date(2027, 2, 2)).stale
    assert [s.system.code for s in stale_systems([system], date(2027, 2, 2))] == ["sys_a"]


def test_contracts_without_an_age_limit_never_flag(flow, db):
    other = db.scalar(select(System).where(System.code == "sys_a"))
    contract = other.contract
    policy = dict(contract.policy)
    policy["upgrade"] = {**policy["upgrade"], "max_version_age_months": None}
    contract.policy = policy
    db.flush()
    assert not system_status(other, date(2030, 1, 1)).stale


def test_add_months_clamps_to_the_month_end():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 10, 15), 3) == date(2027, 1, 15)


def test_the_sweep_lists_stale_systems(runner, db, world):
    result = runner.invoke(args=["sla", "sweep"])
    assert result.exit_code == 0, result.output
    assert "stale sys_a running 1.0.0 last update unknown" in result.output
    assert "1 stale of 1 systems" in result.output


def test_paths_still_reach_every_upgrade_state(flow):
    for state in PATHS["upgrade"]:
        assert flow.walk_to("upgrade", state).state == state
