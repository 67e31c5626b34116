"""Loop-invariant values: an operation at the top of a top-level loop's body whose operands are defined before any
loop has the same value in every iteration, so its reverse runs once after the loop's reverse sweep, on the adjoint
summed over the iterations — and not at all when the loop did not run. Checked against central differences with
zero, one and many iterations, breaks, while loops, chains of invariants, arrays, and invariants under branches."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def cos_scaled(x, n):
    s = 1.0
    for _ in range(n):
        s = s + math.sin(x * s) * math.cos(x)
    return s


def chain_of_invariants(x, y, n):
    s = 0.5
    for i in range(n):
        c = math.exp(x) * y
        d = c * c + y
        s = s * 0.5 + d * math.sin(s + i)
    return s


def with_break(x, n):
    s = 0.0
    for i in range(n):
        k = math.log(x)
        if s > 3.0:
            break
        s = s + k * (i + 1.0)
    return s


def while_loop(x):
    s = 0.1
    while s < 5.0:
        r = math.sqrt(x)
        s = s * 1.5 + r
    return s


def array_invariant(w, x, n):
    h = x
    for _ in range(n):
        a = np.tanh(w)
        h = np.sin(h * a)
    return np.sum(h)


def invariant_under_branch(x, n):
    s = 0.0
    for i in range(n):
        if i % 2 == 0:
            c = math.cos(x)
            s = s + c * i
        else:
            s = s - x
    return s


def nested(x, n):
    s = 0.0
    for i in range(n):
        for j in range(n):
            e = math.exp(x)
            s = s + e * (i - j + 0.5)
    return s


def invariant_used_after(x, n):
    s = 0.0
    c = 1.0
    for _ in range(n):
        c = math.cos(x)
        s = s + c
    return s * c


@pytest.mark.parametrize("n", [0, 1, 5])
def test_scalar_recurrence(n):
    check_grad(cos_scaled, 0.3, n)
    check_grad(chain_of_invariants, 0.2, 0.7, n, wrt=(0, 1))
    check_grad(nested, 0.4, n)
    check_grad(invariant_under_branch, 0.9, n)
    check_grad(invariant_used_after, 0.9, n)


@pytest.mark.parametrize("x,n", [(1.5, 0), (1.5, 2), (2.5, 10), (0.5, 10)])
def test_break_before_and_after_the_invariant(x, n):
    check_grad(with_break, x, n)


@pytest.mark.parametrize("x", [0.3, 2.0, 30.0])
def test_while_loop(x):
    check_grad(while_loop, x)


@pytest.mark.parametrize("n", [0, 3])
def test_arrays(n):
    rng = np.random.default_rng(3)
    check_grad(array_invariant, rng.standard_normal(4), rng.standard_normal(4), n, wrt=(0, 1))


def test_the_invariant_reverse_runs_once_after_the_loop():
    text = srcgrad.source(srcgrad.grad(cos_scaled), 0.3, 5)
    reverse = text.split("its iterations in reverse")[1]
    loop, after = reverse.split("added up over its iterations")
    assert "math.sin(x)" not in loop and "math.sin(x)" in after
