"""The seed of a vjp is the adjoint of the output: it has the output's shape, or is a number standing for an array
filled with it. A seed of another shape was broadcast into a plausible, meaningless product (a (3, 3) seed for an
output of shape (3,) gave [5.49, 3.81, 1.83]; a (4,) seed an InternalError). Refused now, in every backend and in
emitted modules (their twin raises ValueError)."""

import numpy as np
import pytest

import srcgrad


def doubled_tanh(x):
    return np.tanh(x) * 2.0


X = np.array([0.3, -0.7, 1.2])
EXPECTED = 2.0 * (1.0 - np.tanh(X) ** 2)


@pytest.mark.parametrize("seed", [np.ones(1), np.ones((1, 3)), np.ones(4), np.ones((3, 3))],
                         ids=["(1,)", "(1, 3)", "(4,)", "(3, 3)"])
def test_a_seed_of_another_shape_is_refused(seed):
    with pytest.raises(srcgrad.InvalidArgument, match="the seed of the vjp of doubled_tanh has shape"):
        srcgrad.vjp(doubled_tanh)(X, seed)


@pytest.mark.parametrize("seed", [np.ones(3), 1.0, np.float64(1.0), np.array(1.0)],
                         ids=["output's shape", "float", "np.float64", "0-d array"])
def test_the_outputs_shape_or_a_number(seed):
    np.testing.assert_allclose(srcgrad.vjp(doubled_tanh)(X, seed), EXPECTED)


def test_emitted_module_refuses_too():
    namespace = {"__name__": "emitted_vjp"}
    exec(compile(srcgrad.emit(doubled_tanh, mode="vjp", module=__name__), "<emitted>", "exec"), namespace)
    function = namespace[namespace["__all__"][0]]
    np.testing.assert_allclose(function(X, seed=np.ones(3)), EXPECTED)
    with pytest.raises(ValueError, match="has shape"):
        function(X, seed=np.ones((3, 3)))


def test_numba_backend_refuses_too():
    pytest.importorskip("numba")
    vjp = srcgrad.vjp(doubled_tanh, backend="numba")
    np.testing.assert_allclose(vjp(X, np.ones(3)), EXPECTED)
    with pytest.raises(srcgrad.SrcgradError, match="the seed of the vjp has another"):
        vjp(X, np.ones((3, 3)))
