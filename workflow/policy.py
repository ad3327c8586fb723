"""Contract-policy templates: quota, SLA, calendar, upgrade, schema-change and assessment rules.

A policy document is YAML validated here (DOMAIN.md clause IDs live in the template comments)
and stored on each contract as canonical JSON: every section present with its defaults filled
in, Decimals written as normalised strings ("7", "0.5"), money as integer fen. A template's
``content_hash`` is the SHA-256 of that canonical JSON, so comments and key order do not
change it and a rule change does.

Meaning of the quota numbers (DOMAIN §1):
- ``pool``: person-days free per ``period``, cumulative (Z1); null = no cumulative pool.
- ``per_request_free_max``: largest free request (Q1); null = no per-request cap.
- ``overflow``: ``split`` = the part within the pool is free, the rest is negotiated (Z1);
  ``whole`` = a request above the limit needs a supplementary agreement as a whole (Q1).
- Bugs (``bug``, ``recurring_bug``) never count against a quota.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from workflow.canonical import canonical_json, content_hash
from workflow.ddl.rules import RULES as DDL_RULES
from workflow.yamlsource import (
    DefinitionError,
    Problem,
    line_of,
    load_keyed_dir,
    load_yaml_file,
    marshmallow_problems,
)

__all__ = [
    "COUNTABLE_TYPES",
    "DefinitionError",
    "PolicySchema",
    "PolicyTemplate",
    "REQUEST_TYPES",
    "TARGET_NAMES",
    "load_policy_dir",
    "load_policy_file",
    "policy_value",
    "validate_policy_document",
]

KEY = re.compile(r"^[a-z0-9_]+$")
SHORT_KEY = re.compile(r"^[A-Za-z0-9_]{1,20}$")
CLOCK_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

REQUEST_TYPES = (
    "bug",
    "recurring_bug",
    "new_feature",
    "special_requirement",
    "interface",
    "report",
)
BUG_TYPES = ("bug", "recurring_bug")
COUNTABLE_TYPES = tuple(t for t in REQUEST_TYPES if t not in BUG_TYPES)
QUOTA_PERIODS = ("contract_year", "calendar_year", "contract_term")
OVERFLOW = ("split", "whole")
TARGET_NAMES = ("response", "on_site", "temporary_recovery", "resolution")
UNITS = ("minutes", "hours", "working_days")
CLOCKS = ("7x24", "business_hours")
WORKDAYS = ("statutory", "weekdays")
SEVERITIES = ("error", "warning", "info")
ASSESSMENT_PERIODS = ("month", "quarter", "half_year", "year")
SCHEMES = ("deductions", "item_average", "spot_check")
DEDUCTION_BASES = ("contract", "subsystem", "period_fee")
PENALTY_PER = ("occurrence", "period")


# ---------------------------------------------------------------- field types


def _decimal_text(value: Decimal) -> str:
    """Normalised plain text of a Decimal: 7 → "7", 0.50 → "0.5", 10 → "10"."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


class DecimalText(fields.Field):
    """A Decimal read from an int, float or string; dumped as normalised text ("0.5")."""

    def __init__(
        self,
        *,
        minimum: Decimal | int = 0,
        maximum: Decimal | int = 100_000,
        positive: bool = False,
        step: Decimal | str | None = None,
        what: str = "",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.minimum, self.maximum = Decimal(minimum), Decimal(maximum)
        self.positive = positive
        self.step = Decimal(step) if step is not None else None
        self.what = what

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValidationError("must be a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValidationError(f"{value!r} is not a number") from exc
        if not number.is_finite():
            raise ValidationError(f"{value!r} is not a finite number")
        unit = f" {self.what}" if self.what else ""
        if self.positive and number <= 0:
            raise ValidationError(f"{value}{unit} must be greater than 0")
        if number < self.minimum or number > self.maximum:
            raise ValidationError(
                f"{value}{unit} must be between {self.minimum} and {self.maximum}"
            )
        if self.step is not None and number % self.step != 0:
            raise ValidationError(f"{value}{unit} is not a multiple of {self.step}")
        return number

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else _decimal_text(Decimal(value))


def _person_days(**kwargs: Any) -> DecimalText:
    return DecimalText(step="0.5", maximum=10_000, what="person-days", **kwargs)


def _counted_type(value: str) -> None:
    if value in BUG_TYPES:
        raise ValidationError(
            f"'{value}' cannot be counted: bugs never count against the free quota (Z1, Q3)"
        )
    if value not in COUNTABLE_TYPES:
        raise ValidationError(
            f"unknown request type '{value}' (known: {', '.join(COUNTABLE_TYPES)})"
        )


def _timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone '{value}' (e.g. Asia/Shanghai)") from exc


def _clock_time(value: str) -> None:
    if not CLOCK_TIME.match(value):
        raise ValidationError(f"'{value}' is not a time of day HH:MM (e.g. \"08:00\")")


def _key(pattern: re.Pattern, what: str) -> validate.Regexp:
    return validate.Regexp(pattern, error=f"{{input!r}} is not a valid {what} ({pattern.pattern})")


def _unique_keys(items: list[dict], field: str, what: str) -> None:
    """Raise a ValidationError at the second and later items repeating a ``key``."""
    seen: set = set()
    errors: dict = {}
    for index, item in enumerate(items):
        if item[field] in seen:
            errors[index] = {field: [f"duplicate {what} '{item[field]}'"]}
        seen.add(item[field])
    if errors:
        raise ValidationError(errors)


class Strict(Schema):
    """Base: unknown keys are refused so typos are caught."""

    class Meta:
        unknown = RAISE

    def get_attribute(self, obj, attr, default):
        # Dump plain dicts by key only: an absent "items" must not become dict.items.
        if isinstance(obj, dict):
            return obj.get(attr, default)
        return super().get_attribute(obj, attr, default)


class Label(Strict):
    """A bilingual label."""

    zh = fields.String(required=True, validate=validate.Length(min=1))
    en = fields.String(required=True, validate=validate.Length(min=1))


# ---------------------------------------------------------------- calendar


class TimeRange(Strict):
    """A start/end pair of HH:MM times within one day."""

    start = fields.String(required=True, validate=_clock_time)
    end = fields.String(required=True, validate=_clock_time)

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data["start"] >= data["end"]:
            raise ValidationError(f"end {data['end']} must be after start {data['start']}", "end")


class BusinessHours(TimeRange):
    """Working hours on a working day, with an optional lunch break inside them."""

    lunch = fields.Nested(TimeRange, allow_none=True, load_default=None)

    @validates_schema
    def _lunch_inside(self, data, **kwargs):
        lunch = data.get("lunch")
        if lunch and not (data["start"] < lunch["start"] and lunch["end"] < data["end"]):
            raise ValidationError(
                f"lunch {lunch['start']}-{lunch['end']} must lie inside "
                f"{data['start']}-{data['end']}",
                "lunch",
            )


def _default_business_hours() -> dict:
    return {"start": "08:00", "end": "18:00", "lunch": None}


class Calendar(Strict):
    """Which days are working days and which hours are working hours."""

    country = fields.String(load_default="CN", validate=validate.OneOf(["CN"]))
    business_hours = fields.Nested(
        BusinessHours, allow_none=True, load_default=_default_business_hours
    )
    workdays = fields.String(load_default="statutory", validate=validate.OneOf(WORKDAYS))


# ---------------------------------------------------------------- quota (DOMAIN §1)


class Quota(Strict):
    """Free development quota (Z1, Q1) and delivery / acceptance periods (D4, D7, D8, W2)."""

    period = fields.String(load_default="contract_year", validate=validate.OneOf(QUOTA_PERIODS))
    pool = _person_days(allow_none=True, load_default=None)
    per_request_free_max = _person_days(allow_none=True, load_default=None)
    overflow = fields.String(load_default="whole", validate=validate.OneOf(OVERFLOW))
    counted_types = fields.List(
        fields.String(validate=_counted_type), load_default=lambda: list(COUNTABLE_TYPES)
    )
    acceptance_wait_working_days = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=0, max=365)
    )
    delivery_days = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=3650)
    )
    change_working_days = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=365)
    )
    warranty_months = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=240)
    )

    @validates_schema
    def _no_repeats(self, data, **kwargs):
        seen: set = set()
        for index, name in enumerate(data.get("counted_types", [])):
            if name in seen:
                raise ValidationError({"counted_types": {index: [f"'{name}' is listed twice"]}})
            seen.add(name)


# ---------------------------------------------------------------- SLA (DOMAIN §4)


class Target(Strict):
    """One time target: an amount of minutes, hours or statutory working days."""

    amount = DecimalText(required=True, positive=True, maximum=100_000)
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    clock = fields.String(validate=validate.OneOf(CLOCKS))

    @validates_schema
    def _consistent(self, data, **kwargs):
        unit, amount = data["unit"], data["amount"]
        if unit == "working_days":
            if data.get("clock") == "7x24":
                raise ValidationError(
                    "working_days count statutory working days; use minutes or hours "
                    "for a 7x24 clock",
                    "clock",
                )
            if amount % Decimal("0.5") != 0:
                raise ValidationError(f"{amount} working days is not a multiple of 0.5", "amount")
        elif unit == "minutes" and amount != amount.to_integral_value():
            raise ValidationError(f"{amount} minutes must be a whole number", "amount")

    @post_load
    def _default_clock(self, data, **kwargs):
        if "clock" not in data:
            data["clock"] = "business_hours" if data["unit"] == "working_days" else "7x24"
        return data


def _targets(**kwargs: Any) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf(TARGET_NAMES)),
        values=fields.Nested(Target),
        **kwargs,
    )


class Level(Strict):
    """One fault level / priority with its targets (inside, and optionally outside, hours)."""

    key = fields.String(required=True, validate=_key(SHORT_KEY, "level key"))
    label = fields.Nested(Label, required=True)
    description = fields.Nested(Label)
    targets = _targets(required=True, validate=validate.Length(min=1))
    outside_hours_targets = _targets(validate=validate.Length(min=1))

    @validates_schema
    def _outside(self, data, **kwargs):
        errors: dict = {}
        for name, target in (data.get("outside_hours_targets") or {}).items():
            if name not in data["targets"]:
                errors[name] = [f"'{name}' outside hours has no matching target in 'targets'"]
            elif target["clock"] == "business_hours":
                errors[name] = ["a target outside business hours cannot run on business_hours"]
        if errors:
            raise ValidationError({"outside_hours_targets": errors})


class Kpis(Strict):
    """Period-level service indicators (X4), in percent / points out of 100."""

    resolution_rate_min = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=0, max=100)
    )
    on_time_rate_min = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=0, max=100)
    )
    satisfaction_min = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=0, max=100)
    )


class Sla(Strict):
    """The SLA table: levels with response / on-site / recovery / resolution targets."""

    reopen_recurring_window_days = fields.Integer(
        strict=True, allow_none=True, load_default=30, validate=validate.Range(min=1, max=3650)
    )
    levels = fields.List(fields.Nested(Level), required=True, validate=validate.Length(min=1))
    kpis = fields.Nested(Kpis, allow_none=True, load_default=None)

    @validates_schema
    def _unique(self, data, **kwargs):
        try:
            _unique_keys(data["levels"], "key", "level key")
        except ValidationError as exc:
            raise ValidationError({"levels": exc.messages}) from exc


# ---------------------------------------------------------------- upgrades and schema changes


class Upgrade(Strict):
    """Upgrade rules (DOMAIN §2)."""

    require_test_documents = fields.Boolean(load_default=True)
    require_latest_release = fields.Boolean(load_default=False)
    max_version_age_months = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=120)
    )
    require_upgrade_report = fields.Boolean(load_default=True)


class SchemaChange(Strict):
    """Database schema change rules (DOMAIN §3)."""

    require_structure_document = fields.Boolean(load_default=True)
    require_backup_for_destructive = fields.Boolean(load_default=True)
    two_person_execution = fields.Boolean(load_default=False)
    severity_overrides = fields.Dict(
        keys=fields.String(
            validate=validate.OneOf(sorted(DDL_RULES), error="unknown rule id {input}")
        ),
        values=fields.String(validate=validate.OneOf(SEVERITIES)),
        load_default=dict,
    )


# ---------------------------------------------------------------- assessment (DOMAIN §5)


class Deduction(Strict):
    """Money taken off a payment: a fixed amount in fen, or a percent of a base."""

    fen = fields.Integer(strict=True, validate=validate.Range(min=0, max=10**12))
    percent = DecimalText(positive=True, maximum=100, what="percent")
    of = fields.String(validate=validate.OneOf(DEDUCTION_BASES))

    @validates_schema
    def _one_kind(self, data, **kwargs):
        if ("fen" in data) == ("percent" in data):
            raise ValidationError("give exactly one of 'fen' or 'percent'")
        if "percent" in data and "of" not in data:
            raise ValidationError(f"a percent needs 'of' ({', '.join(DEDUCTION_BASES)})", "of")
        if "fen" in data and "of" in data:
            raise ValidationError("'of' only goes with 'percent'", "of")


class DeductionItem(Strict):
    """One way of losing points (Z6)."""

    key = fields.String(required=True, validate=_key(KEY, "item key"))
    label = fields.Nested(Label, required=True)
    deduct_points = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=1, max=1000)
    )


class Category(Strict):
    """A scored category with its points and the deductions inside it (Z6)."""

    key = fields.String(required=True, validate=_key(KEY, "category key"))
    label = fields.Nested(Label, required=True)
    points = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=1000))
    items = fields.List(
        fields.Nested(DeductionItem), required=True, validate=validate.Length(min=1)
    )

    @validates_schema
    def _unique(self, data, **kwargs):
        try:
            _unique_keys(data["items"], "key", "item key")
        except ValidationError as exc:
            raise ValidationError({"items": exc.messages}) from exc


class ScoredItem(Strict):
    """One item scored 0–100 and averaged (Q4)."""

    key = fields.String(required=True, validate=_key(KEY, "item key"))
    label = fields.Nested(Label, required=True)


class Grade(Strict):
    """A result band from ``min`` (score, or pass rate in percent) up to the next band."""

    key = fields.String(required=True, validate=_key(SHORT_KEY, "grade key"))
    label = fields.Nested(Label, required=True)
    min = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=1000))
    passed = fields.Boolean(allow_none=True, load_default=None)
    payment_delay_months = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=24)
    )
    deduct = fields.Nested(Deduction, allow_none=True, load_default=None)


class Penalty(Strict):
    """A money deduction per occurrence, or once per period after ``min_occurrences``."""

    key = fields.String(required=True, validate=_key(KEY, "penalty key"))
    label = fields.Nested(Label, required=True)
    deduct = fields.Nested(Deduction, required=True)
    per = fields.String(load_default="occurrence", validate=validate.OneOf(PENALTY_PER))
    min_occurrences = fields.Integer(
        strict=True, load_default=1, validate=validate.Range(min=1, max=1000)
    )
    sla_level = fields.String(allow_none=True, load_default=None)


class Termination(Strict):
    """When the hospital may end the contract: N consecutive bad results."""

    consecutive = fields.Integer(strict=True, required=True, validate=validate.Range(min=2, max=24))
    below_score = fields.Integer(strict=True, validate=validate.Range(min=1, max=1000))
    grade = fields.String()
    period = fields.String(validate=validate.OneOf(ASSESSMENT_PERIODS))

    @validates_schema
    def _one_condition(self, data, **kwargs):
        if ("below_score" in data) == ("grade" in data):
            raise ValidationError("give exactly one of 'below_score' or 'grade'")


class Assessment(Strict):
    """Periodic assessment: deductions (Z6), item average (Q4) or spot-check pass rate (W6)."""

    period = fields.String(required=True, validate=validate.OneOf(ASSESSMENT_PERIODS))
    scheme = fields.String(required=True, validate=validate.OneOf(SCHEMES))
    max_score = fields.Integer(strict=True, load_default=100, validate=validate.Range(min=1))
    categories = fields.List(fields.Nested(Category))
    items = fields.List(fields.Nested(ScoredItem))
    adverse_event_fails = fields.Boolean(load_default=False)
    grades = fields.List(fields.Nested(Grade), required=True, validate=validate.Length(min=1))
    penalties = fields.List(fields.Nested(Penalty), load_default=list)
    termination = fields.Nested(Termination, allow_none=True, load_default=None)

    @validates_schema
    def _consistent(self, data, **kwargs):
        errors: dict = {}
        scheme = data["scheme"]
        if scheme == "deductions":
            if not data.get("categories"):
                errors["categories"] = ["the deductions scheme needs 'categories'"]
            else:
                total = sum(c["points"] for c in data["categories"])
                if total != data["max_score"]:
                    errors["categories"] = [
                        f"category points add up to {total}, not max_score {data['max_score']}"
                    ]
        elif "categories" in data:
            errors["categories"] = [f"'categories' belong to the deductions scheme, not {scheme}"]
        if scheme == "item_average":
            if not data.get("items"):
                errors["items"] = ["the item_average scheme needs 'items'"]
        elif "items" in data:
            errors["items"] = [f"'items' belong to the item_average scheme, not {scheme}"]
        if data["adverse_event_fails"] and scheme != "spot_check":
            errors["adverse_event_fails"] = ["only the spot_check scheme has adverse events"]
        for name, key in (("categories", "category key"), ("items", "item key")):
            if data.get(name) and name not in errors:
                try:
                    _unique_keys(data[name], "key", key)
                except ValidationError as exc:
                    errors[name] = exc.messages
        errors.update(self._check_grades_and_links(data))
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _check_grades_and_links(data: dict) -> dict:
        grades, top = data["grades"], data["max_score"]
        if data["scheme"] == "spot_check":
            top = 100  # pass rate in percent
        problems: dict = {}
        try:
            _unique_keys(grades, "key", "grade key")
        except ValidationError as exc:
            return {"grades": exc.messages}
        for index, grade in enumerate(grades):
            if grade["min"] > top:
                problems[index] = {"min": [f"min {grade['min']} is above the top {top}"]}
            elif index and grade["min"] >= grades[index - 1]["min"]:
                problems[index] = {"min": ["grades must go from best to worst: min must decrease"]}
        if not problems and grades[-1]["min"] != 0:
            problems[len(grades) - 1] = {"min": ["the last (worst) grade must start at 0"]}
        if problems:
            return {"grades": problems}
        termination = data.get("termination")
        keys = [g["key"] for g in grades]
        if termination and termination.get("grade") not in (None, *keys):
            return {
                "termination": {
                    "grade": [f"unknown grade '{termination['grade']}' (known: {', '.join(keys)})"]
                }
            }
        penalties = data.get("penalties") or []
        try:
            _unique_keys(penalties, "key", "penalty key")
        except ValidationError as exc:
            return {"penalties": exc.messages}
        return {}


# ---------------------------------------------------------------- the document


class PolicySchema(Strict):
    """A whole contract-policy document."""

    key = fields.String(required=True, validate=[validate.Length(max=80), _key(KEY, "policy key")])
    title = fields.Nested(Label, required=True)
    seed = fields.String(validate=_key(re.compile(r"^[0-9]{3}$"), "seed number"))
    clauses = fields.List(fields.String(validate=validate.Length(min=1, max=20)))
    timezone = fields.String(load_default="Asia/Shanghai", validate=_timezone)
    calendar = fields.Nested(Calendar, load_default=lambda: Calendar().load({}))
    quota = fields.Nested(Quota, load_default=lambda: Quota().load({}))
    sla = fields.Nested(Sla, allow_none=True, load_default=None)
    upgrade = fields.Nested(Upgrade, load_default=lambda: Upgrade().load({}))
    schema_change = fields.Nested(SchemaChange, load_default=lambda: SchemaChange().load({}))
    assessment = fields.Nested(Assessment, allow_none=True, load_default=None)

    @validates_schema
    def _cross_sections(self, data, **kwargs):
        sla = data.get("sla")
        if not sla:
            return
        errors: dict = {}
        has_hours = data["calendar"]["business_hours"] is not None
        for index, level in enumerate(sla["levels"]):
            level_errors: dict = {}
            if not has_hours:
                for name, target in level["targets"].items():
                    if target["clock"] == "business_hours" and target["unit"] != "working_days":
                        level_errors.setdefault("targets", {})[name] = [
                            "clock business_hours needs calendar.business_hours"
                        ]
                if level.get("outside_hours_targets"):
                    level_errors["outside_hours_targets"] = [
                        "outside_hours_targets need calendar.business_hours"
                    ]
            if level_errors:
                errors[index] = level_errors
        if errors:
            raise ValidationError({"sla": {"levels": errors}})
        assessment = data.get("assessment") or {}
        level_keys = [level["key"] for level in sla["levels"]]
        for index, penalty in enumerate(assessment.get("penalties") or []):
            if penalty["sla_level"] is not None and penalty["sla_level"] not in level_keys:
                message = (
                    f"unknown SLA level '{penalty['sla_level']}' (known: {', '.join(level_keys)})"
                )
                errors[index] = {"sla_level": [message]}
        if errors:
            raise ValidationError({"assessment": {"penalties": errors}})


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class PolicyTemplate:
    """A validated policy template: its canonical document and the hash of that document."""

    key: str
    title: dict
    document: dict
    content_hash: str
    file: str


def validate_policy_document(document: Any, file: str = "<policy>") -> dict:
    """Validate a parsed (or stored) policy; return it canonical; raises DefinitionError."""
    if not isinstance(document, dict):
        problem = Problem(file, line_of(document), "a policy document must be a mapping")
        raise DefinitionError([problem])
    schema = PolicySchema()
    try:
        loaded = schema.load(document)
    except ValidationError as exc:
        raise DefinitionError(marshmallow_problems(file, document, exc.messages)) from exc
    # Dumping gives plain JSON types; the JSON round trip drops any leftover subclass.
    return json.loads(canonical_json(schema.dump(loaded)))


def load_policy_file(path: str | Path) -> PolicyTemplate:
    """Load and validate one policy YAML file; raises DefinitionError naming file and line."""
    raw, _text = load_yaml_file(path)
    document = validate_policy_document(raw, str(path))
    return PolicyTemplate(
        key=document["key"],
        title=document["title"],
        document=document,
        content_hash=content_hash(document),
        file=str(path),
    )


def load_policy_dir(directory: str | Path) -> dict[str, PolicyTemplate]:
    """Load every ``*.yaml`` policy in a directory by key; raises DefinitionError (all problems)."""
    return load_keyed_dir(directory, load_policy_file, "policy")


def policy_value(document: dict | None, dotted_path: str) -> Any:
    """The value at ``a.b.c`` (list items by index), or None if absent or null; never raises."""
    node: Any = document
    for part in dotted_path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node
