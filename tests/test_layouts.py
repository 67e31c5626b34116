"""Rank specialisation (srcgrad/layouts.py): gradients written in plain numpy where the arguments' layouts are known,
checked against central differences at several ranks, with axes of length 1, and across variants; returned gradients
without wrappers never alias an argument or another result."""

import itertools
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

RNG = np.random.default_rng(3)


def n(*shape):
    return RNG.standard_normal(shape)


def broadcast_sum(a, b):
    return np.sum(np.tanh(a * b + a) ** 2)


def matmul_loss(x, w, b):
    return np.mean((x @ w + b) ** 2)


def reductions(a, w):
    return np.sum(np.mean(a * w, axis=-1, keepdims=True) ** 2) + np.sum(np.sum(a, axis=0) ** 3)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((), ()), ((3,), ()), ((), (3,)), ((3,), (3,)), ((4, 3), (3,)), ((4, 3), (4, 1)), ((1, 3), (4, 1)),
    ((4, 1), (1,)), ((2, 4, 3), (4, 1)), ((1,), (5,)), ((4, 3), (1, 1)),
])
def test_broadcasting_at_every_rank_matches_central_differences(a_shape, b_shape):
    a, b = n(*a_shape), n(*b_shape)
    check_grad(broadcast_sum, a, b, wrt=(0, 1))


def test_python_numbers_with_arrays():
    check_grad(broadcast_sum, 0.7, n(4, 3), wrt=(0, 1))
    check_grad(broadcast_sum, n(4, 1), 0.3, wrt=(0, 1))


@pytest.mark.parametrize("x_shape,w_shape", [
    ((5, 4), (4, 3)), ((5, 4), (4,)), ((4,), (4, 3)), ((4,), (4,)), ((2, 5, 4), (2, 4, 3)), ((2, 5, 4), (4, 3)),
    ((1, 4), (4, 1)), ((2, 5, 4), (1, 4, 3)),
])
def test_matmul_at_every_rank_matches_central_differences(x_shape, w_shape):
    x, w = n(*x_shape), n(*w_shape)
    out = x @ w
    b = n(*out.shape[-1:]) if out.ndim else 0.5
    check_grad(matmul_loss, x, w, b, wrt=(0, 1, 2))


@pytest.mark.parametrize("shape", [(4, 3), (1, 3), (4, 1), (2, 4, 3), (3,)])
def test_reductions_over_axes_match_central_differences(shape):
    check_grad(reductions, n(*shape), n(*shape[-1:]), wrt=(0, 1))


def test_a_different_layout_is_a_new_variant():
    df = srcgrad.grad(broadcast_sum, wrt=(0, 1))
    for a_shape, b_shape in [((4, 3), (3,)), ((4, 3), (1, 3)), ((4, 3), (3,)), ((3,), (3,)), ((1, 3), (4, 1)),
                             ((4, 3), (3,))]:
        a, b = n(*a_shape), n(*b_shape)
        got = df(a, b)
        check_grad(broadcast_sum, a, b, wrt=(0, 1))
        assert [g.shape for g in got] == [a_shape, b_shape]
    assert len(df.__srcgrad_transform__.by_kinds) == 4


def test_an_empty_or_non_float64_array_takes_the_general_variant():
    df = srcgrad.grad(matmul_loss, wrt=(0, 1))
    x32, w32 = n(5, 4).astype(np.float32), n(4, 3).astype(np.float32)
    gx, gw = df(x32, w32, 0.1)
    assert gx.dtype == np.float32 and gw.dtype == np.float32
    ex, ew = df(np.zeros((0, 4)), n(4, 3), 0.1)
    assert ex.shape == (0, 4) and ew.shape == (4, 3) and not ew.any()


def test_plain_numpy_for_a_two_layer_network():
    def mlp(w1, b1, w2, x, y):
        h = np.tanh(x @ w1 + b1)
        return np.mean((h @ w2 - y) ** 2)

    args = (n(4, 5), n(5), n(5, 2), n(6, 4), n(6, 2))
    text = srcgrad.source(srcgrad.grad(mlp, wrt=(0, 1, 2)), *args)
    for helper in ("unbroadcast", "matmul_grad", "owned_grad", "match_grad", "uniform_to", "restore_axes"):
        assert helper not in text
    assert "h.T @" in text and "@ w2.T" in text and "np.sum(" in text
    check_grad(mlp, *args, wrt=(0, 1, 2))
    general = srcgrad.source(srcgrad.grad(mlp, wrt=(0, 1, 2)))  # no example arguments: any layout
    assert "matmul_grad_right" in general and "owned_grad" in general


# --- returned gradients: never an argument, a view or another result ----------------------------------------------


def product(x, y):
    return np.sum(x * y)


def twice(x, y):
    return np.sum(x + y)


def chain(x, y):
    return np.sum(x @ y)


def same(x, y):
    z = x * 1.0
    return np.sum(z * y) + np.sum(x)


def sums(x, y):
    return np.sum(x) + np.sum(y)


def squares(x, y):
    return np.sum(x * x) + np.sum(y * 1.0)


@pytest.mark.parametrize("func", [product, twice, chain, same, sums, squares])
@pytest.mark.parametrize("shapes", [((3, 3), (3, 3)), ((3,), (3,)), ((3, 3), (3,))])
def test_returned_gradients_are_fresh_writable_arrays(func, shapes):
    x, y = n(*shapes[0]), n(*shapes[1])
    if func is chain and len(shapes[1]) != len(shapes[0]):
        y = n(3)
    keep = x.copy(), y.copy()
    grads = srcgrad.grad(func, wrt=(0, 1))(x, y)
    for g, arg in zip(grads, (x, y)):
        assert type(g) is np.ndarray and g.shape == arg.shape and g.dtype == arg.dtype and g.flags.writeable
    for g, other in itertools.product(grads, (x, y)):
        assert not np.shares_memory(g, other)
    assert not np.shares_memory(grads[0], grads[1])
    for g in grads:
        g += 1.0  # a caller's in-place update changes nothing else
    np.testing.assert_array_equal(x, keep[0])
    np.testing.assert_array_equal(y, keep[1])
    check_grad(func, x, y, wrt=(0, 1))


def test_a_gradient_with_respect_to_a_number_is_a_float():
    def f(w, b, x):
        return np.mean((x @ w + b) ** 2)

    g = srcgrad.grad(f, wrt=(0, 1))(n(3), 0.5, n(4, 3))
    assert type(g[1]) is float
    check_grad(f, n(3), 0.5, n(4, 3), wrt=(0, 1))


# --- a reduction over no axes (axis=()) ---------------------------------------------------------------------------
# It reduces nothing; with a known layout the adjoint's restoration indexed an empty list (IndexError) and np.mean's
# element count was no expression at all (the generated text did not parse): InternalErrors.

_WEIGHTS_2x3 = np.arange(6.0).reshape(2, 3)


def sum_over_no_axes(x):
    return np.sum(np.sum(x * x, axis=()) * _WEIGHTS_2x3)


def mean_over_no_axes(x):
    return np.sum(np.mean(x, axis=()) * _WEIGHTS_2x3)


def max_over_no_axes(x):
    return np.sum(np.max(x, axis=()) * _WEIGHTS_2x3)


@pytest.mark.parametrize("f", [sum_over_no_axes, mean_over_no_axes, max_over_no_axes])
def test_a_reduction_over_no_axes(f):
    check_grad(f, np.linspace(-1.0, 1.0, 6).reshape(2, 3))


def _scaled_by_tanh_of_axis_sum(a, b):
    a *= math.tanh(np.sum(b, axis=0))  # (a number times a Python float: the sum's adjoint is a Python float)
    return a


def _scaled_by_sin_of_axes_mean(a, b):
    return a * math.sin(np.mean(b, axis=(0, 1)))


@pytest.mark.parametrize("func, b", [(_scaled_by_tanh_of_axis_sum, np.array([0.1, -0.2, 0.3])),
                                     (_scaled_by_sin_of_axes_mean, np.array([[0.1, -0.2], [0.3, 0.4]]))])
def test_a_reduction_over_every_axis_has_a_number_for_adjoint(func, b):
    # (was an InternalError: the adjoint of np.sum(b, axis=0) was written g[None], and g was a Python float)
    check_grad(func, 0.5, b, wrt=(0, 1))  # (value and both gradients against finite differences)
    assert srcgrad.grad(func, wrt=(1,))(0.5, b)[0].shape == b.shape
