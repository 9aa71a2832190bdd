"""MkDocs hooks (mkdocs.yml: ``hooks: [docs/hooks.py]``).

* Before every build the generators run (``docs/gen_reference.py``: rules.md, grammar.md;
  ``docs/gen_gallery.py``: gallery.md and the worked example of layout.md, which compiles every
  example and checks its Hv against central differences — a failure fails the build), and
  the site shows their output, not the committed files: it cannot show anything but what the
  code does now.  That the committed files are up to date is tested by tests/test_docs.py and
  tests/test_docs_build.py.
* Links from a page to a repository file outside ``docs/`` (``../grammar/README.md``) are
  checked to exist and rewritten to the repository (``repo_url``) or, without one, to the
  file's path in code type: the site does not contain those files.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\(\.\./(?P<path>[^)#\s]+)(?P<anchor>#[^)\s]*)?\)")


def _generator(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_FRESH: dict[str, str] = {}  # page path relative to docs/ -> the generator's text


def on_pre_build(config, **kwargs):
    _FRESH.clear()
    docs = Path(config["docs_dir"]).resolve()
    for name in ("gen_reference", "gen_gallery"):
        gen = _generator(name)
        try:
            outputs = gen.outputs()
        except SystemExit as exc:
            raise PluginError(f"docs/{name}.py failed: {exc}") from None
        for path, text in outputs.items():
            _FRESH[Path(path).resolve().relative_to(docs).as_posix()] = text


def on_page_markdown(markdown, page, config, files, **kwargs):
    markdown = _FRESH.get(page.file.src_uri, markdown)
    def repl(m):
        target = ROOT / m.group("path")
        if not target.exists():
            raise PluginError(f"{page.file.src_path}: link to ../{m.group('path')}, which is "
                              "not a file of the repository")
        repo = (config.get("repo_url") or "").rstrip("/")
        if repo:
            return f"[{m.group('text')}]({repo}/blob/main/{m.group('path')}{m.group('anchor') or ''})"
        text = m.group("text")
        return text if text.strip("`") == m.group("path") else f"{text} (`{m.group('path')}`)"
    return _LINK.sub(repl, markdown)
