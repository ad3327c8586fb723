"""Web pages by role: who reaches which page, what each role sees on the list, dashboard and
export, the dashboard's sections, the language switch, Beijing time, the Excel export, the
security administrator's locks, the auditor's chain check and the list filters."""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from conftest import ROLE_SCOPES
from openpyxl import load_workbook
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker
from test_signin import csrf_token, reload_user, sign_in

from models import Attachment, Contract, HistoryEntry, Request
from tests.helpers import PATHS, Flow, creation_fields, estimate_input
from web.pages import hospital_today
from workflow.attachments import add_attachment
from workflow.engine import create_request, fire

CATALOGUE = (
    Path(__file__).resolve().parent.parent
    / "web"
    / "translations"
    / "zh_Hans_CN"
    / "LC_MESSAGES"
    / "messages.po"
)

MINE_TITLE = "心内科随访满意度报表甲"  # cardiology, contract C-A (vendor_a)
OTHER_TITLE = "检验科危急值接口乙"  # lab, contract C-B (vendor_b)
MINE_DOC = b"%PDF-1.4 cardiology requirement document"
OTHER_DOC = b"%PDF-1.4 lab requirement document"


# ----------------------------------------------------------------- helpers


def zh(msgid: str) -> str:
    """The Chinese of an English message, as the catalogue gives it."""
    with CATALOGUE.open("rb") as handle:
        for message in read_po(handle):
            if message.id == msgid:
                assert message.string, f"catalogue has no Chinese for {msgid!r}"
                return message.string
    raise AssertionError(f"catalogue has no message {msgid!r}")


def page_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def section(page: str, section_id: str) -> str:
    """The inner HTML of ``<section … id="section_id">``; fails when it is not there."""
    match = re.search(rf'<section[^>]*\bid="{section_id}"[^>]*>(.*?)</section>', page, re.S)
    assert match, f'no section id="{section_id}" on the page'
    return match.group(1)


def rows(fragment: str) -> list[list[str]]:
    """Table rows as lists of cell texts (tags stripped, entities decoded)."""
    found = []
    for row in re.findall(r"<tr\b[^>]*>(.*?)</tr>", fragment, re.S):
        cells = re.findall(r"<td\b[^>]*>(.*?)</td>", row, re.S)
        if cells:
            found.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return found


def row_titled(fragment: str, title: str) -> list[str] | None:
    """The table row whose second cell (the title) is ``title``."""
    matches = [r for r in rows(fragment) if len(r) > 1 and r[1] == title]
    assert len(matches) <= 1, f"{title!r} is listed {len(matches)} times"
    return matches[0] if matches else None


def linked_titles(page: str) -> list[str]:
    """Titles of the request links of a list page, in page order."""
    return [
        html.unescape(t) for t in re.findall(r'<td><a href="/requests/\d+">([^<]*)</a></td>', page)
    ]


def flashes(page: str) -> list[tuple[str, str]]:
    """(category, text) of every flashed message on the page."""
    return [
        (category, html.unescape(text).strip())
        for category, text in re.findall(
            r'<div class="flash ([^"]*)" role="status">(.*?)</div>', page, re.S
        )
    ]


def workbook_rows(response) -> list[tuple]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    return list(sheet.iter_rows(values_only=True))


def exported_titles(client, query: str = "") -> list[str]:
    data = workbook_rows(client.get(f"/requests/export.xlsx{query}"))
    assert data and data[0][1] == zh("Title"), data[:1]
    return [row[1] for row in data[1:]]


def sign_out(client) -> None:
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302


def signed_in_as(client, username: str):
    response = sign_in(client, username)
    assert response.status_code == 302, f"{username} could not sign in"
    return client


def count_entries(app) -> int:
    with sessionmaker(app.extensions["changeflow.engine"])() as s:
        return s.scalar(select(func.count()).select_from(HistoryEntry))


def new_request(db, catalog, world, user, title, **options) -> Request:
    """A requirement (unless ``kind`` says otherwise) created through the engine."""
    kind = options.pop("kind", "requirement")
    options.setdefault("contract_id", world.contract.id)
    options.setdefault("department_id", world.departments["cardiology"].id)
    options.setdefault("fields", creation_fields(kind))
    return create_request(db, catalog, world.users[user], kind=kind, title=title, **options)


# ----------------------------------------------------------------- the two requests


@dataclass
class Pair:
    mine: Request  # cardiology, under world.contract (vendor_a), raised by dept_user
    other: Request  # lab, under world.other_contract (vendor_b), raised by other_dept_user
    mine_doc: Attachment
    other_doc: Attachment

    def ids(self) -> dict:
        return {
            "mine": self.mine.id,
            "other": self.other.id,
            "mine_doc": self.mine_doc.id,
            "other_doc": self.other_doc.id,
        }


@pytest.fixture
def pair(app, db, catalog, world) -> Pair:
    mine = new_request(
        db, catalog, world, "dept_user", MINE_TITLE, fields={"req_type": "report", "module": "随访"}
    )
    other = new_request(
        db,
        catalog,
        world,
        "other_dept_user",
        OTHER_TITLE,
        contract_id=world.other_contract.id,
        department_id=world.departments["lab"].id,
        fields={"req_type": "interface", "module": "检验"},
    )

    def attach(request, user, content):
        return add_attachment(
            db,
            request,
            world.users[user],
            kind="requirement_document",
            filename=f"req-{request.id}.pdf",
            stream=io.BytesIO(content),
            storage_dir=app.config["ATTACHMENTS_DIR"],
            max_bytes=app.config["MAX_UPLOAD_BYTES"],
        )

    pair = Pair(
        mine,
        other,
        attach(mine, "dept_user", MINE_DOC),
        attach(other, "other_dept_user", OTHER_DOC),
    )
    db.commit()
    return pair


# ----------------------------------------------------------------- 1. the access matrix
#
# Written by hand from the rules, not read from the app:
# - not signed in: every page sends you to /login, except the public start page; the API
#   answers 401;
# - a console for the wrong role: 403;
# - a record outside your scope: 404 (the auditor reads every one);
# - sys_admin and sec_admin handle no requests (三权分立): the request list and its export are
#   refused (403) and every request is out of their scope (404);
# - the create form of a kind is for the roles that raise that kind (requirement: department
#   users and IT staff), 403 for everyone else;
# - the list and the export are for everyone else signed in (they show only what is in scope).

PAGES = {
    "dashboard": "/",
    "list": "/requests",
    "mine": "/requests/{mine}",
    "other": "/requests/{other}",
    "new": "/requests/new/requirement",
    "export": "/requests/export.xlsx",
    "users": "/admin/users",
    "contracts": "/admin/contracts",
    "audit": "/audit",
    "mine_doc": "/api/v1/attachments/{mine_doc}",
    "other_doc": "/api/v1/attachments/{other_doc}",
}
IT = ("it_staff", "it_staff2", "it_signer", "it_dba", "it_dba2")
SEES = {
    "dept_user": {"mine"},
    "other_dept_user": {"other"},
    **{name: {"mine", "other"} for name in IT},
    "vendor_engineer": {"mine"},
    "vendor_manager": {"mine"},
    "other_vendor": {"other"},
    "sys_admin": set(),
    "sec_admin": set(),
    "auditor": {"mine", "other"},
}
CONSOLES = {
    "users": {"sys_admin", "sec_admin"},
    "contracts": {"sys_admin"},
    "audit": {"auditor"},
}
ADMINS = {"sys_admin", "sec_admin", "auditor"}
NO_REQUESTS = {"sys_admin", "sec_admin"}
RAISES_REQUIREMENTS = {"dept_user", "other_dept_user", "it_staff", "it_staff2"}
TITLES = {"mine": MINE_TITLE, "other": OTHER_TITLE}


def expected_status(page: str, user: str | None) -> int:
    if user is None:
        if page == "dashboard":
            return 200  # the public start page
        return 401 if PAGES[page].startswith("/api/") else 302
    if page in CONSOLES:
        return 200 if user in CONSOLES[page] else 403
    if page in TITLES:
        return 200 if page in SEES[user] else 404
    if page.endswith("_doc"):
        return 200 if page.removesuffix("_doc") in SEES[user] else 404
    if page == "new":
        return 200 if user in RAISES_REQUIREMENTS else 403
    if page in ("list", "export"):
        return 403 if user in NO_REQUESTS else 200
    return 200


MATRIX = [
    pytest.param(page, user, expected_status(page, user), id=f"{page}-{user or 'anonymous'}")
    for page in PAGES
    for user in [*ROLE_SCOPES, None]
]


def test_the_matrix_covers_every_user():
    assert set(SEES) == set(ROLE_SCOPES)
    assert {user for _, user, _ in (p.values for p in MATRIX)} == {*ROLE_SCOPES, None}


@pytest.mark.parametrize("page, user, status", MATRIX)
def test_access_matrix(client, pair, page, user, status):
    if user is not None:
        signed_in_as(client, user)
    response = client.get(PAGES[page].format(**pair.ids()))
    assert response.status_code == status
    if status == 302:
        assert "/login" in response.headers["Location"]
    if status == 200 and page.endswith("_doc"):
        assert response.data == (MINE_DOC if page == "mine_doc" else OTHER_DOC)
    if page == "dashboard" and user is None:
        assert 'id="awaiting"' not in response.get_data(as_text=True)


# ----------------------------------------------------------------- 2. only what is in scope


@pytest.mark.parametrize("user", list(ROLE_SCOPES))
def test_list_dashboard_and_export_show_exactly_what_is_in_scope(client, pair, user):
    signed_in_as(client, user)
    may_see = {TITLES[key] for key in SEES[user]}

    if user in NO_REQUESTS:
        assert not may_see
        assert client.get("/requests").status_code == 403
        assert client.get("/requests/export.xlsx").status_code == 403
    else:
        listing = page_of(client, "/requests")
        assert set(linked_titles(listing)) == may_see
        assert {t for t in TITLES.values() if t in listing} == may_see
        assert sorted(exported_titles(client)) == sorted(may_see)

    # The three administrators' start page shows their consoles, never requests.
    dashboard = page_of(client, "/")
    on_dashboard = set() if user in ADMINS else may_see
    assert {t for t in TITLES.values() if t in dashboard} == on_dashboard


# ----------------------------------------------------------------- 3. dashboard content


def steps_for(page: str, title: str) -> list[str] | None:
    """The 'your next step' labels of a request on the dashboard's awaiting list."""
    row = row_titled(section(page, "awaiting"), title)
    return None if row is None else row[3].split("、")


def test_own_draft_waits_for_its_submitter_then_for_triage(app, client, db, world, pair):
    signed_in_as(client, "dept_user")
    steps = steps_for(page_of(client, "/"), MINE_TITLE)
    assert steps is not None and "提交" in steps
    assert steps_for(page_of(client, "/"), OTHER_TITLE) is None

    signed_in_as(client, "it_staff")
    before = steps_for(page_of(client, "/"), MINE_TITLE)
    assert before is None or "分派" not in before  # a draft is not triaged yet

    mine = db.get(Request, pair.mine.id)
    fire(db, mine, "submit", world.users["dept_user"], {}, mine.version)
    db.commit()

    steps = steps_for(page_of(client, "/"), MINE_TITLE)
    assert steps is not None and "分派" in steps
    awaiting = section(page_of(client, "/"), "awaiting")
    assert "二次开发需求 · 已提交: <strong>1</strong>" in awaiting

    signed_in_as(client, "dept_user")
    steps = steps_for(page_of(client, "/"), MINE_TITLE)
    assert steps is None or "提交" not in steps  # submitted: nothing left to submit


def quota_cells(page: str, contract_code: str) -> dict | None:
    fragment = section(page, "quota")
    match = re.search(rf'<tr data-contract="{contract_code}">(.*?)</tr>', fragment, re.S)
    if match is None:
        return None
    cells = rows(f"<tr>{match.group(1)}</tr>")[0]
    return {"pool": cells[2], "committed": cells[3], "remaining": cells[4]}


def test_vendor_sees_the_free_quota_drop_once_both_sides_confirm(app, client, db, catalog, world):
    # A contract year around today, so the pool's period is the current one.
    today = hospital_today()
    contract = db.get(Contract, world.contract.id)
    contract.start_date, contract.end_date = date(today.year, 1, 1), date(today.year, 12, 31)
    db.commit()
    flow = Flow(app, db, catalog, world)

    signed_in_as(client, "vendor_engineer")
    cells = quota_cells(page_of(client, "/"), "C-A")
    assert cells == {"pool": "7 人天", "committed": "0", "remaining": "7"}
    assert quota_cells(page_of(client, "/"), "C-B") is None  # not this vendor's contract

    request = flow.create("requirement", title="额度测试需求")
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    flow.fire(request, "estimate", "vendor_engineer", estimate_input("2.5"))
    flow.fire(request, "it_confirm", "it_signer")
    db.commit()
    assert quota_cells(page_of(client, "/"), "C-A")["remaining"] == "7"  # one side only

    flow.fire(request, "vendor_confirm", "vendor_manager")
    db.commit()
    assert request.state == "confirmed"
    cells = quota_cells(page_of(client, "/"), "C-A")
    assert cells == {"pool": "7 人天", "committed": "2.5", "remaining": "4.5"}

    # The other vendor's contract keeps its whole pool, and its people never see C-A.
    signed_in_as(client, "other_vendor")
    page = page_of(client, "/")
    assert quota_cells(page, "C-B") == {"pool": "7 人天", "committed": "0", "remaining": "7"}
    assert quota_cells(page, "C-A") is None


def test_overdue_promise_shows_for_it_not_for_the_other_vendor(app, client, db, catalog, world):
    flow = Flow(app, db, catalog, world)
    today = hospital_today()
    late = flow.create("requirement", title="已逾期的开发需求")
    on_time = flow.create("requirement", title="尚未到期的开发需求")
    for request, promised in ((late, today - timedelta(days=1)), (on_time, today + timedelta(30))):
        flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
        flow.fire(
            request,
            "estimate",
            "vendor_engineer",
            {**estimate_input("1"), "promised_date": promised.isoformat()},
        )
        flow.fire(request, "it_confirm", "it_signer")
        flow.fire(request, "vendor_confirm", "vendor_manager")
        flow.fire(request, "start_development", "vendor_engineer")
        assert request.state == "in_development"
    db.commit()

    for user in ("it_staff", "vendor_engineer"):
        signed_in_as(client, user)
        overdue = section(page_of(client, "/"), "overdue")
        row = row_titled(overdue, "已逾期的开发需求")
        assert row is not None, user
        assert row[2] == "开发中" and row[3] == f"承诺交付日期: {today - timedelta(days=1)}"
        assert row_titled(overdue, "尚未到期的开发需求") is None

    signed_in_as(client, "other_vendor")
    page = page_of(client, "/")
    assert "已逾期的开发需求" not in page
    assert zh("Nothing is overdue.") in section(page, "overdue")


def test_delivered_request_is_no_longer_overdue(app, client, db, catalog, world):
    flow = Flow(app, db, catalog, world)
    request = flow.create("requirement", title="已交付的开发需求")
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    yesterday = (hospital_today() - timedelta(days=1)).isoformat()
    flow.fire(
        request, "estimate", "vendor_engineer", {**estimate_input("1"), "promised_date": yesterday}
    )
    for event, actor in (
        ("it_confirm", "it_signer"),
        ("vendor_confirm", "vendor_manager"),
        ("start_development", "vendor_engineer"),
    ):
        flow.fire(request, event, actor)
    db.commit()
    signed_in_as(client, "it_staff")
    assert row_titled(section(page_of(client, "/"), "overdue"), "已交付的开发需求") is not None
    flow.fire(request, "deliver", "vendor_engineer")
    db.commit()
    assert row_titled(section(page_of(client, "/"), "overdue"), "已交付的开发需求") is None


# ----------------------------------------------------------------- 4. language


def switch_language(client, locale, token=True, next_url="/"):
    data = {"locale": locale, "next": next_url}
    if token:
        data["csrf_token"] = csrf_token(client, "/")
    return client.post("/language", data=data)


def test_english_is_kept_on_the_user_and_survives_signing_in_again(app, client, pair):
    signed_in_as(client, "dept_user")
    page = page_of(client, "/requests")
    assert ">申请</a>" in page and '<span class="badge">草稿</span>' in page

    response = switch_language(client, "en", next_url="/requests")
    assert response.status_code == 302 and response.headers["Location"] == "/requests"
    assert reload_user(app, "dept_user").locale == "en"

    page = page_of(client, "/requests")
    assert ">Requests</a>" in page
    assert '<span class="badge">Draft</span>' in page and "草稿" not in page
    assert "Secondary development request" in page

    sign_out(client)
    signed_in_as(client, "dept_user")
    assert '<span class="badge">Draft</span>' in page_of(client, "/requests")

    # A new browser knows nothing of the old session: the choice comes from the account.
    fresh = app.test_client()
    signed_in_as(fresh, "dept_user")
    page = page_of(fresh, "/requests")
    assert ">Requests</a>" in page and '<span class="badge">Draft</span>' in page

    # Someone else is still shown Chinese.
    other = app.test_client()
    signed_in_as(other, "other_dept_user")
    assert '<span class="badge">草稿</span>' in page_of(other, "/requests")


def test_language_switch_without_csrf_token_is_refused(app, client, pair):
    signed_in_as(client, "dept_user")
    response = switch_language(client, "en", token=False)
    assert response.status_code == 400
    assert reload_user(app, "dept_user").locale != "en"
    assert ">申请</a>" in page_of(client, "/requests")


def test_unknown_locale_changes_nothing(app, client, pair):
    signed_in_as(client, "dept_user")
    before = reload_user(app, "dept_user").locale
    response = switch_language(client, "fr")
    assert response.status_code == 302
    assert reload_user(app, "dept_user").locale == before
    page = page_of(client, "/requests")
    assert ">申请</a>" in page and '<span class="badge">草稿</span>' in page


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_language_switch_never_leaves_the_site(client, world, target):
    signed_in_as(client, "dept_user")
    response = switch_language(client, "en", next_url=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


# ----------------------------------------------------------------- 5. Beijing time


def test_history_times_are_shown_in_beijing_time(client, db, catalog, world):
    request = new_request(
        db, catalog, world, "dept_user", "北京时间测试", now=datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    )
    fire(
        db,
        request,
        "submit",
        world.users["dept_user"],
        {},
        request.version,
        now=datetime(2026, 3, 1, 17, 45, 12, tzinfo=UTC),
    )
    db.commit()
    signed_in_as(client, "dept_user")

    history = section(page_of(client, f"/requests/{request.id}"), "history")
    assert "2026-03-01 08:30:00" in history
    assert "2026-03-02 01:45:12" in history  # across midnight in Beijing
    assert "00:30" not in history and "17:45" not in history

    assert "2026-03-02 01:45" in page_of(client, "/requests")
    header, *data = workbook_rows(client.get("/requests/export.xlsx"))
    row = dict(zip(header, data[0], strict=True))
    assert row[zh("Created (Beijing time)")] == "2026-03-01 08:30"
    assert row[zh("Updated (Beijing time)")] == "2026-03-02 01:45"


# ----------------------------------------------------------------- 6. export


def test_export_applies_the_filters(client, db, catalog, world, pair):
    new_request(db, catalog, world, "it_staff", "心内科随访第二张报表")
    db.commit()
    signed_in_as(client, "it_staff")
    assert sorted(exported_titles(client, "?q=随访")) == sorted(
        [MINE_TITLE, "心内科随访第二张报表"]
    )
    assert exported_titles(client, f"?contract_id={world.other_contract.id}") == [OTHER_TITLE]
    assert exported_titles(client, "?q=随访&sort=id") == [MINE_TITLE, "心内科随访第二张报表"]
    assert exported_titles(client, "?q=随访") == ["心内科随访第二张报表", MINE_TITLE]
    assert exported_titles(client, "?kind=incident") == []


@pytest.mark.parametrize("title", ["=1+2", "+1+2", "-1+2", "@SUM(A1:A2)", '=HYPERLINK("x")'])
def test_export_never_writes_a_title_as_a_formula(client, db, catalog, world, title):
    request = new_request(db, catalog, world, "dept_user", title)
    db.commit()
    signed_in_as(client, "dept_user")
    response = client.get("/requests/export.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    cells = [row[1] for row in sheet.iter_rows(min_row=2)]
    assert len(cells) == 1 and sheet.cell(2, 1).value == request.id
    assert cells[0].data_type != "f"
    assert cells[0].value == "'" + title


# ----------------------------------------------------------------- 7. sec_admin locks


def post_lock(client, user_id, locked: str, token=True):
    data = {"locked": locked}
    if token:
        data["csrf_token"] = csrf_token(client, "/admin/users")
    return client.post(f"/admin/users/{user_id}/lock", data=data)


def test_locking_stops_sign_in_and_unlocking_restores_it(app, client, world):
    dept_user = world.users["dept_user"].id
    signed_in_as(client, "sec_admin")

    response = post_lock(client, dept_user, "1")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    assert ("message", zh("Account locked.")) in flashes(page_of(client, "/admin/users"))
    assert reload_user(app, "dept_user").locked_at is not None
    outsider = app.test_client()
    assert sign_in(outsider, "dept_user").status_code == 200  # the form again, not a redirect
    assert outsider.get("/requests").status_code == 302

    response = post_lock(client, dept_user, "0")
    assert response.status_code == 302
    assert ("message", zh("Account unlocked.")) in flashes(page_of(client, "/admin/users"))
    assert reload_user(app, "dept_user").locked_at is None
    assert sign_in(app.test_client(), "dept_user").status_code == 302


def test_locked_account_loses_its_open_session(app, client, world, pair):
    signed_in_as(client, "dept_user")
    assert client.get(f"/requests/{pair.mine.id}").status_code == 200
    admin = signed_in_as(app.test_client(), "sec_admin")
    assert post_lock(admin, world.users["dept_user"].id, "1").status_code == 302
    # A locked account counts as signed out, also in a browser that signed in before.
    for path in (f"/requests/{pair.mine.id}", "/requests", "/requests/new/requirement"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path
    assert 'id="awaiting"' not in page_of(client, "/")


def test_sec_admin_cannot_lock_themself(app, client, world):
    signed_in_as(client, "sec_admin")
    response = post_lock(client, world.users["sec_admin"].id, "1")
    assert response.status_code == 302
    page = page_of(client, "/admin/users")
    assert ("error", zh("Nobody locks or unlocks their own account.")) in flashes(page)
    assert reload_user(app, "sec_admin").locked_at is None


def test_sys_admin_may_not_lock(app, client, world):
    signed_in_as(client, "sys_admin")
    assert post_lock(client, world.users["dept_user"].id, "1").status_code == 403
    assert reload_user(app, "dept_user").locked_at is None
    page = page_of(client, "/admin/users")
    assert "/lock" not in page  # the list shows no lock buttons to sys_admin


def test_lock_without_csrf_token_is_refused(app, client, world):
    signed_in_as(client, "sec_admin")
    assert post_lock(client, world.users["dept_user"].id, "1", token=False).status_code == 400
    assert reload_user(app, "dept_user").locked_at is None


# ----------------------------------------------------------------- 8. auditor


def verify(client) -> list[tuple[str, str]]:
    response = client.post("/audit/verify", data={"csrf_token": csrf_token(client, "/audit")})
    assert response.status_code == 302 and response.headers["Location"] == "/audit"
    return flashes(page_of(client, "/audit"))


def test_auditor_verifies_the_chains_and_finds_a_tampered_comment(app, client, db, world, pair):
    mine = db.get(Request, pair.mine.id)
    fire(db, mine, "submit", world.users["dept_user"], {}, mine.version, comment="请尽快处理")
    db.commit()
    signed_in_as(client, "auditor")

    ok = zh("All %(requests)s chains verified (%(entries)s entries): nothing was altered.")
    assert verify(client) == [("message", ok % {"requests": 2, "entries": count_entries(app)})]

    db.execute(
        update(HistoryEntry)
        .where(HistoryEntry.request_id == mine.id, HistoryEntry.seq == mine.version)
        .values(comment="已处理完毕")
    )
    db.commit()
    broken = zh("Chain of request #%(request)s is broken at entry %(seq)s: %(reason)s")
    prefix = broken.split("%(reason)s")[0] % {"request": mine.id, "seq": mine.version}
    messages = verify(client)
    assert len(messages) == 1
    category, text = messages[0]
    assert category == "error" and text.startswith(prefix) and len(text) > len(prefix)


def test_only_the_auditor_may_verify(client, world):
    signed_in_as(client, "sec_admin")
    token = csrf_token(client, "/")
    assert client.post("/audit/verify", data={"csrf_token": token}).status_code == 403


# ----------------------------------------------------------------- 9. list filters


@pytest.fixture
def assorted(db, catalog, world):
    """Three requests of IT staff spread over kinds, states, contracts, departments and dates."""
    cardiology, lab = world.departments["cardiology"].id, world.departments["lab"].id

    def make(title, created, **options):
        return new_request(db, catalog, world, "it_staff", title, now=created, **options)

    make("Filter R1", datetime(2026, 2, 10, 4, 0, tzinfo=UTC), department_id=cardiology)
    r2 = make(
        "Filter R2",
        datetime(2026, 3, 15, 4, 0, tzinfo=UTC),
        department_id=lab,
        contract_id=world.other_contract.id,
    )
    fire(db, r2, "submit", world.users["it_staff"], {}, 1, now=datetime(2026, 3, 16, tzinfo=UTC))
    make("Filter I1", datetime(2026, 4, 20, 4, 0, tzinfo=UTC), kind="incident", department_id=lab)
    db.commit()
    return world


ASSORTED_CASES = {
    "kind=incident": ["Filter I1"],
    "kind=requirement": ["Filter R2", "Filter R1"],
    "state=submitted": ["Filter R2"],
    "state=draft": ["Filter R1"],
    "contract_id={other_contract}": ["Filter R2"],
    "contract_id={contract}": ["Filter I1", "Filter R1"],
    "department_id={cardiology}": ["Filter R1"],
    "department_id={lab}": ["Filter I1", "Filter R2"],
    "created_from=2026-03-01": ["Filter I1", "Filter R2"],
    "created_to=2026-03-31": ["Filter R2", "Filter R1"],
    "created_from=2026-03-01&created_to=2026-03-31": ["Filter R2"],
    "created_from=2026-03-15&created_to=2026-03-15": ["Filter R2"],
    "kind=requirement&department_id={lab}": ["Filter R2"],
    "q=R2": ["Filter R2"],
    "q=filter r": ["Filter R2", "Filter R1"],
    "sort=id": ["Filter R1", "Filter R2", "Filter I1"],
    "sort=-title": ["Filter R2", "Filter R1", "Filter I1"],
    "created_from=not-a-date": ["Filter I1", "Filter R2", "Filter R1"],
}


@pytest.mark.parametrize("query, expected", list(ASSORTED_CASES.items()), ids=list(ASSORTED_CASES))
def test_list_filters(client, assorted, query, expected):
    world = assorted
    query = query.format(
        contract=world.contract.id,
        other_contract=world.other_contract.id,
        cardiology=world.departments["cardiology"].id,
        lab=world.departments["lab"].id,
    )
    signed_in_as(client, "it_staff")
    assert linked_titles(page_of(client, f"/requests?{query}")) == expected
    assert exported_titles(client, f"?{query}") == expected


def test_created_dates_are_beijing_days(client, db, catalog, world):
    # 15:30 UTC is 23:30 in Beijing on 31 March; 16:30 UTC is already 00:30 on 1 April there.
    for title, created in (
        ("Beijing 31 March", datetime(2026, 3, 31, 15, 30, tzinfo=UTC)),
        ("Beijing 1 April", datetime(2026, 3, 31, 16, 30, tzinfo=UTC)),
    ):
        new_request(db, catalog, world, "it_staff", title, now=created)
    db.commit()
    signed_in_as(client, "it_staff")
    assert linked_titles(page_of(client, "/requests?created_to=2026-03-31")) == ["Beijing 31 March"]
    assert linked_titles(page_of(client, "/requests?created_from=2026-04-01")) == [
        "Beijing 1 April"
    ]
    header, *data = workbook_rows(client.get("/requests/export.xlsx?created_to=2026-03-31"))
    created = header.index(zh("Created (Beijing time)"))
    assert [row[created] for row in data] == ["2026-03-31 23:30"]


def test_sort_by_title(client, db, catalog, world):
    for title in ("Sort B", "Sort C", "Sort A"):
        new_request(db, catalog, world, "it_staff", title)
    db.commit()
    signed_in_as(client, "it_staff")
    assert linked_titles(page_of(client, "/requests")) == ["Sort A", "Sort C", "Sort B"]
    assert linked_titles(page_of(client, "/requests?sort=title")) == ["Sort A", "Sort B", "Sort C"]
    assert linked_titles(page_of(client, "/requests?sort=-title")) == [
        "Sort C",
        "Sort B",
        "Sort A",
    ]


def test_pages_of_twenty_five(client, db, catalog, world):
    titles = [f"Item {n:02d}" for n in range(1, 31)]
    for title in titles:
        new_request(db, catalog, world, "it_staff", title)
    db.commit()
    signed_in_as(client, "it_staff")

    first = page_of(client, "/requests")
    assert linked_titles(first) == titles[::-1][:25]
    assert "<small>(30)</small>" in first
    assert zh("Page %(page)s of %(pages)s") % {"page": 1, "pages": 2} in first
    assert 'href="/requests?page=2"' in first

    second = page_of(client, "/requests?page=2")
    assert linked_titles(second) == titles[::-1][25:]
    assert zh("Page %(page)s of %(pages)s") % {"page": 2, "pages": 2} in second

    assert linked_titles(page_of(client, "/requests?sort=title&page=2")) == titles[25:]
    empty = page_of(client, "/requests?page=3")
    assert linked_titles(empty) == [] and zh("No requests match.") in empty
    # The export is never paged.
    assert exported_titles(client, "?page=2") == titles[::-1]
