"""Generic guards: who may act, what the request's fields say, which documents it has."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import fields, validate

from workflow.business_calendar import WorkingCalendar, load_overrides
from workflow.localtime import hospital_today, stamp_day
from workflow.registry import FireContext, Refusal, guard

OPS = ("eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "present", "absent")


@guard("not_submitter")
def not_submitter(ctx: FireContext) -> str | None:
    """The actor did not submit the request (nobody approves their own work)."""
    if ctx.request.submitter_id == ctx.actor.id:
        return "You submitted this request; someone else must do this step."
    return None


@guard("is_submitter")
def is_submitter(ctx: FireContext) -> str | None:
    """Only the person who raised the request may do this step."""
    if ctx.request.submitter_id != ctx.actor.id:
        return "Only the person who raised this request may do this step."
    return None


@guard("not_actor_of", params={"event": fields.String(required=True)})
def not_actor_of(ctx: FireContext, event: str) -> str | None:
    """The actor did not fire ``event`` on this request (two-person rule, Q7)."""
    from workflow.history import actors_of_event

    if ctx.actor.id in actors_of_event(ctx.session, ctx.request, event):
        return f"You did '{event}' on this request; a second person must do this step."
    return None


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def lookup_policy(policy: dict, path: str) -> Any:
    """The value at a dotted path in a contract policy, or None when any part is missing."""
    node: Any = policy
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _is_message(message: Any) -> bool:
    if isinstance(message, str):
        return bool(message)
    return (
        isinstance(message, dict)
        and set(message) == {"zh", "en"}
        and all(isinstance(v, str) and v for v in message.values())
    )


def compare(op: str, actual: Any, expected: Any) -> bool:
    """Evaluate ``actual <op> expected``; numbers compare as Decimals, None never orders."""
    if op == "present":
        return actual not in (None, "", [], {})
    if op == "absent":
        return actual in (None, "", [], {})
    if op in ("in", "not_in"):
        found = actual in (expected or [])
        return found if op == "in" else not found
    if actual is None or expected is None:
        return op == "ne" and actual != expected
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        left, right = actual, expected
    try:
        return {
            "eq": left == right,
            "ne": left != right,
            "gt": left > right,
            "ge": left >= right,
            "lt": left < right,
            "le": left <= right,
        }[op]
    except TypeError:
        return False


def field_value(ctx: FireContext, name: str, source: str) -> Any:
    """A field's value from the event's input or the request's data (``either`` prefers input)."""
    if source == "input" or (source == "either" and name in ctx.fields):
        return ctx.fields.get(name)
    return (ctx.request.data or {}).get(name)


@guard(
    "field_condition",
    params={
        "field": fields.String(required=True),
        "op": fields.String(required=True, validate=validate.OneOf(OPS)),
        "value": fields.Raw(allow_none=True),
        "policy": fields.String(),
        "data_field": fields.String(),
        "source": fields.String(
            load_default="either", validate=validate.OneOf(["input", "data", "either"])
        ),
        # A sentence, or {zh, en} so the page can show it in the reader's language.
        "message": fields.Raw(validate=lambda m: _is_message(m)),
    },
    reads_input=lambda p: set() if p.get("source") == "data" else {p["field"]},
)
def field_condition(
    ctx: FireContext,
    field: str,
    op: str,
    value: Any = None,
    policy: str | None = None,
    data_field: str | None = None,
    source: str = "either",
    message: str | None = None,
) -> str | None:
    """A field compares to a value, a policy number (``policy: a.b``) or a stored ``data_field``."""
    if policy:
        expected = lookup_policy(ctx.policy, policy)
    elif data_field:
        expected = (ctx.request.data or {}).get(data_field)
    else:
        expected = value
    actual = field_value(ctx, field, source)
    if compare(op, actual, expected):
        return None
    if message:
        return message["en"] if isinstance(message, dict) else message
    if policy:
        what = f"policy {policy} = {expected!r}"
    elif data_field:
        what = f"'{data_field}' = {expected!r}"
    else:
        what = repr(expected)
    if op in ("present", "absent"):
        return f"Field '{field}' must be {'filled in' if op == 'present' else 'empty'}."
    return f"Field '{field}' is {actual!r}; it must be {op} {what}."


@guard(
    "has_attachment",
    params={
        "kind": fields.String(required=True),
        "min": fields.Integer(load_default=1, validate=validate.Range(min=1)),
    },
)
def has_attachment(ctx: FireContext, kind: str, min: int = 1) -> str | None:  # noqa: A002
    """The request carries at least ``min`` current attachments of ``kind``."""
    count = sum(1 for a in ctx.request.attachments if a.kind == kind and a.removed_at is None)
    if count >= min:
        return None
    return f"Attach at least {min} document(s) of kind '{kind}' first (found {count})."


@guard(
    "working_days_after",
    params={
        "stamp": fields.String(required=True),
        "policy": fields.String(required=True),
    },
)
def working_days_after(ctx: FireContext, stamp: str, policy: str) -> str | None:
    """Not before the policy's number of working days after the step stamped in ``stamp``
    (D7: acceptance 10 working days after delivery); passes when the policy sets none."""
    wait = _number(lookup_policy(ctx.policy, policy))
    recorded = (ctx.request.data or {}).get(stamp) or {}
    if not wait or not recorded.get("at"):
        return None
    since = stamp_day(recorded["at"])
    # IT's calendar overrides count here as they do for the SLA clocks.
    opens = WorkingCalendar(load_overrides(ctx.session)).add_working_days(since, int(wait))
    if hospital_today(ctx.now) >= opens:
        return None
    return Refusal(
        f"Not before {opens.isoformat()}: the contract asks for {int(wait)} working days "
        f"after {since.isoformat()}.",
        opens=opens.isoformat(),
        since=since.isoformat(),
        working_days=int(wait),
    )
