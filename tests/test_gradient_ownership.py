"""Gradients are arrays the caller owns: never one of the arguments, never shared between two results, never a
read-only view — whether srcgrad returns an array its code made (no copy) or copies."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def shared_adjoint(a, b):
    return np.sum(np.tanh(a + b))  # a and b get the very same adjoint array


def passthrough(a, b):
    return np.sum(a * b)


def identity_sum(a):
    return np.sum(a)  # a uniform adjoint: the result is made from a number


def transposed(a):
    return np.sum(np.tanh(a).T * 2.0)


A = np.array([[0.3, -0.5], [1.2, 0.1]])
B = np.array([[-0.4, 0.9], [0.2, 0.6]])


@pytest.mark.parametrize("func,args,wrt", [
    (shared_adjoint, (A, B), (0, 1)),
    (passthrough, (A, B), (0, 1)),
    (identity_sum, (A,), (0,)),
    (transposed, (A,), (0,)),
])
def test_results_are_fresh_writable_and_distinct(func, args, wrt):
    check_grad(func, *args, wrt=wrt)
    grads = srcgrad.grad(func, wrt=wrt)(*[a.copy() for a in args])
    for i, g in enumerate(grads):
        assert g.flags.writeable
        assert not any(np.shares_memory(g, a) for a in args)
        assert not any(np.shares_memory(g, other) for j, other in enumerate(grads) if j != i)
    before = [g.copy() for g in grads]
    grads[0][...] = 123.0  # updating one gradient in place leaves the others (and the inputs) alone
    for g, old in zip(grads[1:], before[1:]):
        np.testing.assert_array_equal(g, old)


def test_value_and_grad_and_vjp_too():
    value, (ga, gb) = srcgrad.value_and_grad(shared_adjoint, wrt=(0, 1))(A, B)
    assert ga is not gb and value == pytest.approx(shared_adjoint(A, B))
    seed = np.ones((2, 2))

    def elementwise(a):
        return a * 1.0 + 0.0

    g = srcgrad.vjp(elementwise)(A, seed)
    assert g is not seed
    g[...] = 5.0
    assert np.all(seed == 1.0)
