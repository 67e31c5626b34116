"""Gradient cases for the rules of srcgrad/rules/numpy_more.py and for np.einsum with ``...`` (appended to the table
of tests/rule_cases.py, which imports this module at its end: every meta-test of the table covers them).

Each function returns a scalar; most weigh the result with a random ``w`` so that the whole vector-Jacobian product
is checked. Every parameter a rule takes is passed by some case (tests/test_rule_signatures.py checks it).
"""

from __future__ import annotations

import warnings

import numpy as np
from rule_cases import A, N, U, away_from_zero, case, const, with_weight


def shape_of_call(func, *shapes, **kw):
    """The shape of ``func`` applied to ones of these shapes (for the weight of a case)."""
    return np.shape(func(*[np.ones(s) for s in shapes], **kw))


# --- products -------------------------------------------------------------------------------------------------------


def _crosses_2_vectors() -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.cross(np.ones(2), np.ones(3))
    except ValueError:
        return False
    return True


NUMPY_CROSSES_2_VECTORS = _crosses_2_vectors()


def cross_fn(a, b, w):
    return np.sum(np.cross(a, b) * w)


def cross_axes(a, b, w):
    return np.sum(np.cross(a, b, axisa=0, axisb=1, axisc=0) * w)


def cross_axis(a, b, w):
    return np.sum(np.cross(a, b, axis=0) * w)


def cross_mixed(a, b, w):  # a 2-vector is a 3-vector whose third component is 0
    return np.sum(np.cross(a, b, -1, -1, -1) * w)


case(np.cross, cross_fn, A(N((4, 3)), N((4, 3)), N((4, 3))), wrt=(0, 1), name="cross")
case(np.cross, cross_fn, A(N((3,)), N((2, 4, 3)), N((2, 4, 3))), wrt=(0, 1), name="cross-broadcast")
case(np.cross, cross_axes, A(N((3, 4)), N((2, 3, 4)), N((3, 2, 4))), wrt=(0, 1), name="cross-axisa-axisb-axisc")
case(np.cross, cross_axis, A(N((3, 5)), N((3, 5)), N((3, 5))), wrt=(0, 1), name="cross-axis")
if NUMPY_CROSSES_2_VECTORS:  # (numpy 2.5 no longer takes 2-vectors)
    case(np.cross, cross_mixed, A(N((4, 2)), N((4, 3)), N((4, 3))), wrt=(0, 1), name="cross-2-and-3-vectors")


def kron_fn(a, b, w):
    return np.sum(np.kron(a, b) * w)


case(np.kron, kron_fn, A(N((2, 3)), N((3, 2)), N((6, 6))), wrt=(0, 1), name="kron")
case(np.kron, kron_fn, A(N((3,)), N((2, 2)), N((2, 6))), wrt=(0, 1), name="kron-ranks")
case(np.kron, kron_fn, A(N(), N((2, 3)), N((2, 3))), wrt=(0, 1), name="kron-scalar")


# --- real parts of real numbers -------------------------------------------------------------------------------------


def real_parts(x, w):
    return (np.sum(np.real(x) * w) + np.sum(np.imag(x) * w) + np.sum(np.conj(x) ** 2 * w)
            + np.sum(np.conjugate(x) * w) + np.sum(np.angle(x) * w) + np.sum(np.angle(x, deg=True) * w)
            + np.sum(np.real_if_close(x) ** 3 * w) + np.sum(np.real_if_close(x, tol=1000) * w))


def real_parts_float(x):
    return np.real(x) * 2.0 + np.imag(x) + np.real(x * x)


for _prim in (np.real, np.imag, np.conjugate, np.angle, np.real_if_close):
    case(_prim, real_parts, with_weight(away_from_zero((3, 4)), out=lambda x: np.shape(x)),
         name=f"{_prim.__name__}-array")
case(np.real, real_parts_float, A(N()), name="real-float")
case(np.imag, real_parts_float, A(N()), name="imag-float")


def degrees_radians(x, w):
    return np.sum(np.degrees(x) * w) + np.sum(np.radians(x) ** 2 * w)


case(np.degrees, degrees_radians, A(N((3, 4)), N((3, 4))), name="degrees")
case(np.radians, degrees_radians, A(N((3, 4)), N((3, 4))), name="radians")
case(np.degrees, degrees_radians, A(N(), N()), name="degrees-float")


# --- finite differences ---------------------------------------------------------------------------------------------


def gradient_1d(f, w):
    return np.sum(np.gradient(f) * w)


def gradient_2d(f, w):  # one output per axis
    gy, gx = np.gradient(f, 0.5)
    return np.sum(gy * w) + np.sum(gx ** 2)


COORDS = np.array([0.0, 0.3, 1.0, 1.2, 2.0, 3.1])


def gradient_coordinates(f, w):  # coordinates along axis 0, a spacing along axis 1, second-order edges
    parts = np.gradient(f, COORDS, 0.7, axis=(0, 1), edge_order=2)
    return np.sum(parts[0] * w) + np.sum(parts[1] * w)


def gradient_axis(f, w):
    return np.sum(np.gradient(f, COORDS, axis=-1) * w) + np.sum(np.gradient(f, axis=0, edge_order=2) ** 2)


def gradient_reversed_axes(f, w):
    a, b = np.gradient(f, 2.0, 0.5, axis=(1, 0))
    return np.sum(a * w) + np.sum(b * w * 3.0)


def gradient_short(f, w):  # two points: one-sided differences only
    return np.sum(np.gradient(f) * w)


case(np.gradient, gradient_1d, A(N((6,)), N((6,))), name="gradient-1d")
case(np.gradient, gradient_2d, A(N((4, 5)), N((4, 5))), name="gradient-2d-spacing")
case(np.gradient, gradient_coordinates, A(N((6, 4)), N((6, 4))), name="gradient-coordinates-edge_order")
case(np.gradient, gradient_axis, A(N((3, 6)), N((3, 6))), name="gradient-axis")
case(np.gradient, gradient_reversed_axes, A(N((4, 5)), N((4, 5))), name="gradient-axes-order")
case(np.gradient, gradient_short, A(N((2,)), N((2,))), name="gradient-two-points")


# --- axes and views -------------------------------------------------------------------------------------------------


def rot90_fn(m, w):
    return (np.sum(np.rot90(m) * w) + np.sum(np.rot90(m, 2) ** 2) + np.sum(np.rot90(m, k=-1, axes=(1, 2)) ** 3)
            + np.sum(np.rot90(m, 3, (2, 0)) * m[0, 0, 0]))


case(np.rot90, rot90_fn, A(N((2, 3, 4)), N((3, 2, 4))), name="rot90")


def rollaxis_fn(a, w):
    return (np.sum(np.rollaxis(a, 2) * w) + np.sum(np.rollaxis(a, 0, 3) ** 2) + np.sum(np.rollaxis(a, -1, start=1) ** 3)
            + np.sum(np.rollaxis(a, 1, -1) * a[0, 0, 0]))


case(np.rollaxis, rollaxis_fn, A(N((2, 3, 4)), N((4, 2, 3))), name="rollaxis")


def atleast_one(x, w):
    return np.sum(np.atleast_1d(x) * w) + np.sum(np.atleast_2d(x) ** 2) + np.sum(np.atleast_3d(x) ** 3)


def atleast_several(x, y):
    a, b = np.atleast_1d(x, y)
    c, d = np.atleast_2d(x, y)
    e, f = np.atleast_3d(x, y)
    return np.sum(a * b[0]) + np.sum(c ** 2) + np.sum(d * 3.0) + np.sum(e) * np.sum(f)


case(np.atleast_1d, atleast_one, A(N(), N((1,))), name="atleast_1d-float")
case(np.atleast_1d, atleast_one, A(N((3,)), N((3,))), name="atleast_1d-vector")
case(np.atleast_2d, atleast_one, A(N((2, 3)), N((2, 3))), name="atleast_2d-matrix")
case(np.atleast_3d, atleast_one, A(N((3,)), N((3,))), name="atleast_3d-vector")
for _prim in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    case(_prim, atleast_several, A(N((3,)), N((2, 3))), wrt=(0, 1), name=f"{_prim.__name__}-several")


# --- joining and splitting ------------------------------------------------------------------------------------------


def column_stack_fn(a, b, w):
    return np.sum(np.column_stack([a, b, a]) * w)


def column_stack_array(x, w):  # an array: its rows are the columns
    return np.sum(np.column_stack(x) * w)


case(np.column_stack, column_stack_fn, A(N((3,)), N((3, 2)), N((3, 4))), wrt=(0, 1), name="column_stack")
case(np.column_stack, column_stack_array, A(N((2, 4)), N((4, 2))), name="column_stack-array")


def append_flat(arr, values, w):
    return np.sum(np.append(arr, values) * w)


def append_axis(arr, values, w):
    return np.sum(np.append(arr, values, axis=0) * w) + np.sum(np.append(arr, arr, 1) ** 2)


case(np.append, append_flat, A(N((2, 3)), N((4,)), N((10,))), wrt=(0, 1), name="append")
case(np.append, append_flat, A(N(), N(), N((2,))), wrt=(0, 1), name="append-floats")
case(np.append, append_axis, A(N((2, 3)), N((1, 3)), N((3, 3))), wrt=(0, 1), name="append-axis")


def splits(x, w):
    top, bottom = np.vsplit(x, 2)
    left = np.hsplit(x, [1])[0]
    parts = np.dsplit(x, 2)
    return np.sum(top * w) + np.sum(bottom ** 2) + np.sum(left * 3.0) + np.sum(parts[1] ** 3)


def hsplit_vector(x):
    a, b = np.hsplit(x, 2)
    return np.sum(a * b)


for _prim in (np.vsplit, np.hsplit, np.dsplit):
    case(_prim, splits, A(N((4, 3, 2)), N((2, 3, 2))), name=f"{_prim.__name__}")
case(np.hsplit, hsplit_vector, A(N((6,))), name="hsplit-vector")


# --- padding --------------------------------------------------------------------------------------------------------


def pad_fn(mode, width):
    def f(x, w):
        return np.sum(np.pad(x, width, mode) * w)
    f.__name__ = f"pad_{mode}"
    return f


def pad_odd(mode, width):
    def f(x, w):
        return np.sum(np.pad(x, width, mode, reflect_type="odd") * w)
    f.__name__ = f"pad_{mode}_odd"
    return f


for _mode, _width, _make in (("constant", 2, pad_fn), ("edge", ((1, 0), (2, 3)), pad_fn), ("edge", 1, pad_fn),
                             ("reflect", (2, 3), pad_fn), ("reflect", ((5, 1), (0, 4)), pad_fn),
                             ("symmetric", ((1, 4), (2, 0)), pad_fn), ("wrap", ((4, 1), (7, 2)), pad_fn),
                             ("reflect", ((2, 3), (1, 4)), pad_odd), ("symmetric", ((5, 1), (3, 2)), pad_odd)):
    case(np.pad, _make(_mode, _width), A(N((3, 4)), N(shape_of_call(np.pad, (3, 4), pad_width=_width))),
         name=f"{_make(_mode, _width).__name__}-{_width}".replace(" ", ""))


def pad_constants(x, c, w):
    return np.sum(np.pad(x, ((1, 2), (0, 1)), constant_values=c) * w)


def pad_constant_pairs(x, c, w):  # one (before, after) pair per axis: corners take the later axis's value
    return np.sum(np.pad(x, 2, mode="constant", constant_values=c) * w)


def pad_vector(x, w):
    return np.sum(np.pad(x, (1, 3), "wrap") * w) + np.sum(np.pad(x, 2, mode="symmetric") ** 2)


case(np.pad, pad_constants, A(N((3, 4)), N(), N((6, 5))), wrt=(0, 1), name="pad-constant_values")
case(np.pad, pad_constant_pairs, A(N((3, 4)), N((2, 2)), N((7, 8))), wrt=(0, 1), name="pad-constant_values-pairs")
case(np.pad, pad_constant_pairs, A(N((3, 4)), N((2,)), N((7, 8))), wrt=(0, 1), name="pad-constant_values-before-after")
case(np.pad, pad_vector, A(N((5,)), N((9,))), name="pad-vector")


# --- partitioning and selecting -------------------------------------------------------------------------------------


def partition_fn(a, w):
    return (np.sum(np.partition(a, 2) * w) + np.sum(np.partition(a, (0, 2), axis=0, kind="introselect") ** 3)
            + np.sum(np.partition(a, 7, axis=None)[7:] ** 2))


case(np.partition, partition_fn, A(N((3, 5)), N((3, 5))), name="partition")


def select_fn(x, y, z, w):
    condlist = [x > 0.5, x < -0.5, np.abs(x) < 0.2]  # overlapping: the first true condition wins
    return np.sum(np.select(condlist, [x, y * 2.0, x * y], default=z) * w)


def select_default(x, y, w):
    return np.sum(np.select([x > 0.0], [y]) * w) + np.sum(np.select((x < 0.0, x > 1.0), np.stack([x, y]), 0.5) * w)


case(np.select, select_fn, with_weight(N((3, 4)), N((4,)), N((3, 1)), out=lambda x, y, z: (3, 4)), wrt=(0, 1, 2),
     name="select")
case(np.select, select_default, A(N((3, 4)), N((3, 4)), N((3, 4))), wrt=(0, 1), name="select-default")


def non_finite(rng):
    x = rng.uniform(-1.5, 1.5, size=(3, 4))
    x[0, 1], x[1, 2], x[2, 0], x[2, 3] = np.nan, np.inf, -np.inf, np.nan
    return x


def nan_to_num_fn(x, nan, posinf, neginf, w):
    return (np.sum(np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf) * w)
            + np.sum(np.nan_to_num(x, True, nan * 2.0, 3.0, -2.0) ** 2)
            + np.sum(np.nan_to_num(x, copy=True, posinf=posinf, neginf=0.5) * w))


case(np.nan_to_num, nan_to_num_fn, A(non_finite, N(), N(), N(), N((3, 4))), wrt=(0, 1, 2, 3), name="nan_to_num")


# --- spaced samples -------------------------------------------------------------------------------------------------


def logspace_fn(start, stop, base, w):
    return np.sum(np.logspace(start, stop, 5, base=base) * w) + np.sum(np.logspace(start, stop, 4, False) ** 2)


def logspace_arrays(start, stop, base, w):  # an array base broadcasts with the ends; the samples along axis 1
    return np.sum(np.logspace(start, stop, 3, True, base, axis=1) * w)


def logspace_dtype(start, stop, w):  # an integer dtype: no gradient
    return np.sum(np.logspace(start, stop, 4, dtype="float64", axis=-1) * w) + np.sum(
        np.logspace(start, stop, 4, dtype=int) * w)


case(np.logspace, logspace_fn, A(U(-0.5, 0.5), U(0.5, 1.0), U(1.5, 3.0), N((5,))), wrt=(0, 1, 2), name="logspace")
case(np.logspace, logspace_arrays, A(U(-0.5, 0.5, (2,)), U(0.5, 1.0), U(1.5, 3.0, (2,)), N((2, 3))),
     wrt=(0, 1, 2), name="logspace-arrays-axis")
case(np.logspace, logspace_dtype, A(const(0.3), const(1.1), N((4,))), wrt=(0, 1), rtol=1e-4, name="logspace-dtype")


def geomspace_fn(start, stop, w):
    return np.sum(np.geomspace(start, stop, 5) * w) + np.sum(np.geomspace(start, stop, 3, endpoint=False) ** 2)


def geomspace_arrays(start, stop, w):
    return np.sum(np.geomspace(start, stop, 4, True, dtype="float64", axis=1) * w) + np.sum(
        np.geomspace(start, stop, 4, axis=-1, dtype=int) * w)


case(np.geomspace, geomspace_fn, A(U(0.5, 1.5), U(2.0, 4.0), N((5,))), wrt=(0, 1), name="geomspace")
case(np.geomspace, geomspace_fn, A(U(-1.5, -0.5), U(-4.0, -2.0), N((5,))), wrt=(0, 1), name="geomspace-negative")
case(np.geomspace, geomspace_arrays, A(U(0.5, 1.5, (2,)), const(10.3), N((2, 4))), wrt=(0, 1), rtol=1e-4,
     name="geomspace-arrays-axis-dtype")


# --- einsum: '...', implicit output, broadcasting, sublists -----------------------------------------------------------


def einsum_batched(a, b, w):
    return np.sum(np.einsum("...ij,...jk->...ik", a, b) * w)


def einsum_implicit_ellipsis(a, b, w):
    return np.sum(np.einsum("...i,...i", a, b) * w) + np.sum(np.einsum("i...", a) ** 2)


def einsum_leading(a, w):
    return np.sum(np.einsum("i...->...", a) * w) + np.sum(np.einsum("...ii->...i", a[:, :2, :2]) ** 2)


def einsum_length_one(a, b, w):  # an axis of length 1 broadcasts against the same letter's longer axis
    return np.sum(np.einsum("ij,ij->ij", a, b) * w) + np.sum(np.einsum("ij,ij->", a, b) ** 2)


def einsum_sublist_ellipsis(a, b, w):
    return np.sum(np.einsum(a, [..., 0, 1], b, [1, 2], [Ellipsis, 0, 2]) * w) + np.sum(np.einsum(a, [0, ...]) ** 2)


def einsum_trailing(a, b, w):  # '...' last, broadcasting a length-1 axis
    return np.sum(np.einsum("ij...,jk...->ik...", a, b) * w)


case(np.einsum, einsum_batched, A(N((1, 2, 3)), N((4, 3, 2)), N((4, 2, 2))), wrt=(0, 1), name="einsum-ellipsis")
case(np.einsum, einsum_implicit_ellipsis, A(N((2, 3)), N((3,)), N((2,))), wrt=(0, 1),
     name="einsum-ellipsis-implicit")
case(np.einsum, einsum_leading, A(N((2, 3, 4)), N((3, 4))), name="einsum-ellipsis-leading")
case(np.einsum, einsum_length_one, A(N((1, 3)), N((2, 3)), N((2, 3))), wrt=(0, 1), name="einsum-length-one")
case(np.einsum, einsum_trailing, A(N((2, 3, 4)), N((3, 2, 1)), N((2, 2, 4))), wrt=(0, 1),
     name="einsum-ellipsis-trailing")
case(np.einsum, einsum_sublist_ellipsis, A(N((2, 3, 4)), N((4, 5)), N((2, 3, 5))), wrt=(0, 1),
     name="einsum-sublist-ellipsis")
