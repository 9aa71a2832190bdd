"""Reading what rop generated: provenance, the dataflow graph and its picture, HTML for Jupyter.

    from rop.inspection import Inspection
    ins = Inspection(backprop)        # a @rop function (or its .hvp), compiled at least once
    print(ins.side_by_side())         # original line -> the generated lines, side by side
    ins.graph                         # networkx.DiGraph: nodes of kind "param", "primal", "R"
    ins.dot()                         # Graphviz DOT text (no Graphviz needed to produce it)
    ins.svg("backprop.svg")           # an SVG picture, drawn by matplotlib (no system binary)
    ins                               # in Jupyter: highlighted side-by-side code

Provenance comes from the generated code itself: rop writes ``# file.py:LINE: text`` before the
statements each source line produced, and :func:`provenance` parses those comments back.
"""

from __future__ import annotations

import html
import inspect
import re
import textwrap
from dataclasses import dataclass, field

__all__ = ["Block", "provenance", "side_by_side", "graph_text", "to_dot", "to_svg", "Inspection"]

_COMMENT = re.compile(r"^(?P<indent>\s*)# (?P<file>[^:\n]+):(?P<line>\d+): ?(?P<text>.*)$")
_DEF = re.compile(r"^def (?P<name>\w+)\(")

KIND_STYLE = {  # DOT and SVG: how each kind of node is drawn
    "param": {"shape": "ellipse", "fill": "#e8e8e8", "edge": "#555555", "box": "round,pad=0.35"},
    "primal": {"shape": "box", "fill": "#cfe2f3", "edge": "#1f4e79", "box": "square,pad=0.35"},
    "R": {"shape": "box", "style": "rounded", "fill": "#fce5cd", "edge": "#b45f06",
          "box": "round4,pad=0.35"},
    "Rparam": {"shape": "ellipse", "fill": "#fce5cd", "edge": "#b45f06", "box": "round,pad=0.35"},
}


def _style(d):
    """Drawing style of a node: by kind, directions R_W (R-nodes without a statement) as
    orange ellipses."""
    k = _kind(d)
    if k == "R" and _is_input(d):
        return KIND_STYLE["Rparam"]
    return KIND_STYLE.get(k, KIND_STYLE["primal"])


def _is_input(d):
    return d.get("kind") == "param" or ("stmt" in d and d["stmt"] is None)


# ----------------------------------------------------------------------------- provenance

@dataclass
class Block:
    """The generated lines of ``function`` that come from line ``line`` of ``file``."""
    function: str
    file: str | None
    line: int | None
    text: str
    generated: list[str] = field(default_factory=list)


def provenance(source: str) -> dict[str, list[Block]]:
    """Generated function name -> its blocks, in order, from the ``# file.py:LINE:`` comments.
    The ``def`` line forms a block of its own (``line=None``)."""
    out: dict[str, list[Block]] = {}
    cur: list[Block] | None = None
    for raw in source.splitlines():
        m = _DEF.match(raw)
        if m:
            cur = out.setdefault(m.group("name"), [])
            cur.append(Block(m.group("name"), None, None, "", [raw]))
            continue
        if cur is None:
            continue
        if raw and not raw[0].isspace():  # back at module level
            cur = None
            continue
        if not raw.strip():
            continue
        c = _COMMENT.match(raw)
        if c:
            cur.append(Block(cur[0].function, c.group("file"), int(c.group("line")),
                             c.group("text")))
        else:
            cur[-1].generated.append(raw)
    return out


def _original_lines(fn):
    """(first line number, dedented lines) of a Python function's source, or (None, [])."""
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None, []
    return first, textwrap.dedent("".join(lines)).splitlines()


def _rows(blocks: list[Block], first: int | None, orig: list[str]):
    """Rows (line number, original text, [generated lines], repeat) in the order of the
    generated code.  Original lines that produced nothing (decorators, docstrings, ``else:``)
    appear where they fall; a line whose code is generated in several places (a ``while`` test
    evaluated before, inside and after its loop) reappears with ``repeat=True``."""
    if first is None:  # no original source: the comments' text is all there is
        return [(b.line, b.text, b.generated, False) for b in blocks]
    last = first + len(orig) - 1
    def_line = first + next((i for i, t in enumerate(orig) if t.lstrip().startswith("def ")), 0)

    def text_of(ln):
        return orig[ln - first] if first <= ln <= last else ""

    rows, shown = [], first - 1

    def upto(ln):  # the original lines before ln not shown yet produced nothing
        nonlocal shown
        while shown < min(ln - 1, last):
            shown += 1
            rows.append((shown, text_of(shown), [], False))

    def emit(ln, gen):
        nonlocal shown
        if ln > shown:
            upto(ln)
            rows.append((ln, text_of(ln), gen, False))
            shown = ln
        else:
            rows.append((ln, text_of(ln), gen, True))

    lines = [def_line if b.line is None else b.line for b in blocks]
    for k, b in enumerate(blocks):
        ln, gen = lines[k], list(b.generated)
        nxt = next((m for m in lines[k + 1:] if m > ln), last + 1)
        while True:  # a generated `else:` goes to the original `else:` between here and next
            j = next((j for j, g in enumerate(gen) if g.strip() == "else:"), None)
            e = None if j is None else next(
                (e for e in range(max(ln, shown) + 1, nxt) if text_of(e).strip() == "else:"), None)
            if e is None:
                break
            emit(ln, gen[:j])
            ln, gen = e, gen[j:]
        emit(ln, gen)
    upto(last + 1)
    return rows


def _helpers_of(fn, prov, main_names):
    g = getattr(fn, "__globals__", {})
    for name in prov:
        if name in main_names:
            continue
        obj = g.get(name)
        obj = getattr(obj, "fn", obj)  # a @rop-decorated helper
        yield name, obj if inspect.isfunction(obj) else None


def _sections(fn, source: str, which: str):
    """[(title, rows)] for the generated function ``which`` ("hvp" or "primal") and helpers."""
    prov = provenance(source)
    name = fn.__name__
    main = name + "_hvp" if which == "hvp" else name
    if which not in ("hvp", "primal"):
        raise ValueError("which must be 'hvp' or 'primal'")
    out = []
    first, orig = _original_lines(fn)
    file = inspect.getsourcefile(fn) if first is not None else None
    loc = f"{file.rsplit('/', 1)[-1]}:{first}" if file else "?"
    out.append((f"{main}  <-  {name} ({loc})", _rows(prov.get(main, []), first, orig)))
    for hname, hfn in _helpers_of(fn, prov, {name, name + "_hvp"}):
        hfirst, horig = _original_lines(hfn) if hfn is not None else (None, [])
        out.append((f"{hname}  <-  helper {hname}", _rows(prov[hname], hfirst, horig)))
    return out


def side_by_side(f, which: str = "hvp", width: int = 56) -> str:
    """The generated code next to the original lines it comes from, in the order of the generated
    code: each original line (number, text) with the generated lines it produced; lines that
    produced nothing are shown where they fall, and a line whose code is generated in several
    places reappears with its number in parentheses.  ``which="primal"`` shows the compiled copy
    of the original function instead of R{·} of it."""
    fn, source = _resolve(f)[:2]
    out = []
    for title, rows in _sections(fn, source, which):
        out.append(f"== {title} ==")
        for ln, text, gen, again in rows:
            left = text if len(text) <= width else text[:width - 1] + "…"
            num = "    " if ln is None else f"({ln})".rjust(4) if again else f"{ln:>4}"
            first_gen, *rest = gen or [""]
            out.append(f"{num} | {left:<{width}} | {first_gen}".rstrip())
            for g in rest:
                out.append(f"     | {'':<{width}} | {g}".rstrip())
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------- graphs

def _kind(d):
    return d.get("kind", "primal")


def graph_text(graph) -> str:
    """One line per node: id, kind, source line, label, and its inputs (node(variable))."""
    rows = []
    order = {n: i for i, n in enumerate(graph.nodes)}  # program order: a deterministic listing
    for n, d in graph.nodes(data=True):
        preds = sorted(graph.predecessors(n), key=order.__getitem__)
        ins = ", ".join(f"{p}({graph.edges[p, n].get('var', '')})" for p in preds)
        rows.append((str(n), _kind(d), str(d.get("line", "")), d.get("label", str(n)), ins))
    w = [max((len(r[i]) for r in rows), default=0) for i in range(3)]
    head = f"# dataflow graph of {graph.graph.get('name', '?')}: {graph.number_of_nodes()} nodes, " \
           f"{graph.number_of_edges()} edges (id, kind, line, label <- inputs)"
    return "\n".join([head] + [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}  {lab}"
                               + (f"  <- {ins}" if ins else "")
                               for a, b, c, lab, ins in rows]) + "\n"


def _dot_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph) -> str:
    """The graph as Graphviz DOT text: primal statements as blue boxes, R-statements as orange
    rounded boxes, parameters as grey ellipses; each node shows its source line."""
    name = graph.graph.get("name", "rop")
    out = [f"digraph {_dot_str(name)} {{",
           "  rankdir=TB;",
           '  node [fontname="monospace", fontsize=10, style=filled];',
           '  edge [fontname="monospace", fontsize=8, color="#666666"];']
    order = {n: i for i, n in enumerate(graph.nodes)}
    for n, d in graph.nodes(data=True):
        st = _style(d)
        style = "filled" + (f",{st['style']}" if "style" in st else "")
        label = d.get("label", str(n))
        if not _is_input(d):
            label += f"\nline {d.get('line', '?')}: {d.get('source', '')}"
        out.append(f"  {_dot_str(str(n))} [label={_dot_str(label)}, shape={st['shape']}, "
                   f"style={_dot_str(style)}, fillcolor={_dot_str(st['fill'])}, "
                   f"color={_dot_str(st['edge'])}, tooltip={_dot_str(str(d.get('source', '')))}, "
                   f"class={_dot_str(_kind(d))}];")
    for u, v, d in sorted(graph.edges(data=True), key=lambda e: (order[e[0]], order[e[1]])):
        attrs = [f"label={_dot_str(str(d.get('var', '')))}"]
        if order[u] >= order[v]:
            attrs.append('style=dashed, constraint=false')  # a loop's back edge
        if _kind(graph.nodes[v]) == "R":
            attrs.append(f"color={_dot_str(KIND_STYLE['R']['edge'])}")
        out.append(f"  {_dot_str(str(u))} -> {_dot_str(str(v))} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def layers(graph) -> dict:
    """Node -> layer: topological generations of the graph without its loop back edges
    (edges to a node that comes earlier in program order)."""
    import networkx as nx
    order = {n: i for i, n in enumerate(graph.nodes)}
    dag = nx.DiGraph()
    dag.add_nodes_from(graph.nodes)
    dag.add_edges_from((u, v) for u, v in graph.edges if order[u] < order[v])
    return {n: i for i, gen in enumerate(nx.topological_generations(dag)) for n in gen}


def _positions(graph, layer_of, col_w, row_h):
    """Layered layout: rows by layer, order within a row by the barycentre of the inputs."""
    rows: dict[int, list] = {}
    order = {n: i for i, n in enumerate(graph.nodes)}
    for n in graph.nodes:
        rows.setdefault(layer_of[n], []).append(n)
    xpos = {}
    for k in sorted(rows):
        nodes = rows[k]
        if k > 0:
            def bary(n):
                ps = [xpos[p] for p in graph.predecessors(n) if p in xpos]
                return (sum(ps) / len(ps)) if ps else 1e9 + order[n]
            nodes.sort(key=lambda n: (bary(n), order[n]))
        for i, n in enumerate(nodes):
            xpos[n] = i - (len(nodes) - 1) / 2
    width = max(len(r) for r in rows.values())
    depth = len(rows)
    pos = {n: ((xpos[n] + (width - 1) / 2 + 0.5) * col_w, (depth - layer_of[n] - 0.5) * row_h)
           for n in graph.nodes}
    return pos, width * col_w, depth * row_h


def to_svg(graph, path=None, max_label: int = 34) -> str:
    """Draw the graph as SVG with matplotlib (no Graphviz binary): a layered layout (topological
    generations), primal statements as blue square boxes, R-statements as orange rounded boxes,
    parameters grey; every node shows its statement and its source line.  Text is kept as SVG
    ``<text>``; each node is a ``<g id="node-KIND-ID">``.  Writes ``path`` and returns it, or
    returns the SVG text when ``path`` is None."""
    return draw_graph(graph, path, "svg", max_label)


def draw_graph(graph, path=None, fmt: str = "svg", max_label: int = 34):
    """:func:`to_svg` for any matplotlib format (``fmt="png"`` for a bitmap)."""
    import io

    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    def short(s):
        return s if len(s) <= max_label else s[:max_label - 1] + "…"

    layer_of = layers(graph)
    labels = {}
    for n, d in graph.nodes(data=True):
        lab = short(d.get("label", str(n)))
        if not _is_input(d):
            lab += f"\nline {d.get('line', '?')}: {short(str(d.get('source', '')))}"
        labels[n] = lab
    longest = max((max(len(t) for t in lab.split("\n")) for lab in labels.values()), default=8)
    col_w, row_h = 0.075 * longest + 0.45, 0.85
    pos, w, h = _positions(graph, layer_of, col_w, row_h)
    w, h = max(w, 4.0), h + 0.6
    with plt.rc_context({"svg.fonttype": "none", "font.family": "monospace",
                         "svg.hashsalt": "rop"}):
        fig = plt.figure(figsize=(w, h))
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_xlim(0, w)
        ax.set_ylim(0, h)
        ax.axis("off")
        texts = {}
        for n, d in graph.nodes(data=True):
            st = _style(d)
            t = ax.text(*pos[n], labels[n], ha="center", va="center", fontsize=7, zorder=2,
                        bbox=dict(boxstyle=st["box"], fc=st["fill"], ec=st["edge"], lw=0.8))
            t.set_gid(f"node-{_kind(d)}-{n}")
            texts[n] = t
        order = {n: i for i, n in enumerate(graph.nodes)}
        for u, v, d in graph.edges(data=True):
            back = order[u] >= order[v]
            r_edge = _kind(graph.nodes[v]) == "R"
            ax.annotate("", xy=pos[v], xytext=pos[u], zorder=3,
                        arrowprops=dict(arrowstyle="-|>", lw=0.6, shrinkA=0, shrinkB=0,
                                        color=KIND_STYLE["R"]["edge"] if r_edge else "#666666",
                                        linestyle="--" if back else "-",
                                        connectionstyle="arc3,rad=0.35" if back else "arc3",
                                        patchA=texts[u].get_bbox_patch(),
                                        patchB=texts[v].get_bbox_patch()))
        legend = [Line2D([], [], marker="s", ls="", ms=9, mfc=KIND_STYLE[k]["fill"],
                         mec=KIND_STYLE[k]["edge"], label=lab)
                  for k, lab in (("param", "parameter / direction"), ("primal", "primal statement"),
                                 ("R", "R-statement"))]
        ax.legend(handles=legend, loc="upper left", fontsize=7, frameon=False)
        ax.set_title(f"dataflow graph of {graph.graph.get('name', '?')}", fontsize=9, y=1.0,
                     pad=-12)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, **({"metadata": {"Date": None}} if fmt == "svg" else {}))
        plt.close(fig)
    data = buf.getvalue()
    if path is None:
        return data.decode("utf-8") if fmt == "svg" else data
    with open(path, "wb") as fh:
        fh.write(data)
    return str(path)


# ----------------------------------------------------------------------------- HTML

def _highlighter():
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments comes with pytest
        return lambda code: html.escape(code)
    lexer, fmt = PythonLexer(), HtmlFormatter(nowrap=True, noclasses=True)
    return lambda code: highlight(code, lexer, fmt).rstrip("\n") if code else ""


def to_html(f, which: str = "hvp") -> str:
    """Side-by-side highlighted HTML (inline styles: works in Jupyter and static pages)."""
    fn, source = _resolve(f)[:2]
    hl = _highlighter()
    cell = ("padding:0 .8em;vertical-align:top;text-align:left;white-space:pre;"
            "font-family:monospace;font-size:12px;border:none")
    out = ['<div class="rop-inspection">']
    for title, rows in _sections(fn, source, which):
        out.append(f"<p><b>{html.escape(title)}</b></p>")
        out.append('<table style="border-collapse:collapse">')
        out.append(f'<tr><th style="{cell}">line</th><th style="{cell}">original</th>'
                   f'<th style="{cell}">generated</th></tr>')
        for ln, text, gen, again in rows:
            num = "" if ln is None else f"({ln})" if again else str(ln)
            out.append(f'<tr style="border-top:1px solid #eee"><td style="{cell};color:#999">'
                       f'{num}</td><td style="{cell}">{hl(text)}</td>'
                       f'<td style="{cell}">{hl(chr(10).join(gen))}</td></tr>')
        out.append("</table>")
    out.append("<details><summary>full generated module</summary>"
               f'<pre style="font-size:12px">{hl(source)}</pre></details>')
    out.append("</div>")
    return "\n".join(out)


# ----------------------------------------------------------------------------- the wrapper

def _resolve(f):
    """(original function, generated source, graph builder) of a RopFunction or its HVP."""
    from .api import HVP, RopFunction
    if isinstance(f, RopFunction):
        f = f.hvp
    if not isinstance(f, HVP):
        raise TypeError(f"expected a @rop function or its .hvp, not {type(f).__name__}")
    return f.owner.fn, f.source, lambda: f.graph


class Inspection:
    """What rop generated for ``f`` (a @rop function or its ``.hvp``), for reading.

    ``f`` must have been compiled (``f.hvp(...)`` or ``f.hvp.compile(*args)``) because rop
    specializes on the ranks of the arguments; the most recent specialization is shown.
    """

    def __init__(self, f):
        self._f = f
        self.function, _, self._graph_fn = _resolve(f)
        self._graph = None

    @property
    def source(self) -> str:
        return _resolve(self._f)[1]

    @property
    def provenance(self) -> dict[str, list[Block]]:
        return provenance(self.source)

    @property
    def graph(self):
        if self._graph is None:
            self._graph = self._graph_fn()
        return self._graph

    def side_by_side(self, which: str = "hvp", width: int = 56) -> str:
        return side_by_side(self._f, which, width)

    def graph_text(self) -> str:
        return graph_text(self.graph)

    def dot(self) -> str:
        return to_dot(self.graph)

    def svg(self, path=None) -> str:
        return to_svg(self.graph, path)

    def html(self, which: str = "hvp") -> str:
        return to_html(self._f, which)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return self.side_by_side()
