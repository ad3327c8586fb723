"""Upgrade sign-off on the pages and the API: the password typed again before signing, the
sign-off sheet, the system registry for the administrator and Z3's stale systems."""

from __future__ import annotations

import time

import pytest
from conftest import PASSWORD
from helpers import Flow
from sqlalchemy import select
from test_signin import csrf_token, sign_in

from models import Release, System


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def under_review(flow, db) -> int:
    request = flow.create("upgrade")
    flow.attach(request, "vendor_engineer", "test_report")
    flow.fire(request, "submit_for_review", "vendor_engineer")
    request_id = request.id
    db.commit()
    db.close()  # the app serves from its own session; SQLite must not see our lock
    return request_id


def sign_on_page(client, request_id: int, **form):
    page = f"/requests/{request_id}"
    data = {"csrf_token": csrf_token(client, page), "version": _version(client, request_id)}
    return client.post(f"{page}/events/sign", data={**data, **form})


def _version(client, request_id: int) -> int:
    return client.get(f"/api/v1/requests/{request_id}").get_json()["version"]


def state(db, request_id: int) -> str:
    from models import Request

    value = db.scalar(select(Request.state).where(Request.id == request_id))
    db.close()
    return value


def test_signing_on_the_page_needs_the_password_typed_again(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "it_signer")
    page = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert 'id="sign-password"' in page

    missing = sign_on_page(client, request_id)
    assert missing.status_code == 403
    assert "再次输入密码" in missing.get_data(as_text=True)
    wrong = sign_on_page(client, request_id, password="not the password")
    assert wrong.status_code == 403 and "密码错误" in wrong.get_data(as_text=True)
    assert state(db, request_id) == "under_review"

    signed = sign_on_page(client, request_id, password=PASSWORD)
    assert signed.status_code == 302
    assert state(db, request_id) == "signed"


def test_the_password_counts_for_five_minutes(client, db, flow):
    first, second = under_review(flow, db), under_review(flow, db)
    sign_in(client, "it_signer")
    assert sign_on_page(client, first, password=PASSWORD).status_code == 302
    # Within five minutes no second prompt...
    assert 'id="sign-password"' not in client.get(f"/requests/{second}").get_data(as_text=True)
    with client.session_transaction() as session:
        session["reauth_at"] = time.time() - 301  # ...after them, again.
    assert 'id="sign-password"' in client.get(f"/requests/{second}").get_data(as_text=True)
    assert sign_on_page(client, second).status_code == 403
    assert state(db, second) == "under_review"


def test_a_browser_session_cannot_sign_through_the_api_without_the_password(
    client, db, flow, world
):
    request_id = under_review(flow, db)
    sign_in(client, "it_signer")
    headers = {"X-CSRFToken": csrf_token(client, f"/requests/{request_id}")}
    body = {"version": _version(client, request_id)}
    answer = client.post(f"/api/v1/requests/{request_id}/events/sign", json=body, headers=headers)
    assert answer.status_code == 403
    assert answer.get_json()["error"]["details"] == {"reauthenticate": True}
    assert state(db, request_id) == "under_review"
    # A script with its own token is not a browser: the token is the credential.
    scripted = client.post(
        f"/api/v1/requests/{request_id}/events/sign", json=body, headers=world.auth("it_signer")
    )
    assert scripted.status_code == 200, scripted.get_json()
    assert scripted.get_json()["state"] == "signed"


def test_people_who_may_not_sign_see_no_password_prompt(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "vendor_engineer")  # the submitter
    page = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert 'id="sign-password"' not in page
    refused = sign_on_page(client, request_id, password=PASSWORD)
    assert refused.status_code == 403
    assert "再次输入密码" not in refused.get_data(as_text=True)


def test_the_signoff_sheet_shows_the_signature_and_every_hash(client, db, flow):
    request = flow.create("upgrade")
    report = flow.attach(request, "vendor_engineer", "test_report", b"%PDF-1.4 the report")
    flow.fire(request, "submit_for_review", "vendor_engineer")
    flow.fire(request, "sign", "it_signer")
    request_id, digest, sha = request.id, request.data["signature"]["digest"], report.sha256
    db.commit()
    db.close()
    sign_in(client, "vendor_manager")
    sheet = client.get(f"/requests/{request_id}/signoff").get_data(as_text=True)
    assert f'<code id="signature-digest">{digest}</code>' in sheet
    assert sha in sheet and "升级签字单" in sheet and "完好" in sheet
    assert 'id="signoff-link"' in client.get(f"/requests/{request_id}").get_data(as_text=True)
    sign_in(client, "other_vendor")
    assert client.get(f"/requests/{request_id}/signoff").status_code == 404


def test_the_signoff_sheet_of_an_unsigned_or_other_request(client, db, flow):
    upgrade = flow.create("upgrade")
    requirement = flow.create("requirement")
    ids = upgrade.id, requirement.id
    db.commit()
    db.close()
    sign_in(client, "it_signer")
    assert 'id="not-signed"' in client.get(f"/requests/{ids[0]}/signoff").get_data(as_text=True)
    assert client.get(f"/requests/{ids[1]}/signoff").status_code == 404


# ---------------------------------------------------------------- registry and Z3


def test_the_systems_api_gives_the_z3_standing_and_filters_stale(client, world, db):
    db.close()
    everything = client.get("/api/v1/systems", headers=world.auth("it_staff")).get_json()
    (system,) = everything
    assert system["status"]["newest_version"] == "1.1.0"
    assert system["status"]["behind"] is True
    assert system["status"]["stale"] is True  # the age of 1.0.0 is unknown
    stale = client.get("/api/v1/systems?stale=true", headers=world.auth("it_staff"))
    assert [s["code"] for s in stale.get_json()] == ["sys_a"]
    fresh = client.get("/api/v1/systems?stale=false", headers=world.auth("it_staff"))
    assert fresh.get_json() == []
    bad = client.get("/api/v1/systems?stale=maybe", headers=world.auth("it_staff"))
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_input"
    other = client.get("/api/v1/systems", headers=world.auth("other_vendor")).get_json()
    assert other == []


def test_stale_systems_show_on_the_it_dashboard(client, db, world):
    db.close()
    sign_in(client, "it_staff")
    page = client.get("/").get_data(as_text=True)
    assert 'id="stale-systems"' in page and 'data-system="sys_a"' in page
    sign_in(client, "dept_user")
    assert 'id="stale-systems"' not in client.get("/").get_data(as_text=True)


def test_the_administrator_registers_systems_and_releases(client, db, world):
    contract_id, system_id = world.contract.id, world.system.id
    db.close()
    sign_in(client, "sys_admin")
    token = csrf_token(client, "/admin/contracts")
    client.post(
        "/admin/systems",
        data={"csrf_token": token, "contract_id": contract_id, "code": "lis", "name": "LIS"},
    )
    client.post(
        f"/admin/systems/{system_id}/releases",
        data={"csrf_token": token, "version": "1.2.0", "released_on": "2026-11-01"},
    )
    duplicate = client.post(
        f"/admin/systems/{system_id}/releases",
        data={"csrf_token": token, "version": "1.2.0", "released_on": "2026-11-02"},
        follow_redirects=True,
    )
    assert 'class="flash error"' in duplicate.get_data(as_text=True)
    bad = client.post(
        "/admin/systems",
        data={"csrf_token": token, "contract_id": contract_id, "code": "Bad Code", "name": "x"},
        follow_redirects=True,
    )
    assert 'class="flash error"' in bad.get_data(as_text=True)
    systems = {s.code: s for s in db.scalars(select(System))}
    assert set(systems) == {"sys_a", "lis"}
    assert sorted(r.version for r in systems["sys_a"].releases) == ["1.1.0", "1.2.0"]
    db.close()

    sign_in(client, "it_signer")
    token = csrf_token(client, "/")
    refused = client.post(
        f"/admin/systems/{system_id}/releases",
        data={"csrf_token": token, "version": "9.0.0", "released_on": "2026-11-01"},
    )
    assert refused.status_code == 403
    assert db.scalar(select(Release).where(Release.version == "9.0.0")) is None
