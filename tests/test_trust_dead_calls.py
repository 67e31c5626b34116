"""A call whose value nothing reads still runs when it can raise: validation code is code.

Python raises at ``np.linalg.cholesky(cov)`` on a line of its own when ``cov`` is not positive definite; a gradient
that skipped the unused call returned a number for a function that has none. Each case raises in Python; the
gradient, the value-and-gradient and the forward mode must raise the same exception, and with valid inputs they
must give the right numbers."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

NOT_PD = np.array([[1.0, 2.0], [2.0, 1.0]])
PD = np.array([[2.0, 0.5], [0.5, 1.0]])


def cholesky_check(x, cov):
    np.linalg.cholesky(cov)  # raises LinAlgError when cov is not positive definite
    return x * 2.0 + np.sum(cov)


def shapes_check(x, a, b):
    a + b  # raises ValueError when the shapes do not broadcast
    return x * np.sum(a)


def axis_check(x, a):
    np.sum(a, axis=2)  # raises AxisError for a 1-d array
    return x * 3.0


def index_check(x, a):
    a[5]  # raises IndexError for a short array
    return x * 3.0


def sliced_check(x, a):
    np.tanh(a) * a[:2]  # raises ValueError for a of length 3: a slice has a shape of its own
    return x * np.sum(a)


def loop_shrunk_check(x, a):
    b = a
    for _ in range(2):
        b = b[1:]
    np.exp(a) + b  # raises ValueError: b was cut in the loop
    return x * 2.0


def solve_check(x, m, v):
    np.linalg.solve(m, v)  # raises LinAlgError for a singular matrix
    return x ** 2


RAISING = [
    (cholesky_check, (1.5, NOT_PD), np.linalg.LinAlgError),
    (shapes_check, (1.5, np.ones(3), np.ones(2)), ValueError),
    (axis_check, (1.5, np.ones(3)), np.exceptions.AxisError if hasattr(np, "exceptions") else ValueError),
    (index_check, (1.5, np.ones(3)), IndexError),
    (sliced_check, (1.5, np.ones(3)), ValueError),
    (loop_shrunk_check, (1.5, np.ones(4)), ValueError),
    (solve_check, (1.5, np.zeros((2, 2)), np.ones(2)), np.linalg.LinAlgError),
]


@pytest.mark.parametrize(("f", "args", "error"), RAISING, ids=[c[0].__name__ for c in RAISING])
@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jvp"])
def test_an_unused_call_that_raises_still_raises(f, args, error, transform):
    with pytest.raises(error):
        f(*args)
    if transform == "jvp":
        run = srcgrad.jvp(f)
        with pytest.raises(error):
            run(*args, 1.0)
    else:
        with pytest.raises(error):
            getattr(srcgrad, transform)(f)(*args)


VALID = [
    (cholesky_check, (1.5, PD)),
    (shapes_check, (1.5, np.ones(3), np.ones(3))),
    (index_check, (1.5, np.arange(6.0))),
    (solve_check, (1.5, PD, np.ones(2))),
]


@pytest.mark.parametrize(("f", "args"), VALID, ids=[c[0].__name__ for c in VALID])
def test_with_valid_inputs_the_gradient_is_right(f, args):
    check_grad(f, *args)
    value, _ = srcgrad.value_and_grad(f)(*args)
    assert value == pytest.approx(f(*args))


def mean_square(r):
    return np.mean(r ** 2)


def test_a_gradient_still_skips_a_value_it_does_not_need():
    # an elementwise op of one array and a reduction over all axes cannot raise: grad does not compute the loss
    code = [ln for ln in srcgrad.source(srcgrad.grad(mean_square), np.ones(3)).splitlines()
            if not ln.strip().startswith("#")]
    assert not any("np.mean" in ln for ln in code)


def chain(x):
    return np.sum(np.tanh(x) ** 2 * np.exp(-x) + np.sin(x))


def test_a_gradient_skips_an_elementwise_value_of_arrays_of_one_shape():
    # tanh(x) ** 2, exp(-x) and sin(x) all have x's shape: their sum cannot raise, and the gradient never needs it
    grad = srcgrad.grad(chain)
    x = np.linspace(-1.0, 1.0, 5)
    code = [ln for ln in srcgrad.source(grad, x).splitlines() if not ln.strip().startswith("#")]
    assert not any("np.sin(" in ln for ln in code)
    check_grad(chain, x)
