"""rop.inspection in-process: provenance parsed from the generated comments, the side-by-side
view, the HTML for Jupyter, DOT and SVG of the dataflow graph."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from rop.inspection import Inspection, provenance, side_by_side, to_dot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import deep_mlp  # noqa: E402
import mlp  # noqa: E402


@pytest.fixture(scope="module")
def ins():
    z = np.zeros
    mlp.backprop.hvp.compile(z((3, 2)), z(3), z((2, 3)), z(2), z((2, 5)), z((2, 5)))
    return Inspection(mlp.backprop)


def test_provenance_blocks(ins):
    prov = provenance(ins.source)
    assert set(prov) == {"sigmoid", "backprop", "backprop_hvp"}
    blocks = prov["backprop_hvp"]
    assert blocks[0].line is None and blocks[0].generated[0].startswith("def backprop_hvp(")
    b20 = next(b for b in blocks if b.line == 20)
    assert b20.file == "mlp.py" and b20.text == "y1 = sigmoid(W1 @ X + b1[:, None])"
    assert [g.strip() for g in b20.generated] == [
        "y1 = sigmoid(rt.gemm(W1, X, c=b1[:, None]))  # = sigmoid(W1 @ X + b1[:, None])",
        "R_y1 = y1 * (1.0 - y1) * rt.gemm(R_W1, X, c=R_b1[:, None])  "
        "# = y1 * (1.0 - y1) * (R_W1 @ X + R_b1[:, None])"]


def test_side_by_side(ins):
    text = ins.side_by_side()
    assert text == side_by_side(mlp.backprop.hvp)
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("  20 |"))
    assert "y1 = sigmoid(W1 @ X + b1[:, None])" in lines[i]
    assert lines[i + 1].startswith("     |") and "R_y1 = y1 * (1.0 - y1)" in lines[i + 1]
    assert any(line.startswith("  19 |") and '"""Gradient' in line for line in lines)
    assert "== sigmoid  <-  helper sigmoid ==" in text
    assert "R_y1" not in ins.side_by_side(which="primal")


def test_else_lands_on_its_own_line():
    z = np.zeros
    deep_mlp.backprop.hvp.compile([z((4, 3)), z((2, 4))], [z(4), z(2)], z((3, 5)), z((2, 5)))
    lines = side_by_side(deep_mlp.backprop).splitlines()
    row = next(line for line in lines if line.startswith("  27 |"))
    assert row.split("|")[1].strip() == "else:" and row.split("|")[2].strip() == "else:"


def test_html(ins):
    html = ins._repr_html_()
    assert html.startswith('<div class="rop-inspection">') and "<table" in html
    assert "<span" in html  # highlighted by pygments
    assert "R_y1" in html and "&lt;-" in html


def test_dot_and_svg(ins, tmp_path):
    dot = ins.dot()
    assert dot == to_dot(ins.graph) and dot.startswith('digraph "backprop"')
    svg = ins.svg()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    path = ins.svg(tmp_path / "g.svg")
    assert Path(path).read_text() == svg  # deterministic
    assert ins.graph_text().count("\n") == ins.graph.number_of_nodes() + 1


def test_needs_a_compiled_function():
    from rop import rop
    from rop.errors import RopCallError
    f = rop(mlp.sigmoid, wrt="x")
    with pytest.raises(RopCallError, match="nothing compiled yet"):
        Inspection(f).source
    with pytest.raises(TypeError):
        Inspection(mlp.sigmoid)
