"""Workflow definitions: YAML → validated, statically checked, compiled to one Machine each.

A definition's version is the SHA-256 of its canonical JSON content, so a cosmetic edit
(comments, key order) keeps the version and a rule change makes a new one.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from transitions import Machine

from models.people import ADMIN_ROLES, ROLES
from workflow.canonical import canonical_json, content_hash
from workflow.fields import FIELD_TYPES, REFERENCE_TYPES
from workflow.policy import TARGET_NAMES
from workflow.registry import EFFECTS, GUARDS, Callable_, load_builtins
from workflow.yamlsource import (
    DefinitionError,
    LineDict,
    LineList,
    Problem,
    line_of,
    load_keyed_dir,
    load_yaml_file,
    marshmallow_problems,
    parse_yaml,
)

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CLOCKS = ("runs", "paused", "stopped")
ACTING_ROLES = tuple(r for r in ROLES if r not in ADMIN_ROLES)


# ---------------------------------------------------------------- structural schema


class Label(Schema):
    """A bilingual label."""

    class Meta:
        unknown = RAISE

    zh = fields.String(required=True, validate=validate.Length(min=1))
    en = fields.String(required=True, validate=validate.Length(min=1))


class FieldSpec(Schema):
    """One declared input or data field."""

    class Meta:
        unknown = RAISE

    type = fields.String(required=True)
    required = fields.Boolean(load_default=False)
    label = fields.Nested(Label)
    help = fields.Nested(Label)
    choices = fields.List(fields.Raw(), validate=validate.Length(min=1))
    choice_labels = fields.Dict(keys=fields.String(), values=fields.Nested(Label))
    min = fields.Raw()
    max = fields.Raw()
    max_length = fields.Integer(validate=validate.Range(min=1, max=10_000_000))
    # A promised date: the request is overdue once it has passed while the state's clock runs.
    deadline = fields.Boolean(load_default=False)
    # For links to other requests: which kinds they may be.
    kinds = fields.List(fields.String(), validate=validate.Length(min=1))

    @validates_schema
    def _type_known(self, data, **kwargs):
        if data["type"] not in FIELD_TYPES:
            known = ", ".join(sorted(FIELD_TYPES))
            raise ValidationError(f"unknown field type '{data['type']}' (known: {known})", "type")
        if data.get("deadline") and data["type"] != "date":
            raise ValidationError("only a date field can be a deadline", "deadline")
        if data.get("kinds") and data["type"] not in REFERENCE_TYPES:
            raise ValidationError("only a reference field can name 'kinds'", "kinds")
        if data["type"] == "choice" and not data.get("choices"):
            raise ValidationError("a choice field needs 'choices'", "choices")


class StateSpec(Schema):
    """One state."""

    class Meta:
        unknown = RAISE

    label = fields.Nested(Label, required=True)
    final = fields.Boolean(load_default=False)
    clock = fields.String(load_default="runs", validate=validate.OneOf(CLOCKS))
    description = fields.Nested(Label)


class CallSpec(fields.Field):
    """A guard or effect reference: ``name`` or ``{name: {params}}``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return {"name": value, "params": {}}
        if isinstance(value, dict) and len(value) == 1:
            ((name, params),) = value.items()
            if params is None:
                params = {}
            if isinstance(name, str) and isinstance(params, dict):
                return {"name": name, "params": params}
        raise ValidationError("must be a name, or a mapping {name: {parameters}}")


class StateList(fields.Field):
    """One state name or a list of them."""

    def _deserialize(self, value, attr, data, **kwargs):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
            raise ValidationError("must be a state name or a non-empty list of state names")
        return list(items)


class Target(fields.Field):
    """``to``: one state, or a mapping from source state to destination state."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            return dict(value)
        raise ValidationError("must be a state name or a mapping {from_state: to_state}")


class RouteSpec(Schema):
    """A conditional destination: taken when its guard passes, tried before ``to``."""

    class Meta:
        unknown = RAISE

    if_ = CallSpec(required=True, data_key="if")
    to = fields.String(required=True)
    from_ = StateList(data_key="from")


class EventSpec(Schema):
    """One event."""

    class Meta:
        unknown = RAISE

    label = fields.Nested(Label, required=True)
    from_ = StateList(required=True, data_key="from")
    to = Target(required=True)
    routes = fields.List(fields.Nested(RouteSpec), load_default=list)
    roles = fields.List(fields.String(), load_default=list)
    guards = fields.List(CallSpec(), load_default=list)
    effects = fields.List(CallSpec(), load_default=list)
    fields_ = fields.Dict(
        keys=fields.String(), values=fields.Nested(FieldSpec), load_default=dict, data_key="fields"
    )
    comment = fields.String(
        load_default="optional", validate=validate.OneOf(["optional", "required"])
    )
    help = fields.Nested(Label)
    # In the browser, the step needs the password typed again within the last minutes (signing).
    reauthenticate = fields.Boolean(load_default=False)
    # Service-level targets this event meets for good (``acknowledge`` stops ``response``).
    stops_clocks = fields.List(
        fields.String(validate=validate.OneOf(TARGET_NAMES)), load_default=list
    )


class DocumentChangesSpec(Schema):
    """What adding or removing a document does in given states (voids a signature)."""

    class Meta:
        unknown = RAISE

    void_in = StateList(required=True)
    to = fields.String(required=True)
    clear = fields.List(fields.String(), load_default=list)


class DefinitionSpec(Schema):
    """A whole workflow definition."""

    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=validate.Regexp(NAME))
    title = fields.Nested(Label, required=True)
    description = fields.Nested(Label)
    clauses = fields.List(fields.String(), load_default=list)
    initial = fields.String(required=True)
    create_roles = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    fields_ = fields.Dict(
        keys=fields.String(), values=fields.Nested(FieldSpec), load_default=dict, data_key="fields"
    )
    states = fields.Dict(
        keys=fields.String(validate=validate.Regexp(NAME)),
        values=fields.Nested(StateSpec),
        required=True,
        validate=validate.Length(min=1),
    )
    events = fields.Dict(
        keys=fields.String(validate=validate.Regexp(NAME)),
        values=fields.Nested(EventSpec),
        required=True,
        validate=validate.Length(min=1),
    )
    document_changes = fields.Nested(DocumentChangesSpec)
    # Effects run once when a request is created, after its first history entry.
    on_create = fields.List(CallSpec(), load_default=list)


# ---------------------------------------------------------------- compiled form


@dataclass(frozen=True)
class BoundCall:
    """A registered guard or effect with its checked parameters."""

    target: Callable_
    params: dict

    def __call__(self, ctx):
        return self.target.func(ctx, **self.params)

    def reads_input(self, event_fields: dict) -> bool:
        """Whether this guard judges the event's own input (unknown until the form is sent)."""
        reads = self.target.reads_input
        return bool(reads and reads(self.params) & set(event_fields))


@dataclass
class EventDef:
    """A compiled event."""

    name: str
    label: dict
    sources: list[str]
    destinations: dict[str, str]
    routes: list[tuple[BoundCall, str, list[str]]]
    roles: list[str]
    guards: list[BoundCall]
    effects: list[BoundCall]
    fields: dict[str, dict]
    comment_required: bool = False
    reauthenticate: bool = False
    stops_clocks: tuple[str, ...] = ()

    def possible_targets(self, source: str) -> list[str]:
        """Every state this event can lead to from ``source``."""
        return [to for _, to, only in self.routes if source in only] + [self.destinations[source]]

    def routes_from(self, source: str) -> list[tuple[BoundCall, str]]:
        """Conditional destinations that apply when leaving ``source``."""
        return [(bound, to) for bound, to, only in self.routes if source in only]


@dataclass
class Definition:
    """A compiled, checked definition of one version, with its own transitions Machine."""

    key: str
    title: dict
    initial: str
    states: dict[str, dict]
    events: dict[str, EventDef]
    fields: dict[str, dict]
    content: dict
    content_hash: str
    source: str
    file: str
    machine: Machine = field(repr=False, default=None)
    on_create: list[BoundCall] = field(default_factory=list)

    def events_from(self, state: str) -> list[EventDef]:
        """Events that leave ``state``, in definition order."""
        return [e for e in self.events.values() if state in e.sources]

    def field_spec(self, name: str) -> dict:
        """The declaration of a data field: the request's own, or the event input it came from."""
        if name in self.fields:
            return self.fields[name]
        for event in self.events.values():
            if name in event.fields:
                return event.fields[name]
        # A field an effect writes (a confirmation, a signature, an override) reads as that
        # event's step; set_field only clears or sets values and names no step.
        for event in self.events.values():
            for bound in event.effects:
                if bound.target.name != "set_field" and bound.params.get("field") == name:
                    return {"type": "string", "label": event.label}
        return {}

    def is_final(self, state: str) -> bool:
        """Whether ``state`` is a final state."""
        return bool(self.states.get(state, {}).get("final"))

    def may_create(self, roles: set[str]) -> bool:
        """Whether any of ``roles`` may raise a request of this kind (scope is checked later)."""
        return bool(set(self.content.get("create_roles") or ()) & set(roles))

    def open_states(self) -> list[str]:
        """States that are not final."""
        return [name for name, state in self.states.items() if not state.get("final")]

    def clock_running_states(self) -> list[str]:
        """Non-final states whose clock runs (a promised date can be missed only there)."""
        return [n for n in self.open_states() if self.states[n].get("clock", "runs") == "runs"]

    def deadline_fields(self) -> list[str]:
        """Date fields declared ``deadline: true``, in the request or any event's input."""
        specs = [self.fields, *(event.fields for event in self.events.values())]
        return list(dict.fromkeys(n for f in specs for n, s in f.items() if s.get("deadline")))

    def mermaid(self, lang: str | None = None) -> str:
        """The state diagram as Mermaid ``stateDiagram-v2`` text.

        Without ``lang`` states read ``name · 中文`` and arrows carry event names (the README and
        the CLI); with ``lang`` ("zh" or "en") both carry the labels of that language.
        """
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for name, state in self.states.items():
            text = state["label"][lang] if lang else f"{name} · {state['label']['zh']}"
            lines.append(f"    {name} : {text}")
        for event in self.events.values():
            arrow = event.label[lang] if lang else event.name
            for source in event.sources:
                for target in dict.fromkeys(event.possible_targets(source)):
                    lines.append(f"    {source} --> {target} : {arrow}")
        for name, state in self.states.items():
            if state.get("final"):
                lines.append(f"    {name} --> [*]")
        return "\n".join(lines)


def plain(value: Any) -> Any:
    """Strip line bookkeeping: LineDict/LineList → dict/list, recursively."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------- checks


class _Checker:
    def __init__(self, file: str, raw: Any):
        self.file, self.raw, self.problems = file, raw, []

    def add(self, message: str, *path: Any) -> None:
        self.problems.append(Problem(self.file, line_of(self.raw, *path), message))

    def check_fields(self, specs: dict, *path: Any) -> None:
        for name, spec in specs.items():
            if not NAME.match(name):
                self.add(f"field name '{name}' must be lower_snake_case", *path, name)
            low, high = spec.get("min"), spec.get("max")
            for bound, value in (("min", low), ("max", high)):
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float | str)
                ):
                    self.add(f"field '{name}': '{bound}' must be a number", *path, name, bound)

    def bind(self, table: dict, kind: str, spec: dict, *path: Any) -> BoundCall | None:
        target = table.get(spec["name"])
        if target is None:
            known = ", ".join(sorted(table)) or "none"
            self.add(f"unknown {kind} '{spec['name']}' (known: {known})", *path)
            return None
        try:
            params = target.check_params(spec["params"])
        except ValidationError as exc:
            self.add(f"{kind} '{spec['name']}' has bad parameters: {exc.messages}", *path)
            return None
        return BoundCall(target, params)


def _check_and_compile(spec: dict, raw: Any, file: str, source: str, content: dict) -> Definition:
    load_builtins()
    chk = _Checker(file, raw)
    states = spec["states"]
    if spec["initial"] not in states:
        chk.add(f"unknown state '{spec['initial']}' as initial state", "initial")

    for i, role in enumerate(spec["create_roles"]):
        if role not in ACTING_ROLES:
            chk.add(f"unknown or non-acting role '{role}' in create_roles", "create_roles", i)
    chk.check_fields(spec["fields_"], "fields")

    events: dict[str, EventDef] = {}
    for name, ev in spec["events"].items():
        at = ("events", name)
        sources = ev["from_"]
        for i, s in enumerate(sources):
            if s not in states:
                chk.add(f"event '{name}': unknown state '{s}' in 'from'", *at, "from", i)
            elif states[s]["final"]:
                chk.add(f"event '{name}' leaves final state '{s}'", *at, "from", i)
        if len(set(sources)) != len(sources):
            chk.add(f"event '{name}': duplicate state in 'from'", *at, "from")
        to = ev["to"]
        if isinstance(to, str):
            destinations = {s: to for s in sources}
        else:
            destinations = dict(to)
            for s in sources:
                if s not in destinations:
                    chk.add(f"event '{name}': 'to' has no destination for source '{s}'", *at, "to")
            for s in to:
                if s not in sources:
                    chk.add(f"event '{name}': 'to' names '{s}', which is not in 'from'", *at, "to")
        for d in set(destinations.values()):
            if d not in states:
                chk.add(f"event '{name}': unknown state '{d}' in 'to'", *at, "to")
        if not ev["roles"]:
            chk.add(f"event '{name}' has no allowed role", *at)
        for i, role in enumerate(ev["roles"]):
            if role not in ROLES:
                chk.add(
                    f"event '{name}': unknown role '{role}' (known: {', '.join(ROLES)})",
                    *at,
                    "roles",
                    i,
                )
            elif role in ADMIN_ROLES:
                chk.add(
                    f"event '{name}': role '{role}' is an administrator role and may not "
                    "act on requests (separation of duties)",
                    *at,
                    "roles",
                    i,
                )
        if len(set(ev["roles"])) != len(ev["roles"]):
            chk.add(f"event '{name}': duplicate role", *at, "roles")
        chk.check_fields(ev["fields_"], *at, "fields")
        guards = [
            chk.bind(GUARDS, "guard", g, *at, "guards", i) for i, g in enumerate(ev["guards"])
        ]
        effects = [
            chk.bind(EFFECTS, "effect", e, *at, "effects", i) for i, e in enumerate(ev["effects"])
        ]
        routes = []
        for i, route in enumerate(ev["routes"]):
            bound = chk.bind(GUARDS, "guard", route["if_"], *at, "routes", i)
            if route["to"] not in states:
                chk.add(f"event '{name}': unknown state '{route['to']}' in route", *at, "routes", i)
            only = route.get("from_") or list(sources)
            for s in only:
                if s not in sources:
                    chk.add(
                        f"event '{name}': route names source '{s}', which is not in 'from'",
                        *at,
                        "routes",
                        i,
                    )
            routes.append((bound, route["to"], only))
        events[name] = EventDef(
            name=name,
            label=ev["label"],
            sources=list(dict.fromkeys(sources)),
            destinations=destinations,
            routes=routes,
            roles=list(dict.fromkeys(ev["roles"])),
            guards=guards,
            effects=effects,
            fields=ev["fields_"],
            comment_required=ev["comment"] == "required",
            reauthenticate=ev["reauthenticate"],
            stops_clocks=tuple(dict.fromkeys(ev["stops_clocks"])),
        )

    changes = spec.get("document_changes")
    if changes:
        for i, s in enumerate(changes["void_in"]):
            if s not in states:
                chk.add(
                    f"document_changes: unknown state '{s}' in 'void_in'",
                    "document_changes",
                    "void_in",
                    i,
                )
        if changes["to"] not in states:
            chk.add(
                f"document_changes: unknown state '{changes['to']}' in 'to'",
                "document_changes",
                "to",
            )

    on_create = [
        chk.bind(EFFECTS, "effect", e, "on_create", i) for i, e in enumerate(spec["on_create"])
    ]

    if chk.problems:
        raise DefinitionError(chk.problems)

    # Graph checks only make sense once every name resolves.
    reachable, queue = {spec["initial"]}, deque([spec["initial"]])
    while queue:
        state = queue.popleft()
        for ev in events.values():
            if state in ev.sources:
                for target in ev.possible_targets(state):
                    if target not in reachable:
                        reachable.add(target)
                        queue.append(target)
    for name, st in states.items():
        if name not in reachable:
            chk.add(
                f"state '{name}' is unreachable from initial state '{spec['initial']}'",
                "states",
                name,
            )
        if not st["final"] and not any(name in ev.sources for ev in events.values()):
            chk.add(f"non-final state '{name}' has no event leaving it", "states", name)
    if not any(st["final"] for st in states.values()):
        chk.add("no final state: a request could never end", "states")
    if chk.problems:
        raise DefinitionError(chk.problems)

    definition = Definition(
        key=spec["key"],
        title=spec["title"],
        initial=spec["initial"],
        states=states,
        events=events,
        fields=spec["fields_"],
        content=content,
        content_hash=content_hash(content),
        source=source,
        file=file,
        on_create=on_create,
    )
    definition.machine = build_machine(definition)
    return definition


def _route_condition(bound: BoundCall):
    return lambda event_data: bound(event_data.kwargs["ctx"]) is None


def _run_effects(effects: list[BoundCall]):
    def run(event_data):
        for effect in effects:
            effect(event_data.kwargs["ctx"])

    return run


def build_machine(definition: Definition) -> Machine:
    """One Machine per (definition, version): model=None, no auto transitions."""
    machine = Machine(
        model=None,
        states=list(definition.states),
        initial=definition.initial,
        auto_transitions=False,
        send_event=True,
    )
    for ev in definition.events.values():
        run_effects = _run_effects([e for e in ev.effects if e is not None])
        for source in ev.sources:
            # Routes first: transitions tries same-trigger transitions in the order added.
            for bound, target in ev.routes_from(source):
                machine.add_transition(
                    ev.name,
                    source,
                    target,
                    conditions=[_route_condition(bound)],
                    before=[run_effects],
                )
            machine.add_transition(ev.name, source, ev.destinations[source], before=[run_effects])
    return machine


# ---------------------------------------------------------------- entry points


def compile_definition(raw: Any, file: str, source: str) -> Definition:
    """Validate parsed YAML (or stored JSON) and compile it; raises DefinitionError."""
    if not isinstance(raw, dict):
        raise DefinitionError([Problem(file, line_of(raw), "a definition must be a mapping")])
    try:
        spec = DefinitionSpec().load(raw)
    except ValidationError as exc:
        raise DefinitionError(marshmallow_problems(file, raw, exc.messages)) from exc
    return _check_and_compile(spec, raw, file, source, plain(raw))


def load_definition_text(text: str, file: str) -> Definition:
    """Parse and compile one definition given as YAML text; raises DefinitionError."""
    return compile_definition(parse_yaml(text, file), file, text)


def load_definition_file(path: str | Path) -> Definition:
    """Load one YAML definition file; raises DefinitionError naming file, line and problem."""
    raw, text = load_yaml_file(path)
    return compile_definition(raw, str(path), text)


def load_definition_dir(directory: str | Path) -> dict[str, Definition]:
    """Load every ``*.yaml`` in a directory; raises DefinitionError with all problems found."""
    return load_keyed_dir(directory, load_definition_file, "definition")


__all__ = [
    "Definition",
    "DefinitionError",
    "EventDef",
    "LineDict",
    "LineList",
    "canonical_json",
    "compile_definition",
    "content_hash",
    "load_definition_dir",
    "load_definition_file",
    "load_definition_text",
]
