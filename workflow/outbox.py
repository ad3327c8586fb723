"""Mail the outbox: notifications not mailed yet go out by SMTP when a mail server is set.

Settings are the Flask config keys ``SMTP_HOST`` (mail is off while it is empty), ``SMTP_PORT``
(25), ``SMTP_USER`` and ``SMTP_PASSWORD`` (log in when a user is set), ``SMTP_STARTTLS``
(False) and ``MAIL_FROM``. A notification is mailed to its user's email address; a notification
whose user has none stays in the in-app inbox only. Each message sent gets ``mailed_at``; a
failure leaves it empty (the next run tries again) and is reported, never raised.

Only unread notifications of active users with an address (``User.email``) are mailed: one
already read in the app needs no mail, and users without an address never block the queue.
Operations flush; the caller commits.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Notification, User

BATCH = 500
TIMEOUT_SECONDS = 30
MAIL_OFF = "Mail is off: SMTP_HOST is not set."


@dataclass(frozen=True)
class MailSettings:
    """How to reach the mail server."""

    host: str
    port: int = 25
    user: str = ""
    password: str = ""
    starttls: bool = False
    sender: str = ""

    @classmethod
    def from_config(cls, config: Mapping) -> MailSettings | None:
        """The settings from Flask-style config keys; None when ``SMTP_HOST`` is empty."""
        host = str(config.get("SMTP_HOST") or "").strip()
        if not host:
            return None
        user = str(config.get("SMTP_USER") or "")
        sender = str(config.get("MAIL_FROM") or "") or (user if "@" in user else "")
        return cls(
            host=host,
            port=int(config.get("SMTP_PORT") or 25),
            user=user,
            password=str(config.get("SMTP_PASSWORD") or ""),
            starttls=_flag(config.get("SMTP_STARTTLS", False)),
            sender=sender or f"changeflow@{host}",
        )


def _flag(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass
class OutboxResult:
    """What one run of the outbox did."""

    enabled: bool
    sent: int = 0
    without_address: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (notification id, reason)
    message: str = ""

    @property
    def failed(self) -> int:
        """How many messages could not be sent."""
        return len(self.failures)


def _email_of(user: User) -> str | None:
    return user.email


def send_pending(
    session: Session,
    settings: Mapping | MailSettings | None,
    now: datetime,
    *,
    address_of: Callable[[User], str | None] | None = None,
    limit: int = BATCH,
) -> OutboxResult:
    """Mail up to ``limit`` unmailed notifications of active users; set ``mailed_at`` on each
    one sent. Never raises for mail problems: they are in the result's ``failures``."""
    mail = (
        settings if isinstance(settings, MailSettings) else MailSettings.from_config(settings or {})
    )
    if mail is None:
        return OutboxResult(enabled=False, message=MAIL_OFF)
    result = OutboxResult(enabled=True)
    query = (
        select(Notification, User)
        .join(User, User.id == Notification.user_id)
        .where(
            Notification.mailed_at.is_(None),
            Notification.read_at.is_(None),
            User.is_active.is_(True),
        )
        .order_by(Notification.id)
        .limit(limit)
    )
    if address_of is None:
        address_of = _email_of
        query = query.where(User.email.is_not(None), User.email != "")
    if session.get_bind().dialect.name == "postgresql":
        # Two nodes mailing at once each take different rows: nobody gets a message twice.
        query = query.with_for_update(of=Notification, skip_locked=True)
    pending = []
    for notification, user in session.execute(query):
        address = (address_of(user) or "").strip()
        if address:
            pending.append((notification, address))
        else:
            result.without_address += 1
    if not pending:
        return result
    try:
        smtp = _connect(mail)
    except (smtplib.SMTPException, OSError) as exc:
        reason = f"cannot reach the mail server {mail.host}:{mail.port}: {_reason(exc)}"
        result.failures.extend((n.id, reason) for n, _ in pending)
        result.message = reason
        return result
    try:
        for notification, address in pending:
            try:
                smtp.send_message(_message(notification, address, mail.sender, now))
            except (smtplib.SMTPException, OSError, ValueError) as exc:
                result.failures.append((notification.id, f"to {address}: {_reason(exc)}"))
                if isinstance(exc, smtplib.SMTPServerDisconnected):
                    break
                continue
            notification.mailed_at = now
            result.sent += 1
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
    sent_ids = {n.id for n, _ in pending if n.mailed_at is not None}
    failed_ids = {i for i, _ in result.failures}
    for notification, address in pending:  # left over after a disconnect
        if notification.id not in sent_ids and notification.id not in failed_ids:
            result.failures.append((notification.id, f"to {address}: not sent (disconnected)"))
    session.flush()
    return result


def _connect(mail: MailSettings):
    smtp = smtplib.SMTP(mail.host, mail.port, timeout=TIMEOUT_SECONDS)
    try:
        if mail.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.user:
            smtp.login(mail.user, mail.password)
    except BaseException:
        with contextlib.suppress(OSError):
            smtp.close()
        raise
    return smtp


def _message(notification: Notification, address: str, sender: str, now: datetime):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = address
    message["Subject"] = notification.subject
    message["Date"] = format_datetime((notification.created_at or now).replace(tzinfo=UTC))
    domain = parseaddr(sender)[1].rpartition("@")[2] or "changeflow.invalid"
    message["Message-ID"] = make_msgid("changeflow", domain=domain)  # no DNS lookup
    message.set_content(notification.body or notification.subject)
    return message


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
