"""srcgrad.explain (issue 5): every node's value and adjoint in backprop order; the gradient it shows is grad's."""

import math
import os
from pathlib import Path

import golden_cases as gc
import numpy as np
import pytest

import srcgrad
from srcgrad.summary import NO_VALUE, summarize

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SRCGRAD_UPDATE_GOLDEN") == "1"


def kw_only(x, *, k=2.0):
    return k * x * x + math.sin(x)


def two_args(a, b):
    c = a * b
    return c * c + a


def not_scalar(x):
    return x * 2.0


def test_eq3_table_golden():
    text = str(srcgrad.explain(gc.eq3, 1.5))
    path = GOLDEN / "eq3.explain.txt"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()


def test_eq3_rows_in_backprop_order():
    ex = srcgrad.explain(gc.eq3, 1.5)
    assert [r.node for r in ex.rows] == ["y", "t2", "t1", "x"]
    assert [r.operation for r in ex.rows] == ["mul(3, t2)", "pow(t1, 2)", "add(x, 2)", "input"]
    assert [r.value for r in ex.rows] == [36.75, 12.25, 3.5, 1.5]
    assert [r.adjoint for r in ex.rows] == [1.0, 3.0, 21.0, 21.0]  # d y / d node, the lesson's numbers
    assert ex.value == 36.75 and ex.gradient == 21.0
    assert ex.values["t1"] == 3.5 and ex.adjoints["t2"] == 3.0


@pytest.mark.parametrize("func,args,wrt", [
    (gc.eq3, (1.5,), 0),
    (gc.eq4, (1.5,), 0),
    (gc.eq4, (-0.7,), 0),
    (gc.branch, (1.5,), 0),
    (gc.branch, (-1.5,), 0),
    (gc.loop, (0.5, 3), 0),
    (gc.calls_helper, (0.5,), 0),
    (two_args, (1.5, -0.5), ("a", "b")),
    (two_args, (1.5, -0.5), 1),
    (kw_only, (0.3,), 0),
])
def test_explain_shows_grads_gradient(func, args, wrt):
    ex = srcgrad.explain(func, *args, wrt=wrt)
    expected = srcgrad.grad(func, wrt=wrt)(*args)
    # grad's optimised code may fold constants in another order than the step-by-step code: equal up to rounding
    np.testing.assert_allclose(ex.gradient, expected, rtol=1e-14, atol=0)
    assert type(ex.gradient) is type(expected)
    inputs = {r.node: r.adjoint for r in ex.rows if r.operation == "input"}
    names = [wrt] if not isinstance(wrt, tuple) else list(wrt)
    params = list(ex.params)
    for w, g in zip(names, ex.gradient if isinstance(wrt, tuple) else (ex.gradient,)):
        name = params[w] if isinstance(w, int) else w
        assert inputs[name] == g
    assert ex.value == pytest.approx(func(*args))
    assert ex.rows[0].adjoint == 1.0  # the output's adjoint is the seed


def test_explain_arrays(rng):
    w, x, y = rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=4)
    ex = srcgrad.explain(gc.loss, w, x, y)
    np.testing.assert_allclose(ex.gradient, srcgrad.grad(gc.loss)(w, x, y), rtol=1e-13, atol=0)
    text = str(ex)
    assert "(4, 3) [" in text and "(3,) [" in text  # arrays: shape and a few numbers
    assert "..." in text


def test_explain_uses_the_wrt_of_a_grad_function():
    ex = srcgrad.explain(srcgrad.grad(two_args, wrt="b"), 1.5, -0.5)
    assert ex.wrt == ["b"]
    assert ex.gradient == pytest.approx(srcgrad.grad(two_args, wrt="b")(1.5, -0.5), rel=1e-14)
    assert next(r for r in ex.rows if r.node == "a").adjoint is NO_VALUE


def test_branch_not_taken_has_no_rows():
    ex = srcgrad.explain(gc.branch, 1.5)
    assert "neg(x)" not in [r.operation for r in ex.rows]
    ex = srcgrad.explain(gc.branch, -1.5)
    assert "mul(x, x)" not in [r.operation for r in ex.rows]


def test_loop_rows_are_marked():
    ex = srcgrad.explain(gc.loop, 0.5, 3)
    assert any(r.in_loop for r in ex.rows)
    assert " loop " in str(ex)


def test_non_scalar_output_is_refused():
    with pytest.raises(srcgrad.NonScalarOutput, match="scalar"):
        srcgrad.explain(not_scalar, np.ones(3))


def test_summarize():
    assert summarize(21.0) == "21"
    assert summarize(1 / 3) == "0.333333"
    assert summarize(np.float32(2.5)) == "2.5"
    assert summarize(3) == "3"
    assert summarize(True) == "True"
    assert summarize(np.arange(6.0).reshape(2, 3)) == "(2, 3) [0, 1, 2, ...]"
    assert summarize(np.array([1.0, 2.0])) == "(2,) [1, 2]"
    assert summarize(np.array(4.0)) == "4"
    assert summarize(NO_VALUE) == "-"
