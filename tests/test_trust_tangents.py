"""A tangent of jvp (and the vector of hvp) has its argument's structure and shapes, or is refused (session 6); so does
each leaf of a vjp's structured seed.

The generated forward code reads the tangent leaf by leaf where the argument has leaves: before, extra dict keys were
never read (silently ignored), a missing key was a raw KeyError, a list for a dict a raw TypeError, and numpy
broadcast a tangent of shape (1,) or (3, 1) against an argument of shape (3,) — a directional derivative along
another direction, of another shape. A number stays a tangent of any shape (every leaf moved by it), as a vjp seed.
A structured vjp seed was checked for its containers only: a leaf of shape (3, 1) for an output leaf of shape (3,)
was broadcast into a plausible wrong product, a leaf of shape (2,) for a number was an InternalError.
"""

from dataclasses import dataclass

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InvalidArgument

X = np.array([0.3, -0.7, 1.2])


def loss(x):
    return np.sum(np.sin(x) * x)


def elementwise(x):
    return np.sin(x) * x


def dict_loss(p):
    return np.sum(p["a"] ** 2) + p["b"] * 3.0


@dataclass
class Params:
    w: np.ndarray
    s: float


def dataclass_loss(p):
    return np.sum(p.w ** 2) * p.s


def product(a, b):
    return a * b


def _dloss(x, t):
    return float(np.sum((np.cos(x) * x + np.sin(x)) * t))


def test_a_tangent_of_the_arguments_shape_and_a_number_work():
    t = np.array([1.0, -2.0, 0.5])
    value, derivative = srcgrad.jvp(loss)(X, t)
    assert value == loss(X)
    np.testing.assert_allclose(derivative, _dloss(X, t))
    np.testing.assert_allclose(srcgrad.jvp(loss)(X, 2.0)[1], _dloss(X, 2.0 * np.ones(3)))
    np.testing.assert_allclose(srcgrad.jvp(loss)(X, [1.0, -2.0, 0.5])[1], _dloss(X, t))
    p = {"a": X, "b": 1.5}
    np.testing.assert_allclose(srcgrad.jvp(dict_loss)(p, {"b": 1.0, "a": t})[1], 2 * X @ t + 3.0)  # (key order)
    np.testing.assert_allclose(srcgrad.jvp(dataclass_loss)(Params(X, 2.0), Params(t, 1.0))[1],
                               4 * X @ t + np.sum(X ** 2))


@pytest.mark.parametrize("t", [np.ones(1), np.ones((3, 1)), np.ones((1, 3)), np.ones(2)])
def test_a_tangent_of_another_shape_is_refused(t):
    # (np.ones((3, 1)) gave 2.31 = 3 * the derivative along ones, and a (3, 3) derivative for elementwise)
    for func in (loss, elementwise):
        with pytest.raises(InvalidArgument, match=rf"tangent for `x` has shape \({t.shape[0]},"):
            srcgrad.jvp(func)(X, t)
    with pytest.raises(InvalidArgument, match="vector for `x` has shape"):
        srcgrad.hvp(loss)(X, t)


def test_a_complex_tangent_is_refused():
    with pytest.raises(InvalidArgument, match="real number or array, got dtype complex128"):
        srcgrad.jvp(loss)(X, X + 1j)
    with pytest.raises(InvalidArgument, match="real number or array"):
        srcgrad.hvp(loss)(X, X + 1j)  # (the imaginary part was dropped with a ComplexWarning)


@pytest.mark.parametrize("t, match", [
    ({"a": X, "b": 1.0, "c": 2.0}, "does not have the argument's structure"),  # (the extra key was ignored)
    ({"a": X}, "does not have the argument's structure"),  # (a raw KeyError)
    ([X, 1.0], "is a list, and the argument there is a dict"),  # (a raw TypeError)
    ({"a": np.ones(2), "b": 1.0}, r"at p\['a'\] has shape \(2,\)"),
])
def test_a_tangent_of_another_structure_is_refused(t, match):
    p = {"a": X, "b": 1.5}
    with pytest.raises(InvalidArgument, match=match):
        srcgrad.jvp(dict_loss)(p, t)
    with pytest.raises(InvalidArgument, match=match.replace("tangent", "vector")):
        srcgrad.hvp(dict_loss)(p, t)


def test_each_tangent_of_a_tuple_wrt_is_checked():
    assert srcgrad.jvp(product, wrt=(0, 1))(2.0, 3.0, (1.0, 0.5)) == (6.0, 4.0)
    with pytest.raises(InvalidArgument, match="tangent for `b` has shape"):
        srcgrad.jvp(product, wrt=(0, 1))(2.0, 3.0, (1.0, np.ones(2)))
    with pytest.raises(InvalidArgument, match=r"at p.w has shape \(3,\)"):
        srcgrad.jvp(dataclass_loss)(Params(X[:2], 2.0), Params(X, 1.0))


def structured_output(x):
    return {"a": x ** 2, "b": (np.sum(x), x[0])}


def test_each_leaf_of_a_structured_seed_has_its_outputs_shape():
    seed = {"a": np.array([1.0, 2.0, 0.5]), "b": (1.0, 2.0)}
    expected = 2 * X * seed["a"] + 1.0 + np.array([2.0, 0.0, 0.0])
    np.testing.assert_allclose(srcgrad.vjp(structured_output)(X, seed), expected)
    np.testing.assert_allclose(srcgrad.vjp(structured_output)(X, {"a": 1.0, "b": (1.0, 2.0)}),
                               2 * X + 1.0 + np.array([2.0, 0.0, 0.0]))  # (a number for an array leaf)
    # (the message named srcgrad's function of the leaves, structured_output_leaves)
    with pytest.raises(InvalidArgument, match=r"a leaf of the seed of the vjp of structured_output has shape \(3, 1\), "
                                              r"and the leaf structured_output returned there has shape \(3,\)"):
        srcgrad.vjp(structured_output)(X, {"a": np.ones((3, 1)), "b": (1.0, 2.0)})  # (gave [10.8, -1.2, 10.2])
    with pytest.raises(InvalidArgument, match=r"has shape \(2,\), .* has shape \(\)"):
        srcgrad.vjp(structured_output)(X, {"a": np.ones(3), "b": (1.0, np.ones(2))})  # (an InternalError)
