"""The README's commands and diagrams stay true."""

from pathlib import Path

import scripts.readme_diagrams as diagrams

ROOT = Path(__file__).resolve().parent.parent


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text(encoding="utf-8")[:400]
    assert "make run" in head and "make test" in head


def test_readme_diagrams_match_the_definitions():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert diagrams.render() in text, "run: .venv/bin/python scripts/readme_diagrams.py"


def test_ci_runs_make_test_on_both_databases():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.count("make --no-print-directory test") == 2
    assert "TEST_DATABASE_URL" in ci and 'CI:-}" = "true"' in ci
