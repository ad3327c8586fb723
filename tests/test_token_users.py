"""Who a bearer token belongs to, as each worker remembers it (web/token_users.py): any change to
users, roles or tokens made through changeflow counts at once, in every worker; a change made
behind its back counts within TOKEN_CACHE_SECONDS."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import object_session

from models import ApiToken, RoleAssignment, utcnow
from web import token_users
from web.token_users import TokenUsers
from workflow.accounts import revoke_tokens, token_digest

API = "/api/v1"


def me(client, world, name="it_staff"):
    return client.get(f"{API}/me", headers=world.auth(name))


def roles(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return sorted(r["role"] for r in response.get_json()["roles"])


def remembered(app, world, name="it_staff"):
    cache = app.extensions["changeflow.token_users"]
    return cache._found.get(token_digest(world.tokens[name]))


def test_a_second_call_is_answered_from_memory_with_a_copy_of_its_own(app, client, world):
    assert roles(me(client, world)) == ["it_staff"]
    first = remembered(app, world)
    assert first is not None
    assert roles(me(client, world)) == ["it_staff"]
    # The same remembered user served the second call: nothing was read again ...
    assert remembered(app, world) is first
    # ... and it never became part of a request's session (each request merges a copy).
    assert object_session(first[2]) is None
    assert all(object_session(r) is None for r in first[2].roles)


def test_a_role_given_or_taken_away_counts_at_once(client, db, world):
    assert roles(me(client, world, "it_signer")) == ["it_signer"]
    db.add(RoleAssignment(user_id=world.users["it_signer"].id, role="it_staff"))
    db.commit()
    assert roles(me(client, world, "it_signer")) == ["it_signer", "it_staff"]
    db.delete(db.scalar(select(RoleAssignment).filter_by(role="it_signer")))
    db.commit()
    assert roles(me(client, world, "it_signer")) == ["it_staff"]


def test_a_locked_account_is_refused_at_once(client, db, world):
    assert me(client, world).status_code == 200
    user = db.merge(world.users["it_staff"])
    user.locked_at = utcnow()
    db.commit()
    assert me(client, world).status_code == 401


def test_another_worker_forgets_too(app, client, db, world):
    # Two workers of one installation share the instance folder and nothing else.
    cache = app.extensions["changeflow.token_users"]
    other = TokenUsers(cache.epoch_file, seconds=60)
    session = app.extensions["changeflow.sessionmaker"]()
    assert other.user(session, world.tokens["it_staff"], lambda lookup: lookup()) is not None
    session.close()
    assert len(other._found) == 1
    assert revoke_tokens(db, world.users["it_staff"]) == 1
    db.commit()
    session = app.extensions["changeflow.sessionmaker"]()
    assert other.user(session, world.tokens["it_staff"], lambda lookup: lookup()) is None
    session.close()


def test_a_change_behind_changeflows_back_counts_after_the_cache_time(
    app, client, db, world, monkeypatch
):
    assert me(client, world).status_code == 200
    # SQL typed into the database: no changeflow commit, so no new epoch.
    db.execute(update(ApiToken).values(revoked_at=utcnow()))
    db.commit()
    assert me(client, world).status_code == 200
    seconds = app.config["TOKEN_CACHE_SECONDS"]
    later = token_users.time.monotonic() + seconds + 1
    monkeypatch.setattr(token_users.time, "monotonic", lambda: later)
    assert me(client, world).status_code == 401


@pytest.mark.parametrize("seconds", [0])
def test_a_cache_time_of_zero_reads_every_call(app, client, db, world, seconds):
    app.extensions["changeflow.token_users"].seconds = seconds
    assert me(client, world).status_code == 200
    assert remembered(app, world) is None
    db.execute(update(ApiToken).values(revoked_at=utcnow()))
    db.commit()
    assert me(client, world).status_code == 401


def test_unknown_tokens_are_not_remembered(app, client, world):
    headers = {"Authorization": "Bearer cf_not-a-real-token"}
    assert client.get(f"{API}/me", headers=headers).status_code == 401
    assert app.extensions["changeflow.token_users"]._found == {}
