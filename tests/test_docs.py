"""The generated reference pages in docs/ are exactly what docs/gen_reference.py produces now,
so they cannot drift from the rule table, the name tables or the grammar."""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "docs are out of date: run `python docs/gen_reference.py` and commit the result"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


@pytest.mark.parametrize("name", ["rules.md", "grammar.md"])
def test_committed_docs_match_the_generator(name):
    path = ROOT / "docs" / name
    expected = GEN.outputs()[path]
    assert path.exists(), f"docs/{name} is missing: {REGENERATE}"
    current = path.read_text(encoding="utf-8")
    if current != expected:
        diff = "".join(difflib.unified_diff(current.splitlines(True), expected.splitlines(True),
                                            f"docs/{name} (committed)", f"docs/{name} (generated)",
                                            n=1))
        pytest.fail(f"docs/{name}: {REGENERATE}\n{diff[:4000]}", pytrace=False)


def test_rules_page_lists_every_rule():
    RULES = GEN.builtin_rules()
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(RULES)


def test_every_name_table_entry_has_a_spelling():
    from rop.frontend import names as N
    spelled = GEN.spellings()
    for table in (N.NUMPY_FUNCS, N.MATH_FUNCS, N.BUILTIN_FUNCS, N.METHODS, N.ATTRIBUTES):
        for prim in table.values():
            assert spelled.get(prim), prim


def test_grammar_page_embeds_the_grammar_verbatim():
    text = (ROOT / "docs" / "grammar.md").read_text(encoding="utf-8")
    lark = (ROOT / "grammar" / "rop.lark").read_text(encoding="utf-8")
    assert lark.rstrip("\n") in text
    assert "## Accepted" in text and "## Refused" in text


def test_generator_check_mode(tmp_path, monkeypatch, capsys):
    assert GEN.main(["--check"]) == 0
    stale = tmp_path / "rules.md"
    stale.write_text("stale\n", encoding="utf-8")
    monkeypatch.setattr(GEN, "ROOT", tmp_path)
    monkeypatch.setattr(GEN, "outputs", lambda: {stale: "fresh\n"})
    assert GEN.main(["--check"]) == 1
    assert "gen_reference.py" in capsys.readouterr().err
    assert stale.read_text(encoding="utf-8") == "stale\n"
