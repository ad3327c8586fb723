"""Definitions: every static check refuses its broken fixture naming file, line and problem;
the shipped definitions load, resolve their guards and effects, and draw as Mermaid."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from workflow.definition import (
    DefinitionError,
    load_definition_dir,
    load_definition_file,
    load_definition_text,
)
from workflow.registry import EFFECTS, GUARDS, load_builtins

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "definitions" / "workflows"
BROKEN = Path(__file__).resolve().parent / "definitions_broken"
SHIPPED = sorted(WORKFLOWS.glob("*.yaml"))

# fixture file → (line of the problem, a substring of the message)
CASES = {
    "unknown_state_in_from.yaml": (17, "unknown state 'nowhere' in 'from'"),
    "unknown_state_in_to.yaml": (18, "unknown state 'nowhere' in 'to'"),
    "unknown_state_in_initial.yaml": (4, "unknown state 'nowhere' as initial state"),
    "unknown_state_in_route.yaml": (15, "unknown state 'nowhere' in route"),
    "unknown_guard.yaml": (17, "unknown guard 'moon_is_full'"),
    "unknown_effect.yaml": (15, "unknown effect 'send_fax'"),
    "guard_bad_params.yaml": (16, "guard 'has_attachment' has bad parameters"),
    "unknown_role.yaml": (16, "unknown role 'janitor'"),
    "admin_role_in_event.yaml": (16, "role 'sys_admin' is an administrator role"),
    "unknown_field_type.yaml": (19, "unknown field type 'kilograms'"),
    "choice_without_choices.yaml": (7, "a choice field needs 'choices'"),
    "unreachable_state.yaml": (9, "state 'limbo' is unreachable"),
    "state_without_exit.yaml": (8, "non-final state 'stuck' has no event leaving it"),
    "no_final_state.yaml": (7, "no final state"),
    "event_without_role.yaml": (15, "event 'finish' has no allowed role"),
    "duplicate_state.yaml": (9, "duplicate key 'open'"),
    "duplicate_event.yaml": (15, "duplicate key 'finish'"),
    "duplicate_role.yaml": (14, "event 'finish': duplicate role"),
    "event_leaves_final.yaml": (17, "event 'reopen' leaves final state 'done'"),
    "invalid_yaml.yaml": (8, "invalid YAML"),
    "unknown_top_level_key.yaml": (6, "colour: Unknown field"),
    "missing_create_roles.yaml": (1, "create_roles: Missing data for required field"),
}


def _names_in(document: dict, key: str) -> set[str]:
    """Guard or effect names used by a parsed definition (routes' ``if`` count as guards)."""
    names = set()
    for event in document["events"].values():
        calls = list(event.get(key) or [])
        if key == "guards":
            calls += [route["if"] for route in event.get("routes") or []]
        for call in calls:
            names.add(call if isinstance(call, str) else next(iter(call)))
    return names


# ---------------------------------------------------------------- broken fixtures


def test_every_fixture_has_a_case():
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize(("name", "line", "problem"), [(n, *c) for n, c in CASES.items()])
def test_broken_definition_is_refused_with_file_line_and_problem(name, line, problem):
    path = BROKEN / name
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    message = str(caught.value)
    assert name in message
    assert f"{path}:{line}:" in message, message
    assert problem in message, message
    # Each fixture is otherwise valid: exactly one problem, on the expected line.
    assert len(caught.value.problems) == 1, message
    only = caught.value.problems[0]
    assert (only.file, only.line) == (str(path), line)
    assert problem in only.message


def test_broken_fixtures_differ_from_a_valid_baseline_only_by_their_problem():
    """The baseline the fixtures are built from loads, so each refusal is its own problem."""
    text = (BROKEN / "unknown_state_in_initial.yaml").read_text(encoding="utf-8")
    definition = load_definition_text(text.replace("initial: nowhere", "initial: open"), "ok")
    assert definition.key == "broken"
    assert list(definition.states) == ["open", "done"]


def test_problems_are_all_reported_together(tmp_path):
    text = (BROKEN / "unknown_role.yaml").read_text(encoding="utf-8")
    text = text.replace("initial: open", "initial: nowhere")
    path = tmp_path / "two_problems.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    messages = [p.message for p in caught.value.problems]
    assert any("unknown state 'nowhere'" in m for m in messages)
    assert any("unknown role 'janitor'" in m for m in messages)


def test_a_definition_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match="must be a mapping"):
        load_definition_file(path)


def test_duplicate_keys_in_one_directory_name_both_files(tmp_path):
    shutil.copy(WORKFLOWS / "incident.yaml", tmp_path / "a_incident.yaml")
    shutil.copy(WORKFLOWS / "incident.yaml", tmp_path / "b_incident_copy.yaml")
    with pytest.raises(DefinitionError) as caught:
        load_definition_dir(tmp_path)
    message = str(caught.value)
    assert "duplicate definition key 'incident'" in message
    assert "a_incident.yaml" in message
    assert "b_incident_copy.yaml" in message
    # The second file is blamed at the line of its 'key'.
    key_line = next(
        i
        for i, text in enumerate((tmp_path / "b_incident_copy.yaml").read_text().splitlines(), 1)
        if text.startswith("key:")
    )
    assert f"b_incident_copy.yaml:{key_line}:" in message


def test_a_directory_collects_problems_of_every_file(tmp_path):
    for name in ("unknown_guard.yaml", "unknown_role.yaml"):
        shutil.copy(BROKEN / name, tmp_path / name)
    with pytest.raises(DefinitionError) as caught:
        load_definition_dir(tmp_path)
    files = {Path(p.file).name for p in caught.value.problems}
    assert files == {"unknown_guard.yaml", "unknown_role.yaml"}


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(DefinitionError, match="not a directory"):
        load_definition_dir(tmp_path / "nope")


# ---------------------------------------------------------------- shipped definitions


def test_shipped_definitions_exist():
    assert {p.stem for p in SHIPPED} >= {"requirement", "upgrade", "schema_change", "incident"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_definition_loads(path):
    definition = load_definition_file(path)
    assert definition.key == path.stem
    assert definition.initial in definition.states
    assert any(definition.is_final(s) for s in definition.states)
    assert re.fullmatch(r"[0-9a-f]{64}", definition.content_hash)


def test_shipped_directory_loads_with_unique_keys():
    found = load_definition_dir(WORKFLOWS)
    assert set(found) == {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_guard_and_effect_of_shipped_yaml_is_registered(path):
    load_builtins()
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    guards, effects = _names_in(document, "guards"), _names_in(document, "effects")
    assert guards <= set(GUARDS), guards - set(GUARDS)
    assert effects <= set(EFFECTS), effects - set(EFFECTS)
    # And the compiled definition bound exactly those callables.
    definition = load_definition_file(path)
    bound_guards = {b.target.name for e in definition.events.values() for b in e.guards}
    bound_guards |= {b.target.name for e in definition.events.values() for b, _, _ in e.routes}
    bound_effects = {b.target.name for e in definition.events.values() for b in e.effects}
    assert bound_guards == guards
    assert bound_effects == effects
    for event in definition.events.values():
        for bound in [*event.guards, *event.effects]:
            assert bound.target is (GUARDS | EFFECTS)[bound.target.name]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_mermaid_names_every_state_and_event(path):
    definition = load_definition_file(path)
    text = definition.mermaid()
    assert text.startswith("stateDiagram-v2")
    lines = text.splitlines()
    assert f"    [*] --> {definition.initial}" in lines
    for state in definition.states:
        assert re.search(rf"^\s+{state} : ", text, re.M), state
    for event in definition.events:
        assert re.search(rf"^\s+\w+ --> \w+ : {event}$", text, re.M), event
    for state in definition.states:
        if definition.is_final(state):
            assert f"    {state} --> [*]" in lines


def test_cosmetic_edits_keep_the_version_and_rule_changes_do_not():
    text = (WORKFLOWS / "incident.yaml").read_text(encoding="utf-8")
    original = load_definition_text(text, "incident.yaml")
    commented = load_definition_text("# a new comment\n" + text, "incident.yaml")
    assert commented.content_hash == original.content_hash
    rule_change = text.replace("roles: [it_staff]\n    comment: required", "roles: [it_staff]", 1)
    assert rule_change != text
    changed = load_definition_text(rule_change, "incident.yaml")
    assert changed.content_hash != original.content_hash


# ---------------------------------------------------------------- command line


def test_cli_check_shipped_definitions_exits_0(runner):
    result = runner.invoke(args=["definitions", "check"])
    assert result.exit_code == 0, result.output
    for path in SHIPPED:
        assert f"ok  {path.stem} " in result.output


def test_cli_check_shipped_directory_path_exits_0(runner):
    result = runner.invoke(args=["definitions", "check", str(WORKFLOWS)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok  ") == len(SHIPPED)


@pytest.mark.parametrize("name", ["unknown_guard.yaml", "unreachable_state.yaml"])
def test_cli_check_broken_file_exits_1_with_file_line_problem(runner, name):
    line, problem = CASES[name]
    path = BROKEN / name
    result = runner.invoke(args=["definitions", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line}: " in result.output
    assert problem in result.output
    assert "ok  " not in result.output


def test_cli_check_broken_directory_exits_1_listing_every_file(runner):
    result = runner.invoke(args=["definitions", "check", str(BROKEN)])
    assert result.exit_code == 1
    for name, (line, problem) in CASES.items():
        assert f"{BROKEN / name}:{line}: " in result.output, name
        assert problem in result.output, name
