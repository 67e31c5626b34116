"""The documentation (issue 19 items 2 and 4): the README and the site's pages say what srcgrad does.

- ``mkdocs build --strict`` passes (a broken link, or a public name without a docstring, fails it: see
  ``scripts/griffe_docs.py``); skipped when mkdocs is not installed (``pip install -e '.[docs]'``).
- Every output shown in the README and in ``docs/*.md`` is srcgrad's real output: a fenced block preceded by
  ``<!-- docs-check: EXPR -->`` must read ``str(EXPR)`` (after a first line ``>>> ...`` when it shows the call), with
  ``EXPR`` evaluated with ``srcgrad``, ``np``, ``math``, the seed equations (``examples/seed.py``) and the golden cases
  (``gc``). Regenerate deliberately with ``SRCGRAD_UPDATE_GOLDEN=1``, like golden files.
- The README is the front page: its quickstart commands are the two that work from a fresh clone, and its relative
  links lead to files that exist.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import srcgrad

ROOT = Path(__file__).resolve().parent.parent
UPDATE = os.environ.get("SRCGRAD_UPDATE_GOLDEN") == "1"
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
CHECKED_BLOCK = re.compile(r"<!-- docs-check: (?P<expr>.+?) -->\n```[a-z]*\n(?P<body>.*?)```\n", re.S)


def namespace() -> dict:
    spec = importlib.util.spec_from_file_location("seed", ROOT / "examples" / "seed.py")
    seed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed)
    import golden_cases

    names = {"srcgrad": srcgrad, "np": np, "math": math, "gc": golden_cases}
    names.update({name: getattr(seed, name) for name in ("eq1", "eq2", "eq3", "eq4")})
    return names


def expected_body(expr: str, body: str, names: dict) -> str:
    shown = str(eval(expr, dict(names))).rstrip("\n") + "\n"  # noqa: S307 - expressions written in our own docs
    first = body.split("\n", 1)[0]
    return f"{first}\n{shown}" if first.startswith(">>> ") else shown


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_shown_outputs_are_current(page):
    text = page.read_text(encoding="utf-8")
    names = namespace()
    stale = []

    def check(match: re.Match) -> str:
        want = expected_body(match["expr"], match["body"], names)
        if want != match["body"]:
            stale.append(match["expr"])
        return match[0][: match.start("body") - match.start()] + want + "```\n"

    updated = CHECKED_BLOCK.sub(check, text)
    if UPDATE and updated != text:
        page.write_text(updated, encoding="utf-8")
        return
    assert not stale, f"{page.name}: stale output for {stale} (regenerate with SRCGRAD_UPDATE_GOLDEN=1)"


def test_checked_blocks_are_found():
    counts = {page.name: len(CHECKED_BLOCK.findall(page.read_text(encoding="utf-8"))) for page in PAGES}
    assert counts["README.md"] >= 1 and counts["getting-started.md"] >= 8 and counts["control-flow.md"] >= 2


def test_a_stale_block_is_caught():
    names = namespace()
    body = "def eq3_grad(x):\n    return 0.0\n"
    assert expected_body("srcgrad.source(srcgrad.grad(eq3), 1.5)", body, names) != body
    shown = ">>> print(srcgrad.graph(eq1))\n"
    assert expected_body("srcgrad.graph(eq1)", shown, names).startswith(shown + "def eq1(x):\n")


def test_readme_quickstart_and_links():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && python examples/seed.py" in readme
    assert "pip install -e '.[test]' && python -m pytest" in readme
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not re.match(r"[a-z]+:", target):
            assert (ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_readme_keeps_the_section_error_hints_name():
    """The fence's generic hint sends users to "the README, 'What srcgrad differentiates'"."""
    assert re.search(r"^## What srcgrad differentiates$", (ROOT / "README.md").read_text(encoding="utf-8"), re.M)


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "index.html").exists()
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    documented = {heading.rsplit(".", 1)[-1] for heading in re.findall(r'<h3 id="([\w.]+)"', api)}
    missing = [name for name in srcgrad.__all__ if not name.startswith("_") and name not in documented]
    assert not missing, f"the API reference has no entry for {missing}"
    assert "build_model" not in api, "a module was documented where its function was meant (srcgrad.graph)"
    assert time.perf_counter() - start < 300
