"""Dicts built in the body (issue 15 item 2): displays with constant keys, dict(...), copies and comprehensions whose
keys are known become one variable per item (structures.rewrite_locals); reads and writes with constant keys, the
dict methods, iteration, aliases, branches and loops — gradients against central differences, values against Python.
What srcgrad cannot follow is refused at the user's line: a key known only when the code runs, keys added inside a
branch or loop to a dict built outside it, a dict used after it was passed on whole, writes from nested functions."""

import copy
import math

import numpy as np
import pytest

import srcgrad
from srcgrad import SrcgradError
from srcgrad.testing import check_grad, numerical_grad


def display_reads(x, y):
    d = {"a": x * 2.0, "b": y, "n": 3}
    return d["a"] * d["b"] + d["n"]


def writes_and_new_keys(x):
    d = {"a": x}
    d["a"] = d["a"] * 3.0
    d["b"] = np.sin(d["a"])
    d["a"] += d["b"]
    return d["a"] * d["b"]


def aliases(x):
    d = {"a": x}
    e = d
    e["a"] = e["a"] * 2.0
    return d["a"] + e["a"]


def branch_writes(x, c):
    d = {"a": x, "b": 1.0}
    if c > 0:
        d["a"] = d["a"] * 3.0
    else:
        d["b"] = x * x
    return d["a"] * d["b"]


def per_branch(x, c):
    if c > 0:
        d = {"a": x, "b": 1.0}
    else:
        d = {"a": 2.0 * x, "b": x}
    return d["a"] * d["b"]


def loop_writes(x, n):
    d = {"s": 0.0, "p": 1.0}
    for i in range(n):
        d["s"] = d["s"] + x * i
        d["p"] = d["p"] * x
    return d["s"] + d["p"]


def methods(x):
    d = dict(a=x, b=x * x)
    d.update({"c": math.sin(x)}, e=2.0)
    d.setdefault("f", x * 5.0)
    d.setdefault("a", 100.0)
    v = d.pop("b")
    k, w = d.popitem()
    total = 0.0
    for key, val in d.items():
        total = total + val * len(key)
    return total + v * w + sum(d.values()) + d.get("zz", 1.5) + d.get("a") + len(d) + len(k)


def iteration(x):
    d = {"a": x, "b": 2.0 * x, "c": x ** 3}
    for k in d:
        d[k] = d[k] * 2.0
    e = {k: v + 1.0 for k, v in d.items() if k != "b"}
    return sum(e.values()) + d["b"] + sum(v * v for v in d.values()) + len(list(d)) * e["c"]


def nested(x):
    d = {"inner": {"w": x}, "v": 2.0}
    d["inner"]["w"] = d["inner"]["w"] ** 2
    inner = d["inner"]
    inner["z"] = x * 3.0
    return d["inner"]["w"] + d["inner"]["z"] * d["v"]


def copies(x):
    d = {"a": x}
    e = d.copy()
    f = dict(d, b=x * 2.0)
    g = {**d, "c": 1.0}
    e["a"] = 10.0
    return d["a"] + e["a"] + f["a"] * f["b"] + g["a"] * g["c"]


def deletes(x):
    d = {"a": x, "b": x * x}
    del d["a"]
    return d["b"] + ("a" in d) + len(d)


def int_keys_and_range(x):
    d = {i: x * (i + 1.0) for i in range(3)}
    s = 0.0
    for i in range(3):
        s = s + d[i] * d[i]
    return s


def closures(x):
    d = {"a": x * 2.0}
    f = lambda t: t * d["a"]  # noqa: E731

    def g(t):
        return t + d["a"]

    return f(x) + g(x)


def in_try(x):
    d = {"a": x}
    try:
        d["a"] = d["a"] * 2.0
    except ValueError:
        d["a"] = 0.0
    return d["a"]


def unpack_into_items(x, y):
    d = {"a": 0.0, "b": 0.0}
    d["a"], d["b"] = x * y, x + y
    return d["a"] * d["b"]


def arrays(w, x):
    layers = {"h": np.tanh(x @ w)}
    layers["out"] = np.sum(layers["h"] ** 2)
    return layers["out"]


def params_in_a_dict(p, x):
    d = {"W": p["W"], "b": p["b"]}
    return np.sum(np.tanh(x @ d["W"] + d["b"]))


def writes_a_parameter(p, x):
    p["W"] = p["W"] * 2.0
    p["b"] += 1.0
    return np.sum(x @ p["W"]) * p["b"]


def aux_dict(x):
    d = {"y": x * 2.0}
    d["z"] = d["y"] ** 2
    return d["z"], d


@pytest.mark.parametrize("func,args,wrt", [
    (display_reads, (0.7, 1.3), (0, 1)),
    (writes_and_new_keys, (0.4,), 0),
    (aliases, (0.9,), 0),
    (branch_writes, (0.8, 1.0), 0),
    (branch_writes, (0.8, -1.0), 0),
    (per_branch, (0.8, 1.0), 0),
    (per_branch, (0.8, -1.0), 0),
    (loop_writes, (0.8, 3), 0),
    (loop_writes, (0.8, 0), 0),
    (methods, (0.6,), 0),
    (iteration, (0.6,), 0),
    (nested, (0.6,), 0),
    (copies, (0.6,), 0),
    (deletes, (0.6,), 0),
    (int_keys_and_range, (0.6,), 0),
    (closures, (0.6,), 0),
    (in_try, (0.6,), 0),
    (unpack_into_items, (0.6, -1.1), (0, 1)),
], ids=lambda v: getattr(v, "__name__", None))
def test_dicts_in_the_body(func, args, wrt):
    check_grad(func, *args, wrt=wrt)


def test_arrays_and_parameters_in_dicts(rng):
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
    check_grad(arrays, w, x)
    check_grad(params_in_a_dict, {"W": w, "b": 0.3}, x)
    assert "layers_h" in srcgrad.source(srcgrad.grad(arrays), w, x)  # (the items are named after the dict)


def test_items_of_a_dict_parameter_are_assigned(rng):
    """Python changes the caller's dict; srcgrad's gradient leaves its argument as it is (as for arrays written in
    place), and differentiates with respect to the values the call starts with."""
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
    p = {"W": w.copy(), "b": 0.3}
    value, g = srcgrad.value_and_grad(writes_a_parameter)(p, x)
    assert np.array_equal(p["W"], w) and p["b"] == 0.3
    assert value == pytest.approx(writes_a_parameter({"W": w.copy(), "b": 0.3}, x))

    def fresh(W, b):
        return writes_a_parameter({"W": W.copy(), "b": b}, x)

    np.testing.assert_allclose(g["W"], numerical_grad(fresh, (w, 0.3), 0), rtol=1e-6)
    assert g["b"] == pytest.approx(numerical_grad(fresh, (w, 0.3), 1), rel=1e-6)


def test_a_dict_returned_as_aux():
    (value, aux), g = srcgrad.value_and_grad(aux_dict, has_aux=True)(0.5)
    assert value == 1.0 and aux == {"y": 1.0, "z": 1.0} and g == 4.0


def inplace_through_an_alias(p):
    W = p["W"]
    p["W"] += 1.0  # (an array: W sees it in Python)
    return np.sum(W * W)


def item_write_through_an_alias(x):
    d = {"a": x * 1.0}
    e = {"a": d["a"]}
    d["a"][0] = 5.0
    return np.sum(e["a"] * x)


def variable_key(x, k="a"):
    d = {"a": x, "b": 2.0 * x}
    return d[k]


def variable_key_get(x, k="a"):
    d = {"a": x}
    return d.get(k, 0.0)


def helper_mutates(d):
    d["a"] = 0.0


def passed_to_a_helper_then_read(x):
    d = {"a": x}
    helper_mutates(d)
    return d["a"]


def escapes_into_a_list(x):
    d = {"a": x}
    held = [d]
    held[0]["a"] = 0.0
    return d["a"] * x


def escapes_in_a_loop(x, n=2):
    d = {"a": x}
    out = []
    for _ in range(n):
        out.append(d)
    return out[0]["a"]


def key_added_in_a_branch(x, c=1.0):
    d = {"a": x}
    if c > 0:
        d["b"] = x
    return d["a"]


def key_added_while_iterating(x):
    d = {"a": x}
    for _ in d:
        d["b"] = x
    return d["a"]


def nested_function_writes(x):
    d = {"a": x}

    def g():
        d["a"] = 0.0

    g()
    return d["a"]


def built_in_a_loop(x, n=3):
    for i in range(n):
        d = {"a": x * i}
    return d["a"]


def missing_key(x):
    d = {"a": x}
    return d["b"]


def pop_in_an_expression(x):
    d = {"a": x}
    return d.pop("a") * 2.0


def deletes_a_name(x):
    y = x * 2.0
    del y
    return x


@pytest.mark.parametrize("func,arg,message", [
    (inplace_through_an_alias, {"W": np.ones(3)}, "another name refers to the same array"),
    (item_write_through_an_alias, np.ones(3), "another name refers to the same array"),
    (variable_key, 1.0, "a key known only when the code runs"),
    (variable_key_get, 1.0, "a key known only when the code runs"),
    (passed_to_a_helper_then_read, 1.0, "writes into a dict it is passed"),
    (escapes_into_a_list, 1.0, "used after it was passed on as a whole value"),
    (escapes_in_a_loop, 1.0, "built outside this loop, is passed on"),
    (key_added_in_a_branch, 1.0, "adds the key 'b' of a dict built outside this if"),
    (key_added_while_iterating, 1.0, "dictionary changed size during iteration"),
    (nested_function_writes, 1.0, "from a nested function"),
    (built_in_a_loop, 1.0, "on some paths only"),
    (missing_key, 1.0, "has no key 'b'"),
    (pop_in_an_expression, 1.0, "as a statement of its own"),
    (deletes_a_name, 1.0, "`del` statement"),
], ids=lambda v: getattr(v, "__name__", None))
def test_refused_at_the_users_line(func, arg, message):
    with pytest.raises(SrcgradError, match=message) as info:
        srcgrad.grad(func)(copy.deepcopy(arg))
    assert info.value.location is not None and info.value.location.filename == __file__


def test_missing_key_is_a_key_error():
    with pytest.raises(KeyError):
        srcgrad.grad(missing_key)(1.0)


def test_forward_mode_and_helpers_see_the_items():
    """The rewrite runs wherever code is lowered: forward mode, second order, helpers."""
    value, tangent = srcgrad.jvp(methods)(0.6, 1.0)
    assert value == pytest.approx(methods(0.6))
    assert tangent == pytest.approx(numerical_grad(methods, (0.6,), 0), rel=1e-6)
    check_grad(uses_a_helper_with_a_dict, 0.4)


def helper_with_a_dict(x):
    d = {"a": x, "b": x * x}
    d["a"] = d["a"] + d["b"]
    return d["a"]


def uses_a_helper_with_a_dict(x):
    return helper_with_a_dict(x) * 3.0 + helper_with_a_dict(x * 2.0)


# --- helpers that take a dict or a structure, or return a dict: inlined where they are called ---


def layer(p, x):
    return np.tanh(x @ p["W"] + p["b"])


def mlp_of_layers(params, x):
    h = layer(params["l1"], x)
    return np.sum(layer(params["l2"], h) ** 2)


def stats(x):
    out = {"mean": np.mean(x), "sq": np.mean(x ** 2)}
    return out


def variance_from_a_helper(x):
    s = stats(x)
    return s["sq"] - s["mean"] ** 2


def scaled(d, k):
    return {"a": d["a"] * k, "b": d["b"] + k}


def chained(x):
    d = {"a": x, "b": x * x}
    e = scaled(d, 3.0)
    f = scaled(e, x)
    return f["a"] * f["b"]


def power_sum(d, power=2):
    total = 0.0
    for _, v in d.items():
        total = total + v ** power
    return total


def reads_through_a_helper(x):
    d = {"u": x, "v": 2.0 * x}
    return power_sum(d) + power_sum(d, power=3) + d["u"]


def by_sign(x):
    if x > 0:
        return {"a": x}
    return {"a": -x * 2.0}


def returned_on_each_path(x):
    r = by_sign(x)
    return r["a"] * 3.0


def resets(d):
    d["a"] = 0.0
    return 1.0


def a_helper_writes_the_dict(x):
    d = {"a": x}
    resets(d)
    return d["a"]


def returns_a_dict_in_an_expression(x):
    return stats(x)["mean"]


@pytest.mark.parametrize("func,arg", [
    (variance_from_a_helper, np.array([0.3, -1.2, 2.0, 0.7])),
    (chained, 0.7),
    (reads_through_a_helper, 0.7),
    (returned_on_each_path, 0.7),
    (returned_on_each_path, -0.7),
], ids=lambda v: getattr(v, "__name__", None))
def test_helpers_take_and_return_dicts(func, arg):
    check_grad(func, arg)


def test_a_structured_parameter_passed_to_a_helper(rng):
    params = {"l1": {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)},
              "l2": {"W": rng.normal(size=(4, 2)), "b": 0.1}}
    check_grad(mlp_of_layers, params, rng.normal(size=(5, 3)))


def test_helpers_refused():
    with pytest.raises(SrcgradError, match="writes into a dict it is passed"):
        srcgrad.grad(a_helper_writes_the_dict)(1.0)
    with pytest.raises(SrcgradError, match="differentiating through this dict"):  # (a display in the helper)
        srcgrad.grad(returns_a_dict_in_an_expression)(np.ones(3))
