"""srcgrad.gast_tree.to_gast builds the tree gast.ast_to_gast builds (classes, fields, positions), and the fence's
walk visits what gast.walk visits, over whole source trees: srcgrad's own, its tests, and numpy's."""

import ast
import math
from pathlib import Path

import gast
import numpy as np
import pytest

from srcgrad import frontend
from srcgrad.gast_tree import to_gast

ROOT = Path(__file__).resolve().parents[2]


def _difference(a, b, path="tree"):
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := _difference(x, y, f"{path}[{i}]"))), None)
    if isinstance(a, gast.AST):
        if set(vars(a)) != set(vars(b)):
            return f"{path}: fields {sorted(vars(a))} vs {sorted(vars(b))}"
        return next((d for k in vars(a) if (d := _difference(vars(a)[k], vars(b)[k], f"{path}.{k}"))), None)
    same = a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    return None if same else f"{path}: {a!r} vs {b!r}"


def _files():
    yield from sorted((ROOT / "srcgrad").rglob("*.py"))
    yield from sorted((ROOT / "tests").rglob("*.py"))
    yield from sorted(Path(np.__file__).parent.rglob("*.py"))[:30]


SNIPPETS = [
    "def f(a, /, b=1, *c, d, e=2, **g) -> int:\n    '''doc'''\n    return a\n",
    "async def f(x):\n    async with x as y:\n        await y\n    async for z in y:\n        pass\n",
    "class C(B, metaclass=M):\n    x: int = 1\n    def m(self):\n        return super().m()\n",
    "try:\n    pass\nexcept (A, B) as e:\n    raise X from e\nexcept C:\n    pass\n"
    "else:\n    pass\nfinally:\n    pass\n",
    "x = [i for i in y if i]\ny = {k: v for k, v in z}\nz = {a for a in b}\nw = (a for a in b)\n",
    "lambda x, *y, **z: (x, y, z)\nf'{x!r:>{w}}'\nx[1:2, ::3, ...]\n",
    "with a as (b, c), d:\n    del e[0], f.g\nglobal h\nimport i.j as k\nfrom . import l\n",
    "match p:\n    case [1, *rest] if rest:\n        pass\n    case {'k': v, **kw}:\n        pass\n"
    "    case C(a, b=c) | None:\n        pass\n",
]


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.name))
def test_a_source_file_converts_as_gast_converts_it(path):
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        pytest.skip("not parseable here")
    converted = to_gast(tree)
    assert _difference(gast.ast_to_gast(tree), converted) is None
    # the fence's walk (ParsedFunction.nodes) visits what gast.walk visits, in its order
    walked = frontend.walk(converted)
    assert len(walked) == len(list(gast.walk(converted)))
    assert all(a is b for a, b in zip(walked, gast.walk(converted)))


@pytest.mark.parametrize("text", SNIPPETS)
def test_every_kind_of_statement_converts_as_gast_converts_it(text):
    tree = ast.parse(text)
    assert _difference(gast.ast_to_gast(tree), to_gast(tree)) is None
