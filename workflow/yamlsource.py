"""Load YAML while remembering the line of every key and item, so errors can name them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class DefinitionError(Exception):
    """A definition or policy file is invalid; carries file, line and problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Problem:
    """One problem in a file: where it is and what is wrong."""

    def __init__(self, file: str, line: int | None, message: str):
        self.file, self.line, self.message = file, line, message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self})"


class LineDict(dict):
    """A mapping that knows the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict


class LineList(list):
    """A sequence that knows the line of itself and of each item."""

    line: int = 0
    item_lines: list


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records lines and refuses duplicate keys (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_sequence(self, node, deep=False):
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML text into LineDict/LineList values; raises DefinitionError on bad YAML."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise DefinitionError([Problem(file, line, f"invalid YAML: {exc.problem}")]) from exc
    except yaml.YAMLError as exc:
        raise DefinitionError([Problem(file, None, f"invalid YAML: {exc}")]) from exc


def load_yaml_file(path: str | Path) -> tuple[Any, str]:
    """Read and parse one YAML file; returns (data, text); raises DefinitionError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(str(path), None, f"cannot read file: {exc}")]) from exc
    return parse_yaml(text, str(path)), text


def line_of(node: Any, *path: Any) -> int | None:
    """Best line for a path inside parsed YAML: the deepest element that has a line."""
    line = getattr(node, "line", None)
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
        line = getattr(node, "line", None) or line
    return line


def marshmallow_problems(file: str, root: Any, messages: Any, path: tuple = ()) -> list[Problem]:
    """Flatten marshmallow's nested error dict into Problems with lines."""
    problems: list[Problem] = []
    if isinstance(messages, dict):
        for key, sub in messages.items():
            step = key
            if key in ("_schema", "value"):
                # marshmallow nests Dict value errors under "value": not a YAML key.
                step = None
            elif isinstance(key, str) and key.isdigit():
                step = int(key)
            sub_path = path if step is None else (*path, step)
            problems.extend(marshmallow_problems(file, root, sub, sub_path))
    elif isinstance(messages, list):
        if all(isinstance(m, str) for m in messages):
            where = ".".join(str(p) for p in path) or "document"
            for msg in messages:
                problems.append(Problem(file, line_of(root, *path), f"{where}: {msg}"))
        else:
            for sub in messages:
                problems.extend(marshmallow_problems(file, root, sub, path))
    else:
        where = ".".join(str(p) for p in path) or "document"
        problems.append(Problem(file, line_of(root, *path), f"{where}: {messages}"))
    return problems


def load_keyed_dir(directory: str | Path, load_one: Callable[[Path], Any], what: str) -> dict:
    """Load every ``*.yaml`` with ``load_one`` into a dict by ``.key``; raises DefinitionError.

    Every problem of every file is collected before refusing, and a key used by two files
    is a problem naming both.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DefinitionError([Problem(str(directory), None, "not a directory")])
    found: dict = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            item = load_one(path)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if item.key in found:
            line = line_of(load_yaml_file(path)[0], "key")
            message = f"duplicate {what} key '{item.key}' (also in {found[item.key].file})"
            problems.append(Problem(str(path), line, message))
            continue
        found[item.key] = item
    if problems:
        raise DefinitionError(problems)
    return found
