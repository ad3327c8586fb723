"""Browser sign-in: argon2id passwords, lockout, demo accounts, CSRF, fresh sessions, timeouts."""

from __future__ import annotations

import re
import time

import pytest
from conftest import PASSWORD
from sqlalchemy import select

from models import User
from workflow.accounts import MAX_FAILED_SIGN_INS

TOKEN = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


def csrf_token(client, path="/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = TOKEN.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def sign_in(client, username, password=PASSWORD, **extra):
    data = {"username": username, "password": password, "csrf_token": csrf_token(client), **extra}
    return client.post("/login", data=data)


def reload_user(app, username) -> User:
    from sqlalchemy.orm import sessionmaker

    with sessionmaker(app.extensions["changeflow.engine"])() as s:
        return s.scalar(select(User).where(User.username == username))


def test_login_page_has_a_form_with_a_csrf_token(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "csrf_token" in response.get_data(as_text=True)


def test_right_password_signs_in_with_safe_cookie_flags(client, world):
    response = sign_in(client, "it_staff")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.get_json()["username"] == "it_staff"


def test_wrong_password_and_unknown_user_get_the_same_message(client, world, app):
    wrong = sign_in(client, "it_staff", "not the password").get_data(as_text=True)
    unknown = sign_in(client, "nobody_here", "not the password").get_data(as_text=True)
    message = "用户名或密码错误"
    assert message in wrong and message in unknown
    assert client.get("/api/v1/me").status_code == 401
    assert reload_user(app, "it_staff").failed_logins == 1


def test_repeated_failures_lock_the_account(client, world, app):
    for _ in range(MAX_FAILED_SIGN_INS):
        sign_in(client, "it_signer", "wrong wrong wrong")
    assert reload_user(app, "it_signer").locked_at is not None
    response = sign_in(client, "it_signer")  # now even the right password is refused
    assert response.status_code == 200 and "锁定" in response.get_data(as_text=True)
    assert client.get("/api/v1/me").status_code == 401


def test_a_success_resets_the_failure_count(client, world, app):
    sign_in(client, "it_dba", "wrong wrong wrong")
    assert sign_in(client, "it_dba").status_code == 302
    assert reload_user(app, "it_dba").failed_logins == 0


@pytest.mark.parametrize("demo_mode, signs_in", [(False, False), (True, True)])
def test_demo_accounts_only_sign_in_in_demo_mode(client, world, app, db, demo_mode, signs_in):
    db.get(User, world.users["auditor"].id).is_demo = True
    db.commit()
    app.config["DEMO_MODE"] = demo_mode
    response = sign_in(client, "auditor")
    assert (response.status_code == 302) is signs_in


def test_missing_csrf_token_is_refused_and_changes_nothing(client, world, app):
    response = client.post("/login", data={"username": "it_staff", "password": "wrong wrong"})
    assert response.status_code == 400
    assert "请求无效" in response.get_data(as_text=True)
    assert reload_user(app, "it_staff").failed_logins == 0


def test_sign_in_starts_a_new_session(client, world):
    with client.session_transaction() as sess:
        sess["planted"] = "by someone else"
    sign_in(client, "it_staff")
    with client.session_transaction() as sess:
        assert "planted" not in sess


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
def test_next_never_leaves_the_site(client, world, target):
    response = sign_in(client, "it_staff", next=target)
    assert response.headers["Location"] == "/"


def test_next_returns_to_a_local_page(client, world):
    response = sign_in(client, "it_staff", next="/api/v1/me")
    assert response.headers["Location"] == "/api/v1/me"


def test_sign_out_ends_the_session(client, world):
    sign_in(client, "it_staff")
    token = csrf_token(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert client.get("/api/v1/me").status_code == 401


def test_idle_session_expires(client, world, app):
    sign_in(client, "it_staff")
    with client.session_transaction() as sess:
        sess["last_seen"] = time.time() - app.config["IDLE_TIMEOUT_MINUTES"] * 60 - 5
    assert client.get("/api/v1/me").status_code == 401


def test_cookie_api_writes_need_the_csrf_token(client, world):
    sign_in(client, "dept_user")
    body = {
        "kind": "requirement",
        "contract_id": world.contract.id,
        "title": "t",
        "fields": {"req_type": "bug", "module": "m"},
    }
    refused = client.post("/api/v1/requests", json=body)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    accepted = client.post(
        "/api/v1/requests", json=body, headers={"X-CSRFToken": csrf_token(client, "/")}
    )
    assert accepted.status_code == 201


def test_bearer_api_writes_need_no_csrf_token(client, world):
    body = {
        "kind": "requirement",
        "contract_id": world.contract.id,
        "title": "t",
        "fields": {"req_type": "bug", "module": "m"},
    }
    response = client.post("/api/v1/requests", json=body, headers=world.auth("dept_user"))
    assert response.status_code == 201


def test_unknown_page_says_so_in_plain_words(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    text = response.get_data(as_text=True)
    assert "找不到页面" in text and "不在您的查看范围内" in text
