"""Structured parameters (issue 15 item 1): tuples, lists, dicts, namedtuples and dataclass instances of floats and
arrays, nested; gradients in the same structure, checked leaf by leaf against central differences
(srcgrad.testing.check_grad); a variant per structure; the generated source reads named leaves; errors name the leaf
path or the user's line."""

import dataclasses
import math
from collections import namedtuple

import numpy as np
import pytest

import srcgrad
from srcgrad import structures
from srcgrad.errors import InvalidArgument, SrcgradError, UnsupportedSyntax
from srcgrad.testing import check_grad

Pair = namedtuple("Pair", "w b")


@dataclasses.dataclass
class Linear:
    W: np.ndarray
    b: np.ndarray
    name: str = "layer"


@dataclasses.dataclass(frozen=True)
class Frozen:
    w: float
    v: np.ndarray
    steps: int = 3
    extra: object = None


def dict_mlp(p, x):
    h = np.tanh(x @ p["W1"] + p["b1"])
    return np.sum((h @ p["W2"] + p["b2"]) ** 2) * p["scale"]


def layers_loop(params, x):
    for W, b in params:
        x = np.tanh(x @ W + b)
    return np.sum(x ** 2)


def layers_unpack(params, x):
    (W1, b1), (W2, b2) = params
    return np.sum(np.tanh(x @ W1 + b1) @ W2 + b2)


def layers_by_index(params, x):
    for i in range(len(params)):
        W, b = params[i]
        x = np.sin(x @ W) + b
    return np.sum(x)


def pair_loss(p, x):
    return np.sum(np.cos(p.w * x) + p.b * p[0])


def linear_loss(layer, x):
    return np.sum((x @ layer.W + layer.b) ** 2)


def frozen_loss(f, x):
    total = f.w * np.sum(f.v * x)
    for _ in range(f.steps):
        total = total * 0.5 + f.w
    return total


def nested(params, x):
    enc = params["enc"]
    y = x @ enc["layers"][0].W + enc["layers"][0].b
    y = np.tanh(y) @ enc["layers"][1].W + enc["layers"][1].b
    return np.sum(y ** 2) * params["gain"][0] + params["gain"][1]


def scalar_tuple(t):
    a, b, c = t
    return math.sin(a) * b + c ** 2


def items_loop(p, x):
    total = 0.0
    for _k, v in p.items():
        total = total + np.sum(v * x) ** 2
    for k in p:
        total = total + np.sum(p[k])
    return total + len(p)


def l2(params, x):
    return layers_loop(params, x) + 0.1 * sum(np.sum(W ** 2) for W, b in params)


def optional_bias(p, x):
    y = x @ p["W"]
    if "b" in p:
        y = y + p["b"]
    if p.get("scale") is not None:
        y = y * p["scale"]
    return np.sum(y ** 2)


@pytest.fixture
def mlp_dict(rng):
    return {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "W2": rng.normal(size=(4, 2)),
            "b2": rng.normal(size=2), "scale": 0.7}


@pytest.fixture
def layers(rng):
    return [(rng.normal(size=(3, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), rng.normal(size=2))]


def test_dict(mlp_dict, rng):
    check_grad(dict_mlp, mlp_dict, rng.normal(size=(5, 3)))


def test_list_of_layers(layers, rng):
    x = rng.normal(size=(5, 3))
    for f in (layers_loop, layers_unpack, layers_by_index, l2):
        check_grad(f, layers, x)


def test_namedtuple_and_dataclasses(rng):
    x = rng.normal(size=3)
    check_grad(pair_loss, Pair(rng.normal(size=3), 0.3), x)
    check_grad(linear_loss, Linear(rng.normal(size=(3, 2)), rng.normal(size=2)), x)
    check_grad(frozen_loss, Frozen(0.4, rng.normal(size=3)), x)


def test_nested(rng):
    params = {"enc": {"layers": [Linear(rng.normal(size=(3, 4)), rng.normal(size=4)),
                                 Linear(rng.normal(size=(4, 2)), rng.normal(size=2), "out")]},
              "gain": (1.5, -0.25)}
    check_grad(nested, params, rng.normal(size=(2, 3)))


def test_scalar_tuple_and_dict_iteration(rng):
    check_grad(scalar_tuple, (0.3, 1.2, -0.7))
    check_grad(items_loop, {"a": rng.normal(size=3), "b": rng.normal(size=3)}, rng.normal(size=3))


def test_structure_decided_when_generating(rng):
    x = rng.normal(size=(2, 3))
    check_grad(optional_bias, {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2), "scale": 1.5}, x)
    check_grad(optional_bias, {"W": rng.normal(size=(3, 2))}, x)
    check_grad(optional_bias, {"W": rng.normal(size=(3, 2)), "scale": None}, x)


def test_gradient_structure_exact(rng):
    p = {"b": 1.0, "a": np.ones(2), "n": 4, "s": "x", "z": None}
    g = srcgrad.grad(lambda_free)(p)
    assert list(g) == ["b", "a", "n", "s", "z"]
    assert type(g["b"]) is float and g["b"] == 2.0
    np.testing.assert_allclose(g["a"], 3.0 * np.ones(2))
    assert g["n"] is None and g["s"] is None and g["z"] is None
    gp = srcgrad.grad(pair_loss)(Pair(np.ones(2), 0.5), np.ones(2))
    assert type(gp) is Pair
    gf = srcgrad.grad(frozen_loss)(Frozen(0.5, np.ones(2)), np.ones(2))
    assert type(gf) is Frozen and gf.steps is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        gf.w = 1.0
    gl = srcgrad.grad(layers_loop)([(np.ones((2, 2)), np.ones(2))], np.ones(2))
    assert type(gl) is list and type(gl[0]) is tuple


def lambda_free(p):
    return 2.0 * p["b"] + 3.0 * np.sum(p["a"]) + p["n"]


def test_variant_per_structure(rng):
    g = srcgrad.grad(items_loop)
    x = rng.normal(size=3)
    one = g({"a": np.ones(3)}, x)
    two = g({"a": np.ones(3), "b": np.ones(3)}, x)
    swapped = g({"b": np.ones(3), "a": np.ones(3)}, x)
    assert list(one) == ["a"] and list(two) == ["a", "b"] and list(swapped) == ["b", "a"]
    np.testing.assert_allclose(one["a"], two["a"])
    flat = g({"a": 1.0}, 2.0)  # a float leaf: scalar code, d/da ((a x)^2 + a) = 2 a x^2 + 1
    assert flat == {"a": 9.0} and type(flat["a"]) is float
    gp = srcgrad.grad(pair_loss)
    assert type(gp(Pair(1.0, 0.0), 1.0)) is Pair
    with pytest.raises(AttributeError, match="has no attribute `w`"):  # a plain tuple is another structure
        gp((1.0, 0.0), 1.0)


def test_value_and_grad_vjp_jvp(layers, rng):
    x = rng.normal(size=(5, 3))
    value, g = srcgrad.value_and_grad(layers_loop)(layers, x)
    assert value == pytest.approx(layers_loop(layers, x))
    pulled = srcgrad.vjp(layers_loop)(layers, x, 2.0)
    for (a, b), (c, d) in zip(g, pulled):
        np.testing.assert_allclose(2.0 * a, c)
        np.testing.assert_allclose(2.0 * b, d)
    tangent = [(rng.normal(size=(3, 4)), rng.normal(size=4)), (rng.normal(size=(4, 2)), rng.normal(size=2))]
    v, t = srcgrad.jvp(layers_loop)(layers, x, tangent)
    assert v == pytest.approx(layers_loop(layers, x))
    expected = sum(np.sum(a * ta) + np.sum(b * tb) for (a, b), (ta, tb) in zip(g, tangent))
    assert t == pytest.approx(expected)


def test_several_wrt(mlp_dict, rng):
    x = rng.normal(size=(5, 3))
    gp, gx = srcgrad.grad(dict_mlp, wrt=("p", "x"))(mlp_dict, x)
    assert list(gp) == list(mlp_dict) and gx.shape == x.shape
    check_grad(dict_mlp, mlp_dict, x, wrt=(0, 1))


def test_source_reads_like_the_code(mlp_dict, layers, rng):
    g = srcgrad.grad(dict_mlp)
    g(mlp_dict, rng.normal(size=(5, 3)))
    text = srcgrad.source(g)
    assert "h = np.tanh(x @ p_W1 + p_b1)" in text.replace("t1 = x @ p_W1\n    h = np.tanh(t1 + p_b1)",
                                                          "h = np.tanh(x @ p_W1 + p_b1)")
    assert "p['W1']" in text and "return {'W1': grads[0]" in text
    g2 = srcgrad.grad(layers_loop)
    g2(layers, rng.normal(size=(5, 3)))
    text = srcgrad.source(g2)
    assert "W = params_0_0" in text and "b_1 = params_1_1" in text and "for " not in text.split("def layers_loop_l")[1]


def test_bad_leaves_named_by_path(rng):
    class Opaque:
        pass

    g = srcgrad.grad(nested)
    params = {"enc": {"layers": [Linear(np.ones((3, 4)), np.ones(4)), Linear(np.ones((4, 2)), 1j)]},
              "gain": (1.0, 1.0)}
    with pytest.raises(InvalidArgument, match=r"params\['enc'\]\['layers'\]\[1\]\.b: got complex"):
        g(params, np.ones((2, 3)))
    with pytest.raises(InvalidArgument, match=r"p\['W'\]: got Opaque"):
        srcgrad.grad(optional_bias)({"W": Opaque()}, np.ones(3))
    with pytest.raises(InvalidArgument, match=r"p\['W'\]: has dtype complex128"):
        srcgrad.grad(optional_bias)({"W": np.ones(2, complex)}, np.ones(3))
    with pytest.raises(InvalidArgument, match="holds no float"):
        srcgrad.grad(optional_bias)({"W": 3}, np.ones(3))


def missing_key(p):
    return p["W3"] * 2.0


def writes_a_tuple(p):
    p[0] = p[0] * 2.0  # (Python: TypeError, tuples do not support item assignment)
    return np.sum(p[0])


def whole_dict(p):
    return p["a"] * len(str(p))


def dict_to_a_helper(p):
    return helper_of_dict(p)  # (inlined: tests/test_dicts.py)


def helper_of_dict(p):
    return p["a"]


def branch_alias(p, c):
    if c > 0:
        q = p["a"]
        layer = p["layers"]
    else:
        layer = p["other"]
    return q * layer[0]


def test_errors_at_the_users_line():
    with pytest.raises(KeyError) as info:
        srcgrad.grad(missing_key)({"W1": 1.0})
    assert isinstance(info.value, SrcgradError) and "has no key 'W3'" in str(info.value)
    assert "test_structures.py" in str(info.value)
    with pytest.raises(UnsupportedSyntax, match="writes into a structured parameter"):
        srcgrad.grad(writes_a_tuple)((np.ones(2),))
    with pytest.raises(UnsupportedSyntax, match="used here as a whole value"):
        srcgrad.grad(whole_dict)({"a": 1.0})
    assert srcgrad.grad(dict_to_a_helper)({"a": 1.0}) == {"a": 1.0}
    with pytest.raises(UnsupportedSyntax, match="on some paths only"):
        srcgrad.grad(branch_alias)({"a": 1.0, "layers": [1.0], "other": [2.0]}, 1.0)
    with pytest.raises(AttributeError):
        srcgrad.grad(pair_missing)(Pair(1.0, 2.0))


def pair_missing(p):
    return p.c


def list_as_value(ws, x):
    return np.sum(np.stack(ws) * x) + ws[1] * 2.0


def test_list_used_as_a_value(rng):
    check_grad(list_as_value, [1.0, 2.0, 3.0], 0.5)


def helper_of_list(ws):
    return ws[0] * ws[1]


def passes_list(ws):
    return helper_of_list(ws) + 1.0


def test_list_passed_to_a_helper():
    check_grad(passes_list, [1.5, -2.0])


def test_structures_helpers():
    p = {"a": [1.0, (2.0, np.ones(2))], "b": Pair(3.0, None)}
    paths = [path for path, _ in structures.leaves(p)]
    assert paths == ["['a'][0]", "['a'][1][0]", "['a'][1][1]", "['b'].w", "['b'].b"]
    q = structures.replace_leaf(p, 3, 9.0)
    assert q["b"].w == 9.0 and p["b"].w == 3.0
    assert structures.same_structure(p, q) and not structures.same_structure(p, {"b": 1, "a": 2})


def test_not_yet_refused_clearly(mlp_dict, rng):
    """Item 5 (emit, explain, graph without example arguments) and second order: refused, never wrong code."""
    with pytest.raises(UnsupportedSyntax, match=r"`p\['W1'\]` reads `p` as a structure"):
        srcgrad.emit(dict_mlp, wrt="p")
    with pytest.raises(UnsupportedSyntax, match="reads `p` as a structure"):
        srcgrad.source(srcgrad.grad(dict_mlp))  # no call yet: no example arguments
    text = srcgrad.source(srcgrad.grad(dict_mlp), mlp_dict, rng.normal(size=(5, 3)))  # with them: fine
    assert "p_W1" in text
    explained = srcgrad.explain(dict_mlp, mlp_dict, rng.normal(size=(5, 3)))  # (tests/test_structures_tools.py)
    assert list(explained.gradient) == list(mlp_dict)


def test_hvp_hessian_jacobian_of_structures(mlp_dict, rng):
    """hvp takes a tangent of the parameters' structure and gives one; hessian is a structure of structures of
    blocks (JAX's convention); jacobian has the parameters' structure, each block out.shape + leaf.shape."""
    t = (0.3, 1.2, -0.7)
    hv = srcgrad.hvp(scalar_tuple)(t, (1.0, 0.0, 0.5))
    assert type(hv) is tuple
    a, b, c = t
    expected = np.array([[-math.sin(a) * b, math.cos(a), 0.0], [math.cos(a), 0.0, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(hv, expected @ np.array([1.0, 0.0, 0.5]), rtol=1e-12)
    h = srcgrad.hessian(scalar_tuple)(t)
    np.testing.assert_allclose([[h[i][j] for j in range(3)] for i in range(3)], expected, rtol=1e-12)
    x = rng.normal(size=(5, 3))
    v = {k: rng.normal(size=np.shape(w)) if k != "scale" else 0.0 for k, w in mlp_dict.items()}
    hv = srcgrad.hvp(dict_mlp)(mlp_dict, x, v)
    g, eps = srcgrad.grad(dict_mlp), 1e-5
    plus = g({k: w + eps * v[k] for k, w in mlp_dict.items()}, x)
    minus = g({k: w - eps * v[k] for k, w in mlp_dict.items()}, x)
    for k in mlp_dict:
        np.testing.assert_allclose(hv[k], (plus[k] - minus[k]) / (2 * eps), rtol=1e-5, atol=1e-8)
    for mode in ("rev", "fwd"):
        jac = srcgrad.jacobian(scalar_tuple, mode=mode)(t)
        np.testing.assert_allclose(jac, [math.cos(a) * b, math.sin(a), 2 * c], rtol=1e-12)
        jac = srcgrad.jacobian(hidden_layer, mode=mode)(mlp_dict, x)
        assert list(jac) == list(mlp_dict) and jac["W1"].shape == (5, 4) + mlp_dict["W1"].shape
        for k in ("W1", "b1"):
            def at(w, k=k):
                return hidden_layer({**mlp_dict, k: w}, x)
            fd = np.stack([(at(mlp_dict[k] + eps * e.reshape(mlp_dict[k].shape)) -
                            at(mlp_dict[k] - eps * e.reshape(mlp_dict[k].shape))) / (2 * eps)
                           for e in np.eye(mlp_dict[k].size)], axis=-1)
            np.testing.assert_allclose(jac[k], fd.reshape(jac[k].shape), rtol=1e-5, atol=1e-8)


def hidden_layer(p, x):
    return np.tanh(x @ p["W1"] + p["b1"])


def test_jvp_of_a_dict(mlp_dict, rng):
    x = rng.normal(size=(5, 3))
    tangent = {k: rng.normal(size=np.shape(v)) if k != "scale" else 0.5 for k, v in mlp_dict.items()}
    value, t = srcgrad.jvp(dict_mlp)(mlp_dict, x, tangent)
    g = srcgrad.grad(dict_mlp)(mlp_dict, x)
    assert value == pytest.approx(dict_mlp(mlp_dict, x))
    assert t == pytest.approx(sum(np.sum(g[k] * tangent[k]) for k in mlp_dict))
