"""Uniform adjoints: the adjoint of a full ``np.sum``/``np.mean`` is kept as a number standing for an array of the
input's shape until an operation needs the array. Every way such a number can meet an operation is checked against
central differences: elementwise chains (kept as a number), broadcasting against smaller or Python-number operands,
shape operations, products, indexing, helpers, control flow, and vjp/hvp over it."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def chain(x):
    return np.sum(np.tanh(x) ** 2 * np.exp(-x) + np.sin(x))


def mean_of_squares(x, y):
    return np.mean((x - y) ** 2)


def broadcast_row(a, row):
    return np.sum(a + row)  # row's adjoint sums over the broadcast rows


def scalar_operand(a, s):
    return np.sum(a * 2.0 + s)  # s gets the count of elements


def scalar_scale(a, s):
    return np.mean(s * a - a)


def reshaped(a):
    return np.sum(np.reshape(a, (3, 2)) * 3.0)


def transposed(a, b):
    return np.sum(a.T - b)


def product(w, x):
    return np.sum(x @ w + 1.0)


def indexed(a):
    return np.sum(a[1:] * 2.0) + np.mean(a[0])


def stacked(x, y):
    return np.mean(np.stack([x, y * 2.0]))


def methods(a):
    return a.sum() + (a * a).mean()


def keepdims(a):
    return np.sum(np.sum(a, axis=0, keepdims=True) * 2.0)


def where_mask(a):
    return np.sum(np.where(a > 0.0, a, 0.5 * a))


def maximum_ties(a, b):
    return np.sum(np.maximum(a, b) - b)


def in_branch(a, flag):
    if flag > 0:
        s = np.sum(a * a)
    else:
        s = np.mean(-a)
    return s * 2.0


def in_loop(a, n):
    total = 0.0
    for i in range(n):
        total = total + np.sum(a * (i + 1.0))
    return total


def sum_then_loop(a, n):
    b = a * 1.5
    s = np.sum(b)
    for _ in range(n):
        s = s * 0.9 + 1.0
    return s


def square(v):
    return v * v


def through_helper(a):
    return np.sum(square(a) + a)


def integer_mask(a, k):
    return np.sum(a * k)  # k an integer array: the adjoint stays float


def list_reductions(x, y):
    return np.sum([x, y * 2.0]) + np.mean([x * y, y])  # a full reduction of a list of arrays (or of numbers)


A = np.array([[0.3, -1.2], [0.7, 0.4], [-0.5, 1.1]])
ROW = np.array([0.2, -0.6])


@pytest.mark.parametrize("func,args,wrt", [
    (chain, (np.linspace(-1.5, 1.5, 7),), 0),
    (mean_of_squares, (A, A[::-1] * 0.5), (0, 1)),
    (broadcast_row, (A, ROW), (0, 1)),
    (scalar_operand, (A, 0.3), (0, 1)),
    (scalar_scale, (A, 1.7), (0, 1)),
    (reshaped, (A.T.copy(),), 0),
    (transposed, (A, A.T * 2.0), (0, 1)),
    (product, (np.array([[0.5, -0.3, 0.2], [1.0, 0.4, -0.8]]), A), (0, 1)),
    (indexed, (np.array([0.3, -0.2, 0.9]),), 0),
    (stacked, (ROW, ROW[::-1]), (0, 1)),
    (methods, (A,), 0),
    (keepdims, (A,), 0),
    (where_mask, (np.array([-0.7, 0.3, 1.2, -0.1]),), 0),
    (maximum_ties, (np.array([0.5, -0.3, 0.8]), np.array([0.1, 0.2, 0.8])), (0, 1)),
    (in_branch, (A, 1.0), 0),
    (in_branch, (A, -1.0), 0),
    (in_loop, (A, 3), 0),
    (in_loop, (A, 0), 0),
    (sum_then_loop, (A, 4), 0),
    (through_helper, (A,), 0),
    (integer_mask, (A, np.array([[1, 0], [2, -1], [0, 3]])), 0),
    (list_reductions, (ROW, ROW[::-1] * 3.0), (0, 1)),
    (list_reductions, (0.3, 1.2), (0, 1)),
])
def test_uniform_adjoints_match_central_differences(func, args, wrt):
    check_grad(func, *args, wrt=wrt)


def test_a_full_sum_leaves_no_ones_array_and_no_dead_forward_value():
    text = srcgrad.source(srcgrad.grad(chain), np.ones(4))
    assert "restore_axes" not in text and "uniform_to" not in text
    assert "= np.sin(x)" not in text  # sin's value is dead: only its derivative is read


def scaled_mean(x):
    return np.mean((2.0 * x - 1.0) ** 2)


def test_mean_reads_the_size_of_an_earlier_value_of_the_same_shape():
    text = srcgrad.source(srcgrad.grad(scaled_mean), A)
    assert "x.size" in text  # (x has a layout: srcgrad/layouts.py; without one, size_or_one(x): Dask has no np.size)
    assert "size_or_one(x)" in srcgrad.source(srcgrad.grad(scaled_mean))
    check_grad(scaled_mean, A)


def test_numerical_grad_perturbs_fortran_ordered_arrays():
    from srcgrad.testing import numerical_grad

    b = np.asfortranarray(A)
    np.testing.assert_allclose(numerical_grad(lambda v: np.sum(v * A), (b,), 0), A, rtol=1e-7)


def test_vjp_and_hvp_over_a_full_sum():
    v = srcgrad.vjp(lambda_free_sum)(A, 2.0)
    np.testing.assert_allclose(v, 2.0 * np.cos(A))
    hv = srcgrad.hvp(chain)(np.linspace(-1, 1, 5), np.ones(5))
    eps = 1e-6
    x = np.linspace(-1, 1, 5)
    g = srcgrad.grad(chain)
    np.testing.assert_allclose(hv, (g(x + eps) - g(x - eps)) / (2 * eps), rtol=1e-5, atol=1e-7)


def lambda_free_sum(a):
    return np.sum(np.sin(a))
