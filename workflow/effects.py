"""Generic effects: copy the event's input into the request, set fields, take assignment."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from workflow.registry import FireContext, effect


@effect("store_input", params={"fields": fields.List(fields.String())})
def store_input(ctx: FireContext, fields: list[str] | None = None) -> None:  # noqa: A002
    """Copy the event's validated input (all of it, or the listed fields) into the request data."""
    names = fields if fields is not None else list(ctx.fields)
    data = dict(ctx.request.data or {})
    for name in names:
        if name in ctx.fields:
            data[name] = ctx.fields[name]
    ctx.request.data = data


@effect(
    "set_field",
    params={"field": fields.String(required=True), "value": fields.Raw(allow_none=True)},
)
def set_field(ctx: FireContext, field: str, value: Any = None) -> None:
    """Set one request data field to a constant (``null`` clears it)."""
    data = dict(ctx.request.data or {})
    if value is None:
        data.pop(field, None)
    else:
        data[field] = value
    ctx.request.data = data


@effect("record_actor", params={"field": fields.String(required=True)})
def record_actor(ctx: FireContext, field: str) -> None:
    """Record who did this step and when, under ``field`` (e.g. ``it_confirmed``)."""
    data = dict(ctx.request.data or {})
    data[field] = {"user": ctx.actor.username, "at": ctx.now.isoformat() + "Z"}
    ctx.request.data = data


@effect("assign_to_actor")
def assign_to_actor(ctx: FireContext) -> None:
    """Make the actor the request's assignee."""
    # Through the relationship, not the id: an answer rendered from this request names the new
    # assignee (the id alone left the loaded, old assignee in place).
    ctx.request.assignee = ctx.actor
