"""Calls to user functions (issue 3): module-level helpers, also defined after the caller, nested calls, recursion,
keyword arguments, helpers returning tuples; each helper's gradient is generated once and reused."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad import calls
from srcgrad.testing import check_grad


@srcgrad.grad
def decorated_early(x):
    return helper_defined_later(x) * 2.0


def helper_defined_later(x):
    return math.sin(x) * x


def test_decorator_with_helper_defined_later():
    x = 0.8
    assert decorated_early(x) == pytest.approx(2.0 * (math.cos(x) * x + math.sin(x)))


def square(x):
    return x * x


def scaled(a, k=1.0, *, shift=0.0):
    y = math.exp(a * k) + shift
    return y * a


def nested_caller(x):
    return square(scaled(x, k=0.5, shift=1.0)) + scaled(square(x))


def power(x, n):
    if n == 0:
        return 1.0
    return x * power(x, n - 1)


def uses_recursion(x, n):
    return power(x, n) + power(x * 2.0, 1)


def with_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + square(x + i) * 0.1
    return s


def branchy_helper(x):
    if x > 0:
        return x * 3.0
    return -x * x


def calls_branchy(x):
    return branchy_helper(x) + branchy_helper(x - 1.0)


def array_helper(w, x):
    return np.tanh(x @ w)


def mlp_loss(w, x, y):
    return np.mean((array_helper(w, x) - y) ** 2)


def data_only(x, n):
    return x * float(count_up(n))


def count_up(n):
    total = 0
    for i in range(n):
        total = total + i
    return total


@pytest.mark.parametrize("x", [-1.3, 0.4, 1.1])
def test_helpers_scalar(x):
    check_grad(nested_caller, x)
    check_grad(calls_branchy, x)
    check_grad(data_only, x, 4)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_recursion_depth_from_int(n):
    check_grad(uses_recursion, 1.2, n)
    check_grad(with_loop, 0.7, n)


def test_array_helper(rng):
    check_grad(mlp_loss, rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5))


def test_helper_gradient_generated_once():
    before = len(calls._VARIANTS)
    srcgrad.grad(nested_caller)(0.3)
    after_first = len(calls._VARIANTS)
    srcgrad.grad(nested_caller)(0.6)
    srcgrad.grad(lambda_free_caller)(0.6)
    assert len(calls._VARIANTS) == after_first >= before


def lambda_free_caller(x):
    return square(x) * 3.0


def test_helper_source_shown():
    text = srcgrad.source(srcgrad.grad(nested_caller), 0.5)
    assert "def square_fwd(" in text and "def square_bwd(" in text and "def scaled_bwd(" in text


def closure_caller(x, w):
    scale = w * 2.0

    def inner(v, shift=1.0):
        y = v * scale + shift
        if y > 0:
            return y * y
        return -y

    square_it = lambda v: v * v  # noqa: E731
    total = 0.0
    for i in range(3):
        total = total + inner(x * i) + square_it(x + i)
    scale = scale + 1.0  # closures see the variable as it is at the call
    return total + inner(x, shift=0.5)


@pytest.mark.parametrize("x", [-0.8, 0.3, 1.4])
def test_nested_defs_lambdas_closures(x):
    check_grad(closure_caller, x, 0.7, wrt=(0, 1))
