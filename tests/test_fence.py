"""The whole fence (issue 8): every statement and expression node type of Python's ``ast`` (and every operator), for
the running Python version, is either differentiated correctly or rejected with a clean error.

``NODES`` maps each node type to a function that uses it and a verdict:
- ``SUPPORTED``: the gradient of the function must match central differences (``check_grad``);
- ``REJECTED``: the first call must raise a :class:`srcgrad.SrcgradError` (not an internal error) whose location
  names the module file and the line marked ``# <-`` (a column within that line), and whose text shows that line.
Moving a node type from rejected to supported is a one-word change of its verdict: the same function is then checked
against finite differences. Node types that appear in a newer Python have their own entries; a node type of the
running Python that is in no table fails ``test_every_node_type_has_an_entry``.

The functions are source text written to module files (a node type from a newer Python would be a syntax error
here), imported, and differentiated as users' functions are.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

SUPPORTED, REJECTED = "supported", "rejected"
MARK = "# <-"


@dataclass(frozen=True)
class Entry:
    verdict: str
    source: str  # defines `f` (and whatever it needs) at module level
    args: tuple = (0.7,)
    since: tuple = (3, 0)  # the first Python version with this syntax
    bug: str | None = None  # a known bug: the check is expected to fail (strict xfail) until it is fixed


NODES = {
    # --- statements ------------------------------------------------------------------------------------------
    "FunctionDef": Entry(SUPPORTED, """
        def f(x):
            def inner(v):
                return v * v * 2.0
            return inner(x) + x
    """),
    "AsyncFunctionDef": Entry(REJECTED, """
        async def f(x):  # <-
            return x * 2.0
    """),
    "ClassDef": Entry(REJECTED, """
        def f(x):
            class Box:  # <-
                pass
            return x * 2.0
    """),
    "Return": Entry(SUPPORTED, """
        def f(x):
            return x * 2.0
    """),
    "Delete": Entry(REJECTED, """
        def f(x):
            y = x * 2.0
            del y  # <-
            return x
    """),
    "Assign": Entry(SUPPORTED, """
        def f(x):
            y = x * 3.0
            a, b = y, x
            return a * b
    """),
    "AugAssign": Entry(SUPPORTED, """
        def f(x):
            y = x
            y += x * x
            y *= x
            return y
    """),
    "AnnAssign": Entry(SUPPORTED, """
        def f(x):
            y: float = x * 2.0
            return y * x
    """),
    "For": Entry(SUPPORTED, """
        def f(x):
            s = 0.0
            for i in range(3):
                s = s + x * i
            return s * x
    """),
    "AsyncFor": Entry(REJECTED, """
        async def f(x):  # <-
            async for v in x:
                pass
            return x
    """),
    "While": Entry(SUPPORTED, """
        def f(x):
            s = x
            k = 0
            while k < 3:
                s = s * x
                k = k + 1
            return s
    """),
    "If": Entry(SUPPORTED, """
        def f(x):
            if x > 0.5:
                y = x * x
            else:
                y = -x
            return y
    """, args=(0.7,)),
    "With": Entry(SUPPORTED, """
        def f(x):
            with np.errstate(all="ignore"):
                y = x * 2.0
            return y
    """),
    "AsyncWith": Entry(REJECTED, """
        async def f(x):  # <-
            async with x:
                pass
            return x
    """),
    "Match": Entry(REJECTED, """
        def f(x):
            match x:  # <-
                case _:
                    y = x * 2.0
            return y
    """, since=(3, 10)),
    "Raise": Entry(SUPPORTED, """
        def f(x):
            if x > 10.0:
                raise ValueError("too big")
            return x * 2.0
    """),
    "Try": Entry(SUPPORTED, """
        def f(x):
            try:
                y = math.log(x - 1.0) * x
            except ValueError:
                y = x * x
            return y
    """, args=(0.7,)),
    "TryStar": Entry(REJECTED, """
        def f(x):
            try:  # <-
                y = x * 2.0
            except* ValueError:
                y = x
            return y
    """, since=(3, 11)),
    "Assert": Entry(SUPPORTED, """
        def f(x):
            assert x == x, "not a number"
            return x * 2.0
    """),
    "Import": Entry(REJECTED, """
        def f(x):
            import os  # <-
            return x * 2.0
    """),
    "ImportFrom": Entry(REJECTED, """
        def f(x):
            from os import path  # <-
            return x * 2.0
    """),
    "Global": Entry(REJECTED, """
        COUNTER = 0.0
        def f(x):
            global COUNTER  # <-
            COUNTER = x
            return x * 2.0
    """),
    "Nonlocal": Entry(REJECTED, """
        def make():
            c = 1.0
            def f(x):
                nonlocal c  # <-
                c = x
                return x * c
            return f
        f = make()
    """),
    "Expr": Entry(SUPPORTED, """
        def f(x):
            "A docstring is an expression statement."
            math.sin(x)
            return x * 2.0
    """),
    "Pass": Entry(SUPPORTED, """
        def f(x):
            pass
            return x * 2.0
    """),
    "Break": Entry(SUPPORTED, """
        def f(x):
            s = x
            for i in range(5):
                s = s * x
                if i == 2:
                    break
            return s
    """),
    "Continue": Entry(SUPPORTED, """
        def f(x):
            s = x
            for i in range(5):
                if i % 2 == 0:
                    continue
                s = s * x
            return s
    """),
    "TypeAlias": Entry(REJECTED, """
        def f(x):
            type Number = float  # <-
            return x * 2.0
    """, since=(3, 12)),
    # --- expressions -----------------------------------------------------------------------------------------
    "BoolOp": Entry(SUPPORTED, """
        def f(x):
            if x > 0.0 and x < 1.0 or x > 5.0:
                return x * x
            return x
    """),
    "NamedExpr": Entry(SUPPORTED, """
        def f(x):
            if (y := x * 2.0) > 1.0:
                return y
            return x
    """),
    "BinOp": Entry(SUPPORTED, """
        def f(x):
            return (x + 1.0) * (x - 2.0) / (x ** 2 + 1.0)
    """),
    "UnaryOp": Entry(SUPPORTED, """
        def f(x):
            return -x * +x
    """),
    "Lambda": Entry(SUPPORTED, """
        def f(x):
            g = lambda v: v * v * 2.0
            return g(x)
    """),
    "IfExp": Entry(SUPPORTED, """
        def f(x):
            return x * x if x > 0.0 else -x
    """),
    "Dict": Entry(SUPPORTED, """
        def f(x):
            d = {"a": x}
            return d["a"] * 2.0
    """),
    "Set": Entry(REJECTED, """
        def f(x):
            s = {x}  # <-
            return len(s) * x
    """),
    "ListComp": Entry(SUPPORTED, """
        def f(x):
            return sum([x * i for i in range(3)])
    """),
    "SetComp": Entry(REJECTED, """
        def f(x):
            s = {x * i for i in range(3)}  # <-
            return len(s) * x
    """),
    "DictComp": Entry(SUPPORTED, """
        def f(x):
            d = {i: x * i for i in range(3)}
            return d[1] + d[2] * x
    """),
    "GeneratorExp": Entry(SUPPORTED, """
        def f(x):
            return sum(x * i for i in range(3))
    """),
    "Await": Entry(REJECTED, """
        async def f(x):  # <-
            return await x
    """),
    "Yield": Entry(REJECTED, """
        def f(x):
            yield x * 2.0  # <-
    """),
    "YieldFrom": Entry(REJECTED, """
        def f(x):
            yield from [x]  # <-
    """),
    "Compare": Entry(SUPPORTED, """
        def f(x):
            if 0.0 < x <= 1.0:
                return x * 3.0
            return x
    """),
    "Call": Entry(SUPPORTED, """
        def f(x):
            return math.sin(x) * np.exp(x)
    """),
    "FormattedValue": Entry(SUPPORTED, """
        def f(x):
            label = f"{x!r:>10}"
            return x * 2.0
    """),
    "JoinedStr": Entry(SUPPORTED, """
        def f(x):
            label = f"x = {x}"
            return x * 2.0
    """),
    "TemplateStr": Entry(REJECTED, """
        def f(x):
            label = t"x = {x}"  # <-
            return x * 2.0
    """, since=(3, 14)),
    "Interpolation": Entry(REJECTED, """
        def f(x):
            label = t"{x!r}"  # <-
            return x * 2.0
    """, since=(3, 14)),
    "Constant": Entry(SUPPORTED, """
        def f(x):
            return x * 2.5 + 1
    """),
    "Attribute": Entry(SUPPORTED, """
        def f(x):
            return math.pi * x * x
    """),
    "Subscript": Entry(SUPPORTED, """
        def f(x):
            return x[0] * x[-1]
    """, args=(np.array([0.5, 1.5, 2.5]),)),
    "Starred": Entry(REJECTED, """
        def f(x):
            args = (x,)
            return math.sin(*args)  # <-
    """),
    "Name": Entry(SUPPORTED, """
        def f(x):
            y = x
            return y * SCALE
        SCALE = 3.0
    """),
    "List": Entry(SUPPORTED, """
        def f(x):
            v = [x, x * x]
            return v[0] + v[1]
    """),
    "Tuple": Entry(SUPPORTED, """
        def f(x):
            a, b = x, x * 2.0
            return a * b
    """),
    "Slice": Entry(SUPPORTED, """
        def f(x):
            return np.sum(x[1:] * x[:-1]) + np.sum(x[::2])
    """, args=(np.array([0.5, 1.5, 2.5]),)),
}

OPERATORS = {
    # --- ast.operator ---
    "Add": Entry(SUPPORTED, "def f(x):\n    return x + x * 2.0\n"),
    "Sub": Entry(SUPPORTED, "def f(x):\n    return 1.0 - x * 2.0\n"),
    "Mult": Entry(SUPPORTED, "def f(x):\n    return x * x\n"),
    "MatMult": Entry(SUPPORTED, "def f(x):\n    return x @ x\n", args=(np.array([0.5, 1.5]),)),
    "Div": Entry(SUPPORTED, "def f(x):\n    return 1.0 / x\n"),
    "Mod": Entry(SUPPORTED, "def f(x):\n    return (x * 3.0) % 1.5\n"),
    "Pow": Entry(SUPPORTED, "def f(x):\n    return x ** 3 + 2.0 ** x\n"),
    "FloorDiv": Entry(SUPPORTED, "def f(x):\n    return (x // 0.5) * x\n"),
    # bitwise operators: of integers and masks, no derivative (a float raises TypeError, as in Python)
    "LShift": Entry(SUPPORTED, "def f(x, k=3):\n    return x * (1 << k)\n"),
    "RShift": Entry(SUPPORTED, "def f(x, k=8):\n    return x * (k >> 2)\n"),
    "BitOr": Entry(SUPPORTED, "def f(x):\n    return np.sum(x * ((x < 0.0) | (x > 1.0)))\n",
                   args=(np.array([-0.5, 0.5, 1.5]),)),
    "BitXor": Entry(SUPPORTED, "def f(x):\n    return np.sum(x * ((x < 1.0) ^ (x > 0.0)))\n",
                    args=(np.array([-0.5, 0.5, 1.5]),)),
    "BitAnd": Entry(SUPPORTED, "def f(x):\n    return np.sum(x * ((x > 0.0) & (x < 1.0)))\n",
                    args=(np.array([-0.5, 0.5, 1.5]),)),
    # --- ast.unaryop ---
    "Invert": Entry(SUPPORTED, "def f(x):\n    return np.sum(x ** 2 * ~(x > 0.0)) + ~3 * x[0]\n",
                    args=(np.array([-0.5, 0.5, 1.5]),)),
    "Not": Entry(SUPPORTED, "def f(x):\n    if not x > 1.0:\n        return x * x\n    return x\n"),
    "UAdd": Entry(SUPPORTED, "def f(x):\n    return +x * x\n"),
    "USub": Entry(SUPPORTED, "def f(x):\n    return -x * x\n"),
    # --- ast.cmpop ---
    "Eq": Entry(SUPPORTED, "def f(x):\n    if x == 0.25:\n        return x\n    return x * x\n"),
    "NotEq": Entry(SUPPORTED, "def f(x):\n    if x != 0.25:\n        return x * x\n    return x\n"),
    "Lt": Entry(SUPPORTED, "def f(x):\n    if x < 1.0:\n        return x * x\n    return x\n"),
    "LtE": Entry(SUPPORTED, "def f(x):\n    if x <= 1.0:\n        return x * x\n    return x\n"),
    "Gt": Entry(SUPPORTED, "def f(x):\n    if x > 1.0:\n        return x\n    return x * x\n"),
    "GtE": Entry(SUPPORTED, "def f(x):\n    if x >= 1.0:\n        return x\n    return x * x\n"),
    "Is": Entry(SUPPORTED, "def f(x, k=None):\n    if k is None:\n        return x * x\n    return x\n"),
    "IsNot": Entry(SUPPORTED, "def f(x, k=None):\n    if k is not None:\n        return x\n    return x * x\n"),
    "In": Entry(SUPPORTED, "def f(x, n=2):\n    if n in (1, 2):\n        return x * x\n    return x\n"),
    "NotIn": Entry(SUPPORTED, "def f(x, n=2):\n    if n not in (1, 2):\n        return x\n    return x * x\n"),
    # --- ast.boolop ---
    "And": Entry(SUPPORTED, "def f(x):\n    if x > 0.0 and x < 1.0:\n        return x * x\n    return x\n"),
    "Or": Entry(SUPPORTED, "def f(x):\n    if x < 0.0 or x > 1.0:\n        return x\n    return x * x\n"),
}

PRELUDE = "import math\n\nimport numpy as np\n\n\n"


def node_types(base: type) -> set[str]:
    """The concrete node types of the running Python deriving directly from ``base`` (deprecated aliases such as
    ``ast.Num`` derive from ``ast.Constant`` and are not produced by the parser)."""
    return {cls.__name__ for cls in base.__subclasses__() if cls.__module__ == "ast"}


def test_every_node_type_has_an_entry():
    statements_and_expressions = node_types(ast.stmt) | node_types(ast.expr)
    missing = sorted(statements_and_expressions - set(NODES))
    assert not missing, f"node types with no fence entry (add them to NODES, supported or rejected): {missing}"
    operators = set().union(*(node_types(b) for b in (ast.operator, ast.unaryop, ast.cmpop, ast.boolop)))
    missing_ops = sorted(operators - set(OPERATORS))
    assert not missing_ops, f"operator types with no fence entry (add them to OPERATORS): {missing_ops}"
    assert all(e.verdict in (SUPPORTED, REJECTED) for e in {**NODES, **OPERATORS}.values())


def _cases(table: dict) -> list:
    cases = []
    for name, entry in table.items():
        marks = [pytest.mark.skipif(sys.version_info < entry.since,
                                    reason=f"{name} is Python {'.'.join(map(str, entry.since))}+ syntax")]
        if entry.bug:
            marks.append(pytest.mark.xfail(strict=True, reason=entry.bug))
        cases.append(pytest.param(name, entry, id=name, marks=marks))
    return cases


def _load(name: str, entry: Entry, tmp_path) -> tuple:
    source = PRELUDE + textwrap.dedent(entry.source).strip("\n") + "\n"
    path = tmp_path / f"fence_{name.lower()}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path, source.splitlines()


def _node_is_used(name: str, source: str) -> bool:
    kind = getattr(ast, name)
    return any(isinstance(n, kind) for n in ast.walk(ast.parse(source)))


def _check(name: str, entry: Entry, tmp_path) -> None:
    module, path, lines = _load(name, entry, tmp_path)
    assert _node_is_used(name, "\n".join(lines)), f"the function for {name} does not contain a {name} node"
    if entry.verdict == SUPPORTED:
        check_grad(module.f, *entry.args)
        return
    marked = [i + 1 for i, text in enumerate(lines) if text.rstrip().endswith(MARK)]
    assert len(marked) == 1, f"the source of {name} must mark the rejected line with {MARK!r}"
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(module.f)(*entry.args)
    err = info.value
    text = str(err)
    assert not isinstance(err, srcgrad.InternalError), text
    loc = err.location
    assert loc is not None, f"{name}: the error names no location:\n{text}"
    assert loc.filename == str(path), text
    assert loc.line == marked[0], f"{name}: error at line {loc.line}, expected {marked[0]}:\n{text}"
    source_line = lines[loc.line - 1]
    assert 0 <= loc.col < len(source_line.split(MARK)[0].rstrip()), f"{name}: column {loc.col} is off:\n{text}"
    assert f"{path}:{loc.line}:{loc.col + 1}" in text, text
    assert source_line.strip() in text, f"{name}: the error does not show the line:\n{text}"
    assert re.search(r"\n\s*\^", text), f"{name}: no caret under the column:\n{text}"


@pytest.mark.parametrize("name,entry", _cases(NODES))
def test_node_type(name, entry, tmp_path):
    _check(name, entry, tmp_path)


@pytest.mark.parametrize("name,entry", _cases(OPERATORS))
def test_operator(name, entry, tmp_path):
    _check(name, entry, tmp_path)
