"""Cold start (issue 21, item 4): ``import srcgrad`` loads only what generation needs, each in a fresh interpreter.

- no optional library (scipy, dask, numba, their srcgrad modules), no tool for pictures, explanations or emitted
  modules (their public names load at first use), no lazy numpy submodule (f2py, testing) and no xml/urllib;
- the built-in rule modules load with srcgrad, before any rule of the user's registers (a user's rule for a built-in
  primitive replaces the built-in one), and every thread finds them;
- modules that only some uses need (json, hashlib's OpenSSL, html, sysconfig, unicodedata) are not imported;
- a built-in rule's text is parsed at first use, from its file's lines as they were when it registered; its
  returned count is checked here, for every built-in rule, as registration checks a user's.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest

import srcgrad
from srcgrad.rules import all_rules, registry

ROOT = Path(__file__).resolve().parent.parent


def run_fresh(script: str, tmp_path: Path | None = None) -> str:
    """Run ``script`` in a fresh interpreter (from a file in ``tmp_path`` when given: srcgrad reads its source)."""
    command = ["-c", script]
    if tmp_path is not None:
        (tmp_path / "fresh.py").write_text(script)
        command = [str(tmp_path / "fresh.py")]
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


NOT_AT_IMPORT = ("scipy", "dask", "numba", "srcgrad.numba_backend", "srcgrad.numba_runtime", "srcgrad.numba_cache",
                 "srcgrad.scipy_runtime",
                 "srcgrad.drawing", "srcgrad.svg", "srcgrad.explanation", "srcgrad.standalone", "srcgrad.cli",
                 "numpy.f2py", "numpy.testing",
                 "xml.sax", "urllib.request")


def test_import_loads_no_optional_library_and_no_tool():
    out = run_fresh(f"import sys, srcgrad\nprint(sorted(m for m in {NOT_AT_IMPORT!r} if m in sys.modules))")
    assert out.strip() == "[]"


# Standard modules only some uses need (the cache, errors with wide characters, notebooks, emitted modules): those
# numpy itself did not import must not be imported by `import srcgrad`.
FIRST_USE_ONLY = ("json", "hashlib", "_hashlib", "html", "html.entities", "sysconfig", "unicodedata")


def test_import_loads_no_standard_module_that_only_some_uses_need():
    out = run_fresh(
        "import sys, numpy\n"
        f"before = {{m for m in {FIRST_USE_ONLY!r} if m in sys.modules}}\n"
        "import srcgrad\n"
        f"print(sorted(m for m in {FIRST_USE_ONLY!r} if m in sys.modules and m not in before))\n"
    )
    assert out.strip() == "[]"


def test_a_first_gradient_loads_no_printer_it_does_not_use(tmp_path):
    # (astor prints what srcgrad's own printer does not; the cache's key reads its version without importing it)
    out = run_fresh(
        "import os, sys\n"
        f"os.environ['SRCGRAD_CACHE_DIR'] = {str(tmp_path / 'cache')!r}\n"
        "os.environ['SRCGRAD_CACHE'] = '1'\n"
        "import numpy as np, srcgrad\n"
        "def f(x, n):\n"
        "    s = 0.0\n"
        "    for i in range(n):\n"
        "        if x > 0:\n"
        "            s = s + np.sin(x) * i\n"
        "    return s\n"
        "print(srcgrad.grad(f)(0.5, 3), srcgrad.cache.stats()['stores'], 'astor' in sys.modules)\n",
        tmp_path,
    )
    value, stores, astor_loaded = out.split()
    assert float(value) == pytest.approx(3 * math.cos(0.5)) and stores == "1" and astor_loaded == "False"


def test_the_lazy_public_names_are_the_tools():
    out = run_fresh(
        "import srcgrad, types\n"
        "from srcgrad import emit, Explanation\n"
        "import srcgrad.drawing as drawing, srcgrad.standalone as standalone, srcgrad.explanation as explanation\n"
        "assert srcgrad.graph is drawing.graph and srcgrad.Graph is drawing.Graph\n"
        "assert srcgrad.GraphvizNotFound is drawing.GraphvizNotFound\n"
        "assert emit is standalone.emit and Explanation is explanation.Explanation\n"
        "assert srcgrad.explain is explanation.explain\n"
        "assert {'graph', 'emit', 'explain', 'Graph'} <= set(dir(srcgrad))\n"
        "assert set(srcgrad.__all__) <= set(dir(srcgrad))\n"
        "try:\n    srcgrad.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
    )
    assert "no attribute 'no_such_name'" in out


def test_builtin_rules_register_at_import_and_read_their_declarations_at_first_use():
    # (the first gradient of a process costs what generating it costs: the table is whole at import, and cheap)
    out = run_fresh(
        "import sys, math, srcgrad\n"
        "from srcgrad.rules import registry\n"
        "print('srcgrad.rules.pymath' in sys.modules)\n"
        "rule = registry._RULES[math.sin]\n"
        "print(rule.__dict__.get('_signature') is None)\n"
        "print(rule.signature, rule.wrt)\n"
    )
    assert out.split() == ["True", "True", "(x)", "('x',)"]


def test_a_users_rule_registered_before_any_lookup_replaces_the_builtin(tmp_path):
    out = run_fresh(
        "import numpy as np, srcgrad\n"
        "@srcgrad.defgrad(np.tanh)\n"
        "def my_tanh_grad(g, ans, x):\n"
        "    return g * 7.0\n"
        "srcgrad.nondifferentiable(np.cosh)\n"
        "from srcgrad.rules import lookup\n"
        "print(lookup(np.tanh).adjoint is my_tanh_grad, lookup(np.cosh).nondiff)\n"
        "def f(x):\n"
        "    return np.tanh(x)\n"
        "print(srcgrad.grad(f)(0.5))\n",
        tmp_path,
    )
    assert out.split() == ["True", "True", "7.0"]


def test_threads_racing_to_the_first_lookup_all_find_the_rules():
    out = run_fresh(
        "import math, threading, numpy as np, srcgrad\n"
        "from srcgrad.rules import lookup\n"
        "found = []\n"
        "start = threading.Barrier(8)\n"
        "def work():\n"
        "    start.wait()\n"
        "    found.append(all(lookup(f) is not None for f in (np.sin, math.exp, np.sum, np.linalg.inv, np.where)))\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(found.count(True))\n"
    )
    assert out.strip() == "8"


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.name)
def test_every_builtin_rules_returned_count_matches_wrt(rule):
    for adjoint in (rule.adjoint, rule.scalar_adjoint):
        if adjoint is not None:
            registry.check_returned_count(adjoint, rule.wrt)


def test_the_returned_count_check_still_refuses_a_users_rule():
    def two(a, b):
        return a * b

    with pytest.raises(TypeError, match="returns 3 contributions but wrt names 2"):
        @srcgrad.defgrad(two)
        def two_grad(g, ans, a, b):
            return g * b, g * a, g
