"""Forward mode and higher order: ``jvp``, ``hvp``, ``hessian``, ``jacobian``, and ``grad`` of ``grad``.

In: a user function and ``wrt``. Out: plain Python functions.
What holds:
- ``jvp`` is forward mode by source transformation (:mod:`srcgrad.forward`): readable code computing each value and
  its tangent, no tape;
- second order is reverse over forward: the generated directional-derivative function ``f_dir(x, *, x_dir)`` is
  ordinary Python, so reverse mode differentiates it again — a Hessian-vector product costs one forward-mode sweep
  and one reverse sweep of it, without forming the Hessian; ``grad(grad(f))`` differentiates ``f_dd`` (the tangent
  along 1.0 of a scalar parameter);
- ``hessian`` and ``jacobian`` assemble columns/rows from those products;
- the transforms themselves (``ForwardTransform``, ``grad_of_grad``) live in :mod:`srcgrad.api`, which
  ``srcgrad.grad`` needs for ``grad(grad(f))``: this module imports it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import api, arrays, locks, structures
from srcgrad.errors import InvalidArgument, SrcgradError


def jvp(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0, *, backend: str = "python") -> Callable[..., Any]:
    """Forward mode: ``g(*args, t) -> (value, directional derivative)``; ``t`` is shaped like the ``wrt`` argument
    (a tuple of tangents for a tuple ``wrt``). ``backend``: as for :func:`srcgrad.grad`."""
    if func is api.AS_DECORATOR:
        return lambda f: jvp(f, wrt, backend=backend)
    api.check_function(func, "jvp")
    transform = api.ForwardTransform(func, wrt, "jvp", backend)

    def entry(*args: Any, **kwargs: Any) -> Any:
        args, t = api.split_last(args, kwargs, "t", f"{func.__name__}_jvp", "the tangent")
        values = transform.bind(args, kwargs)
        generated = transform.specialise(values)
        tangents = tuple(t) if transform.as_tuple else (t,)
        if len(tangents) != len(transform.wrt):
            raise InvalidArgument(f"expected {len(transform.wrt)} tangents (one per wrt parameter)")
        for name, tangent in zip(transform.wrt, tangents):
            check_tangent(f"{func.__name__}_jvp", "tangent", name, values[transform.params.index(name)], tangent)
        return api.call_generated(transform, generated.function, values, dict(zip(generated.tangent_params, tangents)))

    return api.transform_entry(entry, transform, f"{func.__name__}_jvp")


def check_tangent(where: str, what: str, name: str, value: Any, tangent: Any) -> None:
    """A tangent (or hvp's vector) has the structure of its argument ``value`` — the same containers, dict keys and
    classes — and, at each differentiated leaf, a real number or a real array of the leaf's shape. What the generated
    code would otherwise do with another one is silently wrong: extra dict keys are never read, and numpy broadcasts
    a tangent of shape (3, 1) against an argument of shape (3,)."""
    problem = _tangent_problem(value, tangent, name)
    if problem is not None:
        problem = problem.removeprefix(f"at {name} ")  # (a place inside the argument is named; the argument is)
        raise InvalidArgument(f"{where}: the {what} for `{name}` {problem}",
                              hint=f"pass a {what} of the argument's structure: a real number or array of each "
                                   "differentiated leaf's shape")


def _tangent_problem(value: Any, tangent: Any, path: str) -> str | None:
    """Why ``tangent`` cannot be a tangent of ``value`` (None: it can); ``path`` names the place."""
    if structures.is_structure(value):
        if type(tangent) is not type(value):
            return f"at {path} is a {type(tangent).__name__}, and the argument there is a {type(value).__name__}"
        if not structures.same_structure(value, tangent) and not (
                type(value) is dict and set(value) == set(tangent)):
            return f"at {path} does not have the argument's structure (other keys, lengths or fields)"
        children = (value.items() if type(value) is dict else zip(range(len(value)), value)
                    if type(value) in (list, tuple) else None)
        if children is None:  # (namedtuples, dataclasses, registered classes: leaf by leaf, in the same order)
            pairs = zip(structures.leaves(value, path), structures.leaves(tangent, path))
            return next((p for (at, v), (_, t) in pairs if (p := _tangent_problem(v, t, at)) is not None), None)
        for key, child in children:
            found = _tangent_problem(child, tangent[key], f"{path}[{key!r}]")
            if found is not None:
                return found
        return None
    if not structures.is_differentiated_leaf(value) and (path.endswith(("]", ">")) or "." in path):
        return None  # (a leaf of a structure that is not differentiated: its tangent is not read)
    return _leaf_tangent_problem(np.shape(value), tangent, path)


def _leaf_tangent_problem(shape: tuple[int, ...], tangent: Any, path: str) -> str | None:
    if type(tangent) in (float, int, bool):
        return None
    dtype = getattr(tangent, "dtype", None)
    if dtype is None and isinstance(tangent, (list, tuple)):
        dtype = np.asarray(tangent).dtype
    if dtype is None or dtype.kind not in "fiub":
        got = f"dtype {dtype}" if dtype is not None else type(tangent).__name__
        return f"at {path} must be a real number or array, got {got}"
    if np.shape(tangent) not in (shape, ()):
        return f"at {path} has shape {np.shape(tangent)}, and the argument there has shape {shape}"
    return None


def _single_wrt(transform: api.Transform, what: str) -> str:
    if len(transform.wrt) != 1:
        raise InvalidArgument(f"{what} takes one wrt parameter", hint="call it once per parameter")
    return transform.wrt[0]


class _SecondOrder:
    """Reverse mode over the generated directional derivative ``f_dir(params, *, x_dir)``, per argument kinds."""

    def __init__(self, func: Callable[..., Any], wrt: Any) -> None:
        self.direction = api.ForwardTransform(func, wrt, "direction")
        self.param = _single_wrt(self.direction, "hvp/hessian")
        self.position = self.direction.params.index(self.param)
        # kinds -> (reverse mode of f_dir, its direction name, the f_dir variant it differentiates)
        self.grads: dict[tuple[str, ...], tuple[Callable[..., Any], str, Any]] = {}
        self.lock = locks.lock()

    def hvp(self, values: list[Any], v: Any) -> Any:
        key = self.direction.kinds(values)
        generated = self.direction.specialise(values)  # (generated again when its guards fail)
        try:  # (reading the generated forward mode may refuse it too: named at the user's line as well)
            grad_of_direction, direction_name = self.grad_of(key, generated)
            return api.call_generated(self.direction, grad_of_direction, values, {direction_name: v})
        except SrcgradError as exc:  # about the generated forward mode: name the user's line it came from
            located = api.at_users_line(exc, self.direction.pf)
            if located is exc:
                raise
            raise located from None

    def grad_of(self, key: tuple[str, ...], generated: Any) -> tuple[Callable[..., Any], str]:
        """The reverse mode of the ``generated`` forward mode, and the name of its direction parameter."""
        found = self.grads.get(key)
        if found is None or found[2] is not generated:
            with self.lock:
                found = self.grads.get(key)
                if found is None or found[2] is not generated:
                    direction_name = generated.tangent_params[0]
                    self.grads[key] = (api.grad(generated.function, wrt=self.param), direction_name, generated)
            found = self.grads[key]
        return found[0], found[1]


def hvp(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0) -> Callable[..., Any]:
    """Hessian-vector product ``g(*args, v) = H v`` (H: the Hessian of scalar ``func`` with respect to ``wrt``),
    computed without forming H: one forward-mode sweep and its reverse sweep."""
    if func is api.AS_DECORATOR:
        return lambda f: hvp(f, wrt)
    api.check_function(func, "hvp")
    second = _SecondOrder(func, wrt)

    def entry(*args: Any, **kwargs: Any) -> Any:
        args, v = api.split_last(args, kwargs, "v", f"{func.__name__}_hvp", "the vector")
        values = second.direction.bind(args, kwargs)
        check_tangent(f"{func.__name__}_hvp", "vector", second.param, values[second.position], v)
        return second.hvp(values, v)

    return api.transform_entry(entry, second.direction, f"{func.__name__}_hvp")


def hessian(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0) -> Callable[..., Any]:
    """The Hessian of scalar ``func`` with respect to one parameter: a float for a float, an array of shape
    ``x.shape + x.shape`` for an array (one Hessian-vector product per element)."""
    if func is api.AS_DECORATOR:
        return lambda f: hessian(f, wrt)
    api.check_function(func, "hessian")
    second = _SecondOrder(func, wrt)

    def entry(*args: Any, **kwargs: Any) -> Any:
        values = second.direction.bind(args, kwargs)
        x = values[second.position]
        if structures.is_structure(x):  # a structure of structures of blocks
            return structures.structured_hessian(lambda v: second.hvp(values, v), x)
        if type(x) in (float, int):
            return float(second.hvp(values, 1.0))
        x = x if arrays.is_protocol_array(x) else np.asarray(x)  # (a Dask array stays lazy)
        columns = []
        for i in range(x.size):
            e = np.zeros(x.size, dtype=x.dtype if x.dtype.kind == "f" else float)
            e[i] = 1.0
            # (a shape tuple, not -1: Dask's reshape takes no bare number)
            columns.append(np.reshape(second.hvp(values, e.reshape(x.shape)), (-1,)))
        h = np.stack(columns, axis=-1) if columns else np.zeros((0, 0))
        return h.reshape(x.shape + x.shape)

    return api.transform_entry(entry, second.direction, f"{func.__name__}_hessian")


def jacobian(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0, mode: str = "rev") -> Callable[..., Any]:
    """The Jacobian of ``func`` with respect to one parameter, shaped ``out.shape + arg.shape``.

    ``mode="rev"``: one vector-Jacobian product per output element; ``mode="fwd"``: one Jacobian-vector product per
    input element (cheaper when the input is smaller than the output). A parameter that is a structure gives its
    structure of blocks ``out.shape + leaf.shape``; an output that is a tuple, list, dict or namedtuple gives its
    structure, each leaf the Jacobian of that output leaf (JAX's layout; forward mode follows tuples and lists)."""
    if func is api.AS_DECORATOR:
        return lambda f: jacobian(f, wrt, mode)
    api.check_function(func, "jacobian")
    if mode not in ("rev", "fwd"):
        raise InvalidArgument(f"jacobian mode must be 'rev' or 'fwd', got {mode!r}")
    if mode == "rev":
        pull = api.vjp(func, wrt=wrt)
        transform: api.Transform = pull.__srcgrad_transform__  # type: ignore[attr-defined]
    else:
        push = jvp(func, wrt=wrt)
        transform = push.__srcgrad_transform__  # type: ignore[attr-defined]
    param = _single_wrt(transform, "jacobian")
    position = transform.params.index(param)

    def entry(*args: Any, **kwargs: Any) -> Any:
        values = transform.bind(args, kwargs)
        x = values[position]
        y = api.call_generated(transform, transform.func, values, {})
        if structures.is_output_structure(y):  # y's structure of blocks (of x's structure of blocks)
            if mode == "fwd" and structures.holds_dict(y):
                raise InvalidArgument(f"jacobian(mode='fwd') of {func.__name__}: forward mode follows tuples and "
                                      "lists in the output, and it returns a dict", hint="use mode='rev'")
            return structures.output_jacobian(
                x, y, pull=(lambda s: pull(*args, **kwargs, seed=s)) if mode == "rev" else None,
                push=lambda t: push(*args, **kwargs, t=t)[1])
        if structures.is_structure(x):  # blocks in x's structure
            out_shape = np.shape(y)
            return structures.structured_jacobian(x, out_shape, pull=(lambda s: pull(*args, **kwargs, seed=s)) if
                                                  mode == "rev" else None, push=lambda t: push(*args, **kwargs, t=t)[1])
        x_shape = np.shape(x)
        if mode == "rev":
            y_shape: tuple[int, ...] = np.shape(y)
            rows = []
            for i in range(int(np.prod(y_shape))):
                seed: Any = np.zeros(int(np.prod(y_shape)))
                seed[i] = 1.0
                seed = seed.reshape(y_shape) if y_shape else 1.0
                rows.append(np.reshape(pull(*args, **kwargs, seed=seed), (-1,)))
            jac = np.stack(rows) if rows else np.zeros((0, int(np.prod(x_shape))))
            return jac.reshape(y_shape + x_shape)
        columns = []
        y_shape = ()
        for j in range(int(np.prod(x_shape))):
            t: Any = np.zeros(int(np.prod(x_shape)))
            t[j] = 1.0
            t = t.reshape(x_shape) if x_shape else 1.0
            _, tangent = push(*args, **kwargs, t=t)
            y_shape = np.shape(tangent)
            columns.append(np.reshape(tangent, (-1,)))
        jac = np.stack(columns, axis=-1) if columns else np.zeros((0, 0))
        return jac.reshape(y_shape + x_shape)

    return api.transform_entry(entry, transform, f"{func.__name__}_jacobian")


