"""Delivery of a requirement: actual effort confirmed again (Z1), the quota decided again for it,
acceptance not before the policy's working-day wait (D7) and links to upgrades and schema changes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from helpers import PATHS, Flow, estimate_input
from sqlalchemy import func, select

from models import QuotaEntry
from workflow import quota
from workflow.business_calendar import (
    LAST_OFFICIAL_YEAR,
    STATUTORY,
    WorkingCalendar,
    is_provisional,
)
from workflow.errors import WorkflowError
from workflow.localtime import hospital_today


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def developing(flow, days: str, contract=None):
    """A new-feature requirement estimated at ``days``, confirmed by both, in development."""
    request = flow.create("requirement", contract=contract)
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    flow.fire(request, "estimate", "vendor_engineer", estimate_input(days))
    flow.fire(request, "it_confirm", "it_signer")
    flow.fire(request, "vendor_confirm", "vendor_manager")
    flow.fire(request, "start_development", "vendor_engineer")
    return request


def deliver(flow, request, actual: str | None = None, **extra):
    fields = {"delivery_note": "Build 43.", **extra}
    if actual is not None:
        fields["actual_days"] = actual
    return flow.fire(request, "deliver", "vendor_engineer", fields)


def confirm_actual(flow, request):
    flow.fire(request, "confirm_actual_it", "it_signer")
    flow.fire(request, "confirm_actual_vendor", "vendor_manager")


def accept(flow, request):
    flow.fire(request, "dept_accept", "dept_user")
    flow.fire(request, "it_accept", "it_staff")


def remaining(flow, contract=None) -> Decimal | None:
    view = quota.quota_overview(flow.db, contract or flow.world.contract, hospital_today())
    return view.remaining


def own_entries(db, request) -> list[tuple[str, Decimal]]:
    rows = db.execute(
        select(QuotaEntry.kind, QuotaEntry.days)
        .where(QuotaEntry.request_id == request.id)
        .order_by(QuotaEntry.id)
    ).all()
    return [(kind, Decimal(str(days))) for kind, days in rows]


# ---------------------------------------------------------------- actual effort (Z1)


def test_more_actual_effort_confirmed_by_both_is_reserved_and_consumed(flow):
    request = developing(flow, "3")
    assert remaining(flow) == Decimal(4)
    deliver(flow, request, "5")
    # Not yet confirmed by both: the reservation still follows the estimate.
    flow.fire(request, "confirm_actual_it", "it_signer")
    assert remaining(flow) == Decimal(4)
    flow.fire(request, "confirm_actual_vendor", "vendor_manager")
    assert remaining(flow) == Decimal(2)
    assert request.data["quota"]["amount_days"] == "5"
    assert (
        request.data["actual_vendor_confirmation"]["scope_sha256"]
        != (request.data["vendor_confirmation"]["scope_sha256"])
    )
    accept(flow, request)
    flow.fire(request, "close", "it_staff")
    assert own_entries(flow.db, request) == [
        ("reserve", Decimal(3)),
        ("reserve", Decimal(2)),
        ("consume", Decimal(5)),
    ]
    assert remaining(flow) == Decimal(2)


def test_less_actual_effort_gives_the_difference_back(flow):
    request = developing(flow, "3")
    deliver(flow, request, "1")
    confirm_actual(flow, request)
    assert remaining(flow) == Decimal(6)
    accept(flow, request)
    flow.fire(request, "close", "it_staff")
    assert own_entries(flow.db, request)[-2:] == [("release", Decimal(2)), ("consume", Decimal(1))]
    assert remaining(flow) == Decimal(6)


def test_actual_effort_beyond_the_pool_needs_an_agreement_before_closing(flow):
    request = developing(flow, "6")  # 6 of the 7 free days
    deliver(flow, request, "9")
    confirm_actual(flow, request)
    assert request.data["quota"]["free_days"] == "7"
    assert request.data["quota"]["paid_days"] == "2"
    assert remaining(flow) == Decimal(0)
    accept(flow, request)
    with pytest.raises(WorkflowError) as refused:
        flow.fire(request, "close", "it_staff")
    assert refused.value.code == "guard_failed"
    (reason,) = refused.value.details["reasons"]
    assert reason["guard"] == "quota_settled"
    assert reason["values"] == {"paid": "2", "agreed": "0"}
    assert request.state == "accepted"

    flow.attach(request, "it_signer", "supplementary_agreement")
    flow.fire(request, "record_agreement", "it_signer", {"paid_days": "2", "fee_fen": 160000})
    assert request.state == "accepted"
    flow.fire(request, "close", "it_staff")
    assert request.state == "closed"
    assert own_entries(flow.db, request)[-1] == ("consume", Decimal(7))


def test_closing_refuses_an_actual_effort_only_one_side_confirmed(flow):
    request = developing(flow, "2")
    deliver(flow, request, "3")
    flow.fire(request, "confirm_actual_vendor", "vendor_manager")
    accept(flow, request)
    with pytest.raises(WorkflowError) as refused:
        flow.fire(request, "close", "it_staff")
    (reason,) = refused.value.details["reasons"]
    assert reason["values"]["missing"] == ["actual_it_confirmation"]
    assert "both sides must confirm" in refused.value.message
    flow.fire(request, "confirm_actual_it", "it_signer")
    flow.fire(request, "close", "it_staff")
    assert own_entries(flow.db, request)[-1] == ("consume", Decimal(3))


def test_a_redelivery_withdraws_the_actual_confirmations_and_their_decision(flow):
    request = developing(flow, "3")
    deliver(flow, request, "5")
    confirm_actual(flow, request)
    assert remaining(flow) == Decimal(2)
    flow.fire(request, "dept_reject", "dept_user", comment="The print form is wrong.")
    deliver(flow, request)  # no actual effort given: the estimate stands
    assert "actual_it_confirmation" not in request.data
    assert "actual_vendor_confirmation" not in request.data
    assert request.data["quota"]["amount_days"] == "3"
    assert remaining(flow) == Decimal(4)
    assert own_entries(flow.db, request) == [
        ("reserve", Decimal(3)),
        ("reserve", Decimal(2)),
        ("release", Decimal(2)),
    ]


def test_bugs_confirm_actual_effort_without_touching_the_quota(flow):
    request = flow.create("requirement", fields={"req_type": "bug", "module": "Follow-up"})
    flow.run(request, PATHS["requirement"]["in_development"], "dept_user")
    deliver(flow, request, "4")
    confirm_actual(flow, request)
    accept(flow, request)
    flow.fire(request, "close", "it_staff")
    assert own_entries(flow.db, request) == []
    assert remaining(flow) == Decimal(7)


def test_ledger_stays_derivable_after_redecisions(flow):
    for estimate, actual in (("2", "3"), ("1", "0.5"), ("3", "4")):
        request = developing(flow, estimate)
        deliver(flow, request, actual)
        confirm_actual(flow, request)
    view = quota.quota_overview(flow.db, flow.world.contract, hospital_today())
    total = flow.db.scalar(
        select(func.sum(QuotaEntry.days)).where(QuotaEntry.kind == "reserve")
    ) - (flow.db.scalar(select(func.sum(QuotaEntry.days)).where(QuotaEntry.kind == "release")))
    assert view.reserved == Decimal(str(total)) == Decimal("7")
    assert view.remaining == 0


# ---------------------------------------------------------------- D7 acceptance wait


def test_acceptance_opens_ten_working_days_after_delivery_across_national_day(flow):
    contract = flow.wait_contract(10)
    request = developing(flow, "1", contract=contract)
    # Monday 28 September 2026: 29, 30 Sep, then 1–7 Oct off, 8, 9, Saturday 10 Oct (调休),
    # 12–16 Oct: the tenth working day is Friday 16 October.
    delivered = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    flow.fire(request, "deliver", "vendor_engineer", {"delivery_note": "Build 43."}, now=delivered)
    day_before = datetime(2026, 10, 15, 15, 59, tzinfo=UTC)  # 23:59 on 15 Oct in Beijing
    with pytest.raises(WorkflowError) as refused:
        flow.fire(request, "dept_accept", "dept_user", now=day_before)
    (reason,) = refused.value.details["reasons"]
    assert reason["guard"] == "working_days_after"
    assert reason["values"] == {"opens": "2026-10-16", "since": "2026-09-28", "working_days": 10}
    assert request.state == "delivered"
    flow.fire(request, "dept_accept", "dept_user", now=datetime(2026, 10, 15, 16, 0, tzinfo=UTC))
    assert request.state == "dept_accepted"


def test_without_a_wait_in_the_policy_acceptance_is_immediate(flow):
    request = developing(flow, "1")
    assert (flow.world.contract.policy["quota"].get("acceptance_wait_working_days")) is None
    deliver(flow, request)
    flow.fire(request, "dept_accept", "dept_user")
    assert request.state == "dept_accepted"


def test_the_wait_is_shown_on_the_request_page(client, db, flow):
    from test_signin import sign_in

    contract = flow.wait_contract(10)
    request = developing(flow, "1", contract=contract)
    deliver(flow, request)
    request_id = request.id
    db.commit()
    db.close()
    sign_in(client, "dept_user")
    page = client.get(f"/requests/{request_id}").get_data(as_text=True)
    opens = STATUTORY.add_working_days(hospital_today(), 10).isoformat()
    assert f"验收自 {opens} 起可进行" in page


# ---------------------------------------------------------------- links to other requests


def test_a_delivery_links_the_upgrades_and_schema_changes_it_needs(flow):
    upgrade = flow.create("upgrade")
    change = flow.create("schema_change")
    request = developing(flow, "1")
    deliver(flow, request, linked_requests=[upgrade.id, change.id])
    assert request.data["linked_requests"] == [upgrade.id, change.id]


@pytest.mark.parametrize("which", ["requirement", "other_contract", "itself", "missing", "twice"])
def test_bad_links_are_refused_and_change_nothing(flow, which):
    request = developing(flow, "1")
    if which == "requirement":
        linked = [flow.create("requirement").id]
    elif which == "other_contract":
        linked = [flow.create("upgrade", contract=flow.wait_contract(3)).id]
    elif which == "itself":
        linked = [request.id]
    elif which == "missing":
        linked = [2_000_000]
    else:
        upgrade = flow.create("upgrade")
        linked = [upgrade.id, upgrade.id]
    version = request.version
    with pytest.raises(WorkflowError) as refused:
        deliver(flow, request, linked_requests=linked)
    assert refused.value.code == "invalid_input"
    assert "linked_requests" in refused.value.details["fields"]
    assert (request.state, request.version) == ("in_development", version)


def test_links_typed_in_the_browser_form_are_parsed():
    from web.forms import parse_form

    specs = {"linked_requests": {"type": "references"}}
    assert parse_form(specs, {"linked_requests": "#12, 15，16"}) == {
        "linked_requests": [12, 15, 16]
    }
    assert parse_form(specs, {"linked_requests": "12 x"}) == {"linked_requests": [12, "x"]}


# ---------------------------------------------------------------- the working-day calendar


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 10, 1), False),  # National Day
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 9, 20), True),  # Sunday, worked (调休)
        (date(2026, 10, 10), True),  # Saturday, worked (调休)
        (date(2026, 10, 11), False),  # an ordinary Sunday
        (date(2026, 9, 25), False),  # Mid-Autumn Festival
        (date(2026, 2, 14), True),  # Saturday before the Spring Festival, worked
        (date(2026, 2, 17), False),  # Spring Festival
        (date(2026, 11, 24), True),  # an ordinary Tuesday
    ],
)
def test_the_2026_statutory_calendar(day, working):
    assert STATUTORY.is_working_day(day) is working


def test_overrides_win_over_the_library():
    calendar = WorkingCalendar({date(2026, 10, 8): False, date(2026, 10, 11): True})
    assert calendar.is_working_day(date(2026, 10, 8)) is False
    assert calendar.is_working_day(date(2026, 10, 11)) is True
    assert calendar.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 9)


def test_working_day_arithmetic():
    assert STATUTORY.add_working_days(date(2026, 9, 28), 10) == date(2026, 10, 16)
    assert STATUTORY.add_working_days(date(2026, 9, 28), 0) == date(2026, 9, 28)
    assert STATUTORY.working_days_between(date(2026, 9, 28), date(2026, 10, 16)) == 10
    with pytest.raises(ValueError):
        STATUTORY.add_working_days(date(2026, 9, 28), -1)


def test_years_beyond_the_official_schedule_are_provisional():
    assert not is_provisional(2026)
    assert is_provisional(LAST_OFFICIAL_YEAR + 1)
    # Still answered from the fixed rules: 1 January is off, an ordinary Tuesday works.
    year = LAST_OFFICIAL_YEAR + 1
    assert STATUTORY.is_working_day(date(year, 1, 1)) is False


def test_the_request_page_links_deliveries_and_the_sheet_shows_actual_confirmations(
    client, db, flow
):
    from test_signin import sign_in

    upgrade = flow.create("upgrade")
    request = developing(flow, "3")
    deliver(flow, request, "5", linked_requests=[upgrade.id])
    confirm_actual(flow, request)
    request_id, upgrade_id = request.id, upgrade.id
    hashes = [
        request.data[f"actual_{side}_confirmation"]["scope_sha256"] for side in ("it", "vendor")
    ]
    db.commit()
    db.close()
    sign_in(client, "it_signer")
    page = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert f'<a href="/requests/{upgrade_id}">#{upgrade_id}</a>' in page
    assert "免费：5 人天" in page
    sheet = client.get(f"/requests/{request_id}/confirmation").get_data(as_text=True)
    assert 'id="actual-confirmations"' in sheet
    assert all(digest in sheet for digest in hashes)
