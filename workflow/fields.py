"""Field types a definition may declare, turned into marshmallow fields for validation."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

HALF = Decimal("0.5")


class PersonDays(fields.Decimal):
    """Effort in person-days: a non-negative Decimal in steps of 0.5."""

    def _validated(self, value):
        value = super()._validated(value)
        if value is not None and (value < 0 or value % HALF != 0):
            raise self.make_error("step")
        return value

    default_error_messages = {"step": "Must be a non-negative multiple of 0.5 person-days."}


class StrictInteger(fields.Integer):
    """An integer that refuses booleans and fractional input."""

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


def _decimal_or_none(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _string(spec: dict, default_max: int) -> fields.Field:
    return fields.String(validate=validate.Length(max=spec.get("max_length") or default_max))


def _number_range(spec: dict) -> list:
    low, high = spec.get("min"), spec.get("max")
    if low is None and high is None:
        return []
    return [validate.Range(min=_decimal_or_none(low), max=_decimal_or_none(high))]


def _unique(values: list) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Each request may be named once.")


# name -> factory(spec) -> marshmallow field (without required/allow_none, added by field_for)
FIELD_TYPES = {
    "string": lambda spec: _string(spec, 200),
    "text": lambda spec: _string(spec, 20000),
    "integer": lambda spec: StrictInteger(strict=True, validate=_number_range(spec)),
    "decimal": lambda spec: fields.Decimal(as_string=True, validate=_number_range(spec)),
    "person_days": lambda spec: PersonDays(as_string=True, validate=_number_range(spec)),
    "money_fen": lambda spec: StrictInteger(
        strict=True, validate=[validate.Range(min=0), *_number_range(spec)]
    ),
    "date": lambda spec: fields.Date(),
    "datetime": lambda spec: fields.AwareDateTime(default_timezone=None),
    "boolean": lambda spec: fields.Boolean(truthy={True}, falsy={False}),
    "choice": lambda spec: fields.String(
        validate=validate.OneOf([str(c) for c in spec["choices"]])
    ),
    "sha256": lambda spec: fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$", re.I)),
    "version": lambda spec: fields.String(
        validate=[validate.Length(min=1, max=60), validate.Regexp(r"^[0-9A-Za-z][0-9A-Za-z._+-]*$")]
    ),
    "reference": lambda spec: StrictInteger(
        strict=True, validate=validate.Range(min=1, max=2**31 - 1)
    ),
    # Links to other requests (a delivery names the upgrades and schema changes it needs).
    "references": lambda spec: fields.List(
        StrictInteger(strict=True, validate=validate.Range(min=1, max=2**31 - 1)),
        validate=[validate.Length(max=20), _unique],
    ),
}

REFERENCE_TYPES = ("reference", "references")


def field_for(spec: dict) -> fields.Field:
    """Build the marshmallow field for one declared field; raises KeyError for an unknown type."""
    field = FIELD_TYPES[spec["type"]](spec)
    field.required = bool(spec.get("required", False))
    field.allow_none = not field.required
    return field


# id(field_specs), partial → (field_specs, schema): specs belong to compiled definitions, which
# live as long as the process; the specs object is kept so its id cannot be reused.
_SCHEMAS: dict[tuple[int, bool], tuple[dict, Schema]] = {}


def schema_for(field_specs: dict[str, dict], partial_ok: bool = False) -> Schema:
    """A marshmallow schema (unknown keys refused) for a mapping of declared fields, built once
    per mapping: building one costs more than validating with it."""
    key = (id(field_specs), partial_ok)
    cached = _SCHEMAS.get(key)
    if cached is not None and cached[0] is field_specs:
        return cached[1]
    declared = {name: field_for(spec) for name, spec in field_specs.items()}
    schema = Schema.from_dict(declared, name="DefinitionFields")(unknown=RAISE, partial=partial_ok)
    if len(_SCHEMAS) > 10_000:  # specs built on the fly (tests, checks) must not pile up
        _SCHEMAS.clear()
    _SCHEMAS[key] = (field_specs, schema)
    return schema


def validate_fields(field_specs: dict[str, dict], data: Any, partial_ok: bool = False) -> dict:
    """Validate input against declared fields; returns JSON-ready values; raises ValidationError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["Fields must be a JSON object."]})
    schema = schema_for(field_specs, partial_ok)
    loaded = schema.load(data)
    return to_json_values(schema.dump(loaded) if loaded else {}, loaded)


def to_json_values(dumped: dict, loaded: dict) -> dict:
    """Keep only the keys actually given, in JSON-serialisable form (Decimal → str, date → ISO)."""
    return {key: dumped.get(key) for key in loaded}
