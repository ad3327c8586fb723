"""Fault tickets through the engine and the API: severity checked against the SLA table, the
clocks in the request document, recurring reopens (Q3) and the quarter's figures (X4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from models import Request
from tests.helpers import Flow, creation_fields
from workflow import sla

# Monday 2026-11-02 10:00 in Beijing: a working day, inside business hours.
REPORTED = datetime(2026, 11, 2, 2, 0)


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def iso(at: datetime) -> str:
    return at.isoformat()


def incident(flow, severity="L2", at=REPORTED, **kwargs) -> Request:
    fields = {**creation_fields("incident"), "severity": severity}
    return flow.create("incident", fields=fields, now=at, **kwargs)


def walk(flow, request, steps):
    """Fire (event, actor, minutes after the report) steps with their default input."""
    for event, actor, minutes, *rest in steps:
        flow.fire(
            request, event, actor, now=REPORTED + timedelta(minutes=minutes), **(rest or [{}])[0]
        )
    flow.db.flush()


def api_request(client, world, db, request_id, as_user="it_staff"):
    db.commit()
    response = client.get(f"/api/v1/requests/{request_id}", headers=world.auth(as_user))
    assert response.status_code == 200, response.json
    return response.json


class TestSeverity:
    def test_unknown_level_is_refused_on_creation_and_nothing_is_written(self, client, world, db):
        before = db.scalar(select(func.count()).select_from(Request))
        db.commit()
        response = client.post(
            "/api/v1/requests",
            headers=world.auth("dept_user"),
            json={
                "kind": "incident",
                "contract_id": world.contract.id,
                "department_id": world.departments["cardiology"].id,
                "title": "Printer down",
                "fields": {**creation_fields("incident"), "severity": "L9"},
            },
        )
        assert response.status_code == 422
        body = response.json["error"]
        assert body["code"] == "invalid_input"
        assert "'L9' is not a level" in body["message"] and "L1, L2, L3, L4, L5" in body["message"]
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Request)) == before

    def test_changing_severity_recomputes_from_the_report_time(self, flow, client, world, db):
        request = incident(flow, "L2")
        walk(flow, request, [("acknowledge", "vendor_engineer", 10)])
        flow.fire(
            request,
            "change_severity",
            "it_staff",
            {"severity": "L1"},
            now=REPORTED + timedelta(minutes=40),
        )
        targets = {
            t["name"]: t for t in api_request(client, world, db, request.id)["sla"]["targets"]
        }
        # L1: resolution within 60 minutes of the report, not of the change.
        assert targets["resolution"]["due_at"] == iso(REPORTED + timedelta(minutes=60))
        assert targets["response"]["state"] == "met"
        assert targets["response"]["used_minutes"] == 10.0


class TestRequestDocument:
    def test_incident_carries_its_clocks_and_others_do_not(self, flow, client, world, db):
        request = incident(flow, "L2")
        requirement = flow.create("requirement")
        body = api_request(client, world, db, request.id, "vendor_engineer")
        sla = body["sla"]
        assert sla["level"] == "L2" and sla["known_level"] is True
        assert sla["outside_hours"] is False and sla["provisional"] is False
        targets = {t["name"]: t for t in sla["targets"]}
        assert set(targets) == {"response", "resolution"}
        assert targets["response"]["due_at"] == iso(REPORTED + timedelta(minutes=30))
        assert targets["response"]["warn_at"] == iso(REPORTED + timedelta(minutes=22, seconds=30))
        assert targets["resolution"]["due_at"] == iso(REPORTED + timedelta(hours=2))
        assert targets["resolution"]["budget_minutes"] == 120.0
        assert api_request(client, world, db, requirement.id, "dept_user")["sla"] is None

    def test_list_shows_the_clocks_of_every_incident_on_the_page(self, flow, client, world, db):
        first, second = incident(flow, "L1"), incident(flow, "L4")
        db.commit()
        response = client.get("/api/v1/requests?kind=incident", headers=world.auth("it_staff"))
        assert response.status_code == 200
        levels = {item["id"]: item["sla"]["level"] for item in response.json["items"]}
        assert levels == {first.id: "L1", second.id: "L4"}

    def test_time_waiting_for_the_hospital_does_not_count(self, flow, client, world, db):
        request = incident(flow, "L2")
        walk(
            flow,
            request,
            [
                ("acknowledge", "vendor_engineer", 5),
                ("start_work", "vendor_engineer", 10),
                ("wait_for_hospital", "vendor_engineer", 30),
                ("resume", "dept_user", 90),
            ],
        )
        targets = {
            t["name"]: t for t in api_request(client, world, db, request.id)["sla"]["targets"]
        }
        # 60 paused minutes push the 2-hour resolution deadline back by 60 minutes.
        assert targets["resolution"]["due_at"] == iso(REPORTED + timedelta(hours=3))


class TestRememberedClockHistory:
    """A transition shows its clocks without reading the history again: it extends the history
    remembered for the head it moved from (sla.MOMENTS), or on PostgreSQL reads it in its own
    statement. What is remembered must be exactly what reading the history again gives."""

    def remembered(self, request):
        return sla.MOMENTS.get(request.id, request.head_hash)

    def test_transitions_extend_a_remembered_history(self, flow, db):
        request = incident(flow, "L2")
        sla.moments_of(db, [request.id])  # shown once: remembered at its head
        assert self.remembered(request) is not None
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        walk(flow, request, [("start_work", "vendor_engineer", 10)])
        walk(flow, request, [("wait_for_hospital", "vendor_engineer", 30)])
        remembered = self.remembered(request)
        assert remembered is not None and len(remembered) == request.version == 4
        now = REPORTED + timedelta(minutes=45)
        shown = sla.statuses_for(db, [request], now)[request.id]
        sla.MOMENTS.clear()
        read = sla.moments_of(db, [request.id])[request.id]
        assert list(remembered) == read
        fresh = sla.statuses_for(db, [request], now)[request.id]
        assert sla.sla_data(shown, request) == sla.sla_data(fresh, request)
        states = {t.name: t.state for t in fresh.targets}
        assert states == {"response": "met", "resolution": "paused"}

    def test_without_a_memory_postgresql_reads_the_history_with_the_transition(self, flow, db):
        request = incident(flow, "L2")
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        remembered = self.remembered(request)
        if db.get_bind().dialect.name == "postgresql":
            assert remembered is not None and len(remembered) == 2
        else:  # SQLite reads it when the clocks are shown
            assert remembered is None
            sla.statuses_for(db, [request], REPORTED + timedelta(minutes=6))
            remembered = self.remembered(request)
        assert list(remembered) == sla.moments_of(db, [request.id])[request.id]

    def test_the_memory_is_what_the_clocks_use(self, flow, db):
        request = incident(flow, "L2")
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        now = REPORTED + timedelta(minutes=20)
        # Remembered as if the ticket had never been acknowledged: the clocks must follow it,
        # or the memory saves no read.
        first = sla.moments_of(db, [request.id])[request.id][0]
        sla.MOMENTS.put(request.id, request.head_hash, (first,))
        states = {t.name: t.state for t in sla.statuses_for(db, [request], now)[request.id].targets}
        assert states["response"] == "running"

    def test_a_memory_of_another_head_is_ignored(self, flow, db):
        request = incident(flow, "L2")
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        stale = tuple(sla.moments_of(db, [request.id])[request.id][:1])  # one entry ago
        sla.MOMENTS.put(request.id, "0" * 64, stale)
        assert self.remembered(request) is None
        moments = sla.statuses_for(db, [request], REPORTED + timedelta(minutes=20))
        states = {t.name: t.state for t in moments[request.id].targets}
        assert states == {"response": "met", "resolution": "running"}
        assert len(self.remembered(request)) == 2  # the read replaced it

    def test_a_rolled_back_transition_leaves_nothing_that_is_used(self, flow, db):
        request = incident(flow, "L2")
        sla.moments_of(db, [request.id])
        db.commit()
        with db.begin_nested() as savepoint:
            walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
            savepoint.rollback()
        assert request.version == 1  # expired by the rollback and read again
        assert self.remembered(request) is None  # remembered for the head that never was
        read = sla.moments_of(db, [request.id])[request.id]
        assert [m.to_state for m in read] == [request.state]
        walk(flow, request, [("acknowledge", "vendor_engineer", 7)])
        sla.statuses_for(db, [request], REPORTED + timedelta(minutes=8))
        assert [m.at for m in self.remembered(request)] == [
            m.at for m in sla.moments_of(db, [request.id])[request.id]
        ]


class TestHistoryMovedByAnotherProcess:
    """Another worker moved the ticket since this one remembered it: only the entries after the
    remembered head are read, linked by their hashes to it, or everything when they do not."""

    def moved_elsewhere(self, flow, db, request):
        sla.moments_of(db, [request.id])
        older = sla.MOMENTS.latest(request.id)
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        walk(flow, request, [("start_work", "vendor_engineer", 10)])
        return older

    def spy(self, monkeypatch):
        results = []
        extend = sla.MOMENTS.extend

        def recorded(*args):
            results.append(extend(*args))
            return results[-1]

        monkeypatch.setattr(sla.MOMENTS, "extend", recorded)
        return results

    def test_the_entries_after_the_remembered_head_are_read(self, flow, db, monkeypatch):
        request = incident(flow, "L2")
        older = self.moved_elsewhere(flow, db, request)
        sla.MOMENTS.put(request.id, *older)  # all this process saw
        extended = self.spy(monkeypatch)
        read = sla.moments_of(db, [request.id])[request.id]
        assert len(extended) == 1 and extended[0] is not None
        assert sla.MOMENTS.get(request.id, request.head_hash) == tuple(read)
        sla.MOMENTS.clear()
        assert read == sla.moments_of(db, [request.id])[request.id]
        assert [m.event for m in read][1:] == ["acknowledge", "start_work"]

    def test_a_transition_reads_only_what_was_added(self, flow, db, monkeypatch):
        request = incident(flow, "L2")
        older = self.moved_elsewhere(flow, db, request)
        sla.MOMENTS.put(request.id, *older)
        extended = self.spy(monkeypatch)
        walk(flow, request, [("wait_for_hospital", "vendor_engineer", 30)])
        remembered = sla.MOMENTS.get(request.id, request.head_hash)
        if db.get_bind().dialect.name == "postgresql":
            assert len(extended) == 1 and extended[0] == remembered
        else:  # SQLite reads when the clocks are shown
            assert remembered is None and not extended
            sla.statuses_for(db, [request], REPORTED + timedelta(minutes=31))
            remembered = sla.MOMENTS.get(request.id, request.head_hash)
        sla.MOMENTS.clear()
        assert list(remembered) == sla.moments_of(db, [request.id])[request.id]

    def test_a_memory_that_does_not_link_is_not_extended(self, flow, db, monkeypatch):
        request = incident(flow, "L2")
        head, known = self.moved_elsewhere(flow, db, request)
        forged = (sla.Moment(REPORTED, known[0].event, "resolved"),)
        sla.MOMENTS.put(request.id, "f" * 64, forged)  # a head no entry has
        extended = self.spy(monkeypatch)
        read = sla.moments_of(db, [request.id])[request.id]
        assert extended == [None]
        assert len(read) == 3 and read[0].to_state != "resolved"
        assert sla.MOMENTS.get(request.id, request.head_hash) == tuple(read)


class TestMomentMemo:
    def moments(self, n):
        return tuple(sla.Moment(REPORTED + timedelta(minutes=i), "e", "s") for i in range(n))

    def test_least_recently_used_histories_go_first_when_full(self):
        memo = sla.MomentMemo(capacity=6)
        memo.put(1, "a", self.moments(3))
        memo.put(2, "b", self.moments(3))
        assert memo.get(1, "a") is not None  # 1 is now the most recently used
        memo.put(3, "c", self.moments(2))
        assert memo.get(2, "b") is None
        assert memo.get(1, "a") == self.moments(3) and memo.get(3, "c") == self.moments(2)

    def test_a_new_head_replaces_the_old_and_frees_its_room(self):
        memo = sla.MomentMemo(capacity=4)
        memo.put(1, "a", self.moments(3))
        memo.put(1, "b", self.moments(4))
        assert memo.get(1, "a") is None and memo.get(1, "b") == self.moments(4)
        memo.put(2, "c", self.moments(7))  # longer than the whole memo: not kept
        assert memo.get(2, "c") is None and memo.get(1, "b") is not None


class TestReopen:
    def resolved(self, flow):
        request = incident(flow, "L3")
        walk(
            flow,
            request,
            [
                ("acknowledge", "vendor_engineer", 5),
                ("start_work", "vendor_engineer", 10),
                ("resolve", "vendor_engineer", 60),
            ],
        )
        return request

    def test_reopen_within_the_window_marks_the_ticket_recurring(self, flow):
        request = self.resolved(flow)
        flow.fire(request, "reopen", "dept_user", now=REPORTED + timedelta(days=29))
        assert request.data["recurring"] is True and request.data["reopen_count"] == 1

    def test_reopen_after_the_window_is_counted_but_not_recurring(self, flow):
        request = self.resolved(flow)
        flow.fire(request, "reopen", "dept_user", now=REPORTED + timedelta(days=31))
        assert "recurring" not in request.data and request.data["reopen_count"] == 1


class TestQuarterFigures:
    def build(self, flow):
        """Four Q4 tickets and one of Q3; the hand count is in the test below."""
        on_time = incident(flow, "L2")  # resolved after 60 min of a 120-min target
        walk(
            flow,
            on_time,
            [
                ("acknowledge", "vendor_engineer", 10),
                ("start_work", "vendor_engineer", 11),
                ("resolve", "vendor_engineer", 60),
                ("confirm_fixed", "dept_user", 70, {"fields": {"satisfaction": 80}}),
            ],
        )
        late = incident(flow, "L2")  # response after 45 min (> 30), resolved after 3 h (> 2 h)
        walk(
            flow,
            late,
            [
                ("acknowledge", "vendor_engineer", 45),
                ("start_work", "vendor_engineer", 46),
                ("resolve", "vendor_engineer", 180),
                ("confirm_fixed", "dept_user", 200, {"fields": {"satisfaction": 100}}),
            ],
        )
        incident(flow, "L4")  # still open
        cancelled = incident(flow, "L4")
        walk(flow, cancelled, [("cancel", "dept_user", 1)])
        incident(flow, "L1", at=datetime(2026, 9, 1, 2, 0))  # Q3
        flow.db.commit()

    def test_figures_match_a_hand_count(self, flow, client, world):
        self.build(flow)
        response = client.get(
            f"/api/v1/contracts/{world.contract.id}/service-levels?quarter=2026Q4",
            headers=world.auth("it_staff"),
        )
        assert response.status_code == 200, response.json
        report = response.json
        assert (report["reported"], report["resolved"], report["on_time"]) == (3, 2, 1)
        assert report["resolution_rate"] == 66.7
        assert report["on_time_rate"] == 50.0
        assert report["satisfaction"] == 90.0
        # The late ticket missed both; the open L4 one (60 min, 2 working days) is past both.
        assert report["breaches"] == {"resolution": 2, "response": 2}
        assert report["by_level"] == {"L2": 2, "L4": 1}
        assert (report["from"], report["to"]) == ("2026-10-01", "2027-01-01")

    def test_minimums_come_from_the_policy(self, flow, client, world, db):
        contract = flow.policy_contract(
            "C-A-X4",
            "X4 contract",
            "sla",
            kpis={"resolution_rate_min": 95, "on_time_rate_min": 0, "satisfaction_min": None},
        )
        request = incident(flow, "L2", contract=contract)
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        db.commit()
        report = client.get(
            f"/api/v1/contracts/{contract.id}/service-levels?quarter=2026Q4",
            headers=world.auth("vendor_manager"),
        ).json
        assert report["targets"]["resolution_rate"] == {"min": 95.0, "met": False}
        assert report["targets"]["on_time_rate"] == {"min": 0.0, "met": None}  # none resolved
        assert report["targets"]["satisfaction"] == {"min": None, "met": None}

    @pytest.mark.parametrize("quarter", ["2026Q5", "2026-4", "", "26Q1"])
    def test_a_malformed_quarter_is_a_422(self, client, world, quarter):
        response = client.get(
            f"/api/v1/contracts/{world.contract.id}/service-levels?quarter={quarter}",
            headers=world.auth("it_staff"),
        )
        assert response.status_code == 422
        assert response.json["error"]["code"] == "invalid_input"

    def test_another_vendors_contract_is_not_found(self, client, world):
        response = client.get(
            f"/api/v1/contracts/{world.contract.id}/service-levels?quarter=2026Q4",
            headers=world.auth("other_vendor"),
        )
        assert response.status_code == 404


class TestPages:
    """Countdowns on the request page, the list and the dashboard, in scope only."""

    def open_ticket(self, flow, db):
        request = incident(flow, "L2", at=datetime(2026, 11, 2, 2, 0))
        walk(flow, request, [("acknowledge", "vendor_engineer", 5)])
        fresh = incident(flow, "L1", at=datetime.now(UTC).replace(tzinfo=None))
        db.commit()
        return request, fresh

    def test_request_page_shows_every_target_with_its_deadline(self, flow, client, db):
        from test_pages import page_of, signed_in_as

        request, fresh = self.open_ticket(flow, db)
        signed_in_as(client, "vendor_engineer")
        html = page_of(client, f"/requests/{request.id}")
        assert 'id="service-levels"' in html
        # Response met after 5 min; resolution (2 h, due 2026-11-02 12:00 Beijing) long breached.
        response_row = html.split('id="sla-response"')[1].split("</tr>")[0]
        assert "sla-met" in response_row
        resolution_row = html.split('id="sla-resolution"')[1].split("</tr>")[0]
        assert "2026-11-02 12:00" in resolution_row and "sla-breached" in resolution_row
        fresh_html = page_of(client, f"/requests/{fresh.id}")
        fresh_row = fresh_html.split('id="sla-response"')[1].split("</tr>")[0]
        assert "sla-ok" in fresh_row and 'class="countdown"' in fresh_row

    def test_dashboard_lists_open_faults_for_it_and_the_vendor_only(self, flow, client, db):
        from test_pages import page_of, sign_out, signed_in_as

        request, fresh = self.open_ticket(flow, db)
        for user, sees in (("it_staff", True), ("vendor_engineer", True), ("other_vendor", False)):
            signed_in_as(client, user)
            section = page_of(client, "/").split('id="open-faults"')[1].split("</section>")[0]
            assert (f'/requests/{request.id}"' in section) is sees, user
            assert (f'/requests/{fresh.id}"' in section) is sees, user
            if sees:  # the breached ticket comes first
                assert section.index(f'/requests/{request.id}"') < section.index(
                    f'/requests/{fresh.id}"'
                )
            sign_out(client)

    def test_list_has_a_service_level_column(self, flow, client, db):
        from test_pages import page_of, signed_in_as

        request, _ = self.open_ticket(flow, db)
        signed_in_as(client, "it_staff")
        html = page_of(client, "/requests?kind=incident")
        row = html.split(f'/requests/{request.id}"')[1].split("</tr>")[0]
        assert "sla-breached" in row
