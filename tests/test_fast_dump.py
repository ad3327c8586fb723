"""Output schemas dump by a plan (web/api/fast_dump.py) and must say what marshmallow says.

The suite also compares every dump it makes (conftest's ``_fast_dumps_checked``); here random
values of every shape a field may meet (absent, None, the wrong type, nested, in lists) are
thrown at every output schema that reads plain values.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import fields

from web.api import fast_dump
from web.api import schemas as s
from web.api.fast_dump import FastDumpSchema, marshmallow_dump

_SCALARS = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.integers(-(2**40), 2**40),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _value(field: fields.Field, depth: int) -> st.SearchStrategy:
    """Values a field may be given: its own type most often, anything plain sometimes."""
    kind = type(field)
    if kind is fields.Nested:
        own = _object(field.schema, depth + 1) if depth < 3 else st.none()
        if field.many or field.schema.many:
            own = st.lists(own, max_size=3)
    elif kind is fields.List:
        own = st.lists(_value(field.inner, depth + 1), max_size=3)
    elif kind is fields.DateTime:
        own = st.datetimes(max_value=datetime(2100, 1, 1), timezones=st.sampled_from([None, UTC]))
    elif kind is fields.Date:
        own = st.dates(max_value=date(2100, 1, 1))
    elif kind is fields.Dict:
        own = st.dictionaries(st.text(max_size=4), _SCALARS, max_size=3)
    else:
        own = _SCALARS
    return st.one_of(own, st.none()) if kind in (fields.Nested, fields.List) else own


def _object(schema, depth: int = 0) -> st.SearchStrategy:
    """A dict or an attribute object carrying some of the schema's values (some left out)."""
    keys = {}
    for name, field in schema.dump_fields.items():
        keys[field.attribute or name] = _value(field, depth)
    values = st.fixed_dictionaries({}, optional=keys)
    return st.one_of(values, values.map(lambda d: SimpleNamespace(**d)))


def _reads_plain_values(schema, seen=()) -> bool:
    """Whether every field, nested ones too, reads a value (no Function or Method field)."""
    for field in schema.dump_fields.values():
        if not field._CHECK_ATTRIBUTE:
            return False
        inner = field.inner if type(field) is fields.List else field
        nested = type(inner) is fields.Nested and type(inner.schema) not in seen
        if nested and not _reads_plain_values(inner.schema, (*seen, type(inner.schema))):
            return False
    return True


OUTPUT_SCHEMAS = sorted(
    (
        cls
        for cls in vars(s).values()
        if isinstance(cls, type)
        and issubclass(cls, FastDumpSchema)
        and cls.__name__.endswith("Out")
        and _reads_plain_values(s.shared(cls))
    ),
    key=lambda cls: cls.__name__,
)


def test_the_request_schemas_are_among_those_checked():
    """The schemas on a transition's and a list's path are all covered below."""
    names = {cls.__name__ for cls in OUTPUT_SCHEMAS}
    assert {
        "RequestSummaryOut",
        "RequestPageOut",
        "SlaOut",
        "SlaTargetOut",
        "HistoryEntryOut",
    } <= names


@pytest.mark.parametrize("schema_class", OUTPUT_SCHEMAS, ids=lambda cls: cls.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_dump_says_what_marshmallow_says(schema_class, data):
    """The plan and marshmallow's own path agree, value for value, for one and for many."""
    schema = s.shared(schema_class)
    one = data.draw(_object(schema))
    assert _outcome(schema.dump, one) == _outcome(marshmallow_dump, schema, one)
    many = data.draw(st.lists(_object(schema), max_size=3))
    assert _outcome(schema.dump, many, many=True) == _outcome(
        marshmallow_dump, schema, many, many=True
    )


def _outcome(dump, *args, **kwargs):
    """A dump's result, or the kind of error it raised (a float field given "" raises)."""
    try:
        return dump(*args, **kwargs)
    except (TypeError, ValueError, AttributeError) as exc:
        return type(exc)


def test_function_fields_and_orm_objects_take_marshmallows_path(world):
    """A Function field (the contract's vendor) is computed as marshmallow computes it."""
    contract = world.contract
    schema = s.shared(s.ContractOut)
    assert schema.dump(contract) == marshmallow_dump(schema, contract)
    assert schema.dump(contract)["vendor_name"] == contract.vendor.name


def test_verify_catches_a_plan_that_says_something_else(monkeypatch):
    """The suite-wide check fails when a plan's output differs from marshmallow's."""

    class Probe(FastDumpSchema):
        name = fields.String()

    real = fast_dump._converter
    monkeypatch.setattr(
        fast_dump,
        "_converter",
        lambda f, a: (lambda v, o: "changed") if a == "name" else real(f, a),
    )
    monkeypatch.setattr(fast_dump, "VERIFY", True)
    with pytest.raises(AssertionError):
        Probe().dump({"name": "原文"})
