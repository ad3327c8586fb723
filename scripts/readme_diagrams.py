"""Rewrite the Mermaid diagrams between the README markers from the shipped definitions."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- diagrams:start -->", "<!-- diagrams:end -->"


def render() -> str:
    """The README block: one Mermaid diagram per shipped workflow."""
    sys.path.insert(0, str(ROOT))
    from workflow.definition import load_definition_dir

    parts = [START]
    for key, definition in sorted(load_definition_dir(ROOT / "definitions" / "workflows").items()):
        parts += [
            f"\n### {definition.title['en']} · {definition.title['zh']} (`{key}`)\n",
            "```mermaid",
            definition.mermaid(),
            "```",
        ]
    parts.append(END)
    return "\n".join(parts)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(head + render() + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
