"""Guards and effects of the requirement workflow's written confirmation and quota (Z1, Q1, Q3).

Registered by name like every other guard and effect; definitions use them as
``record_confirmation``, ``quota_needs_agreement`` (a route condition), ``quota_decide``,
``quota_release`` and ``quota_consume``.
"""

from __future__ import annotations

from decimal import Decimal

from marshmallow import fields

from workflow import quota
from workflow.canonical import content_hash
from workflow.registry import FireContext, Refusal, effect, guard

CONFIRMATIONS = ("it_confirmation", "vendor_confirmation")
ACTUAL_CONFIRMATIONS = ("actual_it_confirmation", "actual_vendor_confirmation")


def confirmed_scope(request, names: list[str]) -> dict:
    """What a written confirmation binds: title, description and the listed fields."""
    data = request.data or {}
    return {
        "title": request.title,
        "description": request.description or "",
        **{name: data.get(name) for name in names},
    }


@effect(
    "record_confirmation",
    params={
        "field": fields.String(required=True),
        "scope": fields.List(fields.String(), required=True),
    },
)
def record_confirmation(ctx: FireContext, field: str, scope: list[str]) -> None:
    """Record who confirmed, when, and the SHA-256 of exactly the scope and estimate confirmed."""
    data = dict(ctx.request.data or {})
    data[field] = {
        "user": ctx.actor.username,
        "at": ctx.now.isoformat() + "Z",
        "scope_sha256": content_hash(confirmed_scope(ctx.request, scope)),
    }
    ctx.request.data = data


def _decision(ctx: FireContext) -> quota.Decision:
    # The route condition and the effect of one firing must act on one and the same decision.
    if "quota_decision" not in ctx.extra:
        ctx.extra["quota_decision"] = quota.decide(ctx.session, ctx.request, ctx.now)
    return ctx.extra["quota_decision"]


@guard("quota_needs_agreement")
def quota_needs_agreement(ctx: FireContext) -> str | None:
    """Passes when the free quota does not cover the whole estimate (route to an agreement)."""
    decision = _decision(ctx)
    if decision.paid > 0:
        return None
    return "The free quota covers the whole estimate."


@effect("quota_decide")
def quota_decide(ctx: FireContext) -> None:
    """Once both sides have confirmed: reserve the free part and store the decision."""
    data = dict(ctx.request.data or {})
    if not all(data.get(name) for name in CONFIRMATIONS):
        return  # the first confirmation decides nothing
    decision = _decision(ctx)
    quota.reserve(ctx.session, ctx.request, decision, ctx.actor, ctx.now)
    data["quota"] = decision.as_data()
    ctx.request.data = data


@effect("quota_release")
def quota_release(ctx: FireContext) -> None:
    """Give back what the request holds reserved (cancelled before closing)."""
    quota.release(ctx.session, ctx.request, ctx.actor, ctx.now, f"{ctx.event.name}: {ctx.comment}")


@effect("quota_consume")
def quota_consume(ctx: FireContext) -> None:
    """Closing: the reservation becomes consumed effort in the period it was confirmed in."""
    quota.consume(ctx.session, ctx.request, ctx.actor, ctx.now)


def _days(data: dict, name: str) -> Decimal | None:
    value = data.get(name)
    return None if value in (None, "") else Decimal(str(value))


def actual_differs(data: dict) -> bool:
    """Whether the delivered actual effort differs from the confirmed estimate."""
    actual = _days(data, "actual_days")
    return actual is not None and actual != _days(data, "estimate_days")


@guard("actual_effort_differs")
def actual_effort_differs(ctx: FireContext) -> str | None:
    """Only a delivered actual effort that differs from the estimate needs confirming again."""
    if actual_differs(ctx.request.data or {}):
        return None
    return "The actual effort equals the confirmed estimate; there is nothing to confirm again."


@effect("quota_redecide")
def quota_redecide(ctx: FireContext) -> None:
    """Once both sides confirmed a different actual effort (or a redelivery withdrew it):
    decide the quota again for the effort that now stands, in the request's own period."""
    data = dict(ctx.request.data or {})
    current = data.get("quota") or {}
    if not current.get("counted"):
        return
    settled = actual_differs(data) and all(data.get(name) for name in ACTUAL_CONFIRMATIONS)
    amount = _days(data, "actual_days" if settled else "estimate_days")
    if amount is None or amount == Decimal(current["amount_days"]):
        return
    reason = f"{ctx.event.name}: effort {quota.days_text(amount)} person-days"
    decision = quota.redecide(ctx.session, ctx.request, amount, ctx.actor, ctx.now, reason)
    data["quota"] = decision.as_data()
    ctx.request.data = data


@guard("quota_settled")
def quota_settled(ctx: FireContext) -> str | None:
    """Before closing: a different actual effort is confirmed by both sides, and whatever the
    free quota does not cover is covered by a recorded supplementary agreement."""
    data = ctx.request.data or {}
    if actual_differs(data):
        missing = [name for name in ACTUAL_CONFIRMATIONS if not data.get(name)]
        if missing:
            return Refusal(
                f"The actual effort ({data['actual_days']}) differs from the confirmed estimate "
                f"({data.get('estimate_days')}); both sides must confirm it first.",
                actual=str(data["actual_days"]),
                estimate=str(data.get("estimate_days")),
                missing=missing,
            )
    paid = _days(data.get("quota") or {}, "paid_days") or Decimal(0)
    agreed = _days(data, "paid_days") or Decimal(0)
    if paid > agreed:
        return Refusal(
            f"{quota.days_text(paid)} person-days are not covered by the free quota but only "
            f"{quota.days_text(agreed)} by a supplementary agreement; record the agreement first.",
            paid=quota.days_text(paid),
            agreed=quota.days_text(agreed),
        )
    return None
