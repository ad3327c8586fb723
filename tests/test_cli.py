"""The command line (SPEC §4): users and tokens, diagrams, the demo hospital and audit."""

from __future__ import annotations

import hashlib

import pytest
from flask.cli import FlaskGroup
from sqlalchemy import func, select, text

from models import ApiToken, Contract, User
from models.people import ROLES
from workflow.accounts import check_password

PASSWORD = "a long enough password"
DEMO_TABLES = ("users", "contracts", "requests", "history_entries")
POLICY_TEMPLATES = {
    "zhanjiang_followup",
    "wuhan_drg",
    "digital_twin",
    "qinghai_einvoice",
    "xiayi_his",
}


def create(runner, *args, password=PASSWORD):
    return runner.invoke(args=["users", "create", *args, "--password-stdin"], input=f"{password}\n")


def console(runner, app, *args):
    """Run a command the way the ``changeflow`` console script does (a FlaskGroup)."""
    group = FlaskGroup(create_app=lambda: app, add_default_commands=False)
    return runner.invoke(group, list(args))


def user_named(db, username):
    user = db.scalar(select(User).where(User.username == username))
    db.commit()  # end the read: SQLite takes its write lock at BEGIN (see web/db.py)
    return user


def counts(db) -> dict[str, int]:
    result = {t: db.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in DEMO_TABLES}
    db.commit()
    return result


# ---------------------------------------------------------------- users create


class TestUsersCreate:
    def test_creates_user_with_argon2id_hash(self, runner, db, world):
        result = create(runner, "--username", "u", "--role", "it_staff")
        assert result.exit_code == 0, result.output
        assert "created u" in result.output
        assert PASSWORD not in result.output
        user = user_named(db, "u")
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert [r.role for r in user.roles] == ["it_staff"]
        assert check_password(user, PASSWORD) is True
        assert check_password(user, PASSWORD + "x") is False

    def test_email_is_stored_for_sla_mail_and_a_bad_one_is_refused(self, runner, db, world):
        result = create(runner, "--username", "it2", "--role", "it_staff", "--email", "it@h.cn")
        assert result.exit_code == 0, result.output
        assert user_named(db, "it2").email == "it@h.cn"
        refused = create(runner, "--username", "it3", "--role", "it_staff", "--email", "not mail")
        assert refused.exit_code == 1 and "is not an email address" in refused.output
        assert user_named(db, "it3") is None

    def test_dept_user_with_department(self, runner, db, world):
        result = create(
            runner, "--username", "ward", "--role", "dept_user", "--department", "cardiology"
        )
        assert result.exit_code == 0, result.output
        user = user_named(db, "ward")
        assert [(r.role, r.department_id) for r in user.roles] == [
            ("dept_user", world.departments["cardiology"].id)
        ]

    def test_unknown_role_is_refused(self, runner, db, world):
        result = create(runner, "--username", "u", "--role", "janitor")
        assert result.exit_code != 0
        assert "Unknown role 'janitor'" in result.output
        assert user_named(db, "u") is None

    def test_dept_user_without_department_is_refused(self, runner, db, world):
        result = create(runner, "--username", "u", "--role", "dept_user")
        assert result.exit_code != 0
        assert "--department" in result.output
        assert user_named(db, "u") is None

    def test_unknown_department_is_refused(self, runner, db, world):
        result = create(runner, "--username", "u", "--role", "dept_user", "--department", "mars")
        assert result.exit_code != 0
        assert "mars" in result.output
        assert user_named(db, "u") is None

    def test_vendor_role_without_vendor_is_refused(self, runner, db, world):
        result = create(runner, "--username", "u", "--role", "vendor_engineer")
        assert result.exit_code != 0
        assert "--vendor" in result.output
        assert user_named(db, "u") is None

    def test_short_password_is_refused(self, runner, db, world):
        result = create(runner, "--username", "u", "--role", "it_staff", password="short")
        assert result.exit_code != 0
        assert "at least" in result.output
        assert user_named(db, "u") is None

    def test_existing_username_is_refused(self, runner, db, world):
        result = create(runner, "--username", "it_staff", "--role", "it_staff")
        assert result.exit_code != 0
        assert "already exists" in result.output

    @pytest.mark.parametrize("username", ["", "a b", "x/../y", "a;b", "u" * 81])
    def test_bad_username_is_refused(self, runner, db, world, username):
        result = create(runner, "--username", username, "--role", "it_staff")
        assert result.exit_code != 0
        assert db.scalar(select(func.count()).select_from(User)) == len(world.users)
        db.commit()


# ---------------------------------------------------------------- tokens


class TestTokens:
    def test_token_authenticates_and_only_its_hash_is_stored(self, runner, client, db, world):
        assert create(runner, "--username", "u", "--role", "it_staff").exit_code == 0
        result = runner.invoke(args=["users", "token", "u"])
        assert result.exit_code == 0, result.output
        raw = result.stdout.strip()
        assert raw and "\n" not in raw and len(raw) >= 40

        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
        assert me.status_code == 200
        assert me.get_json()["username"] == "u"

        user = user_named(db, "u")
        stored = db.scalars(select(ApiToken.token_sha256).where(ApiToken.user_id == user.id)).all()
        everything = db.execute(text("SELECT * FROM api_tokens")).all()
        db.commit()
        assert stored == [hashlib.sha256(raw.encode()).hexdigest()]
        assert not any(raw in str(value) for row in everything for value in row)

    def test_each_token_is_new(self, runner, db, world):
        first = runner.invoke(args=["users", "token", "it_staff"]).stdout.strip()
        second = runner.invoke(args=["users", "token", "it_staff"]).stdout.strip()
        assert first and second and first != second

    def test_revoke_tokens_stops_them(self, runner, client, world):
        raw = runner.invoke(args=["users", "token", "it_signer"]).stdout.strip()
        headers = {"Authorization": f"Bearer {raw}"}
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        result = runner.invoke(args=["users", "revoke-tokens", "it_signer"])
        assert result.exit_code == 0, result.output
        assert "revoked 2 token(s)" in result.output  # the world's token and this one
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthenticated"
        assert client.get("/api/v1/me", headers=world.auth("it_signer")).status_code == 401
        # Someone else's token is untouched.
        assert client.get("/api/v1/me", headers=world.auth("it_staff")).status_code == 200

    def test_token_for_unknown_user_fails(self, runner, world):
        result = runner.invoke(args=["users", "token", "nobody"])
        assert result.exit_code != 0
        assert "nobody" in result.output
        result = runner.invoke(args=["users", "revoke-tokens", "nobody"])
        assert result.exit_code != 0


# ---------------------------------------------------------------- definitions diagram


class TestDiagram:
    def test_diagram_prints_mermaid(self, runner, catalog):
        result = runner.invoke(args=["definitions", "diagram", "requirement"])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("stateDiagram-v2")
        assert result.stdout.strip() == catalog.get("requirement").mermaid()
        assert "draft --> submitted : submit" in result.stdout

    def test_unknown_key_fails(self, runner, app):
        result = runner.invoke(args=["definitions", "diagram", "nope"])
        assert result.exit_code != 0
        assert "nope" in result.output
        assert "stateDiagram" not in result.output


# ---------------------------------------------------------------- demo and audit


class TestDemo:
    def test_demo_runs_under_the_flask_test_runner(self, runner, app):
        # app.cli (what ``flask --app web`` and the test runner use) must give the command
        # an application context, as the AppGroup commands get one.
        result = runner.invoke(args=["demo", "--no-serve"])
        assert result.exit_code == 0, repr(result.exception)
        assert "demo hospital ready" in result.output

    def test_demo_loads_once_and_verifies(self, runner, db, app):
        first = console(runner, app, "demo", "--no-serve")
        assert first.exit_code == 0, first.output
        assert "demo hospital ready" in first.output
        after_first = counts(db)
        assert all(after_first[t] > 0 for t in DEMO_TABLES), after_first

        second = console(runner, app, "demo", "--no-serve")
        assert second.exit_code == 0, second.output
        assert "0 new request(s)" in second.output
        assert counts(db) == after_first

        users = db.scalars(select(User).order_by(User.username)).all()
        roles = {u.username: [r.role for r in u.roles] for u in users}
        contracts = db.scalars(select(Contract)).all()
        db.commit()
        assert sorted(u.username for u in users) == sorted(ROLES)
        assert len(users) == 9
        assert all(u.is_demo for u in users)
        assert roles == {name: [name] for name in ROLES}
        assert len(contracts) == 5
        assert {c.policy_key for c in contracts} == POLICY_TEMPLATES
        assert all(c.policy and len(c.policy_hash) == 64 for c in contracts)

        audit = runner.invoke(args=["audit", "verify"])
        assert audit.exit_code == 0, audit.output
        assert audit.output.startswith("ok:")
        assert f"{after_first['history_entries']} history entries" in audit.output

        checkpoint = runner.invoke(args=["audit", "checkpoint"])
        assert checkpoint.exit_code == 0, checkpoint.output
        digest = checkpoint.stdout.split()[0]
        assert len(digest) == 64 and int(digest, 16) >= 0

    def test_demo_accounts_sign_in_only_in_demo_mode(self, runner, db, app):
        assert console(runner, app, "demo", "--no-serve").exit_code == 0
        user = user_named(db, "dept_user")
        assert user.is_demo
        assert check_password(user, "changeflow-demo", demo_mode=False) is False
        assert check_password(user, "changeflow-demo", demo_mode=True) is True
        assert check_password(user, "wrong password", demo_mode=True) is False

    def test_audit_verify_on_empty_database(self, runner, app):
        result = runner.invoke(args=["audit", "verify"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("ok: 0 request(s)")


# ---------------------------------------------------------------- serve


def test_serve_tunes_the_collector_before_gunicorn_forks(runner, monkeypatch):
    """Long-lived objects leave the collector's reach before the workers are forked, and the
    young generation is collected less often."""
    import gc

    from gunicorn.app.base import BaseApplication

    from web.cli import YOUNG_GENERATION_THRESHOLD

    seen = {}

    def run_instead_of_serving(server):
        seen["frozen"] = gc.get_freeze_count()
        seen["threshold"] = gc.get_threshold()
        seen["workers"] = server.cfg.workers

    monkeypatch.setattr(BaseApplication, "run", run_instead_of_serving)
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        result = runner.invoke(args=["serve", "--workers", "3"])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert result.exit_code == 0, result.output
    assert seen["workers"] == 3
    assert seen["frozen"] > 1000
    assert seen["threshold"] == (YOUNG_GENERATION_THRESHOLD, *threshold[1:])
