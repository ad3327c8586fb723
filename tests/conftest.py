"""Fixtures: a migrated database (SQLite by default, PostgreSQL via TEST_DATABASE_URL),
the app, client and CLI runner, and a small hospital "world" built by factories."""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.orm import sessionmaker

from models import Base, Contract, Department, Release, System, Vendor
from web import create_app
from web.db import make_engine
from workflow.accounts import create_user, issue_token

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_remembered_clock_histories():
    """Each test starts with no clock history or timeline remembered by the process
    (sla.MOMENTS, sla.TIMELINES): its databases are new, and a test that edits history rows
    directly must see what it wrote."""
    from workflow.sla import MOMENTS, TIMELINES

    MOMENTS.clear()
    TIMELINES.clear()


@pytest.fixture(autouse=True, scope="session")
def _fast_dumps_checked():
    """Every API dump the suite makes is also made by marshmallow, and the two must agree
    (web/api/fast_dump.py): the plan that serves production is checked on every response."""
    from web.api import fast_dump

    fast_dump.VERIFY = True
    yield
    fast_dump.VERIFY = False


def _is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """A freshly migrated database for the whole run.

    On PostgreSQL a private database is created next to TEST_DATABASE_URL and dropped
    afterwards, so parallel runs on one server never see each other's rows.
    """
    from migrations import upgrade

    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        upgrade(url, "head")
        yield url
        return
    if not _is_postgres(url):
        pytest.exit(f"TEST_DATABASE_URL must be PostgreSQL, got {url}", returncode=2)
    base = make_url(url)
    name = f"cf_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - say plainly why the run cannot go on
        admin.dispose()
        pytest.exit(f"PostgreSQL at {url} is not usable: {exc}", returncode=3)
    private = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(private, "head")
        yield private
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url):
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests (``pg_only``) are skipped in a SQLite run, SQLite-only ones
    (``sqlite_only``) in a PostgreSQL run.

    .ci/run runs the suite on SQLite and then on PostgreSQL and fails when PostgreSQL is
    unreachable, and a TEST_DATABASE_URL that cannot be reached stops the run; so these
    tests are skipped only in the other run, never silently lost.
    """
    on_postgres = _is_postgres(os.environ.get("TEST_DATABASE_URL", ""))
    marker = pytest.mark.skipif(
        not on_postgres,
        reason="PostgreSQL only: runs when TEST_DATABASE_URL=postgresql+psycopg://… is set",
    )
    sqlite_marker = pytest.mark.skipif(
        on_postgres, reason="SQLite only: runs in the SQLite run of the same suite"
    )
    for item in items:
        if "pg_only" in getattr(item, "fixturenames", ()):
            item.add_marker(marker)
        if "sqlite_only" in getattr(item, "fixturenames", ()):
            item.add_marker(sqlite_marker)


@pytest.fixture
def pg_only(database_url):
    """Marks a test as needing PostgreSQL's row locking (see pytest_collection_modifyitems)."""
    assert _is_postgres(database_url), "pg_only test ran without PostgreSQL"


@pytest.fixture
def sqlite_only(database_url):
    """Marks a test of SQLite's own code path; .ci/run runs the SQLite suite as well."""
    assert not _is_postgres(database_url), "sqlite_only test ran on PostgreSQL"


def truncate_all(engine) -> None:
    """Empty every table, children first."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def app(database_url, engine, tmp_path):
    """A fresh app on the shared database; every table is emptied afterwards."""
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "ATTACHMENTS_DIR": str(tmp_path / "attachments"),
            "AUTH_EPOCH_FILE": str(tmp_path / "auth-epoch"),
            "MAX_UPLOAD_BYTES": 2 * 1024 * 1024,
        }
    )
    yield application
    application.extensions["changeflow.engine"].dispose()
    truncate_all(engine)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def catalog(app):
    return app.extensions["changeflow.catalog"]


@pytest.fixture
def db(app):
    """A session for direct use; the test commits when it wants rows visible to others."""
    session = sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)()
    yield session
    session.close()


ROLE_SCOPES = {
    # username → (roles, department code, vendor code)
    "dept_user": (["dept_user"], "cardiology", None),
    "other_dept_user": (["dept_user"], "lab", None),
    "it_staff": (["it_staff"], None, None),
    "it_staff2": (["it_staff"], None, None),
    "it_signer": (["it_signer"], None, None),
    "it_dba": (["it_dba"], None, None),
    "it_dba2": (["it_dba"], None, None),
    "vendor_engineer": (["vendor_engineer"], None, "vendor_a"),
    "vendor_manager": (["vendor_manager"], None, "vendor_a"),
    "other_vendor": (["vendor_engineer", "vendor_manager"], None, "vendor_b"),
    "sys_admin": (["sys_admin"], None, None),
    "sec_admin": (["sec_admin"], None, None),
    "auditor": (["auditor"], None, None),
}


@dataclass
class World:
    """A small hospital: departments, two vendors, one contract each, users per role."""

    session: object
    users: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    departments: dict = field(default_factory=dict)
    contract: Contract | None = None
    other_contract: Contract | None = None
    system: System | None = None

    def user(self, name):
        return self.users[name]

    def auth(self, name) -> dict:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


PASSWORD = "correct horse battery"


@functools.cache
def _test_password_hash() -> str:
    from workflow.accounts import hash_password

    return hash_password(PASSWORD)


def build_world(session, policy_document: dict | None = None) -> World:
    """Factory: the standard test hospital, committed."""
    from workflow.policy import load_policy_dir

    policies = load_policy_dir(ROOT / "definitions" / "policies")
    z = policies["zhanjiang_followup"]
    world = World(session=session)
    for code, name in (("it", "信息科"), ("cardiology", "心内科"), ("lab", "检验科")):
        dept = Department(code=code, name=name)
        session.add(dept)
        world.departments[code] = dept
    va, vb = Vendor(code="vendor_a", name="Vendor A"), Vendor(code="vendor_b", name="Vendor B")
    session.add_all([va, vb])
    session.flush()

    def contract(code: str, vendor: Vendor, document: dict) -> Contract:
        return Contract(
            code=code,
            name=f"Contract {code}",
            vendor_id=vendor.id,
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            policy_key=z.key,
            policy_hash=z.content_hash,
            policy=document,
        )

    world.contract = contract("C-A", va, policy_document or z.document)
    world.other_contract = contract("C-B", vb, z.document)
    session.add_all([world.contract, world.other_contract])
    session.flush()
    world.system = System(
        code="sys_a",
        name="System A",
        vendor_id=va.id,
        contract_id=world.contract.id,
        current_version="1.0.0",
    )
    world.system.releases.append(Release(version="1.1.0", released_on=date(2026, 6, 1)))
    session.add(world.system)
    session.flush()
    for username, (roles, dept, vendor) in ROLE_SCOPES.items():
        # One argon2id hash for all test users: hashing costs ~50 ms by design.
        user = create_user(session, username, None, roles, department=dept, vendor=vendor)
        user.password_hash = _test_password_hash()
        world.users[username] = user
        world.tokens[username] = issue_token(session, user, "test")
    session.commit()
    return world


@pytest.fixture
def world(db) -> World:
    return build_world(db)
