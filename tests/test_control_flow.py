"""Reverse mode through branches and loops (issue 3): every construct at points on each side of every branch, and
loops that run zero, one and many times, against central differences."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

# --- branches --------------------------------------------------------------------------------------------------


def branch_different_vars(x):
    if x > 0.5:
        a = x * x
        y = a + 1.0
    else:
        b = math.sin(x)
        y = b * 3.0
    return y * x


def branch_one_side(x):
    y = x * 2.0
    if x < 0.0:
        y = y * y
    return y + x


def branch_elif(x):
    if x < -1.0:
        y = -x
    elif x < 1.0:
        y = x * x
    elif x < 2.0:
        y = math.exp(x)
    else:
        y = 3.0 * x
    return y


def branch_nested(x, y):
    if x > 0:
        if y > 0:
            z = x * y
        else:
            z = x - y
    else:
        z = x * x * y
    return z


def conditional_expression(x):
    y = x * x if x > 1.0 else -x
    return y + (2.0 * x if y > 1.5 else math.cos(x))


def bool_conditions(x, y):
    z = x
    if x > 0 and y > 0:
        z = x * y
    if not (x > 1.0 or y < -1.0):
        z = z + y * y
    if -1.0 < x < 1.0:
        z = z * 2.0
    return z


def condition_on_computed(x):
    s = math.sin(x) * x
    if s * s > 0.25:
        return s * 2.0
    return s - x


def many_returns(x):
    if x < -1.0:
        return x * x
    if x < 0.0:
        return -x
    y = x * 3.0
    if y > 3.0:
        return y * y
    return y


@pytest.mark.parametrize("x", [-2.5, -1.2, -0.4, 0.3, 0.7, 1.5, 2.4])
def test_branches_scalar(x):
    for f in (branch_different_vars, branch_one_side, branch_elif, conditional_expression, condition_on_computed,
              many_returns):
        check_grad(f, x)


@pytest.mark.parametrize("x,y", [(0.5, 0.7), (0.5, -0.7), (-0.5, 0.7), (-0.5, -0.7), (1.5, 0.2), (0.2, -1.5)])
def test_branches_two_args(x, y):
    check_grad(branch_nested, x, y, wrt=(0, 1))
    check_grad(bool_conditions, x, y, wrt=(0, 1))


def array_branch(w, x):
    z = x @ w
    if np.sum(z) > 0:
        out = np.sum(np.tanh(z))
    else:
        out = np.sum(z * z)
    return out


def test_branch_on_array_values(rng):
    x = rng.normal(size=(4, 3))
    w = rng.normal(size=3)
    check_grad(array_branch, w, x)
    check_grad(array_branch, -w, x)


# --- loops -----------------------------------------------------------------------------------------------------


def range_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(x * i) * x
    return s


def range_args(x, a, b):
    s = x
    for i in range(a, b, 2):
        s = s * x + i
    return s


def computed_range(x):
    n = int(x * 3.0)
    s = 1.0
    for _ in range(n + 1):
        s = s * x
    return s


def loop_over_array(x):
    s = 0.0
    for v in x:
        s = s + v * v * s + v
    return s


def loop_over_rows(m, w):
    total = 0.0
    for row in m:
        total = total + np.tanh(row @ w)
    return total


def loop_enumerate_zip(x, y):
    s = 0.0
    for i, v in enumerate(x):
        s = s + v * i
    for a, b in zip(x, y):
        s = s + a * b
    return s


def nested_loops(x, n):
    s = x
    for i in range(n):
        for j in range(i):
            s = s * x + j
    return s


def loop_break_continue(x, n):
    s = 0.0
    for i in range(n):
        if i % 2 == 1:
            continue
        s = s + x ** i
        if s > 10.0:
            break
        s = s * 1.1
    return s


def loop_return(x, n):
    s = x
    for _ in range(n):
        s = s * x
        if s > 5.0:
            return s * 2.0
    return s - 1.0


def while_newton(a):
    x = 1.0
    while abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def while_break(x):
    s = x
    k = 0
    while True:
        s = math.sin(s) + x
        k = k + 1
        if k >= 5:
            break
    return s


def loop_carried_array(w, x, steps):
    h = np.zeros(3)
    for t in range(steps):
        h = np.tanh(w @ h + x[t])
    return np.sum(h * h)


def loop_with_branch_inside(x):
    s = 0.0
    for i in range(6):
        if (i + s) % 3 < 1.5:
            s = s + x * i
        else:
            s = s * x
    return s


@pytest.mark.parametrize("n", [0, 1, 2, 7])
def test_range_loops_zero_one_many(n):
    check_grad(range_loop, 0.7, n)
    check_grad(nested_loops, 1.1, n)
    check_grad(loop_break_continue, 1.3, n)
    check_grad(loop_break_continue, 2.5, n)
    check_grad(loop_return, 1.2, n)
    check_grad(loop_return, 2.6, n)


def test_range_arguments():
    check_grad(range_args, 0.9, 1, 8)
    check_grad(range_args, 0.9, 3, 3)
    for x in (0.2, 0.5, 1.2):
        check_grad(computed_range, x)


@pytest.mark.parametrize("size", [0, 1, 5])
def test_loops_over_arrays(rng, size):
    x = rng.uniform(0.1, 0.9, size=size)
    check_grad(loop_over_array, x)
    check_grad(loop_enumerate_zip, x, rng.normal(size=size), wrt=(0, 1))
    check_grad(loop_over_rows, rng.normal(size=(size, 3)), rng.normal(size=3), wrt=(0, 1))


@pytest.mark.parametrize("a", [0.5, 2.0, 9.0])
def test_while_loops(a):
    check_grad(while_newton, a)
    check_grad(while_break, a / 3.0)


def test_loop_carried_arrays(rng):
    w = rng.normal(size=(3, 3)) * 0.5
    x = rng.normal(size=(4, 3))
    for steps in (0, 1, 4):
        check_grad(loop_carried_array, w, x, steps, wrt=(0, 1))


@pytest.mark.parametrize("x", [0.3, 0.9, 1.7])
def test_loop_with_branch_inside(x):
    check_grad(loop_with_branch_inside, x)


def long_loop(x):
    s = 0.0
    for i in range(100000):
        s = s + math.sin(x + i * 1e-5) * 1e-5
    return s


def test_hundred_thousand_iterations():
    x = 0.4
    expected = sum(math.cos(x + i * 1e-5) * 1e-5 for i in range(100000))
    assert srcgrad.grad(long_loop)(x) == pytest.approx(expected, rel=1e-12)


def test_loop_source_is_readable():
    text = srcgrad.source(srcgrad.grad(range_loop), 0.5, 3)
    # the reverse loop walks the range backwards and recomputes x * i: nothing to record for this loop
    assert "for i in" in text and "for i in reversed(" in text and "tape" not in text
    assert "grad of the loop at line" in text
