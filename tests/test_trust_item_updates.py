"""`container[i] op= v` is Python's in-place update of the item itself: `lst = [y]; lst[0] += 1.0` changes the array
`y` too (ndarray.__iadd__), and `outer[0] += [v]` extends the inner list. srcgrad computed a new item and left `y`
alone: value 5.69 where Python gives 6.99, gradient [1, -2.4, 4] for [2, -1.4, 5]. Such an update is now seen by
the alias analysis like `y += v` (refused where another name sees the item); an item of an array (`A[i] += v`,
`y[1:] *= 3.0`: the view is written back into A at once) still runs."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

X = np.array([0.5, -1.2, 2.0])


def array_in_a_list(x):
    y = x * 1.0
    lst = [y]
    lst[0] += 1.0
    return np.sum(y * x)


def array_in_a_dict(x):
    y = x * 1.0
    d = {"k": y}
    d["k"] *= 2.0
    return np.sum(y * x)


def list_in_a_list(x):
    inner = [x[0]]
    outer = [inner]
    outer[0] += [x[1] * 2.0]
    return sum(inner) * x[2]


@pytest.mark.parametrize("f", [array_in_a_list, array_in_a_dict, list_in_a_list])
@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_an_item_updated_in_place_seen_through_another_name_is_refused(f, transform):
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(f)(X.copy()) if transform == "grad" else srcgrad.jvp(f)(X.copy(), np.ones(3))
    assert info.value.location.line == f.__code__.co_firstlineno + 3


def rows_updated(x):
    a = np.outer(x, x)
    for i in range(3):
        a[i] += x
    return np.sum(a * a)


def items_updated(x):
    y = x * 2.0
    y[0] += x[1]
    y[1:] *= 3.0
    return np.sum(y * y)


def numbers_in_a_list(x):
    lst = [x[0], x[1]]
    lst[0] += x[2]
    lst[1] *= 2.0
    return lst[0] * lst[1]


@pytest.mark.parametrize("f", [rows_updated, items_updated, numbers_in_a_list])
def test_items_of_arrays_and_numbers_in_lists_still_update(f):
    check_grad(f, X.copy())
    value, tangent = srcgrad.jvp(f)(X.copy(), np.ones(3))
    eps = 1e-6
    assert value == pytest.approx(f(X.copy()))
    assert tangent == pytest.approx((f(X + eps) - f(X - eps)) / (2 * eps), rel=1e-6)
