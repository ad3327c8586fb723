"""Rules behind the dashboards: quota periods, promised dates, who may raise what, diagrams."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from workflow.quota import QuotaView, period_bounds

CONTRACT = SimpleNamespace(start_date=date(2024, 2, 29), end_date=date(2027, 2, 27))


@pytest.mark.parametrize(
    "period, today, expected",
    [
        ("contract_year", date(2024, 2, 29), (date(2024, 2, 29), date(2025, 2, 27))),
        ("contract_year", date(2025, 2, 27), (date(2024, 2, 29), date(2025, 2, 27))),
        ("contract_year", date(2025, 3, 1), (date(2025, 2, 28), date(2026, 2, 27))),
        ("contract_year", date(2026, 12, 1), (date(2026, 2, 28), date(2027, 2, 27))),
        ("calendar_year", date(2025, 7, 1), (date(2025, 1, 1), date(2025, 12, 31))),
        ("contract_term", date(2025, 7, 1), (date(2024, 2, 29), date(2027, 2, 27))),
    ],
)
def test_quota_period_contains_today(period, today, expected):
    assert period_bounds(CONTRACT, period, today) == expected


def test_quota_remaining_is_pool_minus_committed_and_bar_is_capped():
    from decimal import Decimal

    start, end = date(2026, 1, 1), date(2026, 12, 31)
    view = QuotaView(CONTRACT, start, end, Decimal(7), Decimal("5"), Decimal("3.5"))
    assert view.remaining == Decimal("-1.5") and view.used_percent == 100
    half = QuotaView(CONTRACT, start, end, Decimal(7), Decimal("1"), Decimal("2.5"))
    assert half.remaining == Decimal("3.5") and half.used_percent == 50
    none = QuotaView(CONTRACT, start, end, None, Decimal(0), Decimal(0))
    assert none.remaining is None and none.used_percent == 0


def test_requirement_promises_are_deadlines_only_while_the_vendor_clock_runs(catalog):
    requirement = catalog.get("requirement")
    assert requirement.deadline_fields() == ["promised_date"]
    running = requirement.clock_running_states()
    assert "in_development" in running and "confirmed" in running
    assert not {"delivered", "dept_accepted", "accepted", "closed"} & set(running)


@pytest.mark.parametrize(
    "kind, roles, allowed",
    [
        ("requirement", {"dept_user"}, True),
        ("requirement", {"vendor_engineer"}, False),
        ("upgrade", {"vendor_engineer"}, True),
        ("upgrade", {"sys_admin", "auditor"}, False),
    ],
)
def test_who_may_raise_which_kind(catalog, kind, roles, allowed):
    assert catalog.get(kind).may_create(roles) is allowed


def test_diagram_speaks_the_readers_language(catalog):
    requirement = catalog.get("requirement")
    english, chinese = requirement.mermaid("en"), requirement.mermaid("zh")
    assert "submitted : Submitted" in english and "draft --> submitted : Submit" in english
    assert "submitted : 已提交" in chinese and "draft --> submitted : 提交" in chinese
    assert "submitted : submitted · 已提交" in requirement.mermaid()  # README and CLI form


def test_deadline_is_refused_on_a_field_that_is_not_a_date(tmp_path):
    from workflow.definition import DefinitionError, load_definition_file

    source = tmp_path / "bad.yaml"
    source.write_text(
        "key: bad\n"
        "title: {zh: 坏, en: Bad}\n"
        "initial: a\n"
        "create_roles: [dept_user]\n"
        "fields:\n"
        "  due:\n"
        "    type: string\n"
        "    deadline: true\n"
        "states:\n"
        "  a: {label: {zh: 甲, en: A}}\n"
        "  b: {label: {zh: 乙, en: B}, final: true}\n"
        "events:\n"
        "  go: {label: {zh: 走, en: Go}, from: a, to: b, roles: [dept_user]}\n",
        encoding="utf-8",
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(source)
    assert "bad.yaml:8: fields.due.deadline: only a date field can be a deadline" in str(
        caught.value
    )


def test_a_beijing_day_starts_at_sixteen_hundred_utc_the_day_before():
    from datetime import datetime

    from workflow.localtime import day_start_utc, hospital_today

    assert day_start_utc(date(2026, 4, 1)) == datetime(2026, 3, 31, 16, 0)
    from datetime import UTC

    assert hospital_today(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == date(2027, 1, 1)
    assert hospital_today(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == date(2026, 12, 31)
