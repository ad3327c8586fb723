"""Output schemas that dump through a plan built once per schema instance.

marshmallow pulls every value through five calls (``Field.serialize`` → ``get_value`` →
``Schema.get_attribute`` → ``utils.get_value`` → ``_get_value_for_key``) before formatting it:
a request with its SLA targets is ~90 values, a list page 25 of those, and on a transition that
chain cost about as much as the engine's rules (docs/BENCHMARKS.md, 2026-12-05). The plan reads
a plain dict's key or an object's attribute directly and hands the value to the field's own
``_serialize``; it steps aside to marshmallow's path whenever that path could behave differently
(a missing value, a dotted attribute, a ``Function`` or ``Method`` field, a mapping other than
``dict``). Nothing here changes what a response says: tests compare every dump the suite makes
with marshmallow's own (``VERIFY``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any

from marshmallow import Schema, fields
from marshmallow.utils import missing

# Set by the test suite: every dump is also made by marshmallow and the two must be equal.
VERIFY = False

_NO_FORMAT = fields.Field._serialize


def _converter(field: fields.Field, attr_name: str) -> Callable[[Any, Any], Any]:
    """``f(value, obj)`` doing what ``field._serialize(value, attr_name, obj)`` does."""
    kind = type(field)
    if kind is fields.Nested and isinstance(field.schema, FastDumpSchema):
        nested = field.schema
        many = nested.many or field.many
        return lambda value, _obj: None if value is None else nested.dump(value, many=many)
    if kind is fields.List:
        inner = _converter(field.inner, attr_name)
        return lambda value, obj: None if value is None else [inner(v, obj) for v in value]
    if kind in (fields.Raw, fields.Boolean) and kind._serialize is _NO_FORMAT:
        return lambda value, _obj: value  # marshmallow dumps these as they are
    plain = {fields.String: str, fields.Integer: int, fields.Float: float}.get(kind)
    if plain is not None and not getattr(field, "as_string", False):
        serialize = field._serialize
        return lambda value, obj: (
            value if type(value) is plain else serialize(value, attr_name, obj)
        )
    serialize = field._serialize
    return lambda value, obj: serialize(value, attr_name, obj)


class FastDumpSchema(Schema):
    """A marshmallow schema whose dump follows a plan built on first use (see the module)."""

    def _plan(self) -> list[tuple] | None:
        """The plan, built on first use; None for a schema that reads values its own way."""
        plan = self.__dict__.get("_fast_plan", False)
        if plan is False:
            if type(self).get_attribute is not Schema.get_attribute:
                self.__dict__["_fast_plan"] = None
                return None
            plan = []
            for attr_name, field in self.dump_fields.items():
                key = field.data_key if field.data_key is not None else attr_name
                attribute = field.attribute if field.attribute is not None else attr_name
                direct = field._CHECK_ATTRIBUTE and "." not in attribute
                convert = _converter(field, attr_name) if direct else None
                plan.append((key, attr_name, attribute, field, convert))
            self.__dict__["_fast_plan"] = plan  # built twice at worst: the same plan
        return plan

    def _serialize(self, obj: Any, *, many: bool = False):
        if many and obj is not None:
            return [self._serialize(item) for item in obj]
        if type(obj) is dict:
            read = obj.get  # marshmallow: obj[key], and on KeyError getattr (our fallback)
        elif obj is not None and not hasattr(obj, "__getitem__"):
            read = partial(getattr, obj)  # marshmallow: getattr(obj, key, default)
        else:
            read = None
        plan = self._plan()
        if read is None or plan is None or _REFERENCE.get():
            return super()._serialize(obj, many=False)
        result = self.dict_class()
        for key, attr_name, attribute, field, convert in plan:
            value = read(attribute, missing) if convert is not None else missing
            if value is missing:  # marshmallow's own path: defaults, Function, Method …
                value = field.serialize(attr_name, obj, accessor=self.get_attribute)
                if value is missing:
                    continue
            else:
                value = convert(value, obj)
            result[key] = value
        return result

    def dump(self, obj: Any, *, many: bool | None = None):
        """marshmallow's dump, by the plan; raises what the fields' formatting raises."""
        result = super().dump(obj, many=many)
        if VERIFY and not _REFERENCE.get():
            expected = marshmallow_dump(self, obj, many=many)
            assert result == expected, (type(self).__name__, result, expected)
        return result


def marshmallow_dump(schema: Schema, obj: Any, *, many: bool | None = None):
    """What marshmallow's own path makes of ``obj``, nested schemas included (no plan)."""
    marker = _REFERENCE.set(True)
    try:
        return schema.dump(obj, many=many)
    finally:
        _REFERENCE.reset(marker)


# While set, every FastDumpSchema dumps by marshmallow's own path (what VERIFY compares with).
_REFERENCE: ContextVar[bool] = ContextVar("fast_dump_reference", default=False)
