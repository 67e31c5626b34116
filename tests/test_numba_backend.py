"""backend="numba": the generated code compiled by numba's nopython mode (srcgrad/numba_backend.py).

Few cases (each compiles with numba, seconds apiece): gradients against central differences and the Python backend
on a scalar loop, a Newton iteration (a while loop), a helper function, a loop with a break, small array code; the
same readable text; refusals at the user's line for what numba cannot compile.
"""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad, numerical_grad

pytest.importorskip("numba")

try:
    import scipy.special
except ImportError:  # (the refusal test needs a function numba cannot compile: scipy's)
    scipy = None

from srcgrad.numba_backend import NumbaUnsupported  # noqa: E402


def scalar_loop(x, n):
    s = 1.0
    for _ in range(n):
        s = s + math.sin(x * s) * math.cos(x)
    return s


def cube_root(a):
    w = 1.0 + a / 3.0
    step = 1.0
    while abs(step) > 1e-13:  # Newton's method for w**3 = a
        step = (w * w * w - a) / (3.0 * w * w)
        w = w - step
    return w * math.exp(-a)


def _scaled_sin(a, b):
    return a * math.sin(b)


def loop_with_helper_and_break(x, n):
    s = 0.0
    for i in range(n):
        s = s + _scaled_sin(x, s + i)
        if s > 3.0:
            break
    return s * x


def mlp_loss(W1, W2, X, y):
    h = np.tanh(X @ W1)
    out = h @ W2
    return np.mean((out - y) ** 2)


def rnn(W, U, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h**2)


def test_scalar_loop_matches_differences_and_python():
    check_grad(scalar_loop, 0.3, 50, backend="numba")
    assert srcgrad.grad(scalar_loop, backend="numba")(0.7, 20) == pytest.approx(
        srcgrad.grad(scalar_loop)(0.7, 20), rel=1e-12)
    assert srcgrad.grad(scalar_loop, backend="numba")(0.7, 0) == 0.0  # the loop never ran: its range is empty


def test_newton_while_loop():
    for a in (0.5, 3.0):
        check_grad(cube_root, a, backend="numba")


def test_helper_pair_and_break_both_branches():
    # n = 2 ends before s > 3 (no break); n = 40 breaks: both the full and the counted prefix of the range reversed
    for n in (2, 40):
        check_grad(loop_with_helper_and_break, 0.9, n, backend="numba")


def test_array_code_mlp_and_rnn(rng):
    W1, W2 = rng.normal(size=(4, 5)), rng.normal(size=(5, 2))
    X, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    check_grad(mlp_loss, W1, W2, X, y, wrt=(0, 1), backend="numba")
    W, U = 0.5 * rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    xs, h0 = rng.normal(size=(4, 2)), rng.normal(size=3)
    check_grad(rnn, W, U, xs, h0, wrt=(0, 3), backend="numba")


def test_vjp_and_jvp(rng):
    def f(x):
        return np.tanh(x) * x

    x, v = rng.normal(size=4), rng.normal(size=4)
    expected = v * (np.tanh(x) + x * (1.0 - np.tanh(x) ** 2))
    np.testing.assert_allclose(srcgrad.vjp(f, backend="numba")(x, v), expected, rtol=1e-12)
    value, tangent = srcgrad.jvp(f, backend="numba")(x, v)
    np.testing.assert_allclose(value, f(x), rtol=1e-12)
    np.testing.assert_allclose(tangent, expected, rtol=1e-12)


def test_same_readable_text_and_compiled_function():
    compiled = srcgrad.grad(scalar_loop, backend="numba")
    plain = srcgrad.grad(scalar_loop)
    assert srcgrad.source(compiled, 0.3, 5) == srcgrad.source(plain, 0.3, 5)
    assert "reversed(" in srcgrad.source(compiled, 0.3, 5)
    compiled(0.3, 5)
    assert compiled.__srcgrad_transform__.last.function.__srcgrad_compiled__.signatures  # numba compiled it


def test_numerical_sanity_of_the_difference_helper():
    # (guards the helper the tests above rely on: a known derivative)
    assert numerical_grad(lambda x: x**3, (2.0,), 0) == pytest.approx(12.0, rel=1e-8)


def _erf_twice(x):
    return scipy.special.erf(x) * 2.0


def test_refusal_names_the_user_line_and_reason():
    if scipy is None:
        pytest.skip("scipy is not installed")
    with pytest.raises(NumbaUnsupported) as info:  # (the value needs erf itself: the gradient alone does not)
        srcgrad.value_and_grad(_erf_twice, backend="numba")(0.3)
    err = info.value
    assert err.location.line == _erf_twice.__code__.co_firstlineno + 1
    assert err.location.filename == __file__
    assert "erf" in err.message and "numba cannot compile" in err.message


def _linspace_square_sum(x):
    return np.sum(np.linspace(-x, x, 5) ** 2) * x


def test_refusal_of_code_compiled_from_the_disk_cache_names_the_user_line(tmp_path):
    # (numba names a file by its path relative to the working directory: the text kept on disk is found again)
    srcgrad.cache.enable(tmp_path / "cache")  # (on, whatever SRCGRAD_CACHE says)
    try:
        with pytest.raises(NumbaUnsupported) as info:
            srcgrad.grad(_linspace_square_sum, backend="numba")(0.5)
        err = info.value
        assert err.location.line == _linspace_square_sum.__code__.co_firstlineno + 1
        assert err.location.filename == __file__ and "numba cannot compile the gradient of this line" in err.message
        assert list((srcgrad.cache.directory() / "numba").glob("*.py"))  # (compiled from a file in the cache)
    finally:
        srcgrad.cache.reset()


WEIGHTS = np.array([1.0, 2.0])


def _reads_global_array(x):
    return np.sum(WEIGHTS * x)


def test_global_array_refused():
    with pytest.raises(NumbaUnsupported, match="WEIGHTS"):
        srcgrad.grad(_reads_global_array, backend="numba")(np.ones(2))


def _parameter_named_like_a_global_array(WEIGHTS, n):
    total = 0.0
    for i in range(n):
        total = total + math.sin(WEIGHTS * i)  # (the parameter, not the module's array of that name)
    return total


def test_a_parameter_named_like_a_global_array_is_the_parameter():
    # (was refused: every word of the generated text was looked up among the user's globals)
    w, n = 0.7, 5
    grad = srcgrad.grad(_parameter_named_like_a_global_array, backend="numba")(w, n)
    expected = sum(i * math.cos(w * i) for i in range(n))
    assert grad == pytest.approx(expected, rel=1e-12)
    assert grad == pytest.approx(numerical_grad(_parameter_named_like_a_global_array, (w, n), 0), rel=1e-6)


def test_unknown_backend_refused():
    with pytest.raises(srcgrad.InvalidArgument, match="backend"):
        srcgrad.grad(scalar_loop, backend="cython")
