"""Gradient checking: compare srcgrad's gradient with central finite differences in float64.

In: a function, example arguments, ``wrt``. Out: nothing (raises ``AssertionError`` with a readable report).
What holds: the value of the generated ``value_and_grad`` must equal the function's own value, and every gradient
must have its argument's type and shape and match central differences within ``rtol``/``atol``. A structured
argument (tuple, list, dict, namedtuple, dataclass) is checked leaf by leaf: the gradient has exactly its structure
(types, dict keys in order, classes), each float or float-array leaf matches central differences taken on that leaf,
and every other leaf's place holds None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import structures
from srcgrad.api import value_and_grad


def numerical_grad(func: Callable[..., Any], args: tuple[Any, ...], position: int, eps: float = 1e-6) -> Any:
    """Central-difference gradient of scalar ``func`` with respect to ``args[position]`` (float64)."""
    x = args[position]
    if isinstance(x, (float, int)):
        def at(v: float) -> float:
            return float(func(*args[:position], v, *args[position + 1:]))
        return (at(float(x) + eps) - at(float(x) - eps)) / (2 * eps)
    base = np.array(x, dtype=np.float64, order="C")  # C order: reshape(-1) below must be a view, not a copy
    out = np.zeros_like(base)
    flat, grad_flat = base.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        hi = float(np.sum(func(*args[:position], base.copy(), *args[position + 1:])))
        flat[i] = orig - eps
        lo = float(np.sum(func(*args[:position], base.copy(), *args[position + 1:])))
        flat[i] = orig
        grad_flat[i] = (hi - lo) / (2 * eps)
    return out


def check_grad(func: Callable[..., Any], *args: Any, wrt: int | str | tuple[int | str, ...] = 0, rtol: float = 1e-5,
               atol: float = 1e-7, eps: float = 1e-6, backend: str = "python") -> None:
    """Assert that srcgrad's value and gradient of ``func`` at ``args`` match the function and finite differences
    (``backend``: the one that compiles the generated code, as for :func:`srcgrad.grad`)."""
    import inspect

    params = list(inspect.signature(func).parameters)
    items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
    positions = [params.index(w) if isinstance(w, str) else w % len(params) for w in items]
    value, grads = value_and_grad(func, wrt=tuple(items), backend=backend)(*args)
    expected_value = func(*args)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=0, err_msg="value differs from f(*args)")
    for position, g in zip(positions, grads):
        x = args[position]
        if structures.is_structure(x):
            _check_structure(func, args, position, g, params[position], rtol, atol, eps)
            continue
        _check_type(g, x, params[position])
        expected = numerical_grad(func, args, position, eps)
        np.testing.assert_allclose(
            g, expected, rtol=rtol, atol=atol,
            err_msg=f"gradient with respect to {params[position]} differs from central differences",
        )


def _check_type(g: Any, x: Any, name: str) -> None:
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        assert isinstance(g, float), f"gradient of {name} should be a float, got {type(g).__name__}"
        return
    x = np.asarray(x)
    assert np.shape(g) == x.shape, f"gradient of {name} has shape {np.shape(g)}, expected {x.shape}"
    if x.dtype.kind == "f":
        assert np.asarray(g).dtype == x.dtype, f"gradient of {name} has dtype {np.asarray(g).dtype}, not {x.dtype}"


def _check_structure(func: Callable[..., Any], args: tuple[Any, ...], position: int, g: Any, name: str, rtol: float,
                     atol: float, eps: float) -> None:
    """The gradient of a structured argument: its structure exactly, then each leaf."""
    x = args[position]
    assert structures.same_structure(g, x), \
        f"gradient of {name} has another structure: {_shape_of(g)}, expected {_shape_of(x)}"
    for k, ((path, leaf), (_, g_leaf)) in enumerate(zip(structures.leaves(x), structures.leaves(g))):
        where = f"{name}{path}"
        if not structures.is_differentiated_leaf(leaf):
            assert g_leaf is None, f"gradient of {where} (a constant) should be None, got {g_leaf!r}"
            continue

        def at_leaf(v: Any, k: int = k) -> Any:
            return func(*args[:position], structures.replace_leaf(x, k, v), *args[position + 1:])

        _check_type(g_leaf, leaf, where)
        expected = numerical_grad(at_leaf, (leaf,), 0, eps)
        np.testing.assert_allclose(g_leaf, expected, rtol=rtol, atol=atol,
                                   err_msg=f"gradient with respect to {where} differs from central differences")


def _shape_of(value: Any) -> str:
    return type(value).__name__ + (f" with keys {list(value)}" if isinstance(value, dict) else
                                   f" of length {len(value)}" if isinstance(value, (list, tuple)) else "")
