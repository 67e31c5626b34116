"""The user's names survive (issue 12 item 8): srcgrad knows its own temporaries and adjoints because it recorded
them where it made them (ir.Function.temporaries, Program.adjoints), never by their spelling. A user variable called
``t9``, ``x_bar``, ``t2_bar``, ``tape``, ``seed``... is the user's: it stays in the generated text under its name,
and the gradient is right."""

import ast
import math
import re

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def single_use_t9(x):
    t9 = x * 2.0  # read once, by a linear op: the fuse pass took it for a temporary and folded it away
    y = t9 + 1.0
    return y * y


def spelled_like_srcgrad(x):
    t1 = x * 2.0
    t9 = math.sin(t1)
    x_bar = t9 * x
    t2_bar = x_bar + 1.0
    tape = t2_bar * t2_bar
    seed = tape * 0.5
    n_iter = seed + x
    value = n_iter * 3.0
    return value


def loop_with_our_names(x, n):
    s = 0.0
    tape = 1.0
    for i in range(n):
        t9 = math.sin(x * i + tape)
        x_bar = t9 * x
        s = s + x_bar
        tape = tape * 0.5
    return s


def arrays_with_our_names(x):
    t3 = np.tanh(x)
    t3_bar = t3 * 2.0
    s_1_bar = np.sum(t3_bar ** 2)
    return s_1_bar


def code(source: str) -> str:
    """The generated text without its comments (which quote the user's lines: a name there proves nothing)."""
    return ast.unparse(ast.parse(source))


def assigned_names(source: str) -> set[str]:
    tree = ast.parse(source)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def test_a_single_use_variable_named_like_a_temporary_survives():
    text = code(srcgrad.source(srcgrad.grad(single_use_t9), 0.7))
    assert "t9 = x * 2.0" in text
    assert "y = t9 + 1.0" in text
    check_grad(single_use_t9, 0.7)
    assert srcgrad.grad(single_use_t9)(0.7) == pytest.approx(2 * (2 * 0.7 + 1.0) * 2.0)


@pytest.mark.parametrize("x", [0.7, -1.3, np.float64(0.25)])
def test_every_name_spelled_like_srcgrads_survives_and_the_gradient_is_right(x):
    check_grad(spelled_like_srcgrad, x)
    text = srcgrad.source(srcgrad.value_and_grad(spelled_like_srcgrad), x)  # (grad drops what only the value needs)
    stored = assigned_names(text)
    for name in ("t1", "t9", "x_bar", "t2_bar", "tape", "seed", "n_iter", "value"):
        assert name in stored, name
    # the gradient of x is not the user's x_bar: srcgrad's adjoint took another name
    assert "return (value, x_bar)" not in code(text)


def test_value_and_grad_and_vjp_keep_the_names_too():
    x = 0.4
    value, grad = srcgrad.value_and_grad(spelled_like_srcgrad)(x)
    assert value == pytest.approx(spelled_like_srcgrad(x))
    assert srcgrad.vjp(spelled_like_srcgrad)(x, 2.0) == pytest.approx(2.0 * grad)


@pytest.mark.parametrize("n", [0, 1, 4])
def test_names_of_ours_in_a_loop(n):
    check_grad(loop_with_our_names, 0.3, n)
    if n:
        text = code(srcgrad.source(srcgrad.value_and_grad(loop_with_our_names), 0.3, n))
        # inside a loop a user's variable is versioned (t9_1), as every loop variable is; it is still there
        assert re.search(r"\bt9(_\d+)? = math\.sin\(", text) and re.search(r"\bx_bar(_\d+)? = t9", text)
        assert "tape = 1.0" in text


def test_array_names_of_ours():
    rng = np.random.default_rng(3)
    check_grad(arrays_with_our_names, rng.standard_normal(4))
    text = srcgrad.source(srcgrad.value_and_grad(arrays_with_our_names), rng.standard_normal(4))
    assert {"t3", "t3_bar", "s_1_bar"} <= assigned_names(text)


def test_explain_reports_the_users_own_variables():
    ex = srcgrad.explain(spelled_like_srcgrad, 0.7)
    rows = {row.node: row for row in ex.rows}
    assert rows["t9"].value == pytest.approx(math.sin(1.4))
    assert rows["x_bar"].value == pytest.approx(math.sin(1.4) * 0.7)
    for name in ("t9", "x_bar", "t2_bar", "tape"):
        assert isinstance(rows[name].adjoint, float), name
    # d value / d tape = 0.5 * 3
    assert rows["tape"].adjoint == pytest.approx(1.5)
    eps = 1e-6
    assert ex.gradient == pytest.approx(
        (spelled_like_srcgrad(0.7 + eps) - spelled_like_srcgrad(0.7 - eps)) / (2 * eps), rel=1e-6)
