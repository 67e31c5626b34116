"""Lists in arithmetic: numpy reads a list as an array (and broadcasts it); Python's own `+` and `*` of lists join
and repeat them. Both were differentiated as numpy's elementwise arithmetic: a list a numpy function broadcast got
the adjoint of the broadcast result unsummed (a gradient of 0.0 where the truth is 13.5, or an IndexError), and
`[x, 2 * x] + [3 * x]` got a silently wrong gradient. Now the first is summed back to the list's shape and the second
is refused at its line."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

MAT = np.array([[0.5, -1.0, 0.25], [1.0, 0.75, -0.5]])


def column_list_broadcast(y):
    return np.sum((np.add([[y], [2 * y]], MAT)[:, 1:]) ** 2)


def row_list_broadcast(y):
    return np.sum((np.add([y, 2 * y, 3 * y], MAT)) ** 2)


def list_times_array(y):
    return np.sum(np.array([[y], [2 * y]]) * MAT + [y, y, 3 * y] * MAT)


@pytest.mark.parametrize("f", [column_list_broadcast, row_list_broadcast, list_times_array])
@pytest.mark.parametrize("y", [0.7, -1.3])
def test_a_list_numpy_broadcasts_is_summed_back(f, y):
    check_grad(f, y)
    value, tangent = srcgrad.jvp(f)(y, 1.0)
    assert value == pytest.approx(f(y))
    eps = 1e-6
    assert tangent == pytest.approx((f(y + eps) - f(y - eps)) / (2 * eps), rel=1e-6)


def joins_lists(x):
    a = [x, 2 * x] + [3 * x]
    return a[0] + a[2] * a[1]


def repeats_a_list(x):
    a = [x, 2 * x] * 2
    return a[0] * a[3]


def joins_tuples(x):
    a = (x,) + (3 * x,)
    return a[0] * a[1]


@pytest.mark.parametrize(("f", "word"), [(joins_lists, "joins"), (repeats_a_list, "repeats"),
                                         (joins_tuples, "joins")])
@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_sequence_arithmetic_is_refused_at_its_line(f, word, transform):
    with pytest.raises(srcgrad.SrcgradError, match=word) as info:
        srcgrad.grad(f)(0.7) if transform == "grad" else srcgrad.jvp(f)(0.7, 1.0)
    assert info.value.location.line == f.__code__.co_firstlineno + 1


def joins_constant_lists(x):
    sizes = [1.0, 2.0] + [3.0]  # no differentiated value in them: Python's join runs
    return x * sizes[2]


def test_sequence_arithmetic_of_constants_runs():
    check_grad(joins_constant_lists, 0.7)


VEC = np.array([0.5, -1.0, 2.0])


def spreads_a_fill_value(x):
    return np.sum(np.full(3, -x) * VEC) + -x


@pytest.mark.parametrize("x", [0.7, np.float64(0.7), np.array(0.7)], ids=["float", "float64", "0-d array"])
def test_a_fill_value_a_constructor_spreads_is_summed_back(x):
    # found by the fuzzer's emitted-module check: a maybe-array fill value (np.float64, a 0-d array, or any value in
    # the general variant an emitted module holds) got the adjoint of the whole array: -4.5 for -2.5
    check_grad(spreads_a_fill_value, x)
