"""Languages and time zones for people: Simplified Chinese by default, English by a switch.

Labels of workflows, states, events and fields come from the definitions ({zh, en}); every other
word on a page comes from the catalogue in ``web/translations``. The choice is kept per user
(``User.locale``) and, before sign-in, in the session. Times are stored in UTC and shown in the
hospital's zone (Asia/Shanghai).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from flask import Blueprint, Flask, redirect, request, session
from flask_babel import Babel, format_datetime, get_locale, gettext, lazy_gettext

from web.db import get_session
from workflow import attachments
from workflow.accounts import set_locale
from workflow.localtime import HOSPITAL_TIMEZONE_NAME
from workflow.quota import days_text

LOCALES = {"zh_CN": "中文", "en": "English"}  # the codes of workflow.accounts.LOCALES
DEFAULT_LOCALE = "zh_CN"
TIMEZONE = HOSPITAL_TIMEZONE_NAME
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

bp = Blueprint("i18n", __name__)
babel = Babel()

ROLE_LABELS = {
    "dept_user": lazy_gettext("department user"),
    "it_staff": lazy_gettext("IT staff"),
    "it_signer": lazy_gettext("IT signer"),
    "it_dba": lazy_gettext("IT database administrator"),
    "vendor_engineer": lazy_gettext("vendor engineer"),
    "vendor_manager": lazy_gettext("vendor manager"),
    "sys_admin": lazy_gettext("system administrator"),
    "sec_admin": lazy_gettext("security administrator"),
    "auditor": lazy_gettext("auditor"),
}


def select_locale() -> str:
    """The signed-in user's language, else the session's, else Chinese."""
    from web.auth import current_actor

    actor = current_actor()
    if actor is not None and actor.locale in LOCALES:
        return actor.locale
    chosen = session.get("locale")
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


def is_english() -> bool:
    """Whether the page is being shown in English."""
    return str(get_locale() or DEFAULT_LOCALE).startswith("en")


def label(value) -> str:
    """The zh/en label of a definition item in the page's language (Chinese when missing)."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    return value.get("en" if is_english() else "zh") or value.get("zh") or value.get("en") or ""


def role_label(role: str) -> str:
    """A role's name in the page's language."""
    return str(ROLE_LABELS.get(role, role))


def local_time(value, fmt: str = "yyyy-MM-dd HH:mm") -> str:
    """A stored UTC time (naive, aware or ISO text) shown in Asia/Shanghai."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return format_datetime(value, fmt)


def translate(message) -> str:
    """A message from the workflow layer in the page's language when the catalogue has it."""
    return gettext(message) if isinstance(message, str) and message else str(message or "")


def reason_text(reason: dict, definition=None) -> str:
    """Why a step is not possible, worded for the reader; falls back to the engine's sentence."""
    params = reason.get("params") or {}
    guard = reason.get("guard")
    if reason.get("code") == "forbidden":
        roles = "、".join(role_label(r) for r in reason.get("roles", ()))
        return gettext(
            "This step needs one of these roles for this request: %(roles)s.", roles=roles
        )
    if guard == "not_submitter":
        return gettext("You submitted this request; someone else must do this step.")
    if guard == "is_submitter":
        return gettext("Only the person who raised this request may do this step.")
    if guard == "not_actor_of":
        event = params.get("event", "")
        if definition is not None and event in definition.events:
            event = label(definition.events[event].label)
        return gettext(
            "You did “%(event)s” on this request; a second person must do this step.", event=event
        )
    if guard == "has_attachment":
        return gettext(
            "Attach at least %(min)s document(s) of kind “%(kind)s” first.",
            min=params.get("min", 1),
            kind=document_kind_label(params.get("kind", "")),
        )
    values = reason.get("values") or {}
    if guard == "working_days_after" and values:
        return gettext(
            "Acceptance opens on %(opens)s: the contract asks for %(n)s working days after "
            "delivery on %(since)s.",
            opens=values["opens"],
            n=values["working_days"],
            since=values["since"],
        )
    if guard == "quota_settled" and "missing" in values:
        return gettext(
            "The actual effort (%(actual)s person-days) differs from the confirmed estimate "
            "(%(estimate)s); both sides must confirm it first.",
            actual=values["actual"],
            estimate=values["estimate"],
        )
    if guard == "quota_settled" and "paid" in values:
        return gettext(
            "%(paid)s person-days are not covered by the free quota, only %(agreed)s by a "
            "supplementary agreement; record the agreement first.",
            paid=values["paid"],
            agreed=values["agreed"],
        )
    if guard == "latest_release" and "target" in values:
        if values.get("newest"):
            return gettext(
                "Version %(target)s is not the newest registered release of %(system)s "
                "(%(newest)s); IT may allow it with a reason.",
                target=values["target"],
                system=values.get("system", ""),
                newest=values["newest"],
            )
        return gettext(
            "No release of this system is registered, so version %(target)s cannot be shown to "
            "be the newest; IT may allow it with a reason.",
            target=values["target"],
        )
    if guard == "matches_signature" and "deployed" in values:
        return gettext(
            "Deployed version %(deployed)s is not the signed version %(signed)s.",
            deployed=values["deployed"],
            signed=values["signed"],
        )
    if guard == "matches_signature" and "deployed_package" in values:
        return gettext(
            "The deployed package's SHA-256 is not the signed one (%(signed)s).",
            signed=values["signed_package"],
        )
    if guard == "findings_waived" and "count" in values:
        return gettext(
            "%(count)s error finding(s) of revision %(revision)s need a written waiver first: "
            "%(findings)s.",
            count=values["count"],
            revision=values["revision"],
            findings=values["findings"],
        )
    if guard == "finding_waivable" and "revision" in values:
        return gettext(
            "Revision %(revision)s has no finding “%(finding)s”.",
            revision=values["revision"],
            finding=values["finding"],
        )
    if guard == "finding_waivable" and "finding" in values:
        return gettext("Finding “%(finding)s” is already waived.", finding=values["finding"])
    if guard == "not_revision_author":
        return gettext("You wrote this SQL; another DBA must review it.")
    if guard == "matches_approval" and "ran" in values:
        return gettext(
            "The SQL run (SHA-256 %(ran)s) is not the approved SQL (SHA-256 %(approved)s).",
            ran=values["ran"],
            approved=values["approved"],
        )
    if guard == "matches_approval" and "approved" in values:
        return gettext("Record the SQL that was run, or its SHA-256.")
    if guard == "matches_approval":
        return gettext(
            "There is no intact approval of the current revision; the DBA must approve it again."
        )
    if guard == "backup_for_destructive" and "rules" in values:
        return gettext(
            "This change is destructive (%(rules)s): record the backup taken before it (Q5).",
            rules=values["rules"],
        )
    if guard == "witness_present":
        return gettext(
            "The contract requires a second person present (Q7): name another active user as "
            "the witness."
        )
    if guard == "execution_succeeded":
        return gettext("The execution did not succeed; roll it back instead.")
    if guard == "actual_effort_differs":
        return gettext("The actual effort equals the confirmed estimate; nothing to confirm.")
    if guard == "field_condition" and isinstance(params.get("message"), dict):
        return label(params["message"])
    return translate(reason.get("message", ""))


_DOCUMENT_KIND_LABELS = {
    "test_report": lazy_gettext("test report"),
    "test_cases": lazy_gettext("test cases"),
    "rollback_plan": lazy_gettext("rollback plan"),
    "upgrade_report": lazy_gettext("upgrade report"),
    "supplementary_agreement": lazy_gettext("supplementary agreement"),
    "delivery_note": lazy_gettext("delivery note"),
    "requirement_document": lazy_gettext("requirement document"),
    "structure_document": lazy_gettext("table structure document"),
    "backup_record": lazy_gettext("backup record"),
    "quotation": lazy_gettext("quotation"),
    "screenshot": lazy_gettext("screenshot"),
    "other": lazy_gettext("other"),
}
if set(_DOCUMENT_KIND_LABELS) != set(attachments.DOCUMENT_KINDS):
    raise RuntimeError("web.i18n: document kind labels differ from workflow.attachments")
# The workflow's vocabulary, in its order, with each kind's name.
DOCUMENT_KINDS = {kind: _DOCUMENT_KIND_LABELS[kind] for kind in attachments.DOCUMENT_KINDS}


def document_kind_label(kind: str) -> str:
    """A document kind's name in the page's language (the code itself when unknown)."""
    return str(DOCUMENT_KINDS.get(kind, kind))


@bp.post("/language")
def switch_language():
    """Change the page language; kept on the user when signed in. Never raises."""
    from web.auth import current_actor
    from web.signin import safe_next

    chosen = request.form.get("locale")
    if chosen in LOCALES:
        session["locale"] = chosen
        actor = current_actor()
        if actor is not None:
            set_locale(get_session(), actor, chosen)  # committed with the request
    return redirect(safe_next(request.form.get("next")))


def init_app(app: Flask) -> None:
    """Set up Flask-Babel with our catalogue, default language and time zone."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", TIMEZONE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)
    app.register_blueprint(bp)
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["days"] = days_text
    app.jinja_env.globals.update(
        label=label,
        role_label=role_label,
        reason_text=reason_text,
        translate=translate,
        document_kind_label=document_kind_label,
        locales=LOCALES,
        is_english=is_english,
    )
