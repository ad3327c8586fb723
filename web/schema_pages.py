"""Schema change pages: the review (findings beside their statements, highlighted SQL, diff
between revisions, structure document) and the printable review sheet (数据库变更审核单)."""

from __future__ import annotations

from functools import lru_cache

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import lazy_gettext
from flask_login import login_required
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import MySqlLexer, PostgresLexer, SqlLexer, TransactSqlLexer

from web.auth import current_actor
from web.db import get_session
from web.i18n import label
from web.ui import visible_request
from workflow import engine, queries
from workflow.canonical import content_hash
from workflow.ddl import RULES
from workflow.errors import NotFound
from workflow.schema_rules import (
    approval_intact,
    revision_diff,
    revision_numbered,
    revisions_of,
)

bp = Blueprint("schema", __name__)

# Names of the analysis' object kinds and changes, in the page's language.
OBJECT_KINDS = {
    "table": lazy_gettext("table"),
    "column": lazy_gettext("column"),
    "index": lazy_gettext("index"),
    "view": lazy_gettext("view"),
    "procedure": lazy_gettext("procedure"),
    "function": lazy_gettext("function"),
    "trigger": lazy_gettext("trigger"),
    "package": lazy_gettext("package"),
    "type": lazy_gettext("type"),
    "event": lazy_gettext("event"),
    "database": lazy_gettext("database"),
    "schema": lazy_gettext("schema"),
    "constraint": lazy_gettext("constraint"),
    "sequence": lazy_gettext("sequence"),
    "object": lazy_gettext("object"),
}
OBJECT_ACTIONS = {
    "create": lazy_gettext("create"),
    "create_or_replace": lazy_gettext("create or replace"),
    "alter": lazy_gettext("alter"),
    "drop": lazy_gettext("drop"),
    "rename": lazy_gettext("rename"),
    "rename_table": lazy_gettext("rename table"),
    "truncate": lazy_gettext("truncate"),
    "data": lazy_gettext("data change"),
    "add": lazy_gettext("add column"),
    "modify": lazy_gettext("modify column"),
    "type": lazy_gettext("change type"),
    "not_null": lazy_gettext("set NOT NULL"),
    "constraint": lazy_gettext("add constraint"),
    "comment": lazy_gettext("comment"),
    "drop_index": lazy_gettext("drop index"),
    "drop_constraint": lazy_gettext("drop constraint"),
}

# Statements shown with highlighting on one page; a longer script is downloaded whole.
SHOWN_STATEMENTS = 400
_LEXERS = {
    "mysql": MySqlLexer,
    "postgres": PostgresLexer,
    "tsql": TransactSqlLexer,
    "oracle": SqlLexer,
}
_FORMATTER = HtmlFormatter(nowrap=True)


@lru_cache(maxsize=2048)
def highlighted(text: str, dialect: str) -> Markup:
    """SQL as HTML with Pygments' token classes (styles in static/pygments.css)."""
    lexer = _LEXERS.get(dialect, SqlLexer)()
    return Markup(highlight(text, lexer, _FORMATTER))  # noqa: S704 - Pygments escapes the text


def _schema_change(request_id: int):
    return visible_request(request_id, "schema_change")


def _revision(req, number: int | None):
    session = get_session()
    try:
        return revision_numbered(session, req, number or (req.data or {}).get("revision") or 0)
    except NotFound:
        abort(404)


def statement_rows(revision) -> list[dict]:
    """Each statement with its lines of SQL and the findings on it, in script order."""
    lines = revision.change_sql.split("\n")
    by_statement: dict[int, list[dict]] = {}
    for finding in revision.analysis.get("findings", []):
        if finding["part"] == "change" and finding["statement"]:
            by_statement.setdefault(finding["statement"], []).append(finding)
    rows = []
    for st in revision.analysis.get("statements", [])[:SHOWN_STATEMENTS]:
        text = "\n".join(lines[st["line"] - 1 : st["end_line"]])
        rows.append(
            {
                **st,
                "html": highlighted(text, revision.dialect),
                "findings": by_statement.get(st["number"], []),
            }
        )
    return rows


@bp.get("/requests/<int(max=2147483647):request_id>/review")
@login_required
def review(request_id: int):
    """The DBA's review of one revision (the current one unless ?revision=N)."""
    req = _schema_change(request_id)
    number = request.args.get("revision", type=int)
    revision = _revision(req, number)
    revisions = revisions_of(get_session(), req)
    against = request.args.get("diff", type=int)
    diff = None
    if against is not None:
        older = next((r for r in revisions if r.number == against), None)
        if older is None:
            abort(404)
        diff = revision_diff(older, revision)
    current = revision.number == (req.data or {}).get("revision")
    options = {
        o.event.name: o for o in engine.available_events(get_session(), req, current_actor())
    }
    findings = revision.analysis.get("findings", [])
    return render_template(
        "schema/review.html",
        req=req,
        definition=engine.definition_for(req),
        revision=revision,
        revisions=revisions,
        current=current,
        rows=statement_rows(revision),
        more=max(0, len(revision.analysis.get("statements", [])) - SHOWN_STATEMENTS),
        script_findings=[f for f in findings if f["part"] == "change" and not f["statement"]],
        rollback_findings=[f for f in findings if f["part"] == "rollback"],
        rollback_html=highlighted(revision.rollback_sql, revision.dialect),
        waivers=((req.data or {}).get("waivers") or {}) if current else {},
        may_waive=current and "waive" in options and options["waive"].allowed,
        diff=diff,
        against=against,
        rules=RULES,
        label=label,
        object_kinds=OBJECT_KINDS,
        object_actions=OBJECT_ACTIONS,
    )


@bp.get("/requests/<int(max=2147483647):request_id>/review/sheet")
@login_required
def review_sheet(request_id: int):
    """The printable review sheet: revision, hashes, findings and waivers, approval, execution."""
    req = _schema_change(request_id)
    revision = _revision(req, None)
    approval = (req.data or {}).get("approval")
    return render_template(
        "schema/sheet.html",
        req=req,
        definition=engine.definition_for(req),
        revision=revision,
        approval=approval,
        approval_ok=approval_intact(get_session(), req),
        waivers=(req.data or {}).get("waivers") or {},
        structure_sha256=content_hash(revision.analysis.get("structure", [])),
        history=queries.history_of(get_session(), req),
        rules=RULES,
        label=label,
        object_kinds=OBJECT_KINDS,
        object_actions=OBJECT_ACTIONS,
    )


@bp.get("/requests/<int(max=2147483647):request_id>/revisions/<int(max=100000):number>/<part>.sql")
@login_required
def revision_sql(request_id: int, number: int, part: str):
    """The exact bytes of a revision's change or rollback SQL (their SHA-256 is the pinned one)."""
    if part not in ("change", "rollback"):
        abort(404)
    revision = _revision(_schema_change(request_id), number)
    body = getattr(revision, f"{part}_sql").encode("utf-8")
    response = Response(body, mimetype="text/plain; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="request-{request_id}-r{number}-{part}.sql"'
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def init_app(app) -> None:
    """Register the pages."""
    app.register_blueprint(bp)
