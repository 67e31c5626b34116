"""Unpacking a value whose length the code generator does not know: ``a, b = three(x)`` where a helper returns three
items, ``a, b = X`` where ``X`` has three rows, ``a, b = xs`` for a list argument. Python raises ValueError (too many
or not enough values to unpack); the generated code read ``value[0]`` and ``value[1]`` and differentiated on,
silently. Now it checks the length where it unpacks (runtime.check_unpacks), in reverse and forward mode and in
emitted modules; a length known when the code is generated (a display, a structured parameter) is compared then, and
a difference is refused with an error that is also Python's ValueError."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def three(x):
    return x, 2.0 * x, 3.0 * x


def one(x):
    return (x,)


def too_many_from_helper(x):
    a, b = three(x)
    return a * b


def one_name_from_helper(x):
    a, = three(x)
    return a


def too_few_from_helper(x):
    a, b = one(x)
    return a * b


def right_count_from_helper(x):
    a, b, c = three(x)
    return a * b * c + np.sin(a)


def nested_from_helper(x):
    (a, b, c), d = (three(x), x)
    return a * b * c * d


def rows(X):
    a, b = X
    return np.sum(a * np.sin(b))


def pairs_loop(x, pairs):
    total = 0.0
    for a, b in pairs:
        total = total + a * x * b
    return total


def list_of_constants(x, xs):
    a, b = xs
    return a * x + b * x * x


def strings(x, names):
    first, second = names
    return x * len(first) + x * x * len(second)


def python_error(f, *args):
    try:
        f(*args)
    except Exception as exc:  # noqa: BLE001 - the exception Python raises, whatever it is
        return type(exc)
    return None


def jvp_of(f, args, wrt=0):
    tangents = [1.0 if isinstance(args[wrt], float) else np.ones_like(args[wrt])]
    return srcgrad.jvp(f, wrt=wrt)(*args, *tangents)


WRONG = [(too_many_from_helper, (1.5,)), (one_name_from_helper, (1.5,)), (too_few_from_helper, (1.5,)),
         (rows, (np.arange(6.0).reshape(3, 2),)), (rows, (np.arange(3.0),)),
         (pairs_loop, (1.5, [(1.0, 2.0), (3.0, 4.0, 5.0)])), (list_of_constants, (1.5, [1.0, 2.0, 3.0])),
         (list_of_constants, (1.5, [1.0])), (strings, (1.5, ["ab", "cde", "f"]))]


@pytest.mark.parametrize(("f", "args"), WRONG, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_unpacking_a_wrong_count_raises_what_python_raises(f, args, mode):
    expected = python_error(f, *args)
    assert expected is ValueError
    with pytest.raises(ValueError, match="values to unpack"):
        srcgrad.grad(f)(*args) if mode == "grad" else jvp_of(f, args)


RIGHT = [(right_count_from_helper, (1.5,)), (nested_from_helper, (0.7,)), (rows, (np.arange(4.0).reshape(2, 2),)),
         (pairs_loop, (1.5, [(1.0, 2.0), (3.0, 4.0)])), (list_of_constants, (1.5, [1.0, 2.0])),
         (strings, (1.5, ["ab", "cde"]))]


@pytest.mark.parametrize(("f", "args"), RIGHT, ids=lambda v: getattr(v, "__name__", ""))
def test_unpacking_the_right_count_differentiates(f, args):
    check_grad(f, *args, wrt=0)
    value, tangent = jvp_of(f, args)
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    eps = 1e-6
    x = args[0]
    plus, minus = f(x + eps, *args[1:]), f(x - eps, *args[1:])
    np.testing.assert_allclose(np.sum(tangent), np.sum((plus - minus) / (2 * eps)), rtol=1e-6)


def test_the_check_survives_the_cached_variant():
    """The first call unpacks three rows right; a later call with other rows goes through the same variant (the
    length is not part of the variant's kinds) and still raises."""
    df = srcgrad.grad(rows)
    good = np.arange(4.0).reshape(2, 2)
    np.testing.assert_allclose(df(good), [np.sin(good[1]), good[0] * np.cos(good[1])])
    df(good)
    with pytest.raises(ValueError, match="too many values to unpack"):
        df(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match="not enough values to unpack"):
        df(np.arange(2.0).reshape(1, 2))


def test_an_emitted_module_checks_the_count():
    namespace: dict = {}
    exec(compile(srcgrad.emit(too_many_from_helper), "emitted.py", "exec"), namespace)  # noqa: S102 - our module
    with pytest.raises(ValueError, match="too many values to unpack"):
        namespace["too_many_from_helper_grad"](1.5)
    namespace = {}
    exec(compile(srcgrad.emit(right_count_from_helper), "emitted.py", "exec"), namespace)  # noqa: S102
    assert namespace["right_count_from_helper_grad"](1.5) == pytest.approx(srcgrad.grad(right_count_from_helper)(1.5))
    namespace = {}
    exec(compile(srcgrad.emit(rows), "emitted.py", "exec"), namespace)  # noqa: S102
    with pytest.raises(ValueError, match="too many values to unpack"):
        namespace["rows_grad"](np.arange(6.0).reshape(3, 2))


def display_count(x):
    a, b = x, 2.0 * x, 3.0 * x
    return a * b


def copied_display_count(x):
    t = (x, 2.0 * x, 3.0 * x)
    u = t
    a, b = u
    return a * b


def structured_count(ws):
    a, b = ws
    return a * b


@pytest.mark.parametrize(("f", "args"), [(display_count, (1.5,)), (copied_display_count, (1.5,)),
                                         (structured_count, ([1.0, 2.0, 3.0],))])
def test_a_count_known_when_generating_is_refused_as_python_s_value_error(f, args):
    assert python_error(f, *args) is ValueError
    with pytest.raises(srcgrad.SrcgradError, match="cannot unpack 3 values into 2 names") as info:
        srcgrad.grad(f)(*args)
    assert isinstance(info.value, ValueError)
    assert info.value.location.source_line.strip().startswith("a, b = ")


def star_unpacking(x):
    a, *rest = three(x)
    return a * rest[0]


def test_star_unpacking_is_refused_at_its_line():
    with pytest.raises(srcgrad.SrcgradError, match="star-unpacking") as info:
        srcgrad.grad(star_unpacking)(1.5)
    assert info.value.location.line == star_unpacking.__code__.co_firstlineno + 1
