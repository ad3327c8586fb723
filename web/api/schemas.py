"""Input and output schemas of the API; /openapi.json is generated from these."""

from __future__ import annotations

import functools

from marshmallow import RAISE, fields, validate

from web.api.fast_dump import FastDumpSchema as Schema
from workflow.quota import days_text, quota_policy

ID_RANGE = validate.Range(min=1, max=2**31 - 1)  # PostgreSQL integer; larger ids never exist


@functools.cache
def shared(schema_class: type[Schema], many: bool = False) -> Schema:
    """One instance per schema class, built once: building one deep-copies every declared field
    (about half a millisecond for RequestOut), and load/dump keep no state on the instance."""
    return schema_class(many=many)


class Strict(Schema):
    """Input schemas refuse unknown keys."""

    class Meta:
        unknown = RAISE


# ----------------------------------------------------------------- input


class RequestCreateIn(Strict):
    kind = fields.String(required=True, validate=validate.Length(max=60))
    contract_id = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    system_id = fields.Integer(strict=True, allow_none=True, validate=ID_RANGE)
    department_id = fields.Integer(strict=True, allow_none=True, validate=ID_RANGE)
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    description = fields.String(load_default="", validate=validate.Length(max=20000))
    fields_ = fields.Dict(keys=fields.String(), data_key="fields", load_default=dict)


class EventIn(Strict):
    version = fields.Integer(required=True, strict=True, validate=ID_RANGE)
    fields_ = fields.Dict(keys=fields.String(), data_key="fields", load_default=dict)
    comment = fields.String(load_default="", validate=validate.Length(max=10000))


class RequestListQuery(Strict):
    kind = fields.String(validate=validate.Length(max=60))
    state = fields.String(validate=validate.Length(max=60))
    contract_id = fields.Integer(validate=ID_RANGE)
    system_id = fields.Integer(validate=ID_RANGE)
    department_id = fields.Integer(validate=ID_RANGE)
    q = fields.String(validate=validate.Length(max=200))
    created_from = fields.Date()
    created_to = fields.Date()
    sort = fields.String(
        load_default="-id",
        validate=validate.OneOf(
            [
                "id",
                "-id",
                "created_at",
                "-created_at",
                "updated_at",
                "-updated_at",
                "title",
                "-title",
            ]
        ),
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=200))


class AttachmentIn(Strict):
    kind = fields.String(required=True, validate=validate.Length(min=1, max=60))
    version = fields.Integer(validate=ID_RANGE)


class AttachmentRemoveIn(Strict):
    version = fields.Integer(strict=True, validate=ID_RANGE)


# ----------------------------------------------------------------- output


class LabelOut(Schema):
    zh = fields.String()
    en = fields.String()


class ErrorBody(Schema):
    code = fields.String(metadata={"description": "stable machine code, e.g. stale_version"})
    message = fields.String()
    details = fields.Dict()


class ErrorOut(Schema):
    error = fields.Nested(ErrorBody)


class RoleOut(Schema):
    role = fields.String()
    department_id = fields.Integer(allow_none=True)
    vendor_id = fields.Integer(allow_none=True)
    contract_id = fields.Integer(allow_none=True)


class MeOut(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    locale = fields.String()
    roles = fields.List(fields.Nested(RoleOut))


class ContractOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    vendor_id = fields.Integer()
    vendor_name = fields.Function(lambda c: c.vendor.name)
    start_date = fields.Date()
    end_date = fields.Date()
    policy_key = fields.String()
    policy_hash = fields.String()
    policy = fields.Dict()


class QuotaEntryOut(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "reserve, release, consume or adjust"})
    days = fields.Function(lambda e: days_text(e.days), metadata={"description": "person-days"})
    request_id = fields.Integer(allow_none=True)
    actor = fields.String(attribute="actor_name")
    at = fields.Function(lambda e: e.at.isoformat() + "Z")
    reason = fields.String()


class QuotaOut(Schema):
    contract_id = fields.Function(lambda q: q.contract.id)
    contract_code = fields.Function(lambda q: q.contract.code)
    period_start = fields.Date()
    period_end = fields.Date()
    pool = fields.Function(
        lambda q: days_text(q.pool) if q.pool is not None else None,
        metadata={"description": "person-days; null when the contract has no cumulative pool"},
    )
    reserved = fields.Function(lambda q: days_text(q.reserved))
    consumed = fields.Function(lambda q: days_text(q.consumed))
    remaining = fields.Function(
        lambda q: days_text(q.remaining) if q.remaining is not None else None
    )
    policy = fields.Function(lambda q: quota_policy(q.contract))
    entries = fields.List(fields.Nested(QuotaEntryOut))


class ReleaseOut(Schema):
    version = fields.String()
    released_on = fields.Date()
    notes = fields.String()


class SystemListQuery(Strict):
    stale = fields.Boolean(truthy={"true", "1"}, falsy={"false", "0"})


class SystemStatusOut(Schema):
    """Z3: the newest release, whether it is installed, and whether the version is too old."""

    newest_version = fields.String(allow_none=True)
    behind = fields.Boolean()
    last_update = fields.String(allow_none=True)
    max_version_age_months = fields.Integer(allow_none=True)
    update_due = fields.String(allow_none=True)
    stale = fields.Boolean()


class SystemOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    vendor_id = fields.Integer()
    contract_id = fields.Integer()
    current_version = fields.String(allow_none=True)
    last_upgrade_at = fields.DateTime(allow_none=True)
    releases = fields.List(fields.Nested(ReleaseOut))
    status = fields.Nested(SystemStatusOut)


class AttachmentOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_by = fields.Function(lambda a: a.uploaded_by.username)
    uploaded_at = fields.DateTime()


class EventOptionOut(Schema):
    event = fields.String()
    label = fields.Nested(LabelOut)
    allowed = fields.Boolean()
    reasons = fields.List(
        fields.Dict(),
        metadata={"description": "why not allowed: code, message; guard and params for guards"},
    )
    fields_ = fields.Dict(
        data_key="fields", metadata={"description": "input fields the event takes"}
    )
    comment_required = fields.Boolean()


class SlaTargetOut(Schema):
    name = fields.String(
        metadata={"description": "response, on_site, temporary_recovery, resolution"}
    )
    amount = fields.String()
    unit = fields.String()
    clock = fields.String(metadata={"description": "7x24 or business_hours"})
    outside_hours = fields.Boolean(metadata={"description": "taken from the outside-hours table"})
    state = fields.String(metadata={"description": "running, paused, met or missed"})
    due_at = fields.DateTime(allow_none=True, metadata={"description": "null while paused"})
    warn_at = fields.DateTime(allow_none=True, metadata={"description": "75 % of the target"})
    finished_at = fields.DateTime(allow_none=True)
    budget_minutes = fields.Float()
    used_minutes = fields.Float()
    remaining_minutes = fields.Float(metadata={"description": "negative once breached"})
    share = fields.Float()
    warning = fields.Boolean()
    breached = fields.Boolean()


class SlaOut(Schema):
    level = fields.String(allow_none=True)
    level_label = fields.Nested(LabelOut, allow_none=True)
    known_level = fields.Boolean()
    reported_at = fields.DateTime()
    outside_hours = fields.Boolean(metadata={"description": "reported outside business hours"})
    provisional = fields.Boolean(
        metadata={"description": "a deadline lies in a year whose official schedule is unknown"}
    )
    recurring = fields.Boolean(metadata={"description": "reopened within the window (Q3)"})
    reopen_count = fields.Integer()
    targets = fields.List(fields.Nested(SlaTargetOut))


class StrictBoolean(fields.Boolean):
    """JSON true or false only: 0, 1, "yes" and "false" are refused, not guessed."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class CalendarOverrideIn(Strict):
    working = StrictBoolean(
        required=True, metadata={"description": "true: a working day; false: a day off"}
    )
    reason = fields.String(required=True, metadata={"description": "1 to 300 characters"})


class CalendarOverrideOut(Schema):
    day = fields.Date()
    working = fields.Boolean()
    reason = fields.String()
    by = fields.String(metadata={"description": "who set it"})
    at = fields.DateTime()
    statutory_working = fields.Boolean(metadata={"description": "what the override replaces"})
    statutory_why = fields.String(metadata={"description": "workday, weekend, holiday or makeup"})


class CalendarDayOut(Schema):
    day = fields.Date()
    working = fields.Boolean()
    why = fields.String(metadata={"description": "workday, weekend, holiday, makeup or override"})
    holiday = fields.String(allow_none=True)


class CalendarHolidayOut(Schema):
    day = fields.Date()
    name = fields.String()


class CalendarYearOut(Schema):
    year = fields.Integer()
    provisional = fields.Boolean(
        metadata={"description": "the State Council's schedule for the year is not in the data"}
    )
    last_official_year = fields.Integer()
    working_days = fields.Integer()
    days_off = fields.Method("_days_off", metadata={"description": "[CalendarHolidayOut]"})
    makeup_days = fields.List(fields.Date(), metadata={"description": "weekend days worked"})
    overrides = fields.List(fields.Nested(CalendarOverrideOut))
    days = fields.Method("_days", metadata={"description": "every date of the year"})

    def _days_off(self, view) -> list:
        pairs = [{"day": day, "name": name} for day, name in view.days_off]
        return shared(CalendarHolidayOut, many=True).dump(pairs)

    def _days(self, view) -> list:
        return shared(CalendarDayOut, many=True).dump([d for m in view.months for d in m.days])


class CalendarYearQuery(Strict):
    year = fields.Integer(metadata={"description": "2000 to 2099; this year when omitted"})


class ServiceLevelsQuery(Strict):
    quarter = fields.String(required=True, metadata={"description": "e.g. 2026Q4"})


class KpiOut(Schema):
    min = fields.Float(allow_none=True)
    met = fields.Boolean(allow_none=True)


class ServiceLevelsOut(Schema):
    contract_id = fields.Integer()
    quarter = fields.String()
    from_ = fields.Date(data_key="from")
    to = fields.Date(metadata={"description": "exclusive"})
    timezone = fields.String()
    provisional = fields.Boolean()
    reported = fields.Integer(
        metadata={"description": "tickets reported in the quarter, not cancelled"}
    )
    resolved = fields.Integer()
    on_time = fields.Integer(metadata={"description": "resolved without any missed target"})
    open = fields.Integer()
    recurring = fields.Integer()
    rated = fields.Integer()
    resolution_rate = fields.Float(allow_none=True, metadata={"description": "percent"})
    on_time_rate = fields.Float(allow_none=True, metadata={"description": "percent of resolved"})
    satisfaction = fields.Float(allow_none=True, metadata={"description": "mean rating 0-100"})
    breaches = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_level = fields.Dict(keys=fields.String(), values=fields.Integer())
    targets = fields.Dict(keys=fields.String(), values=fields.Nested(KpiOut))


class RequestSummaryOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    title = fields.String()
    description = fields.String()
    state = fields.String()
    state_label = fields.Nested(LabelOut)
    final = fields.Boolean()
    version = fields.Integer()
    definition_version = fields.String(metadata={"description": "content hash of the definition"})
    contract_id = fields.Integer()
    system_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    submitter = fields.String()
    assignee = fields.String(allow_none=True)
    fields_ = fields.Dict(data_key="fields")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    sla = fields.Nested(SlaOut, allow_none=True, metadata={"description": "fault tickets only"})


class RequestOut(RequestSummaryOut):
    attachments = fields.List(fields.Nested(AttachmentOut))
    available_events = fields.List(fields.Nested(EventOptionOut))


class RequestPageOut(Schema):
    items = fields.List(fields.Nested(RequestSummaryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(metadata={"description": "matches, counted up to 1000; see total_exact"})
    total_exact = fields.Boolean(
        metadata={"description": "false: there are more than `total` matches"}
    )
    pages = fields.Integer(
        metadata={"description": "when the total is not exact: at least one past a full page"}
    )


class HistoryEntryOut(Schema):
    seq = fields.Integer()
    at = fields.DateTime()
    actor = fields.String(attribute="actor_name")
    event = fields.String()
    from_state = fields.String(allow_none=True)
    to_state = fields.String()
    fields_ = fields.Dict(data_key="fields", attribute="fields")
    comment = fields.String()
    definition_hash = fields.String()
    prev_hash = fields.String()
    entry_hash = fields.String()


class HistoryOut(Schema):
    request_id = fields.Integer()
    head_hash = fields.String()
    entries = fields.List(fields.Nested(HistoryEntryOut))


class DefinitionSummaryOut(Schema):
    key = fields.String()
    title = fields.Nested(LabelOut)
    version = fields.String()
    initial = fields.String()
    states = fields.List(fields.String())


class DefinitionOut(DefinitionSummaryOut):
    content = fields.Dict()
    mermaid = fields.String()


class RevisionSummaryOut(Schema):
    """One revision of a schema change without its SQL text."""

    number = fields.Integer()
    reason = fields.String(metadata={"description": "created, revised or changes_requested"})
    database_name = fields.String()
    dialect = fields.String()
    change_sha256 = fields.String()
    rollback_sha256 = fields.String()
    risk = fields.String(metadata={"description": "none, info, warning or error"})
    findings = fields.Function(lambda r: len((r.analysis or {}).get("findings", [])))
    created_by = fields.Function(lambda r: r.created_by.username)
    created_at = fields.DateTime()


class RevisionOut(RevisionSummaryOut):
    """One revision with its exact SQL and the analysis: findings, objects, structure (Z5)."""

    change_sql = fields.String()
    rollback_sql = fields.String()
    findings = fields.Function(lambda r: (r.analysis or {}).get("findings", []))
    statements = fields.Function(lambda r: (r.analysis or {}).get("statements", []))
    objects = fields.Function(lambda r: (r.analysis or {}).get("objects", []))
    structure = fields.Function(lambda r: (r.analysis or {}).get("structure", []))
