"""The public API (issue 2): wrt forms, decorator forms, value_and_grad, vjp, source/inspect, types and dtypes."""

import inspect
import math

import numpy as np
import pytest

import srcgrad


def f(x, y, scale=2.0):
    return scale * x * x * y + math.sin(y)


def test_wrt_position_name_tuple():
    x, y = 1.5, 0.5
    dx = 2.0 * 2.0 * x * y
    dy = 2.0 * x * x + math.cos(y)
    assert srcgrad.grad(f)(x, y) == pytest.approx(dx)
    assert srcgrad.grad(f, wrt=1)(x, y) == pytest.approx(dy)
    assert srcgrad.grad(f, wrt="y")(x, y) == pytest.approx(dy)
    assert srcgrad.grad(f, wrt=-3)(x, y) == pytest.approx(dx)
    gx, gy = srcgrad.grad(f, wrt=("x", 1))(x, y)
    assert (gx, gy) == (pytest.approx(dx), pytest.approx(dy))
    (only,) = srcgrad.grad(f, wrt=(0,))(x, y)
    assert only == pytest.approx(dx)
    assert srcgrad.grad(f, wrt="scale")(x, y) == pytest.approx(x * x * y)


def test_decorator_forms():
    @srcgrad.grad
    def d1(x):
        return x ** 3

    @srcgrad.grad(wrt="b")
    def d2(a, b):
        return a * b * b

    assert d1(2.0) == pytest.approx(12.0)
    assert d2(3.0, 2.0) == pytest.approx(12.0)
    assert d1.__name__ == "d1_grad"


def test_value_and_grad_and_keywords():
    value, grad = srcgrad.value_and_grad(f, wrt=("x", "y"))(1.5, y=0.5, scale=3.0)
    assert value == pytest.approx(f(1.5, 0.5, 3.0))
    assert grad[0] == pytest.approx(3.0 * 2 * 1.5 * 0.5)


def vec(x):
    return np.sin(x) * 2.0


def test_vjp_shapes(rng):
    x = rng.normal(size=(3, 2))
    seed = rng.normal(size=(3, 2))
    g = srcgrad.vjp(vec)(x, seed)
    np.testing.assert_allclose(g, seed * 2.0 * np.cos(x))
    np.testing.assert_allclose(srcgrad.vjp(vec)(x, seed=seed), g)


def returns_vector(x):
    return x * 2.0


def test_grad_of_vector_output_points_to_vjp():
    with pytest.raises(srcgrad.NonScalarOutput, match="vjp"):
        srcgrad.grad(returns_vector)(np.ones(3))


def unrelated(x, y):
    return y * 2.0


def test_zero_gradient_has_argument_shape():
    assert srcgrad.grad(unrelated)(1.0, 2.0) == 0.0
    g = srcgrad.grad(unrelated)(np.ones((2, 3)), 2.0)
    assert g.shape == (2, 3) and not g.any()


def poly(x):
    return np.sum(x * x * 3.0)


def test_types_and_dtypes():
    g = srcgrad.grad(poly)(np.ones(4, dtype=np.float32))
    assert g.dtype == np.float32 and g.shape == (4,)
    assert isinstance(srcgrad.grad(lambda_free)(2.0), float)
    assert isinstance(srcgrad.grad(lambda_free)(2), float)  # an int argument gets a float gradient
    g0 = srcgrad.grad(poly)(np.float64(2.0))
    assert isinstance(g0, np.float64) and g0 == pytest.approx(12.0)


def lambda_free(x):
    return x * x


def test_bad_wrt_lists_parameters():
    with pytest.raises(srcgrad.InvalidArgument, match=r"\['x', 'y', 'scale'\]"):
        srcgrad.grad(f, wrt="z")
    with pytest.raises(srcgrad.InvalidArgument, match="out of range"):
        srcgrad.grad(f, wrt=5)


def test_bad_call_arguments():
    df = srcgrad.grad(f)
    with pytest.raises(TypeError, match="missing"):  # the gradient has f's own signature
        df(1.0)
    with pytest.raises(srcgrad.InvalidArgument, match="complex"):
        srcgrad.grad(poly)(np.ones(3, dtype=complex))
    with pytest.raises(srcgrad.InvalidArgument, match="str"):
        df("a", 1.0)


def test_source_and_inspect():
    df = srcgrad.grad(f)
    general = srcgrad.source(df)
    assert general.startswith("def f_grad(x, y, scale=2.0):")
    df(1.0, 2.0)
    assert inspect.getsource(df) == srcgrad.source(df)
    assert srcgrad.source(df, 1.0, 2.0) == srcgrad.source(df, 3.0, 4.0)


def test_emission_is_deterministic():
    a = srcgrad.source(srcgrad.grad(f), 1.0, 2.0)
    b = srcgrad.source(srcgrad.grad(f), 1.0, 2.0)
    assert a == b


def test_traceback_shows_generated_line():
    def bad(x):
        return math.log(x)

    try:
        srcgrad.grad(bad)(-1.0)
    except ValueError as exc:
        tb = exc.__traceback__
        while tb.tb_next:
            tb = tb.tb_next
        assert tb.tb_frame.f_code.co_filename.startswith("<srcgrad bad:grad")
    else:
        pytest.fail("math.log(-1) should raise")


def test_graph_prints_ir():
    text = str(srcgrad.graph(f))
    assert text.splitlines()[0] == "def f(x, y, scale):"
    assert "math.sin(y)" in text


def test_globals_stay_live():
    global FACTOR
    FACTOR = 2.0
    df = srcgrad.grad(uses_global)
    assert df(1.0) == pytest.approx(2.0)
    FACTOR = 5.0
    assert df(1.0) == pytest.approx(5.0)


FACTOR = 2.0


def uses_global(x):
    return FACTOR * x


def test_closure_variables():
    a = 3.0

    def g(x):
        return a * x * x

    assert srcgrad.grad(g)(2.0) == pytest.approx(12.0)
