"""IT's working-day calendar: the year page, overrides through the page and the API, who may
do what, the audit trail, and overrides moving the deadlines of open fault tickets (DOMAIN §4)."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from test_signin import csrf_token, sign_in

from models import CalendarOverride, SecurityEvent
from tests.helpers import Flow, creation_fields
from workflow.business_calendar import LAST_OFFICIAL_YEAR
from workflow.calendar_overrides import (
    CALENDAR_OVERRIDE_REMOVED,
    CALENDAR_OVERRIDE_SET,
    remove_override,
    set_override,
    year_view,
)
from workflow.errors import Forbidden, InvalidInput, NotFound


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def override_count(db) -> int:
    """Overrides stored; ends the read so that SQLite's writer lock is free for the client."""
    count = db.scalar(select(func.count()).select_from(CalendarOverride))
    db.rollback()
    return count


def events(db, kind: str) -> list[SecurityEvent]:
    return list(db.scalars(select(SecurityEvent).where(SecurityEvent.kind == kind)))


def post_override(client, who: str, reason: str = "停电", **extra):
    """Sign in as ``who`` and post the override form for 2026-10-08 (a day off)."""
    sign_in(client, who)
    token = csrf_token(client, "/calendar?year=2026")
    data = {"csrf_token": token, "day": "2026-10-08", "working": "0", "reason": reason}
    return client.post("/calendar/overrides", data=data, **extra), token


def cell(page: str, day: str) -> str:
    """The class attribute of one day's cell in the month grids."""
    match = re.search(rf'<td class="([^"]*)" data-day="{day}"', page)
    assert match, f"no cell for {day}"
    return match.group(1)


# ---------------------------------------------------------------- the operations


class TestOperations:
    def test_set_replace_and_remove_are_audited_with_before_and_after(self, db, world):
        it = world.user("it_staff")
        set_override(db, it, date(2026, 10, 8), False, "power cut")
        set_override(db, it, date(2026, 10, 8), False, "power cut")  # same again: nothing new
        set_override(db, it, date(2026, 10, 8), True, "cut called off")
        remove_override(db, it, date(2026, 10, 8))
        db.flush()
        sets = [e.detail for e in events(db, CALENDAR_OVERRIDE_SET)]
        assert sets == [
            "statutory working day (workday) → override: day off (power cut)",
            "override: day off (power cut) → override: working day (cut called off)",
        ]
        removed = events(db, CALENDAR_OVERRIDE_REMOVED)
        assert [e.detail for e in removed] == [
            "override: working day (cut called off) → statutory working day (workday)"
        ]
        assert {e.subject for e in removed} == {"calendar 2026-10-08"}
        assert {e.actor_name for e in removed} == {"it_staff"}
        assert override_count(db) == 0

    @pytest.mark.parametrize(
        "who", ["it_signer", "it_dba", "vendor_manager", "dept_user", "sys_admin"]
    )
    def test_only_it_staff_may_change_the_calendar(self, db, world, who):
        with pytest.raises(Forbidden):
            set_override(db, world.user(who), date(2026, 10, 8), False, "no")
        assert override_count(db) == 0

    @pytest.mark.parametrize(
        ("day", "working", "reason", "field"),
        [
            (None, False, "why", "day"),
            (datetime(2026, 10, 8, 9, 0), False, "why", "day"),
            (date(1999, 12, 31), False, "why", "day"),
            (date(2100, 1, 1), True, "why", "day"),
            (date(2026, 10, 8), None, "why", "working"),
            (date(2026, 10, 8), "yes", "why", "working"),
            (date(2026, 10, 8), True, "   ", "reason"),
            (date(2026, 10, 8), True, None, "reason"),
            (date(2026, 10, 8), True, "x" * 301, "reason"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, db, world, day, working, reason, field
    ):
        with pytest.raises(InvalidInput) as refused:
            set_override(db, world.user("it_staff"), day, working, reason)
        assert field in refused.value.details["fields"]
        assert events(db, CALENDAR_OVERRIDE_SET) == []
        assert override_count(db) == 0

    def test_removing_a_date_without_an_override_is_not_found(self, db, world):
        with pytest.raises(NotFound):
            remove_override(db, world.user("it_staff"), date(2026, 10, 8))

    def test_year_view_marks_overrides_and_counts_working_days(self, db, world):
        before = year_view(db, 2026).working_days
        set_override(db, world.user("it_staff"), date(2026, 10, 8), False, "power cut")
        set_override(db, world.user("it_staff"), date(2026, 10, 3), True, "inspection")
        view = year_view(db, 2026)
        assert view.working_days == before  # one off, one on
        assert view.day(date(2026, 10, 8)).why == "override"
        assert view.day(date(2026, 10, 8)).working is False
        assert view.day(date(2026, 10, 8)).statutory_why == "workday"
        assert view.day(date(2026, 10, 3)).statutory_why == "holiday"
        assert [line.day for line in view.overrides] == [date(2026, 10, 3), date(2026, 10, 8)]
        assert view.day(date(2026, 10, 10)).why == "makeup"
        assert date(2026, 10, 1) in dict(view.days_off)


# ---------------------------------------------------------------- the page


class TestPage:
    def test_it_staff_sees_the_year_with_holidays_make_up_days_and_a_form(self, client, world):
        sign_in(client, "it_staff")
        page = client.get("/calendar?year=2026").get_data(as_text=True)
        assert 'id="override-form"' in page
        assert 'data-day="2026-10-01"' in page and "国庆节" in page
        assert "working why-makeup" in cell(page, "2026-10-10")
        assert "off why-holiday" in cell(page, "2026-10-05")
        assert "off why-weekend" in cell(page, "2026-10-11")
        assert 'id="provisional"' not in page

    @pytest.mark.parametrize("who", ["it_signer", "it_dba"])
    def test_signers_and_dbas_read_it_without_the_form(self, client, world, who):
        sign_in(client, who)
        response = client.get("/calendar?year=2026")
        assert response.status_code == 200
        assert 'id="override-form"' not in response.get_data(as_text=True)

    @pytest.mark.parametrize("who", ["dept_user", "vendor_manager", "auditor", "sys_admin"])
    def test_everyone_else_is_refused(self, client, world, who):
        sign_in(client, who)
        assert client.get("/calendar").status_code == 403

    def test_anonymous_is_sent_to_sign_in(self, client, world):
        response = client.get("/calendar")
        assert response.status_code == 302 and "/login" in response.headers["Location"]

    def test_a_provisional_year_says_so(self, client, world):
        sign_in(client, "it_staff")
        page = client.get(f"/calendar?year={LAST_OFFICIAL_YEAR + 1}").get_data(as_text=True)
        assert 'id="provisional"' in page

    def test_a_year_out_of_range_is_not_found(self, client, world):
        sign_in(client, "it_staff")
        assert client.get("/calendar?year=1999").status_code == 404

    def test_override_round_trip_through_the_form(self, client, world, db):
        response, token = post_override(client, "it_staff")
        assert response.status_code == 302
        page = client.get("/calendar?year=2026").get_data(as_text=True)
        assert "off why-override" in cell(page, "2026-10-08")
        assert "停电" in page
        response = client.post("/calendar/overrides/2026-10-08/delete", data={"csrf_token": token})
        assert response.status_code == 302
        assert override_count(db) == 0
        page = client.get("/calendar?year=2026").get_data(as_text=True)
        assert "working why-workday" in cell(page, "2026-10-08")

    def test_a_form_without_a_reason_is_refused_and_writes_nothing(self, client, world, db):
        response, _ = post_override(client, "it_staff", reason="", follow_redirects=True)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert '<div class="flash error" role="status">请说明原因。</div>' in page
        assert override_count(db) == 0

    def test_writes_need_the_csrf_token(self, client, world, db):
        sign_in(client, "it_staff")
        response = client.post(
            "/calendar/overrides", data={"day": "2026-10-08", "working": "0", "reason": "x"}
        )
        assert response.status_code == 400
        assert override_count(db) == 0

    def test_a_signer_cannot_post_an_override(self, client, world, db):
        response, _ = post_override(client, "it_signer")
        assert response.status_code == 403
        assert override_count(db) == 0

    def test_the_auditor_sees_the_change(self, client, world):
        response, token = post_override(client, "it_staff")
        assert response.status_code == 302
        client.post("/logout", data={"csrf_token": token})
        sign_in(client, "auditor")
        page = client.get("/audit").get_data(as_text=True)
        assert f'data-kind="{CALENDAR_OVERRIDE_SET}"' in page
        assert "calendar 2026-10-08" in page


# ---------------------------------------------------------------- the API


class TestApi:
    def test_the_year_as_json(self, client, world):
        response = client.get("/api/v1/calendar?year=2026", headers=world.auth("it_dba"))
        assert response.status_code == 200
        body = response.json
        assert body["year"] == 2026 and body["provisional"] is False
        assert "2026-10-10" in body["makeup_days"]
        assert {"day": "2026-10-01", "name": "National Day"} in body["days_off"]
        days = {d["day"]: d for d in body["days"]}
        assert len(days) == 365
        assert days["2026-10-10"] == {
            "day": "2026-10-10",
            "working": True,
            "why": "makeup",
            "holiday": None,
        }
        assert body["working_days"] == sum(d["working"] for d in body["days"])

    def test_put_then_delete(self, client, world, db):
        headers = world.auth("it_staff")
        response = client.put(
            "/api/v1/calendar/overrides/2026-10-08",
            json={"working": False, "reason": "power cut"},
            headers=headers,
        )
        assert response.status_code == 200, response.json
        assert response.json["working"] is False
        assert response.json["statutory_working"] is True
        assert response.json["by"] == "it_staff"
        day = client.get("/api/v1/calendar?year=2026", headers=headers).json
        assert {"day": "2026-10-08", "working": False, "why": "override", "holiday": None} in day[
            "days"
        ]
        assert (
            client.delete("/api/v1/calendar/overrides/2026-10-08", headers=headers).status_code
            == 204
        )
        assert override_count(db) == 0
        missing = client.delete("/api/v1/calendar/overrides/2026-10-08", headers=headers)
        assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("2026-13-01", {"working": False, "reason": "x"}, "day"),
            ("2026-10-08", {"working": "no", "reason": "x"}, "working"),
            ("2026-10-08", {"working": 0, "reason": "x"}, "working"),
            ("2026-10-08", {"working": False}, "reason"),
            ("2026-10-08", {"working": False, "reason": "x", "extra": 1}, "extra"),
            ("1999-10-08", {"working": False, "reason": "x"}, "day"),
        ],
    )
    def test_bad_input_is_a_422_naming_the_field(self, client, world, db, path, body, field):
        response = client.put(
            f"/api/v1/calendar/overrides/{path}", json=body, headers=world.auth("it_staff")
        )
        assert response.status_code == 422, response.json
        assert response.json["error"]["code"] == "invalid_input"
        assert field in response.json["error"]["details"]["fields"]
        assert override_count(db) == 0

    @pytest.mark.parametrize("year", ["1999", "abc", "2100"])
    def test_a_bad_year_is_a_422(self, client, world, year):
        response = client.get(f"/api/v1/calendar?year={year}", headers=world.auth("it_staff"))
        assert response.status_code == 422
        assert response.json["error"]["code"] == "invalid_input"

    @pytest.mark.parametrize("who", ["it_signer", "vendor_manager", "dept_user"])
    def test_only_it_staff_writes(self, client, world, db, who):
        response = client.put(
            "/api/v1/calendar/overrides/2026-10-08",
            json={"working": False, "reason": "x"},
            headers=world.auth(who),
        )
        assert response.status_code == 403
        assert response.json["error"]["code"] == "forbidden"
        assert override_count(db) == 0

    @pytest.mark.parametrize("who", ["vendor_manager", "dept_user", "auditor"])
    def test_outside_it_the_calendar_is_forbidden(self, client, world, who):
        response = client.get("/api/v1/calendar", headers=world.auth(who))
        assert response.status_code == 403

    def test_without_a_token_it_is_a_401(self, client, world):
        assert client.get("/api/v1/calendar").status_code == 401


# ---------------------------------------------------------------- overrides move deadlines


def test_an_override_moves_an_open_tickets_deadline(flow, client, world, db):
    """Z2 level 3 (1 working day) reported Wednesday 2026-09-30 16:00 Beijing is due Thursday
    10-08 16:00; IT declares 10-08 a day off, and the deadline moves to Friday 10-09 16:00."""
    fields = {**creation_fields("incident"), "severity": "L3"}
    ticket = flow.create("incident", fields=fields, now=datetime(2026, 9, 30, 8, 0))
    db.commit()

    def resolution_due() -> str:
        body = client.get(f"/api/v1/requests/{ticket.id}", headers=world.auth("it_staff")).json
        return next(t for t in body["sla"]["targets"] if t["name"] == "resolution")["due_at"]

    assert resolution_due().startswith("2026-10-08T08:00")
    response = client.put(
        "/api/v1/calendar/overrides/2026-10-08",
        json={"working": False, "reason": "power cut"},
        headers=world.auth("it_staff"),
    )
    assert response.status_code == 200
    assert resolution_due().startswith("2026-10-09T08:00")
