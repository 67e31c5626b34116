"""Everyday code that srcgrad refused, now differentiated (session 6 probes, issue 12).

- ``any(v > 1 for v in x)`` / ``all(...)`` over a generator (only sum/list/tuple took one): a loop that stops at the
  first item that decides, as the builtins stop taking the generator's items;
- bitwise operators (``~3 * x``, ``(x > 0) & (x < 1)``, ``~mask``, shifts of integers): no derivative — they take
  integers, booleans and masks (a float raises TypeError, in Python as here);
- ``np.array(x, copy=True)`` (the rule did not take numpy's ``copy``); ``copy=True`` always copies, so a write into
  the copy is no write into the argument (``copy=False`` may share: still refused).
"""

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import UnsupportedSyntax
from srcgrad.testing import check_grad

X = np.array([0.5, 2.0, -0.3])


def any_of_generator(x):
    return np.sum(x) if any(v > 1 for v in x) else np.sum(x ** 2)


def all_of_generator_with_condition(x):
    return np.sum(x ** 3) if all(v > 0 for v in x if v != 2.0) else np.sum(np.sin(x))


def any_stops_at_the_first_true_item(x, d):
    # Python never computes d["b"] when d["a"] > 0 (a KeyError when "b" is missing)
    return x * 2.0 if any(d[k] > 0 for k in ["a", "b"]) else x * x


def all_as_a_value(x):
    positive = all(xi * xi < 4.5 for xi in x)
    return np.sum(x * positive) + np.sum(x ** 2)


def any_of_two_loops(x):
    return np.sum(x) if any(a > b for a in x for b in x) else 0.0


@pytest.mark.parametrize("x", [X, np.abs(X), X - 2.0, np.array([2.0, 2.0, 0.5])])
def test_any_and_all_of_a_generator(x):
    for func in (any_of_generator, all_of_generator_with_condition, all_as_a_value):
        check_grad(func, x)


def test_any_of_a_generator_stops_where_python_does():
    check_grad(any_stops_at_the_first_true_item, 1.5, {"a": 1.0})
    assert srcgrad.value_and_grad(any_stops_at_the_first_true_item)(1.5, {"a": 1.0}) == (3.0, 2.0)
    assert srcgrad.value_and_grad(any_stops_at_the_first_true_item)(1.5, {"a": -1.0, "b": 0.0}) == (2.25, 3.0)
    with pytest.raises(KeyError):  # (as Python: "b" is read when "a" does not decide)
        srcgrad.grad(any_stops_at_the_first_true_item)(1.5, {"a": -1.0})


def test_any_of_a_generator_with_two_loops_says_what_to_write():
    with pytest.raises(UnsupportedSyntax, match=r"several `for` clauses") as info:
        srcgrad.grad(any_of_two_loops)(X)
    assert f"test_trust_everyday_code.py:{any_of_two_loops.__code__.co_firstlineno + 1}:" in str(info.value)


def invert_constant(x):
    return ~3 * x


def invert_count(x, k):
    return ~k * x + (k << 2) * x - (k >> 1) * x


def masks(x):
    inside = (x > 0.0) & (x < 1.0)
    outside = (x < -1.0) | (x > 1.5)
    return np.sum(x ** 2 * inside) + np.sum(np.sin(x) * ~inside) + np.sum(x * (inside ^ outside))


def invert_float(x):
    return ~x


@pytest.mark.parametrize("x", [0.7, -1.2])
def test_bitwise_operators_on_integers_and_masks(x):
    assert srcgrad.value_and_grad(invert_constant)(x) == (-4 * x, -4.0)  # ("cannot differentiate Invert")
    check_grad(invert_constant, x)
    check_grad(invert_count, x, 3)
    assert srcgrad.grad(invert_count)(x, 3) == -4.0 + 12.0 - 1.0


@pytest.mark.parametrize("x", [X, np.array([-1.5, 0.2, 1.7, 1.2])])
def test_bitwise_operators_on_masks(x):
    check_grad(masks, x)


def test_a_bitwise_operator_on_a_float_raises_as_in_python():
    with pytest.raises(TypeError):
        invert_float(0.5)
    with pytest.raises(TypeError):
        srcgrad.grad(invert_float)(0.5)


def array_copy(x):
    return np.sum(np.array(x, copy=True) * x)


def write_into_a_copy(x):
    y = np.array(x, copy=True)
    y[0] = 5.0
    return np.sum(x * y)


def write_into_maybe_the_argument(x):
    y = np.array(x, copy=False)
    y[0] = 5.0
    return np.sum(x * y)


def test_np_array_with_copy():
    check_grad(array_copy, X)
    check_grad(write_into_a_copy, X)
    np.testing.assert_allclose(srcgrad.grad(write_into_a_copy)(X), [5.0, 2 * X[1], 2 * X[2]])
    with pytest.raises(UnsupportedSyntax, match="changes an array in place, and another name refers to the same"):
        srcgrad.grad(write_into_maybe_the_argument)(X)
