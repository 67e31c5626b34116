"""Bad input at call time (issue 8): every wrong argument gives a clear error or a documented result, on the first call
(which generates code) and on later calls (which take the fast path); NaN and inf propagate as numpy would.

Decisions, as documented in the README: the gradient has the function's signature, so a wrong number of arguments is
Python's ``TypeError``; a differentiated argument must be a real number or a real array (``InvalidArgument``, also
a ``TypeError``, naming the parameter); an integer argument gets a float gradient (a Python int a float, an integer
array a float64 array); arguments that are not differentiated are passed through, as to the function itself. On
Python floats the gradient code is float arithmetic: where a derivative is infinite (``sqrt`` at 0) it raises
``ZeroDivisionError`` as float division does; numpy values give ``inf`` (with numpy's warning).
"""

import math
import warnings

import numpy as np
import pytest

import srcgrad


def two(x, y):
    return x * x * y


def total(a):
    return np.sum(a * a)


def keyword_only(x, *, k=2.0):
    return math.sin(x) * k


def labelled(x, label):
    return x * 3.0


def fresh(mode="grad", func=two, **kw):
    return getattr(srcgrad, mode)(func, **kw)


# --- the number of arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["grad", "value_and_grad"])
@pytest.mark.parametrize("after_first_call", [False, True])
def test_wrong_number_of_arguments_is_a_type_error(mode, after_first_call):
    df = fresh(mode)
    if after_first_call:
        df(1.0, 2.0)
    with pytest.raises(TypeError, match=r"two_\w+\(\) missing 1 required positional argument: 'y'"):
        df(1.0)
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        df(1.0, 2.0, 3.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        df(1.0, 2.0, z=1.0)
    with pytest.raises(TypeError, match="positional argument"):
        fresh(mode, keyword_only)(1.0, 3.0)


def test_vjp_arguments():
    v = srcgrad.vjp(total)
    with pytest.raises(srcgrad.InvalidArgument, match="missing a required argument: 'a'"):
        v(np.ones(2))  # the only argument is taken as the seed
    with pytest.raises(srcgrad.InvalidArgument, match="too many positional arguments"):
        v(np.ones(2), 1.0, 2.0)
    with pytest.raises(srcgrad.InvalidArgument, match="seed.*missing"):
        v()
    np.testing.assert_allclose(v(np.ones(2), 1.0), [2.0, 2.0])
    np.testing.assert_allclose(v(np.ones(2), seed=np.float64(0.5)), [1.0, 1.0])


@pytest.mark.parametrize("seed,what", [(1j, "complex"), ("s", "str"), (np.ones(2, dtype=complex), "complex"),
                                       (None, "NoneType")])
def test_vjp_seed_must_be_real(seed, what):
    v = srcgrad.vjp(total)
    for _ in range(2):  # first call and cached variant
        with pytest.raises(srcgrad.InvalidArgument, match=f"seed.*real number or array, got .*{what}"):
            v(np.ones(2), seed)
        v(np.ones(2), 1.0)


# --- what a differentiated argument may be -----------------------------------------------------------------------

# (lists, tuples, dicts, namedtuples and dataclasses are structures of parameters: tests/test_structures.py)
NOT_NUMBERS = [("a", "str"), (None, "NoneType"), (object(), "object")]


@pytest.mark.parametrize("after_first_call", [False, True])
def test_structure_used_as_a_number(after_first_call):
    """A list where the function multiplies numbers: what Python does (list * list is a TypeError); a dict: refused
    at the line that uses it as a whole value."""
    df = fresh()
    if after_first_call:
        df(1.0, 2.0)
    with pytest.raises(TypeError, match="can't multiply sequence"):
        df([1.0, 2.0], 2.0)
    with pytest.raises(srcgrad.UnsupportedSyntax, match="used here as a whole value"):
        df({"x": 1.0}, 2.0)


@pytest.mark.parametrize("value,what", NOT_NUMBERS, ids=[w for _, w in NOT_NUMBERS])
@pytest.mark.parametrize("after_first_call", [False, True])
def test_non_numeric_argument(value, what, after_first_call):
    df = fresh()
    if after_first_call:
        df(1.0, 2.0)
    with pytest.raises(srcgrad.InvalidArgument, match=f"cannot differentiate with respect to `x`: got {what}") as info:
        df(value, 2.0)
    assert "hint:" in str(info.value)
    assert isinstance(info.value, TypeError)


COMPLEX = [1j, np.complex128(1.0), np.complex64(1.0), np.ones(3, dtype=complex)]


@pytest.mark.parametrize("value", COMPLEX, ids=["complex", "complex128", "complex64", "complex_array"])
@pytest.mark.parametrize("after_first_call", [False, True])
def test_complex_values_are_rejected(value, after_first_call):
    df = fresh(func=total) if np.ndim(value) else fresh()
    if after_first_call:
        df(np.ones(3)) if np.ndim(value) else df(1.0, 2.0)
    with pytest.raises(srcgrad.InvalidArgument, match="complex"):
        df(value) if np.ndim(value) else df(value, 2.0)


@pytest.mark.parametrize("dtype", [object, "U1", "datetime64[D]"])
@pytest.mark.parametrize("after_first_call", [False, True])
def test_arrays_of_non_numbers_are_rejected(dtype, after_first_call):
    df = fresh(func=total)
    if after_first_call:
        df(np.ones(2))
    values = np.array(["2020-01-01"] * 2, dtype=dtype) if dtype is not object else np.ones(2, dtype=object)
    with pytest.raises(srcgrad.InvalidArgument, match="dtype"):
        df(values)


def test_integer_arguments_get_float_gradients():
    g = fresh()(3, 2.0)
    assert type(g) is float and g == 12.0
    g = fresh()(True, 2.0)
    assert type(g) is float and g == 4.0
    g = fresh(func=total)(np.arange(3))
    assert g.dtype == np.float64 and g.tolist() == [0.0, 2.0, 4.0]
    g = fresh(func=total)(np.array([True, False]))
    assert g.dtype == np.float64 and g.tolist() == [2.0, 0.0]
    g = fresh(func=total)(np.ones(2, dtype=np.float32))
    assert g.dtype == np.float32


@pytest.mark.parametrize("value", [np.int64(3), np.int32(3), np.bool_(True)], ids=["int64", "int32", "bool_"])
def test_numpy_integer_scalar_gets_float64_gradient(value):
    g = fresh()(value, 2.0)
    assert isinstance(g, np.float64) and g == 4.0 * float(value)


def test_arguments_not_differentiated_are_passed_through():
    assert fresh(func=labelled)(2.0, "a label") == 3.0
    assert fresh(func=labelled)(2.0, None) == 3.0
    with pytest.raises(TypeError, match="can't multiply sequence"):
        fresh()(1.0, "y")  # as two(1.0, "y") itself fails


# --- NaN and inf ---------------------------------------------------------------------------------------------------


def poly(x):
    return x * x * 3.0 + x


def exp_log(a):
    return np.sum(np.exp(a) + np.log(a * a + 1.0))


def sin_weighted(a):
    return np.sum(np.sin(a) * a)


def scalar_math(x):
    return math.exp(x) + math.atan(x)


def matvec(w, x):
    return np.sum(np.tanh(x @ w))


def numpy_gradient(name, *args):
    """The gradients written with numpy, evaluated as numpy evaluates them (NaN and inf included)."""
    if name == "poly":
        (x,) = args
        return 6.0 * x + 1.0
    if name == "exp_log":
        (a,) = args
        return np.exp(a) + 2.0 * a / (a * a + 1.0)
    if name == "sin_weighted":
        (a,) = args
        return np.cos(a) * a + np.sin(a)
    if name == "scalar_math":
        (x,) = args
        return np.exp(x) + 1.0 / (1.0 + x * x)
    w, x = args
    return x.T @ (1.0 - np.tanh(x @ w) ** 2)


SPECIAL = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("special", SPECIAL, ids=["nan", "inf", "-inf"])
def test_nan_and_inf_propagate_as_numpy_would(special):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for func in (poly, scalar_math):
            for x in (special, np.float64(special)):
                got = srcgrad.grad(func)(x)
                np.testing.assert_array_equal(got, numpy_gradient(func.__name__, np.float64(x)))
        a = np.array([0.5, special, -1.5])
        for func in (exp_log, sin_weighted):
            got = srcgrad.grad(func)(a)
            np.testing.assert_array_equal(got, numpy_gradient(func.__name__, a))
        w, x = np.array([0.5, -1.0]), np.array([[1.0, special], [0.5, 2.0], [-1.0, 0.25]])
        np.testing.assert_array_equal(srcgrad.grad(matvec)(w, x), numpy_gradient("matvec", w, x))
        value, _ = srcgrad.value_and_grad(exp_log)(a)
        np.testing.assert_array_equal(value, exp_log(a))


def root(x):
    return math.sqrt(x)


def np_root(x):
    return np.sqrt(x)


def test_infinite_derivative_on_floats_and_numpy_values():
    with pytest.raises(ZeroDivisionError):
        srcgrad.grad(root)(0.0)  # float arithmetic, as 0.5 / math.sqrt(0.0) raises
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore")
        assert srcgrad.grad(np_root)(np.float64(0.0)) == np.inf
    with pytest.raises(ValueError, match="math domain error"):
        srcgrad.grad(root)(-1.0)  # where the function fails, the gradient fails the same way
