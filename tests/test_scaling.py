"""Generation scales with the length of the function (issue 13 item 6): long straight-line chains generate, with
the right gradient, and nothing in the pipeline recurses once per statement (timing: benchmarks/generation.py).

Before: copy propagation in the fuse pass was quadratic (19 s at 800 scalar statements), and 170 array statements
fused into one expression so deep that printing it raised RecursionError (an InternalError)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad import fuse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.generation import arguments, central_difference, chain_module  # noqa: E402

N = 2000


def expression_height(node: ast.AST) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(item) if isinstance(child, ast.expr))
    return deepest


def generate_shallowly(make) -> object:
    """Run ``make()`` with a recursion limit only a little above the current depth: a pipeline recursing once per
    statement (or printing a 2,000-level expression) would need thousands of frames."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 400)
    try:
        return make()
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("kind", ["scalar chain", "array chain"])
def test_a_long_chain_generates_with_the_right_gradient(tmp_path, kind):
    f = chain_module(kind, N, tmp_path).f
    args = arguments(kind)
    gradient = srcgrad.grad(f)
    value = generate_shallowly(lambda: gradient(*args))
    np.testing.assert_allclose(value, central_difference(f, args), rtol=1e-5, atol=1e-8)
    tree = ast.parse(srcgrad.source(gradient))
    statements = [node for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))]
    assert len(statements) > N  # (every user statement is still there, forward and reverse)
    assert max(expression_height(s.value) for s in statements) <= fuse.MAX_HEIGHT + 2


def test_the_array_chain_that_overflowed_the_printer(tmp_path):
    """170 statements of ``s = np.tanh(s) * 1.0001`` raised InternalError (RecursionError in fuse)."""
    f = chain_module("array chain", 170, tmp_path).f
    (x,) = arguments("array chain")
    np.testing.assert_allclose(srcgrad.grad(f)(x), central_difference(f, (x,)), rtol=1e-5, atol=1e-8)
    value, _ = srcgrad.value_and_grad(f)(x)
    assert value == pytest.approx(f(x))
