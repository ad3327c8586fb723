"""The free quota ledger (DOMAIN §1: Z1, Q1, Q3): clause examples, periods, never overspent."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from helpers import PATHS, Flow, estimate_input
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from test_concurrency import outcome, race, sessions

from models import Contract, QuotaEntry, QuotaPeriod, Request, User
from workflow import quota
from workflow.engine import fire
from workflow.errors import WorkflowError
from workflow.localtime import hospital_today


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def confirmed(flow, days: str, *, contract=None, req_type="new_feature", it_first=True):
    """A requirement estimated at ``days`` and confirmed by both sides (in either order)."""
    request = flow.create(
        "requirement",
        contract=contract,
        fields={"req_type": req_type, "module": "Follow-up"},
    )
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    flow.fire(request, "estimate", "vendor_engineer", estimate_input(days))
    order = [("it_confirm", "it_signer"), ("vendor_confirm", "vendor_manager")]
    for event, actor in order if it_first else order[::-1]:
        flow.fire(request, event, actor)
    flow.db.flush()
    return request


def remaining(flow, contract=None) -> Decimal | None:
    contract = contract or flow.world.contract
    return quota.quota_overview(flow.db, contract, hospital_today()).remaining


def ledger_sum(db, kind: str, request_id=None) -> Decimal:
    conditions = [QuotaEntry.kind == kind]
    if request_id is not None:
        conditions.append(QuotaEntry.request_id == request_id)
    total = db.scalar(select(func.coalesce(func.sum(QuotaEntry.days), 0)).where(*conditions))
    return Decimal(str(total))


# ---------------------------------------------------------------- clause examples


def test_z1_three_three_day_requests_leave_4_then_1_then_split(flow):
    """Z1: 7 person-days a year; the third 3-day request is 1 free + 2 needing an agreement."""
    assert remaining(flow) == Decimal(7)
    first = confirmed(flow, "3")
    assert (first.state, remaining(flow)) == ("confirmed", Decimal(4))
    second = confirmed(flow, "3", it_first=False)
    assert (second.state, remaining(flow)) == ("confirmed", Decimal(1))
    third = confirmed(flow, "3")
    assert third.state == "awaiting_agreement"
    assert third.data["quota"]["free_days"] == "1" and third.data["quota"]["paid_days"] == "2"
    assert remaining(flow) == Decimal(0)
    assert ledger_sum(flow.db, "reserve") == Decimal(7)


@pytest.mark.parametrize(
    ("days", "state", "reserved"),
    [("10", "confirmed", "10"), ("10.5", "awaiting_agreement", "0"), ("0.5", "confirmed", "0.5")],
)
def test_q1_up_to_ten_days_is_free_above_the_whole_request_needs_an_agreement(
    flow, days, state, reserved
):
    contract = flow.quota_contract("10")  # Q1 shape: no pool, cap 10, overflow whole
    request = confirmed(flow, days, contract=contract)
    assert request.state == state
    assert ledger_sum(flow.db, "reserve", request.id) == Decimal(reserved)
    assert request.data["quota"]["paid_days"] == ("0" if state == "confirmed" else days)


def test_bugs_never_count_against_the_pool(flow):
    request = confirmed(flow, "5", req_type="bug")
    assert request.state == "confirmed" and request.data["quota"]["counted"] is False
    assert remaining(flow) == Decimal(7) and ledger_sum(flow.db, "reserve") == 0


def test_confirmations_bind_the_exact_scope_and_estimate(flow):
    request = confirmed(flow, "2")
    it_hash = request.data["it_confirmation"]["scope_sha256"]
    assert it_hash == request.data["vendor_confirmation"]["scope_sha256"]
    from workflow.canonical import content_hash
    from workflow.quota_rules import confirmed_scope

    names = ["req_type", "module", "estimate_days", "analysis", "modification_plan"]
    assert it_hash == content_hash(confirmed_scope(request, [*names, "promised_date"]))


def test_cancelling_releases_and_closing_consumes(flow):
    cancelled = confirmed(flow, "3")
    kept = confirmed(flow, "2")
    assert remaining(flow) == Decimal(2)
    flow.fire(cancelled, "cancel", "it_staff", comment="No longer needed.")
    assert remaining(flow) == Decimal(5)
    assert ledger_sum(flow.db, "release", cancelled.id) == Decimal(3)
    flow.run(
        kept,
        [
            *PATHS["requirement"]["accepted"][len(PATHS["requirement"]["confirmed"]) :],
        ],
        "dept_user",
    )
    flow.fire(kept, "close", "it_staff")
    view = quota.quota_overview(flow.db, flow.world.contract, hospital_today())
    assert (view.reserved, view.consumed, view.remaining) == (0, Decimal(2), Decimal(5))
    # Cancelling twice gives nothing back twice: a closed request cannot be cancelled at all.
    with pytest.raises(WorkflowError) as caught:
        flow.fire(kept, "cancel", "it_staff", comment="Too late.")
    assert caught.value.code == "invalid_transition"
    assert remaining(flow) == Decimal(5)


@pytest.mark.parametrize(
    ("now", "period_start"),
    [
        # Contract from 1 March: 28 Feb is the last day of the first contract year...
        (datetime(2027, 2, 28, 15, 59, tzinfo=UTC), date(2026, 3, 1)),
        # ...and 16:00 UTC on 28 Feb is already 1 March in Beijing: the second year.
        (datetime(2027, 2, 28, 16, 0, tzinfo=UTC), date(2027, 3, 1)),
    ],
)
def test_a_request_is_charged_to_the_contract_year_of_its_confirmation(flow, db, now, period_start):
    contract = db.get(Contract, flow.world.contract.id)
    contract.start_date, contract.end_date = date(2026, 3, 1), date(2028, 2, 29)
    db.flush()
    request = flow.create("requirement")
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    flow.fire(request, "estimate", "vendor_engineer", estimate_input("2"))
    flow.fire(request, "it_confirm", "it_signer")
    fire(db, request, "vendor_confirm", flow.user("vendor_manager"), {}, request.version, now=now)
    period = db.scalar(select(QuotaPeriod).where(QuotaPeriod.contract_id == contract.id))
    assert period.start_date == period_start
    assert request.data["quota"]["period_start"] == period_start.isoformat()
    # Closing a year later still consumes in the period it was confirmed in.
    flow.fire(request, "start_development", "vendor_engineer")
    flow.fire(request, "cancel", "it_staff", comment="Withdrawn.")
    entry = db.scalar(select(QuotaEntry).where(QuotaEntry.kind == "release"))
    assert entry.period_id == period.id and entry.days == Decimal(2)


# ---------------------------------------------------------------- bad input changes nothing


@pytest.mark.parametrize("days", ["0", "-1", "0.3", "10000", "abc", ""])
def test_bad_estimates_are_refused_and_nothing_is_recorded(flow, days):
    request = flow.create("requirement")
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    before = flow.snapshot(request)
    with pytest.raises(WorkflowError) as caught:
        flow.fire(request, "estimate", "vendor_engineer", estimate_input(days))
    assert caught.value.code == "invalid_input" and "estimate_days" in str(caught.value.details)
    assert flow.snapshot(request) == before


def test_estimating_a_cancelled_request_and_confirming_twice_are_refused(flow):
    request = confirmed(flow, "1")
    for event, actor in (("it_confirm", "it_signer"), ("vendor_confirm", "vendor_manager")):
        with pytest.raises(WorkflowError) as caught:
            flow.fire(request, event, actor)
        assert caught.value.code == "invalid_transition"
    flow.fire(request, "cancel", "it_staff", comment="Stop.")
    with pytest.raises(WorkflowError) as caught:
        flow.fire(request, "estimate", "vendor_engineer", estimate_input("1"))
    assert caught.value.code == "invalid_transition"
    assert ledger_sum(flow.db, "reserve") == 1 and ledger_sum(flow.db, "release") == 1


@pytest.mark.parametrize(
    ("days", "reason", "message"),
    [
        ("0", "typo", "non-zero"),
        ("0.3", "typo", "steps of 0.5"),
        ("1", "  ", "Say why"),
        ("8", "more than the pool", "can never be overspent"),
    ],
)
def test_adjustments_are_checked(flow, days, reason, message):
    actor = flow.user("it_signer")
    with pytest.raises(WorkflowError) as caught:
        quota.adjust(
            flow.db,
            flow.world.contract,
            hospital_today(),
            Decimal(days),
            actor,
            datetime.now(),
            reason,
        )
    assert message in caught.value.message
    assert flow.db.scalar(select(func.count()).select_from(QuotaEntry)) == 0


# ---------------------------------------------------------------- twenty at once


def test_twenty_one_day_requests_confirmed_at_once_spend_exactly_the_pool(app, db, flow):
    """Real threads, one session each: 7 free, 13 waiting for an agreement, remaining 0."""
    ids = []
    for _ in range(20):
        request = flow.create("requirement")
        flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
        flow.fire(request, "estimate", "vendor_engineer", estimate_input("1"))
        flow.fire(request, "it_confirm", "it_signer")
        ids.append((request.id, request.version))
    manager_id = flow.user("vendor_manager").id
    db.commit()
    db.close()

    def confirm(i, barrier):
        request_id, version = ids[i]
        # Meet before the transaction starts: SQLite's BEGIN IMMEDIATE would otherwise hold the
        # others away from the barrier. On PostgreSQL all twenty then race for the period's row.
        barrier.wait()
        with sessions(app)() as session:
            request = session.get(Request, request_id)
            actor = session.get(User, manager_id)
            try:
                fire(session, request, "vendor_confirm", actor, {}, version)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return request.state

    results = [outcome(r) for r in race(20, confirm)]
    assert sorted(results) == ["awaiting_agreement"] * 13 + ["confirmed"] * 7, results
    with sessions(app)() as session:
        view = quota.quota_overview(
            session, session.get(Contract, flow.world.contract.id), hospital_today()
        )
        assert (view.reserved, view.remaining) == (Decimal(7), Decimal(0))
        assert ledger_sum(session, "reserve") == Decimal(7)
        assert session.scalar(select(func.count()).select_from(QuotaPeriod)) == 1


# ---------------------------------------------------------------- any sequence


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("confirm"), st.sampled_from(["0.5", "1", "2", "3.5", "7", "9"])),
        st.tuples(st.just("cancel"), st.integers(0, 9)),
        st.tuples(st.just("close"), st.integers(0, 9)),
        st.tuples(st.just("adjust"), st.sampled_from(["-1", "-0.5", "0.5", "1", "2"])),
        # both sides confirmed a different actual effort at delivery: decided again
        st.tuples(
            st.just("actual"),
            st.tuples(st.integers(0, 9), st.sampled_from(["0.5", "1", "2.5", "4", "8"])),
        ),
    ),
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_any_sequence_keeps_remaining_exact_and_never_negative(app, db, world, operations):
    """Confirm / cancel / close / adjust / re-decide in any order: remaining = pool − Σ entries,
    never < 0."""
    db.execute(delete(QuotaEntry))
    db.execute(delete(QuotaPeriod))
    contract = db.get(Contract, world.contract.id)
    actor = world.users["it_signer"]
    now = datetime(2026, 6, 1, 4, 0)
    holders: list[Request] = []
    for operation, value in operations:
        if operation == "confirm":
            request = Request(
                kind="requirement",
                definition_version_id=_any_definition_version(db),
                title="property",
                state="confirmed",
                contract_id=contract.id,
                submitter_id=world.users["dept_user"].id,
                data={"req_type": "interface", "estimate_days": value},
            )
            db.add(request)
            db.flush()
            request.contract = contract
            decision = quota.decide(db, request, now)
            quota.reserve(db, request, decision, actor, now)
            assert decision.free + decision.paid == Decimal(value)
            request.data = {**request.data, "quota": decision.as_data()}
            holders.append(request)
        elif operation == "actual" and holders:
            request = holders[value[0] % len(holders)]
            decision = quota.redecide(db, request, Decimal(value[1]), actor, now, "property")
            assert decision.free + decision.paid == Decimal(value[1])
        elif operation in ("cancel", "close") and holders:
            request = holders[value % len(holders)]
            if operation == "cancel":
                quota.release(db, request, actor, now, "property")
            else:
                quota.consume(db, request, actor, now)
        elif operation == "adjust":
            # Refused when it would overspend; the invariant below checks what was kept.
            with contextlib.suppress(WorkflowError):
                quota.adjust(db, contract, now.date(), Decimal(value), actor, now, "property")
        view = quota.quota_overview(db, contract, now.date())
        raw = {k: ledger_sum(db, k) for k in ("reserve", "release", "consume", "adjust")}
        expected = Decimal(7) - raw["reserve"] + raw["release"] - raw["adjust"]
        assert view.remaining == expected
        assert view.remaining >= 0
        assert view.reserved >= 0
    db.rollback()


def _any_definition_version(db) -> int:
    from models import DefinitionVersion

    existing = db.scalar(select(DefinitionVersion.id).limit(1))
    if existing is not None:
        return existing
    version = DefinitionVersion(
        key="requirement", content_hash="0" * 64, content={}, source="", source_file=""
    )
    db.add(version)
    db.flush()
    return version.id


def test_policy_documents_drive_the_split_and_whole_rules(flow):
    """The same 5 days under a 4-day remaining pool: split frees 4, whole frees nothing."""
    results = {}
    for overflow in ("split", "whole"):
        contract = flow.world.contract.__class__(
            code=f"C-{overflow}",
            name=overflow,
            vendor_id=flow.world.contract.vendor_id,
            start_date=flow.world.contract.start_date,
            end_date=flow.world.contract.end_date,
            policy_key="test",
            policy_hash="0" * 64,
            policy=copy.deepcopy(flow.world.contract.policy),
        )
        contract.policy["quota"].update(pool="4", overflow=overflow, per_request_free_max=None)
        flow.db.add(contract)
        flow.db.flush()
        request = confirmed(flow, "5", contract=contract)
        results[overflow] = (request.data["quota"]["free_days"], request.state)
    assert results == {
        "split": ("4", "awaiting_agreement"),
        "whole": ("0", "awaiting_agreement"),
    }


# ---------------------------------------------------------------- API and pages

CONFIRMATION_FIELDS = ("it_confirmation", "vendor_confirmation")


def test_quota_api_gives_the_period_figures_and_every_entry(client, db, flow, world):
    request = confirmed(flow, "3")
    period_start = quota.quota_overview(db, world.contract, hospital_today()).period_start
    db.commit()
    db.close()  # the test's own session must hold no SQLite lock while the app serves
    url = f"/api/v1/contracts/{world.contract.id}/quota"
    body = client.get(url, headers=world.auth("vendor_engineer")).get_json()
    assert (body["pool"], body["reserved"], body["consumed"], body["remaining"]) == (
        "7",
        "3",
        "0",
        "4",
    )
    assert [(e["kind"], e["days"], e["request_id"]) for e in body["entries"]] == [
        ("reserve", "3", request.id)
    ]
    assert body["period_start"] == period_start.isoformat()
    missing = client.get(url, headers=world.auth("other_vendor"))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.get(url).status_code == 401


def test_quota_page_statement_and_confirmation_sheet(client, db, flow, world):
    from io import BytesIO

    from openpyxl import load_workbook
    from test_signin import sign_in

    request = confirmed(flow, "3")
    request_id = request.id
    hashes = [request.data[side]["scope_sha256"] for side in CONFIRMATION_FIELDS]
    db.commit()
    db.close()  # the test's own session must hold no SQLite lock while the app serves
    sign_in(client, "vendor_manager")
    page = client.get(f"/contracts/{world.contract.id}/quota").get_data(as_text=True)
    assert '<strong id="remaining">4</strong>' in page
    assert f'<tr data-request="{request_id}">' in page and "<polyline" in page
    statement = client.get(f"/contracts/{world.contract.id}/quota.xlsx")
    sheet = load_workbook(BytesIO(statement.data)).active
    values = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
    assert ["预留", 3, request_id] == [values[-1][1], values[-1][2], values[-1][3]]
    assert any(row[:2] == ("剩余", "4") for row in map(tuple, values))
    sheet_page = client.get(f"/requests/{request_id}/confirmation").get_data(as_text=True)
    assert all(digest in sheet_page for digest in hashes)
    assert "需求确认单" in sheet_page

    sign_in(client, "other_vendor")
    assert client.get(f"/contracts/{world.contract.id}/quota").status_code == 404
    assert client.get(f"/contracts/{world.contract.id}/quota.xlsx").status_code == 404
    assert client.get(f"/requests/{request_id}/confirmation").status_code == 404
    sign_in(client, "sys_admin")
    assert client.get(f"/contracts/{world.contract.id}/quota").status_code == 403


# ---------------------------------------------------------------- signed corrections


def test_the_it_signer_corrects_the_quota_on_the_page_and_nobody_else_can(client, db, world):
    from test_signin import csrf_token, sign_in

    contract_id = world.contract.id
    db.close()
    url = f"/contracts/{contract_id}/quota/adjustments"
    form = {"days": "2", "day": "2026-06-01", "reason": "Two days spent before go-live."}

    sign_in(client, "vendor_manager")
    page = client.get(f"/contracts/{contract_id}/quota").get_data(as_text=True)
    assert 'id="adjust-form"' not in page
    form["csrf_token"] = csrf_token(client, "/")
    assert client.post(url, data=form).status_code == 403
    sign_in(client, "other_vendor")
    form["csrf_token"] = csrf_token(client, "/")
    assert client.post(url, data=form).status_code == 404

    sign_in(client, "it_signer")
    form["csrf_token"] = csrf_token(client, "/")
    assert 'id="adjust-form"' in client.get(f"/contracts/{contract_id}/quota").get_data(
        as_text=True
    )
    for bad in (
        {**form, "days": "abc"},
        {**form, "days": "0.3"},
        {**form, "reason": " "},
        {**form, "day": "2030-01-01"},
        {**form, "days": "Infinity"},
    ):
        answer = client.post(url, data=bad, follow_redirects=True)
        assert answer.status_code == 200 and 'class="flash error"' in answer.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(QuotaEntry)) == 0
    db.close()

    answer = client.post(url, data=form, follow_redirects=True)
    assert "更正已登记" in answer.get_data(as_text=True)
    (entry,) = db.scalars(select(QuotaEntry)).all()
    assert (entry.kind, entry.days, entry.actor_name) == ("adjust", 2, "it_signer")
    assert entry.reason == "Two days spent before go-live."
    db.close()


def test_quota_commands_show_and_adjust(runner, db, world):
    ok = runner.invoke(
        args=[
            "quota",
            "adjust",
            "C-A",
            "--days",
            "1.5",
            "--reason",
            "paper ledger",
            "--actor",
            "it_signer",
            "--day",
            "2026-06-01",
        ]
    )
    assert ok.exit_code == 0, ok.output
    assert "adjusted 1.5 person-days on 2026-06-01" in ok.output
    refused = runner.invoke(
        args=[
            "quota",
            "adjust",
            "C-A",
            "--days",
            "1",
            "--reason",
            "x",
            "--actor",
            "vendor_manager",
            "--day",
            "2026-06-01",
        ]
    )
    assert refused.exit_code == 1
    assert "IT signer" in refused.output
    overspent = runner.invoke(
        args=[
            "quota",
            "adjust",
            "C-A",
            "--days",
            "6",
            "--reason",
            "x",
            "--actor",
            "it_signer",
            "--day",
            "2026-06-01",
        ]
    )
    assert overspent.exit_code == 1 and "overspent" in overspent.output
    unknown = runner.invoke(args=["quota", "show", "NOPE"])
    assert unknown.exit_code == 1 and "No contract" in unknown.output
    shown = runner.invoke(args=["quota", "show", "C-A"])
    assert "pool 7" in shown.output and "consumed 1.5" in shown.output
    assert "remaining 5.5" in shown.output
    assert db.scalar(select(func.count()).select_from(QuotaEntry)) == 1
