"""Derivative rules: more of numpy — products (``cross``, ``kron``), real parts of real numbers, finite differences
(``gradient``), axes and views (``rot90``, ``rollaxis``, ``atleast_*d``), joining and splitting (``column_stack``,
``append``, ``vsplit``/``hsplit``/``dsplit``), padding, partitioning, selecting, replacing non-finite values, and
spaced samples (``logspace``, ``geomspace``).

In: calls like ``np.cross(a, b)``, ``np.pad(x, 2, mode="reflect")``, ``np.select([x > 0], [x], default=y)``.
Out: the contribution of the output's adjoint to each differentiable argument (helpers in :mod:`srcgrad.runtime`),
and their forward-mode (tangent) rules, registered here too.

What holds:
- parameters follow numpy's names, positions and defaults; axes, counts, conditions, modes and flags are
  ``discrete``; a parameter neither differentiated nor discrete (``np.gradient``'s spacing, ``np.pad``'s
  ``stat_length``/``end_values``) is refused when a differentiated value reaches it;
- ``np.real``, ``np.imag``, ``np.conj``/``np.conjugate``, ``np.angle`` and ``np.real_if_close`` are differentiated
  on real numbers (``imag`` and ``angle`` are constant there); a complex value reaching them is refused when the
  gradient runs, naming the line;
- ``np.partition`` sends each tied value's gradient where np.sort's stable order sends it; ``np.select`` gives ``g``
  to the choice the first true condition picks (the default where none is), as ``np.where`` does;
- ``np.pad`` is differentiated for modes constant (also in ``constant_values``), edge, reflect, symmetric (both
  ``reflect_type``s) and wrap; other modes are refused when the gradient runs;
- ``np.logspace`` is differentiated in ``start``, ``stop`` and ``base``; ``np.geomspace`` in ``start`` and ``stop``;
- functions whose result may share memory with an argument are registered ``view=True`` (rot90, rollaxis,
  atleast_*d, the splits, real, imag, real_if_close; nan_to_num when ``copy`` is not True), so an in-place update
  of the result is refused where Python would see it through the argument.
"""

import math

import numpy as np

from srcgrad import ir
from srcgrad.rules.registry import defgrad, defjvp, nondifferentiable
from srcgrad.runtime import (
    append_grad,
    atleast_grad,
    column_stack_grad,
    cross_grad,
    geomspace_grad,
    geomspace_tangent,
    gradient_grad,
    kron_grad,
    logspace_grad,
    logspace_tangent,
    nan_to_num_grad,
    nan_to_num_tangent,
    pad_constant_grad,
    pad_grad,
    partition_grad,
    partition_source,
    real_input,
    real_zero,
    rollaxis_grad,
    select_grad,
    split_grad,
)

# --- products -------------------------------------------------------------------------------------------------------


@defgrad(np.cross, wrt=("a", "b"), discrete=("axisa", "axisb", "axisc", "axis"), forward="multilinear")
def cross(g, ans, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    return cross_grad(g, a, b, axisa, axisb, axisc, axis, 0), cross_grad(g, a, b, axisa, axisb, axisc, axis, 1)


@defgrad(np.kron, forward="multilinear")
def kron(g, ans, a, b):
    return kron_grad(g, a, b, 0), kron_grad(g, a, b, 1)


# --- real parts of real numbers -------------------------------------------------------------------------------------


@defgrad(np.real, out_kind="same", view=True)
def real(g, ans, val):
    return real_input(val, g, "np.real")


@defgrad(np.imag, out_kind="same", view=True)  # a read-only array of zeros for a real array
def imag(g, ans, val):
    return real_zero(val, "np.imag")


@defgrad(np.conjugate)  # also np.conj (the same ufunc)
def conjugate(g, ans, x):
    return real_input(x, g, "np.conjugate")


@defgrad(np.angle, wrt=("z",), discrete=("deg",))  # 0 or pi on real numbers
def angle(g, ans, z, deg=False):
    return real_zero(z, "np.angle")


@defgrad(np.real_if_close, wrt=("a",), discrete=("tol",), view=True)  # a real array itself
def real_if_close(g, ans, a, tol=100):
    return real_input(a, g, "np.real_if_close")


@defjvp(np.real)
def real_jvp(val_dot, ans, val):
    return real_input(val, val_dot, "np.real")


@defjvp(np.imag)
def imag_jvp(val_dot, ans, val):
    return real_zero(val, "np.imag")


@defjvp(np.angle)
def angle_jvp(z_dot, ans, z, deg=False):
    return real_zero(z, "np.angle")


@defjvp(np.real_if_close)
def real_if_close_jvp(a_dot, ans, a, tol=100):
    return real_input(a, a_dot, "np.real_if_close")


# --- angles ---------------------------------------------------------------------------------------------------------


@defgrad(np.radians)  # the same function as np.deg2rad, another ufunc object
def radians(g, ans, x):
    return g * (math.pi / 180.0)


@defgrad(np.degrees)  # the same function as np.rad2deg, another ufunc object
def degrees(g, ans, x):
    return g * (180.0 / math.pi)


# --- finite differences ---------------------------------------------------------------------------------------------


# one output per axis (a tuple) unless one axis; the spacing (`varargs`) is not differentiated: refused
@defgrad(np.gradient, wrt=("f",), discrete=("axis", "edge_order"), forward="linear")
def gradient(g, ans, f, *varargs, axis=None, edge_order=1):
    return gradient_grad(g, f, varargs, axis, edge_order)


# --- axes and views -------------------------------------------------------------------------------------------------


@defgrad(np.rot90, wrt=("m",), discrete=("k", "axes"), view=True, forward="linear")
def rot90(g, ans, m, k=1, axes=(0, 1)):
    return np.rot90(g, -k, axes)


@defgrad(np.rollaxis, wrt=("a",), discrete=("axis", "start"), view=True, forward="linear")
def rollaxis(g, ans, a, axis, start=0):
    return rollaxis_grad(g, a, axis, start)


# the argument itself when it has the dimensions already
@defgrad(np.atleast_1d, wrt=("arys",), view=True, forward="linear")
def atleast_1d(g, ans, *arys):
    return atleast_grad(g, arys)


@defgrad(np.atleast_2d, wrt=("arys",), view=True, forward="linear")
def atleast_2d(g, ans, *arys):
    return atleast_grad(g, arys)


@defgrad(np.atleast_3d, wrt=("arys",), view=True, forward="linear")
def atleast_3d(g, ans, *arys):
    return atleast_grad(g, arys)


# --- joining and splitting ------------------------------------------------------------------------------------------


@defgrad(np.column_stack, forward="linear")
def column_stack(g, ans, tup):
    return column_stack_grad(g, tup)


@defgrad(np.append, wrt=("arr", "values"), discrete=("axis",), forward="linear")
def append(g, ans, arr, values, axis=None):
    return append_grad(g, arr, values, axis, 0), append_grad(g, arr, values, axis, 1)


# a list of views out: index it (parts[0]) or unpack it; g is then one adjoint per part
@defgrad(np.vsplit, wrt=("ary",), discrete=("indices_or_sections",), view=True, forward="linear")
def vsplit(g, ans, ary, indices_or_sections):
    return split_grad(g, ary, 0)


@defgrad(np.hsplit, wrt=("ary",), discrete=("indices_or_sections",), view=True, forward="linear")
def hsplit(g, ans, ary, indices_or_sections):
    return split_grad(g, ary, 1 if np.ndim(ary) > 1 else 0)


@defgrad(np.dsplit, wrt=("ary",), discrete=("indices_or_sections",), view=True, forward="linear")
def dsplit(g, ans, ary, indices_or_sections):
    return split_grad(g, ary, 2)


# --- padding --------------------------------------------------------------------------------------------------------


# `stat_length` and `end_values` (modes maximum, mean, linear_ramp...) are not taken: refused
@defgrad(np.pad, wrt=("array", "constant_values"), discrete=("pad_width", "mode", "reflect_type"), forward="linear")
def pad(g, ans, array, pad_width, mode="constant", *, constant_values=0, reflect_type="even"):
    return pad_grad(g, array, pad_width, mode, reflect_type), pad_constant_grad(g, array, pad_width, constant_values)


# --- partitioning and selecting -------------------------------------------------------------------------------------


@defgrad(np.partition, wrt=("a",), discrete=("kth", "axis", "kind"))  # `order` (structured arrays): refused
def partition(g, ans, a, kth, axis=-1, kind="introselect"):
    return partition_grad(g, a, ans, axis)


@defjvp(np.partition)  # (an indexing, so that second derivatives differentiate it again)
def partition_jvp(a_dot, ans, a, kth, axis=-1, kind="introselect"):
    return np.take_along_axis(np.reshape(a_dot, (-1,)) if axis is None else a_dot, partition_source(a, ans, axis),
                              -1 if axis is None else axis)


nondifferentiable(partition_source)  # indices: piecewise constant


@defgrad(np.select, wrt=("choicelist", "default"), discrete=("condlist",), forward="linear")
def select(g, ans, condlist, choicelist, default=0):
    return select_grad(g, condlist, choicelist, default, 0), select_grad(g, condlist, choicelist, default, 1)


def _nan_to_num_may_return_x(params: dict) -> bool:
    """``np.nan_to_num(x, copy=False)`` replaces in ``x`` and returns it: a view unless ``copy`` is the constant
    True."""
    copy = params.get("copy")
    return not (isinstance(copy, ir.Const) and copy.value is True)


@defgrad(np.nan_to_num, wrt=("x", "nan", "posinf", "neginf"), discrete=("copy",), view=_nan_to_num_may_return_x)
def nan_to_num(g, ans, x, copy=True, nan=0.0, posinf=None, neginf=None):
    return (nan_to_num_grad(g, ans, x, "x"), nan_to_num_grad(g, ans, x, "nan"), nan_to_num_grad(g, ans, x, "posinf"),
            nan_to_num_grad(g, ans, x, "neginf"))


@defjvp(np.nan_to_num)
def nan_to_num_jvp(x_dot, nan_dot, posinf_dot, neginf_dot, ans, x, copy=True, nan=0.0, posinf=None, neginf=None):
    return nan_to_num_tangent(ans, x, x_dot, nan_dot, posinf_dot, neginf_dot)


# --- spaced samples -------------------------------------------------------------------------------------------------


@defgrad(np.logspace, wrt=("start", "stop", "base"), discrete=("num", "endpoint", "dtype", "axis"), broadcast=True)
def logspace(g, ans, start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    return (logspace_grad(g, ans, start, stop, num, endpoint, base, axis, 0),
            logspace_grad(g, ans, start, stop, num, endpoint, base, axis, 1),
            logspace_grad(g, ans, start, stop, num, endpoint, base, axis, 2))


@defjvp(np.logspace)
def logspace_jvp(start_dot, stop_dot, base_dot, ans, start, stop, num=50, endpoint=True, base=10.0, dtype=None,
                 axis=0):
    return logspace_tangent(ans, start, stop, num, endpoint, base, axis, start_dot, stop_dot, base_dot)


@defgrad(np.geomspace, wrt=("start", "stop"), discrete=("num", "endpoint", "dtype", "axis"), broadcast=True)
def geomspace(g, ans, start, stop, num=50, endpoint=True, dtype=None, axis=0):
    return (geomspace_grad(g, ans, start, stop, num, endpoint, axis, 0),
            geomspace_grad(g, ans, start, stop, num, endpoint, axis, 1))


@defjvp(np.geomspace)
def geomspace_jvp(start_dot, stop_dot, ans, start, stop, num=50, endpoint=True, dtype=None, axis=0):
    return geomspace_tangent(ans, start, stop, num, endpoint, axis, start_dot, stop_dot)

