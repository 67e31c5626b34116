"""Forward mode and second order over Dask arrays (issue 20): ``jvp`` with Dask data or a Dask ``wrt`` (and tangent)
builds a lazy graph and gives numpy's numbers on the same data; ``hvp``, ``hessian`` and ``jacobian`` (both modes)
with Dask data give Dask arrays with numpy's numbers. The rule table runs forward with its arrays as Dask arrays:
each case gives numpy's tangent, or a SrcgradError at the case's line."""

import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
from test_dask import REFUSED, _dask_arrays, _line_of, _sweep_cases, lazily_or_refused, no_compute  # noqa: E402

import srcgrad  # noqa: E402
from srcgrad.errors import UnsupportedValue  # noqa: E402
from srcgrad.testing import numerical_grad  # noqa: E402


def logistic_loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z)


def data(n=60, d=3, chunks=20):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 0.5).astype(float)
    return X, y, da.from_array(X, chunks=(chunks, d)), da.from_array(y, chunks=chunks)


W, V = np.array([0.3, -0.2, 0.1]), np.array([1.0, 0.5, -2.0])


def test_jvp_with_dask_data_is_lazy_and_right():
    X, y, dX, dy = data()
    with no_compute():
        value, tangent = srcgrad.jvp(logistic_loss)(W, dX, dy, V)
    assert isinstance(value, da.Array) and isinstance(tangent, da.Array)
    value, tangent = dask.compute(value, tangent)
    value_np, tangent_np = srcgrad.jvp(logistic_loss)(W, X, y, V)
    assert value == pytest.approx(value_np, rel=1e-13) and tangent == pytest.approx(tangent_np, rel=1e-12)
    assert tangent_np == pytest.approx(numerical_grad(logistic_loss, (W, X, y), 0) @ V, rel=1e-6)


def test_jvp_with_a_dask_wrt_and_tangent_is_lazy_and_right():
    X, y, dX, dy = data()
    w, v = da.from_array(W, chunks=2), da.from_array(V, chunks=2)
    with no_compute():
        value, tangent = srcgrad.jvp(logistic_loss)(w, dX, dy, v)
        value_only, tangent_of_numpy_data = srcgrad.jvp(logistic_loss)(w, X, y, v)
    assert isinstance(tangent, da.Array) and isinstance(tangent_of_numpy_data, da.Array)
    expected = srcgrad.jvp(logistic_loss)(W, X, y, V)[1]
    assert float(tangent.compute()) == pytest.approx(expected, rel=1e-12)
    assert float(tangent_of_numpy_data.compute()) == pytest.approx(expected, rel=1e-12)


def elementwise(x, c):
    return np.tanh(x) * c + np.logaddexp(x, c)


def test_jvp_of_an_array_function_keeps_the_chunks():
    x, c = np.linspace(-2.0, 2.0, 8), np.linspace(1.0, 0.0, 8)
    dx, t = da.from_array(x, chunks=3), np.linspace(0.5, -0.5, 8)
    with no_compute():
        value, tangent = srcgrad.jvp(elementwise)(dx, c, t)
    assert isinstance(tangent, da.Array) and tangent.chunks == dx.chunks
    value_np, tangent_np = srcgrad.jvp(elementwise)(x, c, t)
    np.testing.assert_allclose(value.compute(), value_np, rtol=1e-14)
    np.testing.assert_allclose(tangent.compute(), tangent_np, rtol=1e-14)


def test_hvp_hessian_and_jacobians_with_dask_data():
    X, y, dX, dy = data()
    with no_compute():
        hvp = srcgrad.hvp(logistic_loss)(W, dX, dy, V)
        hessian = srcgrad.hessian(logistic_loss)(W, dX, dy)
        jac_rev = srcgrad.jacobian(tanh_margins, mode="rev")(W, dX)
        jac_fwd = srcgrad.jacobian(tanh_margins, mode="fwd")(W, dX)
    for got in (hvp, hessian, jac_rev, jac_fwd):
        assert isinstance(got, da.Array)
    expected_hessian = srcgrad.hessian(logistic_loss)(W, X, y)
    p = 1.0 / (1.0 + np.exp(-(X @ W)))
    np.testing.assert_allclose(expected_hessian, X.T @ (X * (p * (1 - p))[:, None]) / len(y), rtol=1e-12)
    np.testing.assert_allclose(hessian.compute(), expected_hessian, rtol=1e-12)
    np.testing.assert_allclose(hvp.compute(), expected_hessian @ V, rtol=1e-12)
    np.testing.assert_allclose(jac_rev.compute(), (1 - np.tanh(X @ W) ** 2)[:, None] * X, rtol=1e-12)
    np.testing.assert_allclose(jac_fwd.compute(), jac_rev.compute(), rtol=1e-12)


def tanh_margins(w, X):
    return np.tanh(X @ w)


def branches(x):
    if np.sum(x) > 0:  # an `if` on a Dask value computes it
        return np.sum(x ** 2)
    return np.sum(x)


def test_jvp_refuses_a_computation_at_the_users_line():
    x = da.from_array(np.array([1.0, 2.0, -0.5]), chunks=2)
    with no_compute(), pytest.raises(UnsupportedValue) as caught:
        srcgrad.jvp(branches)(x, np.ones(3))
    assert "this line computes a Dask array" in caught.value.message
    assert caught.value.location.filename == __file__ and caught.value.location.line == _line_of(branches, "if np.sum")


# --- the rule table forward, with Dask arrays ----------------------------------------------------------------------


@pytest.mark.parametrize("case", _sweep_cases(), ids=lambda c: c.id)
def test_rule_case_forward_with_dask_arrays_is_right_or_refused(case):
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    position = case.wrt[0]
    dask_args = _dask_arrays(args)
    if all(a is b for a, b in zip(args, dask_args)):
        pytest.skip("no array argument")
    x = args[position]
    t = float(np.random.default_rng(1).normal()) if isinstance(x, (float, int)) else \
        np.random.default_rng(1).normal(size=np.shape(x))
    expected = srcgrad.jvp(case.fn, wrt=position)(*args, t)[1]
    got = lazily_or_refused(case, lambda: srcgrad.jvp(case.fn, wrt=position)(*dask_args, t)[1])
    if got is REFUSED:
        return
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float), rtol=1e-6, atol=1e-9)


def test_the_forward_sweep_runs_every_case_when_asked():
    assert len(_sweep_cases()) > (200 if os.environ.get("SRCGRAD_DASK_SWEEP") == "all" else 50)
