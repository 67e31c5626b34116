"""Regression tests: every wrong gradient, wrong value or crash found (mostly by the fuzzer, tests/fuzzing.py), reduced
to a minimal function. A test marked ``xfail(strict=True)`` is a known bug that is not fixed yet: fixing it makes
the test pass, and strict xfail then fails the suite, as a reminder to remove the mark (and the matching entry of
``fuzzing.KNOWN_BUGS``)."""

import math

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


@pytest.mark.xfail(strict=True, reason="math.fabs rule for non-Python-float operands computes (x > 0) - (x < 0) on "
                                       "numpy booleans: raw TypeError 'numpy boolean subtract'")
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


@pytest.mark.xfail(strict=True, reason="`y += x` on an ndarray is lowered as `y = y + x`; an alias of y keeps the old "
                                       "value: srcgrad's value 3.0 and gradient 1 instead of 6.0 and 2")
def test_inplace_add_seen_through_alias():
    x = np.ones(3)
    value, g = srcgrad.value_and_grad(aliased_update)(x)
    assert value == aliased_update(x)
    np.testing.assert_allclose(g, np.full(3, 2.0))
