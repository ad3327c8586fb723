"""Free development quota: periods, the append-only ledger and the decision at confirmation.

DOMAIN §1. A contract's policy (``quota``) says how long a period is (contract year from the start
date, calendar year or the whole term), how many person-days it pools (or none), the free cap per
request (or none), and what happens above it: ``split`` — the part the pool still covers is free
and only the excess needs a supplementary agreement (Z1) — or ``whole`` — the whole request needs
one (Q1). Bugs never count (Q3).

Ledger entries are ``reserve`` (at the second written confirmation), ``release`` (cancelled before
closing), ``consume`` (closing turns the reservation into use) and ``adjust`` (a signed correction
with a reason). For a period: reserved = Σreserve − Σrelease − Σconsume, consumed = Σconsume +
Σadjust, remaining = pool − consumed − reserved. Every decision locks the period's row first
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), so two
confirmations at the same moment can never both spend the last day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import Contract, QuotaEntry, QuotaPeriod, Request, utcnow
from workflow.errors import Forbidden, InvalidInput
from workflow.localtime import hospital_today
from workflow.scope import roles_for_contract

ZERO = Decimal(0)


def _decimal(value) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def days_text(value) -> str:
    """Person-days as plain text without trailing zeros: 7, 2.5, 10 (never 7.0 or 1E+1)."""
    number = _decimal(value)
    return "" if number is None else format(number.normalize(), "f")


def quota_policy(contract: Contract) -> dict:
    """The contract's ``quota`` policy section (empty when the policy has none)."""
    return (contract.policy or {}).get("quota") or {}


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def period_bounds(contract: Contract, period: str, today: date) -> tuple[date, date]:
    """First and last day of the quota period containing ``today`` (clamped to the term)."""
    today = min(max(today, contract.start_date), contract.end_date)
    if period == "calendar_year":
        return (
            max(date(today.year, 1, 1), contract.start_date),
            min(date(today.year, 12, 31), contract.end_date),
        )
    if period == "contract_term":
        return contract.start_date, contract.end_date
    start, years = contract.start_date, 0
    while _add_years(contract.start_date, years + 1) <= today:
        years += 1
        start = _add_years(contract.start_date, years)
    following = _add_years(contract.start_date, years + 1)
    return start, min(following - timedelta(days=1), contract.end_date)


@dataclass
class Balance:
    """A period's figures, exact to the half day."""

    pool: Decimal | None
    reserved: Decimal = ZERO
    consumed: Decimal = ZERO

    @property
    def remaining(self) -> Decimal | None:
        """pool − consumed − reserved; None when there is no cumulative pool."""
        return None if self.pool is None else self.pool - self.consumed - self.reserved


def _sums(session: Session, *conditions) -> Balance:
    def total(kind: str):
        return func.coalesce(func.sum(case((QuotaEntry.kind == kind, QuotaEntry.days))), 0)

    row = session.execute(
        select(total("reserve"), total("release"), total("consume"), total("adjust")).where(
            *conditions
        )
    ).one()
    reserve, release, consume, adjust = (Decimal(str(v)) for v in row)
    return Balance(None, reserve - release - consume, consume + adjust)


def period_balance(session: Session, period: QuotaPeriod) -> Balance:
    """The period's pool, reserved, consumed and remaining, summed from its entries alone."""
    sums = _sums(session, QuotaEntry.period_id == period.id)
    return Balance(_decimal(period.pool), sums.reserved, sums.consumed)


def locked_period(session: Session, contract: Contract, day: date) -> QuotaPeriod:
    """The contract's period containing ``day``, created on first use and locked for update."""
    policy = quota_policy(contract)
    start, end = period_bounds(contract, policy.get("period", "contract_year"), day)
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        # Two first decisions at once: one row wins, the other inserts nothing and then waits.
        session.execute(
            insert(QuotaPeriod)
            .values(
                contract_id=contract.id,
                start_date=start,
                end_date=end,
                pool=_decimal(policy.get("pool")),
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["contract_id", "start_date"])
        )
    return session.scalars(
        select(QuotaPeriod)
        .where(QuotaPeriod.contract_id == contract.id, QuotaPeriod.start_date == start)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


@dataclass
class Decision:
    """What the second written confirmation does to the quota."""

    counted: bool
    amount: Decimal
    free: Decimal
    paid: Decimal
    period: QuotaPeriod | None = None
    remaining_before: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    def as_data(self) -> dict:
        """The decision as stored on the request (strings: exact decimals in JSON)."""
        return {
            "counted": self.counted,
            "amount_days": days_text(self.amount),
            "free_days": days_text(self.free),
            "paid_days": days_text(self.paid),
            "period_start": self.period.start_date.isoformat() if self.period else None,
            "period_end": self.period.end_date.isoformat() if self.period else None,
            "remaining_before": days_text(self.remaining_before) or None,
        }


def decide(session: Session, request: Request, now: datetime) -> Decision:
    """Split the request's estimate into free and paid effort under its contract's policy.

    Locks the period first; raises InvalidInput when the request carries no valid estimate.
    """
    data = request.data or {}
    amount = _decimal(data.get("estimate_days"))
    if amount is None or amount <= 0:
        raise InvalidInput(
            "The request has no estimate to confirm.",
            {"fields": {"estimate_days": ["Missing data for required field."]}},
        )
    policy = quota_policy(request.contract)
    counted = data.get("req_type") in set(policy.get("counted_types") or ())
    if not counted:
        return Decision(False, amount, ZERO, ZERO)
    period = locked_period(session, request.contract, hospital_today(now))
    balance = period_balance(session, period)
    free = free_part(policy, amount, balance.remaining)
    return Decision(True, amount, free, amount - free, period, balance.remaining)


def free_part(policy: dict, amount: Decimal, remaining: Decimal | None) -> Decimal:
    """How much of ``amount`` is free under the policy's cap and overflow rule, given what the
    pool still holds (None: no pool)."""
    cap = _decimal(policy.get("per_request_free_max"))
    remaining = None if remaining is None else max(remaining, ZERO)
    if policy.get("overflow", "split") == "whole":
        over_cap = cap is not None and amount > cap
        over_pool = remaining is not None and amount > remaining
        return ZERO if over_cap or over_pool else amount
    free = amount
    if cap is not None:
        free = min(free, cap)
    if remaining is not None:
        free = min(free, remaining)
    return free


def redecide(session: Session, request: Request, amount: Decimal, actor, now, reason: str):
    """Decide again for a changed effort (both sides confirmed an actual effort at delivery).

    The request stays in the period it was confirmed in; its own reservation counts as
    available, and the difference is reserved or released so the ledger shows the change.
    Returns the new Decision, or None when the request was never counted against the quota.
    """
    previous = (request.data or {}).get("quota") or {}
    if not previous.get("counted") or not previous.get("period_start"):
        return None
    period = locked_period(session, request.contract, date.fromisoformat(previous["period_start"]))
    own = _sums(session, QuotaEntry.period_id == period.id, QuotaEntry.request_id == request.id)
    balance = period_balance(session, period)
    available = None if balance.remaining is None else balance.remaining + own.reserved
    free = free_part(quota_policy(request.contract), amount, available)
    if free < own.reserved:
        _entry(session, period, request, "release", own.reserved - free, actor, now, reason)
    elif free > own.reserved:
        _entry(session, period, request, "reserve", free - own.reserved, actor, now, reason)
    return Decision(True, amount, free, amount - free, period, available)


def _entry(session, period, request, kind, days, actor, now, reason) -> QuotaEntry:
    entry = QuotaEntry(
        period_id=period.id,
        request_id=request.id if request is not None else None,
        kind=kind,
        days=days,
        actor_id=getattr(actor, "id", None),
        actor_name=getattr(actor, "username", "system"),
        at=now,
        reason=reason,
    )
    session.add(entry)
    session.flush()
    return entry


def reserve(session: Session, request: Request, decision: Decision, actor, now) -> None:
    """Record the free part of a decision as reserved in its period (nothing when zero)."""
    if decision.counted and decision.free > 0:
        _entry(
            session,
            decision.period,
            request,
            "reserve",
            decision.free,
            actor,
            now,
            "second written confirmation",
        )


def _reserved_by_period(session: Session, request: Request) -> list[tuple[QuotaPeriod, Decimal]]:
    period_ids = session.scalars(
        select(QuotaEntry.period_id).where(QuotaEntry.request_id == request.id).distinct()
    ).all()
    result = []
    for period_id in period_ids:
        period = session.scalars(
            select(QuotaPeriod)
            .where(QuotaPeriod.id == period_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        sums = _sums(
            session, QuotaEntry.period_id == period_id, QuotaEntry.request_id == request.id
        )
        if sums.reserved > 0:
            result.append((period, sums.reserved))
    return result


def release(session: Session, request: Request, actor, now, reason: str) -> None:
    """Give back whatever the request still holds reserved (cancelled before closing)."""
    for period, days in _reserved_by_period(session, request):
        _entry(session, period, request, "release", days, actor, now, reason)


def consume(session: Session, request: Request, actor, now) -> None:
    """Turn the request's reservation into consumed effort (closing), in the period it was
    confirmed in."""
    for period, days in _reserved_by_period(session, request):
        _entry(session, period, request, "consume", days, actor, now, "closed")


ADJUST_ROLES = frozenset({"it_signer"})


def may_adjust(actor, contract: Contract) -> bool:
    """Whether the actor signs quota corrections for this contract (the hospital's IT signer)."""
    return bool(roles_for_contract(actor, contract) & ADJUST_ROLES)


def adjust(
    session: Session, contract: Contract, day: date, days, actor, now, reason: str
) -> QuotaEntry:
    """A signed correction of consumed effort in the period containing ``day`` — e.g. effort
    spent before the system was in use, or a settlement both sides agreed on paper.

    Raises Forbidden unless the actor is an IT signer of the contract; InvalidInput for a zero,
    non-half-day or reason-less adjustment, a day outside the contract's term, or one that
    would take the period's remaining below zero.
    """
    if not may_adjust(actor, contract):
        raise Forbidden(
            "Only the hospital's IT signer of this contract may correct its quota.",
            {"roles": sorted(ADJUST_ROLES)},
        )
    if not isinstance(day, date) or not contract.start_date <= day <= contract.end_date:
        raise InvalidInput(
            "The day must lie within the contract's term.",
            {"fields": {"day": [f"Between {contract.start_date} and {contract.end_date}."]}},
        )
    days = _decimal(days)
    if days is None or days == 0 or days % Decimal("0.5") != 0 or abs(days) > 10_000:
        raise InvalidInput(
            "An adjustment is a non-zero number of person-days in steps of 0.5.",
            {"fields": {"days": ["Not a valid adjustment."]}},
        )
    if not (reason or "").strip():
        raise InvalidInput("Say why.", {"fields": {"reason": ["Required."]}})
    period = locked_period(session, contract, day)
    balance = period_balance(session, period)
    if balance.remaining is not None and balance.remaining - days < 0:
        raise InvalidInput(
            f"Only {balance.remaining} person-days remain; the pool can never be overspent.",
            {"fields": {"days": ["More than remains."]}},
        )
    return _entry(session, period, None, "adjust", days, actor, now, reason.strip())


# ---------------------------------------------------------------- read side


@dataclass
class QuotaView:
    """One contract's period containing ``today``, as pages and the API show it."""

    contract: Contract
    period_start: date
    period_end: date
    pool: Decimal | None
    reserved: Decimal
    consumed: Decimal
    entries: list = field(default_factory=list)

    @property
    def committed(self) -> Decimal:
        """Reserved plus consumed."""
        return self.reserved + self.consumed

    @property
    def remaining(self) -> Decimal | None:
        """pool − consumed − reserved; None when the contract has no pool."""
        return None if self.pool is None else self.pool - self.committed

    @property
    def used_percent(self) -> int:
        """Share of the pool committed, 0–100 (for the bar)."""
        if not self.pool:
            return 0
        return max(0, min(100, int(self.committed * 100 / self.pool)))


def quota_overview(
    session: Session, contract: Contract, today: date, with_entries: bool = False
) -> QuotaView:
    """The contract's current period from the ledger (no lock; nothing is created)."""
    policy = quota_policy(contract)
    start, end = period_bounds(contract, policy.get("period", "contract_year"), today)
    period = session.scalar(
        select(QuotaPeriod).where(
            QuotaPeriod.contract_id == contract.id, QuotaPeriod.start_date == start
        )
    )
    if period is None:
        return QuotaView(contract, start, end, _decimal(policy.get("pool")), ZERO, ZERO)
    balance = period_balance(session, period)
    entries = (
        list(
            session.scalars(
                select(QuotaEntry)
                .where(QuotaEntry.period_id == period.id)
                .order_by(QuotaEntry.at, QuotaEntry.id)
            )
        )
        if with_entries
        else []
    )
    return QuotaView(
        contract, start, end, balance.pool, balance.reserved, balance.consumed, entries
    )
