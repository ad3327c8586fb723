"""Security events for IT: recorded in their own table, outside any request's hash chain.

``record_security_event`` only adds and flushes; the caller decides when it is committed. An
event noticed by a request that then fails must be written in its own short transaction (see
``web.api.views.download_attachment``), or it would be rolled back with the request.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import SecurityEvent, utcnow

# The kinds recorded so far (kept short: the auditor's page shows them with a label).
ATTACHMENT_INTEGRITY_FAILED = "attachment_integrity_failed"


def record_security_event(
    session: Session, kind: str, actor, subject: str, detail: str = ""
) -> SecurityEvent:
    """Add one security event (who: ``actor``, a user or None for the system) and flush it."""
    event = SecurityEvent(
        at=utcnow(),
        kind=kind[:60],
        actor_id=getattr(actor, "id", None),
        actor_name=(getattr(actor, "username", None) or "system")[:80],
        subject=subject[:200],
        detail=detail or "",
    )
    session.add(event)
    session.flush()
    return event
