"""How service-level clocks look on pages: target names, tones for colour, remaining time text.

The numbers come from ``workflow.sla``; this only words them. ``web/static/countdown.js`` keeps
the remaining time of every ``.countdown`` element ticking in the browser, from its ``data-due``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask_babel import gettext, lazy_gettext

from models import utcnow

TARGET_LABELS = {
    "response": lazy_gettext("Response"),
    "on_site": lazy_gettext("On site"),
    "temporary_recovery": lazy_gettext("Temporary recovery"),
    "resolution": lazy_gettext("Resolution"),
}
STATE_LABELS = {
    "running": lazy_gettext("running"),
    "paused": lazy_gettext("paused"),
    "met": lazy_gettext("met"),
    "missed": lazy_gettext("missed"),
}
UNIT_LABELS = {
    "minutes": lazy_gettext("min"),
    "hours": lazy_gettext("h"),
    "working_days": lazy_gettext("working days"),
}


def tone(target) -> str:
    """The colour class of a target: ok, warning (≥ 75 %), breached, paused, met or missed."""
    if target.state in ("met", "missed"):
        return target.state
    if target.breached:
        return "breached"
    if target.warning:
        return "warning"
    return "paused" if target.state == "paused" else "ok"


def duration_text(delta: timedelta) -> str:
    """A clock duration as ``2 d 3:05`` or ``0:45`` (hours:minutes), never negative."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    text = f"{minutes // 60}:{minutes % 60:02d}"
    return gettext("%(days)s d %(time)s", days=days, time=text) if days else text


def until_due(target) -> timedelta:
    """Wall-clock time from now until the target's deadline (negative once it has passed)."""
    return target.due_at - utcnow()


def init_app(app: Flask) -> None:
    """Make the wording helpers available to templates."""
    app.jinja_env.globals.update(
        sla_target_label=lambda name: TARGET_LABELS.get(name, name),
        sla_state_label=lambda state: STATE_LABELS.get(state, state),
        sla_unit_label=lambda unit: UNIT_LABELS.get(unit, unit),
        sla_tone=tone,
        sla_duration=duration_text,
        sla_until=until_due,
    )
    app.jinja_env.filters["sla_target_name"] = lambda name: str(TARGET_LABELS.get(name, name))
