"""Structured outputs (issue 15 item 4): ``vjp`` of functions returning tuples, lists and dicts (nested), with seeds of
the output's structure; ``jacobian`` of such functions in the output's structure (JAX's layout). Every product is
checked against central differences of the scalar <seed, f(x)>; mismatched seeds are refused naming the return or the
seed's leaf."""

import dataclasses
import math
from collections import namedtuple

import numpy as np
import pytest

import srcgrad
from srcgrad import structures
from srcgrad.errors import InvalidArgument
from srcgrad.testing import numerical_grad

Out = namedtuple("Out", "value slope")


def pair(x):
    return np.sin(x) * 2.0, (x ** 2, 3.0 * x[0])


def display(x, y):
    return np.sin(x) * y, {"a": x * x, "b": (y * x[1], 2.0 * x)}


def built(x):
    d = {"a": x * 2.0, "b": np.sum(x ** 2)}
    d["c"] = np.cos(x[0])
    if d["b"] > 1.0:
        d["a"] = d["a"] * d["b"]
    return d


def parts(x):
    return {"sq": x ** 2, "sum": np.sum(x)}


def from_helper(x):
    d = parts(x)
    return d


def model(params, x):
    h = np.tanh(x @ params["W"] + params["b"])
    return {"out": h, "reg": np.sum(params["W"] ** 2)}, [np.sum(h), params["b"] * 2.0]


def named(x):
    return Out(np.sum(x ** 3), 3.0 * x ** 2)


def early(x):
    if x[0] > 0:
        return {"a": x * 2.0, "b": 1.0}
    return {"a": x ** 3, "b": x[1]}


def scalar_output(x):
    return np.sum(x * x)


def two(x):
    return np.sin(x), x * 2.0


def via_helper(x):
    return two(x)


def inner(seed, y):
    """<seed, y> summed over the leaves (dict items by key)."""
    if isinstance(seed, dict):
        assert set(seed) == set(y)
        return sum(inner(seed[k], y[k]) for k in seed)
    if isinstance(seed, (list, tuple)):
        assert len(seed) == len(y)
        return sum(inner(s, v) for s, v in zip(seed, y))
    return float(np.sum(np.asarray(seed) * np.asarray(y)))


def check_vjp(func, args, seed, wrt=0):
    """vjp against central differences of the scalar <seed, f(args)>, for each wrt argument (leaf by leaf for
    structured ones)."""
    positions = wrt if isinstance(wrt, tuple) else (wrt,)
    pulled = srcgrad.vjp(func, wrt=wrt)(*args, seed)
    pulled = pulled if isinstance(wrt, tuple) else (pulled,)
    for position, g in zip(positions, pulled):
        x = args[position]

        def scalar(v, position=position):
            return inner(seed, func(*args[:position], v, *args[position + 1:]))

        if structures.is_structure(x):
            assert structures.same_structure(g, x)
            for k, ((_, leaf), (_, g_leaf)) in enumerate(zip(structures.leaves(x), structures.leaves(g))):
                expected = numerical_grad(lambda v, k=k, x=x: scalar(structures.replace_leaf(x, k, v)), (leaf,), 0)
                np.testing.assert_allclose(g_leaf, expected, rtol=1e-6, atol=1e-8)
        else:
            np.testing.assert_allclose(g, numerical_grad(scalar, (x,), 0), rtol=1e-6, atol=1e-8)


@pytest.fixture
def x(rng):
    return rng.normal(size=3)


def test_tuple_outputs(x, rng):
    check_vjp(pair, (x,), (rng.normal(size=3), (rng.normal(size=3), 0.7)))
    check_vjp(pair, (x,), [rng.normal(size=3), [rng.normal(size=3), 0.7]])  # (a list is a sequence too)
    check_vjp(named, (x,), Out(1.5, rng.normal(size=3)))
    check_vjp(named, (x,), (1.5, rng.normal(size=3)))


def test_dict_outputs(x, rng):
    seed = (rng.normal(size=3), {"b": (0.3, rng.normal(size=3)), "a": rng.normal(size=3)})  # (keys in any order)
    check_vjp(display, (x, 1.3), seed, wrt=(0, 1))
    for point in (x, x * 0.1):  # both sides of the branch
        check_vjp(built, (point,), {"a": rng.normal(size=3), "b": 0.5, "c": -1.0})
    check_vjp(from_helper, (x,), {"sq": rng.normal(size=3), "sum": 2.0})
    for point in (np.abs(x), -np.abs(x)):
        check_vjp(early, (point,), {"a": rng.normal(size=3), "b": 0.25})


def test_structured_parameters_and_outputs(rng):
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=(4, 3))
    seed = ({"out": rng.normal(size=(4, 2)), "reg": 0.5}, [1.5, rng.normal(size=2)])
    check_vjp(model, (params, x), seed, wrt=(0, 1))


def test_the_seed_structure_is_the_variant(x, rng):
    pull = srcgrad.vjp(pair)
    first = pull(x, (np.ones(3), (np.ones(3), 1.0)))
    again = pull(x, (np.ones(3), (np.ones(3), 1.0)))
    np.testing.assert_allclose(first, again)
    flat = pull(x, (np.ones(3), (np.ones(3), 0.0)))
    np.testing.assert_allclose(first - flat, 3.0 * np.eye(3)[0])
    assert "seed[1][0]" in srcgrad.source(pull)  # the front reads the seed's leaves by item


def test_mismatched_seeds_are_refused(x):
    with pytest.raises(InvalidArgument, match="returns a dict with the keys \\['a', 'b', 'c'\\], the seed is a dict "
                                              "with the keys \\['a'\\]") as info:
        srcgrad.vjp(built)(x, {"a": np.ones(3)})
    assert "test_structured_vjp.py" in str(info.value)
    with pytest.raises(InvalidArgument, match="returns a dict, the seed is a tuple"):
        srcgrad.vjp(built)(x, (np.ones(3), 1.0, 1.0))
    with pytest.raises(InvalidArgument, match="returns 2 items here, the seed has 3"):
        srcgrad.vjp(pair)(x, (np.ones(3), 1.0, 1.0))
    with pytest.raises(InvalidArgument, match="returns 2 items here, the seed has 3"):
        srcgrad.vjp(pair)(x, (np.ones(3), (np.ones(3), 1.0, 2.0)))
    with pytest.raises(ValueError, match="the seed is a sequence of 1 items here"):  # (a tuple made at run time)
        srcgrad.vjp(via_helper)(x, (np.ones(3),))
    check_vjp(via_helper, (x,), (np.ones(3), 2.0 * np.ones(3)))
    with pytest.raises(ValueError, match="the seed is a sequence of 1 items here, the function's output is not"):
        srcgrad.vjp(scalar_output)(x, [1.0])  # (a list seed is a structure: the output is not one)
    with pytest.raises(InvalidArgument, match=r"seed\[1\]\['b'\] is a str, not a number"):
        srcgrad.vjp(pair)(x, (np.ones(3), {"b": "no"}))
    with pytest.raises(InvalidArgument, match="complex"):
        srcgrad.vjp(pair)(x, (np.ones(3), (np.ones(3), 1j)))

    @dataclasses.dataclass
    class Seed:
        value: float

    with pytest.raises(InvalidArgument, match="seed is a dataclass instance"):
        srcgrad.vjp(pair)(x, Seed(1.0))


def test_jacobian_of_structured_outputs(x):
    eps = 1e-6
    for func in (pair, built, named):
        for mode in ("rev", "fwd") if func is pair else ("rev",):  # (forward mode: tuples and lists)
            jac = srcgrad.jacobian(func, mode=mode)(x)
            y = func(x)
            assert structures.same_structure(jac, y) and type(jac) is type(y)
            columns = [(func(x + eps * e), func(x - eps * e)) for e in np.eye(3)]
            for k, (_, leaf) in enumerate(structures.leaves(y)):
                fd = np.stack([(np.asarray(structures.leaves(hi)[k][1]) - np.asarray(structures.leaves(lo)[k][1]))
                               / (2 * eps) for hi, lo in columns], axis=-1)
                block = structures.leaves(jac)[k][1]
                assert np.shape(block) == np.shape(leaf) + (3,)
                np.testing.assert_allclose(block, fd, rtol=1e-6, atol=1e-8)


def test_forward_jacobian_of_a_dict_output_is_refused(x):
    with pytest.raises(InvalidArgument, match="forward mode follows tuples and lists in the output, and it returns a "
                                              "dict") as info:
        srcgrad.jacobian(built, mode="fwd")(x)
    assert info.value.hint == "use mode='rev'"
    assert list(srcgrad.jacobian(built)(x)) == ["a", "b", "c"]


def test_jacobian_of_structured_outputs_and_parameters(rng):
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    x = rng.normal(size=(4, 3))
    jac = srcgrad.jacobian(model)(params, x)
    assert list(jac[0]) == ["out", "reg"] and list(jac[0]["out"]) == ["W", "b"]
    assert jac[0]["out"]["W"].shape == (4, 2, 3, 2) and np.shape(jac[1][0]["b"]) == (2,)
    eps = 1e-6
    for k in ("W", "b"):
        for i in range(params[k].size):
            e = np.zeros(params[k].size)
            e[i] = eps
            hi = model({**params, k: params[k] + e.reshape(params[k].shape)}, x)
            lo = model({**params, k: params[k] - e.reshape(params[k].shape)}, x)
            index = np.unravel_index(i, params[k].shape)
            np.testing.assert_allclose(jac[0]["out"][k][(...,) + index], (hi[0]["out"] - lo[0]["out"]) / (2 * eps),
                                       rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(jac[1][1][k][(...,) + index], (hi[1][1] - lo[1][1]) / (2 * eps), rtol=1e-6,
                                       atol=1e-8)
    assert math.isclose(float(np.sum(jac[0]["reg"]["W"] * 0)), 0.0)
