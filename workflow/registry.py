"""The only place guards and effects come from: named callables with checked parameters.

Definitions refer to guards and effects by name; nothing is ever resolved from a dotted path.
A guard returns ``None`` when it passes, or a sentence saying why it refuses. An effect
changes the request (or rows beside it) and only flushes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError


@dataclass
class FireContext:
    """Everything a guard or effect may look at while an event is being fired."""

    session: Any
    request: Any
    actor: Any
    definition: Any
    event: Any
    fields: dict
    now: datetime
    comment: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def policy(self) -> dict:
        """The contract's policy document (empty when the request has no contract)."""
        contract = getattr(self.request, "contract", None)
        return (contract.policy if contract is not None else None) or {}


class Refusal(str):
    """A guard's refusal sentence carrying the computed values behind it (dates, amounts), so a
    user interface can word the reason in the reader's language."""

    values: dict

    def __new__(cls, message: str, **values):
        obj = super().__new__(cls, message)
        obj.values = values
        return obj


@dataclass(frozen=True)
class Callable_:
    """A registered guard or effect with the schema of its parameters."""

    name: str
    func: Callable[..., Any]
    params: dict = field(default_factory=dict)
    doc: str = ""
    # For guards: params -> names of event input fields the guard looks at.
    reads_input: Callable[[dict], set[str]] | None = None

    def check_params(self, params: Any) -> dict:
        """Validate parameters from a definition; raises ValidationError."""
        schema = Schema.from_dict(dict(self.params), name=f"{self.name}Params")(unknown=RAISE)
        return schema.load(params or {})


GUARDS: dict[str, Callable_] = {}
EFFECTS: dict[str, Callable_] = {}


def _register(table: dict, name: str, params: dict | None, reads_input=None):
    def wrap(func):
        if name in table:
            raise ValueError(f"'{name}' is registered twice")
        table[name] = Callable_(name, func, params or {}, (func.__doc__ or "").strip(), reads_input)
        return func

    return wrap


def guard(name: str, params: dict | None = None, reads_input=None):
    """Register a guard under ``name``; raises ValueError when the name is taken.

    ``reads_input(params)`` names the event input fields the guard judges, so that
    ``available_events`` does not refuse a step before its form is filled in.
    """
    return _register(GUARDS, name, params, reads_input)


def effect(name: str, params: dict | None = None):
    """Register an effect under ``name``; raises ValueError when the name is taken."""
    return _register(EFFECTS, name, params)


def load_builtins() -> None:
    """Import the modules that register the built-in guards and effects."""
    from workflow import (  # noqa: F401
        effects,
        guards,
        quota_rules,
        schema_rules,
        sla_rules,
        upgrade_rules,
    )


__all__ = ["EFFECTS", "GUARDS", "FireContext", "Refusal", "ValidationError", "effect", "guard"]
