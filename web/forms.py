"""Turn a definition's declared fields into HTML inputs, and posted form values back into data."""

from __future__ import annotations

NUMERIC = {"integer": "1", "money_fen": "1", "decimal": "any", "person_days": "0.5"}


def input_kind(spec: dict) -> str:
    """The HTML control for a declared field type."""
    return {
        "text": "textarea",
        "choice": "select",
        "boolean": "checkbox",
        "date": "date",
        "datetime": "datetime-local",
    }.get(spec["type"], "number" if spec["type"] in NUMERIC else "text")


def step_of(spec: dict) -> str | None:
    """The ``step`` attribute of a numeric input."""
    return NUMERIC.get(spec["type"])


def parse_form(specs: dict[str, dict], form) -> dict:
    """Posted strings → values for ``validate_fields``; empty inputs are left out. Never raises."""
    values: dict = {}
    for name, spec in specs.items():
        if spec["type"] == "boolean":
            if name in form:
                values[name] = form.get(name) in ("on", "true", "1")
            continue
        raw = (form.get(name) or "").strip()
        if raw == "":
            continue
        if spec["type"] in ("integer", "money_fen", "reference"):
            try:
                values[name] = int(raw)
            except ValueError:
                values[name] = raw  # validation names the field and says why
        elif spec["type"] == "references":
            # "12, 15" or "#12 #15": the numbers of the linked requests
            parts = [p for p in raw.replace("#", " ").replace(",", " ").replace("，", " ").split()]
            values[name] = [int(p) if p.isdigit() else p for p in parts]
        elif spec["type"] == "text":
            # Kept as typed: a script's bytes are hashed (a schema change's SQL), and its last
            # newline is part of the file the DBA approves.
            values[name] = form.get(name)
        elif spec["type"] == "datetime" and len(raw) == 16:
            values[name] = raw + ":00+08:00"  # datetime-local has no zone: the hospital's own
        else:
            values[name] = raw
    return values
