"""A function whose code object is replaced in place (``f.__code__ = g.__code__``; IPython's autoreload updates
functions of a reloaded module this way) is another function: code generated for the old one is stale. srcgrad
kept it: `grad(f)` gave 2.0 after f became `x * 5.0`. The code object is guarded like `__defaults__` (for the
differentiated function and every helper it calls), and a change reads the source again."""

import numpy as np
import pytest

import srcgrad

X = np.array([1.0, 2.0])


def doubled(v):
    return v * 2.0


def squares_of_doubled(x):
    return np.sum(doubled(x) ** 2)


def five_times(v):
    return v * 5.0


def sum_of_sines(x):
    return np.sum(np.sin(x))


def other_parameters(y):
    return np.sum(y)


@pytest.fixture
def restored():
    saved = doubled.__code__, squares_of_doubled.__code__
    yield
    doubled.__code__, squares_of_doubled.__code__ = saved


def test_a_helper_whose_code_is_replaced_is_read_again(restored):
    grad, jvp, hvp = srcgrad.grad(squares_of_doubled), srcgrad.jvp(squares_of_doubled), srcgrad.hvp(squares_of_doubled)
    np.testing.assert_allclose(grad(X), 8.0 * X)
    np.testing.assert_allclose(jvp(X, np.ones(2))[1], 24.0)
    np.testing.assert_allclose(hvp(X, np.ones(2)), [8.0, 8.0])
    doubled.__code__ = five_times.__code__
    np.testing.assert_allclose(grad(X), 50.0 * X)
    np.testing.assert_allclose(jvp(X, np.ones(2))[1], 150.0)
    np.testing.assert_allclose(hvp(X, np.ones(2)), [50.0, 50.0])


def test_the_function_whose_code_is_replaced_is_read_again(restored):
    grad, hvp = srcgrad.grad(squares_of_doubled), srcgrad.hvp(squares_of_doubled)
    np.testing.assert_allclose(grad(X), 8.0 * X)
    np.testing.assert_allclose(hvp(X, np.ones(2)), [8.0, 8.0])
    squares_of_doubled.__code__ = sum_of_sines.__code__
    np.testing.assert_allclose(grad(X), np.cos(X))
    np.testing.assert_allclose(hvp(X, np.ones(2)), -np.sin(X))
    assert srcgrad.value_and_grad(squares_of_doubled)(X)[0] == pytest.approx(np.sum(np.sin(X)))


def test_new_parameters_are_refused(restored):
    grad = srcgrad.grad(squares_of_doubled)
    grad(X)
    squares_of_doubled.__code__ = other_parameters.__code__
    with pytest.raises(srcgrad.InvalidArgument, match="parameters of squares_of_doubled changed"):
        grad(X)
