"""Regression tests: every wrong gradient, wrong value or crash found (mostly by the fuzzer, tests/fuzzing.py), reduced
to a minimal function. A test marked ``xfail(strict=True)`` is a known bug that is not fixed yet: fixing it makes
the test pass, and strict xfail then fails the suite, as a reminder to remove the mark (and the matching entry of
``fuzzing.KNOWN_BUGS``)."""

import math

import numpy
import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

# --- vjp of a function that uses the name `seed` ----------------------------------------------------------------
# Found by the fuzzer: the generated vjp renames its seed parameter (`seed_1`) when the user's function has a
# parameter or local called `seed`, but the entry passed `seed=`: TypeError "got multiple values for argument 'seed'"
# or "unexpected keyword argument 'seed'". Fixed in srcgrad/api.py.


def param_named_seed(x, seed):
    return x * seed


def local_named_seed(x):
    seed = x * x
    return seed * 3.0


def test_vjp_with_parameter_named_seed():
    assert srcgrad.vjp(param_named_seed)(2.0, 3.0, 1.0) == pytest.approx(3.0)
    assert srcgrad.vjp(param_named_seed, wrt=(0, 1))(2.0, 3.0, 0.5) == (pytest.approx(1.5), pytest.approx(1.0))


def test_vjp_with_local_named_seed():
    assert srcgrad.vjp(local_named_seed)(2.0, 1.0) == pytest.approx(12.0)
    assert srcgrad.vjp(local_named_seed)(np.float64(2.0), seed=2.0) == pytest.approx(24.0)


# --- math.fabs of a numpy scalar ---------------------------------------------------------------------------------


def fabs_of(x):
    return math.fabs(x) * 2.0


def test_fabs_of_numpy_scalar():
    assert srcgrad.grad(fabs_of)(np.float64(-0.5)) == pytest.approx(-2.0)


def test_fabs_of_float():
    check_grad(fabs_of, -0.5)
    check_grad(fabs_of, 0.5)


# --- augmented assignment to an array updates it in place --------------------------------------------------------


def aliased_update(x):
    y = x * 1.0
    z = y  # z and y are the same array
    y += x  # in place: z changes too
    return np.sum(z)


def test_inplace_add_seen_through_alias():
    # `y += x` with an alias of y is refused (srcgrad computes a new array); on floats it is plain rebinding
    with pytest.raises(srcgrad.SrcgradError, match="in place") as info:
        srcgrad.value_and_grad(aliased_update)(np.ones(3))
    assert info.value.location is not None and "y += x" in str(info.value)
    assert srcgrad.value_and_grad(aliased_update)(1.5) == (1.5, 1.0)  # floats: z keeps the old value


# --- a helper's differentiated parameter that does not reach its result --------------------------------------------


def ignores_first(p, q):
    return q * 2.0


def passes_array_to_unused(x, a):
    return ignores_first(a, x)


def passes_float_to_unused(x, y):
    return ignores_first(x, y)


def test_helper_with_unused_array_parameter():
    g = srcgrad.grad(passes_array_to_unused, wrt=(0, 1))(1.0, np.ones(3))
    assert g[0] == 2.0 and g[1].shape == (3,) and not g[1].any()


def test_helper_with_unused_numpy_scalar_parameter():
    assert srcgrad.grad(passes_float_to_unused, wrt=(0, 1))(np.float64(1.0), 2.0) == (0.0, 2.0)


def test_helper_with_unused_float_parameter():
    assert srcgrad.grad(passes_float_to_unused, wrt=(0, 1))(1.0, 2.0) == (0.0, 2.0)


# --- found while building the tools (issue 5) --------------------------------------------------------------------


def slice_without_np_alias(x):
    return numpy.sum(x[1:] * 2.0)


def returns_a_pair(x):
    return x * 2.0, x * x


def test_slice_gradient_needs_no_np_alias():
    check_grad(slice_without_np_alias, numpy.arange(4.0))


def test_grad_of_tuple_output_is_non_scalar_error():
    with pytest.raises(srcgrad.NonScalarOutput, match="tuple"):
        srcgrad.grad(returns_a_pair)(1.0)


# --- found by the fuzzer (issue 8) ---------------------------------------------------------------------------------


def overwrite_in_for(y):
    for _ in range(1):
        y = 0.5
    return y * 2.0


def overwrite_in_while(y):
    k = 0
    while k < 1:
        k = k + 1
        y = 0.5
    return y * 2.0


def swap_in_loop(y):
    for e in np.array([0.5, -1.0]):
        out = e * 0.5
        out, y = y, out
    return y * 2.0


@pytest.mark.parametrize("func", [overwrite_in_for, overwrite_in_while, swap_in_loop])
def test_loop_overwrites_variable_with_constant(func):
    check_grad(func, 0.3)
    assert srcgrad.grad(func)(0.3) == 0.0


def assigned_in_loop_read_after(x):
    for _ in range(3):
        s = x * 2.0
    return s


def accumulated_and_read_after(x):
    acc = 0.0
    s = 0.0
    for _ in range(3):
        s = x * 2.0
        acc = acc + s
    return acc + s


def parameter_overwritten_in_loop(x, y):
    for _ in range(3):
        y = x * 2.0
    return y


def copy_of_carried_value(x):
    for _ in range(2):
        x = x * 1.5
        y = x
    return y


@pytest.mark.parametrize("func,expected", [(assigned_in_loop_read_after, 2.0), (accumulated_and_read_after, 8.0),
                                           (parameter_overwritten_in_loop, 2.0), (copy_of_carried_value, 2.25)])
def test_variable_overwritten_in_loop(func, expected):
    args = (0.7, 0.3) if func is parameter_overwritten_in_loop else (0.7,)
    assert srcgrad.grad(func)(*args) == pytest.approx(expected)


# User variables named like srcgrad's loop flags (broke, skip, returned): the flags are not renamed.


def user_variable_broke(x):
    for _ in range(3):
        broke = x * 2.0
        if x > 100.0:
            break
        x = x * 1.5
    return x + broke


def user_variable_skip(x):
    for i in range(3):
        skip = np.ones(2)
        if i == 1:
            continue
        x = x * 1.5
    return x + skip[0]


def user_variable_returned(x):
    returned = np.ones(2)
    for _ in range(3):
        if x > 100.0:
            return x
        x = x * 1.5
    return x + returned[0]


def test_user_variable_named_like_break_flag():
    check_grad(user_variable_broke, 0.7)


@pytest.mark.parametrize("func", [user_variable_skip, user_variable_returned])
def test_user_variables_named_like_flags(func):
    check_grad(func, 0.7)


def alias_then_update(x):
    y = x
    y += 1.0
    return y * x


def test_update_of_alias_of_numpy_scalar():
    assert srcgrad.grad(alias_then_update)(np.float64(0.5)) == 2.0


def test_update_of_alias_of_float():
    assert srcgrad.grad(alias_then_update)(0.5) == 2.0


def power_of_loop_index(x, n):
    return x ** n


def numpy_power_of_int(x, n):
    return np.power(x, n)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("func", [power_of_loop_index, numpy_power_of_int])
@pytest.mark.parametrize("x", [0.0, np.float64(0.0)], ids=["float", "float64"])
def test_power_with_zero_exponent_at_zero(func, x):
    assert srcgrad.grad(func)(x, 0) == 0.0


def test_power_with_zero_exponent_elsewhere():
    assert srcgrad.grad(power_of_loop_index)(0.5, 0) == 0.0
    assert srcgrad.grad(power_of_loop_index)(0.0, 1) == 1.0


# --- found while building the cache (issue 6) ----------------------------------------------------------------------


def parameter_named_np(x, np):  # noqa: F811 - a parameter shadowing the module name on purpose
    return numpy.sum(numpy.sin(x)) * np


def test_parameter_shadowing_a_module_name():
    assert srcgrad.grad(parameter_named_np)(0.3, 2.0) == pytest.approx(2.0 * math.cos(0.3))


# --- the source file changed after the function was defined -------------------------------------------------------


def test_source_edited_after_import(tmp_path):
    import importlib.util
    import os

    path = tmp_path / "edited_module.py"
    path.write_text("def f(x):\n    return x * x\n")
    spec = importlib.util.spec_from_file_location("edited_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path.write_text("def f(x):\n    return x * x * x\n")
    os.utime(path, (os.path.getatime(path), os.path.getmtime(path) + 5))
    # srcgrad read the function's source from its file at transform time: after the file was edited (a notebook
    # editing a module without reloading it) it differentiated the new text while the function still ran the old
    # code: f(2.0) == 4.0 but value_and_grad gave (8.0, 12.0).
    try:
        value, g = srcgrad.value_and_grad(module.f)(2.0)
    except srcgrad.SrcgradError as exc:
        assert "edited_module.py" in str(exc)  # refusing (the source is not the function's any more) is right too
        return
    assert (value, g) == (4.0, 4.0)


def dead_square(x):
    y = x**2  # noqa: F841 - its value is not used: only whether computing it fails
    return 3.0 * x


def dead_reciprocal(x):
    y = x**-1  # noqa: F841 - at 0 the function is undefined: the gradient must fail as f does
    return 3.0 * x


def test_a_dead_whole_power_may_overflow_but_a_pole_still_raises():
    # A whole, non-negative power can only overflow (the value is too large for a float; the gradient is right), so
    # the gradient code may skip it; a negative power at 0 divides by zero, and the gradient fails like f.
    assert srcgrad.grad(dead_square)(1e200) == 3.0
    assert "**" not in srcgrad.source(srcgrad.grad(dead_square), 2.0)
    assert srcgrad.grad(dead_reciprocal)(2.0) == 3.0
    with pytest.raises(ZeroDivisionError):
        srcgrad.grad(dead_reciprocal)(0.0)


def masked(a):
    return np.sum(np.tanh(a) * (a > 0.0) + np.exp(a) * 1.0)


def test_one_times_a_mask_keeps_it_a_number_array():
    # 1.0 * e is simplified to e only where e cannot be a bool array: a mask stays multiplied.
    a = np.array([-0.5, 0.2, 1.3])
    check_grad(masked, a)


def dead_log(x):
    unused = math.log(x)  # noqa: F841 - raises for x <= 0, as the gradient must
    return 2.0 * x


def test_a_dead_statement_that_fails_still_fails():
    assert srcgrad.grad(dead_log)(3.0) == 2.0
    with pytest.raises(ValueError, match="math domain"):
        srcgrad.grad(dead_log)(-1.0)


# --- issue 12: the classes the extended fuzzer reaches (fuzzing.FEATURES) -------------------------------------------
# One minimal reproduction per class that fails today; each is an entry of fuzzing.KNOWN_BUGS (named after the issue
# item) whose grammar features the default fuzz run leaves out. Expected: Python's value and the right gradient, or a
# SrcgradError located in this file. Other branches fix the classes; remove the mark and the entry together.

HERE = __file__


def right_or_refused(f, *args, wrt=0):
    """Python's value and gradients that agree with central differences, or a SrcgradError located in this file."""
    try:
        srcgrad.value_and_grad(f, wrt=wrt)(*args)
    except srcgrad.InternalError:
        raise
    except srcgrad.SrcgradError as exc:
        assert exc.location is not None and exc.location.filename == HERE, str(exc)
        return
    check_grad(f, *args, wrt=wrt)


def known(name):
    return pytest.mark.xfail(strict=True, reason=f"fuzzing.KNOWN_BUGS[{name!r}]")


def negative_literal_base(x):
    return x * (-2.0) ** 2


def alternating_series(x, n):
    s = 0.0
    for i in range(n):
        s = s + (-1) ** i * x ** i
    return s


def test_negative_literal_as_power_base():
    right_or_refused(negative_literal_base, 1.5)
    right_or_refused(alternating_series, 0.5, 3)


def enumerate_from_one(x):
    total = 0.0
    for k, v in enumerate(x, start=1):
        total = total + k * v
    return total


def test_enumerate_start_is_counted():
    right_or_refused(enumerate_from_one, np.array([0.5, 1.0]))


def linspace_endpoint(x):
    return np.sum(np.linspace(x, 2.0, 5))


def index_trick(x):
    return np.sum(np.r_[x, 1.0] * 2.0)


def test_differentiated_values_into_constructors():
    right_or_refused(linspace_endpoint, 0.5)
    right_or_refused(index_trick, np.array([0.5, 1.0]))


def std_of_one(x):
    return np.std(x) + x


def test_std_of_a_single_element():
    right_or_refused(std_of_one, 1.5)


def tuple_alias_write(y, x):
    y = y * 1.0
    a, b = y, y
    a[0] = x * 5.0
    return np.sum(b * y)


def same_array_twice(x, y):
    x += y
    return np.sum(x * y)


def test_mutation_seen_through_another_name():
    right_or_refused(tuple_alias_write, np.array([1.0, 2.0, 3.0]), 0.5, wrt=(0, 1))
    a = np.array([1.0, 2.0, 3.0])
    try:  # Python: x and y are one array, so the value is 4 * sum(a * a) = 56
        aliased = a.copy()
        value, grads = srcgrad.value_and_grad(same_array_twice, wrt=(0, 1))(aliased, aliased)
    except srcgrad.SrcgradError as exc:
        assert not isinstance(exc, srcgrad.InternalError) and exc.location is not None
        return
    assert value == 56.0
    np.testing.assert_allclose(grads[0] + grads[1], 8.0 * a)


def twin_a(p):
    return p * 2.0


def twin_b(p):
    return p * p


rebound_helper = twin_a


def calls_rebound_helper(x):
    return rebound_helper(x) + x


def test_a_rebound_helper_regenerates():
    global rebound_helper
    df = srcgrad.value_and_grad(calls_rebound_helper)
    assert df(1.5) == (4.5, 3.0)
    rebound_helper = twin_b
    try:
        assert df(1.5) == (3.75, 4.0)
    finally:
        rebound_helper = twin_a


def parameter_named_range(x, range):
    s = 0.0
    for e in np.array([1.0, 2.0]):
        s = s + e * x
    return s * range


def test_parameter_named_like_a_builtin():
    right_or_refused(parameter_named_range, 1.5, 2.0, wrt=(0, 1))


def returns_none(x):
    return None


def sum_times_two(a):
    return np.sum(a * 2.0)


def test_none_result_and_masked_arguments():
    with pytest.raises(srcgrad.SrcgradError):
        srcgrad.value_and_grad(returns_none)(1.5)
    masked = np.ma.array([1.0, 2.0, 3.0], mask=[False, True, False])
    try:
        gradient = srcgrad.grad(sum_times_two)(masked)
    except srcgrad.InvalidArgument:
        return
    np.testing.assert_allclose(np.asarray(gradient), [2.0, 0.0, 2.0])  # the masked element does not count


EMIT_SCALE = 2.0


def default_from_global(x, c=EMIT_SCALE):
    return x * c


EMIT_SCALE = 3.0


def run_emitted(f, *args):
    text = srcgrad.emit(f, module=__name__)
    namespace = {"__name__": "emitted_" + f.__name__}
    exec(compile(text, "<emitted>", "exec"), namespace)
    return namespace[namespace["__all__"][0]](*args)


def test_emitted_default_is_the_value_not_the_text():
    assert run_emitted(default_from_global, 1.5) == srcgrad.grad(default_from_global)(1.5) == 2.0


settings_object = __import__("types").ModuleType("settings_object")
settings_object.W = 2.0


def reads_module_object(x):
    return x * settings_object.W


settings_namespace = __import__("types").SimpleNamespace(W=-0.5)


def reads_namespace_object(x):
    return x * settings_namespace.W * settings_object.W


def test_emitted_module_reads_a_module_object_of_the_user_module():
    # A module object the user's module made at run time is not importable by its name (`import settings_object`
    # raised ModuleNotFoundError): the emitted module imports it from the user's module, like any other global.
    assert run_emitted(reads_module_object, 1.5) == srcgrad.grad(reads_module_object)(1.5) == 2.0
    assert run_emitted(reads_namespace_object, 1.5) == srcgrad.grad(reads_namespace_object)(1.5) == -1.0
    text = srcgrad.emit(reads_module_object, module=__name__)
    assert f"from {__name__} import settings_object" in text.splitlines()
    assert "import settings_object" not in text.splitlines()
    settings_object.W = 4.0  # the very object: an attribute rebound later is seen, as in process
    try:
        assert run_emitted(reads_module_object, 1.5) == srcgrad.grad(reads_module_object)(1.5) == 4.0
    finally:
        settings_object.W = 2.0


VEC_3 = np.array([0.5, -1.0, 2.0])
WEC_2 = np.array([1.5, -0.5])


def updates_a_number(p, *, k=0.5):
    for e in VEC_3 + VEC_3:
        k = k * 0.5 + e
    k = ((MAT_2x3 + MAT_2x3) + (VEC_3 + VEC_3))[-1, 0]
    k += k
    return k * p


def reads_a_global_then_calls(x):
    for _ in range(0):
        if x < WEC_2[1] + x:
            break
    return updates_a_number(x)


def test_a_helper_updating_a_number_is_no_global_write():
    # Found by the fuzzer: `MAT_2x3 + MAT_2x3` was taken for a list concatenation holding the global's items, so `k`
    # (an item of it) could be one of them, and `k += k` a write into the global (tests/test_trust_aliasing_helpers.py)
    check_grad(reads_a_global_then_calls, 0.7)


def mean_of_broadcast(y):
    return np.sum(np.mean(y - MAT_2x3, axis=0))


MAT_2x3 = np.array([[0.5, -1.0, 0.25], [1.0, 0.75, -0.5]])


def test_forward_mode_tangent_of_a_broadcast_float():
    # Found by the fuzzer's jvp mode: the tangent of a float that a subtraction broadcasts to an array stayed a float,
    # and np.mean(..., axis=0) of it raised AxisError (the class: tests/test_trust_forward_broadcast.py).
    assert srcgrad.jvp(mean_of_broadcast)(1.5, 1.0) == (mean_of_broadcast(1.5), 3.0)


def list_read_in_loop_then_grown(x):
    ys = [x, 2.0 * x]
    for _ in range(2):
        x = x * sum(ys)
    ys.append(x)
    return x


def test_a_list_read_in_a_loop_then_appended_to():
    # Found by the fuzzer's lists feature: "ValueError: srcgrad: adjoints of sequences of lengths 3 and 2" (a raw
    # exception: the adjoint of ys inside the loop has the loop's length, the one after it has one more).
    right_or_refused(list_read_in_loop_then_grown, 0.5)


def bump_in_place(y):
    y *= 3.0
    return y  # without a return the helper is refused


def scaled_by_helper(b):
    bump_in_place(b)
    return np.sum(b * 0.5)


def test_a_helper_that_scales_its_argument():
    # Python: b is scaled by 3 before the sum: value 9, gradient 1.5 each (f changes its argument: fresh copies)
    try:
        value, gradient = srcgrad.value_and_grad(scaled_by_helper)(np.array([1.0, 2.0, 3.0]))
    except srcgrad.SrcgradError as exc:
        assert not isinstance(exc, srcgrad.InternalError) and exc.location is not None
        return
    assert value == scaled_by_helper(np.array([1.0, 2.0, 3.0])) == 9.0
    np.testing.assert_allclose(gradient, [1.5, 1.5, 1.5])


def _twice(t):
    return t * 2.0


def full_of_a_helpers_number(w, v):
    return math.tanh(np.sum(np.full(3, _twice(w)) * v))


def test_a_number_spread_by_a_constructor_gets_a_number_gradient():
    """np.full(3, w): no operand is an array, the result is; w's adjoint is summed back to a number (found by the
    fuzzer: the gradient of a float parameter came back as an array of 3)."""
    v = np.array([0.5, -1.0, 2.0])
    g = srcgrad.grad(full_of_a_helpers_number, wrt=(0, 1))(0.3, v)
    assert type(g[0]) is float or np.ndim(g[0]) == 0
    check_grad(full_of_a_helpers_number, 0.3, v, wrt=(0, 1))


def returns_none_below_half(x):
    if x < 0.5:
        return None
    return x * 2.0


def test_forward_mode_of_a_function_returning_none():
    # Found by the fuzzer once jvp was no longer left out: jvp gave (None, 0.0) where reverse mode refuses; now the
    # forward code checks the output of a function with a `return None`, and the error names that return.
    assert srcgrad.jvp(returns_none_below_half)(0.7, 1.0) == (1.4, 2.0)
    with pytest.raises(srcgrad.NonNumericOutput) as info:
        srcgrad.jvp(returns_none_below_half)(0.1, 1.0)
    assert info.value.location.filename == HERE and "return None" in str(info.value)


# --- chained assignment `a = b = v` -------------------------------------------------------------------------------
# The value's temporary was renamed to the first name, and the second copied the old temporary: NameError 't1' in
# the generated code (an InternalError). Each name is now a copy of the one value (they share an object, as in
# Python: an item assignment through one of them is refused where the other is read).


def chained_names(x):
    a = b = x * 2.0
    a = a + 1.0
    return a * b


def chained_into_an_item(x):
    y = np.zeros(2)
    y[0] = b = x * 3.0
    return np.sum(y) * b


def chained_shared_array(x):
    a = b = np.zeros(3)
    a[0] = x
    return np.sum(b) * x


def test_chained_assignment():
    check_grad(chained_names, 1.3)
    check_grad(chained_into_an_item, 1.3)
    assert srcgrad.jvp(chained_names)(1.3, 1.0) == (pytest.approx(chained_names(1.3)), pytest.approx(8 * 1.3 + 2))
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(chained_shared_array)(1.3)
    assert info.value.location.line == chained_shared_array.__code__.co_firstlineno + 2
