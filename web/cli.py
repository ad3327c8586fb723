"""The ``changeflow`` command (SPEC §4); also reachable as ``flask --app web …``.

Each command owns its transaction: operations flush, the command commits once.
"""

from __future__ import annotations

import gc
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from workflow.errors import WorkflowError
from workflow.yamlsource import DefinitionError


@contextmanager
def transaction():
    """A session that commits on success and rolls back on any error."""
    maker = current_app.extensions["changeflow.sessionmaker"]
    with maker() as session, session.begin():
        yield session


def _fail(message: str, code: int = 1):
    click.echo(message, err=True)
    sys.exit(code)


db_cli = AppGroup("db", help="Database schema.")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str):
    """Apply Alembic migrations up to REVISION."""
    from migrations import upgrade

    upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"database at {revision}")


definitions_cli = AppGroup("definitions", help="Workflow definitions.")


@definitions_cli.command("check")
@click.argument("path", required=False)
def definitions_check(path: str | None):
    """Check every definition (or the file/folder PATH); exit 1 naming file, line, problem."""
    from workflow.definition import load_definition_dir, load_definition_file
    from workflow.policy import load_policy_dir

    root = Path(current_app.config["DEFINITIONS_DIR"])
    try:
        if path is None:
            found = load_definition_dir(root / "workflows")
            policies = load_policy_dir(root / "policies")
            names = [f"{k} {d.content_hash[:12]}" for k, d in found.items()]
            names += [f"policy {k} {p.content_hash[:12]}" for k, p in policies.items()]
        elif Path(path).is_dir():
            names = [f"{k} {d.content_hash[:12]}" for k, d in load_definition_dir(path).items()]
        else:
            d = load_definition_file(path)
            names = [f"{d.key} {d.content_hash[:12]}"]
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    for name in names:
        click.echo(f"ok  {name}")


@definitions_cli.command("diagram")
@click.argument("key")
def definitions_diagram(key: str):
    """Print the Mermaid state diagram of definition KEY."""
    try:
        click.echo(current_app.extensions["changeflow.catalog"].get(key).mermaid())
    except WorkflowError as exc:
        _fail(exc.message)


users_cli = AppGroup("users", help="Accounts and API tokens.")


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--role", "roles", required=True, multiple=True, help="repeat for several roles")
@click.option("--department", help="department code (dept_user)")
@click.option("--vendor", help="vendor code (vendor roles)")
@click.option("--contract", help="contract code (limits the roles to one contract)")
@click.option("--display-name", default="")
@click.option("--email", default=None, help="where SLA notifications are mailed (optional)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_create(
    username, roles, department, vendor, contract, display_name, email, password_stdin
):
    """Create a user with roles in one scope."""
    from workflow.accounts import create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        with transaction() as session:
            create_user(
                session,
                username,
                password,
                list(roles),
                display_name=display_name,
                department=department,
                vendor=vendor,
                contract=contract,
                email=email,
            )
    except WorkflowError as exc:
        _fail(exc.message)
    click.echo(f"created {username} ({', '.join(roles)})")


@users_cli.command("token")
@click.argument("username")
@click.option("--name", default="cli", help="a label for the token")
def users_token(username: str, name: str):
    """Print a new API token for USERNAME (stored only as its SHA-256)."""
    from workflow.accounts import find_user, issue_token

    try:
        with transaction() as session:
            raw = issue_token(session, find_user(session, username), name)
    except WorkflowError as exc:
        _fail(exc.message)
    click.echo(raw)


@users_cli.command("revoke-tokens")
@click.argument("username")
def users_revoke_tokens(username: str):
    """Revoke every API token of USERNAME."""
    from workflow.accounts import find_user, revoke_tokens

    try:
        with transaction() as session:
            count = revoke_tokens(session, find_user(session, username))
    except WorkflowError as exc:
        _fail(exc.message)
    click.echo(f"revoked {count} token(s)")


audit_cli = AppGroup("audit", help="The hash-chained history.")


@audit_cli.command("verify")
def audit_verify():
    """Walk every chain; exit 1 naming the first edited, deleted or reordered entry."""
    from workflow.history import verify_all

    with transaction() as session:
        requests, entries, problem = verify_all(session)
    if problem is not None:
        _fail(f"FAILED after {requests} request(s), {entries} entries: {problem}")
    click.echo(f"ok: {requests} request(s), {entries} history entries verified")


@audit_cli.command("checkpoint")
def audit_checkpoint():
    """Print one SHA-256 over every chain head (print it on acceptance forms)."""
    from models import utcnow
    from workflow.history import checkpoint

    with transaction() as session:
        digest, count = checkpoint(session)
    click.echo(f"{digest}  {count} chain(s)  {utcnow().isoformat(timespec='seconds')}Z")


# A request keeps one to two thousand container objects alive at its peak (entities, rows,
# the response), so with Python's default of 700 the young generation was collected about once
# per request, walking objects that die with it anyway: 2,745 collections for 3,000 transitions,
# ~3 % of their CPU; at 7,000 there were 7.
YOUNG_GENERATION_THRESHOLD = 7000


def tune_gc_for_serving() -> None:
    """Put every object built so far beyond the cyclic garbage collector's reach and collect the
    young generation less often; raises nothing.

    Modules, the app, the mappers and the compiled definitions live as long as the process.
    Left to the collector, each full collection walks all of them again (~160k objects, about
    85 ms a pass, 5-8 % of a transition's CPU measured in bench/profile_transition.py), and
    a worker forked after the freeze shares those pages with its master instead of copying
    them when the collector writes to their headers.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


def _serve(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    engine = app.extensions["changeflow.engine"]
    # Connections opened before the fork (migrations, demo data) must not be shared by workers.
    engine.dispose()

    def post_fork(_server, _worker):
        engine.dispose(close=False)

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("post_fork", post_fork)
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("accesslog", "-")

        def load(self):
            return app

    click.echo(f"serving changeflow on http://{host}:{port}/")
    tune_gc_for_serving()
    _Server().run()


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
def serve(host, port, workers, threads):
    """Serve the application with gunicorn."""
    _serve(current_app._get_current_object(), host, port, workers, threads)


@click.command("demo")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="only migrate and load the demo data")
def demo(host, port, no_serve):
    """Create the database if needed, load the demo hospital (idempotent) and serve it."""
    from migrations import upgrade
    from workflow.demo import load_demo

    app = current_app._get_current_object()
    upgrade(app.config["DATABASE_URL"], "head")
    with transaction() as session:
        summary = load_demo(
            session,
            app.extensions["changeflow.catalog"],
            Path(app.config["DEFINITIONS_DIR"]) / "policies",
            Path(app.config["ATTACHMENTS_DIR"]),
        )
    click.echo(summary)
    if not no_serve:
        app.config["DEMO_MODE"] = True
        _serve(app, host, port, workers=2, threads=4)


quota_cli = AppGroup("quota", help="The free development quota (DOMAIN §1).")


def _contract(session, code: str):
    from sqlalchemy import select

    from models import Contract

    contract = session.scalar(select(Contract).where(Contract.code == code))
    if contract is None:
        _fail(f"No contract with the code {code!r}.")
    return contract


@quota_cli.command("show")
@click.argument("contract_code")
def quota_show(contract_code: str):
    """Print the contract's current quota period and its figures."""
    from workflow.localtime import hospital_today
    from workflow.quota import days_text, quota_overview

    with transaction() as session:
        view = quota_overview(session, _contract(session, contract_code), hospital_today())
        pool = "none" if view.pool is None else days_text(view.pool)
        left = "-" if view.remaining is None else days_text(view.remaining)
        click.echo(
            f"{contract_code} {view.period_start}..{view.period_end} pool {pool} "
            f"reserved {days_text(view.reserved)} consumed {days_text(view.consumed)} "
            f"remaining {left}"
        )


@quota_cli.command("adjust")
@click.argument("contract_code")
@click.option("--days", required=True, help="person-days, steps of 0.5; negative gives back")
@click.option("--reason", required=True)
@click.option("--actor", required=True, help="username of the contract's IT signer")
@click.option("--day", help="the day it counts on (YYYY-MM-DD), default today in Beijing")
def quota_adjust(contract_code: str, days: str, reason: str, actor: str, day: str | None):
    """Record a signed correction of the contract's consumed effort."""
    from datetime import date

    from models import utcnow
    from workflow.accounts import find_user
    from workflow.localtime import hospital_today
    from workflow.quota import adjust, days_text

    try:
        on = date.fromisoformat(day) if day else hospital_today()
    except ValueError:
        _fail(f"Not a date: {day!r} (expected YYYY-MM-DD).")
    try:
        with transaction() as session:
            user = find_user(session, actor)
            entry = adjust(
                session, _contract(session, contract_code), on, days, user, utcnow(), reason
            )
            click.echo(f"adjusted {days_text(entry.days)} person-days on {on} (entry {entry.id})")
    except WorkflowError as exc:
        _fail(exc.message)


sla_cli = AppGroup("sla", help="Service levels: deadlines, breaches and stale systems.")


@sla_cli.command("sweep")
def sla_sweep():
    """Record SLA warnings and breaches of open incidents (each announced once), report the
    systems older than their contract allows (Z3), then mail pending notifications when
    SMTP_HOST is set."""
    from sqlalchemy import select

    from models import System, utcnow
    from workflow.outbox import send_pending
    from workflow.sla_sweep import sweep
    from workflow.systems import stale_systems

    with transaction() as session:
        result = sweep(session, utcnow())
    # Printed once committed: what is shown was recorded.
    click.echo(
        f"sla: {result.checked} open incidents checked, {result.warnings} warnings and "
        f"{result.breaches} breaches recorded, {result.notifications} notifications written"
    )
    for alert in result.breaches_recorded:
        click.echo(
            f"breach incident #{alert.request_id} {alert.target} due {alert.due_local} "
            f"{alert.timezone}: {alert.title}"
        )

    with transaction() as session:
        systems = list(session.scalars(select(System).order_by(System.code)))
        stale = stale_systems(systems)
        for status in stale:
            data = status.as_data()
            click.echo(
                f"stale {status.system.code} running {status.system.current_version or '?'} "
                f"last update {data['last_update'] or 'unknown'} "
                f"due {data['update_due'] or '-'} newest {data['newest_version'] or '-'}"
            )
        click.echo(f"{len(stale)} stale of {len(systems)} systems")

    with transaction() as session:
        mailed = send_pending(session, current_app.config, utcnow())
    if not mailed.enabled:
        click.echo("mail: off (SMTP_HOST is not set)")
        return
    if mailed.message and not mailed.failures:
        click.echo(f"mail: {mailed.message}")
        return
    click.echo(
        f"mail: {mailed.sent} sent, {mailed.failed} failed, "
        f"{mailed.without_address} without an address"
    )
    for notification_id, reason in mailed.failures:
        click.echo(f"mail failed: notification {notification_id} {reason}", err=True)


def register_commands(app: Flask) -> None:
    """Attach every command group to the app's CLI."""
    commands = (db_cli, definitions_cli, users_cli, audit_cli, quota_cli, sla_cli, serve, demo)
    for command in commands:
        app.cli.add_command(command)


def main() -> None:
    """Entry point of the ``changeflow`` console script."""
    from web import create_app
    from workflow.yamlsource import DefinitionError

    try:
        FlaskGroup(
            create_app=create_app,
            add_default_commands=False,
            help="changeflow: hospital IT maintenance contracts.",
        )(prog_name="changeflow", standalone_mode=True)
    except DefinitionError as exc:
        # The app cannot start on a broken definition: say where and what, not a traceback.
        click.echo(f"The installed definitions are broken:\n{exc}", err=True)
        sys.exit(1)
