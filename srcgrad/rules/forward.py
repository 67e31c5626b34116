"""Forward-mode (tangent) rules: how each primitive's tangent follows from its operands' tangents.

In: a :class:`~srcgrad.rules.registry.Rule`. Out: its forward kind, and for ``explicit`` primitives the rule.
What holds — the kinds, in the order they are decided:
- ``explicit``: a rule registered with :func:`defjvp` — a function of ``ans``, the primitive's parameters and the
  tangents ``<param>_dot`` of its differentiable parameters, returning the output's tangent;
- ``reduction``: a reduction over ``axis`` (prod, max, var, norm...): each output element depends on its own slice,
  so the tangent is ``sum(partials * a_dot, axis)`` where the partials are the reverse rule at ``g = 1``;
- ``linear``: the tangent is the primitive applied to the tangents (sum, reshape, indexing, stacking...);
- ``multilinear``: products (matmul, dot, einsum...): one term per differentiated operand;
- ``elementwise``: ufuncs, ``math``, operators: the reverse rule with ``g`` replaced by each operand's tangent —
  their Jacobian is diagonal, so it is its own transpose.
A primitive with none of these has no forward mode; srcgrad says so at generation time.
"""

from __future__ import annotations

import ast
import inspect
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import freshness
from srcgrad.errors import InternalError
from srcgrad.rules.registry import Rule, _key, single_return
from srcgrad.runtime import (
    as_tuple,
    cast_grad,
    cholesky_jvp,
    cumprod_tangent,
    extreme_items_tangent,
    setitem,
    solve_tangent,
)

_EXPLICIT: dict[Any, Callable] = {}

LINEAR = {
    np.sum, np.mean, np.cumsum, np.trace, np.diagonal, np.diag, np.reshape, np.ravel, ("method", "flatten"),
    np.squeeze, np.expand_dims, np.broadcast_to, np.transpose, ("attribute", "T"), np.swapaxes, np.moveaxis,
    np.flip, np.fliplr, np.flipud, np.roll, np.tile, np.repeat, np.copy, ("method", "item"),
    np.triu, np.tril, np.diff, ("display", "tuple"), ("display", "list"), np.concatenate, np.stack, np.hstack,
    np.vstack, np.split, np.array_split, np.take, np.take_along_axis, operator.getitem, sum, setitem, as_tuple,
}
MULTILINEAR = {operator.matmul, np.matmul, np.dot, np.vdot, np.inner, np.outer, np.tensordot, np.einsum}
REDUCTIONS = {np.prod, np.max, np.amax, np.min, np.amin, np.var, np.std, np.linalg.norm}
_ELEMENTWISE_BUILTINS = {abs, max, min, float, operator.add, operator.sub, operator.mul, operator.truediv,
                         operator.pow, operator.neg, operator.pos, operator.mod, ("method", "astype"),
                         np.float64, np.float32}


def defjvp(func: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the forward-mode (tangent) rule of ``func``.

    The decorated function's parameters are named after what it receives: ``ans`` (the output), the parameters of
    ``func``, and ``<name>_dot`` (the tangent of each differentiable parameter); it returns the output's tangent::

        @srcgrad.defjvp(softplus)
        def softplus_jvp(x_dot, ans, x):
            return x_dot / (1.0 + np.exp(-x))
    """

    def register(rule_fn: Callable) -> Callable:
        _EXPLICIT[_key(func)] = rule_fn
        return rule_fn

    return register


def kind_of(rule: Rule) -> str | None:
    key = _key(rule.func)
    if key in _EXPLICIT:
        return "explicit"
    for table, kind in ((REDUCTIONS, "reduction"), (LINEAR, "linear"), (MULTILINEAR, "multilinear")):
        try:
            if key in table:
                return kind
        except TypeError:
            pass
    func = rule.func
    if rule.broadcast or isinstance(func, np.ufunc) or getattr(func, "__module__", None) == "math":
        return "elementwise"
    try:
        if key in _ELEMENTWISE_BUILTINS:
            return "elementwise"
    except TypeError:
        pass
    return None


def reduction_template(rule: Rule) -> ast.expr:
    """The return expression of a reduction's reverse rule, which its tangent instantiates at ``g = 1``. There is no
    call to fall back to: when the rule's file changed since it was imported, its text is not the rule's any more,
    and that is an :class:`InternalError`."""
    adjoint = rule.adjoint
    templates = rule.inline_exprs(adjoint)
    if templates is not None:
        return templates[0]
    if freshness.is_stale(adjoint):
        problem = f"{adjoint.__code__.co_filename} no longer holds it: the file changed since it was imported"
        hint = "restart the interpreter (or kernel) so that the rule's module is imported again"
    else:
        problem = "it is not a single `return` expression"
        hint = "write the rule as one `return` expression"
    raise InternalError(f"forward mode of {rule.name} needs the text of its rule {adjoint.__qualname__}, and "
                        f"{problem}", hint=hint)


def explicit_rule(rule: Rule) -> Callable:
    return _EXPLICIT[_key(rule.func)]


def parameters(rule_fn: Callable) -> list[str]:
    return list(inspect.signature(rule_fn).parameters)


def inline_expr(rule_fn: Callable) -> ast.expr | None:
    """The return expression of a single-``return`` rule, else None (then the rule is called). A rule whose file
    changed since it was defined is called too: the text in the file is not the rule's any more."""
    return single_return(rule_fn)


# --- explicit tangent rules -------------------------------------------------------------------------------------


@defjvp(np.sort)
def sort_jvp(a_dot, ans, a, axis=-1, kind=None):
    return np.take_along_axis(a_dot, np.argsort(a, axis=axis), axis=axis)


@defjvp(np.linalg.inv)
def inv_jvp(a_dot, ans, a):
    return -(ans @ a_dot @ ans)


@defjvp(np.linalg.solve)
def solve_jvp(a_dot, b_dot, ans, a, b):
    return solve_tangent(a, a_dot, b, b_dot, ans)


@defjvp(np.array)
def array_jvp(object_dot, ans, object, dtype=None):
    return cast_grad(np.array(object_dot, dtype=float), dtype)


@defjvp(np.asarray)
def asarray_jvp(a_dot, ans, a, dtype=None):
    return cast_grad(np.asarray(a_dot, dtype=float), dtype)


@defjvp(np.linalg.det)
def det_jvp(a_dot, ans, a):
    return ans * np.trace(np.linalg.solve(a, a_dot), axis1=-2, axis2=-1)


@defjvp(np.linalg.slogdet)
def slogdet_jvp(a_dot, ans, a):
    return (0.0 * ans[0], np.trace(np.linalg.solve(a, a_dot), axis1=-2, axis2=-1))


@defjvp(np.linalg.cholesky)
def cholesky_jvp_rule(a_dot, ans, a):
    return cholesky_jvp(ans, a_dot)


@defjvp(np.linspace)
def linspace_jvp(start_dot, stop_dot, ans, start, stop, num=50, endpoint=True, *, dtype=None, axis=0):
    return cast_grad(np.linspace(start_dot, stop_dot, num, endpoint, axis=axis), ans.dtype)


@defjvp(np.full)
def full_jvp(fill_value_dot, ans, shape, fill_value, dtype=None):
    return cast_grad(np.full(np.shape(ans), fill_value_dot, dtype=float), ans.dtype)


@defjvp(np.full_like)
def full_like_jvp(fill_value_dot, ans, a, fill_value, dtype=None, *, shape=None):
    return cast_grad(np.full(np.shape(ans), fill_value_dot, dtype=float), ans.dtype)


@defjvp(("builtin", "max of items"))
@defjvp(("builtin", "min of items"))
def extreme_items_jvp(iterable_dot, ans, iterable):
    return extreme_items_tangent(iterable_dot, ans, iterable)


@defjvp(np.cumprod)
def cumprod_jvp(a_dot, ans, a, axis=None):
    return cumprod_tangent(a, a_dot, axis)
