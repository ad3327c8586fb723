"""The SLA sweep (``changeflow sla sweep``): warnings at 75 % and breaches are recorded once and
notified once (assignee and IT staff), also when two sweeps run at once; the inbox shows each
user their own notifications; the outbox mails them when SMTP is set.

Tickets are L2 under the test contract (zhanjiang_followup: response 30 min, resolution 2 h,
7x24), reported at 10:00 Beijing time (02:00 UTC) on Wednesday 25 November 2026.
"""

from __future__ import annotations

import smtplib
import threading
import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import sessionmaker
from test_signin import csrf_token, sign_in

from models import Notification, SlaAlert, User, utcnow
from tests.helpers import Flow, creation_fields
from workflow import sla_sweep as sweep_module
from workflow.accounts import create_user
from workflow.engine import create_request
from workflow.outbox import send_pending
from workflow.sla_sweep import ADVISORY_LOCK_KEY, sweep

T0 = datetime(2026, 11, 25, 2, 0)  # 10:00 in Asia/Shanghai
IT_STAFF = {"it_staff", "it_staff2"}


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


def incident(flow, at: datetime = T0, title: str = "Ward 3 printer down", contract=None):
    """A reported L2 incident raised by the cardiology user at ``at``."""
    world = flow.world
    contract = contract or world.contract
    return create_request(
        flow.db,
        flow.catalog,
        world.users["dept_user"],
        kind="incident",
        contract_id=contract.id,
        system_id=world.system.id if contract.id == world.contract.id else None,
        department_id=world.departments["cardiology"].id,
        title=title,
        fields=creation_fields("incident"),
        now=at,
    )


def run_sweep(flow, at: datetime):
    result = sweep(flow.db, at)
    flow.db.commit()
    return result


def alerts(db) -> list[tuple[int, str, str, datetime]]:
    return [
        (a.request_id, a.target, a.kind, a.due_at)
        for a in db.scalars(select(SlaAlert).order_by(SlaAlert.id))
    ]


def notes(db) -> list[tuple[str, int, str]]:
    """(username, request id, subject) of every notification, in the order written."""
    rows = db.execute(
        select(User.username, Notification.request_id, Notification.subject)
        .join(User, User.id == Notification.user_id)
        .order_by(Notification.id)
    )
    return [tuple(row) for row in rows]


def counts(result) -> tuple[int, int, int, int]:
    return (result.checked, result.warnings, result.breaches, result.notifications)


# ----------------------------------------------------------------- warnings and breaches


def test_past_75_percent_one_warning_per_target_to_it_staff_then_nothing_new(flow):
    db, users = flow.db, flow.world.users
    users["it_staff2"].locale = "en"
    ticket = incident(flow)
    db.commit()

    first = run_sweep(flow, minutes(23))  # response 23 of 30 minutes: 76 %
    assert counts(first) == (1, 1, 0, 2)
    assert alerts(db) == [(ticket.id, "response", "warning", minutes(30))]
    # Nobody acknowledged the ticket yet: no assignee, so IT staff only; each in their language.
    assert sorted(notes(db)) == [
        ("it_staff", ticket.id, f"故障 #{ticket.id}：响应时限 2026-11-25 10:30（已用 76%）"),
        (
            "it_staff2",
            ticket.id,
            f"Incident #{ticket.id}: response due at 2026-11-25 10:30 (76 % used)",
        ),
    ]
    body = db.scalar(select(Notification.body).where(Notification.user_id == users["it_staff2"].id))
    assert "Ward 3 printer down" in body and f"/requests/{ticket.id}" in body
    assert "Asia/Shanghai" in body

    assert counts(run_sweep(flow, minutes(24))) == (1, 0, 0, 0)

    # The vendor answers in time (response met); the resolution clock reaches 75 % later.
    flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(25))
    flow.fire(ticket, "start_work", "vendor_engineer", now=minutes(26))
    db.commit()
    assert counts(run_sweep(flow, minutes(89))) == (1, 0, 0, 0)  # 74 %: not yet
    second = run_sweep(flow, minutes(95))  # 95 of 120 minutes: 79 %
    assert counts(second) == (1, 1, 0, 3)
    assert alerts(db)[1:] == [(ticket.id, "resolution", "warning", minutes(120))]
    latest = [n for n in notes(db) if "12:00" in n[2] or "resolution" in n[2]]
    assert {n[0] for n in latest} == {"vendor_engineer"} | IT_STAFF  # the assignee too

    again = run_sweep(flow, minutes(100))
    assert counts(again) == (1, 0, 0, 0)
    assert len(alerts(db)) == 2 and len(notes(db)) == 5


def test_breach_is_recorded_once_and_announced_once(flow):
    db = flow.db
    flow.world.users["vendor_engineer"].locale = "en"
    ticket = incident(flow)
    flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(10))
    db.commit()
    assert counts(run_sweep(flow, minutes(100))) == (1, 1, 0, 3)

    result = run_sweep(flow, minutes(121))
    assert counts(result) == (1, 0, 1, 3)
    assert [
        (a.request_id, a.target, a.due_local, a.timezone) for a in result.breaches_recorded
    ] == [(ticket.id, "resolution", "2026-11-25 12:00", "Asia/Shanghai")]
    breach = [n for n in notes(db) if "breached" in n[2] or "超时" in n[2]]
    assert sorted(breach) == [
        ("it_staff", ticket.id, f"故障 #{ticket.id}：解决已超时（时限 2026-11-25 12:00）"),
        ("it_staff2", ticket.id, f"故障 #{ticket.id}：解决已超时（时限 2026-11-25 12:00）"),
        (
            "vendor_engineer",
            ticket.id,
            f"Incident #{ticket.id}: resolution breached (due at 2026-11-25 12:00)",
        ),
    ]
    for later in (minutes(122), minutes(600)):
        assert counts(run_sweep(flow, later)) == (1, 0, 0, 0)
    assert [(a[1], a[2]) for a in alerts(db)] == [
        ("resolution", "warning"),
        ("resolution", "breach"),
    ]
    assert len(notes(db)) == 6


def test_a_target_first_seen_breached_gets_the_breach_only(flow):
    ticket = incident(flow)
    flow.db.commit()
    result = run_sweep(flow, minutes(180))
    assert counts(result) == (1, 0, 2, 4)
    assert [(a[1], a[2]) for a in alerts(flow.db)] == [
        ("response", "breach"),
        ("resolution", "breach"),
    ]
    assert [a.target for a in result.breaches_recorded] == ["response", "resolution"]
    assert {a.request_id for a in result.recorded} == {ticket.id}


def test_a_response_met_late_is_recorded_as_a_breach(flow):
    db = flow.db
    ticket = incident(flow)
    flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(40))  # 10 minutes late
    db.commit()
    result = run_sweep(flow, minutes(45))
    assert counts(result) == (1, 0, 1, 3)
    assert alerts(db) == [(ticket.id, "response", "breach", minutes(30))]
    assert {n[0] for n in notes(db)} == {"vendor_engineer"} | IT_STAFF
    assert counts(run_sweep(flow, minutes(50))) == (1, 0, 0, 0)


def test_a_ticket_resolved_in_time_records_nothing_and_a_closed_one_is_not_checked(flow):
    db = flow.db
    ticket = incident(flow)
    flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(5))
    flow.fire(ticket, "start_work", "vendor_engineer", now=minutes(6))
    flow.fire(ticket, "resolve", "vendor_engineer", now=minutes(30))
    db.commit()
    assert counts(run_sweep(flow, minutes(600))) == (1, 0, 0, 0)  # resolved: still open
    flow.fire(ticket, "confirm_fixed", "dept_user", now=minutes(700))
    flow.walk_to("requirement", "submitted")  # other kinds are never checked
    db.commit()
    assert counts(run_sweep(flow, minutes(800))) == (0, 0, 0, 0)
    assert alerts(db) == [] and notes(db) == []


def test_time_waiting_for_the_hospital_does_not_count(flow):
    db = flow.db
    ticket = incident(flow)
    flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(5))
    flow.fire(ticket, "start_work", "vendor_engineer", now=minutes(6))
    flow.fire(ticket, "wait_for_hospital", "vendor_engineer", now=minutes(20))
    db.commit()
    assert counts(run_sweep(flow, minutes(600))) == (1, 0, 0, 0)
    # Resumed at 11:00 with 20 minutes used: 75 % (90 minutes) is reached 70 minutes later.
    flow.fire(ticket, "resume", "vendor_engineer", now=minutes(60))
    db.commit()
    assert counts(run_sweep(flow, minutes(129))) == (1, 0, 0, 0)
    assert counts(run_sweep(flow, minutes(131))) == (1, 1, 0, 3)
    assert alerts(db) == [(ticket.id, "resolution", "warning", minutes(160))]


def test_a_paused_ticket_past_75_percent_is_warned_with_the_clock_paused(flow):
    db = flow.db
    flow.world.users["it_staff"].locale = "en"
    ticket = incident(flow)
    flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(5))
    flow.fire(ticket, "start_work", "vendor_engineer", now=minutes(6))
    flow.fire(ticket, "wait_for_hospital", "vendor_engineer", now=minutes(100))
    db.commit()
    assert counts(run_sweep(flow, minutes(130))) == (1, 1, 0, 3)
    # Paused with 20 minutes left: due 20 minutes after the sweep if the clock ran again.
    assert alerts(db) == [(ticket.id, "resolution", "warning", minutes(150))]
    subject = db.scalar(
        select(Notification.subject).where(Notification.user_id == flow.world.users["it_staff"].id)
    )
    assert subject == (
        f"Incident #{ticket.id}: resolution due at 2026-11-25 12:30 (83 % used, clock paused)"
    )


def test_only_active_it_staff_covering_the_ticket_are_notified(flow):
    db, world = flow.db, flow.world
    create_user(db, "it_staff_b_only", None, ["it_staff"], contract="C-B")
    gone = create_user(db, "it_staff_gone", None, ["it_staff"])
    gone.is_active = False
    ticket = incident(flow)
    other = incident(flow, title="Lab analyser offline", contract=world.other_contract)
    db.commit()
    assert counts(run_sweep(flow, minutes(25))) == (2, 2, 0, 5)
    by_ticket = {rid: {n[0] for n in notes(db) if n[1] == rid} for rid in (ticket.id, other.id)}
    assert by_ticket == {ticket.id: IT_STAFF, other.id: IT_STAFF | {"it_staff_b_only"}}


def test_many_tickets_are_swept_in_batches(flow, monkeypatch):
    monkeypatch.setattr(sweep_module, "BATCH", 2)
    tickets = [incident(flow, title=f"Ticket {i}") for i in range(5)]
    flow.db.commit()
    result = run_sweep(flow, minutes(25))
    assert counts(result) == (5, 5, 0, 10)
    assert sorted(a[0] for a in alerts(flow.db)) == sorted(t.id for t in tickets)


# ----------------------------------------------------------------- concurrency (PostgreSQL)


def _sessions(app):
    return sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)


def sweep_in_own_session(app, at: datetime, barrier: threading.Barrier):
    """One node's sweep: own session and connection, meet at the barrier, sweep, commit."""
    with _sessions(app)() as session:
        session.connection()  # connected before the race starts
        barrier.wait()
        try:
            result = sweep(session, at)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return counts(result)


def test_two_sweeps_at_once_record_and_notify_exactly_once(app, flow, pg_only):
    db = flow.db
    for i in range(3):
        ticket = incident(flow, title=f"Concurrent {i}")
        flow.fire(ticket, "acknowledge", "vendor_engineer", now=minutes(5))
    db.commit()
    db.close()  # nothing of this session may hold a lock while the sweeps run

    barrier = threading.Barrier(2, timeout=60)
    results: list = [None, None]

    def run(i):
        try:
            results[i] = sweep_in_own_session(app, minutes(100), barrier)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a sweep hung"
    # Serialised by the advisory lock: one sweep records the three warnings, the other nothing.
    assert sorted(results) == [(3, 0, 0, 0), (3, 3, 0, 9)], results

    with _sessions(app)() as check:
        assert len(alerts(check)) == 3
        rows = notes(check)
        assert len(rows) == 9 and len(set(rows)) == 9


def test_a_sweep_waits_for_the_advisory_lock(app, flow, pg_only):
    incident(flow)
    flow.db.commit()
    flow.db.close()
    holder = _sessions(app)()
    holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    done: list = []

    def run():
        with _sessions(app)() as session:
            done.append(counts(sweep(session, minutes(25))))
            session.commit()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive() and done == []  # waiting for the other node's sweep
    holder.rollback()  # the transaction ends: the lock is released
    thread.join(60)
    holder.close()
    assert done == [(1, 1, 0, 2)]


# ----------------------------------------------------------------- the inbox


def _notify(db, user, subject: str, request_id=None, at=None, read=False) -> Notification:
    note = Notification(
        user_id=user.id,
        request_id=request_id,
        subject=subject,
        body=f"Body of {subject}",
        created_at=at or utcnow(),
        read_at=utcnow() if read else None,
    )
    db.add(note)
    db.flush()
    return note


@pytest.fixture
def inbox(flow):
    """Notifications of two IT staff members on one ticket; committed."""
    db, users = flow.db, flow.world.users
    ticket = incident(flow)
    mine = [
        _notify(db, users["it_staff"], "Older of mine", ticket.id, minutes(10)),
        _notify(db, users["it_staff"], "Newer of mine", ticket.id, minutes(20)),
        _notify(db, users["it_staff"], "Already read", None, minutes(5), read=True),
    ]
    theirs = _notify(db, users["it_staff2"], "Someone else's", ticket.id, minutes(15))
    db.commit()
    return ticket, mine, theirs


def _read_at(app, note_id):
    with _sessions(app)() as s:
        return s.get(Notification, note_id).read_at


def test_the_inbox_shows_only_my_notifications_newest_first(app, client, inbox):
    ticket, mine, _theirs = inbox
    assert sign_in(client, "it_staff").status_code == 302
    page = client.get("/notifications").get_data(as_text=True)
    assert "Someone else&#39;s" not in page and "Someone else's" not in page
    positions = [page.index(s) for s in ("Newer of mine", "Older of mine", "Already read")]
    assert positions == sorted(positions)
    assert page.count('class="unread"') == 2 and page.count('class="read"') == 1
    assert f'href="/requests/{ticket.id}"' in page
    assert 'href="/notifications">' in page and "(2)</a>" in page  # the unread count in the nav


def test_marking_read_one_and_all_of_my_own(app, client, inbox):
    _ticket, mine, theirs = inbox
    sign_in(client, "it_staff")
    token = csrf_token(client, "/notifications")
    response = client.post(f"/notifications/{mine[0].id}/read", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/notifications")
    assert _read_at(app, mine[0].id) is not None and _read_at(app, mine[1].id) is None
    assert "(1)</a>" in client.get("/").get_data(as_text=True)

    response = client.post("/notifications/read-all", data={"csrf_token": token})
    assert response.status_code == 302
    assert all(_read_at(app, n.id) is not None for n in mine)
    assert _read_at(app, theirs.id) is None  # someone else's stays unread
    page = client.get("/notifications").get_data(as_text=True)
    assert 'class="unread"' not in page and "(1)</a>" not in page


def test_another_users_notification_answers_404(app, client, inbox):
    _ticket, _mine, theirs = inbox
    sign_in(client, "it_staff")
    token = csrf_token(client, "/notifications")
    assert (
        client.post(f"/notifications/{theirs.id}/read", data={"csrf_token": token}).status_code
        == 404
    )
    assert client.post("/notifications/999999/read", data={"csrf_token": token}).status_code == 404
    assert _read_at(app, theirs.id) is None


def test_inbox_writes_need_a_csrf_token_and_a_signed_in_user(app, client, inbox):
    _ticket, mine, _theirs = inbox
    assert client.get("/notifications").status_code == 302  # to the sign-in page
    sign_in(client, "it_staff")
    assert client.post(f"/notifications/{mine[0].id}/read").status_code == 400
    assert client.post("/notifications/read-all").status_code == 400
    assert _read_at(app, mine[0].id) is None


def test_unread_count_is_zero_when_anonymous(app):
    from web.notifications import unread_count

    with app.test_request_context("/"):
        assert unread_count() == 0


def test_an_empty_inbox(client, world):
    sign_in(client, "auditor")
    page = client.get("/notifications")
    assert page.status_code == 200
    assert 'class="unread"' not in page.get_data(as_text=True)


# ----------------------------------------------------------------- the outbox


class FakeSMTP:
    """Stands in for smtplib.SMTP: records what would have been sent."""

    instances: list[FakeSMTP] = []
    refuse: set[str] = set()
    unreachable = False

    def __init__(self, host, port, timeout=None):
        if FakeSMTP.unreachable:
            raise ConnectionRefusedError(111, "Connection refused")
        self.host, self.port, self.timeout = host, port, timeout
        self.started_tls = False
        self.logged_in = None
        self.sent = []
        self.closed = False
        FakeSMTP.instances.append(self)

    def starttls(self, context=None):
        self.started_tls = True

    def login(self, user, password):
        self.logged_in = (user, password)

    def send_message(self, message):
        if message["To"] in FakeSMTP.refuse:
            raise smtplib.SMTPRecipientsRefused({message["To"]: (550, b"No such user")})
        self.sent.append(message)

    def quit(self):
        self.closed = True

    def close(self):
        self.closed = True


@pytest.fixture
def fake_smtp(monkeypatch):
    FakeSMTP.instances, FakeSMTP.refuse, FakeSMTP.unreachable = [], set(), False
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


MAIL = {
    "SMTP_HOST": "mail.hospital.local",
    "SMTP_PORT": 2525,
    "SMTP_USER": "changeflow",
    "SMTP_PASSWORD": "secret",
    "SMTP_STARTTLS": True,
    "MAIL_FROM": "changeflow@hospital.local",
}


def address_of(user) -> str | None:
    return None if user.username == "it_staff2" else f"{user.username}@hospital.local"


def test_the_outbox_mails_each_notification_once_and_sets_mailed_at(flow, fake_smtp):
    db = flow.db
    incident(flow)
    db.commit()
    run_sweep(flow, minutes(180))  # two breaches: it_staff and it_staff2 get two each
    sent_at = minutes(181)

    result = send_pending(db, MAIL, sent_at, address_of=address_of)
    db.commit()
    assert (result.enabled, result.sent, result.failed, result.without_address) == (True, 2, 0, 2)
    [smtp] = fake_smtp.instances
    assert (smtp.host, smtp.port, smtp.started_tls, smtp.logged_in, smtp.closed) == (
        "mail.hospital.local",
        2525,
        True,
        ("changeflow", "secret"),
        True,
    )
    assert {m["To"] for m in smtp.sent} == {"it_staff@hospital.local"}
    assert all(m["From"] == "changeflow@hospital.local" for m in smtp.sent)
    assert sorted(m["Subject"] for m in smtp.sent) == sorted(
        n[2] for n in notes(db) if n[0] == "it_staff"
    )
    mailed = dict(db.execute(select(Notification.id, Notification.mailed_at)).all())
    staff2 = flow.world.users["it_staff2"].id
    for note in db.scalars(select(Notification)):
        assert mailed[note.id] == (None if note.user_id == staff2 else sent_at)

    again = send_pending(db, MAIL, minutes(190), address_of=address_of)
    assert (again.sent, again.failed) == (0, 0)
    assert len(fake_smtp.instances) == 1  # nothing pending: no connection at all


def test_a_refused_recipient_is_reported_and_tried_again_later(flow, fake_smtp):
    db, users = flow.db, flow.world.users
    ok = _notify(db, users["it_staff"], "For it_staff")
    refused = _notify(db, users["it_signer"], "For it_signer")
    db.commit()
    fake_smtp.refuse = {"it_signer@hospital.local"}
    result = send_pending(db, MAIL, minutes(1), address_of=address_of)
    db.commit()
    assert (result.sent, result.failed) == (1, 1)
    assert result.failures[0][0] == refused.id
    assert "it_signer@hospital.local" in result.failures[0][1]
    assert ok.mailed_at == minutes(1) and refused.mailed_at is None

    fake_smtp.refuse = set()
    assert send_pending(db, MAIL, minutes(2), address_of=address_of).sent == 1
    assert refused.mailed_at == minutes(2)


def test_an_unreachable_mail_server_is_reported_not_raised(flow, fake_smtp):
    db = flow.db
    note = _notify(db, flow.world.users["it_staff"], "Hello")
    db.commit()
    fake_smtp.unreachable = True
    result = send_pending(db, MAIL, minutes(1), address_of=address_of)
    assert result.sent == 0 and [i for i, _ in result.failures] == [note.id]
    assert "mail.hospital.local:2525" in result.failures[0][1]
    assert note.mailed_at is None


def test_no_mail_without_smtp_host(flow, fake_smtp):
    db = flow.db
    note = _notify(db, flow.world.users["it_staff"], "Hello")
    db.commit()
    for settings in ({}, {**MAIL, "SMTP_HOST": ""}):
        result = send_pending(db, settings, minutes(1), address_of=address_of)
        assert (result.enabled, result.sent, result.failed) == (False, 0, 0)
    assert fake_smtp.instances == [] and note.mailed_at is None


def test_users_email_addresses_are_used_and_users_without_one_never_block(flow, fake_smtp):
    db = flow.db
    users = flow.world.users
    # More notifications without an address than one batch holds, then one with an address.
    for _ in range(3):
        _notify(db, users["it_staff2"], "No address")
    users["it_staff"].email = "it@hospital.local"
    note = _notify(db, users["it_staff"], "Hello")
    read = _notify(db, users["it_staff"], "Read already", read=True)
    db.commit()
    result = send_pending(db, MAIL, minutes(1), limit=2)
    assert result.sent == 1 and note.mailed_at == minutes(1)
    assert [m["To"] for m in fake_smtp.instances[0].sent] == ["it@hospital.local"]
    assert read.mailed_at is None  # read in the app: no mail


# ----------------------------------------------------------------- the command


def test_the_command_records_breaches_then_reports_stale_systems(app, runner, flow, fake_smtp):
    db = flow.db
    ticket = incident(flow, at=utcnow() - timedelta(hours=3))
    db.commit()
    db.close()

    result = runner.invoke(args=["sla", "sweep"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "sla: 1 open incidents checked, 0 warnings and 2 breaches recorded, 4 notifications written"
    )
    assert lines[1].startswith(f"breach incident #{ticket.id} response due ")
    assert lines[1].endswith("Asia/Shanghai: Ward 3 printer down")
    assert lines[2].startswith(f"breach incident #{ticket.id} resolution due ")
    assert "stale sys_a running 1.0.0 last update unknown" in result.output
    assert "1 stale of 1 systems" in result.output
    assert lines[-1] == "mail: off (SMTP_HOST is not set)"

    app.config.update(MAIL)
    again = runner.invoke(args=["sla", "sweep"])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[0] == (
        "sla: 1 open incidents checked, 0 warnings and 0 breaches recorded, 0 notifications written"
    )
    assert "breach incident" not in again.output
    assert again.output.splitlines()[-1] == "mail: 0 sent, 0 failed, 0 without an address"
    assert fake_smtp.instances == []
    with _sessions(app)() as check:
        assert len(alerts(check)) == 2 and len(notes(check)) == 4
