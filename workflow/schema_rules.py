"""Guards and effects of the database schema change review (DOMAIN §3: D1, Z5, Q5, Q7).

Every edit of the SQL is a new, immutable revision (``models.SchemaRevision``) analysed when it
is written. Waivers and the approval belong to the revision they were given on: a new revision
(an edit, or the DBA asking for changes) starts with none. The approval pins the SHA-256 of the
change and rollback SQL; execution and rollback are accepted only for exactly those bytes.

Hashes are over the UTF-8 text with line endings as LF: a script pasted into a browser arrives
with CRLF, the same file run from a server has LF, and both are the same SQL.
"""

from __future__ import annotations

import difflib
import hashlib

from marshmallow import fields, validate
from sqlalchemy import func, select

from models import SchemaRevision, User
from workflow.canonical import content_hash
from workflow.ddl import analyse
from workflow.errors import InvalidInput, NotFound
from workflow.guards import lookup_policy
from workflow.registry import FireContext, Refusal, effect, guard

SQL_FIELDS = ("change_sql", "rollback_sql")
SQL_PARTS = ("change", "rollback")
REVISION_REASONS = ("created", "revised", "changes_requested")


def normalise_sql(text: str | None) -> str:
    """The SQL as it is hashed and stored: line endings as LF."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def sql_sha256(text: str | None) -> str:
    """SHA-256 of the SQL's UTF-8 bytes after line endings are made LF."""
    return hashlib.sha256(normalise_sql(text).encode("utf-8")).hexdigest()


def revisions_of(session, request) -> list[SchemaRevision]:
    """Every revision of a schema change, oldest first."""
    return list(
        session.scalars(
            select(SchemaRevision)
            .where(SchemaRevision.request_id == request.id)
            .order_by(SchemaRevision.number)
        )
    )


def current_revision(session, request) -> SchemaRevision | None:
    """The revision under review now (the newest one), or None before the first."""
    number = (request.data or {}).get("revision")
    if number is None:
        return None
    return session.scalar(
        select(SchemaRevision).where(
            SchemaRevision.request_id == request.id, SchemaRevision.number == number
        )
    )


def revision_numbered(session, request, number: int) -> SchemaRevision:
    """Revision ``number`` of the request; raises NotFound."""
    revision = session.scalar(
        select(SchemaRevision).where(
            SchemaRevision.request_id == request.id, SchemaRevision.number == number
        )
    )
    if revision is None:
        raise NotFound(
            f"Request #{request.id} has no revision {number}.",
            {"request_id": request.id, "revision": number},
        )
    return revision


def revision_diff(older: SchemaRevision, newer: SchemaRevision) -> dict[str, list[str]]:
    """Unified diffs of the change and the rollback SQL between two revisions."""
    out = {}
    for name in SQL_FIELDS:
        a, b = getattr(older, name).splitlines(), getattr(newer, name).splitlines()
        out[name] = list(
            difflib.unified_diff(
                a, b, f"r{older.number}/{name}.sql", f"r{newer.number}/{name}.sql", lineterm=""
            )
        )
    return out


def error_findings(revision: SchemaRevision) -> list[dict]:
    """The findings of a revision that block approval until waived."""
    return [f for f in (revision.analysis or {}).get("findings", []) if f["severity"] == "error"]


def _overrides(ctx: FireContext) -> dict:
    return lookup_policy(ctx.policy, "schema_change.severity_overrides") or {}


@effect(
    "open_revision",
    params={"reason": fields.String(required=True, validate=validate.OneOf(REVISION_REASONS))},
)
def open_revision(ctx: FireContext, reason: str) -> None:
    """Write the next revision from the SQL just given (or, when the DBA asks for changes, a copy
    of the current one), analyse it, and void the waivers and approval of earlier revisions."""
    session, request = ctx.session, ctx.request
    data = dict(request.data or {})
    previous = current_revision(session, request)
    change = data.pop("change_sql", None)
    rollback = data.pop("rollback_sql", None)
    if change is None:
        if previous is None:
            raise InvalidInput(
                "There is no SQL to revise.", {"fields": {"change_sql": ["Required."]}}
            )
        change = previous.change_sql
        if rollback is None:
            rollback = previous.rollback_sql
    elif rollback is None and previous is not None and "rollback_sql" not in ctx.fields:
        rollback = previous.rollback_sql
    change, rollback = normalise_sql(change), normalise_sql(rollback)
    dialect = data.get("dialect") or (previous.dialect if previous else "")
    analysis = analyse(change, rollback, dialect, _overrides(ctx))
    number = (
        session.scalar(
            select(func.max(SchemaRevision.number)).where(SchemaRevision.request_id == request.id)
        )
        or 0
    ) + 1
    revision = SchemaRevision(
        request_id=request.id,
        number=number,
        reason=reason,
        database_name=data.get("database_name") or (previous.database_name if previous else ""),
        dialect=dialect,
        change_sql=change,
        rollback_sql=rollback,
        change_sha256=sql_sha256(change),
        rollback_sha256=sql_sha256(rollback),
        risk=analysis.risk,
        analysis=analysis.as_data(),
        created_by_id=ctx.actor.id,
        created_at=ctx.now,
    )
    session.add(revision)
    counts = {s: 0 for s in ("error", "warning", "info")}
    for f in analysis.findings:
        counts[f["severity"]] += 1
    data.update(
        revision=number,
        change_sha256=revision.change_sha256,
        rollback_sha256=revision.rollback_sha256,
        risk=analysis.risk,
        findings=counts,
        waivers={},
    )
    data.pop("approval", None)
    request.data = data
    session.flush()


def _revision_or_refusal(ctx: FireContext):
    revision = current_revision(ctx.session, ctx.request)
    if revision is None:
        return None, Refusal("This schema change has no revision yet.")
    return revision, None


@guard("finding_waivable", reads_input=lambda p: {"finding"})
def finding_waivable(ctx: FireContext) -> str | None:
    """The finding named in the input belongs to the current revision and is not waived yet."""
    revision, refusal = _revision_or_refusal(ctx)
    if refusal:
        return refusal
    finding_id = ctx.fields.get("finding")
    known = {f["id"] for f in revision.analysis.get("findings", [])}
    if finding_id not in known:
        return Refusal(
            f"Revision {revision.number} has no finding '{finding_id}'.",
            finding=finding_id,
            revision=revision.number,
        )
    if finding_id in (ctx.request.data or {}).get("waivers", {}):
        return Refusal(f"Finding '{finding_id}' is already waived.", finding=finding_id)
    return None


@effect("record_waiver")
def record_waiver(ctx: FireContext) -> None:
    """Record the DBA's written waiver of one finding of the current revision."""
    revision = current_revision(ctx.session, ctx.request)
    finding = next(f for f in revision.analysis["findings"] if f["id"] == ctx.fields["finding"])
    data = dict(ctx.request.data or {})
    waivers = dict(data.get("waivers") or {})
    waivers[finding["id"]] = {
        "revision": revision.number,
        "rule": finding["rule"],
        "severity": finding["severity"],
        "reason": ctx.fields["reason"],
        "user": ctx.actor.username,
        "at": ctx.now.isoformat() + "Z",
    }
    data["waivers"] = waivers
    ctx.request.data = data


@guard("findings_waived")
def findings_waived(ctx: FireContext) -> str | None:
    """Every error finding of the current revision has a written waiver."""
    revision, refusal = _revision_or_refusal(ctx)
    if refusal:
        return refusal
    waived = (ctx.request.data or {}).get("waivers") or {}
    open_ids = [f["id"] for f in error_findings(revision) if f["id"] not in waived]
    if not open_ids:
        return None
    shown = ", ".join(open_ids[:10]) + (" …" if len(open_ids) > 10 else "")
    return Refusal(
        f"{len(open_ids)} error finding(s) of revision {revision.number} need a written waiver "
        f"first: {shown}.",
        count=len(open_ids),
        findings=shown,
        revision=revision.number,
    )


@guard("not_revision_author")
def not_revision_author(ctx: FireContext) -> str | None:
    """The reviewer wrote none of the revisions' SQL (nobody approves their own work)."""
    authors = {
        r.created_by_id
        for r in revisions_of(ctx.session, ctx.request)
        if r.reason != "changes_requested"
    }
    if ctx.actor.id in authors or ctx.actor.id == ctx.request.submitter_id:
        return Refusal("You wrote this SQL; another DBA must review it.")
    return None


def approval_body(approval: dict) -> dict:
    """The part of an approval its digest covers."""
    return {k: v for k, v in approval.items() if k != "digest"}


@effect("approve_revision", params={"field": fields.String(load_default="approval")})
def approve_revision(ctx: FireContext, field: str) -> None:
    """Pin the approval to the current revision: its number, both SHA-256 hashes, the
    structure document and every waiver, with one digest over all of it."""
    revision = current_revision(ctx.session, ctx.request)
    data = dict(ctx.request.data or {})
    waivers = data.get("waivers") or {}
    approval = {
        "user": ctx.actor.username,
        "at": ctx.now.isoformat() + "Z",
        "revision": revision.number,
        "database_name": revision.database_name,
        "dialect": revision.dialect,
        "change_sha256": revision.change_sha256,
        "rollback_sha256": revision.rollback_sha256,
        "structure_sha256": content_hash(revision.analysis.get("structure", [])),
        "risk": revision.risk,
        "waivers": [
            {"finding": k, "reason": v["reason"], "user": v["user"]}
            for k, v in sorted(waivers.items())
        ],
    }
    approval["digest"] = content_hash(approval)
    data[field] = approval
    ctx.request.data = data


def approval_intact(session, request) -> bool:
    """Whether the stored approval still matches its digest and the current revision's bytes."""
    approval = (request.data or {}).get("approval")
    revision = current_revision(session, request)
    return bool(
        approval
        and revision is not None
        and content_hash(approval_body(approval)) == approval.get("digest")
        and approval.get("revision") == revision.number
        and approval.get("change_sha256") == sql_sha256(revision.change_sql)
        and approval.get("rollback_sha256") == sql_sha256(revision.rollback_sql)
    )


def _ran_hash(ctx: FireContext, text_field: str, hash_field: str) -> str | None:
    if ctx.fields.get(text_field) is not None:
        return sql_sha256(ctx.fields[text_field])
    given = ctx.fields.get(hash_field)
    return given.lower() if isinstance(given, str) else None


@guard(
    "matches_approval",
    params={
        "part": fields.String(
            load_default="change", validate=lambda p: p in ("change", "rollback")
        ),
        "text_field": fields.String(load_default="executed_sql"),
        "hash_field": fields.String(load_default="executed_sql_sha256"),
    },
    reads_input=lambda p: {p["text_field"], p["hash_field"]},
)
def matches_approval(ctx: FireContext, part: str, text_field: str, hash_field: str) -> str | None:
    """D1: the SQL run (or its SHA-256) is exactly the approved change (or rollback) SQL of the
    current revision, and the approval is intact."""
    if not approval_intact(ctx.session, ctx.request):
        return Refusal(
            "There is no intact approval of the current revision; the DBA must approve it again."
        )
    approved = ctx.request.data["approval"][f"{part}_sha256"]
    ran = _ran_hash(ctx, text_field, hash_field)
    if ran is None:
        return Refusal("Record the SQL that was run, or its SHA-256.", approved=approved, part=part)
    if ran != approved:
        return Refusal(
            f"The SQL run (SHA-256 {ran}) is not the approved {part} SQL (SHA-256 {approved}).",
            ran=ran,
            approved=approved,
            part=part,
        )
    return None


@guard(
    "backup_for_destructive",
    params={"policy": fields.String(load_default="schema_change.require_backup_for_destructive")},
    reads_input=lambda p: {"backup_reference"},
)
def backup_for_destructive(ctx: FireContext, policy: str) -> str | None:
    """Q5: a destructive change names the backup taken before it runs."""
    if not lookup_policy(ctx.policy, policy):
        return None
    revision = current_revision(ctx.session, ctx.request)
    rules = sorted(
        {
            f["rule"]
            for f in (revision.analysis if revision else {}).get("findings", [])
            if f.get("destructive") and f["part"] == "change"
        }
    )
    if not rules or (ctx.fields.get("backup_reference") or "").strip():
        return None
    return Refusal(
        f"This change is destructive ({', '.join(rules)}): record the backup taken before it.",
        rules=", ".join(rules),
    )


@guard(
    "witness_present",
    params={"policy": fields.String(load_default="schema_change.two_person_execution")},
    reads_input=lambda p: {"witness"},
)
def witness_present(ctx: FireContext, policy: str) -> str | None:
    """Q7: under a two-person rule, the execution names a second person who was present."""
    if not lookup_policy(ctx.policy, policy):
        return None
    name = (ctx.fields.get("witness") or "").strip()
    if not name:
        return Refusal("The contract requires a second person present: name the witness.")
    user = ctx.session.scalar(select(User).where(User.username == name))
    if user is None or not user.is_active:
        return Refusal(f"There is no active user '{name}'.", witness=name)
    if user.id == ctx.actor.id:
        return Refusal("The witness must be someone other than the person executing.")
    return None


@effect(
    "record_run",
    params={
        "field": fields.String(required=True),
        "part": fields.String(
            load_default="change", validate=lambda p: p in ("change", "rollback")
        ),
        "text_field": fields.String(load_default="executed_sql"),
        "hash_field": fields.String(load_default="executed_sql_sha256"),
    },
)
def record_run(ctx: FireContext, field: str, part: str, text_field: str, hash_field: str) -> None:
    """Record an execution (or rollback): who, when, the revision and hash run, the backup,
    the witness, the result and the output."""
    data = dict(ctx.request.data or {})
    data[field] = {
        "user": ctx.actor.username,
        "at": ctx.now.isoformat() + "Z",
        "revision": data.get("revision"),
        "sha256": _ran_hash(ctx, text_field, hash_field),
        "part": part,
        **{
            k: ctx.fields[k]
            for k in ("backup_reference", "witness", "result", "output")
            if ctx.fields.get(k) not in (None, "")
        },
    }
    ctx.request.data = data


@guard("execution_succeeded")
def execution_succeeded(ctx: FireContext) -> str | None:
    """The recorded execution reports success (a failed run is rolled back, not verified)."""
    run = (ctx.request.data or {}).get("execution") or {}
    if run.get("result") == "success":
        return None
    return Refusal("The execution did not succeed; roll it back instead.", result=run.get("result"))
