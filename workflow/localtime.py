"""The hospital's own clock: times are stored in UTC, days are Beijing days (Asia/Shanghai).

Per-contract time zones and the working-day calendar arrive with the SLA work; until then every
calendar day the product speaks of (filters, quota periods, promised dates) is a Beijing day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

HOSPITAL_TIMEZONE_NAME = "Asia/Shanghai"
HOSPITAL_TIMEZONE = ZoneInfo(HOSPITAL_TIMEZONE_NAME)


def day_start_utc(day: date) -> datetime:
    """The naive UTC instant at which ``day`` begins at the hospital (stored times are UTC)."""
    local = datetime.combine(day, time(), tzinfo=HOSPITAL_TIMEZONE)
    return local.astimezone(UTC).replace(tzinfo=None)


def hospital_today(now: datetime | None = None) -> date:
    """Today's date at the hospital, whatever the server's zone (a naive ``now`` is UTC, as
    stored times are)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(HOSPITAL_TIMEZONE).date()


def stamp_day(stamp: str) -> date:
    """The hospital day of a stored ``…Z`` timestamp (as ``record_actor`` writes them).

    Raises ValueError for text that is not an ISO timestamp.
    """
    return hospital_today(datetime.fromisoformat(stamp.removesuffix("Z")))
