"""Schema change review in the browser's pages and the API: findings beside statements, written
waivers, diff between revisions, the review sheet, exact-bytes download, revisions API, scope."""

from __future__ import annotations

import hashlib

import pytest
from conftest import PASSWORD
from helpers import Flow, creation_fields
from sqlalchemy import select
from test_signin import csrf_token, sign_in

from models import Request

CHANGE = (
    "-- 随访备注\n"
    "ALTER TABLE patient ADD COLUMN note VARCHAR(200);\n"
    "ALTER TABLE patient DROP COLUMN old_note;\n"
)
ROLLBACK = (
    "ALTER TABLE patient ADD COLUMN old_note VARCHAR(200);\nALTER TABLE patient DROP COLUMN note;"
)


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def under_review(flow, db, change=CHANGE) -> int:
    fields = {**creation_fields("schema_change"), "change_sql": change, "rollback_sql": ROLLBACK}
    request = flow.create("schema_change", fields=fields)
    flow.fire(request, "submit_for_review", "vendor_engineer")
    request_id = request.id
    db.commit()
    db.close()
    return request_id


def version(client, request_id: int) -> int:
    return client.get(f"/api/v1/requests/{request_id}").get_json()["version"]


def post_event(client, request_id: int, event: str, form_page: str = "", **form):
    """Send an event's form as the page would: CSRF token of ``form_page``, current version."""
    page = form_page or f"/requests/{request_id}"
    data = {"csrf_token": csrf_token(client, page), "version": version(client, request_id)}
    return client.post(f"/requests/{request_id}/events/{event}", data={**data, **form})


def test_the_review_shows_each_finding_beside_its_statement(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "it_dba")
    page = client.get(f"/requests/{request_id}/review")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    statement = html.split('id="statement-2"')[1].split("</tr>")[0]
    assert 'id="finding-2-drop-column"' in statement
    assert "删除列 patient.old_note" in statement
    assert 'class="highlight"' in statement and "<span" in statement  # highlighted SQL
    first = html.split('id="statement-1"')[1].split("</tr>")[0]
    assert "finding-" not in first
    assert hashlib.sha256(CHANGE.encode()).hexdigest() in html
    assert "Waive 2-drop-column" in html or "书面豁免" in html


def test_waiving_on_the_review_page_returns_to_it(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "it_dba")
    review = f"/requests/{request_id}/review"
    response = post_event(
        client,
        request_id,
        "waive",
        review,
        finding="2-drop-column",
        reason="旧字段 2024 年起停用，已核对。",
        next=review + "#finding-2-drop-column",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(review + "#finding-2-drop-column")
    html = client.get(review).get_data(as_text=True)
    assert "旧字段 2024 年起停用，已核对。" in html
    stored = db.scalar(select(Request).where(Request.id == request_id))
    assert stored.data["waivers"]["2-drop-column"]["user"] == "it_dba"
    db.close()


def test_an_offsite_next_is_not_followed(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "it_dba")
    response = post_event(
        client,
        request_id,
        "waive",
        f"/requests/{request_id}/review",
        finding="2-drop-column",
        reason="Checked.",
        next="https://evil.example/",
    )
    assert "evil.example" not in response.headers["Location"]


def test_approval_refused_on_the_page_names_the_unwaived_finding(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "it_dba")
    response = post_event(client, request_id, "approve", password=PASSWORD)
    assert response.status_code == 422
    assert "2-drop-column" in response.get_data(as_text=True)
    assert "书面豁免" in response.get_data(as_text=True)


def test_diff_between_revisions(client, db, flow):
    fields = {**creation_fields("schema_change"), "change_sql": CHANGE, "rollback_sql": ROLLBACK}
    request = flow.create("schema_change", fields=fields)
    flow.fire(
        request,
        "revise",
        "vendor_engineer",
        {"change_sql": CHANGE.replace("VARCHAR(200)", "VARCHAR(400)")},
    )
    request_id = request.id
    db.commit()
    db.close()
    sign_in(client, "vendor_engineer")
    html = client.get(f"/requests/{request_id}/review?revision=2&diff=1").get_data(as_text=True)
    assert '<span class="del">-ALTER TABLE patient ADD COLUMN note VARCHAR(200);</span>' in html
    assert '<span class="add">+ALTER TABLE patient ADD COLUMN note VARCHAR(400);</span>' in html
    assert client.get(f"/requests/{request_id}/review?revision=9").status_code == 404
    assert client.get(f"/requests/{request_id}/review?diff=9").status_code == 404


def test_the_revise_form_starts_from_the_current_sql(client, db, flow):
    fields = {**creation_fields("schema_change"), "change_sql": CHANGE, "rollback_sql": ROLLBACK}
    request = flow.create("schema_change", fields=fields)
    request_id = request.id
    db.commit()
    db.close()
    sign_in(client, "vendor_engineer")
    html = client.get(f"/requests/{request_id}").get_data(as_text=True)
    form = html.split('id="event-revise"')[1].split("</form>")[0]
    assert "DROP COLUMN old_note" in form


def test_the_download_is_the_exact_approved_bytes(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "it_dba")
    response = client.get(f"/requests/{request_id}/revisions/1/change.sql")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response.headers["Content-Disposition"]
    assert hashlib.sha256(response.data).hexdigest() == hashlib.sha256(CHANGE.encode()).hexdigest()
    assert client.get(f"/requests/{request_id}/revisions/1/other.sql").status_code == 404


def test_the_review_sheet_carries_the_hashes_and_the_approval(client, db, flow):
    request_id = under_review(flow, db, change="ALTER TABLE patient ADD COLUMN note INT;")
    sign_in(client, "it_dba")
    post_event(client, request_id, "approve", password=PASSWORD)
    html = client.get(f"/requests/{request_id}/review/sheet").get_data(as_text=True)
    digest = hashlib.sha256(b"ALTER TABLE patient ADD COLUMN note INT;").hexdigest()
    assert f'id="sheet-change-sha256">{digest}' in html
    assert 'id="approval-intact"' in html
    assert "it_dba" in html


def test_revisions_api(client, db, flow):
    request_id = under_review(flow, db)
    sign_in(client, "vendor_engineer")
    listed = client.get(f"/api/v1/requests/{request_id}/revisions")
    assert listed.status_code == 200
    (summary,) = listed.get_json()
    assert summary["number"] == 1 and summary["risk"] == "error" and "change_sql" not in summary
    one = client.get(f"/api/v1/requests/{request_id}/revisions/1").get_json()
    assert one["change_sql"] == CHANGE
    assert [f["id"] for f in one["findings"]] == ["2-drop-column"]
    assert one["structure"][0]["table"] == "patient"
    missing = client.get(f"/api/v1/requests/{request_id}/revisions/5")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("user", ["other_vendor", "dept_user"])
def test_outsiders_see_nothing(client, db, flow, user):
    request_id = under_review(flow, db)
    sign_in(client, user)
    for path in (
        f"/requests/{request_id}/review",
        f"/requests/{request_id}/review/sheet",
        f"/requests/{request_id}/revisions/1/change.sql",
        f"/api/v1/requests/{request_id}/revisions",
        f"/api/v1/requests/{request_id}/revisions/1",
    ):
        assert client.get(path).status_code == 404, path


def test_review_pages_are_only_for_schema_changes(client, db, flow):
    request = flow.create("upgrade")
    request_id = request.id
    db.commit()
    db.close()
    sign_in(client, "vendor_engineer")
    assert client.get(f"/requests/{request_id}/review").status_code == 404
    assert client.get(f"/api/v1/requests/{request_id}/revisions").status_code == 404
