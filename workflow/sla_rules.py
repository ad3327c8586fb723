"""Guards and effects of the incident workflow's service levels (DOMAIN §4, Q3).

``sla_level_known`` (guard) and ``check_sla_level`` (on create) keep a ticket's severity inside
its contract's SLA table; ``mark_recurring`` marks a ticket reopened within the policy's window
as recurring (Q3 反复BUG).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models import HistoryEntry
from workflow.errors import InvalidInput
from workflow.registry import FireContext, Refusal, effect, guard
from workflow.sla import level_keys, level_of


def _unknown_level(ctx: FireContext, severity) -> str | None:
    """The refusal sentence when ``severity`` is not a level of the contract's table, else None."""
    levels = level_keys(ctx.policy)
    if not levels or level_of(ctx.policy, severity) is not None:
        return None
    return Refusal(
        f"'{severity}' is not a level of this contract's SLA table (levels: {', '.join(levels)}).",
        severity=severity,
        levels=", ".join(levels),
    )


@guard("sla_level_known", reads_input=lambda params: {"severity"})
def sla_level_known(ctx: FireContext) -> str | None:
    """Refuse a severity that is not a level of the contract's SLA table."""
    return _unknown_level(ctx, ctx.fields.get("severity"))


@effect("check_sla_level")
def check_sla_level(ctx: FireContext) -> None:
    """On creation: refuse a severity outside the contract's SLA table (raises InvalidInput)."""
    problem = _unknown_level(ctx, (ctx.request.data or {}).get("severity"))
    if problem:
        raise InvalidInput(problem, {"fields": {"fields": {"severity": [problem]}}})


@effect("mark_recurring")
def mark_recurring(ctx: FireContext) -> None:
    """Count the reopen; within ``sla.reopen_recurring_window_days`` of the resolution, mark the
    ticket recurring (Q3)."""
    data = dict(ctx.request.data or {})
    data["reopen_count"] = int(data.get("reopen_count") or 0) + 1
    window = (ctx.policy.get("sla") or {}).get("reopen_recurring_window_days")
    resolved_at = ctx.session.scalar(
        select(HistoryEntry.at)
        .where(HistoryEntry.request_id == ctx.request.id, HistoryEntry.to_state == "resolved")
        .order_by(HistoryEntry.seq.desc())
        .limit(1)
    )
    if window and resolved_at is not None and ctx.now - resolved_at <= timedelta(days=window):
        data["recurring"] = True
    ctx.request.data = data
