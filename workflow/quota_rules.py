"""Guards and effects of the requirement workflow's written confirmation and quota (Z1, Q1, Q3).

Registered by name like every other guard and effect; definitions use them as
``record_confirmation``, ``quota_needs_agreement`` (a route condition), ``quota_decide``,
``quota_release`` and ``quota_consume``.
"""

from __future__ import annotations

from marshmallow import fields

from workflow import quota
from workflow.canonical import content_hash
from workflow.registry import FireContext, effect, guard

CONFIRMATIONS = ("it_confirmation", "vendor_confirmation")


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
