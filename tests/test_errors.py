"""Errors about user code (issue 2): each rejected construct raises a SrcgradError naming file:line:col, showing the
line with a caret, and saying what to do instead — no later than the first call."""

import math
import re

import numpy as np
import pytest

import srcgrad

HERE = __file__.rsplit("/", 1)[-1]


def uses_try(x):
    try:
        z = x * 3.0
        y = z * 2.0
    except ValueError:
        y = z  # z is assigned in the try block: unknown here
    return y


def uses_with(x):
    with open("f") as (fh, other):  # a single name only
        fh.read()
    return x


def uses_global_stmt(x):
    global COUNTER
    COUNTER = x
    return x


def uses_yield(x):
    yield x


def uses_lambda(x):
    return (lambda v: v * 2.0)(x)


def uses_nested_def(x):
    def inner(v):
        return inner(v) * 2.0
    return inner(x)


def uses_setcomp(x):
    return len({x * i for i in range(3)})


def uses_genexp_outside_sum(x):
    return sorted(x * i for i in range(3))[0]


def uses_dict(x, k="a"):
    d = {"a": x}
    return d[k]  # (constant keys are read and written: tests/test_dicts.py)


def uses_fstring(x):
    return float(f"{x}")  # no derivative flows through a string


def uses_star(x):
    args = (x,)
    return math.sin(*args)


def _gather(a, *rest):
    return a * rest[0]


def uses_varargs(x):
    return _gather(2.0, x)  # a differentiated value into a helper's *rest


BUFFER = np.zeros(3)


def uses_item_write(x):
    BUFFER[0] = x  # a global array: srcgrad writes only into local variables
    return np.sum(BUFFER)


def uses_attribute_write(x):
    x.value = 3.0
    return x


def uses_walrus(x):
    if x > 0.0 and (y := x * 2.0) > 1.0:  # binds only when `and` reaches it
        return y
    return x


def uses_del(x):
    y = x
    del y
    return x


def uses_import(x):
    import os  # noqa: F401
    return x


def uses_match(x):
    match x:
        case 1:
            return 1.0
    return x


def uses_set(x):
    return len({x})


def uses_no_return(x):
    x * 2.0


def uses_undefined(x):
    return x * undefined_name  # noqa: F821


REJECTED = [
    (uses_try, "try"), (uses_with, "with"), (uses_global_stmt, "global"), (uses_yield, "yield"),
    (uses_lambda, "lambda"), (uses_nested_def, "calls itself"), (uses_setcomp, "set"),
    (uses_genexp_outside_sum, "generator expression"),
    (uses_dict, "dict"), (uses_fstring, "formatted into a string"), (uses_star, "star"), (uses_varargs, r"\*rest"),
    (uses_item_write, "item"), (uses_attribute_write, "attribute"), (uses_walrus, ":="),
    (uses_del, "del"), (uses_import, "import"), (uses_match, "match"),
    (uses_set, "set"), (uses_no_return, "return"), (uses_undefined, "not defined"),
]


@pytest.mark.parametrize("func,what", REJECTED, ids=[f.__name__ for f, _ in REJECTED])
def test_rejected_with_location(func, what):
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(func)(1.0)
    err = info.value
    text = str(err)
    assert re.search(what, text), text
    assert err.location is not None and err.location.filename.endswith(HERE)
    assert err.location.line > func.__code__.co_firstlineno - 1
    assert re.search(rf"{HERE}:\d+:\d+: ", text)
    assert "^" in text and "hint:" in text


def test_error_raised_at_decoration_for_syntax():
    with pytest.raises(srcgrad.UnsupportedSyntax):
        srcgrad.grad(uses_match)


def no_rule(x):
    return np.fft.fft(x).real.sum()


def unknown_function(x):
    return opaque(x) * 2.0


class _Opaque:
    def __call__(self, v):
        return v


opaque = _Opaque()


def and_or_value(x):
    return (x or 1.0) * 2.0


def test_no_rule_errors():
    for func in (unknown_function, and_or_value):
        with pytest.raises(srcgrad.SrcgradError) as info:
            srcgrad.grad(func)(1.0)
        assert info.value.location is not None and "hint:" in str(info.value)


def test_source_unavailable():
    namespace = {}
    exec("def f(x):\n    return x * 2.0\n", namespace)
    with pytest.raises(srcgrad.SourceUnavailable, match="not available"):
        srcgrad.grad(namespace["f"])
    with pytest.raises(srcgrad.SourceUnavailable):
        srcgrad.grad(math.sin)
