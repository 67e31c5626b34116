"""Structures (dicts, tuples, dataclasses) of Dask arrays as the differentiated argument (issue 20): each Dask leaf
gets a lazy Dask gradient with its chunks and dtype, in the argument's structure, with numpy's numbers; a leaf
computation is refused at the user's line (the guard covers Dask arrays inside structures too); complex Dask leaves
are refused naming the leaf."""

from dataclasses import dataclass

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
from test_dask import _line_of, no_compute  # noqa: E402

import srcgrad  # noqa: E402
from srcgrad.errors import InvalidArgument, UnsupportedValue  # noqa: E402
from srcgrad.testing import numerical_grad  # noqa: E402


def loss(p, X, y):
    z = X @ p["w"] + p["b"]
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(p["w"] ** 2)


def data():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 3))
    y = (rng.random(30) < 0.5).astype(float)
    return X, y, da.from_array(X, chunks=(10, 3)), da.from_array(y, chunks=10)


W = np.array([0.3, -0.2, 0.1])


def expected(X, y):
    p = {"w": W, "b": 0.5}
    g = srcgrad.grad(loss)(p, X, y)
    np.testing.assert_allclose(g["w"], numerical_grad(lambda w: loss({"w": w, "b": 0.5}, X, y), (W,), 0),
                               rtol=1e-6)
    return g


@pytest.mark.parametrize("dask_data", [True, False])
def test_a_dict_of_dask_arrays_gets_lazy_gradients_in_its_structure(dask_data):
    X, y, dX, dy = data()
    p = {"w": da.from_array(W.astype(np.float32), chunks=2), "b": 0.5}
    with no_compute():
        g = srcgrad.grad(loss)(p, *((dX, dy) if dask_data else (X, y)))
    assert list(g) == ["w", "b"]
    assert isinstance(g["w"], da.Array) and g["w"].chunks == p["w"].chunks and g["w"].dtype == np.float32
    assert isinstance(g["b"], da.Array) and g["b"].shape == ()  # (a float leaf with Dask data: a 0-d Dask array)
    (computed,) = dask.compute(g)
    want = expected(X, y)
    np.testing.assert_allclose(computed["w"], want["w"], rtol=1e-5)
    assert float(computed["b"]) == pytest.approx(want["b"], rel=1e-5)


@dataclass
class Params:
    w: object
    b: object


def dataclass_loss(p, X):
    return np.sum(np.tanh(X @ p.w) * p.b)


def test_a_dataclass_and_a_tuple_of_dask_arrays():
    X, _, dX, _ = data()
    w, b = da.from_array(W, chunks=2), da.from_array(np.array(2.0), chunks=())
    with no_compute():
        g = srcgrad.grad(dataclass_loss)(Params(w, b), dX)
        gt = srcgrad.grad(lambda_free_tuple_loss)((w, b), dX)
    assert isinstance(g, Params) and isinstance(g.w, da.Array) and isinstance(g.b, da.Array)
    assert type(gt) is tuple and isinstance(gt[0], da.Array)
    want = srcgrad.grad(dataclass_loss)(Params(W, np.array(2.0)), X)
    np.testing.assert_allclose(g.w.compute(), want.w, rtol=1e-12)
    np.testing.assert_allclose(gt[0].compute(), want.w, rtol=1e-12)
    assert float(g.b.compute()) == pytest.approx(float(want.b), rel=1e-12)
    assert float(gt[1].compute()) == pytest.approx(float(want.b), rel=1e-12)


def lambda_free_tuple_loss(p, X):
    return np.sum(np.tanh(X @ p[0]) * p[1])


def branching(p):
    if np.sum(p["w"]) > 0:  # an `if` on a Dask value computes it
        return np.sum(p["w"] ** 2)
    return np.sum(p["w"])


def test_a_computation_on_a_dask_leaf_is_refused_at_the_users_line():
    with no_compute(), pytest.raises(UnsupportedValue) as caught:
        srcgrad.grad(branching)({"w": da.from_array(W, chunks=2)})
    assert "this line computes a Dask array" in caught.value.message
    assert caught.value.location.line == _line_of(branching, "if np.sum")


def test_a_complex_dask_leaf_is_refused_naming_it():
    with pytest.raises(InvalidArgument, match=r"p\['w'\]"):
        srcgrad.grad(loss)({"w": da.from_array(W + 1j, chunks=2), "b": 0.5}, np.ones((2, 3)), np.ones(2))


def reshaped(p):
    return np.sum(np.reshape(p["x"], (3, 4)) ** 2)


def test_a_dask_failure_on_a_leaf_is_located_at_the_users_line():
    x = da.from_array(np.arange(12.0).reshape(4, 3), chunks=(3, 2))  # a chunking Dask cannot reshape
    with no_compute(), pytest.raises(UnsupportedValue) as caught:
        srcgrad.grad(reshaped)({"x": x})
    assert "Dask cannot build this line" in caught.value.message
    assert caught.value.location.line == _line_of(reshaped, "np.reshape")
