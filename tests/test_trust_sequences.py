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


# --- sequences the kinds did not see as such ------------------------------------------------------------------------
# `(x, 2 * x) + (3.0,)` (a constant tuple), `(x,) + t` (a tuple argument: its kind is "maybe-array"), `a[:1] + a[1:]`
# (slices of a list), `n[0] + n[1]` of a list of lists and a loop over one: Python joins the sequences, srcgrad
# differentiated numpy's elementwise `+` (gradient 3.5 where the truth is 2.0, 13.5 for 6.0; an IndexError in
# forward mode). Each is refused at its line now, in both modes.

PAIR = (2.0, 3.0)


def joins_a_constant_tuple(x):
    a = (x, 2 * x) + (3.0,)
    return a[0] + a[1] * a[2]


def joins_a_global_tuple(x):
    a = (x, x) + PAIR
    return a[2] * a[1]


def joins_a_tuple_argument(x, t):
    a = (x,) + t
    return a[1] * a[0]


def extends_by_a_list_argument(x, t):
    a = [x, x]
    a += t
    return a[2] * a[0]


def joins_slices(x):
    a = [x, 2.0 * x]
    b = a[:1] + a[1:]
    return b[1] * b[0]


def joins_items_of_nested_lists(x):
    n = [[x], [2.0 * x]]
    b = n[0] + n[1]
    return b[1] * 3.0


def joins_unpacked_lists(x):
    pair = ([x, 1.0], [2.0 * x])
    a, b = pair
    c = a + b
    return c[2] * c[0]


def joins_rows_in_a_loop(x):
    s = 0.0
    for row in [[x], [2.0 * x]]:
        b = row + row
        s = s + b[1]
    return s


def repeats_a_reversed_tuple(x):
    b = (x, 2.0 * x)[::-1] * 2
    return b[2] * b[1]


UNSEEN_SEQUENCES = [(joins_a_constant_tuple, (0.7,), 2), (joins_a_global_tuple, (0.7,), 2),
                    (joins_a_tuple_argument, (0.7, (2.0, 3.0)), 2), (extends_by_a_list_argument, (0.7, [2.0]), 3),
                    (joins_slices, (0.7,), 3), (joins_items_of_nested_lists, (0.7,), 3),
                    (joins_unpacked_lists, (0.7,), 4), (joins_rows_in_a_loop, (0.7,), 4),
                    (repeats_a_reversed_tuple, (0.7,), 2)]


@pytest.mark.parametrize(("f", "args", "line"), UNSEEN_SEQUENCES, ids=[c[0].__name__ for c in UNSEEN_SEQUENCES])
@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_sequence_arithmetic_the_kinds_did_not_see_is_refused(f, args, line, transform):
    with pytest.raises(srcgrad.NoRuleError, match="sequence arithmetic") as info:
        srcgrad.grad(f)(*args) if transform == "grad" else srcgrad.jvp(f)(*args, 1.0)
    assert info.value.location.line == f.__code__.co_firstlineno + line - 1


def adds_a_tuple_argument_to_an_array(x, t):
    return np.sum(np.array([x, 2.0 * x]) * x + t)  # an array and a tuple: numpy's elementwise `+`


def items_of_flat_lists_add(x):
    a = [x, 2.0 * x]
    return a[0] + a[1] * a[0]  # items of a list of numbers: numbers


@pytest.mark.parametrize(("f", "args"), [(adds_a_tuple_argument_to_an_array, (0.7, (2.0, 3.0))),
                                         (items_of_flat_lists_add, (0.7,))])
def test_numbers_and_arrays_next_to_sequences_still_run(f, args):
    check_grad(f, *args)
    value, tangent = srcgrad.jvp(f)(*args, 1.0)
    eps = 1e-6
    assert value == pytest.approx(f(*args))
    assert tangent == pytest.approx((f(args[0] + eps, *args[1:]) - f(args[0] - eps, *args[1:])) / (2 * eps), rel=1e-6)


# `sum(rows, [])` joins lists (Python's sum adds with `+`): the builtin sum's rule added them as numbers (gradient 2.6
# for 5.2). Refused like `+` of lists; sums of numbers and arrays still run.


def sums_lists(x):
    return sum([[x], [2.0 * x]], [])[1] * x


def sums_list_items(x):
    rows = [[x, 1.0], [2.0 * x, 3.0]]
    return sum(rows, [0.0])[3] * x


@pytest.mark.parametrize("f", [sums_lists, sums_list_items])
@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_sum_of_lists_is_refused(f, transform):
    with pytest.raises(srcgrad.NoRuleError, match="`sum` of lists or tuples joins them") as info:
        srcgrad.grad(f)(0.7) if transform == "grad" else srcgrad.jvp(f)(0.7, 1.0)
    assert info.value.location.line in (f.__code__.co_firstlineno + 1, f.__code__.co_firstlineno + 2)


def sums_arrays(x):
    return np.sum(sum([x * 1.0, x * 2.0], np.zeros(2)))


def sums_numbers(x):
    return sum([x[0], x[1] * x[0]], 1.0)


@pytest.mark.parametrize("f", [sums_arrays, sums_numbers])
def test_sum_of_numbers_and_arrays_still_runs(f):
    check_grad(f, np.array([0.7, -1.3]))


# Forward mode of a list built by append from an empty one (a comprehension inside max(), a loop): the empty list's
# zero tangent was an immutable SeqGrad, and `append` raised AttributeError.


def appends_in_a_loop(x):
    acc = []
    for v in (x, 2.0 * x):
        acc.append(v * v)
    return acc[0] + acc[1]


def max_of_a_generator(x):
    return max(v * v for v in (x, 2.0, -x))


@pytest.mark.parametrize("f", [appends_in_a_loop, max_of_a_generator])
@pytest.mark.parametrize("x", [0.7, 1.3])
def test_forward_mode_appends_to_a_new_list(f, x):
    value, tangent = srcgrad.jvp(f)(x, 1.0)
    eps = 1e-6
    assert value == pytest.approx(f(x))
    assert tangent == pytest.approx((f(x + eps) - f(x - eps)) / (2 * eps), rel=1e-6)
    check_grad(f, x)


def nested_rows(x):
    return [[x], [2.0 * x]]


def joins_rows_a_helper_made(x):
    rows = nested_rows(x)
    b = rows[0] + rows[1]
    return b[1] * 3.0


def joins_its_rows(n):
    return n[0] + n[1]


def passes_rows_to_a_helper(x):
    b = joins_its_rows([[x], [2.0 * x]])
    return b[1] * 3.0


# Lists of lists across a helper's boundary: gradient 9.0 where the truth is 6.0, the items taken for numbers or
# arrays (a helper's result was a list of unknown items; inside a helper, a parameter was).
HELPER_CASES = [(joins_rows_a_helper_made, "sequence arithmetic", 2), (passes_rows_to_a_helper, "holding lists", 1)]


@pytest.mark.parametrize(("f", "words", "line"), HELPER_CASES, ids=[c[0].__name__ for c in HELPER_CASES])
@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_lists_of_lists_across_a_helper_are_refused(f, words, line, transform):
    with pytest.raises(srcgrad.NoRuleError, match=words) as info:
        srcgrad.grad(f)(1.5) if transform == "grad" else srcgrad.jvp(f)(1.5, 1.0)
    assert info.value.location.line == f.__code__.co_firstlineno + line
