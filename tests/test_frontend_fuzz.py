"""A fuzz target for rop's frontend over raw source text (issue 7): nothing but
:class:`RopSyntaxError` (or success) comes out, never another exception.

Two sources of text, both with hypothesis:

* arbitrary text: unicode strings, and strings of Python-ish tokens (keywords, operators,
  names, numbers, strings, newlines and indentation) that get past Python's tokenizer far more
  often than random characters;
* mutated real programs: the functions of ``examples/`` and ``tests/corpus_programs.py``,
  tokenized with :mod:`tokenize`, with one to four token deletions, insertions, swaps,
  duplications or replacements.

Each text goes through the frontend's entry point for text,
``rop.frontend.grammar.check_syntax`` (and ``rop.frontend.parse._parse``, which adds
``ast.parse`` and the one-function check).  When the text is accepted, it is also taken through
the public path that reads source: written to a real module file next to the corpus helpers
(so helper calls resolve), imported, and given to ``rop.frontend.lower.lower`` (name
resolution, the semantic checks, lowering to IR) and to ``rop(fn, wrt=...)`` — which may only
raise :class:`RopSyntaxError` (or :class:`RopCallError` for a ``wrt`` that names no parameter).
Texts that are accepted but do not import (a default referring to nothing, ...) stop after
the text-level checks: they are not a program rop could ever be given.

``ROP_FUZZ_FRONTEND=N`` runs N examples per strategy (default 400; the CI run is >= 300 of
each kind).  Unexpected exceptions are collected with their text; ``KNOWN_DEFECTS`` holds
substrings of texts that expose a known rop defect (reported, not failing the run).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import itertools
import os
import sys
import tempfile
import textwrap
import tokenize
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from rop import rop
from rop.errors import RopCallError, RopSyntaxError
from rop.frontend.grammar import check_syntax
from rop.frontend.lower import lower
from rop.frontend.parse import _parse

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("ROP_FUZZ_FRONTEND", "400"))

# substring of the text -> what goes wrong (a defect of rop, kept out of the failure count)
KNOWN_DEFECTS: dict[str, str] = {}


# ----------------------------------------------------------------------------- seeds

def _functions(path: Path):
    """(name, dedented source with decorators) of every module-level function in a file."""
    text = path.read_text()
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
            out.append((node.name, textwrap.dedent("".join(lines[start:node.end_lineno]))))
    return out


def _accepted(text):
    try:
        check_syntax(text, "<seed>", 1)
        return True
    except RopSyntaxError:   # example scripts also hold plain Python (drivers, plotting)
        return False


SEEDS = [f for f in ([f for p in sorted((ROOT / "examples").glob("*.py")) for f in _functions(p)]
                     + _functions(ROOT / "tests" / "corpus_programs.py")) if _accepted(f[1])]
SEED_TEXTS = [s for _, s in SEEDS]
HELPER_MODULE = (ROOT / "tests" / "corpus_programs.py").read_text()


def _tokens(text):
    """[(start offset, end offset, token string)] of the non-layout tokens of a text."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.ENDMARKER, tokenize.DEDENT) or not tok.string.strip():
            continue   # layout tokens are damaged by inserted newlines and tabs instead
        a = starts[tok.start[0] - 1] + tok.start[1]
        b = starts[tok.end[0] - 1] + tok.end[1]
        out.append((a, b, tok.string))
    return out


SEED_TOKENS = [_tokens(t) for t in SEED_TEXTS]
VOCAB = sorted({t for toks in SEED_TOKENS for _, _, t in toks if "\n" not in t or t == "\n"}
               | {"lambda", "yield", "class", "try", "except", "with", "global", "import", "del",
                  "async", "await", ":=", "*", "**", "{", "}", "1j", "f'x'", "b'x'", "...",
                  "<<", ">>", "|=", "@", "is", "not", "in", "for", "else", "elif", "while",
                  "return", "\\\n", "\t", "    ", "\n    ", "#", "'''", '"', "\x00", "é", ";"})

MUTATIONS = ("delete", "insert", "swap", "duplicate", "replace", "same_kind", "same_kind")
NAMES = sorted({t for t in VOCAB if t.isidentifier()})
NUMBERS = sorted({t for t in VOCAB if t[:1].isdigit()} | {"0", "2", "0.5", "1e-3", "3"})
OPERATORS = sorted({t for t in VOCAB if t and not t[0].isalnum() and t[0] not in "\"'#\\ \t\n"
                    and len(t) <= 3})


def _same_kind(s):
    """Tokens of the same kind as ``s`` (a name for a name, ...): mutations that keep the text
    Python far more often, so that more of them reach name resolution and lowering."""
    if s.isidentifier():
        return NAMES
    if s[:1].isdigit():
        return NUMBERS
    return OPERATORS


@st.composite
def mutated_programs(draw):
    i = draw(st.integers(0, len(SEED_TEXTS) - 1))
    text, toks = SEED_TEXTS[i], SEED_TOKENS[i]
    applied = []
    rnd = draw(st.randoms(use_true_random=False))   # uniform positions (not biased to 0)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        if not toks:
            break
        kind = draw(st.sampled_from(MUTATIONS))
        j = rnd.randrange(len(toks))
        a, b, s = toks[j]
        if kind == "delete":
            text = text[:a] + text[b:]
        elif kind == "insert":
            text = text[:a] + draw(st.sampled_from(VOCAB)) + " " + text[a:]
        elif kind == "duplicate":
            text = text[:b] + " " + s + text[b:]
        elif kind == "same_kind":
            text = text[:a] + draw(st.sampled_from(_same_kind(s))) + text[b:]
        elif kind == "replace":
            text = text[:a] + draw(st.sampled_from(VOCAB)) + text[b:]
        elif kind == "swap" and j + 1 < len(toks):
            a2, b2, s2 = toks[j + 1]
            text = text[:a] + s2 + text[b:a2] + s + text[b2:]
        applied.append(kind)
        try:
            toks = _tokens(text)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            toks = [(a, b, s) for a, b, s in toks if b <= len(text)]
    return text, tuple(applied), SEEDS[i][0]


token_soup = st.lists(st.sampled_from(VOCAB + ["def", "f", "(", ")", ":", "\n", "x", "=", "1"]),
                      max_size=40).map(lambda ts: "def f(x):\n    " + " ".join(ts) + "\n")


# ----------------------------------------------------------------------------- the target

class Record:
    def __init__(self):
        self.kinds = Counter()
        self.failures = []      # (text, where, exception)
        self.known = []


REC = Record()
_TMP = tempfile.mkdtemp(prefix="rop-frontend-fuzz-")
_COUNT = itertools.count()


def _unexpected(text, where, exc):
    for frag, why in KNOWN_DEFECTS.items():
        if frag in text:
            REC.known.append((frag, text, where, exc))
            return
    REC.failures.append((text, where, f"{type(exc).__name__}: {exc}"))


def frontend(text: str, label: str):
    """Feed one text through the frontend; record the outcome."""
    try:
        check_syntax(text, "<fuzz>", 1)
    except RopSyntaxError as exc:
        assert isinstance(str(exc), str) and exc.lineno >= 0
        REC.kinds[f"{label}: refused by check_syntax"] += 1
        return
    except BaseException as exc:  # noqa: BLE001 - the point of the test
        _unexpected(text, "check_syntax", exc)
        return
    try:
        _parse(text, "<fuzz>", 1, 0)
    except RopSyntaxError:
        REC.kinds[f"{label}: refused by parse"] += 1
        return
    except BaseException as exc:  # noqa: BLE001
        _unexpected(text, "parse", exc)
        return
    # accepted text: through the public path (a real file, inspect, lower, rop)
    tree = ast.parse(text)
    fdef = tree.body[0]
    name = fdef.name
    body = textwrap.dedent(text)
    lines = body.splitlines(keepends=True)
    start = fdef.lineno - 1   # drop decorators: they run at import
    mod_name = f"rop_frontend_fuzz_{next(_COUNT)}"
    path = os.path.join(_TMP, mod_name + ".py")
    with open(path, "w") as fh:
        fh.write(HELPER_MODULE + "\n\n" + "".join(lines[start:]))
    try:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        fn = getattr(mod, name)
    except BaseException:  # noqa: BLE001 - not a function rop could be given
        REC.kinds[f"{label}: accepted, does not import"] += 1
        return
    try:
        lower(fn)
    except RopSyntaxError:
        REC.kinds[f"{label}: refused by lower"] += 1
        return
    except BaseException as exc:  # noqa: BLE001
        _unexpected(text, "lower", exc)
        return
    params = [a.arg for a in fdef.args.args]
    try:
        rop(fn, wrt=params[:1] or ("x",), mode="python")
        REC.kinds[f"{label}: accepted and lowered"] += 1
    except (RopSyntaxError, RopCallError):
        REC.kinds[f"{label}: refused by rop()"] += 1
    except BaseException as exc:  # noqa: BLE001
        _unexpected(text, "rop()", exc)


SETTINGS = dict(max_examples=N, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), phases=("generate",))


@seed(7)
@settings(**SETTINGS)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    frontend(text, "text")


@seed(8)
@settings(**SETTINGS)
@given(token_soup)
def test_token_soup(text):
    frontend(text, "tokens")


@seed(9)
@settings(**SETTINGS)
@given(mutated_programs())
def test_mutated_programs(prog):
    text, applied, origin = prog
    REC.kinds.update(f"mutation:{k}" for k in applied)
    frontend(text, "mutated")


def test_seeds_are_accepted():
    """The unmutated seeds go all the way through (the mutations start from valid programs)."""
    assert len(SEEDS) >= 150
    assert any(name == "rbp_gradient" for name, _ in SEEDS)


def test_zz_report():
    """Runs after the fuzz targets (file order): prints what happened, fails on any exception
    other than RopSyntaxError."""
    print("\n=== frontend fuzz:", dict(sorted(REC.kinds.items())))
    for frag, text, where, exc in REC.known:
        print(f"--- known defect ({KNOWN_DEFECTS[frag]}) in {where}: {exc!r}\n{text}")
    for text, where, msg in REC.failures[:10]:
        print(f"--- UNEXPECTED in {where}: {msg}\n{text!r}")
    total = sum(v for k, v in REC.kinds.items() if not k.startswith("mutation:"))
    if total:   # only meaningful after the targets ran in this session
        assert sum(v for k, v in REC.kinds.items() if k.startswith("mutated")) >= min(N, 300) \
            or N < 300
        assert any(k.endswith("accepted and lowered") for k in REC.kinds)
    assert not REC.failures, REC.failures[:3]
