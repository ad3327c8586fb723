"""Contract-policy templates: the shipped numbers match DOMAIN.md, bad documents are refused
with file and line, and the canonical document and its hash are stable."""

from __future__ import annotations

import copy
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest

from workflow.policy import (
    PolicyTemplate,
    load_policy_dir,
    load_policy_file,
    policy_value,
    validate_policy_document,
)
from workflow.yamlsource import DefinitionError

ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "definitions" / "policies"
SEEDS = {
    "zhanjiang_followup": "000",
    "wuhan_drg": "001",
    "digital_twin": "002",
    "qinghai_einvoice": "003",
    "xiayi_his": "004",
}

# A small valid policy in block style, so that every key sits on its own line.
BASE = """\
key: test_policy
title: {zh: 测试合同, en: Test contract}
timezone: Asia/Shanghai
calendar:
  business_hours:
    start: "08:00"
    end: "18:00"
    lunch: null
quota:
  period: contract_year
  pool: 7
  per_request_free_max: null
  overflow: split
  counted_types:
    - new_feature
    - interface
sla:
  levels:
    - key: L1
      label: {zh: 一级, en: Level 1}
      targets:
        response:
          amount: 30
          unit: minutes
        resolution:
          amount: 1
          unit: working_days
      outside_hours_targets:
        response:
          amount: 1
          unit: hours
    - key: L2
      label: {zh: 二级, en: Level 2}
      targets:
        response:
          amount: 60
          unit: minutes
assessment:
  period: quarter
  scheme: deductions
  categories:
    - key: service
      label: {zh: 服务, en: Service}
      points: 100
      items:
        - key: late
          label: {zh: 响应超时, en: Late response}
          deduct_points: 5
  grades:
    - key: ok
      label: {zh: 合格, en: OK}
      min: 80
    - key: low
      label: {zh: 不满80分, en: Below 80}
      min: 0
      deduct: {fen: 500000}
  termination: {consecutive: 2, below_score: 60}
"""


@pytest.fixture(scope="module")
def shipped() -> dict[str, PolicyTemplate]:
    return load_policy_dir(POLICY_DIR)


def level(document: dict, key: str) -> dict:
    """The SLA level ``key`` of a canonical document."""
    found = [lv for lv in document["sla"]["levels"] if lv["key"] == key]
    assert len(found) == 1, f"level {key} not found exactly once"
    return found[0]


def target(document: dict, key: str, name: str, outside: bool = False) -> tuple:
    """(amount as Decimal, unit, clock) of one target of one level."""
    table = "outside_hours_targets" if outside else "targets"
    spec = level(document, key)[table][name]
    return Decimal(spec["amount"]), spec["unit"], spec["clock"]


def line_with(text: str, marker: str, nth: int = 0) -> int:
    """1-based line number of the nth line containing ``marker``."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    assert lines, f"{marker!r} not in text"
    return lines[nth]


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- shipped templates


class TestShippedTemplates:
    def test_every_template_loads_with_its_seed(self, shipped):
        assert set(shipped) == set(SEEDS)
        for key, template in shipped.items():
            assert Path(template.file).name == f"{key}.yaml"
            assert template.document["seed"] == SEEDS[key]
            assert template.title == template.document["title"]
            assert template.title["zh"] and template.title["en"]

    def test_each_file_loads_alone_with_the_same_hash(self, shipped):
        for key, template in shipped.items():
            again = load_policy_file(POLICY_DIR / f"{key}.yaml")
            assert again.content_hash == template.content_hash
            assert again.document == template.document

    def test_hash_is_sha256_of_canonical_json(self, shipped):
        for template in shipped.values():
            raw = json.dumps(
                template.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
            assert template.content_hash == hashlib.sha256(raw).hexdigest()
        hashes = {t.content_hash for t in shipped.values()}
        assert len(hashes) == len(shipped)

    def test_documents_are_plain_json_and_revalidate_unchanged(self, shipped):
        def walk(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    assert type(k) is str
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
            else:
                assert node is None or type(node) in (str, int, bool), repr(node)

        for template in shipped.values():
            walk(template.document)
            assert json.loads(json.dumps(template.document)) == template.document
            stored = copy.deepcopy(template.document)
            assert validate_policy_document(stored, "contract.policy") == template.document

    def test_bugs_never_count_against_a_quota(self, shipped):
        for template in shipped.values():
            counted = template.document["quota"]["counted_types"]
            assert counted, template.key
            assert "bug" not in counted and "recurring_bug" not in counted

    def test_clause_ids_appear_in_comments(self, shipped):
        for template in shipped.values():
            text = Path(template.file).read_text(encoding="utf-8")
            clauses = template.document["clauses"]
            assert clauses
            for clause in clauses:
                # once in the clauses list, at least once more next to a rule
                assert text.count(clause) >= 2, f"{template.key}: {clause} has no comment"

    def test_zhanjiang_quota_z1(self, shipped):
        doc = shipped["zhanjiang_followup"].document
        quota = doc["quota"]
        assert Decimal(quota["pool"]) == Decimal("7")
        assert quota["pool"] == "7"
        assert quota["period"] == "contract_year"
        assert quota["overflow"] == "split"
        assert quota["per_request_free_max"] is None

    def test_zhanjiang_sla_z2_five_levels_7x24(self, shipped):
        doc = shipped["zhanjiang_followup"].document
        assert [lv["key"] for lv in doc["sla"]["levels"]] == ["L1", "L2", "L3", "L4", "L5"]
        expected = {
            "L1": ((30, "minutes"), (60, "minutes")),
            "L2": ((30, "minutes"), (2, "hours")),
            "L3": ((30, "minutes"), (1, "working_days")),
            "L4": ((60, "minutes"), (2, "working_days")),
            "L5": ((60, "minutes"), (2, "working_days")),
        }
        for key, (response, resolution) in expected.items():
            amount, unit, clock = target(doc, key, "response")
            assert (amount, unit, clock) == (Decimal(response[0]), response[1], "7x24")
            amount, unit, clock = target(doc, key, "resolution")
            assert (amount, unit) == (Decimal(resolution[0]), resolution[1])
            if unit != "working_days":
                assert clock == "7x24"

    def test_zhanjiang_upgrades_z3_z4_z7(self, shipped):
        upgrade = shipped["zhanjiang_followup"].document["upgrade"]
        assert upgrade == {
            "require_test_documents": True,
            "require_latest_release": True,
            "max_version_age_months": 3,
            "require_upgrade_report": True,
        }

    def test_zhanjiang_assessment_z6(self, shipped):
        assessment = shipped["zhanjiang_followup"].document["assessment"]
        assert (assessment["period"], assessment["scheme"]) == ("quarter", "deductions")
        points = {c["key"]: c["points"] for c in assessment["categories"]}
        assert sorted(points.values()) == [10, 20, 30, 40]
        deductions = {
            item["key"]: item["deduct_points"]
            for c in assessment["categories"]
            for item in c["items"]
        }
        assert deductions["contact_change"] == 1
        assert deductions["late_response"] == 5
        assert deductions["crash_not_fixed_2h"] == 5
        bands = [(g["min"], (g["deduct"] or {}).get("fen")) for g in assessment["grades"]]
        assert bands == [(80, None), (70, 500_000), (60, 1_000_000), (0, 2_000_000)]
        assert assessment["termination"] == {"consecutive": 2, "below_score": 60}

    def test_qinghai_quota_q1(self, shipped):
        quota = shipped["qinghai_einvoice"].document["quota"]
        assert Decimal(quota["per_request_free_max"]) == Decimal("10")
        assert quota["pool"] is None
        assert quota["overflow"] == "whole"

    def test_qinghai_sla_q2(self, shipped):
        doc = shipped["qinghai_einvoice"].document
        assert target(doc, "major", "response") == (Decimal(10), "minutes", "7x24")
        assert target(doc, "major", "on_site") == (Decimal(2), "hours", "7x24")
        assert target(doc, "major", "temporary_recovery") == (Decimal(8), "hours", "7x24")
        assert target(doc, "normal", "response") == (Decimal(10), "minutes", "7x24")
        assert target(doc, "normal", "on_site")[:2] == (Decimal(2), "hours")

    def test_qinghai_assessment_q4(self, shipped):
        assessment = shipped["qinghai_einvoice"].document["assessment"]
        assert (assessment["period"], assessment["scheme"]) == ("half_year", "item_average")
        assert len(assessment["items"]) == 11
        grades = {g["key"]: g for g in assessment["grades"]}
        assert [g["key"] for g in assessment["grades"]] == ["A", "B", "C"]
        a_grade = grades["A"]
        assert (a_grade["min"], a_grade["passed"], a_grade["deduct"]) == (90, True, None)
        assert (grades["B"]["min"], grades["B"]["payment_delay_months"]) == (80, 1)
        assert grades["B"]["deduct"] == {"percent": "2", "of": "period_fee"}
        assert (grades["C"]["min"], grades["C"]["payment_delay_months"]) == (0, 2)
        assert grades["C"]["deduct"] == {"percent": "5", "of": "period_fee"}
        assert grades["B"]["passed"] is False and grades["C"]["passed"] is False
        penalties = {p["key"]: p for p in assessment["penalties"]}
        assert penalties["complaint"]["deduct"] == {"fen": 50_000}
        assert penalties["complaints_3"]["min_occurrences"] == 3
        assert penalties["complaints_3"]["deduct"] == {"percent": "3", "of": "period_fee"}
        assert assessment["termination"] == {"consecutive": 2, "grade": "C", "period": "month"}

    def test_qinghai_schema_changes_q5_q7(self, shipped):
        schema_change = shipped["qinghai_einvoice"].document["schema_change"]
        assert schema_change["two_person_execution"] is True
        assert schema_change["require_backup_for_destructive"] is True

    def test_digital_twin_d3_inside_and_outside_hours(self, shipped):
        doc = shipped["digital_twin"].document
        hours = doc["calendar"]["business_hours"]
        assert (hours["start"], hours["end"]) == ("08:00", "18:00")
        assert target(doc, "fault", "response") == (Decimal("0.5"), "hours", "7x24")
        assert target(doc, "fault", "on_site") == (Decimal(1), "hours", "7x24")
        assert target(doc, "fault", "response", outside=True) == (Decimal(1), "hours", "7x24")
        assert target(doc, "fault", "on_site", outside=True) == (Decimal(2), "hours", "7x24")
        assert target(doc, "fault", "resolution")[:2] == (Decimal(2), "working_days")
        assert target(doc, "bug", "resolution")[:2] == (Decimal(1), "working_days")
        assert level(doc, "fault")["targets"]["response"]["amount"] == "0.5"

    def test_digital_twin_quota_d4_d7_d8(self, shipped):
        quota = shipped["digital_twin"].document["quota"]
        assert quota["delivery_days"] == 7
        assert quota["acceptance_wait_working_days"] == 10
        assert quota["warranty_months"] == 24

    def test_wuhan_w2_w3_w6(self, shipped):
        doc = shipped["wuhan_drg"].document
        assert [lv["key"] for lv in doc["sla"]["levels"]] == ["fatal", "serious", "minor"]
        assert target(doc, "fatal", "response") == (Decimal(1), "hours", "7x24")
        assert target(doc, "fatal", "resolution") == (Decimal(2), "hours", "7x24")
        assert target(doc, "serious", "response") == (Decimal(2), "hours", "7x24")
        assert target(doc, "minor", "response") == (Decimal(4), "hours", "7x24")
        assert doc["quota"]["change_working_days"] == 3
        assessment = doc["assessment"]
        assert assessment["scheme"] == "spot_check"
        assert assessment["adverse_event_fails"] is True
        assert [(g["min"], g["passed"]) for g in assessment["grades"]] == [
            (100, True),
            (90, True),
            (80, True),
            (0, False),
        ]
        faults = {p["sla_level"]: p["deduct"] for p in assessment["penalties"] if p["sla_level"]}
        assert faults == {
            "fatal": {"percent": "5", "of": "subsystem"},
            "serious": {"percent": "3", "of": "subsystem"},
            "minor": {"percent": "1", "of": "subsystem"},
        }

    def test_xiayi_x1_x4(self, shipped):
        doc = shipped["xiayi_his"].document
        for key, days in (("high", 1), ("medium", 3), ("low", 5)):
            assert target(doc, key, "resolution")[:2] == (Decimal(days), "working_days")
        assert doc["sla"]["kpis"] == {
            "resolution_rate_min": 95,
            "on_time_rate_min": 90,
            "satisfaction_min": 90,
        }

    @pytest.mark.parametrize("key", ["wuhan_drg", "digital_twin", "xiayi_his"])
    def test_contracts_without_a_quota(self, shipped, key):
        quota = shipped[key].document["quota"]
        assert quota["pool"] is None
        assert quota["per_request_free_max"] is None

    def test_all_working_days_are_statutory(self, shipped):
        for template in shipped.values():
            assert template.document["calendar"]["workdays"] == "statutory"
            assert template.document["timezone"] == "Asia/Shanghai"


# ---------------------------------------------------------------- canonical form


class TestCanonical:
    def test_base_loads(self, tmp_path):
        template = load_policy_file(write(tmp_path, BASE))
        assert template.key == "test_policy"
        assert template.document["quota"]["pool"] == "7"
        # Unit-dependent clock defaults.
        assert target(template.document, "L1", "response")[2] == "7x24"
        assert target(template.document, "L1", "resolution")[2] == "business_hours"

    @pytest.mark.parametrize("written", ['"7.0"', "7.00", "7", '"7"'])
    def test_decimal_spellings_hash_the_same(self, tmp_path, written):
        reference = load_policy_file(write(tmp_path, BASE, "ref.yaml"))
        variant = load_policy_file(write(tmp_path, BASE.replace("pool: 7", f"pool: {written}")))
        assert variant.document["quota"]["pool"] == "7"
        assert variant.content_hash == reference.content_hash

    def test_half_day_and_large_numbers_are_plain_text(self, tmp_path):
        text = BASE.replace("pool: 7", "pool: 0.50").replace(
            "per_request_free_max: null", "per_request_free_max: 10"
        )
        quota = load_policy_file(write(tmp_path, text)).document["quota"]
        assert (quota["pool"], quota["per_request_free_max"]) == ("0.5", "10")

    def test_comments_and_key_order_do_not_change_the_hash(self, tmp_path):
        reference = load_policy_file(write(tmp_path, BASE, "ref.yaml"))
        reordered = BASE.replace(
            "key: test_policy\ntitle: {zh: 测试合同, en: Test contract}\n",
            "# comment\ntitle: {en: Test contract, zh: 测试合同}  # note\nkey: test_policy\n",
        )
        assert reordered != BASE
        assert load_policy_file(write(tmp_path, reordered)).content_hash == reference.content_hash

    def test_a_rule_change_changes_the_hash(self, tmp_path):
        reference = load_policy_file(write(tmp_path, BASE, "ref.yaml"))
        changed = load_policy_file(write(tmp_path, BASE.replace("pool: 7", "pool: 7.5")))
        assert changed.content_hash != reference.content_hash

    def test_omitted_sections_get_their_defaults(self, tmp_path):
        minimal = "key: minimal\ntitle: {zh: 最小, en: Minimal}\n"
        doc = load_policy_file(write(tmp_path, minimal)).document
        assert doc["timezone"] == "Asia/Shanghai"
        assert doc["calendar"]["workdays"] == "statutory"
        assert doc["quota"]["pool"] is None
        assert doc["quota"]["per_request_free_max"] is None
        assert "bug" not in doc["quota"]["counted_types"]
        assert doc["sla"] is None and doc["assessment"] is None
        assert doc["upgrade"]["max_version_age_months"] is None
        spelled_out = minimal + "upgrade: {}\nschema_change: {}\nsla: null\n"
        again = load_policy_file(write(tmp_path, spelled_out, "again.yaml"))
        assert again.document == doc


# ---------------------------------------------------------------- refused documents


BROKEN = [
    # (id, old, new, marker of the expected line, nth marker, expected message fragment)
    ("unknown_key", "  overflow: split", "  overflw: split", "overflw", 0, "Unknown field"),
    ("unknown_top_key", "timezone:", "time_zone:", "time_zone", 0, "Unknown field"),
    ("pool_not_half", "pool: 7", "pool: 7.3", "pool: 7.3", 0, "not a multiple of 0.5"),
    ("pool_negative", "pool: 7", "pool: -0.5", "pool:", 0, "between 0"),
    ("pool_not_number", "pool: 7", "pool: seven", "pool:", 0, "not a number"),
    ("pool_bool", "pool: 7", "pool: true", "pool:", 0, "must be a number"),
    ("bug_counted", "    - interface", "    - bug", "- bug", 0, "bugs never count"),
    ("recurring_counted", "    - interface", "    - recurring_bug", "recurring_bug", 0, "bugs"),
    ("counted_twice", "    - interface", "    - new_feature", "- new_feature", 1, "twice"),
    ("bad_timezone", "Asia/Shanghai", "Asia/Atlantis", "timezone", 0, "unknown time zone"),
    ("duplicate_level", "- key: L2", "- key: L1", "- key: L1", 1, "duplicate level key 'L1'"),
    ("bad_unit", "unit: hours", "unit: days", "unit: days", 0, "Must be one of"),
    (
        "bad_target",
        "        response:\n          amount: 60\n          unit: minutes",
        "        reply: {amount: 60, unit: minutes}",
        "reply:",
        0,
        "Must be one of",
    ),
    ("zero_amount", "amount: 30", "amount: 0", "amount: 0", 0, "greater than 0"),
    ("fractional_minutes", "amount: 30", "amount: 30.5", "amount: 30.5", 0, "whole number"),
    (
        "working_days_7x24",
        "unit: working_days",
        "unit: working_days\n          clock: 7x24",
        "clock: 7x24",
        0,
        "statutory working days",
    ),
    (
        "outside_without_target",
        "        response:\n          amount: 1\n          unit: hours",
        "        on_site: {amount: 1, unit: hours}",
        "on_site:",
        0,
        "no matching target",
    ),
    ("hours_reversed", 'end: "18:00"', 'end: "07:00"', 'end: "07:00"', 0, "must be after start"),
    ("bad_time", 'start: "08:00"', 'start: "8 am"', "8 am", 0, "HH:MM"),
    (
        "lunch_outside",
        "lunch: null",
        'lunch: {start: "19:00", end: "20:00"}',
        "lunch:",
        0,
        "inside",
    ),
    ("bad_policy_key", "key: test_policy", "key: Test-Policy", "key: Test", 0, "policy key"),
    ("bad_period", "period: contract_year", "period: forever", "forever", 0, "Must be one of"),
    ("bad_overflow", "overflow: split", "overflow: some", "overflow", 0, "Must be one of"),
    # Errors about a whole list point at its first item.
    ("points_sum", "points: 100", "points: 90", "- key: service", 0, "add up to 90"),
    ("grades_order", "min: 0", "min: 95", "min: 95", 0, "min must decrease"),
    (
        "unknown_grade",
        "below_score: 60",
        "grade: excellent",
        "termination",
        0,
        "unknown grade 'excellent'",
    ),
    (
        "fen_and_percent",
        "deduct: {fen: 500000}",
        "deduct: {fen: 500000, percent: 2}",
        "deduct:",
        0,
        "exactly one of 'fen' or 'percent'",
    ),
    (
        "percent_without_base",
        "deduct: {fen: 500000}",
        "deduct: {percent: 2}",
        "deduct:",
        0,
        "needs 'of'",
    ),
    (
        "duplicate_yaml_key",
        "  pool: 7\n",
        "  pool: 7\n  pool: 3\n",
        "pool: 3",
        0,
        "duplicate key 'pool'",
    ),
    ("bad_yaml", "quota:\n", "quota: [\n", "quota: [", 0, "invalid YAML"),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "nth", "fragment"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_documents_are_refused_with_file_and_line(tmp_path, old, new, marker, nth, fragment):
    assert old in BASE
    text = BASE.replace(old, new, 1)
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_policy_file(path)
    problems = caught.value.problems
    expected_line = line_with(text, marker, nth)
    matching = [p for p in problems if fragment in p.message]
    assert matching, f"no problem mentions {fragment!r}: {problems}"
    problem = matching[0]
    assert problem.file == str(path)
    if fragment != "invalid YAML":  # the YAML parser reports where it noticed the error
        assert problem.line == expected_line, str(problem)
    else:
        assert problem.line is not None and problem.line >= expected_line
    assert f"{path}:{problem.line}: " in str(caught.value)


def test_missing_title_names_the_document_line(tmp_path):
    text = BASE.replace("title: {zh: 测试合同, en: Test contract}\n", "")
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError, match=r"policy\.yaml:1: title: Missing data"):
        load_policy_file(path)


def test_business_clock_and_outside_hours_need_business_hours(tmp_path):
    text = BASE.replace(
        '  business_hours:\n    start: "08:00"\n    end: "18:00"\n    lunch: null\n',
        "  business_hours: null\n",
    ).replace("unit: minutes", "unit: minutes\n          clock: business_hours", 1)
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_policy_file(path)
    messages = {(p.line, p.message.split(": ", 1)[1]) for p in caught.value.problems}
    # A block mapping's line is the line of its first key.
    assert messages == {
        (line_with(text, "amount: 30"), "clock business_hours needs calendar.business_hours"),
        (
            line_with(text, "response:", 1),
            "outside_hours_targets need calendar.business_hours",
        ),
    }


def test_outside_hours_target_cannot_run_on_business_hours(tmp_path):
    text = BASE.replace("unit: hours", "unit: hours\n          clock: business_hours")
    with pytest.raises(DefinitionError, match="cannot run on business_hours"):
        load_policy_file(write(tmp_path, text))


def test_penalty_must_name_a_known_sla_level(tmp_path):
    text = BASE.replace(
        "  termination:",
        "  penalties:\n"
        "    - key: fault\n"
        "      label: {zh: 故障, en: Fault}\n"
        "      sla_level: L9\n"
        "      deduct: {percent: 5, of: subsystem}\n"
        "  termination:",
    )
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_policy_file(path)
    assert f"{path}:{line_with(text, 'sla_level: L9')}: " in str(caught.value)
    assert "unknown SLA level 'L9'" in str(caught.value)


def test_a_non_mapping_document_is_refused(tmp_path):
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(DefinitionError, match=r"policy\.yaml:1: a policy document must be"):
        load_policy_file(path)


# ---------------------------------------------------------------- stored documents


class TestValidateDocument:
    def test_stored_document_with_a_bad_value_names_the_file(self, shipped):
        document = copy.deepcopy(shipped["zhanjiang_followup"].document)
        document["quota"]["pool"] = "7.3"
        with pytest.raises(DefinitionError) as caught:
            validate_policy_document(document, "contract C-A")
        assert str(caught.value).startswith("contract C-A: quota.pool: ")
        assert caught.value.problems[0].line is None

    def test_default_file_name(self):
        with pytest.raises(DefinitionError, match=r"^<policy>: key: Missing data"):
            validate_policy_document({"title": {"zh": "甲", "en": "A"}})
        with pytest.raises(DefinitionError, match="must be a mapping"):
            validate_policy_document(["not", "a", "mapping"])

    def test_unknown_key_in_a_stored_document(self, shipped):
        document = copy.deepcopy(shipped["qinghai_einvoice"].document)
        document["quota"]["per_request_free_maximum"] = "10"
        with pytest.raises(DefinitionError, match="quota.per_request_free_maximum: Unknown"):
            validate_policy_document(document)

    def test_a_test_helper_style_edit_validates(self, shipped):
        document = copy.deepcopy(shipped["zhanjiang_followup"].document)
        document["quota"]["per_request_free_max"] = 10
        canonical = validate_policy_document(document)
        assert canonical["quota"]["per_request_free_max"] == "10"


# ---------------------------------------------------------------- directory


class TestLoadDir:
    def test_duplicate_keys_name_both_files(self, tmp_path):
        first = write(tmp_path, BASE, "a.yaml")
        second = write(tmp_path, BASE.replace("pool: 7", "pool: 3"), "b.yaml")
        with pytest.raises(DefinitionError) as caught:
            load_policy_dir(tmp_path)
        message = str(caught.value)
        assert f"{second}:1: duplicate policy key 'test_policy'" in message
        assert str(first) in message

    def test_all_problems_of_all_files_are_reported(self, tmp_path):
        write(tmp_path, BASE.replace("pool: 7", "pool: 7.3"), "a.yaml")
        write(tmp_path, BASE.replace("Asia/Shanghai", "Nowhere/City"), "b.yaml")
        with pytest.raises(DefinitionError) as caught:
            load_policy_dir(tmp_path)
        files = sorted(Path(p.file).name for p in caught.value.problems)
        assert files == ["a.yaml", "b.yaml"]

    def test_only_yaml_files_count(self, tmp_path):
        write(tmp_path, BASE, "a.yaml")
        write(tmp_path, "not: a policy", "notes.txt")
        assert list(load_policy_dir(tmp_path)) == ["test_policy"]

    def test_missing_directory(self, tmp_path):
        with pytest.raises(DefinitionError, match="not a directory"):
            load_policy_dir(tmp_path / "nope")


# ---------------------------------------------------------------- policy_value


class TestPolicyValue:
    def test_dotted_paths(self, shipped):
        z = shipped["zhanjiang_followup"].document
        q = shipped["qinghai_einvoice"].document
        assert policy_value(z, "quota.pool") == "7"
        assert Decimal(policy_value(q, "quota.per_request_free_max")) == Decimal("10")
        assert policy_value(z, "upgrade.max_version_age_months") == 3
        assert policy_value(z, "sla.levels.0.key") == "L1"
        assert policy_value(z, "calendar.business_hours.start") == "08:00"

    def test_absent_or_null_is_none(self, shipped):
        z = shipped["zhanjiang_followup"].document
        assert policy_value(z, "quota.per_request_free_max") is None  # null
        assert policy_value(z, "quota.no_such_rule") is None
        assert policy_value(z, "quota.pool.deeper") is None
        assert policy_value(z, "sla.levels.9.key") is None
        assert policy_value(z, "sla.levels.x.key") is None
        assert policy_value({}, "quota.pool") is None
        assert policy_value(None, "quota.pool") is None


# ---------------------------------------------------------------- stored policies are shared


def test_a_stored_policy_is_decoded_once_and_shared_read_only(app, world):
    from sqlalchemy import select

    from models import Contract

    maker = app.extensions["changeflow.sessionmaker"]
    loads = []
    for _ in range(2):  # one after the other: on SQLite each session queues for the writer lock
        with maker() as session:
            loads.append(session.get(Contract, world.contract.id).policy)
    one, other = loads
    assert one is other  # the same decoding, in two sessions
    assert one == world.contract.policy
    with pytest.raises(TypeError, match="read-only"):
        one["quota"]["pool"] = "99"
    with pytest.raises(TypeError, match="read-only"):
        one["sla"]["levels"].append({})
    # A copy is plain and changeable, and storing it is how a policy changes.
    changed = copy.deepcopy(one)
    changed["quota"]["pool"] = "99"
    assert type(changed) is dict and type(changed["sla"]["levels"]) is list
    with maker() as session:
        session.get(Contract, world.contract.id).policy = changed
        session.commit()
    with maker() as session:
        stored = session.scalar(select(Contract.policy).where(Contract.id == world.contract.id))
    assert stored["quota"]["pool"] == "99"
    assert one["quota"]["pool"] != "99"  # what was shared before did not change
