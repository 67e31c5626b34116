"""Type information for users' editors and type checkers (issue 19 item 3).

- ``srcgrad/py.typed`` is in the package and installed with it (PEP 561);
- every public function, and every public method of a public class, annotates each parameter and its result;
- mypy in strict mode passes over the files ``[tool.mypy]`` lists in pyproject.toml (the user-facing modules and
  ``tests/typed_user_code.py``, a typed user of every public name); skipped when mypy is not installed;
- ``tests/typed_user_code.py`` runs, so what it type-checks is what srcgrad does.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import srcgrad
import srcgrad.testing

ROOT = Path(__file__).resolve().parent.parent


def public_callables() -> list[tuple[str, object]]:
    """(qualified name, function) for srcgrad's public functions and the public methods of its public classes."""
    found = []
    for module, names in ((srcgrad, srcgrad.__all__), (srcgrad.testing, ["check_grad", "numerical_grad"])):
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    target = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(target):
                        found.append((f"{module.__name__}.{name}.{attr}", target))
            elif inspect.isfunction(obj):
                found.append((f"{module.__name__}.{name}", obj))
    return found


def test_public_names_are_found():
    names = [name for name, _ in public_callables()]
    for expected in ("srcgrad.grad", "srcgrad.hessian", "srcgrad.Graph.render", "srcgrad.Explanation.graph",
                     "srcgrad.SrcgradError.__init__", "srcgrad.testing.check_grad", "srcgrad.defjvp"):
        assert expected in names


@pytest.mark.parametrize("name, func", public_callables(), ids=lambda v: v if isinstance(v, str) else "")
def test_public_signature_is_annotated(name, func):
    annotations = func.__annotations__
    missing = [p.name for p in inspect.signature(func).parameters.values()
               if p.name not in ("self", "cls") and p.name not in annotations]
    assert not missing, f"{name}: parameters without a type annotation: {missing}"
    assert "return" in annotations, f"{name}: no return annotation"


def test_py_typed_is_shipped():
    assert (ROOT / "srcgrad" / "py.typed").is_file()
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as f:
        config = tomllib.load(f)
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["srcgrad"]


def test_typed_user_code_runs():
    """In its own process: the rules it declares (softplus, count_positive) stay out of this one's rule table."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "typed_user_code.py")], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict():
    pytest.importorskip("mypy")
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found"), result.stdout
