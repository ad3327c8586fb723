"""Every seed contract's SLA table gives exactly the deadlines its clause promises (DOMAIN §4).

Each case is a fault reported at a Beijing wall-clock time under a shipped policy, with every
target's deadline worked out by hand from the clause, the contract's business hours and the
published 2026 holiday schedule (docs/SLA.md). The clocks are evaluated exactly as the pages and
the API evaluate them (``workflow.sla.evaluate``), with the ticket just reported.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from workflow.definition import load_definition_file
from workflow.policy import load_policy_dir
from workflow.sla import ContractClocks, Moment, evaluate

ROOT = Path(__file__).resolve().parent.parent
POLICIES = load_policy_dir(ROOT / "definitions" / "policies")
INCIDENT = load_definition_file(ROOT / "definitions" / "workflows" / "incident.yaml")


def bj(text: str) -> datetime:
    """A Beijing wall-clock time as the naive UTC instant stored."""
    return datetime.fromisoformat(text) - timedelta(hours=8)


def deadlines(policy_key: str, severity: str, reported: str, overrides=None) -> dict[str, str]:
    """Every target's deadline, as Beijing wall-clock text, for a fault just reported."""
    policy = POLICIES[policy_key].document
    at = bj(reported)
    ticket = SimpleNamespace(
        contract=SimpleNamespace(policy=policy), data={"severity": severity}, created_at=at
    )
    status = evaluate(
        ticket,
        INCIDENT,
        [Moment(at, "create", "reported")],
        ContractClocks(policy, overrides or {}),
        at,
    )
    assert status.level is not None, f"{severity} is not a level of {policy_key}"
    return {
        t.name: (t.due_at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") for t in status.targets
    }


CASES = [
    # Z2, 7x24 with working-day resolutions on 08:00-18:00 business hours.
    ("zhanjiang_followup", "L1", "2026-09-30 16:00",
     {"response": "2026-09-30 16:30", "resolution": "2026-09-30 17:00"}),
    ("zhanjiang_followup", "L2", "2026-09-30 16:00",
     {"response": "2026-09-30 16:30", "resolution": "2026-09-30 18:00"}),
    # The example: 1 working day from Wednesday 16:00 jumps National Day.
    ("zhanjiang_followup", "L3", "2026-09-30 16:00",
     {"response": "2026-09-30 16:30", "resolution": "2026-10-08 16:00"}),
    ("zhanjiang_followup", "L4", "2026-09-30 16:00",
     {"response": "2026-09-30 17:00", "resolution": "2026-10-09 16:00"}),
    ("zhanjiang_followup", "L5", "2026-09-30 16:00",
     {"response": "2026-09-30 17:00", "resolution": "2026-10-09 16:00"}),
    # Friday evening before the make-up Saturday 10-10: the working day starts Saturday 08:00.
    ("zhanjiang_followup", "L3", "2026-10-09 20:00",
     {"response": "2026-10-09 20:30", "resolution": "2026-10-10 18:00"}),
    # A level-1 fault on a public holiday runs on the 7x24 clock all the same.
    ("zhanjiang_followup", "L1", "2026-10-03 03:00",
     {"response": "2026-10-03 03:30", "resolution": "2026-10-03 04:00"}),
    # W3: fatal, serious, minor; response counts from the written report, 7x24.
    ("wuhan_drg", "fatal", "2026-10-03 03:00",
     {"response": "2026-10-03 04:00", "on_site": "2026-10-03 05:00",
      "resolution": "2026-10-03 05:00"}),
    ("wuhan_drg", "serious", "2026-10-03 03:00", {"response": "2026-10-03 05:00"}),
    ("wuhan_drg", "minor", "2026-10-03 03:00", {"response": "2026-10-03 07:00"}),
    # D3 inside working hours (Monday 12:00): 0.5 h, on site 1 h, repair 2 working days.
    ("digital_twin", "fault", "2026-11-02 12:00",
     {"response": "2026-11-02 12:30", "on_site": "2026-11-02 13:00",
      "resolution": "2026-11-04 12:00"}),
    # D3 outside (Monday 20:00): 1 h, on site 2 h; the repair days count from Tuesday 08:00.
    ("digital_twin", "fault", "2026-11-02 20:00",
     {"response": "2026-11-02 21:00", "on_site": "2026-11-02 22:00",
      "resolution": "2026-11-04 18:00"}),
    # 18:00 is closing time, so already outside; 08:00 is opening time, so inside.
    ("digital_twin", "fault", "2026-11-02 18:00",
     {"response": "2026-11-02 19:00", "on_site": "2026-11-02 20:00",
      "resolution": "2026-11-04 18:00"}),
    ("digital_twin", "fault", "2026-11-03 08:00",
     {"response": "2026-11-03 08:30", "on_site": "2026-11-03 09:00",
      "resolution": "2026-11-04 18:00"}),
    # D2: bug fix and data repair within one working day.
    ("digital_twin", "bug", "2026-11-02 12:00", {"resolution": "2026-11-03 12:00"}),
    ("digital_twin", "data_fix", "2026-11-06 17:00", {"resolution": "2026-11-09 17:00"}),
    # Q2 (business hours 08:00-18:00 with lunch 12:00-14:00): respond in 10 minutes; on site in
    # 2 business hours (11:00-12:00, then 14:00-15:00); a major failure: 2 h on site and 8 h
    # temporary recovery around the clock.
    ("qinghai_einvoice", "normal", "2026-11-02 11:00",
     {"response": "2026-11-02 11:10", "on_site": "2026-11-02 15:00"}),
    ("qinghai_einvoice", "normal", "2026-11-06 17:30",
     {"response": "2026-11-06 17:40", "on_site": "2026-11-09 09:30"}),
    ("qinghai_einvoice", "major", "2026-11-02 11:00",
     {"response": "2026-11-02 11:10", "on_site": "2026-11-02 13:00",
      "temporary_recovery": "2026-11-02 19:00"}),
    # X1 (8-hour working day: lunch 12:00-14:00): high 1, medium 3, low 5 working days.
    ("xiayi_his", "high", "2026-11-02 10:00",
     {"response": "2026-11-02 11:00", "on_site": "2026-11-02 12:00",
      "resolution": "2026-11-03 10:00"}),
    ("xiayi_his", "medium", "2026-11-02 10:00",
     {"response": "2026-11-02 11:00", "resolution": "2026-11-05 10:00"}),
    ("xiayi_his", "low", "2026-11-02 10:00",
     {"response": "2026-11-02 11:00", "resolution": "2026-11-09 10:00"}),
    # High before National Day: 15:00-18:00 on 09-30 (3 h), 08:00-12:00 on 10-08 (4 h), then
    # the last hour after lunch.
    ("xiayi_his", "high", "2026-09-30 15:00",
     {"response": "2026-09-30 16:00", "on_site": "2026-09-30 17:00",
      "resolution": "2026-10-08 15:00"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "severity", "reported", "expected"),
    CASES,
    ids=[f"{p}-{s}-{r}" for p, s, r, _ in CASES],
)
def test_seed_table_deadlines(policy, severity, reported, expected):
    assert deadlines(policy, severity, reported) == expected


def test_every_level_of_every_seed_table_is_covered():
    covered = {(p, s) for p, s, _, _ in CASES}
    levels = {
        (key, level["key"])
        for key, template in POLICIES.items()
        for level in (template.document.get("sla") or {}).get("levels", [])
    }
    assert levels - covered == set()


def test_an_override_moves_a_seed_deadline():
    # IT declares Thursday 10-08 a day off: Z level 3 from 09-30 16:00 is due Friday 10-09;
    # declaring the holiday 10-07 worked instead brings it forward to 10-07.
    moved = deadlines("zhanjiang_followup", "L3", "2026-09-30 16:00", {date(2026, 10, 8): False})
    assert moved["resolution"] == "2026-10-09 16:00"
    earlier = deadlines("zhanjiang_followup", "L3", "2026-09-30 16:00", {date(2026, 10, 7): True})
    assert earlier["resolution"] == "2026-10-07 16:00"
