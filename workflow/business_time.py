"""Deadline arithmetic on a 7×24 clock or within business hours (DOMAIN §4; docs/SLA.md).

Every instant in and out is a naive UTC ``datetime``, as stored. A business clock works in its
contract's time zone: working days come from the :class:`WorkingCalendar` (statutory holidays,
make-up days, overrides), business hours are one or two intervals of each working day (the day
with its lunch break cut out). Arithmetic walks day by day and interval by interval, never minute
by minute: adding ten working days touches a dozen days, whatever the length of the holiday.

An amount of time that ends exactly at a closing time is due at that closing time (the earliest
instant it is used up), not at the next opening.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from workflow.business_calendar import WorkingCalendar

ZERO = timedelta(0)
# A calendar whose overrides declare every day a holiday has no working time at all; give up
# after ten years rather than loop for ever.
MAX_DAYS = 3660
# Stretches a business clock remembers having measured (~300 bytes each).
MEASURED_MEMO = 4096


@lru_cache(maxsize=8192)
def _local_date(at: datetime, timezone: ZoneInfo) -> date:
    # A ticket's clocks convert the same few instants (its history) on every transition, for
    # each target and twice per stretch: kept per process, as pure as the conversion itself
    # (8k instants and 4k days hold ~4.5 MB when full; a page of tickets or a long ticket's
    # history fits many times over).
    return at.replace(tzinfo=UTC).astimezone(timezone).date()


@lru_cache(maxsize=4096)
def _utc_intervals(
    day: date, intervals: tuple[tuple[time, time], ...], timezone: ZoneInfo
) -> tuple[tuple[datetime, datetime], ...]:
    # One local day's business intervals as naive UTC pairs, whichever contract asks (the
    # working-day check, which depends on the calendar overrides, stays with the clock).
    def utc(at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=timezone).astimezone(UTC).replace(tzinfo=None)

    return tuple((utc(begin), utc(end)) for begin, end in intervals)


class NoWorkingTime(ValueError):
    """The calendar has no business time within ten years of the start."""


class WallClock:
    """The 7×24 clock: every minute counts."""

    kind = "7x24"

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant ``amount`` after ``start``."""
        return start + max(amount, ZERO)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Time counted in ``[start, end)`` (zero when ``end`` is not after ``start``)."""
        return max(end - start, ZERO)

    def measured(self, start: datetime, end: datetime) -> timedelta:
        """:meth:`elapsed` (nothing worth remembering on this clock)."""
        return self.elapsed(start, end)

    def is_open(self, at: datetime) -> bool:
        """Always: the 7×24 clock never closes."""
        return True

    def next_opening(self, at: datetime) -> datetime:
        """``at`` itself."""
        return at


def _parse_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def day_intervals(hours: dict) -> list[tuple[time, time]]:
    """A policy's ``business_hours`` ({start, end, lunch}) as the intervals of one working day."""
    start, end = _parse_time(hours["start"]), _parse_time(hours["end"])
    lunch = hours.get("lunch")
    if not lunch:
        return [(start, end)]
    return [(start, _parse_time(lunch["start"])), (_parse_time(lunch["end"]), end)]


class BusinessClock:
    """Business hours on working days, in one time zone."""

    kind = "business_hours"

    def __init__(
        self,
        calendar: WorkingCalendar,
        intervals: list[tuple[time, time]],
        timezone: ZoneInfo,
    ):
        self.calendar = calendar
        self.intervals = intervals
        self.timezone = timezone
        self._intervals = tuple(intervals)
        self._days: dict[date, tuple[tuple[datetime, datetime], ...]] = {}
        self._measured: dict[tuple[datetime, datetime], timedelta] = {}

    @property
    def day_length(self) -> timedelta:
        """Business time in one working day (what "one working day" of a target is worth)."""
        return sum(
            (
                datetime.combine(date.min, end) - datetime.combine(date.min, start)
                for start, end in self.intervals
            ),
            ZERO,
        )

    def local_date(self, at: datetime) -> date:
        """The contract-local calendar day of a naive UTC instant."""
        return _local_date(at, self.timezone)

    def open_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The business intervals of one local day as naive UTC pairs; none on a day off."""
        found = self._days.get(day)
        if found is None:
            found = (
                _utc_intervals(day, self._intervals, self.timezone)
                if self.calendar.is_working_day(day)
                else ()
            )
            self._days[day] = found
        return found

    def _intervals_from(self, at: datetime):
        """Business intervals that end after ``at``, in order (raises NoWorkingTime)."""
        day = self.local_date(at)
        for _ in range(MAX_DAYS):
            for begin, end in self.open_intervals(day):
                if end > at:
                    yield begin, end
            day += timedelta(days=1)
        raise NoWorkingTime(f"no business time within {MAX_DAYS} days of {at:%Y-%m-%d}")

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which ``amount`` of business time after ``start`` is used up.

        Raises NoWorkingTime when the calendar has no working day for ten years.
        """
        if amount <= ZERO:
            return start
        for begin, end in self._intervals_from(start):
            begin = max(begin, start)
            available = end - begin
            if amount <= available:
                return begin + amount
            amount -= available
        raise AssertionError("unreachable: _intervals_from raises when it runs out")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time in ``[start, end)``."""
        if end <= start:
            return ZERO
        total = ZERO
        day, last = self.local_date(start), self.local_date(end)
        while day <= last:
            for begin, finish in self.open_intervals(day):
                overlap = min(finish, end) - max(begin, start)
                if overlap > ZERO:
                    total += overlap
            day += timedelta(days=1)
        return total

    def measured(self, start: datetime, end: datetime) -> timedelta:
        """:meth:`elapsed`, remembered: a ticket's closed stretches are measured again every
        time its clocks are shown, and a long ticket has a hundred of them."""
        key = (start, end)
        found = self._measured.get(key)
        if found is None:
            if len(self._measured) >= MEASURED_MEMO:
                self._measured.clear()
            found = self._measured[key] = self.elapsed(start, end)
        return found

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls inside business hours on a working day."""
        return any(begin <= at < end for begin, end in self.open_intervals(self.local_date(at)))

    def next_opening(self, at: datetime) -> datetime:
        """``at`` when open, else the next opening (raises NoWorkingTime)."""
        begin, _ = next(self._intervals_from(at))
        return max(begin, at)

    def add_working_days(self, start: datetime, days) -> datetime:
        """``days`` working days (a multiple of 0.5) after ``start``.

        A start inside business hours at 16:00 gives 16:00 on the Nth next working day; a start
        outside them counts from the next opening. Half a day is half the business day's length.
        Raises NoWorkingTime.
        """
        return self.add(start, self.day_length * float(days))
