"""Runtime helpers added for lazy (Dask) gradients, on the numpy path and in the numba backend: np.logaddexp's
adjoint weight is numpy's ``exp(x - total)`` (same numbers as before), the logistic function is exact to rounding
and silent where the exponential overflows, and the numba backend compiles both helpers (its twins)."""

import warnings

import numpy as np
import pytest

import srcgrad
from srcgrad import runtime
from srcgrad.testing import check_grad


def test_logaddexp_weight_is_exp_of_the_difference_for_numpy():
    x, other = np.linspace(-5.0, 5.0, 7), np.linspace(1.0, -1.0, 7)
    total = np.logaddexp(x, other)
    np.testing.assert_array_equal(runtime.logaddexp_weight(x, other, total), np.exp(x - total))
    assert runtime.logaddexp_weight(0.5, 1.0, float(np.logaddexp(0.5, 1.0))) == np.exp(0.5 - np.logaddexp(0.5, 1.0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logistic_is_exact_and_silent_at_the_extremes(dtype):
    d = np.array([-1000.0, -745.0, -700.0, -104.0, -100.0, -88.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = runtime.logistic(d)
        shifted = runtime.logistic(d + dtype(2.0), 2.0)
    exact = np.exp(-np.logaddexp(np.float64(0.0), -d.astype(np.float64)))  # (in float64, then rounded)
    np.testing.assert_allclose(got, exact.astype(dtype), rtol=8 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_allclose(shifted, got, rtol=64 * np.finfo(dtype).eps, atol=0)
    assert got.dtype == dtype and runtime.logistic(np.float64(-800.0)) == np.exp(-800.0)


def softplus_mean(x):
    return np.mean(np.logaddexp(0.0, x) * x) + np.mean(np.logaddexp(x, 1.0))


def test_second_order_through_the_logaddexp_weight():
    x = np.linspace(-2.0, 2.0, 5)
    check_grad(softplus_mean, x)
    h = srcgrad.hessian(softplus_mean)(x)
    eps = 1e-5
    g = srcgrad.grad(softplus_mean)
    columns = [(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(5)]
    np.testing.assert_allclose(h, np.stack(columns, axis=-1), rtol=1e-6, atol=1e-9)


def test_the_numba_backend_compiles_the_new_helpers():
    pytest.importorskip("numba")
    x = np.linspace(-2.0, 2.0, 5)
    for arg in (x, x.astype(np.float32)):  # (float32: the general variant, size_or_one)
        got = srcgrad.grad(softplus_mean, backend="numba")(arg)
        np.testing.assert_allclose(got, srcgrad.grad(softplus_mean)(arg), rtol=1e-6)
