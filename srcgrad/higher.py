"""Forward mode and higher order: ``jvp``, ``hvp``, ``hessian``, ``jacobian``, and ``grad`` of ``grad``.

In: a user function and ``wrt``. Out: plain Python functions.
What holds:
- ``jvp`` is forward mode by source transformation (:mod:`srcgrad.forward`): readable code computing each value and
  its tangent, no tape;
- second order is reverse over forward: the generated directional-derivative function ``f_dir(x, *, x_dir)`` is
  ordinary Python, so reverse mode differentiates it again — a Hessian-vector product costs one forward-mode sweep
  and one reverse sweep of it, without forming the Hessian; ``grad(grad(f))`` differentiates ``f_dd`` (the tangent
  along 1.0 of a scalar parameter);
- ``hessian`` and ``jacobian`` assemble columns/rows from those products.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import api, locks, pipeline, structures
from srcgrad.errors import InvalidArgument, SrcgradError, at_user_line, refusal


class ForwardTransform(api.Transform):
    """A function, ``wrt`` and a forward style: generated once per argument-kind signature."""

    def __init__(self, func: Callable[..., Any], wrt: Any, style: str, backend: str = "python") -> None:
        super().__init__(func, wrt, style, backend)
        self.style = style

    def generate(self, kinds: dict[str, str]) -> pipeline.Generated:
        if structures.structured(kinds.values()):  # (jvp only; the other styles are refused there)
            api.check_plain_backend(self, "structured arguments (dataclasses, namedtuples, dicts, lists)")
            generated: pipeline.Generated = structures.generate(self, kinds, self.generate_leaves, self.style)
            return generated
        return pipeline.generate_forward(self.pf, self.wrt, kinds, self.style, self.backend)

    def generate_leaves(self, pf: Any, wrt: list[str], kinds: dict[str, str]) -> pipeline.Generated:
        return pipeline.generate_forward(pf, wrt, kinds, self.style)


def _call_generated(transform: api.Transform, function: Callable[..., Any], values: list[Any], extra: dict[str, Any]
                    ) -> Any:
    spread = api.spreader(transform.signature)
    if spread is not None:  # (*args, **kwargs)
        positional, named = spread(values)
    else:
        kwonly = [p.name for p in transform.signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
        n_pos = len(values) - len(kwonly)
        positional, named = values[:n_pos], dict(zip(kwonly, values[n_pos:]))
    try:
        return function(*positional, **named, **extra)
    except ValueError as exc:  # a helper's refusal ("srcgrad: no tangent ...") is raised at the user's line
        refused = refusal(exc, transform.pf)
        if refused is not None:
            raise refused from None
        raise


def _tangent_names(function: Callable[..., Any], count: int) -> list[str]:
    """The last ``count`` parameters of a generated function (its tangents), read from its code (no inspect)."""
    code = function.__code__
    names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    return list(names[-count:])



def jvp(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0, *, backend: str = "python") -> Callable[..., Any]:
    """Forward mode: ``g(*args, t) -> (value, directional derivative)``; ``t`` is shaped like the ``wrt`` argument
    (a tuple of tangents for a tuple ``wrt``). ``backend``: as for :func:`srcgrad.grad`."""
    if func is api.AS_DECORATOR:
        return lambda f: jvp(f, wrt, backend=backend)
    api.check_function(func, "jvp")
    transform = ForwardTransform(func, wrt, "jvp", backend)

    def entry(*args: Any, **kwargs: Any) -> Any:
        args, t = api.split_last(args, kwargs, "t", f"{func.__name__}_jvp", "the tangent")
        values = transform.bind(args, kwargs)
        generated = transform.specialise(values)
        tangents = tuple(t) if transform.as_tuple else (t,)
        if len(tangents) != len(transform.wrt):
            raise InvalidArgument(f"expected {len(transform.wrt)} tangents (one per wrt parameter)")
        names = _tangent_names(generated.function, len(tangents))
        return _call_generated(transform, generated.function, values, dict(zip(names, tangents)))

    return _entry(entry, transform, f"{func.__name__}_jvp")


def _entry(entry: Callable[..., Any], transform: api.Transform, name: str) -> Callable[..., Any]:
    entry.__name__ = entry.__qualname__ = name
    entry.__srcgrad_transform__ = transform  # type: ignore[attr-defined]
    entry.__module__ = transform.func.__module__
    return entry


def _single_wrt(transform: api.Transform, what: str) -> str:
    if len(transform.wrt) != 1:
        raise InvalidArgument(f"{what} takes one wrt parameter", hint="call it once per parameter")
    return transform.wrt[0]


class _SecondOrder:
    """Reverse mode over the generated directional derivative ``f_dir(params, *, x_dir)``, per argument kinds."""

    def __init__(self, func: Callable[..., Any], wrt: Any) -> None:
        self.direction = ForwardTransform(func, wrt, "direction")
        self.param = _single_wrt(self.direction, "hvp/hessian")
        self.position = self.direction.params.index(self.param)
        # kinds -> (reverse mode of f_dir, its direction name, the f_dir variant it differentiates)
        self.grads: dict[tuple[str, ...], tuple[Callable[..., Any], str, Any]] = {}
        self.lock = locks.lock()

    def hvp(self, values: list[Any], v: Any) -> Any:
        key = self.direction.kinds(values)
        generated = self.direction.specialise(values)  # (generated again when its guards fail)
        found = self.grads.get(key)
        if found is None or found[2] is not generated:
            with self.lock:
                found = self.grads.get(key)
                if found is None or found[2] is not generated:
                    direction_name = _tangent_names(generated.function, 1)[0]
                    self.grads[key] = (api.grad(generated.function, wrt=self.param), direction_name, generated)
            found = self.grads[key]
        grad_of_direction, direction_name, _ = found
        try:
            return _call_generated(self.direction, grad_of_direction, values, {direction_name: v})
        except SrcgradError as exc:  # about the generated forward mode: name the user's line it came from
            located = at_user_line(exc, self.direction.pf)
            if located is exc:
                raise
            raise located from None


def hvp(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0) -> Callable[..., Any]:
    """Hessian-vector product ``g(*args, v) = H v`` (H: the Hessian of scalar ``func`` with respect to ``wrt``),
    computed without forming H: one forward-mode sweep and its reverse sweep."""
    if func is api.AS_DECORATOR:
        return lambda f: hvp(f, wrt)
    api.check_function(func, "hvp")
    second = _SecondOrder(func, wrt)

    def entry(*args: Any, **kwargs: Any) -> Any:
        args, v = api.split_last(args, kwargs, "v", f"{func.__name__}_hvp", "the vector")
        return second.hvp(second.direction.bind(args, kwargs), v)

    return _entry(entry, second.direction, f"{func.__name__}_hvp")


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
        if type(x) in (float, int):
            return float(second.hvp(values, 1.0))
        x = np.asarray(x)
        columns = []
        for i in range(x.size):
            e = np.zeros(x.size, dtype=x.dtype if x.dtype.kind == "f" else float)
            e[i] = 1.0
            columns.append(np.reshape(second.hvp(values, e.reshape(x.shape)), -1))
        h = np.stack(columns, axis=-1) if columns else np.zeros((0, 0))
        return h.reshape(x.shape + x.shape)

    return _entry(entry, second.direction, f"{func.__name__}_hessian")


def jacobian(func: Callable[..., Any] = api.AS_DECORATOR, wrt: Any = 0, mode: str = "rev") -> Callable[..., Any]:
    """The Jacobian of ``func`` with respect to one parameter, shaped ``out.shape + arg.shape``.

    ``mode="rev"``: one vector-Jacobian product per output element; ``mode="fwd"``: one Jacobian-vector product per
    input element (cheaper when the input is smaller than the output)."""
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
        if structures.is_structure(x):
            raise InvalidArgument(f"jacobian does not take structured arguments (yet): `{param}` is a "
                                  f"{type(x).__name__}", hint="use vjp or jvp, which take structures")
        x_shape = np.shape(x)
        if mode == "rev":
            y = _call_generated(transform, transform.func, values, {})
            y_shape: tuple[int, ...] = np.shape(y)
            rows = []
            for i in range(int(np.prod(y_shape))):
                seed: Any = np.zeros(int(np.prod(y_shape)))
                seed[i] = 1.0
                seed = seed.reshape(y_shape) if y_shape else 1.0
                rows.append(np.reshape(pull(*args, **kwargs, seed=seed), -1))
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
            columns.append(np.reshape(tangent, -1))
        jac = np.stack(columns, axis=-1) if columns else np.zeros((0, 0))
        return jac.reshape(y_shape + x_shape)

    return _entry(entry, transform, f"{func.__name__}_jacobian")


def grad_of_grad(entry: Callable[..., Any], wrt: Any, mode: str) -> Callable[..., Any]:
    """``grad(grad(f, wrt=a), wrt=b)`` for a scalar parameter a: reverse mode over the generated ``f_dd``, the
    tangent of f along a (1.0) — ordinary Python that srcgrad reads like any other function."""
    inner: api.Transform = entry.__srcgrad_transform__  # type: ignore[attr-defined]
    if inner.mode != "grad" or inner.as_tuple:
        raise InvalidArgument(
            f"grad of {entry.__name__} needs the gradient of a scalar function with respect to one parameter",
            hint="use srcgrad.hessian, srcgrad.hvp or srcgrad.jacobian for the general case")
    unit = ForwardTransform(inner.func, inner.wrt[0], "unit")
    outer = api.Transform(inner.func, wrt, mode)  # only to resolve and check wrt against f's parameters
    # kinds -> (reverse mode of f_dd, the f_dd variant)
    grads: dict[tuple[str, ...], tuple[Callable[..., Any], Any]] = {}
    lock = locks.lock()

    def second(*args: Any, **kwargs: Any) -> Any:
        values = unit.bind(args, kwargs)
        key = unit.kinds(values)
        generated = unit.specialise(values)  # (generated again when its guards fail)
        found = grads.get(key)
        if found is None or found[1] is not generated:
            with lock:
                found = grads.get(key)
                if found is None or found[1] is not generated:
                    wrt_spec = tuple(outer.wrt) if outer.as_tuple else outer.wrt[0]
                    grads[key] = (api._decorator_or_call(generated.function, wrt_spec, mode, mode), generated)
                found = grads[key]
        try:
            return _call_generated(unit, found[0], values, {})
        except SrcgradError as exc:  # about the generated forward mode: name the user's line it came from
            located = at_user_line(exc, unit.pf)
            if located is exc:
                raise
            raise located from None

    return _entry(second, outer, f"{inner.func.__name__}_{mode}2")
