"""Writes seen through another name (issue 12 item 3; srcgrad/aliasing.py).

srcgrad computes every write (``y[i] = v``, ``y += v``, ``xs.append(v)``) as a new value; Python changes the object,
so every other way to reach it sees the change. Each case here either gives Python's value and the right gradient,
or is refused with a SrcgradError naming the user's line: aliased arguments (checked when called), other names,
tuple unpacking, conditional aliases, lists holding the array, helpers and nested functions that write into what
they are given or capture, calls srcgrad cannot see into — with controls that do not alias and keep working.
"""

import inspect
import os
import warnings

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InvalidArgument, UnsupportedSyntax
from srcgrad.rules.registry import _RULES
from srcgrad.testing import numerical_grad


def line_of(func, text):
    """The absolute line in this file of the first line of ``func`` containing ``text``."""
    lines, first = inspect.getsourcelines(func)
    return first + next(i for i, ln in enumerate(lines) if text in ln)


def refused(func, args, kind, text, wrt=0, mode=srcgrad.value_and_grad):
    """``func`` is refused with ``kind`` at the line holding ``text`` (file:line:col and the line shown)."""
    with pytest.raises(kind) as info:
        mode(func, wrt=wrt)(*args)
    err = info.value
    assert err.location is not None and err.location.filename == __file__
    assert err.location.line == line_of(func, text), str(err)
    assert f"{__file__}:{err.location.line}:" in str(err) and text in str(err) and "hint:" in str(err)
    return err


def _copies(args):
    return [a.copy() if isinstance(a, (np.ndarray, list)) else a for a in args]


def same_as_python(func, *args, wrt=0):
    """Value equal to Python's and gradient equal to central differences, every call on fresh copies of the
    arguments (the function may write into one)."""
    value, g = srcgrad.value_and_grad(func, wrt=wrt)(*_copies(args))
    np.testing.assert_allclose(value, func(*_copies(args)), rtol=1e-12)

    def on_copies(*a):
        return func(*_copies(a))

    np.testing.assert_allclose(g, numerical_grad(on_copies, tuple(args), wrt), rtol=1e-6, atol=1e-8)


A = np.array([1.0, 2.0, 3.0])


# --- aliased arguments: checked when called ---------------------------------------------------------------------


def add_into(x, y):
    x += y
    return np.sum(x * y)


def write_into(x, y):
    x[0] = 5.0 * y[1]
    return np.sum(x * y)


@pytest.mark.parametrize("func, text", [(add_into, "x += y"), (write_into, "x[0] = 5.0 * y[1]")])
def test_the_same_array_twice_is_refused_at_the_write(func, text):
    a = A.copy()
    assert func(a.copy(), a.copy()) != func(a, a)  # what srcgrad would compute (28 / 23) is not Python's (56 / 113)
    for args in ((a, a), (a[:2], a[1:])):  # one object; overlapping views of one buffer
        err = refused(func, args, InvalidArgument, text)
        assert "share memory" in str(err)
    refused(func, (a, a), InvalidArgument, text, mode=srcgrad.grad)
    refused(func, (a, a), InvalidArgument, text, wrt=1)


@pytest.mark.parametrize("func, text", [(add_into, "x += y"), (write_into, "x[0] = 5.0 * y[1]")])
def test_every_mode_checks_the_arguments(func, text):
    a = A.copy()
    refused(func, (a, a, np.ones(3)), InvalidArgument, text, mode=srcgrad.jvp)
    refused(func, (a, a), InvalidArgument, text, mode=srcgrad.hessian)  # the check survives a second derivative
    namespace = {}
    exec(compile(srcgrad.emit(func), "emitted.py", "exec"), namespace)  # a module that never imports srcgrad
    emitted = namespace[f"{func.__name__}_grad"]
    with pytest.raises(ValueError, match=f"{os.path.basename(__file__)}:{line_of(func, text)}:.*share memory"):
        emitted(a, a)
    np.testing.assert_allclose(emitted(a.copy(), 2.0 * a), srcgrad.grad(func)(a.copy(), 2.0 * a))


@pytest.mark.parametrize("func", [add_into, write_into])
def test_separate_arrays_and_disjoint_views_still_work(func):
    same_as_python(func, A.copy(), np.array([0.5, -1.0, 2.0]))
    same_as_python(func, A.copy(), np.array([0.5, -1.0, 2.0]), wrt=1)
    buffer = np.arange(1.0, 7.0)
    x, y = buffer[0::2], buffer[1::2]  # views of one buffer that share no element: Python's write does not reach y
    value, _ = srcgrad.value_and_grad(func)(x, y)
    assert value == func(buffer.copy()[0::2], buffer.copy()[1::2])
    assert srcgrad.value_and_grad(add_into)(2.0, 2.0) == (8.0, 2.0)  # numbers are rebound, never shared


def reads_before_writing(x, y):
    s = np.sum(y * y)
    x[0] = 2.0 * s  # y is not read after this: sharing it cannot be seen
    return np.sum(x)


def test_an_argument_read_only_before_the_write_may_be_shared():
    a = A.copy()
    value, g = srcgrad.value_and_grad(reads_before_writing, wrt=1)(a, a)
    assert value == reads_before_writing(A.copy(), A.copy())
    np.testing.assert_allclose(g, [4.0, 8.0, 12.0])
    np.testing.assert_array_equal(a, A)  # srcgrad never writes into the caller's array


W = np.array([0.5, 1.5, -1.0])


def write_then_read_global(x):
    x[0] = 1.0
    return np.sum(x * W)


def test_an_argument_that_is_a_global_the_function_reads_is_refused():
    refused(write_then_read_global, (W,), InvalidArgument, "x[0] = 1.0")
    same_as_python(write_then_read_global, A.copy())


def append_to_first(xs, ys, v):
    xs.append(2.0 * v)
    return sum(ys) * v


def test_the_same_list_twice_is_refused():
    lst = [1.5]
    refused(append_to_first, (lst, lst, 0.5), InvalidArgument, "xs.append", wrt=2)
    assert srcgrad.value_and_grad(append_to_first, wrt=2)([1.5], [2.5], 0.5) == (1.25, 2.5)


# --- a list appended through another name ------------------------------------------------------------------------


def append_through_other_name(x):
    acc = [x * 0.7]
    other = acc
    other.append(x * 2.0)
    return sum(acc)


def push(lst, v):
    lst.append(v)
    return 0.0


def append_through_helper(x):
    acc = [x * 0.7]
    push(acc, x * 2.0)
    return sum(acc)


def test_a_list_appended_through_another_name_or_a_helper_is_refused():
    refused(append_through_other_name, (1.5,), UnsupportedSyntax, "other.append(x * 2.0)")
    err = refused(append_through_helper, (1.5,), UnsupportedSyntax, "push(acc, x * 2.0)")
    assert f"{__file__}:{line_of(push, 'lst.append(v)')}" in str(err)  # where the helper writes


def append_in_nested_def(x):
    acc = [x * 0.7]

    def add(v):
        acc.append(v)
        return 0.0

    add(x * 2.0)
    return sum(acc)


def append_in_lambda(x):
    acc = [x * 0.7]
    add = lambda v: acc.append(v)  # noqa: E731
    add(x * 2.0)
    return sum(acc)


def append_in_nested_def_in_loop(x):
    acc = []

    def add(v):
        acc.append(v * v)
        return 0.0

    for i in range(3):
        add(x * (i + 1.0))
    return sum(acc)


def append_to_own_name(x):
    acc = [x * 0.7]
    acc.append(x * 2.0)
    return sum(acc)


@pytest.mark.parametrize("func", [append_in_nested_def, append_in_lambda, append_in_nested_def_in_loop,
                                  append_to_own_name])
def test_a_closure_appending_to_the_callers_list_is_the_callers_list(func):
    for x in (0.7, -1.3):
        same_as_python(func, x)
    assert srcgrad.grad(append_in_nested_def)(0.7) == pytest.approx(2.7)


def uses_what_append_returns(x):
    acc = [x]
    r = acc.append(x * 2.0)
    return sum(acc) + (0.0 if r is None else 100.0)


def test_append_returns_none():
    assert srcgrad.value_and_grad(uses_what_append_returns)(1.0) == (3.0, 3.0)  # was (103.0, 3.0)


# --- an array written by a helper or a nested def ----------------------------------------------------------------


def put(y, v):
    y[0] = v
    return 0.0


def scale(y):
    y *= 3.0
    return 0.0


def write_through_helper(x):
    y = np.zeros(2)
    put(y, x * 0.98)
    return np.sum(y)


def scale_through_helper(x):
    y = np.ones(2) * x
    scale(y)
    return np.sum(y)


def test_an_array_written_by_a_helper_is_refused():
    err = refused(write_through_helper, (1.0,), UnsupportedSyntax, "put(y, x * 0.98)")
    assert f"{__file__}:{line_of(put, 'y[0] = v')}" in str(err)
    refused(scale_through_helper, (1.0,), UnsupportedSyntax, "scale(y)")  # in place only for arrays: when run
    refused(scale_through_helper, (np.ones(2),), UnsupportedSyntax, "scale(y)")


def normalize(v):
    v /= np.sqrt(np.sum(v * v))
    return v


def normalize_fresh(w):
    u = normalize(w * 2.0)  # the helper writes into an array nothing else can see
    return np.sum(u * np.arange(3.0))


def test_a_helper_writing_into_an_array_nothing_else_sees_works(rng):
    same_as_python(normalize_fresh, rng.normal(size=3))


def write_captured(x):
    y = np.zeros(2)

    def put_first(v):
        y[0] = v
        return 0.0

    put_first(x * 0.98)
    return np.sum(y)


def write_captured_in_loop(x):
    y = np.zeros(3)

    def put_at(i, v):
        y[i] = v * y[i - 1] + v
        return 0.0

    for i in range(3):
        put_at(i, x)
    return np.sum(y * y)


def test_a_nested_def_writing_a_captured_array_is_seen_by_the_caller(rng):
    assert srcgrad.value_and_grad(write_captured)(1.0) == (0.98, 0.98)  # the write was dead code: (0.0, 0.0)
    same_as_python(write_captured, 1.3)
    same_as_python(write_captured_in_loop, 0.6)


def write_param_of_nested_def(x):
    y = np.zeros(2)

    def put_into(z, v):
        z[0] = v
        return 0.0

    put_into(y, x * 0.98)
    return np.sum(y)


def test_a_nested_def_writing_its_parameter_is_refused():
    refused(write_param_of_nested_def, (1.0,), UnsupportedSyntax, "z[0] = v")


# --- alias forms: tuple unpacking, conditional expressions, lists, views, helpers returning their argument ------


def tuple_alias(x):
    y = x * 1.0
    a, b = y, y
    a[0] = 5.0
    return np.sum(b * x)


def conditional_alias(x, c):
    y = x * 1.0
    z = y if c else y.copy()
    z[0] = 5.0
    return np.sum(y * x)


def list_holds_alias(x):
    y = x * 1.0
    pair = [y, x]
    y[0] = 5.0
    return np.sum(pair[0] * x)


def element_alias(x):
    rows = [x * 1.0, x * 2.0]
    first = rows[0]
    first[0] = 5.0
    return np.sum(rows[0] * x)


def reshaped_alias(x):
    y = x * 1.0
    z = np.reshape(y, (3, 1))
    z[0, 0] = 5.0
    return np.sum(y * x)


def identity(v):
    return v


def helper_result_alias(x):
    y = x * 1.0
    z = identity(y)
    z[0] = 5.0
    return np.sum(y * x)


def alias_read_next_iteration(x):
    y = x * 1.0
    z = y
    s = 0.0
    for i in range(3):
        s = s + np.sum(z * x)
        y[i] = 0.5
    return s


@pytest.mark.parametrize("func, args, text", [
    (tuple_alias, (A,), "a[0] = 5.0"),
    (conditional_alias, (A, True), "z[0] = 5.0"),
    (conditional_alias, (A, False), "z[0] = 5.0"),  # refused on both sides: z may be y
    (list_holds_alias, (A,), "y[0] = 5.0"),
    (element_alias, (A,), "first[0] = 5.0"),
    (reshaped_alias, (A,), "z[0, 0] = 5.0"),
    (helper_result_alias, (A,), "z[0] = 5.0"),
    (alias_read_next_iteration, (A,), "y[i] = 0.5"),
])
def test_alias_forms_are_refused(func, args, text):
    err = refused(func, [a.copy() if isinstance(a, np.ndarray) else a for a in args], UnsupportedSyntax, text)
    assert "another name refers to the same array" in str(err)  # the phrase tests/fuzzing.py counts as a refusal


def tuple_no_alias(x):
    y = x * 1.0
    a, b = y, y.copy()
    a[0] = 5.0
    return np.sum(b * x) + np.sum(a * x)


def conditional_no_alias(x, c):
    y = x * 1.0
    z = y.copy() if c else y * 2.0
    z[0] = 5.0
    return np.sum(y * x) + np.sum(z * x)


def helper_returns_new(v):
    return v * 2.0


def helper_result_new(x):
    y = x * 1.0
    z = helper_returns_new(y)
    z[0] = 5.0
    return np.sum(y * x) + np.sum(z * x)


def list_of_copies(x):
    y = x * 1.0
    pair = [y.copy(), x]
    y[0] = 5.0
    return np.sum(pair[0] * x) + np.sum(y)


def writes_in_branches(x, c):
    y = x * 1.0
    if c:
        y[0] = 5.0
    else:
        y[1] = y[0] * x[2]
    return np.sum(y * x)


def write_in_loop(x):
    y = x.copy()
    for i in range(2):
        y[i + 1] = y[i] * x[i]
    return np.sum(y ** 2)


def array_item_holds_a_copy(x):
    out = np.zeros((2, 3))
    out[0] = x  # copies x's values: writing into x later does not change out
    x[1] = 5.0
    return np.sum(out * out) + np.sum(x * x)


def product_of_written_array(x):
    y = np.zeros(3)
    y[0] = x[0]
    z = y * 2.0
    x[1] = 5.0
    return np.sum(z * x)


@pytest.mark.parametrize("func, args", [
    (array_item_holds_a_copy, (A,)), (product_of_written_array, (A,)),
    (tuple_no_alias, (A,)), (conditional_no_alias, (A, True)), (conditional_no_alias, (A, False)),
    (helper_result_new, (A,)), (list_of_copies, (A,)), (writes_in_branches, (A, True)),
    (writes_in_branches, (A, False)), (write_in_loop, (A,)),
])
def test_writes_nothing_else_sees_still_work(func, args):
    same_as_python(func, *args)


# --- calls srcgrad cannot see into run as they are ----------------------------------------------------------------


def copyto_varied(x):
    y = np.zeros(3)
    np.copyto(y, x * 2.0)
    return np.sum(y * x)


def copyto_after_read(x):
    y = np.ones(3)
    s = np.sum(y * x)
    np.copyto(y, 0.0)
    return s


def copyto_constant(x):
    y = np.ones(3)
    np.copyto(y, 2.0)
    return np.sum(y * x)


def test_calls_that_may_write_in_place_are_refused_when_a_derivative_could_see_it():
    err = refused(copyto_varied, (A.copy(),), srcgrad.NoRuleError, "np.copyto(y, x * 2.0)")
    assert "changes its arguments in place" in str(err)
    refused(copyto_after_read, (A.copy(),), UnsupportedSyntax, "np.copyto(y, 0.0)")  # the reverse reads y
    same_as_python(copyto_constant, A.copy())  # constants only, written before any read: as Python


def fill_buffer(buf):
    buf[:] = 1.0
    return 0.0


def inactive_helper_after_read(x):
    y = np.full(3, 2.0)
    s = np.sum(y * x)
    fill_buffer(y)  # runs as it is (its result is unused): the reverse sweep would read the new y
    return s


def test_a_helper_writing_what_a_derivative_read_is_refused():
    refused(inactive_helper_after_read, (A.copy(),), UnsupportedSyntax, "fill_buffer(y)")


BUF = np.zeros(3)


def store_in_global(v):
    buf = BUF
    buf[0] = v
    return 0.0


def through_global_store(x):
    store_in_global(2.0)  # runs as it is (nothing differentiated goes in): BUF changes for real
    return np.sum(BUF * x)


def after_global_store(x):
    s = np.sum(BUF * x)
    store_in_global(3.0)
    return s + np.sum(BUF)


def test_a_helper_writing_a_global_is_refused_where_the_change_could_be_missed():
    # the reverse sweep of np.sum(BUF * x) would read BUF after the helper changed it
    err = refused(after_global_store, (A.copy(),), UnsupportedSyntax, "store_in_global(3.0)")
    assert f"{__file__}:{line_of(store_in_global, 'buf[0] = v')}" in str(err)
    refused(store_in_global, (1.0,), UnsupportedSyntax, "buf[0] = v")  # differentiated itself: a global changes
    BUF[:] = 0.0
    try:
        same_as_python(through_global_store, A.copy())  # the helper runs as Python runs it, before any read
    finally:
        BUF[:] = 0.0


# --- the list of functions whose result may share memory with an argument ---------------------------------------


def _shares(result, x):
    if result is x:
        return True
    if isinstance(result, np.ndarray):
        return np.shares_memory(result, x)
    if isinstance(result, (list, tuple)):
        return any(_shares(r, x) for r in result)
    return False


def test_every_rule_whose_result_may_share_an_argument_is_known_as_one():
    """Call every function with a derivative rule on small arrays, in every argument pattern its rule accepts; a
    result that is, views or holds the argument must be declared (the rule's ``view=``)."""
    missing, probed = set(), 0
    for rule in list(_RULES.values()):
        func = rule.func
        if not callable(func):
            continue
        for x in (np.arange(6.0).reshape(2, 3), np.arange(6.0), np.arange(4.0).reshape(2, 2)):
            for args in ((x,), (x, 0), (x, 1), (x, 2), (x, x), (x, (3, 2)), (x, (6,)), (x, 0, 1), (x, 1, 1),
                         ([x, x],), ("ii->i", x), ("ij->ji", x)):
                try:
                    rule.signature.bind(*args)
                except TypeError:
                    continue  # srcgrad refuses this call of the function
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        result = func(*args)
                except Exception:  # noqa: BLE001 - not a valid call of this function
                    continue
                probed += 1
                if _shares(result, x) and not rule.view:
                    missing.add(rule.name)
    assert probed > 200
    assert not missing, f"results share memory with an argument, but are not declared as views: {missing}"
