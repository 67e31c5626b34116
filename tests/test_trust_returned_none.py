"""A function that returns no number has no gradient, in every mode, and the error names the return that gave it.

Found: a None that reached the result through a copy (`r = None` ... `return r`, `return r if c else x * x`, a name
bound on some paths only) was taken for a number: gradient 0.0 and value None, no error. Second order (hvp,
hessian, grad of grad) named the `def` line (the output is checked after the returns join, in generated code) where
first order named the `return None`; a function running off its end was blamed on its last return."""

import numpy as np
import pytest

import srcgrad


def returns_a_none_variable(x, c):
    r = None
    if c > 0:
        return r
    return x * x


def maybe_none(x, c):
    r = None
    if c > 0:
        r = x * x
    return r


def none_in_a_conditional(x, c):
    r = None
    return r if c > 0 else x * x


def bound_on_one_path(x, c):
    if c > 0:
        r = x * x
    return r


def returns_none_early(x, c):
    if c > 0:
        return None
    y = x * x
    return np.sum(y)


def runs_off_its_end(x):
    if x > 0:
        return x * x


def line_of(f, text):
    lines, first = __import__("inspect").getsourcelines(f)
    return first + next(i for i, line in enumerate(lines) if line.strip() == text)


MODES = {
    "grad": lambda f, x, c: srcgrad.grad(f)(x, c),
    "value_and_grad": lambda f, x, c: srcgrad.value_and_grad(f)(x, c),
    "vjp": lambda f, x, c: srcgrad.vjp(f)(x, c, 1.0),
    "jvp": lambda f, x, c: srcgrad.jvp(f)(x, c, 1.0),
    "hvp": lambda f, x, c: srcgrad.hvp(f)(x, c, 1.0),
    "hessian": lambda f, x, c: srcgrad.hessian(f)(x, c),
    "grad of grad": lambda f, x, c: srcgrad.grad(srcgrad.grad(f))(x, c),
}

CASES = [(returns_a_none_variable, 1.0, "return r"), (maybe_none, -1.0, "return r"),
         (none_in_a_conditional, 1.0, "return r if c > 0 else x * x"), (bound_on_one_path, -1.0, "return r"),
         (returns_none_early, 1.0, "return None")]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("f", "c", "text"), CASES, ids=[c[0].__name__ for c in CASES])
def test_a_returned_none_is_refused_at_its_return(f, c, text, mode):
    with pytest.raises(srcgrad.NonNumericOutput, match="returned NoneType None") as info:
        MODES[mode](f, 1.5, c)
    assert info.value.location.filename == __file__
    assert info.value.location.line == line_of(f, text)


@pytest.mark.parametrize(("f", "c"), [(returns_a_none_variable, -1.0), (maybe_none, 1.0), (none_in_a_conditional, -1.0),
                                      (bound_on_one_path, 1.0), (returns_none_early, -1.0)])
def test_the_other_paths_still_differentiate(f, c):
    assert srcgrad.value_and_grad(f)(1.5, c) == (pytest.approx(2.25), pytest.approx(3.0))
    assert srcgrad.hvp(f)(1.5, c, 1.0) == pytest.approx(2.0)


@pytest.mark.parametrize("mode", ["grad", "hvp", "hessian"])
def test_running_off_the_end_is_blamed_on_the_function(mode):
    with pytest.raises(srcgrad.NonNumericOutput) as info:
        {"grad": lambda: srcgrad.grad(runs_off_its_end)(-1.0), "hvp": lambda: srcgrad.hvp(runs_off_its_end)(-1.0, 1.0),
         "hessian": lambda: srcgrad.hessian(runs_off_its_end)(-1.0)}[mode]()
    assert info.value.location.line == runs_off_its_end.__code__.co_firstlineno
