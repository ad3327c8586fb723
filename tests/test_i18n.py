"""The Chinese catalogue covers every page text, and the compiled catalogue matches its source."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "web" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
METHODS = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "N_": None, "ngettext": (1, 2)}


def extracted() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def po_messages() -> dict[str, str]:
    with open(CATALOGUE / "messages.po", "rb") as handle:
        return {m.id: m.string for m in read_po(handle) if m.id}


def test_every_page_text_has_a_chinese_translation():
    catalogue = po_messages()
    missing = sorted(m for m in extracted() if not catalogue.get(m))
    assert missing == [], "run `make translations` and translate: " + "; ".join(missing)


def test_compiled_catalogue_matches_its_source():
    with open(CATALOGUE / "messages.mo", "rb") as handle:
        compiled = {m.id: m.string for m in read_mo(handle) if m.id}
    assert compiled == {k: v for k, v in po_messages().items() if v}, "run `make translations`"


def test_translations_keep_their_placeholders():
    import re

    placeholder = re.compile(r"%\(\w+\)s")
    wrong = [
        source
        for source, text in po_messages().items()
        if sorted(placeholder.findall(source)) != sorted(placeholder.findall(text))
    ]
    assert wrong == []
