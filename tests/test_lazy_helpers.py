"""Helpers of lazy (Dask) gradients on the numpy path and in the numba backend: np.logaddexp's adjoint (read from
its inputs) differentiated twice, and the numba backend compiles the general variant (size_or_one)."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def softplus_mean(x):
    return np.mean(np.logaddexp(0.0, x) * x) + np.mean(np.logaddexp(x, 1.0))


def test_second_order_through_np_logaddexp():
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
