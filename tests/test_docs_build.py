"""The documentation site builds (``mkdocs build --strict``, which runs the generators in
docs/ and so compiles and checks every example), and the pages generated from rop's output
(docs/gallery.md, the worked example in docs/layout.md) are what docs/gen_gallery.py produces
now, so they cannot drift from the compiler or the examples."""

from __future__ import annotations

import difflib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen_gallery", ROOT / "docs" / "gen_gallery.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for page in ("index.html", "guide/index.html", "cli/index.html", "inspection/index.html",
                 "layout/index.html", "gallery/index.html", "rules/index.html",
                 "grammar/index.html", "api/index.html"):
        assert (site / page).exists(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "wrt" in api and "hvp" in api  # the docstrings, rendered
    gallery = (site / "gallery" / "index.html").read_text(encoding="utf-8")
    assert "backprop_hvp" in gallery and "R_y1" in gallery


def test_generated_pages_are_current():
    gen = _generator()
    for path, expected in gen.outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != expected:
            diff = "".join(difflib.unified_diff(current.splitlines(True),
                                                expected.splitlines(True), str(path),
                                                "generated", n=1))
            pytest.fail(f"{path.relative_to(ROOT)} is out of date: run "
                        f"`python docs/gen_gallery.py`\n{diff[:4000]}", pytrace=False)


def test_gallery_covers_every_example():
    gen = _generator()
    text = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    for path in sorted((ROOT / "examples").glob("*.py")):
        if path.name.startswith("_"):
            continue
        for name, _ in gen.rop_functions(gen._load(path)):
            assert f"## `examples/{path.name}:{name}`" in text, (path.name, name)
