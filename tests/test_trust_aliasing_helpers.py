"""Helpers that update numbers with ``+=`` after reading items of global arrays (fuzzing.KNOWN_BUGS
"helper-scalar-update-as-global-write (aliasing)", fixed; srcgrad/aliasing.py).

Two over-refusals of valid code, found where they were born:
- ``MAT + MAT`` on a global array was taken for a list concatenation holding the global's items (a global may be a
  list), so an item of the sum could be one of them and ``k += k`` a write into the global. A global whose value is
  an array of numbers (its type is guarded) is no list: arithmetic on it makes a new array;
- ``k = VEC[1]; k += p`` in a helper is in place only if ``k`` turns out to be an array (a row of a matrix); the
  helper's generated code checks that where the write runs, so a caller that runs the generated code (an active
  call) need not refuse. A call that runs the helper as it is (its result carries no derivative) still may change
  the global unseen: refused.
An array view of a global updated in place is still refused (at run time in the helper, or at generation).
"""

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import UnsupportedSyntax
from srcgrad.testing import check_grad

MAT = np.array([[0.5, -1.0, 0.25], [1.0, 0.75, -0.5]])
VEC = np.array([0.5, -1.0, 2.0])
WEC = np.array([1.5, -0.5])
ROWS = [np.array([0.5, -1.0]), np.array([2.0, 0.25])]  # a global list of arrays


def item_then_add(p):
    k = VEC[1]
    k += p
    return k * p


def matrix_item_times(p):
    k = MAT[1, 2]
    k *= p
    k -= 0.5
    return k + p * p


def item_of_a_sum(p, *, k=0.5):
    k = ((MAT + MAT) + (VEC + VEC))[-1, 0]
    k += k
    return k * p


def loop_over_a_sum(p, *, k=0.5):
    for e in VEC + VEC:
        k = k * 0.5 + e
    k /= 2.0
    return k * p


def number_from_a_scaled_global(p):
    k = (2.0 * VEC)[2]
    k += p
    return k * k


HELPERS = [item_then_add, matrix_item_times, item_of_a_sum, loop_over_a_sum, number_from_a_scaled_global]


def calling(helper):
    """A caller that reads globals in derivative-carrying operations before the helper runs."""

    def caller(x):
        y = x * WEC[1] + x * MAT[0, 1]
        return helper(y) + y * VEC[0]

    caller.__name__ = caller.__qualname__ = f"calling_{helper.__name__}"
    return caller


def _unchanged_globals():
    return MAT.copy(), VEC.copy(), WEC.copy()


def _assert_globals(before):
    for now, then in zip((MAT, VEC, WEC), before):
        np.testing.assert_array_equal(now, then)


@pytest.mark.parametrize("helper", HELPERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("x", [0.7, -1.2])
def test_a_helper_updating_a_number_after_reading_global_items(helper, x):
    before = _unchanged_globals()
    f = calling(helper)
    check_grad(helper, x)
    check_grad(f, x)
    value, tangent = srcgrad.jvp(f)(x, 1.0)
    assert value == pytest.approx(f(x), rel=1e-12)
    assert tangent == pytest.approx((f(x + 1e-6) - f(x - 1e-6)) / 2e-6, rel=1e-6, abs=1e-8)
    second = (srcgrad.grad(f)(x + 1e-5) - srcgrad.grad(f)(x - 1e-5)) / 2e-5
    assert srcgrad.hessian(f)(x) == pytest.approx(second, rel=1e-5, abs=1e-7)
    _assert_globals(before)


# --- array views of globals updated in place: still refused ---------------------------------------------------


def row_updated_in_place(p):
    k = MAT[1]  # a view of the global's row
    k += p
    return np.sum(k) * p


def calls_the_row_update(x):
    y = x * MAT[1, 0]
    return row_updated_in_place(y) + y


def runs_the_row_update_as_it_is(x):
    y = x * MAT[1, 0]
    z = row_updated_in_place(2.0)  # no derivative: the helper itself runs, unchecked
    return z * y


def list_item_updated_in_place(p):
    k = (ROWS + ROWS)[1]  # a list concatenation: the global list's own array
    k += p
    return np.sum(k) * p


def calls_the_list_item_update(x):
    y = x * ROWS[0][0]
    return list_item_updated_in_place(y) + y


def row_of_a_new_array(p):
    k = (MAT + 0.0)[1]  # a view of a new array: nobody else sees it
    k += p
    return np.sum(k) * p


def calls_the_new_row_update(x):
    y = x * MAT[1, 0]
    return row_of_a_new_array(y) + y


def _refused_here(run, text):
    with pytest.raises(UnsupportedSyntax) as info:
        run()
    assert info.value.location is not None and info.value.location.filename == __file__, str(info.value)
    assert text in str(info.value)


@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_a_global_view_updated_in_place_by_a_helper_is_refused(mode):
    rows = [r.copy() for r in ROWS]
    before = _unchanged_globals()
    for f, text in ((calls_the_row_update, "k += p"), (runs_the_row_update_as_it_is, "row_updated_in_place(2.0)"),
                    (calls_the_list_item_update, "k += p")):
        run = (lambda f=f: srcgrad.grad(f)(0.7)) if mode == "grad" else (lambda f=f: srcgrad.jvp(f)(0.7, 1.0))
        _refused_here(run, text)
        _assert_globals(before)
        for now, then in zip(ROWS, rows):
            np.testing.assert_array_equal(now, then)


def test_a_view_of_a_new_array_updated_in_place_is_right():
    before = _unchanged_globals()
    check_grad(calls_the_new_row_update, 0.7)
    assert srcgrad.jvp(calls_the_new_row_update)(0.7, 1.0)[1] == pytest.approx(
        srcgrad.grad(calls_the_new_row_update)(0.7), rel=1e-12)
    _assert_globals(before)
