"""Random well-shaped differentiable programs, generated from the grammar in ``grammar/rop.lark``.

Used by ``tests/test_fuzz.py``.  The generator reads the Lark grammar (``load_grammar``) and
takes from it, not from a hand-written list:

* the operator tokens of ``add_op``, ``mul_op``, ``unary_op``, ``comp_op`` and ``augop``;
* the statement kinds (the alternatives of ``small_stmt`` and ``compound_stmt``) and the
  expression forms it knows about (``conditional``).

Every operator and statement kind of the grammar must either have a production here
(``STMT_PRODUCTIONS``, ``OP_PRIMS``) or be listed with a reason in ``NOT_GENERATED`` (``~`` on
floats, ``in``/``is`` comparisons, ...), so a new construct in the grammar fails the test until
the generator covers it.  The elementwise functions come from the rule table
(``rop.rules.table.RULES``, ``kind == "unary"``), with their test domains: an argument of a
``positive``-domain function is always a positive expression (``np.exp(e)``, ``e * e + 0.5``,
``1.5 + np.tanh(e)``), a ``unit``-domain one lies in (-1, 1) (``0.5 * np.tanh(e)``), a
``nonzero``-domain one keeps away from 0.

Shape discipline: every expression is generated for a wanted shape among

    S  ()     N  (n,)     M  (m,)     NM (n, m)     MN (m, n)     NN (n, n)

with n != m drawn per program, so a transposed operand or a wrong axis cannot go unnoticed.
The constructs a program uses are counted (``Program.constructs``).

A :class:`Program` is written to a real ``.py`` file (rop reads source with ``inspect``) and
imported with importlib.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import itertools
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
GRAMMAR = ROOT / "grammar" / "rop.lark"

SHAPES = ("S", "N", "M", "NM", "MN", "NN")
DIMS = {"S": (), "N": ("n",), "M": ("m",), "NM": ("n", "m"), "MN": ("m", "n"), "NN": ("n", "n")}
VECTORS = ("N", "M")
MATRICES = ("NM", "MN", "NN")


# ============================================================================ the grammar

@dataclass(frozen=True)
class GrammarFacts:
    add_ops: tuple
    mul_ops: tuple
    unary_ops: tuple
    comp_ops: tuple
    aug_ops: tuple
    small_stmts: tuple
    compound_stmts: tuple
    aliases: frozenset


@lru_cache(maxsize=1)
def load_grammar() -> GrammarFacts:
    """Operator tokens and statement kinds, read from the Lark grammar file."""
    from lark import Lark
    from lark.indenter import PythonIndenter
    parser = Lark(GRAMMAR.read_text(), parser="lalr", postlex=PythonIndenter())
    terms = {t.name: t.pattern.value for t in parser.terminals}
    # keyword tokens the grammar writes inline ("in", "not", "is") are anonymous terminals too
    alts: dict[str, list] = {}
    aliases = set()
    for r in parser.rules:
        alts.setdefault(r.origin.name, []).append(
            " ".join(terms.get(s.name, s.name) for s in r.expansion))
        if r.alias:
            aliases.add(r.alias)
    return GrammarFacts(
        add_ops=tuple(alts["add_op"]), mul_ops=tuple(alts["mul_op"]),
        unary_ops=tuple(alts["unary_op"]), comp_ops=tuple(alts["comp_op"]),
        aug_ops=tuple(alts["augop"]), small_stmts=tuple(alts["small_stmt"]),
        compound_stmts=tuple(alts["compound_stmt"]), aliases=frozenset(aliases))


# operator token -> rule-table primitive it lowers to (None: refused for floats / not generated)
OP_PRIMS = {
    "+": "add", "-": "sub", "*": "mul", "/": "div", "//": "floordiv", "%": "mod", "@": "matmul",
    "**": "pow",
}
UNARY_PRIMS = {"+": "pos", "-": "neg"}
CMP_PRIMS = {"<": "lt", ">": "gt", "<=": "le", ">=": "ge", "==": "eq", "!=": "ne"}
AUG_PRIMS = {"+=": "add", "-=": "sub", "*=": "mul", "/=": "div", "**=": "pow", "@=": "matmul",
             "//=": "floordiv", "%=": "mod"}

# grammar constructs the generator deliberately does not produce, and why
NOT_GENERATED = {
    "~": "bitwise not: no R-rule on floats",
    "in": "membership tests on arrays are not differentiable values",
    "not in": "membership tests on arrays are not differentiable values",
    "is": "identity comparisons of values",
    "is not": "identity comparisons of values",
    "return_stmt": "generated only as the last statement (and early returns in if branches)",
}

STMT_PRODUCTIONS = {"assign", "aug_assign", "ann_assign", "call_stmt", "docstring", "return_stmt",
                    "pass_stmt", "break_stmt", "continue_stmt", "if_stmt", "while_stmt",
                    "for_stmt"}
# statements the generator does not produce, with the reason
STMT_NOT_GENERATED = {
    "assert_stmt": "a runtime check, no value: tests/test_statics.py runs assert (passing and "
                   "failing, with its message) in both modes",
    "raise_stmt": "a runtime check, no value: tests/test_statics.py raises from it in both modes",
}


def unary_functions():
    """(primitive, numpy spelling, math spelling or None, domain) of every unary elementwise
    rule in the rule table with a nonzero derivative."""
    from rop.frontend.names import MATH_FUNCS, NUMPY_FUNCS
    from rop.rules.table import RULES
    np_name = {}
    for f, p in NUMPY_FUNCS.items():
        np_name.setdefault(p, "np." + f.__name__)
    math_name = {}
    for f, p in MATH_FUNCS.items():
        math_name.setdefault(p, "math." + f.__name__)
    out = []
    for p in RULES.values():
        if p.kind == "unary" and p.name in np_name:
            out.append((p.name, np_name[p.name], math_name.get(p.name), p.domain))
    return out


def grammar_check():
    """Everything the grammar offers is either generated or explicitly excluded."""
    g = load_grammar()
    from rop.frontend.lower import _BINOPS, _CMPOPS  # noqa: F401  (the lowering agrees)
    from rop.rules.table import RULES
    missing = []
    for op in g.add_ops + g.mul_ops:
        if op not in NOT_GENERATED and (op not in OP_PRIMS or OP_PRIMS[op] not in RULES):
            missing.append(op)
    for op in g.unary_ops:
        if op not in NOT_GENERATED and op not in UNARY_PRIMS:
            missing.append(op)
    for op in g.comp_ops:
        if op not in NOT_GENERATED and op not in CMP_PRIMS:
            missing.append(op)
    for op in g.aug_ops:
        if op not in NOT_GENERATED and op not in AUG_PRIMS:
            missing.append(op)
    for s in g.small_stmts + g.compound_stmts:
        if s not in STMT_PRODUCTIONS and s not in STMT_NOT_GENERATED:
            missing.append(s)
    if "conditional" not in g.aliases:
        missing.append("conditional (alias renamed?)")
    return missing


# ============================================================================ programs

@dataclass
class Program:
    name: str
    helpers: list            # source text of module-level helpers
    source: str              # source text of the function
    params: list             # [(name, shape or "int")]
    wrt: tuple
    n: int
    m: int
    constructs: Counter = field(default_factory=Counter)
    seed: int = 0

    def module_text(self) -> str:
        return ("import math\n\nimport numpy as np\n\n\n" + "\n\n".join(self.helpers)
                + ("\n\n" if self.helpers else "") + self.source)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.module_text().encode()).hexdigest()[:12]


class _Gen:
    """One program's generator; ``draw`` is hypothesis' draw."""

    def __init__(self, draw, name):
        self.draw = draw
        self.name = name
        self.g = load_grammar()
        self.unary = unary_functions()
        self.cons = Counter()
        self.helpers = []          # (name, source, kind, param shapes, return shape)
        self.helper_src = []
        self.counter = itertools.count()
        self.params = set()        # never written (rop refuses writes into parameters)
        self.fresh_names = set()   # arrays the program allocated itself: safe to update in place

    # ------------------------------------------------------------------ drawing
    def choice(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def coin(self, p=0.5):
        return self.draw(st.floats(0, 1)) < p

    def const(self, lo=0.2, hi=1.5):
        c = self.draw(st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 0.3, 0.7]))
        return repr(min(max(c, lo), hi))

    def fresh(self, stem="t"):
        return f"{stem}{next(self.counter)}"

    # ------------------------------------------------------------------ expressions
    def vars_of(self, env, shape):
        return [v for v, s in env.items() if s == shape]

    def leaf(self, env, shape):
        vs = self.vars_of(env, shape)
        if vs and self.coin(0.85):
            return self.choice(vs)
        # build the shape from smaller pieces
        if shape == "S":
            if self.coin(0.3):
                return self.const()
            vec = [v for v, s in env.items() if s in VECTORS]
            mat = [v for v, s in env.items() if s in MATRICES]
            if vec and self.coin():
                x = self.choice(vec)
                k = self.choice(["0", "1", "-1"])
                self.cons["index:x[k]"] += 1
                return f"{x}[{k}]"
            if mat:
                x = self.choice(mat)
                self.cons["index:X[i, j]"] += 1
                return f"{x}[{self.choice(['0', '1', '-1'])}, {self.choice(['0', '-1'])}]"
            return self.const()
        if shape in VECTORS:
            src = self.from_matrix(env, shape)
            if src:
                return src
            s = self.leaf(env, "S")
            other = [v for v, sh in env.items() if sh == shape]
            if other:
                return f"{s} * {other[0]}"
            dim = "n" if shape == "N" else "m"
            self.cons["np.ones"] += 1
            return f"{s} * np.ones({self.dim_expr(env, dim)})"
        # matrices
        a, b = shape[0], shape[1]
        va, vb = self.vars_of(env, a), self.vars_of(env, b)
        if va and vb:
            self.cons["index:[:, None]"] += 1
            if self.coin():
                self.cons["outer"] += 1
                return f"np.outer({self.choice(va)}, {self.choice(vb)})"
            return f"{self.choice(va)}[:, None] * {self.choice(vb)}[None, :]"
        t = shape[::-1]
        if self.vars_of(env, t):
            self.cons[".T"] += 1
            return f"{self.choice(self.vars_of(env, t))}.T"
        self.cons["np.ones"] += 1
        return (f"{self.leaf(env, 'S')} * np.ones(({self.dim_expr(env, shape[0].lower())}, "
                f"{self.dim_expr(env, shape[1].lower())}))")

    def dim_expr(self, env, dim):
        for v, s in env.items():
            if s in ("N", "M") and s.lower() == dim:
                if self.coin():
                    self.cons["len()"] += 1
                    return f"len({v})"
                self.cons[".shape"] += 1
                return f"{v}.shape[0]"
            if s in MATRICES and dim in s.lower():
                i = s.lower().index(dim)
                self.cons[".shape"] += 1
                return f"{v}.shape[{i}]"
        return "1"   # unreachable for well-formed envs (a parameter of each dimension exists)

    def from_matrix(self, env, shape):
        """A vector of `shape` taken from a matrix: a row, a column, or a reduction."""
        opts = []
        for v, s in env.items():
            if s not in MATRICES:
                continue
            r, c = s[0], s[1]
            if c == shape:
                opts += [("row", v), ("red0", v)]
            if r == shape:
                opts += [("col", v), ("red1", v)]
        if not opts or self.coin(0.3):
            return None
        kind, v = self.choice(opts)
        if kind == "row":
            self.cons["index:X[i]"] += 1
            return f"{v}[{self.choice(['0', '-1', '1'])}]"
        if kind == "col":
            self.cons["index:X[:, j]"] += 1
            return f"{v}[:, {self.choice(['0', '-1'])}]"
        red = self.choice(["sum", "mean", "max", "min"])
        ax = "0" if kind == "red0" else self.choice(["1", "-1"])
        self.cons[f"reduce:{red}(axis)"] += 1
        if self.coin():
            return f"np.{red}({v}, axis={ax})"
        self.cons["method:." + red] += 1
        return f"{v}.{red}(axis={ax})"

    def expr(self, env, shape, depth):
        """An expression of `shape` over the variables in `env` (name -> shape)."""
        if depth <= 0:
            return self.leaf(env, shape)
        kinds = ["leaf", "binop", "binop", "unary", "unaryfn", "unaryfn", "domainfn", "special"]
        if shape == "S":
            kinds += ["reduce", "reduce", "ifexp", "dot", "mathfn", "builtin", "slice_red"]
        if shape in VECTORS:
            kinds += ["matvec", "matvec", "reduce_mat", "ifexp", "where", "rev"]
        if shape in MATRICES:
            kinds += ["matmat", "transpose", "outer", "center", "where"]
        if self.helpers:
            kinds += ["helper", "helper"]
        k = self.choice(kinds)
        d = depth - 1
        if k == "leaf":
            return self.leaf(env, shape)
        if k == "binop":
            ops = [o for o in self.g.add_ops + self.g.mul_ops if o not in NOT_GENERATED and o != "@"]
            op = self.choice(ops + ["+", "-", "*", "**"])  # weight the smooth ones
            self.cons[f"binop:{op}"] += 1
            other = shape if self.coin(0.7) else "S"
            a, b = self.expr(env, shape, d), self.expr(env, other, d)
            if self.coin(0.3):
                a, b = b, a
            if op == "/":
                return f"({a}) / ({self.positive(env, other, d)})"
            if op == "**":
                if self.coin():
                    return f"({a}) ** 2"
                return f"({self.positive(env, shape, d)}) ** ({self.bounded(env, 'S', d)})"
            if op == "//":
                return f"({a}) // {self.const(1.0, 1.5)} + ({b})"
            if op == "%":
                self.cons["binop:%"] += 0
                return f"({a}) % {self.const(1.0, 2.0)}"
            return f"({a}) {op} ({b})"
        if k == "unary":
            op = self.choice([o for o in self.g.unary_ops if o not in NOT_GENERATED])
            self.cons[f"unary:{op}"] += 1
            return f"{op}({self.expr(env, shape, d)})"
        if k in ("unaryfn", "domainfn", "mathfn"):
            prims = [u for u in self.unary if (u[3] != "real") == (k == "domainfn")] \
                if k != "mathfn" else [u for u in self.unary if u[2]]
            prim, npn, mathn, dom = self.choice(prims)
            arg = self.domain_arg(env, shape, d, dom, prim)
            if k == "mathfn" and shape == "S":
                self.cons[f"fn:{mathn}"] += 1
                return f"{mathn}({arg})"
            self.cons[f"fn:{npn}"] += 1
            return f"{npn}({arg})"
        if k == "special":
            which = self.choice(["maximum", "minimum", "clip", "square_method", "copy"])
            self.cons[f"fn:{which}"] += 1
            a = self.expr(env, shape, d)
            if which in ("maximum", "minimum"):
                return f"np.{which}({a}, {self.expr(env, shape if self.coin() else 'S', d)})"
            if which == "clip":
                if self.coin() or shape == "S":   # a Python float has no .clip()
                    return f"np.clip({a}, -1.0, 1.0)"
                return f"({a}).clip(-0.5, 2.0)"
            if which == "copy":
                return f"np.copy({a})" if shape != "S" else f"float({a})"
            return f"np.square({a})"
        if k == "reduce":
            src = self.choice([s for s in SHAPES if s != "S"])
            red = self.choice(["sum", "mean", "max", "min"])
            a = self.expr(env, src, d)
            self.cons[f"reduce:{red}"] += 1
            if self.coin():
                self.cons["method:." + red] += 1
                return f"({a}).{red}()"
            return f"np.{red}({a})"
        if k == "slice_red":
            vec = self.choice(VECTORS)
            a = self.expr(env, vec, d)
            b = self.expr(env, vec, d)
            self.cons["index:slices"] += 1
            return self.choice([f"np.sum(({a})[1:] * ({b})[:-1])",
                                f"np.sum(({a})[::2])",
                                f"np.sum(({a})[::-1] * ({b}))"])
        if k == "dot":
            vec = self.choice(VECTORS)
            self.cons["fn:np.dot"] += 1
            return f"np.dot({self.expr(env, vec, d)}, {self.expr(env, vec, d)})"
        if k == "builtin":
            which = self.choice(["abs", "max", "min", "float"])
            self.cons[f"builtin:{which}"] += 1
            if which == "abs":
                return f"abs({self.expr(env, 'S', d)})"
            if which == "float":
                return f"float({self.expr(env, 'S', d)})"
            return f"{which}({self.expr(env, 'S', d)}, {self.expr(env, 'S', d)})"
        if k == "ifexp":
            self.cons["conditional"] += 1
            # parenthesised whole: as an operand of a comparison in another conditional's
            # test, `a < x if c else y < b` is not Python
            return (f"(({self.expr(env, shape, d)}) if {self.cond(env, d)} "
                    f"else ({self.expr(env, shape, d)}))")
        if k == "where":
            self.cons["fn:np.where"] += 1
            a = self.expr(env, shape, d)
            op = self.choice([o for o in self.g.comp_ops if o in ("<", ">", "<=", ">=")])
            return f"np.where(({a}) {op} 0.0, {self.expr(env, shape, d)}, {a})"
        if k == "rev":
            self.cons["index:[::-1]"] += 1
            return f"({self.expr(env, shape, d)})[::-1]"
        if k in ("matvec", "matmat"):
            inner = self.choice(VECTORS if shape in VECTORS else ("N", "M"))
            i = "N" if inner == "N" else "M"
            left = shape if shape in VECTORS else shape[0]
            right = None if shape in VECTORS else shape[1]
            ms = left + i
            if ms not in MATRICES:
                ms = None
            if shape in VECTORS:
                if ms is None:
                    ms, i = (left + left, left) if left + left in MATRICES else (None, None)
                if ms is None:   # M x ? : (m, n) @ (n,)
                    ms, i = "MN", "N"
                mat = self.expr(env, ms, d)
                vec = self.expr(env, i, d)
                if self.coin(0.8):
                    self.cons["@ matvec"] += 1
                    return f"({mat}) @ ({vec})"
                self.cons["method:.dot"] += 1
                return f"({mat}).dot({vec})"
            # matrix = (left x i) @ (i x right)
            lm, rm = left + i, i + right
            if lm not in MATRICES or rm not in MATRICES:
                lm, rm = left + "N", "N" + right
                if lm not in MATRICES or rm not in MATRICES:
                    return self.leaf(env, shape)
            self.cons["@ matmat"] += 1
            return f"({self.expr(env, lm, d)}) @ ({self.expr(env, rm, d)})"
        if k == "reduce_mat":
            src = self.from_matrix(env, shape)
            if src:
                return src
            mats = [s for s in MATRICES if shape in (s[0], s[1])]
            s = self.choice(mats)
            red = self.choice(["sum", "mean", "max", "min"])
            ax = 1 if s[0] == shape else 0
            self.cons[f"reduce:{red}(axis)"] += 1
            return f"np.{red}({self.expr(env, s, d)}, axis={ax})"
        if k == "transpose":
            self.cons[".T"] += 1
            if self.coin(0.8):
                return f"({self.expr(env, shape[::-1], d)}).T"
            self.cons["fn:np.transpose"] += 1
            return f"np.transpose({self.expr(env, shape[::-1], d)})"
        if k == "outer":
            a, b = shape[0], shape[1]
            self.cons["outer"] += 1
            return f"np.outer({self.expr(env, a, d)}, {self.expr(env, b, d)})"
        if k == "center":
            red = self.choice(["mean", "max", "sum"])
            ax = self.choice(["0", "1"])
            a = self.expr(env, shape, d)
            self.cons["keepdims"] += 1
            return f"({a}) - np.{red}({a}, axis={ax}, keepdims=True)"
        if k == "helper":
            hname, _, kind, pshapes, rshape = self.choice(self.helpers)
            if kind == "elementwise":
                self.cons["helper:elementwise"] += 1
                return f"{hname}({self.expr(env, shape, d)})"
            if rshape != shape:
                return self.leaf(env, shape)
            self.cons["helper:inlined"] += 1
            return f"{hname}({', '.join(self.expr(env, s, d) for s in pshapes)})"
        raise AssertionError(k)

    def bounded(self, env, shape, d):
        self.cons["fn:np.tanh"] += 1
        return f"0.5 * np.tanh({self.expr(env, shape, d)})"

    def positive(self, env, shape, d):
        e = self.expr(env, shape, d)
        w = self.choice(["exp", "sq", "tanh", "const"] if shape == "S" else ["exp", "sq", "tanh"])
        if w == "exp":
            self.cons["fn:np.exp"] += 1
            return f"np.exp(0.5 * np.tanh({e}))"
        if w == "sq":
            return f"({e}) * ({e}) + 0.5"
        if w == "tanh":
            return f"1.5 + np.tanh({e})"
        return self.const(0.5, 2.0)

    def domain_arg(self, env, shape, d, dom, prim):
        if dom == "positive":
            return self.positive(env, shape, d)
        if dom == "unit":
            return self.bounded(env, shape, d)
        if dom == "nonzero":
            p = self.positive(env, shape, d)
            return p if self.coin() else f"-({p})"
        if prim in ("exp", "expm1", "sinh", "cosh"):
            return self.bounded(env, shape, d) if self.coin(0.6) else f"0.3 * ({self.expr(env, shape, min(d, 1))})"
        return self.expr(env, shape, d)

    def cond(self, env, d):
        """A scalar comparison (and/or/not, chained)."""
        op = self.choice([o for o in self.g.comp_ops if o not in NOT_GENERATED])
        self.cons[f"compare:{op}"] += 1
        a = self.expr(env, "S", max(d - 1, 0))
        c = self.choice(["0.0", "0.5", "-0.5", "1.0"])
        base = f"{a} {op} {c}"
        r = self.draw(st.integers(0, 5))
        if r == 0:
            self.cons["and"] += 1
            return f"{base} and {self.expr(env, 'S', 0)} < 2.0"
        if r == 1:
            self.cons["or"] += 1
            return f"({base}) or {self.expr(env, 'S', 0)} > 2.0"
        if r == 2:
            self.cons["not"] += 1
            return f"not ({base})"
        if r == 3:
            self.cons["chained comparison"] += 1
            return f"-3.0 < {a} < {c}"
        return base

    # ------------------------------------------------------------------ statements
    def block(self, env, depth, n_stmts, in_loop=False, indent="    "):
        lines = []
        for _ in range(n_stmts):
            lines += self.stmt(env, depth, in_loop, indent)
        return lines

    def assign_line(self, env, indent, depth, shape=None, name=None):
        shape = shape or self.choice(SHAPES)
        e = self.expr(env, shape, depth)
        name = name or self.fresh("v")
        env[name] = shape
        if allocates(e):
            self.fresh_names.add(name)
        self.cons["assign"] += 1
        return [f"{indent}{name} = {e}"]

    def stmt(self, env, depth, in_loop, indent):
        kinds = ["assign"] * 4 + ["aug", "ann", "doc", "if", "if", "for", "while", "list",
                                   "tuple", "chain"]
        if in_loop:
            kinds += ["brk", "brk"]
        if len(indent) > 8:   # limit nesting
            kinds = ["assign", "assign", "aug", "ann"]
        k = self.choice(kinds)
        ed = self.draw(st.integers(1, depth))
        if k == "assign":
            return self.assign_line(env, indent, ed)
        if k == "aug":
            # in-place updates only of scalars and of arrays the program allocated (never of a
            # parameter or a view of one: NumPy would change the caller's array)
            # (scalars included: rop cannot tell at decoration time that `v = t` is a float and
            # refuses `v += ...` as a possible write into parameter `t`)
            targets = [v for v, s in env.items() if v not in self.params and v in self.fresh_names]
            if not targets:
                return self.assign_line(env, indent, ed)
            v = self.choice(targets)
            s = env[v]
            op = self.choice([o for o in self.g.aug_ops if o in ("+=", "-=", "*=", "/=", "**=")])
            self.cons[f"aug_assign:{op}"] += 1
            if op == "/=":
                return [f"{indent}{v} /= {self.positive(env, s if self.coin() else 'S', ed)}"]
            if op == "**=":
                return [f"{indent}{v} **= 2"]
            if op == "*=":
                return [f"{indent}{v} *= {self.bounded(env, s if self.coin() else 'S', ed)}"]
            return [f"{indent}{v} {op} {self.expr(env, s if self.coin() else 'S', ed)}"]
        if k == "ann":
            name = self.fresh("a")
            e = self.expr(env, "S", ed)
            env[name] = "S"
            self.cons["ann_assign"] += 1
            return [f"{indent}{name}: float = {e}"]
        if k == "doc":
            self.cons["docstring"] += 1
            return [f'{indent}"""a string statement in the body."""']
        if k == "chain":
            a, b = self.fresh("c"), self.fresh("c")
            s = self.choice(SHAPES)
            e = self.expr(env, s, ed)
            env[a] = env[b] = s
            # both names are the same array, so rop refuses `a += ...` (NumPy would change b
            # too): neither is offered to augmented assignment
            self.cons["chained assign"] += 1
            return [f"{indent}{a} = {b} = {e}"]
        if k == "tuple":
            a, b = self.fresh("u"), self.fresh("u")
            sa, sb = self.choice(SHAPES), self.choice(SHAPES)
            ea, eb = self.expr(env, sa, ed), self.expr(env, sb, ed)
            env[a], env[b] = sa, sb
            self.cons["tuple unpack"] += 1
            return [f"{indent}{a}, {b} = {ea}, {eb}"]
        if k == "brk":
            which = self.choice(["break", "continue"])
            self.cons[f"{which}_stmt"] += 1
            return [f"{indent}if {self.cond(env, 1)}:", f"{indent}    {which}"]
        if k == "if":
            return self.if_stmt(env, depth, in_loop, indent)
        if k == "for":
            return self.for_stmt(env, depth, indent)
        if k == "while":
            return self.while_stmt(env, depth, indent)
        if k == "list":
            return self.list_stmt(env, depth, indent)
        raise AssertionError(k)

    def if_stmt(self, env, depth, in_loop, indent):
        """if/elif/else; every branch assigns the same new variables (so they are defined
        after the statement), some branches also update existing ones or `pass`."""
        self.cons["if_stmt"] += 1
        outs = [(self.fresh("b"), self.choice(SHAPES)) for _ in range(self.draw(st.integers(1, 2)))]
        n_elif = self.draw(st.integers(0, 2))
        has_else = True
        lines = [f"{indent}if {self.cond(env, depth)}:"]
        branches = 1 + n_elif + 1
        for bi in range(branches):
            if bi > 0 and bi < branches - 1:
                self.cons["elif"] += 1
                lines.append(f"{indent}elif {self.cond(env, depth)}:")
            elif bi == branches - 1:
                self.cons["else"] += 1
                lines.append(f"{indent}else:")
            benv = dict(env)
            body = []
            if self.coin(0.2):
                self.cons["pass_stmt"] += 1
                body.append(f"{indent}    pass")
            if self.coin(0.3):
                body += self.block(benv, max(depth - 1, 1), 1, in_loop, indent + "    ")
            for name, s in outs:
                body.append(f"{indent}    {name} = {self.expr(benv, s, self.draw(st.integers(1, depth)))}")
            lines += body
        del has_else
        for name, s in outs:
            env[name] = s
        return lines

    def for_stmt(self, env, depth, indent):
        self.cons["for_stmt"] += 1
        i = self.fresh("i")
        acc = self.fresh("acc")
        s = self.choice(SHAPES)
        lines = [f"{indent}{acc} = {self.expr(env, s, 1)}"]
        vec = [v for v, sh in env.items() if sh in VECTORS]
        r = self.draw(st.integers(0, 4))
        over = None
        if r == 0 and vec:
            over = self.choice(vec)
            rng = f"range({over}.shape[0])" if self.coin() else f"range(len({over}))"
            self.cons["for over range(len(x))"] += 1
        elif r == 1:
            rng = f"range({self.draw(st.integers(1, 3))})"
        elif r == 2:
            rng = f"reversed(range({self.draw(st.integers(1, 3))}))"
            self.cons["for reversed(range)"] += 1
        elif r == 3:
            rng = f"range(1, {self.draw(st.integers(2, 4))})"
            self.cons["for range(a, b)"] += 1
        else:
            ints = [v for v, sh in env.items() if sh == "int"]
            if ints:
                rng = f"range({self.choice(ints)})"
                self.cons["for range(int param)"] += 1
            else:
                rng = "range(0, 4, 2)"
                self.cons["for range(a, b, step)"] += 1
        lines.append(f"{indent}for {i} in {rng}:")
        benv = dict(env)
        benv[acc] = s
        body = []
        if over is not None:
            body.append(f"{indent}    {self.fresh('e')} = {over}[{i}]")
            benv[body[-1].split(" = ")[0].strip()] = "S"
            self.cons["index:x[loopvar]"] += 1
        body += self.block(benv, max(depth - 1, 1), self.draw(st.integers(0, 2)), True, indent + "    ")
        # the accumulator: a contraction plus something new each step
        upd = self.expr(benv, s, self.draw(st.integers(1, depth)))
        body.append(f"{indent}    {acc} = 0.5 * np.tanh({acc}) + 0.5 * ({upd})")
        self.cons["loop accumulator"] += 1
        if "int" not in benv.values() and self.coin(0.2):
            body.append(f"{indent}    {acc} = {acc} + 0.1 * {i}")
            self.cons["loop variable as value"] += 1
        lines += body
        env[acc] = s
        return lines

    def while_stmt(self, env, depth, indent):
        self.cons["while_stmt"] += 1
        k = self.fresh("k")
        acc = self.fresh("w")
        s = self.choice(SHAPES)
        cap = self.draw(st.integers(1, 4))
        lines = [f"{indent}{k} = 0", f"{indent}{acc} = {self.expr(env, s, 1)}"]
        if self.coin(0.5):
            red = f"np.sum({acc} * {acc})" if s != "S" else f"{acc} * {acc}"
            test = f"{k} < {cap} and {red} < 50.0"
            self.cons["while value-dependent"] += 1
        else:
            test = f"{k} < {cap}"
        lines.append(f"{indent}while {test}:")
        benv = dict(env)
        benv[acc] = s
        # the counter first: a `continue` in the body must not skip it (an endless loop)
        body = [f"{indent}    {k} += 1"]
        body += self.block(benv, max(depth - 1, 1), self.draw(st.integers(0, 1)), True, indent + "    ")
        upd = self.expr(benv, s, self.draw(st.integers(1, depth)))
        body.append(f"{indent}    {acc} = 0.5 * np.tanh({acc}) + 0.5 * ({upd})")
        lines += body
        env[acc] = s
        return lines

    def list_stmt(self, env, depth, indent):
        ys = self.fresh("ys")
        s = self.choice(SHAPES)
        K = self.draw(st.integers(1, 3))
        i = self.fresh("j")
        out = self.fresh("l")
        benv = dict(env)
        if self.coin():
            self.cons["call_stmt:append"] += 1
            lines = [f"{indent}{ys} = [{self.expr(env, s, 1)}]",
                     f"{indent}for {i} in range({K}):",
                     f"{indent}    {ys}.append(0.5 * np.tanh({ys}[{i}]) + {self.expr(benv, s, 1)})",
                     f"{indent}{out} = {ys}[0] * {ys}[{K}]"]
        else:
            self.cons["list [None] * n"] += 1
            lines = [f"{indent}{ys} = [None] * {K}",
                     f"{indent}for {i} in range({K}):",
                     f"{indent}    {ys}[{i}] = {self.expr(benv, s, 1)} * ({i} + 1.0)",
                     f"{indent}{out} = {ys}[0] + {ys}[{K - 1}]"]
        env[out] = s
        return lines

    # ------------------------------------------------------------------ helpers
    def make_helpers(self):
        for h in range(self.draw(st.integers(0, 2))):
            hname = f"{self.name}_h{h}"
            if self.coin():
                env = {"u": "S"}
                # elementwise: no shape-specific operations (run on any shape)
                prim, npn, _, dom = self.choice(self.unary)
                body = f"{npn}({self.domain_arg_ew(dom, prim)}) * u + 0.5"
                src = f"def {hname}(u):\n    return {body}\n"
                self.helpers.append((hname, src, "elementwise", ("S",), None))
            else:
                pshapes = self.choice([("N", "M"), ("NM",), ("MN",), ("NM", "N"),
                                       ("M", "N", "S"), ("NN", "M")])
                pnames = [f"q{j}" for j in range(len(pshapes))]
                env = dict(zip(pnames, pshapes))
                rshape = self.choice(SHAPES)
                inner, ishape = self.fresh("z"), self.choice(SHAPES)
                inner_e = self.expr(env, ishape, 2)
                env[inner] = ishape
                src = (f"def {hname}({', '.join(pnames)}):\n"
                       f"    {inner} = {inner_e}\n"
                       f"    return {self.expr(env, rshape, 2)}\n")
                self.helpers.append((hname, src, "inlined", pshapes, rshape))

    def domain_arg_ew(self, dom, prim):
        if dom == "positive":
            return "u * u + 0.5"
        if dom == "unit":
            return "0.5 * np.tanh(u)"
        if dom == "nonzero":
            return "np.exp(u)"
        if prim in ("exp", "expm1", "sinh", "cosh"):
            return "np.tanh(u)"
        return "u"


def allocates(src: str) -> bool:
    """Does the expression certainly evaluate to a new array (not a parameter or a view)?"""
    node = ast.parse(src.strip(), mode="eval").body
    if isinstance(node, ast.BinOp):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        f = node.func
        if isinstance(f.value, ast.Name) and f.value.id == "np":
            return f.attr not in ("transpose", "reshape")
        return f.attr in ("sum", "mean", "max", "min", "dot", "clip", "copy")
    return False


@st.composite
def programs(draw, name="f0", max_depth=3):
    """A random well-shaped differentiable program (see the module docstring)."""
    g = _Gen(draw, name)
    # n != m, from a few pairs (JAX compiles each operation once per shape)
    n, m = draw(st.sampled_from([(3, 4), (4, 3), (2, 3)]))
    # parameters: at least one of each dimension (so shapes can be built), plus a few more
    params = [("x", "N"), ("y", "M")]
    for pname, shape in (("A", "NM"), ("B", "MN"), ("C", "NN"), ("s", "S"), ("t", "S")):
        if draw(st.booleans()):
            params.append((pname, shape))
    if draw(st.integers(0, 5)) == 0:
        params.append(("K", "int"))
    order = draw(st.permutations(params))
    params = list(order)
    float_params = [p for p, s in params if s != "int"]
    wrt = list(float_params)
    if len(wrt) > 1 and draw(st.integers(0, 3)) == 0:
        wrt.remove(draw(st.sampled_from(wrt)))   # a parameter that is not differentiated
        g.cons["non-wrt parameter"] += 1
    g.make_helpers()
    env = {p: s for p, s in params}
    g.params = set(env)
    depth = draw(st.integers(1, max_depth))
    lines = []
    if draw(st.booleans()):
        g.cons["docstring"] += 1
        lines.append('    """A generated program."""')
    lines += g.block(env, depth, draw(st.integers(1, 5)), False, "    ")
    # results: one to three values, preferring what the body computed
    computed = [v for v in env if v not in dict(params)] or float_params
    k = draw(st.integers(1, min(3, len(computed))))
    outs = draw(st.lists(st.sampled_from(computed), min_size=k, max_size=k, unique=True))
    if draw(st.integers(0, 4)) == 0:
        # an early return in a value-dependent branch
        g.cons["early return"] += 1
        lines.append(f"    if {g.cond(env, 1)}:")
        lines.append(f"        return {', '.join(o + ' * 2.0' if env[o] != 'int' else o for o in outs)}")
    lines.append(f"    return {', '.join(outs)}")
    g.cons["return_stmt"] += 1
    sig = ", ".join(p for p, _ in params)
    src = f"def {name}({sig}):\n" + "\n".join(lines) + "\n"
    return Program(name, [h[1] for h in g.helpers], src, params, tuple(wrt), n, m, g.cons)


# ============================================================================ files and inputs

def write_and_import(prog: Program, directory: str, tag: str = ""):
    """Write the program's module to ``directory`` and import it (a fresh module name)."""
    mod_name = f"rop_fuzz_{prog.name}_{prog.digest}{tag}"
    path = os.path.join(directory, mod_name + ".py")
    with open(path, "w") as fh:
        fh.write(prog.module_text())
    spec = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = mod
    spec.loader.exec_module(mod)
    return mod, path


def make_inputs(prog: Program, rng):
    dims = {"n": prog.n, "m": prog.m}
    args = []
    for p, s in prog.params:
        if s == "int":
            args.append(int(rng.integers(1, 4)))
        elif s == "S":
            args.append(float(rng.uniform(-1.2, 1.2)))
        else:
            args.append(rng.uniform(-1.2, 1.2, size=tuple(dims[d] for d in DIMS[s])))
    return args


def check_parses(prog: Program):
    """The generated function and helpers are accepted by rop's grammar check."""
    from rop.frontend.grammar import check_syntax
    check_syntax(prog.source, "<fuzz>", 1)
    for h in prog.helpers:
        check_syntax(h, "<fuzz-helper>", 1)
    ast.parse(prog.module_text())
