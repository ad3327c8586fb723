"""IT's overrides of the working-day calendar, and one year of it as the calendar page shows it.

DOMAIN §4: working days follow the Chinese statutory calendar (public holidays off, weekend
make-up working days 调休 on) from the ``holidays`` library; IT may declare a single date a working
day or a day off, with a reason, and the override wins (``WorkingCalendar``). Every change is a
security event, so the auditor sees who moved which date and why. A year beyond the library's
official data is *provisional* and says so.

Operations only add, change and flush; the caller commits.
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache

from holidays.countries.china import China
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import CalendarOverride, User, utcnow
from workflow.business_calendar import (
    LAST_OFFICIAL_YEAR,
    _statutory,
    forget_overrides,
    is_provisional,
)
from workflow.errors import Forbidden, InvalidInput, NotFound, StaleVersion
from workflow.security_log import record_security_event

# Security event kinds (the auditor's page labels them).
CALENDAR_OVERRIDE_SET = "calendar_override_set"
CALENDAR_OVERRIDE_REMOVED = "calendar_override_removed"

EDIT_ROLES = frozenset({"it_staff"})
VIEW_ROLES = frozenset({"it_staff", "it_signer", "it_dba"})
REASON_MAX = 300
# Years the page and the overrides accept: the library knows China from 1950, the make-up
# day tables from 2001; far-future years would only ever be provisional guesses.
MIN_YEAR, MAX_YEAR = 2000, 2099
HOLIDAY_LANGUAGES = ("zh_CN", "en_US")

# Why a day works or not, from the most to the least specific.
WORKDAY, WEEKEND, HOLIDAY, MAKEUP, OVERRIDE = "workday", "weekend", "holiday", "makeup", "override"


def _roles(actor) -> set[str]:
    return actor.role_names() if actor is not None else set()


def may_view(actor) -> bool:
    """Whether the actor reads the calendar page (the hospital's IT staff, signers and DBAs)."""
    return bool(_roles(actor) & VIEW_ROLES)


def may_edit(actor) -> bool:
    """Whether the actor sets and removes overrides (IT staff only)."""
    return bool(_roles(actor) & EDIT_ROLES)


def _ensure_edit(actor) -> None:
    if not may_edit(actor):
        raise Forbidden(
            "Only IT staff may change the working-day calendar.", {"roles": sorted(EDIT_ROLES)}
        )


def check_year(year) -> int:
    """The year as an int within MIN_YEAR…MAX_YEAR; InvalidInput otherwise."""
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(
            "The calendar covers the years 2000 to 2099.",
            {"fields": {"year": [f"A year between {MIN_YEAR} and {MAX_YEAR}."]}},
        )
    return year


def _check_day(day) -> date:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidInput("Choose a date.", {"fields": {"day": ["A date (YYYY-MM-DD)."]}})
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidInput(
            "The calendar covers the years 2000 to 2099.",
            {"fields": {"day": [f"A date between {MIN_YEAR} and {MAX_YEAR}."]}},
        )
    return day


def statutory_status(day: date) -> tuple[bool, str]:
    """(is working, why) on the statutory calendar alone: make-up day, holiday, weekend."""
    off, worked = _statutory(day.year)
    if day in worked:
        return True, MAKEUP
    if day in off:
        return False, HOLIDAY
    if day.weekday() >= 5:
        return False, WEEKEND
    return True, WORKDAY


def _describe(working: bool, why: str, reason: str | None = None) -> str:
    """One status in words for the audit trail (stored text, hence English)."""
    kind = "working day" if working else "day off"
    if why == OVERRIDE:
        return f"override: {kind} ({reason})"
    return f"statutory {kind} ({why})"


def _override(session: Session, day: date) -> CalendarOverride | None:
    return session.scalar(select(CalendarOverride).where(CalendarOverride.day == day))


def set_override(
    session: Session, actor, day: date, working: bool, reason: str
) -> CalendarOverride:
    """Declare ``day`` a working day (``working=True``) or a day off, with a reason; a second
    call for the same date replaces the first. Recorded as a security event naming the date,
    the status before and after, and the reason.

    Raises Forbidden unless the actor is IT staff; InvalidInput for a missing date or status,
    a year outside 2000…2099, or a reason that is empty or longer than 300 characters;
    StaleVersion when someone else set the same date at the same moment.
    """
    _ensure_edit(actor)
    day = _check_day(day)
    if not isinstance(working, bool):
        raise InvalidInput(
            "Say whether the date is a working day or a day off.",
            {"fields": {"working": ["true (working day) or false (day off)."]}},
        )
    reason = (reason or "").strip() if isinstance(reason, str) or reason is None else None
    if not reason:
        raise InvalidInput("Say why.", {"fields": {"reason": ["Required."]}})
    if len(reason) > REASON_MAX:
        raise InvalidInput(
            "The reason is longer than 300 characters.",
            {"fields": {"reason": [f"At most {REASON_MAX} characters."]}},
        )
    existing = _override(session, day)
    if existing is not None:
        if existing.working == working and existing.reason == reason:
            return existing  # nothing changes, nothing to record
        before = _describe(existing.working, OVERRIDE, existing.reason)
        existing.working, existing.reason = working, reason
        existing.created_by_id, existing.created_at = getattr(actor, "id", None), utcnow()
        override = existing
        session.flush()
    else:
        before = _describe(*statutory_status(day))
        override = CalendarOverride(
            day=day,
            working=working,
            reason=reason,
            created_by_id=getattr(actor, "id", None),
            created_at=utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(override)
        except IntegrityError as exc:  # the same date inserted concurrently (unique day)
            raise StaleVersion(
                "Someone else changed this date at the same time; reload and try again.",
                {"day": day.isoformat()},
            ) from exc
    forget_overrides(session)
    after = _describe(working, OVERRIDE, reason)
    record_security_event(
        session,
        CALENDAR_OVERRIDE_SET,
        actor,
        f"calendar {day.isoformat()}",
        f"{before} → {after}",
    )
    return override


def remove_override(session: Session, actor, day: date) -> None:
    """Remove IT's override of ``day``: the statutory calendar applies again. Audited.

    Raises Forbidden unless the actor is IT staff; NotFound when the date has no override.
    """
    _ensure_edit(actor)
    day = _check_day(day)
    existing = _override(session, day)
    if existing is None:
        raise NotFound("There is no override on this date.", {"day": day.isoformat()})
    before = _describe(existing.working, OVERRIDE, existing.reason)
    after = _describe(*statutory_status(day))
    session.delete(existing)
    session.flush()
    forget_overrides(session)
    record_security_event(
        session,
        CALENDAR_OVERRIDE_REMOVED,
        actor,
        f"calendar {day.isoformat()}",
        f"{before} → {after}",
    )


# ---------------------------------------------------------------- read side


@lru_cache(maxsize=64)
def holiday_names(year: int, language: str = "zh_CN") -> dict[date, str]:
    """The statutory days off of ``year`` with their names (``zh_CN`` or ``en_US``)."""
    language = language if language in HOLIDAY_LANGUAGES else "zh_CN"
    table = China(years=year, language=language)
    return {day: name for day, name in sorted(table.items()) if day.year == year}


@dataclass(frozen=True)
class OverrideLine:
    """One override as the page lists it, with what the statutory calendar would say."""

    day: date
    working: bool
    reason: str
    by: str
    at: datetime
    statutory_working: bool
    statutory_why: str


@dataclass(frozen=True)
class CalendarDay:
    """One date: whether it is worked, why (workday, weekend, holiday, makeup, override), the
    holiday's name, and the statutory status an override replaces."""

    day: date
    working: bool
    why: str
    holiday: str | None
    statutory_working: bool
    statutory_why: str
    override: OverrideLine | None = None


@dataclass
class MonthView:
    """One month: its days, and the same days as Monday-first weeks padded with None."""

    month: int
    days: list[CalendarDay]

    @property
    def weeks(self) -> list[list[CalendarDay | None]]:
        lead = self.days[0].day.weekday()
        cells: list[CalendarDay | None] = [None] * lead + list(self.days)
        cells += [None] * (-len(cells) % 7)
        return [cells[i : i + 7] for i in range(0, len(cells), 7)]

    @property
    def working_days(self) -> int:
        return sum(d.working for d in self.days)


@dataclass
class YearView:
    """One year of the calendar: the statutory days off (with names), the make-up working
    days, IT's overrides, whether the year is provisional, and per month every day."""

    year: int
    provisional: bool
    last_official_year: int
    days_off: list[tuple[date, str]] = field(default_factory=list)
    makeup_days: list[date] = field(default_factory=list)
    overrides: list[OverrideLine] = field(default_factory=list)
    months: list[MonthView] = field(default_factory=list)

    @property
    def working_days(self) -> int:
        return sum(m.working_days for m in self.months)

    def day(self, day: date) -> CalendarDay:
        """The entry of one date of this year."""
        return self.months[day.month - 1].days[day.day - 1]


def year_view(session: Session, year: int, language: str = "zh_CN") -> YearView:
    """The year as the calendar page shows it (holiday names in ``language``).

    Raises InvalidInput for a year outside 2000…2099.
    """
    year = check_year(year)
    off, worked = _statutory(year)
    names = holiday_names(year, language)
    rows = session.execute(
        select(CalendarOverride, User.username)
        .outerjoin(User, User.id == CalendarOverride.created_by_id)
        .where(CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))
        .order_by(CalendarOverride.day)
    ).all()
    overrides = {}
    for row, username in rows:
        statutory_working, statutory_why = statutory_status(row.day)
        overrides[row.day] = OverrideLine(
            day=row.day,
            working=row.working,
            reason=row.reason,
            by=username or "",
            at=row.created_at,
            statutory_working=statutory_working,
            statutory_why=statutory_why,
        )
    months = []
    for month in range(1, 13):
        days = []
        for number in range(1, _calendar.monthrange(year, month)[1] + 1):
            day = date(year, month, number)
            statutory_working, statutory_why = statutory_status(day)
            line = overrides.get(day)
            days.append(
                CalendarDay(
                    day=day,
                    working=line.working if line else statutory_working,
                    why=OVERRIDE if line else statutory_why,
                    holiday=names.get(day) if day in off else None,
                    statutory_working=statutory_working,
                    statutory_why=statutory_why,
                    override=line,
                )
            )
        months.append(MonthView(month=month, days=days))
    return YearView(
        year=year,
        provisional=is_provisional(year),
        last_official_year=LAST_OFFICIAL_YEAR,
        days_off=[(day, names.get(day, "")) for day in sorted(off)],
        makeup_days=sorted(worked),
        overrides=list(overrides.values()),
        months=months,
    )
