"""The HTTP API (SPEC §4): status codes, the one error shape, scope, bad input never a 500,
pagination and filters, history, definitions, OpenAPI and attachments."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from tests.helpers import creation_fields
from workflow.accounts import revoke_tokens
from workflow.history import GENESIS

API = "/api/v1"
MB = 1024 * 1024
BIG = "x" * MB  # one megabyte of text


# ---------------------------------------------------------------- helpers


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has ``status`` and the SPEC §4 error shape; returns the error object."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_client_error(response) -> dict:
    """Bad input: a 4xx (never a 500) in the error shape."""
    assert 400 <= response.status_code < 500, (
        response.status_code,
        response.get_data(as_text=True)[:300],
    )
    return assert_error(response, response.status_code)


class Api:
    """Calls the API as the world's users."""

    def __init__(self, client, world):
        self.client, self.world = client, world

    def get(self, path, user="dept_user", **kwargs):
        return self.client.get(API + path, headers=self.world.auth(user), **kwargs)

    def post(self, path, body=None, user="dept_user", **kwargs):
        if body is not None:
            kwargs["json"] = body
        return self.client.post(API + path, headers=self.world.auth(user), **kwargs)

    def create(self, kind="requirement", user="dept_user", contract=None, **overrides) -> dict:
        contract = contract or self.world.contract
        body = {
            "kind": kind,
            "contract_id": contract.id,
            "title": f"A {kind}",
            "description": "From the API tests.",
            "fields": creation_fields(kind),
        }
        if contract.id == self.world.contract.id:
            body["system_id"] = self.world.system.id
        body.update(overrides)
        response = self.post("/requests", body, user=user)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def fire(self, request: dict, event: str, user: str, fields=None, comment="", version=None):
        body = {
            "version": request["version"] if version is None else version,
            "fields": fields or {},
            "comment": comment,
        }
        return self.post(f"/requests/{request['id']}/events/{event}", body, user=user)

    def fire_ok(self, request: dict, event: str, user: str, fields=None, comment="") -> dict:
        response = self.fire(request, event, user, fields, comment)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def upload(
        self, request: dict, content: bytes, name="report.pdf", kind="test_report", user=None
    ):
        return self.client.post(
            f"{API}/requests/{request['id']}/attachments",
            headers=self.world.auth(user or "dept_user"),
            data={"file": (io.BytesIO(content), name), "kind": kind},
            content_type="multipart/form-data",
        )


@pytest.fixture
def api(client, world):
    return Api(client, world)


@pytest.fixture
def draft(api) -> dict:
    """A cardiology requirement under vendor A's contract, in draft."""
    return api.create(title="Cardiology follow-up form")


@pytest.fixture
def submitted(api, draft) -> dict:
    return api.fire_ok(draft, "submit", "dept_user")


# ---------------------------------------------------------------- authentication (401)


class TestAuthentication:
    def test_no_token_is_401(self, client, world):
        assert_error(client.get(f"{API}/me"), 401, "unauthenticated")

    @pytest.mark.parametrize(
        "header",
        [
            "Bearer cf_not-a-real-token",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Bearer " + "a" * 5000,
            "cf_token-without-scheme",
        ],
    )
    def test_bad_token_is_401(self, client, world, header):
        response = client.get(f"{API}/me", headers={"Authorization": header})
        assert_error(response, 401, "unauthenticated")

    def test_good_token_is_the_user(self, api):
        response = api.get("/me", user="vendor_engineer")
        assert response.status_code == 200
        me = response.get_json()
        assert me["username"] == "vendor_engineer"
        assert [r["role"] for r in me["roles"]] == ["vendor_engineer"]
        assert me["roles"][0]["vendor_id"] == api.world.contract.vendor_id

    def test_revoked_token_is_401(self, client, db, world):
        headers = world.auth("it_staff")
        assert client.get(f"{API}/me", headers=headers).status_code == 200
        assert revoke_tokens(db, world.users["it_staff"]) == 1
        db.commit()
        assert_error(client.get(f"{API}/me", headers=headers), 401, "unauthenticated")
        # Other users' tokens keep working.
        assert client.get(f"{API}/me", headers=world.auth("it_signer")).status_code == 200

    def test_every_endpoint_needs_authentication(self, client, world):
        for method, path in [
            ("get", "/definitions"),
            ("get", "/definitions/requirement"),
            ("get", "/contracts"),
            ("get", "/systems"),
            ("get", "/requests"),
            ("post", "/requests"),
            ("get", "/requests/1"),
            ("post", "/requests/1/events/submit"),
            ("get", "/requests/1/history"),
            ("post", "/requests/1/attachments"),
            ("get", "/attachments/1"),
        ]:
            response = getattr(client, method)(API + path)
            assert_error(response, 401, "unauthenticated")


# ---------------------------------------------------------------- 403 / 404 / 409 / 422


class TestStatusCodes:
    def test_wrong_role_is_403_forbidden(self, api, submitted):
        # vendor_engineer sees the request (vendor A's contract) but may not triage it.
        response = api.fire(submitted, "triage", "vendor_engineer", {"priority": "high"})
        error = assert_error(response, 403, "forbidden")
        assert "it_staff" in error["details"]["roles"]
        # Nothing changed.
        again = api.get(f"/requests/{submitted['id']}").get_json()
        assert (again["state"], again["version"]) == ("submitted", submitted["version"])

    def test_missing_request_is_404(self, api, world):
        assert_error(api.get("/requests/999999"), 404, "not_found")
        assert_error(api.get("/requests/999999/history"), 404, "not_found")
        response = api.post("/requests/999999/events/submit", {"version": 1})
        assert_error(response, 404, "not_found")

    def test_id_beyond_database_range_is_404_not_500(self, api, world):
        assert_error(api.get("/requests/99999999999999"), 404, "not_found")
        assert_error(api.get("/attachments/99999999999999"), 404, "not_found")

    @pytest.mark.parametrize("outsider", ["other_dept_user", "other_vendor"])
    def test_request_out_of_scope_is_404_and_not_listed(self, api, draft, outsider):
        rid = draft["id"]
        assert api.get(f"/requests/{rid}", user="vendor_engineer").status_code == 200
        assert_error(api.get(f"/requests/{rid}", user=outsider), 404, "not_found")
        assert_error(api.get(f"/requests/{rid}/history", user=outsider), 404, "not_found")
        # Firing out of scope does not reveal the request either.
        response = api.fire(draft, "cancel", outsider, comment="not mine")
        assert_error(response, 404, "not_found")
        listing = api.get("/requests", user=outsider).get_json()
        assert rid not in [item["id"] for item in listing["items"]]
        assert listing["total"] == 0
        # The owner still sees it, unchanged.
        mine = api.get("/requests").get_json()
        assert [item["id"] for item in mine["items"]] == [rid]
        assert api.get(f"/requests/{rid}").get_json()["version"] == draft["version"]

    def test_vendor_lists_only_its_contracts(self, api, world):
        ours = api.get("/contracts", user="vendor_engineer").get_json()
        assert [c["code"] for c in ours] == ["C-A"]
        theirs = api.get("/contracts", user="other_vendor").get_json()
        assert [c["code"] for c in theirs] == ["C-B"]
        hospital = api.get("/contracts", user="it_staff").get_json()
        assert sorted(c["code"] for c in hospital) == ["C-A", "C-B"]

    def test_vendor_lists_only_systems_of_its_contracts(self, api, world):
        ours = api.get("/systems", user="vendor_engineer").get_json()
        assert [s["code"] for s in ours] == ["sys_a"]
        assert ours[0]["releases"][0]["version"] == "1.1.0"
        assert api.get("/systems", user="other_vendor").get_json() == []

    def test_event_not_leaving_state_is_409_invalid_transition(self, api, draft):
        response = api.fire(draft, "deliver", "vendor_engineer", {"delivery_note": "x"})
        error = assert_error(response, 409, "invalid_transition")
        assert error["details"]["state"] == "draft"
        assert "submit" in error["details"]["available"]
        assert "deliver" not in error["details"]["available"]

    def test_unknown_event_is_409_invalid_transition(self, api, draft):
        response = api.fire(draft, "teleport", "dept_user")
        assert_error(response, 409, "invalid_transition")

    def test_stale_version_is_409(self, api, submitted):
        assert submitted["version"] == 2
        stale = dict(submitted, version=1)
        response = api.fire(stale, "triage", "it_staff", {"priority": "high"})
        error = assert_error(response, 409, "stale_version")
        assert error["details"] == {"expected": 1, "current": 2}
        # The right version wins, then the same version again is stale.
        api.fire_ok(submitted, "triage", "it_staff", {"priority": "high"})
        again = api.fire(submitted, "reject", "it_staff", comment="late click")
        assert_error(again, 409, "stale_version")

    def test_bad_event_input_is_422_invalid_input(self, api, submitted):
        response = api.fire(submitted, "triage", "it_staff", {"priority": "urgent"})
        error = assert_error(response, 422, "invalid_input")
        assert "priority" in error["details"]["fields"]

    def test_missing_required_comment_is_422_invalid_input(self, api, submitted):
        response = api.fire(submitted, "reject", "it_staff", comment="   ")
        error = assert_error(response, 422, "invalid_input")
        assert "comment" in error["details"]["fields"]

    def test_guard_refusal_is_422_guard_failed(self, api, draft):
        # it_staff may submit requirements, but only the submitter may submit this one.
        response = api.fire(draft, "submit", "it_staff")
        error = assert_error(response, 422, "guard_failed")
        reasons = error["details"]["reasons"]
        assert [r["guard"] for r in reasons] == ["is_submitter"]
        assert all(r["message"] for r in reasons)

    def test_creating_without_create_role_is_403(self, api, world):
        body = {
            "kind": "requirement",
            "contract_id": world.contract.id,
            "title": "Vendors do not raise requirements",
            "fields": creation_fields("requirement"),
        }
        assert_error(api.post("/requests", body, user="vendor_engineer"), 403, "forbidden")
        assert_error(api.post("/requests", body, user="auditor"), 403, "forbidden")

    def test_unknown_kind_is_an_error_in_the_shape(self, api, world):
        body = {"kind": "nope", "contract_id": world.contract.id, "title": "x"}
        assert_client_error(api.post("/requests", body))

    def test_unknown_contract_is_422(self, api, world):
        body = {
            "kind": "requirement",
            "contract_id": 987654,
            "title": "x",
            "fields": creation_fields("requirement"),
        }
        error = assert_error(api.post("/requests", body), 422, "invalid_input")
        assert "contract_id" in error["details"]["fields"]

    def test_unknown_api_path_and_method_answer_in_the_shape(self, api, world):
        assert_error(api.get("/no/such/thing"), 404, "not_found")
        response = api.client.delete(f"{API}/requests", headers=api.world.auth("it_staff"))
        assert_error(response, 405)


# ---------------------------------------------------------------- bad input, never a 500


class TestBadInput:
    def test_malformed_json_body(self, api, world):
        response = api.client.post(
            f"{API}/requests",
            data='{"kind": "requirement", ',
            content_type="application/json",
            headers=world.auth("dept_user"),
        )
        error = assert_error(response, 422, "invalid_input")
        assert "_body" in error["details"]["fields"]

    def test_json_array_body(self, api, world):
        response = api.post("/requests", [{"kind": "requirement"}])
        assert_error(response, 422, "invalid_input")

    def test_body_that_is_not_json(self, api, world):
        response = api.client.post(
            f"{API}/requests",
            data="kind=requirement",
            content_type="application/x-www-form-urlencoded",
            headers=world.auth("dept_user"),
        )
        assert_client_error(response)

    def test_event_body_malformed_or_array(self, api, draft, world):
        path = f"{API}/requests/{draft['id']}/events/submit"
        headers = world.auth("dept_user")
        response = api.client.post(path, data="{", content_type="application/json", headers=headers)
        assert_error(response, 422, "invalid_input")
        assert_error(api.client.post(path, json=[1, 2], headers=headers), 422, "invalid_input")
        assert_error(api.client.post(path, json="v", headers=headers), 422, "invalid_input")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"version": "1"}, "version"),
            ({"version": 1.5}, "version"),
            ({"version": True}, "version"),
            ({"version": None}, "version"),
            ({"version": 1, "fields": ["a", "b"]}, "fields"),
            ({"version": 1, "fields": "text"}, "fields"),
            ({"version": 1, "comment": 42}, "comment"),
            ({"version": 1, "comment": BIG}, "comment"),
            ({"version": 1, "colour": "blue"}, "colour"),
            ({"version": 2**40}, "version"),
            ({}, "version"),
        ],
    )
    def test_bad_event_body_is_422_naming_the_field(self, api, draft, body, field):
        response = api.post(f"/requests/{draft['id']}/events/submit", body)
        error = assert_error(response, 422, "invalid_input")
        assert field in error["details"]["fields"], error
        assert api.get(f"/requests/{draft['id']}").get_json()["version"] == 1

    def test_one_megabyte_in_event_fields_is_422(self, api, submitted):
        response = api.fire(submitted, "triage", "it_staff", {"priority": BIG})
        assert_error(response, 422, "invalid_input")
        response = api.fire(submitted, "triage", "it_staff", {"priority": "high", BIG: "x"})
        assert_error(response, 422, "invalid_input")

    @pytest.mark.parametrize(
        ("override", "field"),
        [
            ({"contract_id": "x"}, "contract_id"),
            ({"contract_id": "1"}, "contract_id"),
            ({"contract_id": 1.0}, "contract_id"),
            ({"contract_id": -3}, "contract_id"),
            ({"contract_id": 2**40}, "contract_id"),
            ({"system_id": "1"}, "system_id"),
            ({"fields": ["req_type", "module"]}, "fields"),
            ({"fields": "new_feature"}, "fields"),
            ({"title": 7}, "title"),
            ({"title": ""}, "title"),
            ({"title": BIG}, "title"),
            ({"description": BIG}, "description"),
            ({"kind": BIG}, "kind"),
            ({"fields": {"req_type": "new_feature", "module": BIG}}, "fields"),
            ({"fields": {"req_type": "new_feature", "module": "m", "extra": BIG}}, "fields"),
            ({"fields": {"req_type": BIG, "module": "m"}}, "fields"),
            ({"priority": "high"}, "priority"),
            ({"state": "closed"}, "state"),
        ],
    )
    def test_bad_create_body_is_422(self, api, world, override, field):
        body = {
            "kind": "requirement",
            "contract_id": world.contract.id,
            "system_id": world.system.id,
            "title": "Valid title",
            "fields": creation_fields("requirement"),
        }
        body.update(override)
        error = assert_error(api.post("/requests", body), 422, "invalid_input")
        assert field in error["details"]["fields"], error
        assert api.get("/requests").get_json()["total"] == 0

    @pytest.mark.parametrize(
        "query",
        [
            "per_page=0",
            "page=-1",
            "page=0",
            "per_page=10000",
            "sort=bogus",
            "sort=title;drop",
            "page=abc",
            "contract_id=x",
            "contract_id=99999999999",
            "created_from=yesterday",
            "colour=blue",
            "q=" + "x" * 5000,
        ],
    )
    def test_bad_list_query_is_422(self, api, world, query):
        response = api.get(f"/requests?{query}")
        error = assert_error(response, 422, "invalid_input")
        assert error["details"]["fields"]

    def test_bad_attachment_form_is_4xx(self, api, draft, world):
        path = f"{API}/requests/{draft['id']}/attachments"
        headers = world.auth("dept_user")
        no_file = api.client.post(
            path, headers=headers, data={"kind": "test_report"}, content_type="multipart/form-data"
        )
        assert_error(no_file, 422, "invalid_input")
        no_kind = api.client.post(
            path,
            headers=headers,
            data={"file": (io.BytesIO(b"x"), "a.txt")},
            content_type="multipart/form-data",
        )
        assert_error(no_kind, 422, "invalid_input")
        bad_kind = api.upload(draft, b"x", kind="../../etc")
        assert_error(bad_kind, 422, "invalid_input")
        as_json = api.client.post(path, headers=headers, json={"kind": "test_report"})
        assert_client_error(as_json)


# ---------------------------------------------------------------- requests


class TestRequests:
    def test_create_is_201_with_available_events(self, api, world):
        created = api.create(title="  Spaces are trimmed  ")
        assert created["title"] == "Spaces are trimmed"
        assert (created["kind"], created["state"], created["version"]) == (
            "requirement",
            "draft",
            1,
        )
        assert created["contract_id"] == world.contract.id
        assert created["system_id"] == world.system.id
        assert created["department_id"] == world.departments["cardiology"].id
        assert created["submitter"] == "dept_user"
        assert created["fields"]["req_type"] == "new_feature"
        assert len(created["definition_version"]) == 64
        events = {e["event"]: e for e in created["available_events"]}
        assert events["submit"]["allowed"] is True
        assert events["submit"]["reasons"] == []
        for option in events.values():
            assert set(option) >= {"event", "label", "allowed", "reasons", "fields"}
        # The same request is readable afterwards.
        fetched = api.get(f"/requests/{created['id']}").get_json()
        assert fetched["id"] == created["id"]
        assert fetched["available_events"] == created["available_events"]

    def test_answers_to_writes_are_rendered_once_the_change_is_committed(
        self, api, app, draft, monkeypatch
    ):
        # SQLite's one write lock is not held while the answer is built: by then another
        # connection already reads what the write committed.
        from sqlalchemy import text
        from sqlalchemy.orm import Session

        from web.api import views
        from web.db import read_first

        seen = []
        render = views.render_request
        query = text("SELECT state, version FROM requests WHERE id = :id")

        def render_and_look(req):
            with Session(app.extensions["changeflow.engine"]) as other:
                # A read that takes no write lock (it would wait for this very request).
                row = read_first(other, lambda: other.execute(query, {"id": req.id}).one())
            seen.append(tuple(row))
            return render(req)

        monkeypatch.setattr(views, "render_request", render_and_look)
        fired = api.fire_ok(draft, "submit", "dept_user")
        created = api.create(title="Seen committed")
        assert seen == [(fired["state"], 2), ("draft", 1)]
        assert (fired["version"], created["version"]) == (2, 1)
        refused = api.fire(fired, "submit", "dept_user")
        assert_error(refused, 409)
        assert len(seen) == 2  # an error answer renders nothing

    def test_an_answer_that_fails_after_the_commit_is_a_500_and_the_change_stays(
        self, api, app, draft, monkeypatch
    ):
        from web.api import views

        def broken(_req):
            raise RuntimeError("rendering broke")

        app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not re-raise
        monkeypatch.setattr(views, "render_request", broken)
        assert_error(api.fire(draft, "submit", "dept_user"), 500, "internal_error")
        monkeypatch.undo()
        assert api.get(f"/requests/{draft['id']}").get_json()["version"] == 2

    def test_available_events_explain_refusals(self, api, draft):
        seen = api.get(f"/requests/{draft['id']}", user="vendor_engineer").get_json()
        for option in seen["available_events"]:
            assert option["allowed"] is False
            assert option["reasons"] and option["reasons"][0]["message"]

    def test_fire_returns_the_request(self, api, submitted):
        assert (submitted["state"], submitted["version"]) == ("submitted", 2)
        triaged = api.fire_ok(submitted, "triage", "it_staff", {"priority": "medium"})
        assert (triaged["state"], triaged["version"]) == ("triaged", 3)
        assert triaged["fields"]["priority"] == "medium"

    def test_the_answer_names_the_assignee_a_step_just_set(self, api):
        # acknowledge assigns the ticket to whoever acknowledges it (effect assign_to_actor):
        # the answer, and every read after it, names the new assignee and the submitter.
        incident = api.create("incident", title="Ward printer down")
        assert (incident["submitter"], incident["assignee"]) == ("dept_user", None)
        acknowledged = api.fire_ok(incident, "acknowledge", "vendor_engineer")
        assert (acknowledged["submitter"], acknowledged["assignee"]) == (
            "dept_user",
            "vendor_engineer",
        )
        fetched = api.get(f"/requests/{incident['id']}", user="vendor_engineer").get_json()
        assert (fetched["submitter"], fetched["assignee"]) == ("dept_user", "vendor_engineer")
        assert fetched["definition_version"] == incident["definition_version"]

    def test_pagination(self, api, world):
        ids = [api.create(title=f"Request {i}")["id"] for i in range(5)]
        page = api.get("/requests?per_page=2").get_json()
        assert (page["total"], page["pages"], page["per_page"], page["page"]) == (5, 3, 2, 1)
        assert [i["id"] for i in page["items"]] == ids[::-1][:2]  # newest first
        last = api.get("/requests?per_page=2&page=3").get_json()
        assert [i["id"] for i in last["items"]] == [ids[0]]
        beyond = api.get("/requests?per_page=2&page=4").get_json()
        assert beyond["items"] == [] and beyond["total"] == 5
        ascending = api.get("/requests?sort=id&per_page=200").get_json()
        assert [i["id"] for i in ascending["items"]] == ids
        default = api.get("/requests").get_json()
        assert (default["per_page"], default["pages"]) == (25, 1)
        # Summaries do not carry per-actor events.
        assert "available_events" not in default["items"][0]

    def test_empty_list(self, api, world):
        page = api.get("/requests").get_json()
        assert page == {
            "items": [],
            "page": 1,
            "per_page": 25,
            "total": 0,
            "total_exact": True,
            "pages": 0,
        }

    def test_filters(self, api, world):
        first = api.create(title="Plain one")
        api.fire_ok(first, "submit", "dept_user")
        api.create(title="Plain two")
        incident = api.create("incident", title="Printer down")
        other = api.create(
            user="it_staff", contract=world.other_contract, title="Other contract", system_id=None
        )

        def ids(query, user="it_staff"):
            body = api.get(f"/requests?{query}", user=user).get_json()
            assert body["total"] == len(body["items"])
            return sorted(i["id"] for i in body["items"])

        assert ids("kind=incident") == [incident["id"]]
        assert len(ids("kind=requirement")) == 3
        assert ids("state=submitted") == [first["id"]]
        assert ids("kind=incident&state=submitted") == []
        assert ids(f"contract_id={world.other_contract.id}") == [other["id"]]
        assert len(ids(f"contract_id={world.contract.id}")) == 3
        assert ids("q=printer") == [incident["id"]]  # case-insensitive title search
        # dept_user of cardiology does not see the request it_staff raised elsewhere.
        assert ids(f"contract_id={world.other_contract.id}", user="dept_user") == []

    def test_title_search_takes_percent_and_underscore_literally(self, api, world):
        percent = api.create(title="Report is 100% wrong")
        underscore = api.create(title="Field patient_id missing")
        decoy = api.create(title="Field patientXid and 1000 wrong")
        backslash = api.create(title=r"Path C:\temp broken")

        def ids(q):
            response = api.get("/requests", query_string={"q": q})
            assert response.status_code == 200
            return sorted(i["id"] for i in response.get_json()["items"])

        assert ids("%") == [percent["id"]]
        assert ids("0%") == [percent["id"]]
        assert ids("_") == [underscore["id"]]
        assert ids("t_i") == [underscore["id"]]
        assert ids("\\") == [backslash["id"]]
        assert ids("patient") == sorted([underscore["id"], decoy["id"]])
        assert ids("%%") == []
        # The pattern is written into the SQL as a quoted literal (see title_contains).
        quoted = api.create(title="Dr O'Brien's ward printer")
        assert ids("O'Brien's") == [quoted["id"]]
        assert ids("'; DROP TABLE requests; --") == []
        assert ids("printer") == [quoted["id"]]

    def test_title_search_finds_chinese_words_of_any_length(self, api, world):
        ward = api.create(title="心内科住院结算打印异常")
        other = api.create(title="检验报告无法打开")

        def ids(q):
            return sorted(
                i["id"] for i in api.get("/requests", query_string={"q": q}).get_json()["items"]
            )

        assert ids("住院结算") == [ward["id"]]  # trigram-indexed (three characters or more)
        assert ids("结算") == [ward["id"]]  # shorter needles are scanned, with the same result
        assert ids("报") == [other["id"]]
        assert ids("住院报告") == []

    def test_totals_are_counted_up_to_the_limit(self, api, world, monkeypatch):
        from workflow import queries

        monkeypatch.setattr(queries, "COUNT_LIMIT", 3)
        for n in range(5):
            api.create(title=f"Counted {n}")
        first = api.get("/requests?per_page=2").get_json()
        assert (first["total"], first["total_exact"], first["pages"]) == (3, False, 2)
        # Past the counted part, paging goes on while pages are full.
        third = api.get("/requests?per_page=2&page=3").get_json()
        assert len(third["items"]) == 1 and third["pages"] == 2
        second = api.get("/requests?per_page=2&page=2").get_json()
        assert len(second["items"]) == 2 and second["pages"] == 3
        exact = api.get("/requests?per_page=2&q=Counted 4").get_json()
        assert (exact["total"], exact["total_exact"], exact["pages"]) == (1, True, 1)

    @pytest.mark.parametrize("sort", ["-id", "id", "title", "-title", "created_at", "-updated_at"])
    def test_a_search_pages_as_any_list_does(self, api, world, monkeypatch, sort):
        """A search with no more matches than are counted is paged from the one pass that
        counts them; it must give the very pages the general path gives."""
        from workflow import queries

        for n, title in enumerate(["Paged b", "Paged a", "Paged c", "Paged a", "Paged d"]):
            api.create(title=f"{title} {n % 2}")
        api.create(title="Not a match")

        def pages():
            found = []
            for page in (1, 2, 3, 4):
                body = api.get(f"/requests?q=Paged&per_page=2&page={page}&sort={sort}").get_json()
                found.append(([i["id"] for i in body["items"]], body["total"], body["pages"]))
            return found

        # Sorted by id, a walk in id order would serve both sides (the test above compares it).
        monkeypatch.setattr(queries, "_search_in_id_order", lambda *args: None)
        one_pass = pages()
        monkeypatch.setattr(queries, "_search_page", lambda *args: (None, None))
        assert one_pass == pages()
        assert [len(ids) for ids, _total, _pages in one_pass] == [2, 2, 1, 0]
        assert {(total, count) for _ids, total, count in one_pass} == {(5, 3)}

    def test_a_search_with_more_matches_than_counted_is_paged_as_any_list(
        self, app, api, world, monkeypatch
    ):
        from sqlalchemy import event

        from workflow import queries

        monkeypatch.setattr(queries, "COUNT_LIMIT", 3)
        created = [api.create(title=f"Many {n}")["id"] for n in range(5)]
        counting = []

        def record(_conn, _cursor, statement, *_args):
            if "count(*)" in statement.lower():
                counting.append(statement)

        engine = app.extensions["changeflow.engine"]
        event.listen(engine, "before_cursor_execute", record)
        try:
            body = api.get("/requests?q=Many&per_page=2").get_json()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert (body["total"], body["total_exact"], body["pages"]) == (3, False, 2)
        assert [i["id"] for i in body["items"]] == sorted(created, reverse=True)[:2]
        # The search's own pass found more matches than are counted: nobody counts them again.
        assert len(counting) == 1, counting
        nothing = api.get("/requests?q=Nowhere&per_page=2").get_json()
        assert (nothing["items"], nothing["total"], nothing["total_exact"]) == ([], 0, True)

    @pytest.mark.parametrize("count_limit", [1000, 3])
    @pytest.mark.parametrize(
        "user, query",
        [
            ("dept_user", ""),  # a department user's own department: counted from titles
            ("it_staff", "&department_id={cardiology}"),  # anyone's department filter
            ("dept_user", "&kind=requirement"),  # a narrower list: every match checked
            ("vendor_engineer", "&department_id={cardiology}"),  # a narrower scope
            ("vendor_engineer", ""),  # not confined: SQLite's walk only
            ("it_staff", ""),
        ],
    )
    @pytest.mark.parametrize("sort", ["-id", "id"])
    def test_a_search_in_id_order_pages_as_any_list_does(
        self, api, world, monkeypatch, engine, user, query, sort, count_limit
    ):
        """A search sorted by id walks a title index in id order (SQLite's FTS5 table, or on
        PostgreSQL a department's titles); it must give the very pages, totals and scope the
        general path gives."""
        from workflow import queries

        monkeypatch.setattr(queries, "COUNT_LIMIT", count_limit)
        served = _served_alike(api, world, monkeypatch, "_search_in_id_order", user, query, sort)
        departments = user == "dept_user" or "department_id" in query
        if engine.dialect.name == "postgresql":
            assert any(served) == departments
        else:
            assert any(served) == (departments or "kind" not in query)

    @pytest.mark.parametrize("count_limit", [1000, 3])
    @pytest.mark.parametrize(
        "user, query, alone",
        [
            ("it_staff", "", True),  # every request: the title table alone
            ("auditor", "", True),
            ("vendor_engineer", "", True),  # its contracts, read from the title table
            ("dept_user", "", True),  # its department, likewise
            ("it_staff", "&kind=requirement", False),  # a filter narrows the list
            ("vendor_engineer", "&department_id={cardiology}", False),
        ],
    )
    @pytest.mark.parametrize("sort", ["-id", "id", "-created_at"])
    def test_a_search_read_from_the_titles_alone_pages_as_the_requests_do(
        self, api, world, monkeypatch, engine, user, query, alone, sort, count_limit
    ):
        """PostgreSQL reads the matches of a search that only its title and the actor's scope
        select from the title table, scope included, without joining the requests; it must
        give the very pages and totals the join gives, and serve no narrower list."""
        from workflow import queries

        monkeypatch.setattr(queries, "COUNT_LIMIT", count_limit)
        monkeypatch.setattr(queries, "_search_in_id_order", lambda *args: None)
        served = _served_alike(api, world, monkeypatch, "_titles_alone", user, query, sort)
        expected = alone and sort != "-created_at" and engine.dialect.name == "postgresql"
        assert any(served) == expected

    def test_a_title_table_that_disagrees_shows_nothing_out_of_scope(self, api, db, world, pg_only):
        """The walk trusts the title table's department only for the count: every request it
        shows meets the list's own conditions, or the general path answers instead."""
        from sqlalchemy import text

        mine = api.create(title="Infusion pump alarm")["id"]
        theirs = api.create(title="Infusion pump alarm", user="other_dept_user")["id"]
        db.execute(
            text("UPDATE requests_title_search SET department_id = :d WHERE request_id = :r"),
            {"d": world.departments["cardiology"].id, "r": theirs},
        )
        db.commit()
        body = api.get("/requests?q=Infusion").get_json()
        assert [i["id"] for i in body["items"]] == [mine]
        # The same for a vendor's scope, read from the title table's contract.
        vendor_b = api.create(
            title="Infusion pump of vendor B", contract=world.other_contract, system_id=None
        )["id"]
        db.execute(
            text("UPDATE requests_title_search SET contract_id = :c WHERE request_id = :r"),
            {"c": world.contract.id, "r": vendor_b},
        )
        db.commit()
        body = api.get("/requests?q=Infusion", user="vendor_engineer").get_json()
        assert vendor_b not in [i["id"] for i in body["items"]]
        assert body["items"], "the vendor's own matches are still shown"

    def test_a_search_follows_title_and_department_changes_and_the_users_scope(
        self, api, db, world
    ):
        from sqlalchemy import update

        from models import Request
        from workflow.scope import scope_departments

        cardiology, lab = world.departments["cardiology"].id, world.departments["lab"].id
        mine = api.create(title="Scanner jammed")["id"]
        moved = api.create(title="Scanner jammed again")["id"]
        db.execute(
            update(Request)
            .where(Request.id == moved)
            .values(department_id=lab, title="Scanner jammed in the lab")
        )
        db.commit()

        def ids(query, user):
            body = api.get(f"/requests?{query}", user=user).get_json()
            return sorted(i["id"] for i in body["items"])

        assert ids("q=Scanner", "dept_user") == [mine]
        assert ids("q=Scanner", "it_staff") == sorted([mine, moved])
        assert ids(f"q=Scanner&department_id={lab}", "it_staff") == [moved]
        assert ids(f"q=Scanner&department_id={cardiology}", "it_staff") == [mine]
        assert ids("q=in the lab", "it_staff") == [moved]
        assert ids("q=again", "it_staff") == []
        assert scope_departments(world.users["dept_user"]) == {cardiology}
        assert scope_departments(world.users["it_staff"]) is None
        assert ids("q=Scanner", "vendor_engineer") == sorted([mine, moved])
        db.execute(
            update(Request).where(Request.id == moved).values(contract_id=world.other_contract.id)
        )
        db.commit()
        assert ids("q=Scanner", "vendor_engineer") == [mine]
        assert ids("q=Scanner", "other_vendor") == [moved]

    def test_title_search_is_served_by_the_trigram_index(self, engine):
        from sqlalchemy import text

        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                plan = conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT rowid FROM requests_title_fts "
                        "WHERE title LIKE '%住院结算%'"
                    )
                ).all()
                assert any("VIRTUAL TABLE INDEX 0:L" in row[-1] for row in plan), plan
            else:
                conn.execute(text("SET LOCAL enable_seqscan = off"))
                plan = conn.execute(
                    text(
                        "EXPLAIN SELECT request_id FROM requests_title_search "
                        "WHERE title ILIKE '%住院结算%'"
                    )
                ).scalars()
                assert any("requests_title_search_trgm" in line for line in plan)

    def test_history_chains_hashes(self, api, submitted):
        api.fire_ok(submitted, "triage", "it_staff", {"priority": "low"})
        response = api.get(f"/requests/{submitted['id']}/history")
        assert response.status_code == 200
        history = response.get_json()
        entries = history["entries"]
        assert history["request_id"] == submitted["id"]
        assert [e["event"] for e in entries] == ["create", "submit", "triage"]
        assert [e["seq"] for e in entries] == [1, 2, 3]
        assert [e["actor"] for e in entries] == ["dept_user", "dept_user", "it_staff"]
        assert entries[0]["from_state"] is None and entries[0]["to_state"] == "draft"
        assert (entries[2]["from_state"], entries[2]["to_state"]) == ("submitted", "triaged")
        assert entries[2]["fields"] == {"priority": "low"}
        assert entries[0]["prev_hash"] == GENESIS
        for previous, entry in zip(entries, entries[1:], strict=False):
            assert entry["prev_hash"] == previous["entry_hash"]
        assert len({e["entry_hash"] for e in entries}) == 3
        assert history["head_hash"] == entries[-1]["entry_hash"]

    def test_refused_fire_adds_no_history(self, api, submitted):
        api.fire(submitted, "triage", "it_staff", {"priority": "urgent"})
        api.fire(submitted, "triage", "vendor_engineer", {"priority": "high"})
        api.fire(dict(submitted, version=1), "triage", "it_staff", {"priority": "high"})
        entries = api.get(f"/requests/{submitted['id']}/history").get_json()["entries"]
        assert [e["event"] for e in entries] == ["create", "submit"]

    def test_auditor_reads_everything_but_fires_nothing(self, api, submitted):
        assert api.get(f"/requests/{submitted['id']}", user="auditor").status_code == 200
        assert api.get("/requests", user="auditor").get_json()["total"] == 1
        response = api.fire(submitted, "triage", "auditor", {"priority": "high"})
        assert_error(response, 403, "forbidden")


# ---------------------------------------------------------------- definitions and OpenAPI


class TestDefinitionsAndOpenApi:
    def test_list_definitions(self, api, world):
        body = api.get("/definitions").get_json()
        keys = {d["key"] for d in body}
        assert keys >= {"requirement", "upgrade", "schema_change", "incident"}
        for d in body:
            assert len(d["version"]) == 64 and d["initial"] in d["states"]

    def test_one_definition_with_mermaid(self, api, world):
        response = api.get("/definitions/requirement")
        assert response.status_code == 200
        body = response.get_json()
        assert body["key"] == "requirement"
        assert body["mermaid"].startswith("stateDiagram-v2")
        assert "draft --> submitted : submit" in body["mermaid"]
        assert body["content"]["initial"] == "draft"
        assert set(body["content"]["states"]) == set(body["states"])

    def test_unknown_definition_is_404(self, api, world):
        assert_error(api.get("/definitions/nope"), 404, "not_found")

    def test_openapi_lists_every_path_with_schemas(self, client):
        response = client.get(f"{API}/openapi.json")
        assert response.status_code == 200
        doc = response.get_json()
        assert doc["openapi"].startswith("3.")
        expected = {
            "/me",
            "/definitions",
            "/definitions/{key}",
            "/contracts",
            "/systems",
            "/requests",
            "/requests/{request_id}",
            "/requests/{request_id}/events/{event}",
            "/requests/{request_id}/history",
            "/requests/{request_id}/attachments",
            "/attachments/{attachment_id}",
        }
        assert expected <= set(doc["paths"]), expected - set(doc["paths"])
        assert set(doc["paths"]["/requests"]) >= {"get", "post"}
        schemas = doc["components"]["schemas"]
        for name in ("ErrorOut", "RequestOut", "RequestCreateIn", "EventIn", "HistoryOut"):
            assert name in schemas
        assert "version" in schemas["EventIn"]["properties"]
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        # Every $ref points at a schema that exists.
        text = json.dumps(doc)
        for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
            assert ref in schemas, ref


# ---------------------------------------------------------------- attachments


class TestAttachments:
    def test_upload_and_download(self, api, draft, app):
        content = b"%PDF-1.4 test report\n" + bytes(range(256))
        response = api.upload(draft, content)
        assert response.status_code == 201, response.get_json()
        meta = response.get_json()
        assert meta["sha256"] == hashlib.sha256(content).hexdigest()
        assert (meta["filename"], meta["kind"], meta["size"]) == (
            "report.pdf",
            "test_report",
            len(content),
        )
        assert meta["uploaded_by"] == "dept_user"
        # The request moved on and lists the document.
        request = api.get(f"/requests/{draft['id']}").get_json()
        assert request["version"] == draft["version"] + 1
        assert [a["id"] for a in request["attachments"]] == [meta["id"]]

        download = api.get(f"/attachments/{meta['id']}")
        assert download.status_code == 200
        assert download.data == content
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert "report.pdf" in download.headers["Content-Disposition"]
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        # The vendor of the contract may read it too.
        assert api.get(f"/attachments/{meta['id']}", user="vendor_engineer").data == content

    def test_upload_is_recorded_in_history(self, api, draft):
        meta = api.upload(draft, b"%PDF-1.4 bytes").get_json()
        entries = api.get(f"/requests/{draft['id']}/history").get_json()["entries"]
        assert entries[-1]["event"] == "attach"
        assert entries[-1]["fields"]["sha256"] == meta["sha256"]
        assert entries[-1]["prev_hash"] == entries[-2]["entry_hash"]

    def test_too_large_is_413_and_nothing_is_kept(self, api, draft, app):
        limit = app.config["MAX_UPLOAD_BYTES"]
        assert limit == 2 * MB
        response = api.upload(draft, b"\0" * (limit + 1), name="big.bin")
        assert_error(response, 413, "too_large")
        storage = Path(app.config["ATTACHMENTS_DIR"])
        assert not storage.exists() or not [p for p in storage.rglob("*") if p.is_file()]
        request = api.get(f"/requests/{draft['id']}").get_json()
        assert request["version"] == draft["version"] and request["attachments"] == []

    def test_body_beyond_the_request_limit_is_413(self, api, draft, app):
        response = api.upload(draft, b"\0" * (app.config["MAX_UPLOAD_BYTES"] + 2 * MB))
        assert_error(response, 413)

    def test_exactly_the_limit_is_accepted(self, api, draft, app):
        content = b"%PDF-" + b"\1" * (app.config["MAX_UPLOAD_BYTES"] - 5)
        response = api.upload(draft, content, name="max.pdf")
        assert response.status_code == 201, response.get_json()

    @pytest.mark.parametrize(
        "name",
        [
            "../../etc/passwd.txt",
            "..\\..\\windows\\win.ini.txt",
            "/etc/passwd.txt",
            "a/../../b.txt",
        ],
    )
    def test_path_in_file_name_is_stored_safely(self, api, draft, app, tmp_path, name):
        content = b"root:x:0:0\n" + name.encode()
        response = api.upload(draft, content, name=name)
        assert response.status_code == 201, response.get_json()
        meta = response.get_json()
        assert "/" not in meta["filename"] and "\\" not in meta["filename"]
        assert ".." not in meta["filename"]
        storage = Path(app.config["ATTACHMENTS_DIR"]).resolve()
        files = [p.resolve() for p in storage.rglob("*") if p.is_file()]
        assert files == [storage / meta["sha256"][:2] / meta["sha256"]]
        assert files[0].read_bytes() == content
        # Nothing escaped the storage folder.
        outside = [
            p
            for p in tmp_path.rglob("*")
            if p.is_file()
            and storage not in p.resolve().parents
            and p.name in ("passwd", "passwd.txt", "win.ini.txt", "b.txt")
        ]
        assert outside == []
        download = api.get(f"/attachments/{meta['id']}")
        assert download.data == content
        assert "/" not in download.headers["Content-Disposition"]

    def test_altered_file_is_withheld(self, api, draft, app):
        meta = api.upload(draft, b"%PDF-1.4 original bytes").get_json()
        blob = Path(app.config["ATTACHMENTS_DIR"]) / meta["sha256"][:2] / meta["sha256"]
        blob.write_bytes(b"tampered bytes")
        error = assert_error(api.get(f"/attachments/{meta['id']}"), 409, "integrity_failed")
        assert error["details"]["attachment_id"] == meta["id"]

    def test_deleted_file_is_withheld(self, api, draft, app):
        meta = api.upload(draft, b"%PDF-1.4 original bytes").get_json()
        (Path(app.config["ATTACHMENTS_DIR"]) / meta["sha256"][:2] / meta["sha256"]).unlink()
        assert_error(api.get(f"/attachments/{meta['id']}"), 409, "integrity_failed")

    @pytest.mark.parametrize("outsider", ["other_dept_user", "other_vendor"])
    def test_out_of_scope_download_and_upload_is_404(self, api, draft, outsider):
        meta = api.upload(draft, b"%PDF-1.4 private").get_json()
        assert_error(api.get(f"/attachments/{meta['id']}", user=outsider), 404, "not_found")
        response = api.upload(draft, b"intrusion", user=outsider)
        assert_error(response, 404, "not_found")

    def test_missing_attachment_is_404(self, api, world):
        assert_error(api.get("/attachments/424242"), 404, "not_found")

    def test_admin_may_not_attach(self, api, draft):
        assert_error(api.upload(draft, b"x", user="sys_admin"), 404, "not_found")


def _served_alike(api, world, monkeypatch, path: str, user: str, query: str, sort: str) -> list:
    """Make titles for a search, page it (2 a page) with ``workflow.queries.<path>`` and with
    that path turned off, and assert both give the same pages and totals; returns, per call of
    the path, whether it served the list."""
    from workflow import queries

    cardiology = world.departments["cardiology"].id
    for n in range(4):
        api.create(title=f"Ward scanner {n}")
    api.create("incident", title="WARD SCANNER DOWN")  # case folds alike on every path
    api.create(title="Ward scanner in the lab", user="other_dept_user")
    api.create(title="Ward scanner of vendor B", contract=world.other_contract, system_id=None)
    api.create(title="Not a match")
    served = []
    serve = getattr(queries, path)

    def spy(*args):
        result = serve(*args)
        served.append(result is not None)
        return result

    def pages():
        found = []
        for page in (1, 2, 3, 4):
            url = f"/requests?q=scanner&per_page=2&page={page}&sort={sort}"
            body = api.get(url + query.format(cardiology=cardiology), user=user).get_json()
            found.append(([i["id"] for i in body["items"]], body["total"], body["total_exact"]))
        return found

    monkeypatch.setattr(queries, path, spy)
    through_path = pages()
    monkeypatch.setattr(queries, path, lambda *args: None)
    assert through_path == pages()
    assert through_path[0][0], "the search found nothing to compare"
    return served
