"""The per-call cost of structured arguments (issue 15 item 7): a structured variant's leaves carry their layouts, so
the function of leaves is the code a flat call gets; the entry checks the arguments' structures in generated code
and calls the variant's front function, with no dispatcher in between. The checks are not weakened: after the entry
took on a structure, any other structure, leaf type, dtype or layout still gets a variant of its own."""

import dataclasses
from collections import namedtuple

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

Pair = namedtuple("Pair", "w b")


@dataclasses.dataclass
class Params:
    w: np.ndarray
    b: np.ndarray


def dict_loss(p, x):
    return np.sum(np.tanh(x @ p["w"] + p["b"]) ** 2)


def attr_loss(p, x):
    return np.sum(np.tanh(x @ p.w + p.b) ** 2)


def flat_loss(w, b, x):
    return np.sum(np.tanh(x @ w + b) ** 2)


def entry_is_checked(df):
    return "(checked)" in df.__code__.co_filename


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(5, 4))


def test_the_function_of_leaves_is_the_flat_code(data):
    w, b, x = data
    flat = srcgrad.grad(flat_loss, wrt=(0, 1))
    flat(w, b, x)
    structured = srcgrad.grad(dict_loss)
    structured({"w": w, "b": b}, x)
    flat_text, structured_text = srcgrad.source(flat), srcgrad.source(structured)
    for helper in ("unbroadcast", "matmul_grad", "owned_grad"):  # (what general code calls; layouts resolve them)
        assert helper not in flat_text
        assert helper not in structured_text


@pytest.mark.parametrize(("loss", "make"), [(dict_loss, lambda w, b: {"w": w, "b": b}), (attr_loss, Params),
                                            (attr_loss, Pair)])
def test_the_entry_takes_on_a_structure_and_still_tells_others_apart(loss, make, data):
    w, b, x = data
    df = srcgrad.grad(loss)
    first = df(make(w, b), x)
    second = df(make(w, b), x)
    assert entry_is_checked(df)  # (the entry checks the structure and calls the front: no dispatcher)
    for got in (first, second):
        assert type(got) is type(make(w, b))
    others = [make(w[:, :1], b[:1]),  # other layouts: a column, one item
              make(w, 0.5),  # a float leaf
              make(w.astype(np.float32), b),  # another dtype
              make(w, b.reshape(1, 3)),  # another rank
              make(np.asfortranarray(w), b)]  # (the same layout: the same variant, and right)
    if loss is dict_loss:
        others += [{"b": b, "w": w}, {"w": w, "b": b, "c": 1.0}]
    for args in [*others, make(w, b)]:
        check_grad(loss, args, x, wrt=0, rtol=1e-4 if args_dtype(args) == np.float32 else 1e-6)
        got = df(args, x)
        assert type(got) is type(args)
        expected = srcgrad.grad(loss)(args, x)  # a fresh gradient: its first call goes through the dispatcher
        for name in leaf_names(args):
            np.testing.assert_allclose(leaf(got, name), leaf(expected, name), rtol=1e-12)


def args_dtype(p):
    w = p["w"] if isinstance(p, dict) else p.w
    return w.dtype


def leaf_names(p):
    return list(p) if isinstance(p, dict) else ["w", "b"]


def leaf(p, name):
    return p[name] if isinstance(p, dict) else getattr(p, name)


def test_a_wrong_structure_after_the_swap_raises_as_before(data):
    w, b, x = data
    df = srcgrad.grad(dict_loss)
    df({"w": w, "b": b}, x)
    df({"w": w, "b": b}, x)
    assert entry_is_checked(df)
    with pytest.raises(KeyError):
        df({"w": w}, x)
    with pytest.raises(KeyError):
        dict_loss({"w": w}, x)


def layers_mlp(layers, x):
    h = x
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = np.tanh(h)
        elif i * 2 == 2 * len(layers) - 2:
            h = h * 0.5
    return np.sum(h ** 2)


def test_integer_arithmetic_of_unrolled_indices_and_lengths_is_known_when_generating(data):
    """``if i < len(layers) - 1`` in a loop over a list of layers: the rewrite knows ``i`` and the length, so each
    unrolled copy keeps only its branch (straight-line code, as for flat arguments); both branches are taken."""
    w, b, x = data
    rng = np.random.default_rng(5)
    layers = [(w, b), (rng.normal(size=(3, 2)), rng.normal(size=2))]
    check_grad(layers_mlp, layers, x, wrt=0)
    df = srcgrad.grad(layers_mlp)
    df(layers, x)
    code = "\n".join(ln for ln in srcgrad.source(df).splitlines() if not ln.strip().startswith("#"))
    assert "if " not in code and code.count("np.tanh(") == 1 and "* 0.5" in code


def computes_a_leaf(p, x):
    return float(np.sum(p["w"])) * np.sum(p["w"] * x)


def test_a_structure_of_dask_arrays_keeps_going_through_srcgrad_lazy():
    """Dask leaves in a structure: every call runs under srcgrad.lazy (which refuses computations at the user's
    line), also after the entry took on other variants: the entry never takes on a structure holding Dask arrays."""
    da = pytest.importorskip("dask.array")
    p = {"w": da.from_array(np.arange(4.0), chunks=2)}
    df = srcgrad.grad(computes_a_leaf)
    for _ in range(3):
        with pytest.raises(srcgrad.SrcgradError, match="computes"):
            df(p, np.ones(4))
        assert not entry_is_checked(df)
