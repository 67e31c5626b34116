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

from srcgrad.rules.registry import defgrad
from srcgrad.runtime import (
    cumprod_grad,
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

# --- sums and means -------------------------------------------------------------------------------------------------


@defgrad(np.sum, wrt=("a",), discrete=("axis", "keepdims"))
def sum_(g, ans, a, axis=None, *, keepdims=False):
    return restore_axes(g, a, axis, keepdims)


@defgrad(np.mean, wrt=("a",), discrete=("axis", "keepdims"))
def mean(g, ans, a, axis=None, *, keepdims=False):
    return restore_axes(g, a, axis, keepdims) / reduced_count(a, ans)


@defgrad(np.prod, wrt=("a",), discrete=("axis", "keepdims"))
def prod(g, ans, a, axis=None, *, keepdims=False):
    return prod_grad(g, a, axis, keepdims)


# --- extremes (ties split equally) ----------------------------------------------------------------------------------


@defgrad(np.max, wrt=("a",), discrete=("axis", "keepdims"))
def max_(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


@defgrad(np.amax, wrt=("a",), discrete=("axis", "keepdims"))
def amax(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


@defgrad(np.min, wrt=("a",), discrete=("axis", "keepdims"))
def min_(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


@defgrad(np.amin, wrt=("a",), discrete=("axis", "keepdims"))
def amin(g, ans, a, axis=None, *, keepdims=False):
    return extremum_grad(g, ans, a, axis, keepdims)


# --- spread and size ------------------------------------------------------------------------------------------------


@defgrad(np.var, wrt=("a",), discrete=("axis", "keepdims"))
def var(g, ans, a, axis=None, *, ddof=0, keepdims=False):
    return var_grad(g, a, axis, ddof, keepdims)


@defgrad(np.std, wrt=("a",), discrete=("axis", "keepdims"))
def std(g, ans, a, axis=None, *, ddof=0, keepdims=False):
    return std_grad(g, ans, a, axis, ddof, keepdims)


@defgrad(np.linalg.norm, wrt=("x",), discrete=("axis", "keepdims"))
def norm(g, ans, x, ord=None, axis=None, keepdims=False):
    return norm_grad(g, ans, x, ord, axis, keepdims)


# --- scans ----------------------------------------------------------------------------------------------------------


@defgrad(np.cumsum, wrt=("a",), discrete=("axis",))
def cumsum(g, ans, a, axis=None):
    return cumsum_grad(g, a, axis)


@defgrad(np.cumprod, wrt=("a",), discrete=("axis",))
def cumprod(g, ans, a, axis=None):
    return cumprod_grad(g, ans, a, axis)


# --- diagonals ------------------------------------------------------------------------------------------------------


@defgrad(np.trace, wrt=("a",), discrete=("offset", "axis1", "axis2"))
def trace(g, ans, a, offset=0, axis1=0, axis2=1):
    return trace_grad(g, a, offset, axis1, axis2)


@defgrad(np.diagonal, wrt=("a",), discrete=("offset", "axis1", "axis2"), view=True)
def diagonal(g, ans, a, offset=0, axis1=0, axis2=1):
    return diagonal_grad(g, a, offset, axis1, axis2)


@defgrad(np.diag, wrt=("v",), discrete=("k",))  # vector -> diagonal matrix, or matrix -> its diagonal
def diag(g, ans, v, k=0):
    return diag_grad(g, v, k)
