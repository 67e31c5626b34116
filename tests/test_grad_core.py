"""Gradients of the core coverage (issue 2) against central differences: operators, math, numpy, broadcasting."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

SCALE = 1.5  # a module-level global used as data


# --- the seed equations ----------------------------------------------------------------------------------------


def seed1(x):
    y = x + 2
    return y


def seed2(x):
    y = (x + 2) ** 2
    return y


def seed3(x):
    y = 3 * (x + 2) ** 2
    return y


def seed4(x):
    y = 5 * x ** 2 / (1 + math.exp(x))
    return y


@pytest.mark.parametrize("f", [seed1, seed2, seed3, seed4])
@pytest.mark.parametrize("x", [-2.5, -0.3, 0.0, 1.5, 4.0])
def test_seed_equations(f, x):
    check_grad(f, x)


def test_seed_values_exact():
    assert srcgrad.grad(seed3)(1.5) == pytest.approx(6 * (1.5 + 2))
    assert srcgrad.grad(seed2)(-1.0) == pytest.approx(2.0)


# --- arithmetic ------------------------------------------------------------------------------------------------


def arith(x, y):
    a = x * y - x / y
    b = -a + x ** 3 - y ** 0.5
    c = b
    c += x
    c *= y
    c -= 2.0
    c /= 3.0
    c **= 2
    return c + (+x)


def rebinding(x):
    x = x * 2.0
    x = x + 1.0
    y = x * x
    x = y - x
    return x


def tuples(x, y):
    a, b = x, y
    a, b = b, a * 2.0
    (c, d) = (a * b, a - b)
    return c * d


def constants(x):
    return 2 * x + 3.5 - math.pi * x + SCALE * x + math.e


def keyword_default(x, y=2.0, *, k=3.0):
    return x ** y * k


def int_data(x, n):
    return x ** n + n * x


def pow_active_exponent(x, y):
    return x ** y + 2.0 ** y


@pytest.mark.parametrize("x,y", [(1.3, 0.7), (2.5, 1.9), (0.4, 3.1)])
def test_arithmetic(x, y):
    check_grad(arith, x, y, wrt=(0, 1))
    check_grad(tuples, x, y, wrt=("x", "y"))
    check_grad(pow_active_exponent, x, y, wrt=(0, 1))


@pytest.mark.parametrize("x", [-1.7, 0.6, 2.2])
def test_rebinding_constants_defaults(x):
    check_grad(rebinding, x)
    check_grad(constants, x)
    check_grad(keyword_default, x)
    check_grad(keyword_default, abs(x), 3.0, wrt=(0, 1))
    check_grad(int_data, x, 3)


def test_keyword_arguments_at_call():
    df = srcgrad.grad(keyword_default, wrt="y")
    assert df(1.5, y=2.0, k=2.0) == pytest.approx(2.0 * 1.5 ** 2 * math.log(1.5))


# --- math ------------------------------------------------------------------------------------------------------

def m_exp(x):
    return math.exp(x)


def m_log(x):
    return math.log(x) + math.log(x, 3.0)


def m_log_base(b):
    return math.log(7.0, b)


def m_log1p(x):
    return math.log1p(x) + math.expm1(x)


def m_sqrt(x):
    return math.sqrt(x)


def m_trig(x):
    return math.sin(x) * math.cos(x) + math.tan(x)


def m_hyp(x):
    return math.tanh(x) + math.sinh(x) * math.cosh(x)


def m_inverse_trig(x):
    return math.asin(x) + math.acos(x) * 2.0 + math.atan(x)


def m_two_args(x, y):
    return math.atan2(y, x) + math.hypot(x, y) + math.pow(x, y)


def m_fabs(x):
    return math.fabs(x) * 3.0 + abs(x)


def m_builtins(x, y):
    return max(x, y) * 2.0 + min(x, y) + float(x)


@pytest.mark.parametrize("f,points", [
    (m_exp, [-1.0, 0.5, 2.0]),
    (m_log, [0.3, 1.0, 5.0]),
    (m_log_base, [0.5, 2.0, 10.0]),
    (m_log1p, [-0.5, 0.0, 3.0]),
    (m_sqrt, [0.01, 1.0, 9.0]),
    (m_trig, [-1.0, 0.2, 1.2]),
    (m_hyp, [-2.0, 0.0, 1.5]),
    (m_inverse_trig, [-0.9, 0.0, 0.7]),
    (m_fabs, [-2.0, 1.5]),
])
def test_math_functions(f, points):
    for x in points:
        check_grad(f, x)


@pytest.mark.parametrize("x,y", [(1.2, 0.5), (0.5, 1.2), (2.0, -1.0), (-1.0, 2.0)])
def test_math_two_argument_functions(x, y):
    if x > 0:
        check_grad(m_two_args, x, y, wrt=(0, 1))
    check_grad(m_builtins, x, y, wrt=(0, 1))


# --- numpy -----------------------------------------------------------------------------------------------------


def np_unary(x):
    return np.sum(np.exp(x) + np.log(x) + np.log1p(x) + np.expm1(x) + np.sqrt(x))


def np_trig(x):
    return np.sum(np.sin(x) * np.cos(x) + np.tanh(x) + np.abs(x) + np.square(x))


def np_binary(x, y):
    return np.sum(np.maximum(x, y) + np.minimum(x, 0.5 * y) + np.power(np.abs(x) + 1.0, y) + np.where(x > y, x, y))


def np_reductions(x):
    return np.sum(np.sum(x, axis=0) ** 2) + np.mean(np.mean(x, axis=1, keepdims=True) * x) + x.sum() + x.mean()


def np_linear(w, x):
    return np.sum((x @ w) ** 2) + np.dot(w, w) + np.sum(np.dot(x, w)) + np.sum(x.T @ x @ w)


def np_matrix(a, b):
    return np.sum(np.tanh(a @ b)) + np.sum(a.T * 2.0)


def np_scalar(x):
    return np.float64(x) * 2.0 + np.exp(x)


def test_numpy_elementwise(rng):
    x = rng.uniform(0.2, 2.0, size=5)
    check_grad(np_unary, x)
    check_grad(np_trig, rng.normal(size=(3, 4)))


def test_numpy_binary_broadcasting(rng):
    x = rng.normal(size=(3, 4))
    for y in (rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(3, 1)), 0.7):
        check_grad(np_binary, x, y, wrt=(0, 1))


def test_numpy_reductions(rng):
    check_grad(np_reductions, rng.normal(size=(3, 4)))


def test_numpy_linear_algebra(rng):
    check_grad(np_linear, rng.normal(size=4), rng.normal(size=(3, 4)), wrt=(0, 1))
    check_grad(np_matrix, rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), wrt=(0, 1))


def test_numpy_scalars():
    check_grad(np_scalar, 0.7)


def bcast_ops(x, y):
    return np.sum(x + y) + np.sum(x * y) + np.sum(x - y) + np.sum(x / (y * y + 1.0)) + np.sum((x * x + 1.0) ** y)


@pytest.mark.parametrize("xs,ys", [
    ((3, 4), ()), ((), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((3, 4), (3, 1)), ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 1)), ((5,), (5,)),
])
def test_broadcasting_every_binary_op(rng, xs, ys):
    x = rng.uniform(0.5, 1.5, size=xs) if xs else 0.8
    y = rng.uniform(0.5, 1.5, size=ys) if ys else 1.3
    check_grad(bcast_ops, x, y, wrt=(0, 1))


def column_broadcast(c, m):
    return np.sum(c[:, None] * m + m)


def test_column_broadcast(rng):
    check_grad(column_broadcast, rng.normal(size=3), rng.normal(size=(3, 4)), wrt=(0, 1))


def mse_loss(w, x, y):
    return np.mean((np.tanh(x @ w) - y) ** 2)


def test_numpy_loss(rng):
    x, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    check_grad(mse_loss, rng.normal(size=3), x, y)
    check_grad(mse_loss, rng.normal(size=(3, 2)), x, rng.normal(size=(6, 2)))
