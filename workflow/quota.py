"""Free development quota per contract, as the dashboards show it (Z1, Q1).

Until the append-only quota ledger exists (issue 4), the figure is derived from the requirement
requests themselves: the estimates of requests both sides confirmed, whose type counts against the
pool, raised in the current period. Pages label it as provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Contract, Request
from workflow.localtime import day_start_utc

# Requirement states in which both sides have confirmed the estimate (SPEC §6).
COMMITTED_STATES = (
    "confirmed",
    "in_development",
    "delivered",
    "dept_accepted",
    "accepted",
    "closed",
)


@dataclass
class QuotaView:
    """One contract's free pool in the period containing ``today``."""

    contract: Contract
    period_start: date
    period_end: date
    pool: Decimal | None
    committed: Decimal
    provisional: bool = True

    @property
    def remaining(self) -> Decimal | None:
        """Pool minus committed, never below zero; None when the contract has no pool."""
        if self.pool is None:
            return None
        return max(self.pool - self.committed, Decimal(0))

    @property
    def used_percent(self) -> int:
        """Share of the pool committed, 0–100 (for the bar)."""
        if not self.pool:
            return 0
        return min(100, int(self.committed * 100 / self.pool))


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def period_bounds(contract: Contract, period: str, today: date) -> tuple[date, date]:
    """First and last day of the quota period containing ``today`` (clamped to the term)."""
    if period == "calendar_year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    if period == "contract_term":
        return contract.start_date, contract.end_date
    start = contract.start_date
    while _add_years(start, 1) <= today:
        start = _add_years(start, 1)
    return start, min(_add_years(start, 1) - timedelta(days=1), contract.end_date)


def quota_overview(session: Session, contract: Contract, today: date) -> QuotaView:
    """The contract's pool and what confirmed requests of this period commit of it."""
    policy = (contract.policy or {}).get("quota") or {}
    start, end = period_bounds(contract, policy.get("period", "contract_year"), today)
    counted = set(policy.get("counted_types") or ())
    pool = policy.get("pool")
    rows = session.scalars(
        select(Request).where(
            Request.contract_id == contract.id,
            Request.kind == "requirement",
            Request.state.in_(COMMITTED_STATES),
            Request.created_at >= day_start_utc(start),
            Request.created_at < day_start_utc(end + timedelta(days=1)),
        )
    )
    committed = Decimal(0)
    for request in rows:
        data = request.data or {}
        if data.get("req_type") not in counted:
            continue
        try:
            committed += Decimal(str(data.get("estimate_days") or 0))
        except InvalidOperation:
            continue
    return QuotaView(
        contract,
        start,
        end,
        None if pool is None else Decimal(str(pool)),
        committed,
    )
