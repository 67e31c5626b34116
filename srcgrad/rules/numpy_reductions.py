"""Derivative rules: numpy reductions and scans (sum, mean, prod, max/min, var/std, norm, cumsum, trace, diag).

In: calls like ``np.sum(x, axis=(0, -1), keepdims=True)`` and the methods ``x.sum()``, ``x.max(axis=0)``...
Out: the contribution of the output's adjoint to the reduced array, with the input's shape.

What holds:
- ``axis`` may be None, an int, a negative int or a tuple; ``keepdims`` is honoured; the reduced axes are restored
  by :func:`srcgrad.runtime.restore_axes` (the adjoint of a reduction is a broadcast, never an unbroadcast);
- numpy's positional order is kept for the parameters srcgrad supports, and what follows an unsupported parameter
  (``dtype``, ``out``) is keyword-only here: ``np.sum(x, 0, float)`` is a clear error, never a silent misbinding;
- ``prod`` is differentiated without dividing, so inputs with zeros get exact gradients;
- ties: ``max``/``min``/``amax``/``amin`` (and ``norm`` with ``ord=inf``) split the gradient equally among the
  elements that attain the extreme value;
- ``var``/``std`` take ``ddof``; where ``std`` is 0 (one element, constant data) its gradient is 0: one element's
  std is identically 0, constant data's grows like ``|t|`` (a central difference sees 0, as for ``abs`` at 0).
"""

import numpy as np

from srcgrad import ir
from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.runtime import (
    cumprod_grad,
    cumprod_tangent,
    cumsum_grad,
    diag_grad,
    diagonal_grad,
    extremum_grad,
    norm_grad,
    prod_grad,
    reduced_count,
    restore_axes,
    std_grad,
    trace_grad,
    var_grad,
)


def over_all_axes(params: dict) -> bool:
    """A reduction called with no ``axis`` (or None) and no ``keepdims`` (or False): one number from every element."""
    axis, keepdims = params.get("axis"), params.get("keepdims")
    return (axis is None or (isinstance(axis, ir.Const) and axis.value is None)) \
        and (keepdims is None or (isinstance(keepdims, ir.Const) and keepdims.value is False))


def _norm_over_all_axes(params: dict) -> bool:
    ord_ = params.get("ord")
    return over_all_axes(params) and not (isinstance(ord_, ir.Const) and ord_.value == "nuc")


_REDUCE = {"wrt": ("a",), "discrete": ("axis", "keepdims"), "full_reduction": over_all_axes}

# --- sums and means -------------------------------------------------------------------------------------------------


@defgrad(np.sum, **_REDUCE, forward="linear", uniform="sum")
def sum_(g, ans, a, axis=None, *, keepdims=False):
    return restore_axes(g, a, axis, keepdims)


@defgrad(np.mean, **_REDUCE, forward="linear", uniform="mean")
def mean(g, ans, a, axis=None, *, keepdims=False):
    return restore_axes(g, a, axis, keepdims) / reduced_count(a, ans)


@defgrad(np.prod, **_REDUCE, forward="reduction")
def prod(g, ans, a, axis=None, *, keepdims=False):
    return prod_grad(g, a, axis, keepdims)


# --- extremes (ties split equally) ----------------------------------------------------------------------------------


@defgrad(np.max, **_REDUCE, forward="reduction")
def max_(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


@defgrad(np.amax, **_REDUCE, forward="reduction")
def amax(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


@defgrad(np.min, **_REDUCE, forward="reduction")
def min_(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


@defgrad(np.amin, **_REDUCE, forward="reduction")
def amin(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


# --- spread and size ------------------------------------------------------------------------------------------------


@defgrad(np.var, **_REDUCE, forward="reduction")
def var(g, ans, a, axis=None, *, ddof=0, keepdims=False):
    return var_grad(g, a, axis, ddof, keepdims)


@defgrad(np.std, **_REDUCE, forward="reduction")
def std(g, ans, a, axis=None, *, ddof=0, keepdims=False):
    return std_grad(g, ans, a, axis, ddof, keepdims)


@defgrad(np.linalg.norm, wrt=("x",), discrete=("axis", "keepdims"), forward="reduction",
         full_reduction=_norm_over_all_axes)
def norm(g, ans, x, ord=None, axis=None, keepdims=False):
    return norm_grad(g, ans, x, ord, axis, keepdims)


# --- scans ----------------------------------------------------------------------------------------------------------


@defgrad(np.cumsum, wrt=("a",), discrete=("axis",), forward="linear")
def cumsum(g, ans, a, axis=None):
    return cumsum_grad(g, a, axis)


@defgrad(np.cumprod, wrt=("a",), discrete=("axis",))
def cumprod(g, ans, a, axis=None):
    return cumprod_grad(g, ans, a, axis)


@defjvp(np.cumprod)
def cumprod_jvp(a_dot, ans, a, axis=None):
    return cumprod_tangent(a, a_dot, axis)


# --- diagonals ------------------------------------------------------------------------------------------------------


@defgrad(np.trace, wrt=("a",), discrete=("offset", "axis1", "axis2"), forward="linear")
def trace(g, ans, a, offset=0, axis1=0, axis2=1):
    return trace_grad(g, a, offset, axis1, axis2)


@defgrad(np.diagonal, wrt=("a",), discrete=("offset", "axis1", "axis2"), view=True, forward="linear")
def diagonal(g, ans, a, offset=0, axis1=0, axis2=1):
    return diagonal_grad(g, a, offset, axis1, axis2)


# vector -> diagonal matrix, or matrix -> its diagonal (a view)
@defgrad(np.diag, wrt=("v",), discrete=("k",), forward="linear", view=True)
def diag(g, ans, v, k=0):
    return diag_grad(g, v, k)
