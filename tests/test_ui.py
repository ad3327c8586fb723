"""Request pages: list, detail with event forms, create forms; scope and refusals change nothing."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from test_signin import csrf_token, sign_in

from models import HistoryEntry, Request
from workflow.engine import create_request


def count(app, model) -> int:
    with sessionmaker(app.extensions["changeflow.engine"])() as s:
        return s.scalar(select(func.count()).select_from(model))


def load(app, request_id) -> Request:
    with sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)() as s:
        return s.get(Request, request_id)


@pytest.fixture
def cardiology_request(db, catalog, world):
    req = create_request(
        db,
        catalog,
        world.users["dept_user"],
        kind="requirement",
        contract_id=world.contract.id,
        department_id=world.departments["cardiology"].id,
        title="随访统计报表",
        fields={"req_type": "report", "module": "统计"},
    )
    db.commit()
    return req


def post_event(client, req_id, event, version, token=None, **fields):
    data = {"version": str(version), "comment": fields.pop("comment", ""), **fields}
    if token is not False:
        data["csrf_token"] = token or csrf_token(client, f"/requests/{req_id}")
    return client.post(f"/requests/{req_id}/events/{event}", data=data)


def test_pages_need_sign_in(client, world):
    response = client.get("/requests")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_list_shows_only_what_is_in_scope(client, world, cardiology_request):
    sign_in(client, "dept_user")
    assert "随访统计报表" in client.get("/requests").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    sign_in(client, "other_dept_user")
    page = client.get("/requests").get_data(as_text=True)
    assert "随访统计报表" not in page and "没有符合条件的申请" in page


@pytest.mark.parametrize("user", ["other_dept_user", "other_vendor", "sys_admin"])
def test_out_of_scope_request_page_is_404(client, world, cardiology_request, user):
    sign_in(client, user)
    assert client.get(f"/requests/{cardiology_request.id}").status_code == 404


def test_detail_offers_my_events_and_explains_the_others(client, world, cardiology_request):
    sign_in(client, "dept_user")
    page = client.get(f"/requests/{cardiology_request.id}").get_data(as_text=True)
    assert f'action="/requests/{cardiology_request.id}/events/submit"' in page
    assert "stateDiagram-v2" in page and cardiology_request.head_hash[:16] in page
    sign_in(client, "it_staff")
    page = client.get(f"/requests/{cardiology_request.id}").get_data(as_text=True)
    assert "disabled" in page and "只有提交人本人可以执行此步骤" in page


def test_firing_from_the_form_moves_the_request(client, app, world, cardiology_request):
    sign_in(client, "dept_user")
    response = post_event(client, cardiology_request.id, "submit", 1)
    assert response.status_code == 302
    assert load(app, cardiology_request.id).state == "submitted"


def test_missing_csrf_token_changes_nothing(client, app, world, cardiology_request):
    sign_in(client, "dept_user")
    response = post_event(client, cardiology_request.id, "submit", 1, token=False)
    assert response.status_code == 400
    assert load(app, cardiology_request.id).state == "draft"


def test_invalid_field_is_shown_next_to_it_and_changes_nothing(
    client, app, world, cardiology_request
):
    sign_in(client, "dept_user")
    post_event(client, cardiology_request.id, "submit", 1)
    sign_in(client, "it_staff")
    entries = count(app, HistoryEntry)
    response = post_event(client, cardiology_request.id, "triage", 2, priority="urgent")
    assert response.status_code == 422
    assert "Must be one of" in response.get_data(as_text=True)
    assert load(app, cardiology_request.id).state == "submitted"
    assert count(app, HistoryEntry) == entries


def test_stale_version_says_reload(client, app, world, cardiology_request):
    sign_in(client, "dept_user")
    response = post_event(client, cardiology_request.id, "cancel", 7, comment="不需要了")
    assert response.status_code == 409 and "刷新" in response.get_data(as_text=True)
    assert load(app, cardiology_request.id).state == "draft"


def test_create_form_is_generated_from_the_definition(client, app, world):
    sign_in(client, "dept_user")
    page = client.get("/requests/new/requirement").get_data(as_text=True)
    assert 'name="req_type"' in page and "新功能" in page and 'name="wanted_date"' in page
    token = csrf_token(client, "/requests/new/requirement")
    data = {
        "csrf_token": token,
        "contract_id": str(world.contract.id),
        "title": "新报表",
        "req_type": "new_feature",
        "module": "报表",
    }
    response = client.post("/requests/new/requirement", data=data)
    assert response.status_code == 302
    assert count(app, Request) == 1


def test_create_form_refuses_missing_fields_and_creates_nothing(client, app, world):
    sign_in(client, "dept_user")
    token = csrf_token(client, "/requests/new/requirement")
    data = {"csrf_token": token, "contract_id": str(world.contract.id), "title": "新报表"}
    response = client.post("/requests/new/requirement", data=data)
    assert response.status_code == 422
    assert "此项必填" in response.get_data(as_text=True)
    assert count(app, Request) == 0


def test_unknown_kind_is_404(client, world):
    sign_in(client, "dept_user")
    assert client.get("/requests/new/nope").status_code == 404


def test_upload_from_the_page(client, app, world, cardiology_request):
    sign_in(client, "dept_user")
    token = csrf_token(client, f"/requests/{cardiology_request.id}")
    data = {
        "csrf_token": token,
        "kind": "screenshot",
        "version": "1",
        "file": (io.BytesIO(b"\x89PNG\r\n\x1a\n png-ish bytes"), "screen.png"),
    }
    response = client.post(
        f"/requests/{cardiology_request.id}/attachments",
        data=data,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = client.get(f"/requests/{cardiology_request.id}").get_data(as_text=True)
    assert "screen.png" in page and load(app, cardiology_request.id).version == 2


def test_stored_event_fields_show_their_labels(client, db, world, cardiology_request):
    from workflow.engine import fire

    fire(db, cardiology_request, "submit", world.users["dept_user"], {}, 1)
    fire(db, cardiology_request, "triage", world.users["it_staff"], {"priority": "high"}, 2)
    db.commit()
    sign_in(client, "dept_user")
    page = client.get(f"/requests/{cardiology_request.id}").get_data(as_text=True)
    assert "优先级" in page and "报表" in page  # event field label; choice label of req_type


def test_pages_allow_scripts_only_from_our_own_static_folder(client, world):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.get_data(as_text=True)  # no inline script to allow
