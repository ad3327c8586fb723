"""A contract's service-level figures for one quarter (X4): resolution rate, on-time rate and
average satisfaction, from the same clocks the tickets show (docs/SLA.md).

Counted are the fault tickets *reported* in the quarter (contract-local dates) and not
cancelled. Resolution rate = resolved or closed ÷ reported; on-time rate = resolved without any
missed target ÷ resolved; satisfaction = mean of the ratings given on closing. Figures are as of
``now``: a ticket of the quarter resolved later counts once it is resolved.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Contract, Request
from workflow.business_calendar import is_provisional
from workflow.errors import InvalidInput
from workflow.sla import ClockCache, statuses_for

QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
CANCELLED = "cancelled"
RESOLVED = ("resolved", "closed")


def parse_quarter(text: str) -> tuple[date, date]:
    """``2026Q4`` → (first day, first day of the next quarter); raises InvalidInput."""
    match = QUARTER.match(text or "")
    if not match:
        raise InvalidInput(
            f"'{text}' is not a quarter like 2026Q4.", {"fields": {"quarter": ["Use YYYYQn."]}}
        )
    year, number = int(match[1]), int(match[2])
    start = date(year, 3 * number - 2, 1)
    end = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return start, end


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def quarter_report(session: Session, contract: Contract, quarter: str, now: datetime) -> dict:
    """The quarter's service-level figures of one contract, with the policy's minimums (X4).

    Raises InvalidInput for a malformed quarter.
    """
    first, after = parse_quarter(quarter)
    clocks = ClockCache(session).for_contract(contract)

    def utc(day: date) -> datetime:
        local = datetime.combine(day, time(), tzinfo=clocks.timezone)
        return local.astimezone(UTC).replace(tzinfo=None)

    tickets = list(
        session.scalars(
            select(Request)
            .where(
                Request.contract_id == contract.id,
                Request.created_at >= utc(first),
                Request.created_at < utc(after),
                Request.state != CANCELLED,
            )
            .order_by(Request.id)
        )
    )
    statuses = statuses_for(session, tickets, now)
    tickets = [t for t in tickets if t.id in statuses]
    resolved = [t for t in tickets if t.state in RESOLVED]
    on_time = [t for t in resolved if not any(x.breached for x in statuses[t.id].targets)]
    ratings = [
        t.data["satisfaction"]
        for t in tickets
        if t.state == "closed" and isinstance((t.data or {}).get("satisfaction"), int)
    ]
    breaches = Counter(
        target.name for t in tickets for target in statuses[t.id].targets if target.breached
    )
    by_level = Counter((t.data or {}).get("severity") for t in tickets)
    figures = {
        "resolution_rate": _rate(len(resolved), len(tickets)),
        "on_time_rate": _rate(len(on_time), len(resolved)),
        "satisfaction": round(sum(ratings) / len(ratings), 1) if ratings else None,
    }
    kpis = ((contract.policy.get("sla") or {}).get("kpis")) or {}
    return {
        "contract_id": contract.id,
        "quarter": quarter,
        "from": first,
        "to": after,
        "timezone": str(clocks.timezone),
        "provisional": is_provisional(first.year),
        "reported": len(tickets),
        "resolved": len(resolved),
        "on_time": len(on_time),
        "open": len(tickets) - len(resolved),
        "recurring": sum(1 for t in tickets if (t.data or {}).get("recurring")),
        "rated": len(ratings),
        **figures,
        "breaches": dict(sorted(breaches.items())),
        "by_level": {str(k): v for k, v in sorted(by_level.items(), key=lambda kv: str(kv[0]))},
        "targets": {
            name: {
                "min": kpis.get(f"{name}_min"),
                "met": None
                if kpis.get(f"{name}_min") is None or figures[name] is None
                else figures[name] >= kpis[f"{name}_min"],
            }
            for name in figures
        },
    }
