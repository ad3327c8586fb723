"""The Chinese statutory working-day calendar: public holidays and make-up working days (调休).

DOMAIN §4. The official schedule for a year is published by the State Council each November;
the ``holidays`` library carries it for the years it has been told about. A later year is still
answered — weekends off, the fixed-date and lunar festivals off — but is *provisional*: the
make-up days and bridge days are not known yet, and pages and the API say so instead of
presenting a guess as final. Administrator overrides (a date declared a holiday or a working
day, with a reason) win over the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache
from time import monotonic
from weakref import WeakKeyDictionary

from holidays.countries.china import China, ChinaStaticHolidays
from sqlalchemy import select

from models import CalendarOverride

# The last year whose official schedule (bridge days and make-up working days) the library
# carries: the years of its table of State Council arrangements.
LAST_OFFICIAL_YEAR = max(ChinaStaticHolidays.special_public_holidays)


@lru_cache(maxsize=64)
def _statutory(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(days off, weekend days worked) of one year, from the library."""
    table = China(years=year)
    off = frozenset(day for day in table if day.year == year)
    worked = frozenset(day for day in table.weekend_workdays if day.year == year)
    return off, worked


def is_provisional(year: int) -> bool:
    """Whether the year's official holiday schedule is not yet in the data."""
    return year > LAST_OFFICIAL_YEAR


class WorkingCalendar:
    """Working days on the statutory calendar, with per-date overrides (``date → is working``).

    With ``statutory=False`` (a policy's ``workdays: weekdays``) Monday to Friday work and the
    statutory holidays and make-up days are ignored; overrides still win.
    """

    def __init__(self, overrides: Mapping[date, bool] | None = None, statutory: bool = True):
        self.overrides = dict(overrides or {})
        self.statutory = statutory

    def is_working_day(self, day: date) -> bool:
        """True on a working day: overrides first, then make-up days, weekends and holidays."""
        if day in self.overrides:
            return self.overrides[day]
        if not self.statutory:
            return day.weekday() < 5
        off, worked = _statutory(day.year)
        if day in worked:
            return True
        return day.weekday() < 5 and day not in off

    def add_working_days(self, day: date, count: int) -> date:
        """The ``count``-th working day after ``day`` (``day`` itself never counts).

        Raises ValueError for a negative count.
        """
        if count < 0:
            raise ValueError("count must not be negative")
        # Whole weeks cannot be skipped arithmetically: a holiday week has no working days.
        # A year holds at most ~10 holiday days beyond weekends, so this walk stays short.
        while count:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many have passed since ``start`` by ``end``."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count


STATUTORY = WorkingCalendar()


# Overrides are read on every page that shows a deadline, and change a few times a year: each
# process keeps them per database for a few seconds (and drops them at once when it writes one).
OVERRIDES_TTL_SECONDS = 5.0
_overrides_cache: WeakKeyDictionary = WeakKeyDictionary()


def load_overrides(session) -> dict[date, bool]:
    """Every calendar override IT has set, as ``date → is working`` (at most a few seconds old
    when another process changed them)."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    cached = _overrides_cache.get(engine)
    now = monotonic()
    if cached is not None and now - cached[0] < OVERRIDES_TTL_SECONDS:
        return cached[1]
    found = dict(session.execute(select(CalendarOverride.day, CalendarOverride.working)).all())
    _overrides_cache[engine] = (now, found)
    return found


def forget_overrides(session) -> None:
    """Drop this process's copy of the overrides (after IT changed one)."""
    bind = session.get_bind()
    _overrides_cache.pop(getattr(bind, "engine", bind), None)
