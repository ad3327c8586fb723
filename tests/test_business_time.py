"""The working-day calendar and the deadline arithmetic (DOMAIN §4; docs/SLA.md).

The calendar is checked against the State Council's published 2026 schedule; the business clock
against a brute-force oracle that walks one minute at a time, and against the worked examples
of docs/SLA.md. All instants handed to the clocks are naive UTC, as stored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflow.business_calendar import LAST_OFFICIAL_YEAR, WorkingCalendar, is_provisional
from workflow.business_time import BusinessClock, NoWorkingTime, WallClock, day_intervals

SHANGHAI = ZoneInfo("Asia/Shanghai")
MINUTE = timedelta(minutes=1)
HOURS = {"start": "08:00", "end": "18:00", "lunch": None}
HOURS_LUNCH = {"start": "08:00", "end": "18:00", "lunch": {"start": "12:00", "end": "14:00"}}


def bj(text: str) -> datetime:
    """A Beijing wall-clock time ("2026-09-30 16:00") as the naive UTC instant stored."""
    return datetime.fromisoformat(text) - timedelta(hours=8)


def clock(hours=HOURS, overrides=None, statutory=True, timezone=SHANGHAI) -> BusinessClock:
    return BusinessClock(WorkingCalendar(overrides, statutory), day_intervals(hours), timezone)


def days(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# The statutory calendar


class TestPublished2026Schedule:
    """国务院办公厅关于2026年部分节假日安排的通知, as published in November 2025."""

    cal = WorkingCalendar()

    @pytest.mark.parametrize(
        ("first", "last", "what"),
        [
            (date(2026, 1, 1), date(2026, 1, 3), "New Year"),
            (date(2026, 2, 15), date(2026, 2, 23), "Spring Festival"),
            (date(2026, 4, 4), date(2026, 4, 6), "Qingming"),
            (date(2026, 5, 1), date(2026, 5, 5), "Labour Day"),
            (date(2026, 6, 19), date(2026, 6, 21), "Dragon Boat"),
            (date(2026, 9, 25), date(2026, 9, 27), "Mid-Autumn"),
            (date(2026, 10, 1), date(2026, 10, 7), "National Day"),
        ],
    )
    def test_every_day_of_a_holiday_is_off(self, first, last, what):
        assert [d for d in days(first, last) if self.cal.is_working_day(d)] == [], what

    @pytest.mark.parametrize(
        "day",
        [
            date(2026, 1, 4),  # Sunday, New Year
            date(2026, 2, 14),  # Saturday, Spring Festival
            date(2026, 2, 28),  # Saturday, Spring Festival
            date(2026, 5, 9),  # Saturday, Labour Day
            date(2026, 9, 20),  # Sunday, National Day
            date(2026, 10, 10),  # Saturday, National Day
        ],
    )
    def test_make_up_weekend_days_are_working_days(self, day):
        assert day.weekday() >= 5
        assert self.cal.is_working_day(day)

    @pytest.mark.parametrize(
        "day",
        [
            date(2026, 2, 13),  # Friday before the Spring Festival
            date(2026, 2, 24),  # Tuesday after it
            date(2026, 9, 30),  # Wednesday before National Day
            date(2026, 10, 8),  # Thursday after it
            date(2026, 10, 9),
        ],
    )
    def test_weekdays_around_the_holidays_are_working_days(self, day):
        assert self.cal.is_working_day(day)

    @pytest.mark.parametrize(
        "day", [date(2026, 10, 11), date(2026, 2, 21), date(2026, 2, 22), date(2026, 3, 1)]
    )
    def test_ordinary_weekends_are_off(self, day):
        assert not self.cal.is_working_day(day)

    def test_working_days_of_national_day_week_and_the_fortnight_around_it(self):
        fortnight = days(date(2026, 9, 19), date(2026, 10, 11))
        worked = [d for d in fortnight if self.cal.is_working_day(d)]
        assert worked == [
            date(2026, 9, 20),
            date(2026, 9, 21),
            date(2026, 9, 22),
            date(2026, 9, 23),
            date(2026, 9, 24),
            date(2026, 9, 28),
            date(2026, 9, 29),
            date(2026, 9, 30),
            date(2026, 10, 8),
            date(2026, 10, 9),
            date(2026, 10, 10),
        ]

    def test_add_working_days_jumps_the_holidays(self):
        assert self.cal.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
        assert self.cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
        assert self.cal.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)
        assert self.cal.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)
        assert self.cal.add_working_days(date(2026, 10, 1), 0) == date(2026, 10, 1)

    def test_add_working_days_refuses_a_negative_count(self):
        with pytest.raises(ValueError):
            self.cal.add_working_days(date(2026, 9, 30), -1)

    def test_working_days_between(self):
        # (9/30, 10/10]: 10/8, 10/9, 10/10.
        assert self.cal.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
        assert self.cal.working_days_between(date(2026, 10, 1), date(2026, 10, 1)) == 0


class TestOverrides:
    def test_an_override_declares_a_holiday_working(self):
        cal = WorkingCalendar({date(2026, 10, 2): True})
        assert cal.is_working_day(date(2026, 10, 2))
        assert not cal.is_working_day(date(2026, 10, 1))
        assert cal.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 2)

    def test_an_override_declares_a_make_up_day_off(self):
        cal = WorkingCalendar({date(2026, 10, 10): False})
        assert not cal.is_working_day(date(2026, 10, 10))
        assert cal.add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 12)

    def test_an_override_declares_an_ordinary_weekday_off_and_a_weekend_working(self):
        cal = WorkingCalendar({date(2026, 11, 3): False, date(2026, 11, 7): True})
        assert not cal.is_working_day(date(2026, 11, 3))
        assert cal.is_working_day(date(2026, 11, 7))
        assert not cal.is_working_day(date(2026, 11, 8))

    def test_overrides_also_win_without_the_statutory_calendar(self):
        cal = WorkingCalendar({date(2026, 10, 1): False, date(2026, 10, 3): True}, statutory=False)
        assert not cal.is_working_day(date(2026, 10, 1))
        assert cal.is_working_day(date(2026, 10, 3))

    def test_clocks_sharing_hours_and_zone_keep_their_own_overrides(self):
        # The UTC intervals of a day are kept per process for every clock with the same hours
        # and zone; whether the day is worked at all must stay each clock's own calendar's.
        day_off = clock(overrides={date(2026, 11, 3): False})
        plain = clock()
        start, end = bj("2026-11-03 08:00"), bj("2026-11-03 20:00")
        for _ in range(2):  # the second round reads what the first one left in the caches
            assert plain.elapsed(start, end) == timedelta(hours=10)
            assert day_off.elapsed(start, end) == timedelta(0)
            assert not day_off.is_open(bj("2026-11-03 10:00"))
            assert plain.is_open(bj("2026-11-03 10:00"))
        # Another zone gets the same wall-clock hours at its own UTC instants: 08:00-20:00 in
        # Beijing is 09:00-21:00 in Tokyo, so nine of Tokyo's 08:00-18:00 hours.
        tokyo = clock(timezone=ZoneInfo("Asia/Tokyo"))
        assert tokyo.elapsed(start, end) == timedelta(hours=9)


class TestWeekdaysOnly:
    cal = WorkingCalendar(statutory=False)

    def test_holidays_and_make_up_days_are_ignored(self):
        assert all(self.cal.is_working_day(d) for d in days(date(2026, 10, 1), date(2026, 10, 2)))
        assert all(self.cal.is_working_day(d) for d in days(date(2026, 2, 16), date(2026, 2, 20)))
        assert not self.cal.is_working_day(date(2026, 10, 10))
        assert not self.cal.is_working_day(date(2026, 9, 20))
        assert self.cal.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 1)


class TestProvisionalYears:
    def test_2026_is_published(self):
        assert LAST_OFFICIAL_YEAR >= 2026
        assert not is_provisional(2026)
        assert not is_provisional(2025)

    def test_the_year_after_the_last_published_one_is_provisional(self):
        assert is_provisional(LAST_OFFICIAL_YEAR + 1)
        assert not is_provisional(LAST_OFFICIAL_YEAR)

    def test_a_provisional_year_still_has_the_fixed_holidays_and_weekends(self):
        cal = WorkingCalendar()
        year = LAST_OFFICIAL_YEAR + 1
        assert not cal.is_working_day(date(year, 1, 1))
        assert not cal.is_working_day(date(year, 10, 1))
        saturday = next(d for d in days(date(year, 3, 1), date(year, 3, 7)) if d.weekday() == 5)
        assert not cal.is_working_day(saturday)


# ---------------------------------------------------------------------------------------------
# Worked examples (docs/SLA.md)


class TestWorkedExamples:
    def test_day_length(self):
        assert clock(HOURS).day_length == timedelta(hours=10)
        assert clock(HOURS_LUNCH).day_length == timedelta(hours=8)

    def test_day_intervals(self):
        assert day_intervals(HOURS) == [(time(8), time(18))]
        assert day_intervals(HOURS_LUNCH) == [(time(8), time(12)), (time(14), time(18))]

    def test_one_working_day_over_national_day(self):
        # Wednesday 16:00 + 1 working day = 16:00 on the next working day, Thursday 10-08.
        assert clock().add_working_days(bj("2026-09-30 16:00"), 1) == bj("2026-10-08 16:00")

    def test_friday_evening_counts_from_the_make_up_saturday(self):
        # Friday 10-09 20:00 is outside hours: the clock starts Saturday 10-10 08:00 (调休).
        c = clock()
        assert c.next_opening(bj("2026-10-09 20:00")) == bj("2026-10-10 08:00")
        assert c.add_working_days(bj("2026-10-09 20:00"), 1) == bj("2026-10-10 18:00")
        assert c.add_working_days(bj("2026-10-09 20:00"), 2) == bj("2026-10-12 18:00")

    def test_ordinary_friday_evening(self):
        # Friday 2026-11-06 20:00 + 1 working day = Monday 18:00.
        assert clock().add_working_days(bj("2026-11-06 20:00"), 1) == bj("2026-11-09 18:00")

    def test_an_amount_ending_at_closing_time_is_due_at_closing_time(self):
        c = clock()
        assert c.add(bj("2026-11-02 16:00"), timedelta(hours=2)) == bj("2026-11-02 18:00")
        assert c.add(bj("2026-11-02 16:00"), timedelta(hours=2, minutes=1)) == bj(
            "2026-11-03 08:01"
        )
        # A start at opening time plus a whole day ends the same evening.
        assert c.add_working_days(bj("2026-11-02 08:00"), 1) == bj("2026-11-02 18:00")

    def test_lunch_break_does_not_count(self):
        c = clock(HOURS_LUNCH)
        assert c.add(bj("2026-11-02 11:00"), timedelta(hours=2)) == bj("2026-11-02 15:00")
        assert c.add(bj("2026-11-02 11:00"), timedelta(hours=1)) == bj("2026-11-02 12:00")
        assert c.add(bj("2026-11-02 12:30"), timedelta(minutes=30)) == bj("2026-11-02 14:30")
        assert c.elapsed(bj("2026-11-02 11:00"), bj("2026-11-02 15:00")) == timedelta(hours=2)
        assert not c.is_open(bj("2026-11-02 12:00"))
        assert c.is_open(bj("2026-11-02 14:00"))
        assert c.next_opening(bj("2026-11-02 12:30")) == bj("2026-11-02 14:00")

    def test_lunch_break_working_days(self):
        c = clock(HOURS_LUNCH)
        # Monday 10:00 + 1/3/5 working days of 8 hours.
        assert c.add_working_days(bj("2026-11-02 10:00"), 1) == bj("2026-11-03 10:00")
        assert c.add_working_days(bj("2026-11-02 10:00"), 3) == bj("2026-11-05 10:00")
        assert c.add_working_days(bj("2026-11-02 10:00"), 5) == bj("2026-11-09 10:00")
        # A report in the lunch break counts from 14:00; 5 days end at 12:00, a closing time.
        assert c.add_working_days(bj("2026-11-02 12:30"), 5) == bj("2026-11-09 12:00")
        # Half a working day is four business hours.
        assert c.add_working_days(bj("2026-11-02 10:00"), 0.5) == bj("2026-11-02 16:00")

    def test_elapsed_over_national_day(self):
        c = clock()
        assert c.elapsed(bj("2026-09-30 16:00"), bj("2026-10-08 16:00")) == timedelta(hours=10)
        assert c.elapsed(bj("2026-10-01 09:00"), bj("2026-10-07 17:00")) == timedelta(0)
        assert c.elapsed(bj("2026-10-08 16:00"), bj("2026-09-30 16:00")) == timedelta(0)

    def test_zero_or_negative_amounts_add_nothing(self):
        c = clock()
        start = bj("2026-10-03 03:00")
        assert c.add(start, timedelta(0)) == start
        assert c.add(start, timedelta(minutes=-5)) == start
        assert c.add_working_days(start, 0) == start

    def test_open_and_next_opening_on_holidays(self):
        c = clock()
        assert not c.is_open(bj("2026-10-05 10:00"))
        assert c.next_opening(bj("2026-10-05 10:00")) == bj("2026-10-08 08:00")
        assert c.is_open(bj("2026-09-20 10:00"))  # make-up Sunday
        assert c.is_open(bj("2026-11-02 08:00"))
        assert not c.is_open(bj("2026-11-02 18:00"))
        assert c.next_opening(bj("2026-11-02 09:15")) == bj("2026-11-02 09:15")

    def test_weekdays_only_calendar_works_through_national_day(self):
        c = clock(statutory=False)
        assert c.add_working_days(bj("2026-09-30 16:00"), 1) == bj("2026-10-01 16:00")

    def test_overrides_move_deadlines(self):
        c = clock(overrides={date(2026, 10, 8): False, date(2026, 10, 4): True})
        assert c.add_working_days(bj("2026-09-30 16:00"), 1) == bj("2026-10-04 16:00")

    def test_a_calendar_without_working_days_gives_up(self):
        start = date(2026, 1, 1)
        nothing = {start + timedelta(days=i): False for i in range(3700)}
        c = clock(overrides=nothing)
        with pytest.raises(NoWorkingTime):
            c.add(bj("2026-01-01 10:00"), timedelta(minutes=1))
        with pytest.raises(NoWorkingTime):
            c.next_opening(bj("2026-01-01 10:00"))

    def test_wall_clock(self):
        w = WallClock()
        start = bj("2026-10-01 23:50")
        assert w.add(start, timedelta(minutes=30)) == bj("2026-10-02 00:20")
        assert w.add(start, timedelta(minutes=-30)) == start
        assert w.elapsed(start, bj("2026-10-02 00:20")) == timedelta(minutes=30)
        assert w.elapsed(bj("2026-10-02 00:20"), start) == timedelta(0)
        assert w.is_open(start) and w.next_opening(start) == start

    def test_another_time_zone(self):
        # Urumqi is UTC+6: 08:00-18:00 there is 02:00-12:00 UTC.
        c = clock(timezone=ZoneInfo("Asia/Urumqi"))
        assert c.add_working_days(datetime(2026, 9, 30, 10, 0), 1) == datetime(2026, 10, 8, 10, 0)
        assert c.next_opening(datetime(2026, 11, 2, 0, 0)) == datetime(2026, 11, 2, 2, 0)

    def test_daylight_saving_time(self):
        # Berlin: Friday 2026-03-27 16:00 CET (15:00 UTC) + 1 working day = Monday 03-30 16:00
        # CEST (14:00 UTC): the clocks went forward on Sunday, the business time is the same.
        c = clock(timezone=ZoneInfo("Europe/Berlin"), statutory=False)
        assert c.add_working_days(datetime(2026, 3, 27, 15, 0), 1) == datetime(2026, 3, 30, 14, 0)
        assert c.elapsed(datetime(2026, 3, 27, 15, 0), datetime(2026, 3, 30, 14, 0)) == timedelta(
            hours=10
        )


# ---------------------------------------------------------------------------------------------
# Property tests against a minute-by-minute oracle


class Oracle:
    """Business time by brute force: one minute at a time.

    The minute starting at UTC instant ``m`` counts when its local wall-clock time lies inside
    an interval of a working local day. Stepping over real (UTC) minutes and reading the local
    wall clock keeps the oracle unambiguous across daylight-saving changes.
    """

    def __init__(self, calendar: WorkingCalendar, intervals, timezone: ZoneInfo):
        self.calendar = calendar
        self.intervals = intervals
        self.timezone = timezone
        self._working: dict[date, bool] = {}

    def counts(self, minute: datetime) -> bool:
        local = minute.replace(tzinfo=UTC).astimezone(self.timezone)
        day = local.date()
        working = self._working.get(day)
        if working is None:
            working = self._working[day] = self.calendar.is_working_day(day)
        if not working:
            return False
        at = local.time()
        return any(begin <= at < end for begin, end in self.intervals)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        left = amount // MINUTE
        at = start
        while left > 0:
            if self.counts(at):
                left -= 1
            at += MINUTE
        return at

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        count, at = 0, start
        while at < end:
            count += self.counts(at)
            at += MINUTE
        return count * MINUTE


FIRST = datetime(2025, 1, 1)
LAST = datetime(2027, 12, 31, 23, 59)
# Time zones: China (no DST), Urumqi (UTC+6, so UTC and local dates differ at other hours), and
# Berlin (DST). Business hours stay within 06:00-22:00 local, away from the DST changes at
# 02:00-03:00, so every local business minute exists exactly once.
ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("Asia/Urumqi"), ZoneInfo("Europe/Berlin")]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def business_hours(draw) -> dict:
    """Random ``business_hours``: 06:00-22:00 at most, with or without a lunch break."""
    start = draw(st.integers(6 * 60, 12 * 60))
    end = draw(st.integers(start + 60, 22 * 60))
    hours = {"start": _hhmm(start), "end": _hhmm(end), "lunch": None}
    if end - start >= 3 and draw(st.booleans()):
        lunch_start = draw(st.integers(start + 1, end - 2))
        lunch_end = draw(st.integers(lunch_start + 1, end - 1))
        hours["lunch"] = {"start": _hhmm(lunch_start), "end": _hhmm(lunch_end)}
    return hours


@st.composite
def setups(draw):
    """(clock, oracle, start): a random contract clock and a start on the minute grid."""
    start = draw(st.datetimes(min_value=FIRST, max_value=LAST)).replace(second=0, microsecond=0)
    first_day = start.date() - timedelta(days=2)
    # Overrides near the start, where they matter: up to ~6 weeks ahead.
    overrides = draw(
        st.dictionaries(
            st.integers(0, 45).map(lambda n: first_day + timedelta(days=n)),
            st.booleans(),
            max_size=15,
        )
    )
    calendar = WorkingCalendar(overrides, statutory=draw(st.booleans()))
    intervals = day_intervals(draw(business_hours()))
    timezone = draw(st.sampled_from(ZONES))
    return (
        BusinessClock(calendar, intervals, timezone),
        Oracle(calendar, intervals, timezone),
        start,
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(setup=setups(), minutes=st.integers(0, 3000))
def test_add_matches_the_oracle(setup, minutes):
    business, oracle, start = setup
    amount = minutes * MINUTE
    assert business.add(start, amount) == oracle.add(start, amount)


@PROPERTY
@given(setup=setups(), minutes=st.integers(0, 12000))
def test_elapsed_matches_the_oracle(setup, minutes):
    business, oracle, start = setup
    end = start + minutes * MINUTE
    assert business.elapsed(start, end) == oracle.elapsed(start, end)


@PROPERTY
@given(setup=setups(), minutes=st.integers(0, 3000))
def test_elapsed_undoes_add(setup, minutes):
    business, _, start = setup
    amount = minutes * MINUTE
    due = business.add(start, amount)
    assert due >= start
    assert business.elapsed(start, due) == amount
    if minutes:
        # ... and the deadline is the earliest instant: a minute earlier is not enough.
        assert business.elapsed(start, due - MINUTE) == amount - MINUTE


@PROPERTY
@given(setup=setups(), count=st.integers(0, 5), half=st.booleans())
def test_add_working_days_is_n_business_days_of_time(setup, count, half):
    business, oracle, start = setup
    amount = count + (0.5 if half else 0)
    budget = business.day_length * amount
    due = business.add_working_days(start, amount)
    if budget % MINUTE:
        # Half of a day of an odd number of minutes ends on a half minute, off the oracle's grid.
        assert business.elapsed(start, due) == budget
        whole = budget - budget % MINUTE
        assert oracle.add(start, whole) < due < oracle.add(start, whole + MINUTE)
    else:
        assert due == oracle.add(start, budget)


@PROPERTY
@given(setup=setups(), count=st.integers(1, 5))
def test_add_working_days_keeps_the_time_of_day_inside_hours(setup, count):
    business, _, start = setup
    tz = business.timezone
    local = start.replace(tzinfo=UTC).astimezone(tz)
    # Strictly inside an interval of a working day (an opening time is the other case: the
    # amount then ends at the previous closing time, see the worked examples).
    strictly_inside = business.calendar.is_working_day(local.date()) and any(
        begin < local.time() < end for begin, end in business.intervals
    )
    if not strictly_inside:
        return
    due = business.add_working_days(start, count).replace(tzinfo=UTC).astimezone(tz)
    assert due.time() == local.time()
    assert due.date() == business.calendar.add_working_days(local.date(), count)


@PROPERTY
@given(setup=setups())
def test_next_opening_and_is_open_match_the_oracle(setup):
    business, oracle, start = setup
    assert business.is_open(start) == oracle.counts(start)
    opening = business.next_opening(start)
    assert opening >= start
    assert oracle.counts(opening)
    assert oracle.elapsed(start, opening) == timedelta(0)
