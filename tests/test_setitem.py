"""Item assignment (issue 4 item 6): ``y[i] = v``, ``y[i] += v``, slices and masks, on arrays created in the function
or copied from inputs, with gradients for both the written values and what was overwritten. Writing into an array
that another name shares is refused (srcgrad computes a new array; Python writes in place)."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def write_items(x, v):
    y = np.zeros(4)
    y[1] = v * 2.0
    y[2:] = x[:2] * v
    y[0] += x[3]
    return np.sum(y * y)


def write_in_loop(x):
    y = x.copy()
    for i in range(3):
        y[i + 1] = y[i] * 0.5 + y[i + 1]
    return np.sum(y ** 2)


def write_mask(x):
    y = x.copy()
    y[y > 1.0] = 1.0
    y[::2] *= 3.0
    return np.sum(y * x)


def write_rows(m, r):
    out = m * 1.0
    out[0, :] = r
    out[:, 1] += r[:2]
    return np.sum(out ** 2)


def write_argument(x):
    x[0] = x[1] * 2.0  # Python writes into the caller's array; srcgrad computes a new one (same value)
    return np.sum(x ** 2)


def write_list(x):
    ys = [x, x * 2.0, x * 3.0]
    ys[1] = ys[2] * x
    return sum(ys)


def aliased_write(x):
    y = x * 1.0
    z = y
    y[0] = 5.0
    return np.sum(z)


def view_write(x):
    y = x * 1.0
    row = y[1:]
    row[0] = 5.0
    return np.sum(y)


def test_item_and_slice_writes(rng):
    check_grad(write_items, rng.normal(size=4), 0.7, wrt=(0, 1))
    check_grad(write_in_loop, rng.normal(size=4))
    check_grad(write_rows, rng.normal(size=(2, 3)), rng.normal(size=3), wrt=(0, 1))


@pytest.mark.parametrize("x", [np.array([0.3, 2.0, 0.5, 1.5, 0.2]), np.array([0.1, 0.2, 0.3, 0.4, 0.5])])
def test_mask_writes_both_sides(x):
    check_grad(write_mask, x)


def test_write_into_argument_and_list(rng):
    x = rng.normal(size=3)
    before = x.copy()
    value, g = srcgrad.value_and_grad(write_argument)(x)
    np.testing.assert_array_equal(x, before)  # srcgrad's gradient does not modify its argument
    expected = write_argument(before.copy())
    assert value == pytest.approx(expected)
    check_grad(write_argument, before.copy())
    check_grad(write_list, 0.7)


def test_shared_arrays_are_refused():
    for f in (aliased_write, view_write):
        with pytest.raises(srcgrad.SrcgradError, match="in place") as info:
            srcgrad.grad(f)(np.ones(3))
        assert info.value.location is not None and "hint:" in str(info.value)


def test_forward_mode_through_item_writes(rng):
    x = rng.normal(size=4)
    t = rng.normal(size=4)
    _, tangent = srcgrad.jvp(write_in_loop)(x, t)
    eps = 1e-6
    fd = (write_in_loop(x + eps * t) - write_in_loop(x - eps * t)) / (2 * eps)
    assert tangent == pytest.approx(fd, rel=1e-6)


# --- an index that names one place twice: numpy keeps the last write --------------------------------------------
# `y[[0, 0]] = v` writes v[1] to y[0] (v[0] is overwritten); `y[[0, 0]] += 1.0` adds 1 once. The adjoint of the
# value gave every written item the gradient of its place: [2, -1.9, 4.5] for [2, -2.4, 4.5], and 2.5 for 2.0.

def writes_one_place_twice(x):
    y = x * 1.0
    y[[0, 0]] = np.array([x[1], x[2]])
    return np.sum(y * x)


def adds_once_to_a_place_named_twice(x):
    y = x * 1.0
    y[[0, 0]] += 1.0
    return np.sum(y * x)


def writes_a_number_twice(x):
    y = x * 1.0
    y[[0, 0, 2]] = x[1] * 3.0
    return np.sum(y * x)


def writes_pairs_twice(x):
    a = np.outer(x, x)
    a[[0, 1, 0], [1, 1, 1]] = x * 2.0
    return np.sum(a * a)


def writes_columns_twice(x):
    a = np.outer(x, x)
    a[1:, [0, 0]] = np.array([[x[0], x[1]], [x[2], 1.0]])
    return np.sum(a * np.arange(9.0).reshape(3, 3))


@pytest.mark.parametrize("f", [writes_one_place_twice, adds_once_to_a_place_named_twice, writes_a_number_twice,
                               writes_pairs_twice, writes_columns_twice])
def test_a_place_written_twice_keeps_the_last_write(f):
    x = np.array([0.5, -1.2, 2.0])
    check_grad(f, x)
    direction = np.array([0.3, 1.0, -0.5])
    value, tangent = srcgrad.jvp(f)(x, direction)
    eps = 1e-6
    assert value == pytest.approx(f(x))
    assert tangent == pytest.approx((f(x + eps * direction) - f(x - eps * direction)) / (2 * eps), rel=1e-6)
