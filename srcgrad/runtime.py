"""Helpers that generated gradient code calls on array paths.

In: arrays and Python numbers flowing through generated code. Out: adjoints of the right shape and dtype.
What holds: this module imports only ``math`` and ``numpy`` so that ahead-of-time emitted modules can carry copies
of these functions and never import srcgrad (tests/test_trust_emit.py parses it): its checks raise ``ValueError``;
their in-process twins, raising srcgrad's own errors, are in :mod:`srcgrad.checks`. Float-only code paths never
call into here (they are inlined).
Each helper is the adjoint of one numpy operation (or a piece of one); none of them undoes broadcasting of an
elementwise operation's operands — the adjoint stage does that, once, with :func:`unbroadcast`.
Arrays of other libraries that implement numpy's protocols (Dask, CuPy: :func:`foreign_array`) go through the same
code: numpy's functions dispatch to the library (``__array_function__``), so a Dask array stays lazy. Nothing here
converts such an array to numpy (``np.asarray``, ``float``, ``bool`` of it would compute a Dask array): shapes come
from ``np.shape``, new arrays from ``np.zeros_like``/``np.full_like`` of the argument (``np.zeros(shape)`` would be
a numpy array), and a helper that needs the values refuses (:func:`need_values`).
"""

import math

import numpy as np

# --- plumbing: broadcasting, types, zeros -------------------------------------------------------------------------


def foreign_array(x):
    """Is ``x`` an array of another library that implements numpy's protocols (a Dask or CuPy array)?"""
    return hasattr(type(x), "__array_function__") and not isinstance(x, np.ndarray)


def as_array(x, dtype=None):
    """``np.asarray(x, dtype)``, except that an array of another library stays one (a Dask array stays lazy)."""
    if foreign_array(x):
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def need_values(x, what):
    """``x`` as a numpy array for a helper that needs its values (``what``: the gradient it computes); an array of
    another library is refused: converting it would compute a Dask array behind the user's back."""
    if foreign_array(x):
        raise ValueError(f"srcgrad: {what} needs the values of a {type(x).__module__.split('.')[0]} array, and "
                         "srcgrad keeps such arrays lazy; compute that part first (np.asarray(value)), or write it "
                         "with other functions")
    return np.asarray(x)


def broadcast_like(g, x, shape):
    """``g`` broadcast to ``shape`` (the shape of ``x``): a numpy view, or, when ``x`` is an array of another library
    and ``g`` is not, an array of that library with ``x``'s chunks (a numpy view of a Dask array's shape would put a
    numpy array that large in the graph)."""
    if foreign_array(x) and not foreign_array(g):
        dtype = np.result_type(g, float_dtype(x))
        return np.full_like(x, g, dtype=dtype) if np.ndim(g) == 0 else np.zeros_like(x, dtype=dtype) + g
    return np.broadcast_to(g, shape)


def unbroadcast(g, x):
    """Sum ``g`` down to the shape of ``x``: undo numpy broadcasting (the one place srcgrad does it)."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.shape == x.shape:
        return g
    shape = np.shape(x)
    gshape = np.shape(g)
    if gshape == shape:
        return g
    extra = len(gshape) - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and gshape[extra + i] != 1
    )
    g = np.sum(g, axis=axes, keepdims=False) if axes else g
    if np.shape(g) != shape:
        g = np.reshape(g, shape)
    return g


def broadcast_tangent(t, like):
    """The tangent ``t`` of an elementwise result ``like`` spread to that result's shape: a number's tangent stays a
    number when an operation broadcasts the number to an array (forward mode's counterpart of :func:`unbroadcast`).
    The result is never ``t`` itself (a new array, list or number): generated code differentiated again shares no
    object it does not know of."""
    if isinstance(like, np.ndarray):
        return np.array(np.broadcast_to(t, like.shape))
    if isinstance(t, (np.ndarray, list)):
        return t.copy()
    return t


def float_dtype(x):
    """The dtype of the adjoint of ``x``: its own float dtype, float64 for everything else."""
    if isinstance(x, (float, int)):
        return np.dtype(np.float64)
    if isinstance(x, (list, tuple)):  # (np.result_type would read a list as a dtype specification)
        try:
            x = np.asarray(x)
        except ValueError:
            return np.dtype(np.float64)  # ragged: its elements have adjoints of their own
    dtype = np.result_type(x)
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def zeros_like(x):
    """A zero adjoint shaped like ``x``: ``0.0`` for a Python number, a float array otherwise."""
    if isinstance(x, (float, int)):
        return 0.0
    if isinstance(x, (tuple, list)):
        return SeqGrad(zeros_like(v) for v in x)
    if foreign_array(x):
        return np.zeros_like(x, dtype=float_dtype(x))
    x = np.asarray(x)
    return np.zeros(x.shape, dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def uniform_to(g, x):
    """An adjoint that may be a number standing for an array filled with it, as an array of ``x``'s shape."""
    shape = np.shape(x)
    if not shape or (type(g) is np.ndarray and g.shape == shape):
        return g
    if isinstance(g, (float, int)):
        g = np.asarray(g, dtype=float_dtype(x))
    return broadcast_like(g, x, shape)


def match_grad(g, x):
    """Give the adjoint ``g`` of argument ``x`` the type, shape and float dtype of ``x`` (a fresh, writable array)."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.shape == x.shape and g.dtype == x.dtype \
            and g.dtype.kind == "f":
        return g.copy()  # the common case, without the general path's conversions
    if foreign_array(g) or foreign_array(x):
        return foreign_grad(g, x).copy()
    if type(x) in (float, int, bool):
        return float(g) if np.ndim(g) == 0 else float(np.sum(g))
    x_arr = as_array(x)
    dtype = x_arr.dtype if x_arr.dtype.kind == "f" else np.dtype(np.float64)
    if np.ndim(g) < x_arr.ndim:  # an adjoint that is the same everywhere (a folded constant) fills x's shape
        g = np.broadcast_to(g, x_arr.shape)
    g = unbroadcast(g, x_arr)
    if isinstance(x, np.generic):
        return dtype.type(g)
    out = np.array(g, dtype=dtype, copy=True)
    return out.reshape(x_arr.shape)


def owned_grad(g, x, *others):
    """:func:`match_grad` for a gradient whose seed was srcgrad's own ``1.0`` (grad, value_and_grad): an array the
    generated code made (no view, writable, of ``x``'s shape and float dtype) is returned as it is instead of
    copied — unless it is ``x`` itself or one of ``others`` (the other gradients, the other arguments)."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.base is None and g.shape == x.shape \
            and g.dtype == x.dtype and g.dtype.kind == "f" and g.flags.writeable and g is not x \
            and not any(g is o for o in others):
        return g
    if foreign_array(g) or foreign_array(x):
        out = foreign_grad(g, x)
        return out.copy() if out is x or any(out is o for o in others) else out
    return match_grad(g, x)


def foreign_grad(g, x):
    """:func:`match_grad` when the gradient or the argument is an array of another library (Dask, CuPy): an array of
    that library, of ``x``'s shape and float dtype, never converted to numpy — a Dask gradient stays lazy, for the
    user to compute (``dask.compute(value, grad)`` shares one pass over the data). A number ``x`` gets a 0-d array;
    a gradient the foreign data did not reach becomes an array of ``x``'s library (with its chunks)."""
    shape = () if type(x) in (float, int, bool) else np.shape(x)
    dtype = np.dtype(np.float64) if type(x) in (float, int, bool) else float_dtype(x)
    if np.ndim(g) < len(shape):  # an adjoint that is the same everywhere fills x's shape
        g = broadcast_like(g, x, shape)
    g = unbroadcast(g, x)
    if not foreign_array(g):
        g = np.zeros_like(x, dtype=dtype) + g
    if np.shape(g) != shape:
        g = np.reshape(g, shape)
    g = g if g.dtype == dtype else g.astype(dtype)
    chunks = getattr(x, "chunks", None)  # (a chunked array: the gradient gets the argument's chunks)
    return g.rechunk(chunks) if chunks is not None and getattr(g, "chunks", chunks) != chunks else g


def check_scalar_output(y, where):
    """``grad`` needs a scalar output of real numbers: raise a clear error otherwise (returns nothing)."""
    if np.ndim(y) != 0:
        raise ValueError(
            f"grad needs a scalar output, but {where} returned an array of shape {np.shape(y)}; "
            "reduce the output (e.g. np.sum), or emit a vjp instead"
        )
    if not real_valued(y):
        _non_numeric(y, where)


def check_numeric_output(y, where):
    """``vjp``: an output of any shape, but of real numbers (a gradient of None or of a string is no gradient)."""
    if not real_valued(y):
        _non_numeric(y, where)


def check_seed_shape(seed, y, where):
    """``vjp``: the seed is the adjoint of the output, so it has the output's shape (a number stands for an array
    filled with it); another shape would be broadcast into a plausible, meaningless product."""
    if not seed_fits(seed, y):
        raise ValueError(seed_shape_message(seed, y, where) + "; pass a number, or an array of the output's shape")


def seed_fits(seed, y):
    return seed_misfit(seed, y) is None


def seed_misfit(seed, y):
    """The first leaf of the seed whose shape is not its output's, with that output (None: the seed fits). A
    structured output's leaves and its seed's come as tuples in the same order: each leaf is checked (their
    containers, keys and lengths are checked where the seed is read)."""
    if isinstance(y, (tuple, list)) and isinstance(seed, (tuple, list)):
        if len(seed) == len(y):
            for s, v in zip(seed, y):
                found = seed_misfit(s, v)
                if found is not None:
                    return found
        return None
    if isinstance(y, (tuple, list)) or isinstance(seed, (tuple, list)):
        return None
    return None if np.ndim(seed) == 0 or np.shape(seed) == np.shape(y) else (seed, y)


def seed_shape_message(seed, y, where):
    if isinstance(y, (tuple, list)):
        seed, y = seed_misfit(seed, y)
        return (f"a leaf of the seed of the vjp of {where} has shape {np.shape(seed)}, and the leaf {where} returned "
                f"there has shape {np.shape(y)}")
    return f"the seed of the vjp of {where} has shape {np.shape(seed)}, and {where} returned shape {np.shape(y)}"


def real_valued(y):
    if isinstance(y, (int, float)):
        return True
    return (isinstance(y, (np.ndarray, np.generic)) or foreign_array(y)) and y.dtype.kind in "biuf"


def non_numeric_message(y, where):
    array = isinstance(y, (np.ndarray, np.generic)) or (foreign_array(y) and hasattr(y, "dtype"))
    what = f"dtype {y.dtype}" if array else f"{type(y).__name__} {y!r:.40}"
    return f"{where} returned {what}, not a real number or array: it has no gradient"


def _non_numeric(y, where):
    raise TypeError(non_numeric_message(y, where) + "; return the number (or array) to differentiate")


def cast_grad(dy, dtype):
    """Adjoint of a cast to ``dtype``: the gradient ``dy`` passes a cast to a float type, and is zero through a cast
    to an integer or boolean type (rounding is piecewise constant)."""
    if dtype is None or np.dtype(dtype).kind in "fc":
        return dy
    return np.zeros_like(dy, dtype=float) if foreign_array(dy) else np.zeros(np.shape(dy))


def linspace_grad(g, ans, end, num, endpoint, axis):
    """Adjoint of ``np.linspace`` with respect to ``start`` (``end=0``) or ``stop`` (``end=1``): sample ``i`` is
    ``start + t_i (stop - start)`` with ``t_i = i / (num - 1)`` (``i / num`` without the endpoint), so each end gets
    ``g`` weighted by ``1 - t`` or ``t``, summed over the samples' axis. An integer result has no gradient."""
    axis = axis % max(np.ndim(ans), 1)
    shape = [1] * np.ndim(ans)
    shape[axis] = num
    t = np.reshape(np.linspace(0.0, 1.0, num, endpoint=endpoint), shape)
    return np.sum(cast_grad(g, ans.dtype) * (t if end else 1.0 - t), axis=axis)


def fill_grad(g, x):
    """Adjoint of an operation whose output is one number taken from ``x`` of any shape (``x.item()``)."""
    return np.full(np.shape(x), g, dtype=float_dtype(x))


def clip_grad(dy, y, a, a_min, a_max):
    """Adjoint of ``y = np.clip(a, a_min, a_max)`` with respect to ``a``: ``dy`` where ``a`` is inside the bounds,
    half of it where ``a`` equals a bound (a tie), zero outside. A bound of None is no bound."""
    inside = as_array(y == a, float)
    for bound in (a_min, a_max):
        if bound is not None:
            inside = inside - 0.5 * ((a == bound) & (y == bound))
    return dy * inside


def clip_bound_grad(dy, y, a, bound):
    """Adjoint of ``y = np.clip(...)`` with respect to one bound: ``dy`` where the bound is the result, half at a
    tie."""
    at_bound = y == bound
    return dy * (at_bound * (1.0 - 0.5 * (a == bound)))


# --- sequences (tuples and lists of values) -----------------------------------------------------------------------


class SeqGrad(tuple):
    """The adjoint of a tuple or list value: one adjoint per element. Adding two adds them element by element
    (a plain tuple would concatenate), so fan-out of a sequence accumulates correctly."""

    __slots__ = ()

    def __add__(self, other):
        if len(other) != len(self):
            raise ValueError(f"srcgrad: adjoints of sequences of lengths {len(self)} and {len(other)}")
        return SeqGrad(a + b for a, b in zip(self, other))

    __radd__ = __add__


def parts_grad(parts, arrays):
    """The adjoint of the sequence argument ``arrays`` of ``np.stack``/``np.concatenate``..., from one adjoint per
    element: a :class:`SeqGrad` for a tuple or list, an array shaped like ``arrays`` when it is an array."""
    if isinstance(arrays, (tuple, list)):
        return SeqGrad(np.reshape(p, np.shape(a)) if np.shape(p) != np.shape(a) else p
                       for p, a in zip(parts, arrays))
    return np.reshape(np.stack(parts), np.shape(arrays)) if len(parts) else np.zeros(np.shape(arrays))


def _element_shapes(arrays):
    return [np.shape(a) for a in arrays]


# --- reductions ---------------------------------------------------------------------------------------------------


def normalize_axes(axis, ndim):
    """``axis`` (None, an int or a tuple, negatives allowed) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes)) if ndim else ()


def restore_axes(g, x, axis, keepdims):
    """Broadcast the adjoint of a reduction over ``axis`` back to the shape of its input ``x``."""
    shape = np.shape(x)
    if isinstance(g, (float, int)):
        g = as_array(g, float_dtype(x))
    if not keepdims and axis is not None:
        g = np.expand_dims(g, normalize_axes(axis, len(shape)))
    return broadcast_like(g, x, shape)


def reduced_count(x, ans):
    """How many elements of ``x`` each element of the reduction ``ans`` summarises."""
    return _size(x) / max(_size(ans), 1)


def _size(x):
    return math.prod(np.shape(x))  # (Dask implements no np.size)


def size_or_one(x):
    """How many elements ``x`` has, 1 when it has none (the divisor of an empty mean's uniform adjoint)."""
    return _size(x) or 1


def extremum_grad(dy, y, a, axis, keepdims):
    """Adjoint of ``y = np.max(a, axis)``/``np.min``: ``dy`` goes to the extreme elements, split equally among
    ties."""
    return restore_axes(dy, as_array(a), axis, keepdims) * _extreme_shares(y, a, axis, keepdims)


def extremum_grad_transpose(h, y, a, axis, keepdims):
    """Adjoint of :func:`extremum_grad` with respect to ``dy`` (it is linear in ``dy``): ``h`` weighted by each
    extreme element's share, summed over the reduced axes."""
    a = as_array(a)
    shares = _extreme_shares(y, a, axis, keepdims)
    return np.sum(h * shares, axis=normalize_axes(axis, a.ndim), keepdims=bool(keepdims))


def _extreme_shares(y, a, axis, keepdims):
    a = as_array(a)
    mask = a == restore_axes(y, a, axis, keepdims)
    return mask / np.sum(mask, axis=normalize_axes(axis, a.ndim), keepdims=True)


def prod_grad(g, a, axis, keepdims):
    """Adjoint of ``np.prod``: each element gets the product of the others (computed without division, so zeros
    are handled exactly: products of exclusive prefix and suffix cumulative products)."""
    a = as_array(a)
    axes = normalize_axes(axis, a.ndim)
    g = restore_axes(g, a, axis, keepdims)
    if not axes:
        return g
    k, nd = len(axes), a.ndim
    ends = tuple(range(nd - k, nd))
    moved = np.moveaxis(a, axes, ends)
    flat = moved.reshape(moved.shape[:nd - k] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = np.moveaxis((before * after).reshape(moved.shape), ends, axes)
    return g * others


def var_grad(dy, a, axis, ddof, keepdims):
    """Adjoint of ``np.var(a, axis, ddof=ddof)``: ``2 (a - mean) / (N - ddof)`` times ``dy``."""
    a = as_array(a)
    axes = normalize_axes(axis, a.ndim)
    centred = a - np.mean(a, axis=axes, keepdims=True)
    return restore_axes(dy, a, axis, keepdims) * centred * _var_scale(a, axes, ddof)


def var_grad_transpose(h, a, axis, ddof, keepdims):
    """Adjoint of :func:`var_grad` with respect to ``dy`` (it is linear in ``dy``)."""
    a = as_array(a)
    axes = normalize_axes(axis, a.ndim)
    centred = a - np.mean(a, axis=axes, keepdims=True)
    return np.sum(h * centred, axis=axes, keepdims=bool(keepdims)) * _var_scale(a, axes, ddof)


def var_grad_centred(h, dy, a, axis, ddof, keepdims):
    """Adjoint of :func:`var_grad` with respect to ``a`` (it is linear in ``a``: centring is a symmetric
    projection, so its adjoint centres ``h`` weighted by ``dy``)."""
    a = as_array(a)
    axes = normalize_axes(axis, a.ndim)
    weighted = restore_axes(dy, a, axis, keepdims) * h
    return (weighted - np.mean(weighted, axis=axes, keepdims=True)) * _var_scale(a, axes, ddof)


def _var_scale(a, axes, ddof):
    n = math.prod(a.shape[i] for i in axes) if axes else 1
    return 2.0 / (n - ddof)


def std_grad(g, ans, a, axis, ddof, keepdims):
    """Adjoint of ``np.std``: the adjoint of var scaled by ``1 / (2 std)``, and 0 where std is 0. One element's std
    is identically 0; constant data's std grows like ``|t|`` along every direction ``t``, whose central difference
    is 0 (as for ``abs`` at 0)."""
    scale = _safe_divide(g, 2.0 * ans) if foreign_array(ans) or foreign_array(g) else \
        np.divide(g, 2.0 * ans, out=np.zeros(np.shape(ans), dtype=np.result_type(g, ans, 1.0)), where=ans != 0)
    return var_grad(scale, a, axis, ddof, keepdims)


def _safe_divide(x, y):
    if foreign_array(x) or foreign_array(y):  # (Dask's divide takes no out=)
        return np.where(y != 0, x / np.where(y != 0, y, 1.0), 0.0)
    return np.divide(x, y, out=np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y))), where=y != 0)


def norm_grad(g, ans, x, ord, axis, keepdims):
    """Adjoint of ``np.linalg.norm``. Vectors: ord None/2, 1, inf, -inf and any other p (a zero vector gets a zero
    gradient); matrices (2-D with axis None, or a pair of axes): 'fro' (also ord None), 'nuc', 2, -2, 1, -1, inf, -inf.
    At ties (inf/1 orders, a repeated extreme singular value for 2/-2) the gradient is split equally; a zero singular
    value (a kink, like ``abs`` at 0) contributes none to 'nuc' and -2."""
    x = as_array(x)
    matrix = (axis is None and ord is not None and x.ndim == 2) or (
        axis is not None and not isinstance(axis, (int, np.integer)) and len(axis) == 2)
    g = restore_axes(g, x, axis, keepdims)
    r = restore_axes(ans, x, axis, keepdims)
    if ord is None or (matrix and ord == "fro") or (not matrix and ord == 2):
        return g * _safe_divide(x, r)
    if not matrix:
        return _vector_norm_grad(g, r, x, ord, axis)
    return _matrix_norm_grad(g, r, x, ord, axis)


def _vector_norm_grad(g, r, x, ord, axis):
    """``norm_grad`` of a vector norm other than ord None/2 (``g`` and ``r`` with the reduced axes restored)."""
    sign = np.sign(x)
    ax = normalize_axes(axis, x.ndim)
    if ord == 0:
        return np.zeros(x.shape) * g
    if ord == 1:
        return g * sign
    if ord in (np.inf, -np.inf):
        mask = np.abs(x) == r
        return g * sign * mask / np.sum(mask, axis=ax, keepdims=True)
    p = float(ord)
    return g * sign * _safe_divide(np.abs(x) ** (p - 1.0), r ** (p - 1.0))


def _matrix_norm_grad(g, r, x, ord, axis):
    """``norm_grad`` of a matrix norm other than 'fro' (``g`` and ``r`` with the reduced axes restored)."""
    sign = np.sign(x)
    rows, cols = (0, 1) if axis is None else tuple(int(a) % x.ndim for a in axis)
    if ord in ("nuc", 2, -2):
        m = np.moveaxis(x, (rows, cols), (-2, -1))
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        gs = np.ones(np.shape(s)) if ord == "nuc" else np.zeros(np.shape(s))
        if ord != "nuc":
            gs[..., 0 if ord == 2 else -1] = 1.0  # singular values come sorted, largest first
        dm = _singular_values_adjoint(u, s, vt, gs)  # ties split equally, none through a zero singular value
        return g * np.moveaxis(dm, (-2, -1), (rows, cols))
    if ord in (1, -1):
        sums = np.sum(np.abs(x), axis=rows, keepdims=True)
        along = cols
    elif ord in (np.inf, -np.inf):
        sums = np.sum(np.abs(x), axis=cols, keepdims=True)
        along = rows
    else:
        raise ValueError(f"srcgrad: no gradient for np.linalg.norm with ord={ord!r} on matrices")
    mask = sums == r
    return g * sign * mask / np.sum(mask, axis=along, keepdims=True)


def cumsum_grad(g, a, axis):
    """Adjoint of ``np.cumsum``: the reversed cumulative sum of ``g`` (``axis=None`` works on the flattened input)."""
    if axis is None:
        return np.reshape(np.cumsum(np.ravel(g)[::-1])[::-1], np.shape(a))
    return np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis)


def cumprod_grad(g, ans, a, axis):
    """Adjoint of ``np.cumprod``. Without zeros: ``revcumsum(g * ans) / a``; with zeros, exact products of the
    other elements (one cumulative product per position along the axis)."""
    a = as_array(a)
    if axis is None:
        return np.reshape(cumprod_grad(np.ravel(g), np.ravel(ans), np.ravel(a), 0), a.shape)
    if np.all(a != 0):
        return cumsum_grad(g * ans, a, axis) / a
    am, gm = np.moveaxis(a, axis, -1), np.moveaxis(np.broadcast_to(g, a.shape), axis, -1)
    out = np.zeros(am.shape)
    for i in range(am.shape[-1]):
        others = np.array(am[..., i:], dtype=float)
        others[..., 0] = 1.0
        prefix = np.prod(am[..., :i], axis=-1, keepdims=True)
        out[..., i] = np.sum(gm[..., i:] * prefix * np.cumprod(others, axis=-1), axis=-1)
    return np.moveaxis(out, -1, axis)


def diagonal_grad(g, a, offset, axis1, axis2):
    """Adjoint of ``np.diagonal(a, offset, axis1, axis2)``: ``g`` (diagonal on its last axis) placed on the
    diagonal of zeros shaped like ``a``."""
    shape = np.shape(a)
    out = np.zeros(shape, dtype=np.result_type(g, float_dtype(a)))
    nd = len(shape)
    m = np.moveaxis(out, (axis1 % nd, axis2 % nd), (-2, -1))
    n1, n2 = m.shape[-2:]
    k = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
    rows, cols = np.arange(k) + max(-offset, 0), np.arange(k) + max(offset, 0)
    m[..., rows, cols] = g
    return out


def trace_grad(g, a, offset, axis1, axis2):
    """Adjoint of ``np.trace``: ``g`` on the diagonal."""
    return diagonal_grad(np.expand_dims(g, -1), a, offset, axis1, axis2)


def diag_grad(g, v, k):
    """Adjoint of ``np.diag(v, k)``: read the diagonal back (vector ``v``) or place ``g`` on it (matrix ``v``)."""
    if np.ndim(v) == 1:
        return np.diagonal(g, k)
    return diagonal_grad(g, v, k, 0, 1)


# --- linear algebra -----------------------------------------------------------------------------------------------


def _ndim(x):
    return x.ndim if type(x) is np.ndarray else np.ndim(x)  # the attribute is ten times faster than np.ndim


def matmul_grad_left(g, x, y):
    """Adjoint of ``x @ y`` with respect to ``x`` (1-D, 2-D and batched operands)."""
    nx, ny = _ndim(x), _ndim(y)
    if nx == 2 and (type(g) is np.ndarray or foreign_array(g)):  # the common cases first, without helpers
        if ny == 1:
            return g[:, None] * y
        if ny == 2:
            return g @ y.T
    if ny == 1:
        if np.ndim(x) == 1:
            return g * y
        return np.multiply.outer(g, y) if np.ndim(g) else g * y
    if np.ndim(x) == 1:
        return unbroadcast(np.matmul(y, g[..., None])[..., 0] if np.ndim(g) > 1 else y @ g, x)
    return unbroadcast(np.matmul(g, np.swapaxes(y, -1, -2)), x)


def matmul_grad_right(g, x, y):
    """Adjoint of ``x @ y`` with respect to ``y`` (1-D, 2-D and batched operands)."""
    nx, ny = _ndim(x), _ndim(y)
    if nx == 2 and (type(g) is np.ndarray or foreign_array(g)):  # the common cases first, without helpers
        if ny == 1:
            return g @ x
        if ny == 2:
            return x.T @ g
    if np.ndim(x) == 1:
        if np.ndim(y) == 1:
            return g * x
        return np.multiply.outer(x, g) if np.ndim(y) == 2 else unbroadcast(x[:, None] * g[..., None, :], y)
    if np.ndim(y) == 1:
        return unbroadcast(np.matmul(np.swapaxes(x, -1, -2), g[..., None])[..., 0], y)
    return unbroadcast(np.matmul(np.swapaxes(x, -1, -2), g), y)


def matmul_steps_grad(gs, x, ys, left):
    """The adjoint of a loop-invariant matrix ``x`` summed over a loop's steps: the sum over ``i`` of
    ``matmul_grad_left(gs[i], x, ys[i])`` (``x @ ys[i]``; ``left``) or ``matmul_grad_right(gs[i], ys[i], x)``
    (``ys[i] @ x``), as one product of the stacked steps where every step is a float vector, or every one a float
    matrix, of one shape; step by step otherwise. No steps: zeros of ``x``'s shape."""
    if not gs:
        return zeros_like(x)
    if _ndim(x) == 2 and _stackable(gs) and _stackable(ys):
        if gs[0].ndim == 1 and ys[0].ndim == 1:  # sum of outer products (np.array stacks vectors of one shape and
            # dtype as np.stack does, at a fraction of its cost)
            return np.array(gs).T @ np.array(ys) if left else np.array(ys).T @ np.array(gs)
        if gs[0].ndim == 2 and ys[0].ndim == 2:  # sum of matrix products, side by side
            if left:
                return np.concatenate(gs, axis=1) @ np.concatenate(ys, axis=1).T
            return np.concatenate(ys).T @ np.concatenate(gs)
    total = matmul_grad_left(gs[0], x, ys[0]) if left else matmul_grad_right(gs[0], ys[0], x)
    for g, y in zip(gs[1:], ys[1:]):
        total = total + (matmul_grad_left(g, x, y) if left else matmul_grad_right(g, y, x))
    return total


def _stackable(arrays):
    """Float arrays of rank 1 or 2, all of one shape (and one dtype)."""
    first = arrays[0]
    if type(first) is not np.ndarray or first.ndim not in (1, 2) or first.dtype.kind != "f":
        return False
    shape, dtype = first.shape, first.dtype
    for a in arrays:  # (a loop: a generator costs twice as much per step)
        if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
            return False
    return True


def _tensordot_axes(axes, nda, ndb):
    if isinstance(axes, (int, np.integer)):
        return list(range(nda - axes, nda)), list(range(axes))
    a_axes, b_axes = axes
    a_axes = [a_axes] if isinstance(a_axes, (int, np.integer)) else list(a_axes)
    b_axes = [b_axes] if isinstance(b_axes, (int, np.integer)) else list(b_axes)
    return [int(i) % nda for i in a_axes], [int(i) % ndb for i in b_axes]


def tensordot_grad_left(g, a, b, axes):
    """Adjoint of ``np.tensordot(a, b, axes)`` with respect to ``a``: contract ``g`` with ``b`` over ``b``'s free
    axes, then put the axes back in ``a``'s order."""
    nda, ndb = np.ndim(a), np.ndim(b)
    a_axes, b_axes = _tensordot_axes(axes, nda, ndb)
    a_free = [i for i in range(nda) if i not in a_axes]
    b_free = [i for i in range(ndb) if i not in b_axes]
    g_b = list(range(len(a_free), len(a_free) + len(b_free)))
    r = np.tensordot(g, b, axes=(g_b, b_free))
    perm = a_free + [a_axes[b_axes.index(j)] for j in sorted(b_axes)]
    return np.transpose(r, inverse_axes(perm))


def tensordot_grad_right(g, a, b, axes):
    """Adjoint of ``np.tensordot(a, b, axes)`` with respect to ``b``."""
    nda, ndb = np.ndim(a), np.ndim(b)
    a_axes, b_axes = _tensordot_axes(axes, nda, ndb)
    a_free = [i for i in range(nda) if i not in a_axes]
    b_free = [i for i in range(ndb) if i not in b_axes]
    r = np.tensordot(a, g, axes=(a_free, list(range(len(a_free)))))
    perm = [b_axes[a_axes.index(i)] for i in sorted(a_axes)] + b_free
    return np.transpose(r, inverse_axes(perm))


def _dot_axes(x, y):
    return [np.ndim(x) - 1], [max(np.ndim(y) - 2, 0)]


def dot_grad_left(g, x, y):
    """Adjoint of ``np.dot(x, y)`` with respect to ``x`` (scalars, vectors, matrices, N-D: a tensordot)."""
    return _dot_grad(g, x, y, True)


def dot_grad_right(g, x, y):
    """Adjoint of ``np.dot(x, y)`` with respect to ``y``."""
    return _dot_grad(g, x, y, False)


def _dot_grad(g, x, y, left):
    """Adjoint of ``np.dot(x, y)`` with respect to ``x`` (``left``) or ``y``."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return unbroadcast(g * y, x) if left else unbroadcast(g * x, y)
    if np.ndim(x) <= 2 and np.ndim(y) <= 2:
        return matmul_grad_left(g, x, y) if left else matmul_grad_right(g, x, y)
    axes = _dot_axes(x, y)
    return tensordot_grad_left(g, x, y, axes) if left else tensordot_grad_right(g, x, y, axes)


def inner_grad_left(g, a, b):
    """Adjoint of ``np.inner(a, b)`` (contraction over the last axes) with respect to ``a``."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * b, a)
    return tensordot_grad_left(g, a, b, ([np.ndim(a) - 1], [np.ndim(b) - 1]))


def inner_grad_right(g, a, b):
    """Adjoint of ``np.inner(a, b)`` with respect to ``b``."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * a, b)
    return tensordot_grad_right(g, a, b, ([np.ndim(a) - 1], [np.ndim(b) - 1]))


_EINSUM_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _einsum_subscripts(subscripts, shapes):
    """The subscripts of ``np.einsum(subscripts, *operands)`` (operands of these shapes) with every axis named by a
    letter: ``'...'`` becomes letters of its own, right-aligned across the operands as numpy broadcasts them, and
    implicit mode's output is spelled out (the ``'...'`` axes, then the letters used once, in alphabetical order)."""
    if not isinstance(subscripts, str):
        raise ValueError("srcgrad: the gradient of np.einsum needs its subscripts as a string (or the sublist form "
                         "written with literal lists of integers)")
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    ins = inputs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"srcgrad: einsum subscripts {subscripts!r} name {len(ins)} operands, got {len(shapes)}")
    spare = [c for c in _EINSUM_LETTERS if c not in spec]
    covered = [len(shape) - len(s.replace("...", "")) if "..." in s else 0 for s, shape in zip(ins, shapes)]
    ellipsis = "".join(spare[:max(covered, default=0)])
    ins = [s.replace("...", ellipsis[len(ellipsis) - k:]) for s, k in zip(ins, covered)]
    if arrow:
        return ins, output.replace("...", ellipsis)
    letters = inputs.replace(",", "").replace(".", "")
    return ins, ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))


class LazyGrads:
    """One adjoint per operand, each computed only when indexed (the adjoint stage reads ``grads[i]`` only for the
    operands that need a gradient)."""

    __slots__ = ("grad_of", "n")

    def __init__(self, grad_of, n):
        self.grad_of, self.n = grad_of, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.grad_of(range(self.n)[i])


def einsum_grads(g, subscripts, operands):
    """Adjoints of ``np.einsum(subscripts, *operands)`` with respect to each operand, computed on demand."""
    return LazyGrads(lambda i: einsum_grad(g, subscripts, i, *operands), len(operands))


def einsum_grad(g, subscripts, which, *operands):
    """Adjoint of ``np.einsum(subscripts, *operands)`` with respect to operand ``which``: an einsum of ``g`` and the
    other operands whose output subscripts are that operand's. Letters only that operand has are broadcast back;
    an axis of length 1 that numpy broadcast against a longer one is summed back; a letter repeated in the operand
    (a diagonal, ``'ii->'``) gets ``g`` on that diagonal and zeros elsewhere."""
    shapes = [np.shape(op) for op in operands]
    ins, out = _einsum_subscripts(subscripts, shapes)
    target = ins[which]
    shape = shapes[which]
    letters = "".join(dict.fromkeys(target))  # unique, in order of first appearance
    sizes = [shape[target.index(c)] for c in letters]
    others = [s for j, s in enumerate(ins) if j != which]
    available = set(out) | set("".join(others))
    present = "".join(c for c in letters if c in available)
    expr = ",".join([out] + others) + "->" + present
    r = np.einsum(expr, g, *[op for j, op in enumerate(operands) if j != which])
    order = present + "".join(c for c in letters if c not in available)
    r = np.reshape(r, np.shape(r) + (1,) * (len(letters) - len(present)))
    if order != letters:
        r = np.transpose(r, [order.index(c) for c in letters])
    r = _fit_lengths(r, sizes)
    if len(letters) == len(target):
        return r
    full = np.zeros(shape, dtype=np.result_type(r, float))
    grid = np.indices(r.shape, sparse=True)
    full[tuple(grid[letters.index(c)] for c in target)] = r
    return full


def _fit_lengths(r, sizes):
    """``r`` with axis lengths ``sizes``: summed where the operand's axis has length 1 (numpy broadcast it),
    broadcast where ``r``'s has (the axis did not reach the result)."""
    summed = tuple(k for k, (n, m) in enumerate(zip(np.shape(r), sizes)) if n != m and m == 1)
    if summed:
        r = np.sum(r, axis=summed, keepdims=True)
    return r if np.shape(r) == tuple(sizes) else np.broadcast_to(r, sizes)


def solve_grad_b(g, a, b):
    """Adjoint of ``x = np.linalg.solve(a, b)`` with respect to ``b``: ``solve(a.T, g)``."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(b) == 1:
        return unbroadcast(np.linalg.solve(at, as_array(g)[..., None])[..., 0], b)
    return unbroadcast(np.linalg.solve(at, g), b)


def solve_grad_a(g, ans, a, b):
    """Adjoint of ``x = np.linalg.solve(a, b)`` with respect to ``a``: ``-solve(a.T, g) x.T``."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(b) == 1:
        gb = np.linalg.solve(at, as_array(g)[..., None])[..., 0]
        return unbroadcast(-gb[..., :, None] * as_array(ans)[..., None, :], a)
    gb = np.linalg.solve(at, g)
    return unbroadcast(-gb @ np.swapaxes(ans, -1, -2), a)


def det_grad(g, ans, a):
    """Adjoint of ``np.linalg.det``: ``g det(a) inv(a).T`` (``a`` must be invertible)."""
    scale = as_array(g * ans)[..., None, None]
    return scale * np.swapaxes(np.linalg.inv(a), -1, -2)


def slogdet_grad(g, a):
    """Adjoint of ``np.linalg.slogdet`` (a pair ``(sign, logabsdet)``): ``g_logabsdet inv(a).T``; the sign is
    piecewise constant."""
    g_logdet = g[1]
    return as_array(g_logdet)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)


def cholesky_grad(g, L):
    """Adjoint of ``L = np.linalg.cholesky(a)``.

    numpy reads only the lower triangle of ``a``, so this is the gradient with respect to those entries (the upper
    triangle gets zeros): with ``S = L^-T Phi(L^T g) L^-1`` (``Phi``: lower triangle, diagonal halved) and its
    symmetric part ``A = (S + S^T) / 2``, entry ``(i, j)`` below the diagonal gets ``2 A_ij`` and the diagonal
    ``A_ii``. For a symmetric parametrisation (``a = b @ b.T``) this equals the usual symmetric gradient.
    """
    n = np.shape(L)[-1]
    eye = np.eye(n)
    lt = np.swapaxes(L, -1, -2)
    phi = np.tril(lt @ g)
    phi = phi - 0.5 * phi * eye
    linv = np.linalg.inv(L)
    s = np.swapaxes(linv, -1, -2) @ phi @ linv
    sym = 0.5 * (s + np.swapaxes(s, -1, -2))
    return np.tril(2.0 * sym) - sym * eye


# --- decompositions: svd, eigh, eig, pinv, qr, lstsq, matrix_power, cond -------------------------------------------
# The adjoints and tangents of numpy's factorisations (batched over leading axes). Where a result is not
# differentiable (repeated eigenvalues or singular values whose vectors the function uses, complex eigenvalues, a
# rank-deficient QR...) they raise ``ValueError("srcgrad: ...")`` instead of returning nan or inf.


def _mT(x):
    return np.swapaxes(x, -1, -2)


def _diag_of(x):
    return np.diagonal(x, axis1=-2, axis2=-1)


def _as_diag(v):
    return v[..., :, None] * np.eye(np.shape(v)[-1])


def _adjoint_part(g, like):
    """One element of the adjoint of a tuple result, as a float array shaped like that element."""
    return np.broadcast_to(as_array(g, float_dtype(like)), np.shape(like))


def _read_triangle(a, uplo):
    """The symmetric matrix numpy's ``eigh(a, UPLO)`` (and ``svd``/``pinv`` with ``hermitian=True``, which read the
    lower triangle) works with: the triangle ``uplo`` of ``a``, mirrored."""
    if str(uplo).upper() == "U":
        return np.triu(a) + _mT(np.triu(a, 1))
    return np.tril(a) + _mT(np.tril(a, -1))


def _triangle_grad(grad, uplo):
    """The adjoint with respect to the entries numpy reads (the triangle ``uplo``) from the adjoint ``grad`` with
    respect to the symmetric matrix it builds from them: an entry off the diagonal stands for two entries of the
    symmetric matrix, the other triangle is not read (zero)."""
    both = grad + _mT(grad)
    diagonal = grad * np.eye(np.shape(grad)[-1])
    if str(uplo).upper() == "U":
        return np.triu(both, 1) + diagonal
    return np.tril(both, -1) + diagonal


def _ties(values):
    """``(..., k, k)``: True where ``i != j`` and values ``i`` and ``j`` are equal to working precision."""
    values = as_array(values)
    k = values.shape[-1]
    eps = np.finfo(values.dtype if values.dtype.kind == "f" else np.float64).eps
    scale = np.max(np.abs(values), axis=-1, keepdims=True)[..., None] if k else 0.0
    close = np.abs(values[..., :, None] - values[..., None, :]) <= 16 * k * eps * scale
    return close & ~np.eye(k, dtype=bool)


def _negligible(values):
    """True where a (non-negative) value is zero to working precision, relative to the largest."""
    values = as_array(values)
    eps = np.finfo(values.dtype if values.dtype.kind == "f" else np.float64).eps
    scale = np.max(values, axis=-1, keepdims=True) if values.shape[-1] else 0.0
    return values <= 16 * values.shape[-1] * eps * scale


def _tie_mean(g, ties):
    """``g`` averaged over each group of tied values: the gradient of a repeated eigenvalue (or singular value) is
    split equally among its copies, as ``np.max`` splits it among tied maxima (then it depends on the repeated
    value's eigenspace only, not on the basis numpy chose in it)."""
    together = (ties | np.eye(np.shape(ties)[-1], dtype=bool)).astype(float)
    return (together @ as_array(g)[..., None])[..., 0] / np.sum(together, axis=-1)


def _inverse_gaps(x, ties):
    """``F[..., i, j] = 1 / (x_j - x_i)``, 0 on the diagonal and between tied values."""
    gaps = x[..., None, :] - x[..., :, None]
    return np.divide(1.0, gaps, out=np.zeros(np.shape(gaps)), where=~ties & (gaps != 0))


def _used_columns(g):
    return np.any(as_array(g) != 0, axis=-2)


def _refuse_tied_vectors(ties, what, *adjoints):
    """Vectors of a repeated value are not unique (any basis of their space is as good): a function that uses them
    has no derivative there that srcgrad could compute. Refuse unless no adjoint reaches a tied column."""
    used = np.zeros(np.shape(ties)[:-1], dtype=bool)
    for g in adjoints:
        used = used | _used_columns(g)
    if np.any(ties & (used[..., :, None] | used[..., None, :])):
        raise ValueError(f"srcgrad: {what} has repeated values here (equal to working precision) and the function "
                         "uses their vectors, which are not unique: no gradient; use the values only, or vectors "
                         "of distinct values")


def _fold_extra_columns(u, gu, k, what):
    """The adjoint of the first ``k`` columns of an orthogonal ``u`` (``svd(full_matrices=True)``,
    ``qr(mode='complete')``) that carries the adjoint ``gu`` of all its columns.

    The extra columns ``u2`` span the complement of the first ``k``, a space that is a smooth function of the
    input, but their basis is LAPACK's choice: a function has a gradient only if it does not depend on that basis
    (``u2 @ u2.T``, norms of projections...), i.e. ``u2.T @ g2`` is symmetric; then ``du2 = -u1 du1.T u2`` and the
    contribution of ``g2`` moves to ``u1``. Any other use is refused."""
    if np.shape(u)[-1] == k:
        return gu
    u1, u2 = u[..., :k], u[..., k:]
    g1, g2 = gu[..., :k], gu[..., k:]
    inner = _mT(u2) @ g2
    scale = np.max(np.abs(g2)) if _size(g2) else 0.0
    if scale and np.max(np.abs(inner - _mT(inner))) > 1e-8 * scale:
        raise ValueError(f"srcgrad: the function uses the columns of {what} beyond the first min(m, n) in a way that "
                         "depends on which basis of their space numpy returned (LAPACK's choice): no gradient; use "
                         "the reduced factorisation, or those columns only through c @ c.T")
    return g1 - u2 @ (_mT(g2) @ u1)


def _extra_columns_tangent(u, du1, k, what):
    """Tangent of the extra columns of an orthogonal ``u`` (see :func:`_fold_extra_columns`): defined when there is
    one (then it is unique up to its sign), refused when there are several (their basis is LAPACK's choice)."""
    extra = np.shape(u)[-1] - k
    if extra == 0:
        return du1
    if extra > 1:
        raise ValueError(f"srcgrad: forward mode cannot differentiate the {extra} columns of {what} beyond the first "
                         "min(m, n): their basis is LAPACK's choice; use the reduced factorisation, or reverse mode")
    u1, u2 = u[..., :k], u[..., k:]
    return np.concatenate([du1, -u1 @ (_mT(du1) @ u2)], axis=-1)


# singular value decomposition


def _singular_values_adjoint(u, s, vt, gs):
    """Adjoint of the singular values alone: ``u diag(gs) vt``, ties split equally, none through a singular value
    that is zero (to working precision): it has a kink there like ``abs`` at 0 (whose derivative srcgrad takes as
    0)."""
    k = np.shape(s)[-1]
    gs = np.where(_negligible(s), 0.0, _tie_mean(gs, _ties(s)))
    return (u[..., :k] * gs[..., None, :]) @ vt[..., :k, :]


def _svd_vectors_adjoint(u, s, v, gu, gs, gv):
    """Adjoint of the reduced SVD ``a = u diag(s) v.T`` (``u``: m x k, ``v``: n x k) from the adjoints of ``u``,
    ``s``, ``v`` (Townsend, "Differentiating the singular value decomposition", 2016)."""
    m, n, k = np.shape(u)[-2], np.shape(v)[-2], np.shape(s)[-1]
    ties = _ties(s)
    _refuse_tied_vectors(ties, "np.linalg.svd", gu, gv)
    zero = _negligible(s)
    gs = np.where(zero, 0.0, _tie_mean(gs, ties))
    f = _inverse_gaps(s * s, ties)
    j = f * (_mT(u) @ gu)
    h = f * (_mT(v) @ gv)
    core = _as_diag(gs) + (j + _mT(j)) * s[..., None, :] + s[..., :, None] * (h + _mT(h))
    grad = u @ core @ _mT(v)
    if m > k:
        grad = grad + _scaled_columns(gu - u @ (_mT(u) @ gu), s, zero) @ _mT(v)
    if n > k:
        grad = grad + u @ _mT(_scaled_columns(gv - v @ (_mT(v) @ gv), s, zero))
    return grad


def _scaled_columns(x, s, zero):
    """``x`` with column ``j`` divided by ``s_j``; a zero singular value's vectors in the complement are not
    unique, so a column that needs it is refused."""
    if np.any(zero & _used_columns(np.abs(x) > 1e-12 * (np.max(np.abs(x)) if _size(x) else 0.0))):
        raise ValueError("srcgrad: np.linalg.svd of a rank-deficient non-square matrix: the function uses singular "
                         "vectors of a zero singular value, which are not unique: no gradient")
    return np.divide(x, s[..., None, :], out=np.zeros(np.shape(x)), where=~zero[..., None, :])


def svd_grad(g, ans, a, full_matrices, compute_uv, hermitian):
    """Adjoint of ``np.linalg.svd``. ``hermitian=True`` reads the lower triangle of ``a`` only (numpy factorises
    the symmetric matrix built from it): the adjoint is with respect to those entries, as for ``eigh``."""
    if not compute_uv:
        u, s, vt = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
        grad = _singular_values_adjoint(u, s, vt, as_array(g))
    else:
        u, s, vt = ans
        k = np.shape(s)[-1]
        v = _mT(vt)
        gu = _fold_extra_columns(u, _adjoint_part(g[0], u), k, "U")
        gv = _fold_extra_columns(v, _mT(_adjoint_part(g[2], vt)), k, "V")
        grad = _svd_vectors_adjoint(u[..., :k], s, v[..., :k], gu, _adjoint_part(g[1], s), gv)
    return _triangle_grad(grad, "L") if hermitian else grad


def svd_tangent(a, a_dot, ans, full_matrices, compute_uv, hermitian):
    """Tangent of ``np.linalg.svd``; ties are refused when the result has vectors (their tangent is not defined)."""
    if hermitian:
        a_dot = _read_triangle(a_dot, "L")
    if not compute_uv:
        u, s, vt = np.linalg.svd(a, full_matrices=False, hermitian=hermitian)
        ds = _diag_of(_mT(u) @ a_dot @ _mT(vt))
        return np.where(_negligible(s), 0.0, _tie_mean(ds, _ties(s)))
    u, s, vt = ans
    m, n, k = np.shape(u)[-2], np.shape(vt)[-1], np.shape(s)[-1]
    u1, v1 = u[..., :k], _mT(vt)[..., :k]
    ties = _ties(s)
    if np.any(ties):
        raise ValueError("srcgrad: np.linalg.svd has repeated singular values here (equal to working precision): "
                         "their singular vectors are not unique, so forward mode has no tangent for them")
    p = _mT(u1) @ a_dot @ v1
    f = _inverse_gaps(s * s, ties)
    ps = p * s[..., None, :]
    sp = s[..., :, None] * p
    du = u1 @ (f * (ps + _mT(ps)))
    dv = v1 @ (f * (sp + _mT(sp)))
    zero = _negligible(s)
    if m > k:
        du = du + _scaled_columns(a_dot @ v1 - u1 @ (_mT(u1) @ a_dot @ v1), s, zero)
    if n > k:
        dv = dv + _scaled_columns(_mT(a_dot) @ u1 - v1 @ (_mT(v1) @ _mT(a_dot) @ u1), s, zero)
    du = _extra_columns_tangent(u, du, k, "U")
    dv = _extra_columns_tangent(_mT(vt), dv, k, "V")
    return du, _diag_of(p), _mT(dv)


# symmetric eigenproblems


def _eigh_adjoint(w, v, gw, gv):
    """Adjoint with respect to the symmetric matrix ``v diag(w) v.T`` (symmetric itself):
    ``v (diag(gw) + F o (X - X.T) / 2) v.T`` with ``X = v.T gv`` and ``F_ij = 1 / (w_j - w_i)``."""
    ties = _ties(w)
    inner = _as_diag(_tie_mean(gw, ties))
    if gv is not None:
        _refuse_tied_vectors(ties, "np.linalg.eigh", gv)
        x = _mT(v) @ gv
        inner = inner + 0.5 * _inverse_gaps(w, ties) * (x - _mT(x))
    return v @ inner @ _mT(v)


def eigh_grad(g, ans, UPLO):
    """Adjoint of ``np.linalg.eigh``: with respect to the entries numpy reads (the triangle ``UPLO``; the other
    triangle gets zeros), as for ``cholesky``. For a symmetric parametrisation (``a = b + b.T``) this gives the
    usual symmetric gradient."""
    w, v = ans
    return _triangle_grad(_eigh_adjoint(w, v, _adjoint_part(g[0], w), _adjoint_part(g[1], v)), UPLO)


def eigvalsh_grad(g, a, UPLO):
    """Adjoint of ``np.linalg.eigvalsh`` (see :func:`eigh_grad`); a repeated eigenvalue's gradient is split
    equally among its copies."""
    w, v = np.linalg.eigh(a, UPLO)
    return _triangle_grad(_eigh_adjoint(w, v, as_array(g), None), UPLO)


def eigh_tangent(a_dot, ans, UPLO):
    """Tangent of ``np.linalg.eigh``: ``dw = diag(P)``, ``dv = v (F o P)`` with ``P = v.T da v``."""
    w, v = ans
    p = _mT(v) @ _read_triangle(a_dot, UPLO) @ v
    ties = _ties(w)
    if np.any(ties):
        raise ValueError("srcgrad: np.linalg.eigh has repeated eigenvalues here (equal to working precision): their "
                         "eigenvectors are not unique, so forward mode has no tangent for them; use eigvalsh")
    return _diag_of(p), v @ (_inverse_gaps(w, ties) * p)


def eigvalsh_tangent(a, a_dot, UPLO):
    w, v = np.linalg.eigh(a, UPLO)
    return _tie_mean(_diag_of(_mT(v) @ _read_triangle(a_dot, UPLO) @ v), _ties(w))


# general eigenproblem (real input, real eigenvalues)


def _real_eigen(ans):
    w, v = ans
    if np.iscomplexobj(w) or np.iscomplexobj(v):
        raise ValueError("srcgrad: np.linalg.eig returned complex eigenvalues: srcgrad differentiates eig only "
                         "where all eigenvalues are real (for a symmetric matrix use np.linalg.eigh)")
    ties = _ties(w)
    return w, v, ties


def eig_grad(g, ans):
    """Adjoint of ``np.linalg.eig`` for real eigenvalues: ``v^-T (diag(gw) + F o (v.T gv - v.T v diag(v.T gv)))
    v.T`` (the last term keeps each eigenvector of unit length, as numpy returns them), ``F_ij = 1 / (w_j - w_i)``.
    A repeated eigenvalue is refused when the function uses its vectors or its copies differently."""
    w, v, ties = _real_eigen(ans)
    gw, gv = _adjoint_part(g[0], w), _adjoint_part(g[1], v)
    uneven = np.abs(gw - _tie_mean(gw, ties)) > 1e-12 * (np.max(np.abs(gw)) if _size(gw) else 0.0)
    _refuse_tied_vectors(ties, "np.linalg.eig", gv, uneven[..., None, :])
    x = _mT(v) @ gv
    inner = _as_diag(gw) + _inverse_gaps(w, ties) * (x - (_mT(v) @ v) * _diag_of(x)[..., None, :])
    return np.linalg.solve(_mT(v), inner @ _mT(v))


def eig_tangent(a_dot, ans):
    """Tangent of ``np.linalg.eig`` (real eigenvalues, none repeated): ``dw = diag(P)``, ``dv = v C - v diag(v.T v
    C)`` with ``P = v^-1 da v`` and ``C = F o P``."""
    w, v, ties = _real_eigen(ans)
    if np.any(ties):
        raise ValueError("srcgrad: np.linalg.eig has repeated eigenvalues here (equal to working precision): forward "
                         "mode has no tangent for them")
    p = np.linalg.solve(v, a_dot @ v)
    c = _inverse_gaps(w, ties) * p
    return _diag_of(p), v @ c - v * _diag_of(_mT(v) @ v @ c)[..., None, :]


def _eig_in_order_of(a, values):
    """``eig(a)`` with its eigenpairs in the order of ``values`` (what ``np.linalg.eigvals(a)`` returned: LAPACK
    computes them without vectors there, so the order is matched, by value)."""
    w, v = np.linalg.eig(a)
    order = np.argmin(np.abs(as_array(values)[..., :, None] - w[..., None, :]), axis=-1)
    return np.take_along_axis(w, order, axis=-1), np.take_along_axis(v, order[..., None, :], axis=-1)


def eigvals_grad(g, ans, a):
    """Adjoint of ``np.linalg.eigvals`` (real eigenvalues): :func:`eig_grad` without eigenvector adjoint."""
    w, v = _eig_in_order_of(a, ans)
    return eig_grad((g, np.zeros(np.shape(v))), (w, v))


def eigvals_tangent(a, a_dot, ans):
    return eig_tangent(a_dot, _eig_in_order_of(a, ans))[0]


# pseudo-inverse and least squares


def _pinv_parts(a, kept=None, pinv=None):
    """The SVD of ``a`` and which singular values ``np.linalg.pinv`` kept: read from its result (its ``v.T pinv
    u`` has ``1 / s`` where a value was kept, 0 where it was cut), or given as a count per matrix."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    if pinv is not None:
        kept = np.sum(_mT(vt) * (pinv @ u), axis=-2) * s > 0.5
    else:
        kept = np.arange(np.shape(s)[-1]) < as_array(kept)[..., None]
    return u, s, _mT(vt), kept


def _pinv_coefficients(s, kept):
    """The derivative of ``pinv(a).T = u diag(f(s)) v.T`` (``f = 1/s`` where kept, else 0) in the basis of the
    singular vectors: symmetric parts of ``u.T da v`` are scaled by ``(f_i - f_j) / (s_i - s_j)``, antisymmetric
    parts by ``(f_i + f_j) / (s_i + s_j)`` (``f'`` on the diagonal), and the complements by ``f / s``. No
    division by a gap: repeated kept values give ``-1 / s^2``; cut values (zero or not) give 0 among themselves."""
    f = np.divide(1.0, s, out=np.zeros(np.shape(s)), where=kept)
    both = kept[..., :, None] & kept[..., None, :]
    either = kept[..., :, None] | kept[..., None, :]
    diff = s[..., :, None] - s[..., None, :]
    total = s[..., :, None] + s[..., None, :]
    fdiff = f[..., :, None] - f[..., None, :]
    fsum = f[..., :, None] + f[..., None, :]
    sym = np.where(both, -f[..., :, None] * f[..., None, :],
                   np.divide(fdiff, diff, out=np.zeros(np.shape(diff)), where=either & ~both))
    antisym = np.divide(fsum, total, out=np.zeros(np.shape(total)), where=either)
    return sym, antisym, f * f


def _pinv_adjoint(u, s, v, kept, gx):
    """Adjoint of ``x = pinv(a)`` from the adjoint ``gx`` of ``x``."""
    sym, antisym, scale = _pinv_coefficients(s, kept)
    gy = _mT(gx)
    h = _mT(u) @ gy @ v
    grad = u @ (sym * 0.5 * (h + _mT(h)) + antisym * 0.5 * (h - _mT(h))) @ _mT(v)
    m, n, k = np.shape(u)[-2], np.shape(v)[-2], np.shape(s)[-1]
    if m > k:
        grad = grad + (gy - u @ (_mT(u) @ gy)) @ (v * scale[..., None, :]) @ _mT(v)
    if n > k:
        grad = grad + (u * scale[..., None, :]) @ _mT(u) @ (gy - (gy @ v) @ _mT(v))
    return grad


def _pinv_tangent(u, s, v, kept, a_dot):
    sym, antisym, scale = _pinv_coefficients(s, kept)
    p = _mT(u) @ a_dot @ v
    dy = u @ (sym * 0.5 * (p + _mT(p)) + antisym * 0.5 * (p - _mT(p))) @ _mT(v)
    m, n, k = np.shape(u)[-2], np.shape(v)[-2], np.shape(s)[-1]
    if m > k:
        dy = dy + (a_dot - u @ (_mT(u) @ a_dot)) @ (v * scale[..., None, :]) @ _mT(v)
    if n > k:
        dy = dy + (u * scale[..., None, :]) @ _mT(u) @ (a_dot - (a_dot @ v) @ _mT(v))
    return _mT(dy)


def pinv_grad(g, ans, a, hermitian):
    """Adjoint of ``np.linalg.pinv`` as the function it is: ``v diag(f(s)) u.T`` with the singular values below the
    cutoff (``rcond``/``rtol``) set to zero, away from the cutoff (where it jumps). Exact for any rank, with
    repeated singular values too. ``hermitian=True`` reads the lower triangle of ``a`` (as ``svd``)."""
    seen = _read_triangle(a, "L") if hermitian else a
    grad = _pinv_adjoint(*_pinv_parts(seen, pinv=ans), as_array(g))
    return _triangle_grad(grad, "L") if hermitian else grad


def pinv_tangent(a, a_dot, ans, hermitian):
    if hermitian:
        a, a_dot = _read_triangle(a, "L"), _read_triangle(a_dot, "L")
    return _pinv_tangent(*_pinv_parts(a, pinv=ans), a_dot)


def _as_columns(x):
    x = as_array(x)
    return x[:, None] if x.ndim == 1 else x


def _lstsq_parts(ans, a):
    """The SVD of ``a``, which singular values ``np.linalg.lstsq`` kept (it reports their number, ``rank``) and the
    pseudo-inverse it applied (the others set to zero)."""
    u, s, v, kept = _pinv_parts(a, kept=ans[2])
    pinv = (v * np.divide(1.0, s, out=np.zeros(np.shape(s)), where=kept)[..., None, :]) @ _mT(u)
    return u, s, v, kept, pinv


def _lstsq_residuals(g, ans, a, b):
    """The residuals ``b - a x`` and their adjoint (empty when numpy returns no residuals: rank-deficient ``a``, or
    no more rows than columns)."""
    x, residuals = ans[0], ans[1]
    return _as_columns(b) - a @ _as_columns(x), _adjoint_part(g[1], residuals)


def lstsq_grad_a(g, ans, a, b):
    """Adjoint of ``x, residuals, rank, s = np.linalg.lstsq(a, b, rcond)`` with respect to ``a``: ``x = pinv(a) b``
    (the singular values numpy cut set to zero, see :func:`pinv_grad`); the residuals ``|b - a x|^2`` at the
    optimum (``a.T (b - a x) = 0``): ``-2 r x.T``; the singular values ``s`` of ``a``."""
    x, s_out = ans[0], ans[3]
    u, s, v, kept, pinv = _lstsq_parts(ans, a)
    gx = _as_columns(_adjoint_part(g[0], x))
    grad = _pinv_adjoint(u, s, v, kept, gx @ _mT(_as_columns(b)))
    r, gr = _lstsq_residuals(g, ans, a, b)
    if _size(gr):
        grad = grad - 2.0 * (r * gr) @ _mT(_as_columns(x))
    return grad + _singular_values_adjoint(u, s, _mT(v), _adjoint_part(g[3], s_out))


def lstsq_grad_b(g, ans, a, b):
    """Adjoint of ``np.linalg.lstsq`` with respect to ``b``: ``pinv(a).T gx``, and ``2 r`` per residual."""
    pinv = _lstsq_parts(ans, a)[4]
    grad = _mT(pinv) @ _as_columns(_adjoint_part(g[0], ans[0]))
    r, gr = _lstsq_residuals(g, ans, a, b)
    if _size(gr):
        grad = grad + 2.0 * r * gr
    return np.reshape(grad, np.shape(b))


def lstsq_tangent(a, a_dot, b, b_dot, ans):
    """Tangent of ``np.linalg.lstsq``: of ``x`` through the pseudo-inverse, of the residuals ``2 r.T (db - da x)``
    (at the optimum), of the singular values ``diag(u.T da v)``; the rank is an integer (tangent 0)."""
    x, residuals, rank = ans[0], ans[1], ans[2]
    u, s, v, kept, pinv = _lstsq_parts(ans, a)
    bc = _as_columns(b)
    dx = _pinv_tangent(u, s, v, kept, a_dot) @ bc + pinv @ _as_columns(b_dot)
    dres = np.zeros(np.shape(residuals))
    if _size(residuals):
        r = bc - a @ _as_columns(x)
        dres = 2.0 * np.sum(r * (_as_columns(b_dot) - a_dot @ _as_columns(x)), axis=0)
    ds = _diag_of(_mT(u) @ a_dot @ v)
    ds = np.where(_negligible(s), 0.0, _tie_mean(ds, _ties(s)))
    return np.reshape(dx, np.shape(x)), dres, 0.0 * rank, ds


# QR


def _qr_square_adjoint(q, r, gq, gr):
    """Adjoint of ``a = q r`` with ``r`` square: ``(gq + q copyltu(M)) r^-T`` with ``M = r gr.T - gq.T q``
    (copyltu: the lower triangle mirrored to the upper)."""
    m = r @ _mT(gr) - _mT(gq) @ q
    b = gq + q @ (np.tril(m) + _mT(np.tril(m, -1)))
    return _mT(np.linalg.solve(r, _mT(b)))


def _check_full_rank(r):
    d = np.abs(_diag_of(r))
    if np.any(_negligible(d)):
        raise ValueError("srcgrad: np.linalg.qr of a rank-deficient matrix (a zero on the diagonal of r): q is not "
                         "unique there, so it has no gradient")


def qr_grad(g, ans, a, mode):
    """Adjoint of ``np.linalg.qr`` for modes ``reduced``, ``complete`` and ``r`` (``raw`` is LAPACK's encoding:
    refused), any shape: for ``m < n`` the first ``m`` columns are factorised and the rest is ``q.T a[:, m:]``."""
    a = as_array(a)
    if mode == "raw":
        raise ValueError("srcgrad: no gradient for np.linalg.qr(mode='raw') (LAPACK's Householder encoding); use "
                         "mode='reduced'")
    m, n = a.shape[-2:]
    k = min(m, n)
    if mode == "r":
        q, r = np.linalg.qr(a)
        gq, gr = np.zeros(np.shape(q)), _adjoint_part(g, ans)
    else:
        q, r = ans
        gq = _fold_extra_columns(q, _adjoint_part(g[0], q), k, "Q")
        gr = _adjoint_part(g[1], r)[..., :k, :]
        q, r = q[..., :k], r[..., :k, :]
    _check_full_rank(r)
    if m >= n:
        return _qr_square_adjoint(q, r, gq, gr)
    rest, g_rest = a[..., m:], gr[..., m:]
    left = _qr_square_adjoint(q, r[..., :m], gq + rest @ _mT(g_rest), gr[..., :m])
    return np.concatenate([left, q @ g_rest], axis=-1)


def _qr_square_tangent(q, r, a_dot):
    """Tangent of ``a = q r`` with ``r`` square: ``C = q.T da r^-1``, ``dq.T q`` its antisymmetrised strict lower
    triangle ``O``, ``dr = (C - O) r``, ``dq = da r^-1 - q (C - O)``."""
    da_rinv = _mT(np.linalg.solve(_mT(r), _mT(a_dot)))
    c = _mT(q) @ da_rinv
    lower = np.tril(c, -1)
    upper = c - lower + _mT(lower)
    return da_rinv - q @ upper, upper @ r


def qr_tangent(a, a_dot, ans, mode):
    a = as_array(a)
    if mode == "raw":
        raise ValueError("srcgrad: no tangent for np.linalg.qr(mode='raw') (LAPACK's Householder encoding); use "
                         "mode='reduced'")
    m, n = a.shape[-2:]
    k = min(m, n)
    q, r = np.linalg.qr(a) if mode == "r" else ans
    q1, r1 = q[..., :k], r[..., :k, :]
    _check_full_rank(r1)
    if m >= n:
        dq, dr = _qr_square_tangent(q1, r1, a_dot)
    else:
        dq, dr_left = _qr_square_tangent(q1, r1[..., :m], a_dot[..., :m])
        dr = np.concatenate([dr_left, _mT(dq) @ a[..., m:] + _mT(q1) @ a_dot[..., m:]], axis=-1)
    if mode == "r":
        return dr
    rows = np.shape(r)[-2] - k  # complete mode, m > n: r has zero rows below, q extra columns
    dr = np.concatenate([dr, np.zeros(np.shape(dr)[:-2] + (rows, n))], axis=-2) if rows else dr
    return _extra_columns_tangent(q, dq, k, "Q"), dr


# powers and condition numbers


def _powers(a, n):
    """``[a^0, a^1, ..., a^(n-1)]`` for ``n >= 1``."""
    out = [np.broadcast_to(np.eye(np.shape(a)[-1]), np.shape(a))]
    for _ in range(n - 1):
        out.append(out[-1] @ a)
    return out


def matrix_power_grad(g, a, n):
    """Adjoint of ``np.linalg.matrix_power(a, n)``: ``sum_k (a.T)^k g (a.T)^(n-1-k)``; a negative ``n`` is the
    power ``-n`` of ``inv(a)``, whose adjoint is ``-inv(a).T G inv(a).T``."""
    a = as_array(a, float_dtype(a))
    if n == 0:
        return np.zeros(np.shape(a))
    base = np.linalg.inv(a) if n < 0 else a
    powers = [_mT(p) for p in _powers(base, abs(n))]
    grad = sum(powers[i] @ g @ powers[abs(n) - 1 - i] for i in range(abs(n)))
    return -_mT(base) @ grad @ _mT(base) if n < 0 else grad


def matrix_power_tangent(a, a_dot, n):
    a = as_array(a, float_dtype(a))
    if n == 0:
        return np.zeros(np.shape(a))
    base = np.linalg.inv(a) if n < 0 else a
    base_dot = -base @ a_dot @ base if n < 0 else a_dot
    powers = _powers(base, abs(n))
    return sum(powers[i] @ base_dot @ powers[abs(n) - 1 - i] for i in range(abs(n)))


def cond_grad(g, ans, x, p):
    """Adjoint of ``np.linalg.cond``: for ``p`` None, 2, -2 the ratio of the extreme singular values (a repeated
    extreme value splits its gradient equally); otherwise ``norm(x, p) * norm(inv(x), p)`` through the adjoints of
    the matrix norm and the inverse. An infinite condition number (a singular matrix) is refused."""
    if not np.all(np.isfinite(ans)):
        raise ValueError("srcgrad: np.linalg.cond is infinite here (a singular matrix): no gradient")
    g = as_array(g, float)
    if p is None or (not isinstance(p, str) and p in (2, -2)):
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        big, small = s[..., :1], s[..., -1:]
        gs = np.zeros(np.shape(s))
        top, bottom = (1.0 / small, -big / small ** 2) if p != -2 else (-small / big ** 2, 1.0 / big)
        gs[..., :1] = top
        gs[..., -1:] += bottom
        return _singular_values_adjoint(u, s, vt, gs * g[..., None])
    inverse = np.linalg.inv(x)
    n_x = np.linalg.norm(x, p, axis=(-2, -1))
    n_inv = np.linalg.norm(inverse, p, axis=(-2, -1))
    grad_inv = norm_grad(g * n_x, n_inv, inverse, p, (-2, -1), False)
    return norm_grad(g * n_inv, n_x, x, p, (-2, -1), False) - _mT(inverse) @ grad_inv @ _mT(inverse)


def cond_tangent(x, x_dot, ans, p):
    return np.sum(cond_grad(np.ones(np.shape(ans)), ans, x, p) * x_dot, axis=(-2, -1))


# --- shapes -------------------------------------------------------------------------------------------------------


def inverse_axes(axes):
    """The permutation that undoes ``np.transpose(x, axes)`` (None: reversing, its own inverse)."""
    if axes is None:
        return None
    return tuple(int(i) for i in np.argsort([a % len(axes) for a in axes]))


def _split(g, ends, axis):
    """``np.split(g, ends, axis)`` by slicing (any array library has slices; Dask has no np.split)."""
    if not foreign_array(g):
        return np.split(g, ends, axis=axis)
    bounds = [0, *(int(e) for e in ends), np.shape(g)[axis]]
    before = (slice(None),) * (axis % np.ndim(g))
    return [g[before + (slice(a, b),)] for a, b in zip(bounds, bounds[1:])]


def concatenate_grad(g, arrays, axis):
    """Adjoint of ``np.concatenate(arrays, axis)``: ``g`` split back into one piece per array."""
    shapes = _element_shapes(arrays)
    if axis is None:
        sizes = [int(np.prod(s)) for s in shapes]
        parts = _split(np.ravel(g), np.cumsum(sizes)[:-1], 0)
    else:
        parts = _split(g, np.cumsum([s[axis] for s in shapes])[:-1], axis)
    return parts_grad(parts, arrays)


def stack_grad(g, arrays, axis):
    """Adjoint of ``np.stack(arrays, axis)``: the slices of ``g`` along ``axis``."""
    return parts_grad(list(np.moveaxis(g, axis, 0)), arrays)


def hstack_grad(g, tup):
    """Adjoint of ``np.hstack``: split along axis 0 (1-D inputs) or 1, each piece shaped like its input."""
    shapes = [np.shape(np.atleast_1d(a)) for a in tup]
    axis = 0 if len(shapes[0]) == 1 else 1
    return parts_grad(_split(g, np.cumsum([s[axis] for s in shapes])[:-1], axis), tup)


def vstack_grad(g, tup):
    """Adjoint of ``np.vstack``: split along axis 0, each piece shaped like its input."""
    shapes = [np.shape(np.atleast_2d(a)) for a in tup]
    return parts_grad(_split(g, np.cumsum([s[0] for s in shapes])[:-1], 0), tup)


def split_grad(g, ary, axis):
    """Adjoint of ``np.split``/``np.array_split`` (a list of pieces): the pieces' adjoints concatenated back."""
    return np.reshape(np.concatenate(list(g), axis=axis), np.shape(ary))


def tile_grad(g, a, reps):
    """Adjoint of ``np.tile(a, reps)``: sum over the copies."""
    shape = np.shape(a)
    reps = tuple(reps) if np.ndim(reps) else (int(reps),)
    d = max(len(reps), len(shape))
    full_shape = (1,) * (d - len(shape)) + shape
    full_reps = (1,) * (d - len(reps)) + reps
    interleaved = [n for pair in zip(full_reps, full_shape) for n in pair]
    summed = np.sum(np.reshape(g, interleaved), axis=tuple(range(0, 2 * d, 2)))
    return np.reshape(summed, shape)


def repeat_grad(g, a, repeats, axis):
    """Adjoint of ``np.repeat(a, repeats, axis)``: each element gets the sum of its copies."""
    shape = np.shape(a)
    if axis is None:
        n = int(np.prod(shape))
        out = np.zeros(n, dtype=np.result_type(g, float))
        np.add.at(out, np.repeat(np.arange(n), repeats), np.ravel(g))
        return out.reshape(shape)
    axis = axis % len(shape)
    out = np.zeros(shape, dtype=np.result_type(g, float))
    index = (slice(None),) * axis + (np.repeat(np.arange(shape[axis]), repeats),)
    np.add.at(out, index, g)
    return out


def diff_grad(g, a, n, axis):
    """Adjoint of ``np.diff(a, n, axis)``: the adjoint of one difference, ``n`` times."""
    for _ in range(n):
        g = as_array(g)
        pad = [(0, 0)] * g.ndim
        pad[axis % g.ndim] = (1, 0)
        before = np.pad(g, pad)
        pad[axis % g.ndim] = (0, 1)
        g = before - np.pad(g, pad)
    return np.reshape(g, np.shape(a))


def sort_grad(g, a, axis):
    """Adjoint of ``np.sort``: ``g`` sent back through the sorting permutation (a stable argsort; at ties the
    gradient follows the order the sort put the tied elements in)."""
    if axis is None:
        flat = np.ravel(a)
        out = np.zeros(flat.shape, dtype=np.result_type(g, float))
        out[np.argsort(flat, kind="stable")] = g
        return out.reshape(np.shape(a))
    perm = np.argsort(a, axis=axis, kind="stable")
    out = np.zeros(np.shape(a), dtype=np.result_type(g, float))
    np.put_along_axis(out, perm, g, axis)
    return out


# --- indexing -----------------------------------------------------------------------------------------------------


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice, np.integer)) for p in parts)


def _is_mask(index):
    return isinstance(index, np.ndarray) and index.dtype == bool


def getitem_grad(g, x, index):
    """Adjoint of ``x[index]``: scatter ``g`` into zeros shaped like ``x``. Basic indices and boolean masks select
    each element at most once (plain assignment); integer arrays may repeat an index, so their contributions
    accumulate (``np.add.at``). For a tuple or list ``x`` (e.g. the result of ``np.linalg.slogdet`` or
    ``np.split``) the adjoint is a :class:`SeqGrad`."""
    if isinstance(x, (tuple, list)):
        parts = [zeros_like(v) for v in x]
        if isinstance(index, slice):
            for j, gj in zip(range(len(x))[index], g):
                parts[j] = gj
        else:
            parts[index] = g
        return SeqGrad(parts)
    g = as_array(g)
    dtype = g.dtype if g.dtype.kind == "f" else np.float64
    if foreign_array(x) or foreign_array(g):
        return _foreign_scatter(g, x, index, dtype)
    out = np.zeros(np.shape(x), dtype=dtype)
    if _is_basic_index(index) or _is_mask(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def _foreign_scatter(g, x, index, dtype):
    """:func:`getitem_grad` for an array of another library: its item assignment into zeros of its own (Dask: lazy)
    for an index that selects each element once; integer arrays that may repeat an index need ``np.add.at``, which
    such libraries need not have, so they are refused unless the indices are distinct."""
    like = x if foreign_array(x) else g
    out = np.zeros_like(like, dtype=dtype, shape=np.shape(x)) if like is g else np.zeros_like(x, dtype=dtype)
    if not (_is_basic_index(index) or _is_mask(index) or _distinct_indices(index)):
        need_values(like, "the gradient of indexing with repeated integer indices (np.add.at)")
    g, index = _without_new_axes(g, index, len(np.shape(x)))
    out[index] = g
    return out


def _without_new_axes(g, index, ndim):
    """``g`` (the adjoint of ``x[index]``) and ``index`` without the ``None`` (``np.newaxis``) items of a basic index:
    the length-1 axes they made are taken out of ``g`` (Dask's item assignment takes no ``None``)."""
    parts = index if isinstance(index, tuple) else (index,)
    if not any(p is None for p in parts) or not all(
            p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer)) for p in parts):
        return g, index
    consumed = sum(1 for p in parts if p is not None and p is not Ellipsis)
    axis, new_axes = 0, []
    for p in parts:
        if p is None:
            new_axes.append(axis)
        if p is None or isinstance(p, slice):
            axis += 1
        elif p is Ellipsis:
            axis += ndim - consumed
    trailing = 0 if Ellipsis in parts else ndim - consumed  # (the axes no item indexes, after the last)
    if np.ndim(g) != axis + trailing:
        return g, index  # (not the result's shape: left to the assignment)
    return np.squeeze(g, axis=tuple(new_axes)), tuple(p for p in parts if p is not None)


def _distinct_indices(index):
    """An index made of numbers, slices and one integer numpy array without repeats (its items are written once)."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [p for p in parts if isinstance(p, (np.ndarray, list))]
    if len(arrays) != 1 or not all(p is None or p is Ellipsis or isinstance(p, (int, slice, np.integer, np.ndarray,
                                                                                   list)) for p in parts):
        return False
    flat = np.ravel(arrays[0])
    one_sign = flat.size == 0 or flat.min() >= 0 or flat.max() < 0  # (-1 and n - 1 are one element)
    return flat.dtype.kind in "iu" and one_sign and len(np.unique(flat)) == flat.size


def take_grad(g, a, indices, axis, mode="raise"):
    """Adjoint of ``np.take(a, indices, axis, mode=mode)``: repeated indices accumulate; ``mode`` 'wrap' and 'clip'
    map the indices into range as numpy does (clip sends negative ones to 0)."""
    out = np.zeros(np.shape(a), dtype=np.result_type(g, float))
    if mode in ("wrap", "clip"):
        n = out.size if axis is None else out.shape[axis]
        indices = np.mod(indices, n) if mode == "wrap" else np.clip(indices, 0, n - 1)
    if axis is None:
        np.add.at(out.reshape(-1), indices, g)
    else:
        np.add.at(out, (slice(None),) * (axis % out.ndim) + (indices,), g)
    return out


def take_along_axis_grad(g, arr, indices, axis):
    """Adjoint of ``np.take_along_axis(arr, indices, axis)``: repeated indices accumulate."""
    arr_shape = np.shape(arr)
    if axis is None:
        out = np.zeros(int(np.prod(arr_shape)), dtype=np.result_type(g, float))
        np.add.at(out, indices, g)
        return out.reshape(arr_shape)
    out = np.zeros(arr_shape, dtype=np.result_type(g, float))
    axis = axis % out.ndim
    grids = np.ix_(*[np.arange(n) for n in np.shape(g)])
    index = tuple(indices if i == axis else grids[i] for i in range(out.ndim))
    np.add.at(out, index, g)
    return out


def drop_last(g):
    """The adjoint of a list before its last ``append``: every element's adjoint but the last."""
    return SeqGrad(g[:-1])


def builtin_sum_grad(g, iterable):
    """Adjoint of ``sum(iterable)``: every element gets ``g`` (a list's elements, or an array's rows)."""
    if isinstance(iterable, (tuple, list)):
        return SeqGrad(g for _ in iterable)
    return np.broadcast_to(g, np.shape(iterable))


# --- more of numpy: products, finite differences, padding, selection, spaced samples, real parts ------------------


def real_input(x, value, name):
    """``value`` (an adjoint or a tangent of ``name(x)``) when ``x`` is real. A complex ``x`` is refused: srcgrad
    differentiates real numbers, and the parts of a complex value need complex adjoints."""
    if np.iscomplexobj(x):
        raise ValueError(f"srcgrad: {name} of a complex value is not differentiated (srcgrad differentiates real "
                         "numbers); keep the real and imaginary parts as separate real values")
    return value


def real_zero(x, name):
    """The zero adjoint of ``x`` through a function constant on real numbers (``np.imag``, ``np.angle``): 0.0 for a
    Python number, zeros shaped like ``x`` otherwise. A complex ``x`` is refused (:func:`real_input`)."""
    return real_input(x, 0.0 if isinstance(x, (float, int)) else np.zeros(np.shape(x), dtype=float_dtype(x)), name)


def _vector_last(v, axis):
    """``v`` with its vector axis last, and as a 3-vector (a 2-vector gets a zero third component)."""
    v = np.moveaxis(as_array(v), axis, -1)
    if v.shape[-1] == 2:
        return v, np.concatenate([v, np.zeros(v.shape[:-1] + (1,), dtype=v.dtype)], axis=-1)
    return v, v


def cross_grad(g, a, b, axisa, axisb, axisc, axis, which):
    """Adjoint of ``np.cross`` with respect to ``a`` (``which=0``) or ``b``: as ``g . (a x b) = a . (b x g) =
    b . (g x a)``, ``a`` gets ``b x g`` and ``b`` gets ``g x a``, with 2-vectors as 3-vectors whose third component
    is 0 (two 2-vectors give the third component only) and the vector axes where ``axisa``/``axisb``/``axisc`` (or
    ``axis``, which overrides them) put them; summed over broadcast axes."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a_last, a3 = _vector_last(a, axisa)
    b_last, b3 = _vector_last(b, axisb)
    g = as_array(g)
    if a_last.shape[-1] == 2 and b_last.shape[-1] == 2:
        g3 = np.stack([np.zeros_like(g), np.zeros_like(g), g], axis=-1)
    else:
        g3 = np.moveaxis(g, axisc, -1)
    x_last, r = (a_last, np.cross(b3, g3)) if which == 0 else (b_last, np.cross(g3, a3))
    r = unbroadcast(r[..., :x_last.shape[-1]], x_last)
    return np.moveaxis(r, -1, axisa if which == 0 else axisb)


def kron_grad(g, a, b, which):
    """Adjoint of ``np.kron(a, b)`` with respect to ``a`` (``which=0``) or ``b``: element ``(i, j)`` of each axis
    pair of the result is ``a[i] b[j]``, so ``g`` viewed with axes ``(a0, b0, a1, b1, ...)`` is contracted with the
    other operand."""
    a, b = as_array(a), as_array(b)
    nd = max(a.ndim, b.ndim)
    sa, sb = (1,) * (nd - a.ndim) + a.shape, (1,) * (nd - b.ndim) + b.shape
    pairs = np.reshape(g, [n for pair in zip(sa, sb) for n in pair])
    if which == 0:
        r = np.tensordot(pairs, np.reshape(b, sb), axes=(tuple(range(1, 2 * nd, 2)), tuple(range(nd))))
        return np.reshape(r, a.shape)
    r = np.tensordot(pairs, np.reshape(a, sa), axes=(tuple(range(0, 2 * nd, 2)), tuple(range(nd))))
    return np.reshape(r, b.shape)


def _gradient_axes(f, varargs, axis):
    """The axes ``np.gradient(f, *varargs, axis=axis)`` differentiates along, in its output's order, each with its
    spacing (a number, or the coordinates along that axis)."""
    nd = np.ndim(f)
    axes = tuple(range(nd)) if axis is None else tuple(
        int(a) % nd for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis))
    if not varargs:
        spacings = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacings = [varargs[0]] * len(axes)
    else:
        spacings = list(varargs)
    return axes, spacings


def gradient_grad(g, f, varargs, axis, edge_order):
    """Adjoint of ``np.gradient(f, *varargs, axis=, edge_order=)`` with respect to ``f``: the transpose of each
    axis's finite-difference operator applied to that axis's adjoint, summed (one output per axis: ``g`` is one
    adjoint per output, or an array for a single axis)."""
    axes, spacings = _gradient_axes(f, varargs, axis)
    parts = [g] if len(axes) == 1 else list(g)
    out = np.zeros(np.shape(f))
    for ax, h, part in zip(axes, spacings, parts):
        out += _difference_transpose(part, np.shape(f)[ax], h, ax, edge_order)
    return out


def _difference_transpose(g, n, h, axis, edge_order):
    """The transpose of ``np.gradient`` along one axis of length ``n`` applied to ``g``. Output ``i`` of the
    difference operator reads inputs ``s_i .. s_i + w - 1`` only (``w = min(3, n)``; ``s_i = i - 1`` inside, the
    first or last ``w`` at the edges), whose positions modulo ``w`` differ; so the coefficient of input ``j`` in
    output ``i`` is output ``i`` of np.gradient applied to the comb that is 1 where the position is ``j`` modulo
    ``w`` — numpy's own coefficients, for any spacing and edge order."""
    g = np.moveaxis(as_array(g), axis, -1)
    w = min(3, n)
    position = np.arange(n)
    coefficients = np.stack([np.gradient((position % w == r).astype(float), h, edge_order=edge_order)
                             for r in range(w)])
    first = np.clip(position - 1, 0, n - w)
    out = np.zeros(g.shape, dtype=np.result_type(g, float))
    for k in range(w):
        c = g * coefficients[(first + k) % w, position]  # output i's share for input first[i] + k
        if n > 2:
            out[..., k:n - 2 + k] += c[..., 1:n - 1]
            out[..., k] += c[..., 0]
            out[..., n - 3 + k] += c[..., n - 1]
        else:
            out[..., k] += c[..., 0] + c[..., 1]
    return np.moveaxis(out, -1, axis)


def rollaxis_grad(g, a, axis, start):
    """Adjoint of ``np.rollaxis(a, axis, start)``: the inverse of the permutation numpy applies."""
    n = np.ndim(a)
    axis = axis % n
    start = start + n if start < 0 else start
    if axis < start:
        start -= 1
    axes = [i for i in range(n) if i != axis]
    axes.insert(start, axis)
    return np.transpose(g, inverse_axes(axes))


def atleast_grad(g, arys):
    """Adjoint of ``np.atleast_1d/2d/3d(*arys)``: one adjoint per argument, reshaped back to it (the result is one
    array for one argument, a tuple for several)."""
    if len(arys) == 1:
        return (np.reshape(g, np.shape(arys[0])),)
    return tuple(np.reshape(part, np.shape(a)) for part, a in zip(g, arys))


def column_stack_grad(g, tup):
    """Adjoint of ``np.column_stack(tup)``: ``g`` split into columns, 1-D (and 0-D) arrays being one column each."""
    widths = [np.shape(a)[1] if np.ndim(a) >= 2 else 1 for a in tup]
    return parts_grad(_split(as_array(g), np.cumsum(widths)[:-1], 1), tup)


def append_grad(g, arr, values, axis, which):
    """Adjoint of ``np.append(arr, values, axis)`` with respect to ``arr`` (``which=0``) or ``values``: the part of
    ``g`` each came from (of the flattened result when ``axis`` is None)."""
    if axis is None:
        flat, n = np.ravel(g), _size(arr)
        return np.reshape(flat[:n] if which == 0 else flat[n:], np.shape(arr if which == 0 else values))
    return _split(g, [np.shape(arr)[axis]], axis)[which]


PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def pad_grad(g, array, pad_width, mode, reflect_type):
    """Adjoint of ``np.pad`` with respect to ``array``, for the modes of :data:`PAD_MODES`. numpy pads axis 0, then
    axis 1..., each time along the whole array padded so far: the adjoint undoes the last axis first. Along one axis
    the inside is ``g``'s middle; each padded position copies one element (padding the positions says which) or,
    with ``reflect_type='odd'``, a combination of them (``2 * edge - reflection``: padding the identity matrix says
    which); constants get nothing."""
    _check_pad_mode(mode)
    shape = np.shape(array)
    g = as_array(g)
    odd = mode in ("reflect", "symmetric") and reflect_type == "odd"
    for ax, (before, after) in reversed(list(enumerate(_pad_widths(len(shape), pad_width)))):
        n = shape[ax]
        moved = np.moveaxis(g, ax, 0)
        out = np.array(moved[before:before + n], dtype=np.result_type(g, float))
        edges = np.r_[0:before, before + n:before + n + after]
        if mode != "constant" and len(edges):
            if odd:
                matrix = np.pad(np.eye(n), ((before, after), (0, 0)), mode, reflect_type="odd")[edges]
                out += np.tensordot(matrix, moved[edges], axes=([0], [0]))
            else:
                np.add.at(out, np.pad(np.arange(n), (before, after), mode)[edges], moved[edges])
        g = np.moveaxis(out, 0, ax)
    return g


def pad_constant_grad(g, array, pad_width, constant_values):
    """Adjoint of ``np.pad(array, pad_width, 'constant', constant_values=...)`` with respect to the constants: the
    sum of ``g`` over the region each (axis, side) fills — found by padding with labels, so that corners go to the
    axis numpy fills them with — summed back to the shape ``constant_values`` was given in."""
    nd = np.ndim(array)
    labels = np.arange(1, 2 * nd + 1).reshape(nd, 2)
    region = np.pad(np.zeros(np.shape(array), dtype=int), pad_width, "constant", constant_values=labels)
    g = np.broadcast_to(g, region.shape)
    sums = np.bincount(region.ravel(), weights=g.ravel(), minlength=2 * nd + 1)[1:].reshape(nd, 2)
    return unbroadcast(sums, constant_values)


def _check_pad_mode(mode):
    if not (isinstance(mode, str) and mode in PAD_MODES):
        raise ValueError(f"srcgrad: np.pad is differentiated for mode {', '.join(map(repr, PAD_MODES))}, not "
                         f"{mode!r}")


def _pad_widths(ndim, pad_width):
    """``pad_width`` in any form numpy takes, as one ``(before, after)`` pair per axis (read from padding an array
    of one element per axis)."""
    mark = np.pad(np.ones((1,) * ndim, dtype=bool), pad_width, "constant")
    pairs = []
    for ax in range(ndim):
        rows = np.any(mark, axis=tuple(i for i in range(ndim) if i != ax))
        before = int(np.argmax(rows))
        pairs.append((before, mark.shape[ax] - 1 - before))
    return pairs


def partition_source(a, ans, axis):
    """Where each element of ``ans = np.partition(a, kth, axis)`` comes from (indices along ``axis``; into the
    flattened ``a`` when ``axis`` is None). Equal values are matched in order — the first of them in ``ans`` to the
    first in ``a`` — which is where np.sort's stable order sends them."""
    if axis is None:
        a, axis = np.ravel(a), -1
    from_output = np.argsort(ans, axis=axis, kind="stable")
    from_input = np.argsort(a, axis=axis, kind="stable")
    source = np.empty_like(from_output)
    np.put_along_axis(source, from_output, from_input, axis)
    return source


def partition_grad(g, a, ans, axis):
    """Adjoint of ``np.partition``: ``g`` sent back to where each element came from (:func:`partition_source`)."""
    out = np.zeros(_size(a) if axis is None else np.shape(a), dtype=np.result_type(g, float))
    np.put_along_axis(out, partition_source(a, ans, axis), as_array(g), -1 if axis is None else axis)
    return np.reshape(out, np.shape(a))


def select_masks(condlist, shape):
    """Where ``np.select`` takes each choice (the first true condition wins), and where it takes the default."""
    taken = np.zeros(shape, dtype=bool)
    masks = []
    for cond in condlist:
        cond = np.broadcast_to(as_array(cond, bool), shape)
        masks.append(cond & ~taken)
        taken = taken | cond
    return masks, ~taken


def select_grad(g, condlist, choicelist, default, which):
    """Adjoint of ``np.select(condlist, choicelist, default)`` with respect to the choices (``which=0``, one adjoint
    per choice) or the default: ``g`` where each is taken, 0 elsewhere (as ``np.where``), summed over broadcasting."""
    g = as_array(g)
    masks, rest = select_masks(condlist, g.shape)
    if which == 1:
        return unbroadcast(np.where(rest, g, 0.0), default)
    return parts_grad([unbroadcast(np.where(m, g, 0.0), c) for m, c in zip(masks, choicelist)], choicelist)


NAN_TO_NUM_IN_PLACE = ("np.nan_to_num(x, copy=False) replaced the values of x in place, so where they were NaN or "
                       "infinite is not known any more; pass copy=True (the default)")


def nan_to_num_grad(g, ans, x, which):
    """Adjoint of ``np.nan_to_num(x, copy, nan, posinf, neginf)`` with respect to ``x`` (``which='x'``: ``g`` where
    ``x`` is finite) or a replacement value (the sum of ``g`` where it was used)."""
    if ans is x and isinstance(x, np.ndarray):
        raise ValueError("srcgrad: " + NAN_TO_NUM_IN_PLACE)
    x = as_array(x)
    if which == "x":
        return np.where(np.isfinite(x), g, 0.0)
    used = {"nan": np.isnan, "posinf": np.isposinf, "neginf": np.isneginf}[which](x)
    return np.sum(np.where(used, g, 0.0))


def nan_to_num_tangent(ans, x, x_dot, nan_dot, posinf_dot, neginf_dot):
    """Tangent of ``np.nan_to_num``: ``x_dot`` where ``x`` is finite, each replacement's tangent where it is used."""
    if ans is x and isinstance(x, np.ndarray):
        raise ValueError("srcgrad: " + NAN_TO_NUM_IN_PLACE)
    x = as_array(x)
    return (np.where(np.isfinite(x), x_dot, 0.0) + np.where(np.isnan(x), nan_dot, 0.0)
            + np.where(np.isposinf(x), posinf_dot, 0.0) + np.where(np.isneginf(x), neginf_dot, 0.0))


def _logspace_base(start, stop, base, axis):
    """``base`` as np.logspace uses it: broadcast with the ends, with the samples' axis inserted (an array base)."""
    if not isinstance(base, (float, int)) and np.ndim(base):
        ndmax = np.broadcast(start, stop, base).ndim
        return np.expand_dims(np.array(base, ndmin=ndmax), axis)
    return base


def logspace_grad(g, ans, start, stop, num, endpoint, base, axis, which):
    """Adjoint of ``np.logspace`` (``base ** linspace(start, stop)``) with respect to ``start`` (``which=0``),
    ``stop`` (1) or ``base`` (2): ``d/dy base**y = ans log(base)``, ``d/dbase = ans y / base``. An integer result
    has no gradient."""
    b = _logspace_base(start, stop, base, axis)
    value = as_array(ans, float)
    g = cast_grad(g, ans.dtype)
    if which < 2:
        return linspace_grad(g * value * np.log(b), ans, which, num, endpoint, axis)
    y = np.linspace(start, stop, num, endpoint, axis=axis)
    return np.reshape(unbroadcast(g * value * y / b, b), np.shape(base))


def logspace_tangent(ans, start, stop, num, endpoint, base, axis, start_dot, stop_dot, base_dot):
    """Tangent of ``np.logspace`` (see :func:`logspace_grad`)."""
    b = _logspace_base(start, stop, base, axis)
    value = as_array(ans, float)
    y_dot = np.linspace(start_dot, stop_dot, num, endpoint, axis=axis)
    y = np.linspace(start, stop, num, endpoint, axis=axis)
    b_dot = _logspace_base(start, stop, base_dot, axis) if np.ndim(base) else base_dot
    return cast_grad(value * (np.log(b) * y_dot + y / b * b_dot), ans.dtype)


def _geomspace_end(end, start, stop, ans, axis):
    """``start`` or ``stop`` broadcast like np.geomspace's samples, with their axis inserted."""
    shape = np.broadcast_shapes(np.shape(start), np.shape(stop))
    return np.expand_dims(np.broadcast_to(end, shape), axis % np.ndim(ans))


def geomspace_grad(g, ans, start, stop, num, endpoint, axis, which):
    """Adjoint of ``np.geomspace``, whose samples are ``start**(1 - t) stop**t`` (signs apart, which must agree):
    ``d/dstart = (1 - t) ans / start`` and ``d/dstop = t ans / stop``. An integer result has no gradient."""
    end = _geomspace_end(stop if which else start, start, stop, ans, axis)
    return linspace_grad(g * (as_array(ans, float) / end), ans, which, num, endpoint, axis)


def geomspace_tangent(ans, start, stop, num, endpoint, axis, start_dot, stop_dot):
    """Tangent of ``np.geomspace`` (see :func:`geomspace_grad`)."""
    value = as_array(ans, float)
    shape = [1] * value.ndim
    shape[axis % value.ndim] = num
    t = np.reshape(np.linspace(0.0, 1.0, num, endpoint=endpoint), shape)
    def along(v):
        return _geomspace_end(v, start, stop, ans, axis)

    rate = (1.0 - t) * along(start_dot) / along(start) + t * along(stop_dot) / along(stop)
    return cast_grad(value * rate, ans.dtype)
def extreme_items_grad(g, ans, iterable):
    """Adjoint of ``max(iterable)``/``min(iterable)`` (and of ``max(a, b, c)``, whose items are a tuple): ``g`` shared
    equally by the ``k`` items equal to the result (``1/k`` each, as for ``np.max``); when none equals it (a NaN),
    all of it goes to the item returned."""
    if isinstance(iterable, (tuple, list)):
        ties = [bool(item == ans) for item in iterable]
        if not any(ties):
            ties = [item is ans for item in iterable]
        share = g / max(sum(ties), 1)
        return SeqGrad(share if tie else 0.0 * g for tie in ties)
    items = as_array(iterable)
    ties = items == ans
    if not ties.any():
        ties = np.isnan(items) & np.isnan(ans) if np.isnan(ans) else ties
    return np.where(ties, g / max(int(np.count_nonzero(ties)), 1), 0.0 * g)


def extreme_items_tangent(iterable_dot, ans, iterable):
    """Tangent of ``max(iterable)``/``min(iterable)``: the mean of the tangents of the items equal to the result."""
    shares = extreme_items_grad(1.0, ans, iterable)
    return sum(share * dot for share, dot in zip(shares, iterable_dot))


# --- forward mode -----------------------------------------------------------------------------------------------


def zero_list(xs):
    """Zero tangents for the elements of a list (a new, mutable list)."""
    return [zeros_like(v) for v in xs]


def as_tuple(x):
    """A sequence tangent as a plain tuple."""
    return tuple(x)


def cholesky_jvp(L, a_dot):
    """Tangent of ``L = cholesky(A)``: ``L @ phi(L^-1 A_dot L^-T)``, phi keeping the lower triangle and half the
    diagonal (A_dot symmetrised: numpy reads the lower triangle of A)."""
    a_dot = np.tril(a_dot) + np.swapaxes(np.tril(a_dot, -1), -1, -2)
    left = np.linalg.solve(L, a_dot)
    inner = np.swapaxes(np.linalg.solve(L, np.swapaxes(left, -1, -2)), -1, -2)
    phi = np.tril(inner, -1) + 0.5 * inner * np.eye(L.shape[-1])
    return L @ phi


def cumprod_tangent(a, a_dot, axis):
    """Tangent of ``np.cumprod(a, axis)``, exact with zeros in ``a``: out[i] = sum over k <= i of
    a_dot[k] * prod(a[j] for j <= i, j != k)."""
    a = as_array(a, float)
    a_dot = np.broadcast_to(as_array(a_dot, float), a.shape)
    if axis is None:
        return cumprod_tangent(a.ravel(), a_dot.ravel(), 0)
    a = np.moveaxis(a, axis, 0)
    d = np.moveaxis(a_dot, axis, 0)
    out = np.zeros_like(a)
    before = np.ones_like(a[0])
    for k in range(a.shape[0]):
        term = d[k] * before
        out[k] = out[k] + term
        for i in range(k + 1, a.shape[0]):
            term = term * a[i]
            out[i] = out[i] + term
        before = before * a[k]
    return np.moveaxis(out, 0, axis)


def check_scalar_argument(x):
    """Second derivatives along 1.0 (grad of grad) need a scalar parameter."""
    if np.ndim(x) != 0:
        raise ValueError("srcgrad: grad(grad(f)) needs a scalar parameter; use srcgrad.hessian or srcgrad.hvp "
                         f"for arrays (got shape {np.shape(x)})")


def check_equal_lengths(*lengths):
    """``zip(..., strict=True)``: raise ValueError, as Python does, when the iterables' lengths differ."""
    for i, n in enumerate(lengths[1:], start=2):
        if n != lengths[0]:
            before = "argument 1" if i == 2 else f"arguments 1-{i - 1}"
            raise ValueError(f"zip() argument {i} is {'shorter' if n < lengths[0] else 'longer'} than {before}")


def check_unpacks(value, n):
    """A loop target ``for a, b in items``: Python raises ValueError unless each item has exactly ``n`` values."""
    got = len(value)
    if got != n:
        raise ValueError(f"too many values to unpack (expected {n})" if got > n
                         else f"not enough values to unpack (expected {n}, got {got})")


def integer_start(start):
    """``enumerate(xs, start)``: Python takes an integer start only (TypeError otherwise)."""
    try:
        return start.__index__()
    except AttributeError:
        raise TypeError(f"'{type(start).__name__}' object cannot be interpreted as an integer") from None


def items_length(seq):
    """``for v in seq`` over what a call srcgrad runs as written returned (``dict(cfg)``, ``cfg.keys()``): the loop
    reads ``seq[0], seq[1], ...``, the items Python visits only for a sequence or an array. A dict's are its keys,
    and a set, a dict view or an iterator has none by index: refused."""
    if isinstance(seq, (dict, set, frozenset)) or hasattr(seq, "__next__") or not hasattr(type(seq), "__getitem__"):
        raise ValueError(f"srcgrad: this loop walks a {type(seq).__name__}, and srcgrad's loops visit the items of a "
                         "sequence or an array by index (of a dict they would be its values, not its keys); loop "
                         "over a list made of it: `for k in list(d)`, `for k, v in list(d.items())`")
    return len(seq)


def array_receiver(value):
    """``v.sum(...)``, ``v.dot(...)`` where ``v`` is what an attribute srcgrad reads as written holds (``self.agg`` of
    an object with ``__slots__``): numpy's rule for the method holds only if ``v`` is an array; an object's own
    ``.sum`` (a module's, a class's) is refused."""
    if not (isinstance(value, (np.ndarray, np.generic)) or foreign_array(value)):
        raise ValueError(f"srcgrad: this method is called on a {type(value).__name__}, not an array, and srcgrad "
                         "differentiates methods named like ndarray's (.sum, .dot...) by numpy's rules; call a numpy "
                         "function with a rule (np.sum(v)), or make the object a dataclass whose methods srcgrad reads")


def check_walked_argument(value, attrs, sequence, text, filename, line, col):
    """What a loop walks in an argument (``value``, or its attribute ``value.a.b`` for ``attrs`` ("a", "b")) is a
    sequence (an instance of ``sequence``, collections.abc.Sequence) or an array: srcgrad's loops read the items by
    index. The twin of srcgrad.structures.check_iterated (which refuses at the call), for modules written by
    ``srcgrad emit``, whose function is called with any arguments: a ValueError at the loop's line."""
    item = value
    for attr in attrs:  # (not through a property: its code runs in the generated function, not here)
        item = None if isinstance(getattr(type(item), attr, None), property) else getattr(item, attr, None)
    if isinstance(item, (sequence, np.ndarray)) or foreign_array(item) or not hasattr(type(item), "__iter__"):
        return  # (not iterable at all: Python's TypeError, as srcgrad's)
    message, hint = walked_argument_text(text, item)
    raise ValueError(f"{_short(filename)}:{line}:{col + 1}: {message}; {hint}")


def check_array_argument(value, name, filename, line, col):
    """A parameter whose attributes the function reads (``h.sum(v)``, ``cfg.W``), in a module written by ``srcgrad
    emit`` without an example of a structure there: its code reads them as written (``.sum`` and ``.dot`` as an
    array's, checked where they run when the attribute is what an object holds). In-process, a module, a class, a
    dataclass, a namedtuple or an object with attributes (``__dict__``) is read as a structure instead: refused."""
    if isinstance(value, type):
        structure = value.__module__ != "builtins" and not issubclass(value, (np.generic, np.ndarray))
    else:
        kind = type(value)
        structure = isinstance(value, type(math)) or hasattr(kind, "__dataclass_fields__") or (
            isinstance(value, tuple) and hasattr(kind, "_fields")) or (
            hasattr(value, "__dict__") and kind.__module__ != "builtins"
            and not isinstance(value, (np.ndarray, np.generic)) and not foreign_array(value))
    if structure:
        raise ValueError(f"{_short(filename)}:{line}:{col + 1}: `{name}` is a {type(value).__name__}, which srcgrad "
                         f"reads as a structure, and this module was written for other values there (it reads "
                         f"`{name}.<attribute>` as written); emit it with example arguments of this kind "
                         "(srcgrad emit --args, emit(..., example=...))")


def walked_argument_text(text, item):
    """The message and the hint that refuse a loop over ``text`` (``d``, ``cfg.names``), which holds ``item``."""
    return (f"`{text}` is a {type(item).__name__}: srcgrad's loops visit the items of a sequence or an array by index, "
            "and would not visit what Python visits in this one",
            f"loop over a list made of it: `for k in list({text})`, `for k, v in list({text}.items())`")


# The checks lowered loops call (srcgrad binds them by name): the errors they raise are the user's, as Python raises
# them for the loop — or srcgrad's refusals (REFUSING_CHECKS: ValueError("srcgrad: ...")).
REFUSING_CHECKS = (items_length, array_receiver)
LOOP_CHECKS = (check_equal_lengths, check_unpacks, integer_start, *REFUSING_CHECKS)


# --- item assignment --------------------------------------------------------------------------------------------


def setitem(x, index, value):
    """``x[index] = value`` as a value: a copy of ``x`` with the item replaced (generated code never writes into an
    array that another variable of the forward sweep still holds)."""
    if isinstance(x, (list, tuple)):
        out = list(x)
    elif foreign_array(x) or foreign_array(value):  # the library's own item assignment (Dask: lazy)
        out = _foreign_copy(x, np.result_type(x, value))
    else:
        out = np.array(x, dtype=np.result_type(x, value), copy=True)
    out[index] = value
    return out


def _foreign_copy(x, dtype):
    """A new array of ``dtype`` with ``x``'s values, of the library of ``x`` (of numpy when ``x`` is numpy's)."""
    if foreign_array(x):  # (Dask's astype returns the array itself for its own dtype; its item assignment changes
        return x.astype(dtype).copy()  # the array object: a new object keeps x as it was)
    return np.array(x, dtype=dtype, copy=True)


def setitem_rest_grad(g, index):
    """Adjoint of ``setitem(x, index, v)`` with respect to ``x``: ``g`` with the overwritten items zeroed."""
    if isinstance(g, (list, tuple)):
        parts = list(g)
        parts[index] = zeros_like(parts[index])
        return SeqGrad(parts)
    out = _foreign_copy(g, np.result_type(g, float))
    out[index] = 0.0
    return out


def setitem_value_grad(g, index, value):
    """Adjoint of ``setitem(x, index, v)`` with respect to ``v``: the written items of ``g``, summed to v's shape
    (a value broadcast into a slice, a scalar written to many places). An index that names one place twice
    (``y[[0, 0]] = v``) keeps the last write there, as numpy does: the earlier ones get no gradient."""
    if isinstance(g, (list, tuple)):
        return unbroadcast(g[index], value)
    written = as_array(g)[index]
    if _advanced(index):
        written = written * _last_writes(np.shape(g), index)
    return unbroadcast(written, value)


def _advanced(index):
    """Does ``index`` hold an integer array or list (numpy's advanced indexing: the same place may come twice)?"""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) and np.asarray(p).dtype.kind in "iu" for p in parts)


def _last_writes(shape, index):
    """For each item ``x[index] = v`` writes, whether it is the last write to its place."""
    places = np.reshape(np.arange(math.prod(shape)), shape)[index]
    flat = np.ravel(places)
    _, first_from_end = np.unique(flat[::-1], return_index=True)
    if len(first_from_end) == flat.size:
        return 1.0  # every place once
    last = np.zeros(flat.size, dtype=bool)
    last[flat.size - 1 - first_from_end] = True
    return np.reshape(last, np.shape(places))


def solve_tangent(a, a_dot, b, b_dot, x):
    """Tangent of ``x = np.linalg.solve(a, b)``: solve(a, b_dot - a_dot @ x), with numpy's rule that a 1-D ``b`` is
    one vector (also against a stack of matrices)."""
    if np.ndim(b) == 1:
        rhs = b_dot - np.matmul(a_dot, x[..., None])[..., 0]
        return np.linalg.solve(a, rhs[..., None])[..., 0]
    return np.linalg.solve(a, b_dot - np.matmul(a_dot, x))


def check_unshared(value, filename, line, col, helper=""):
    """Before ``y += v`` (or a call of ``helper``, which does that to its argument ``value``) where another name may
    share y: Python would update an array (or a list) in place, and the other name would see it; srcgrad computes a
    new one — so an array or a list is refused; numbers are rebound."""
    if isinstance(value, (np.ndarray, list)):
        message, hint = in_place_update_text(helper)
        raise ValueError(f"{_short(filename)}:{line}:{col + 1}: {message}; {hint}")


def _short(filename):
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def in_place_update_text(helper):
    """The message and the hint of :func:`check_unshared`."""
    what = f"`{helper}` changes its argument" if helper else "this update changes an array"
    return (f"{what} in place, and another name refers to the same array (an assignment `y = x`, or a view such as "
            "`x[1:]` or `x.T`): srcgrad computes a new array instead, so the other name would not see the update",
            "copy first (`y = x.copy()`), or build a new array (`y = y + value`, np.where)")


def check_distinct(written, other, written_name, other_name, filename, line, col):
    """Before a write into the argument ``written`` when ``other`` (another argument, or a global) is read after it:
    srcgrad computes a new array, so the two must not be one array or views of one buffer (``f(a, a)``)."""
    if isinstance(written, (np.ndarray, list)) and shares_memory(written, other, 3):
        message, hint = shared_arguments_text(written_name, other_name)
        raise ValueError(f"{_short(filename)}:{line}:{col + 1}: {message}; {hint}")


def shared_arguments_text(written_name, other_name):
    """The message and the hint of :func:`check_distinct`."""
    return (f"`{written_name}` and `{other_name}` share memory in this call (the same array, or views of one), and "
            f"this line changes `{written_name}` in place: in Python `{other_name}` would see the change, srcgrad "
            "computes a new array, so it would not",
            f"pass separate arrays (e.g. `{other_name}.copy()`), or copy inside the function "
            f"(`{written_name} = {written_name}.copy()`) before changing it")


def shares_memory(a, b, depth):
    """Are ``a`` and ``b`` one object, arrays over overlapping memory, or does one hold the other (lists, tuples)?"""
    if a is b:
        return True
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if not np.may_share_memory(a, b):  # the bounds do not overlap: cheap and certain
            return False
        try:
            return bool(np.shares_memory(a, b, max_work=10_000))
        except Exception:  # noqa: BLE001 - numpy's TooHardError (its module moved between versions): assume so
            return True
    if depth and isinstance(a, (list, tuple)):
        return any(shares_memory(item, b, depth - 1) for item in a)
    if depth and isinstance(b, (list, tuple)):
        return any(shares_memory(a, item, depth - 1) for item in b)
    return False


PARTIAL_WITH = ("the `with` block ended early: its context manager suppressed an exception, and srcgrad cannot "
                "differentiate a block that ran in part")
PARTIAL_WITH_HINT = "catch the exception with try/except instead (srcgrad follows the path a try statement takes)"


def check_completed(done, filename, line, col):
    """After a ``with`` block whose manager may suppress an exception (contextlib.suppress, a user's manager):
    ``done`` is False when the block did not run to its end."""
    if not done:
        short = filename.replace("\\", "/").rsplit("/", 1)[-1]
        raise RuntimeError(f"{short}:{line}:{col + 1}: {PARTIAL_WITH}; {PARTIAL_WITH_HINT}")


def power_base_grad(x, y):
    """d(x ** y)/dx = y * x ** (y - 1), and 0 where y == 0 (also at x == 0, where the formula gives 0 * inf)."""
    if np.ndim(y) == 0:
        return y * np.power(x, y - 1.0) if y != 0 else 0.0 * as_array(x, float)
    y = as_array(y)
    safe = np.where(y == 0, 1.0, y)
    return np.where(y == 0, 0.0, safe * np.power(x, safe - 1.0))


# --- math and numpy: products of sequences, gamma functions, integration, polynomials ------------------------------


def digamma(x):
    """The digamma function psi = Gamma'/Gamma of a Python float (the math module has none): the recurrence
    psi(x) = psi(x + 1) - 1/x up to x >= 10, then the asymptotic series (error below 1e-13); reflection for x < 0."""
    if x <= 0.0 and x == math.floor(x):
        return math.nan  # a pole of Gamma
    if x < 0.0:
        return digamma(1.0 - x) - math.pi / math.tan(math.pi * x)
    shift = 0.0
    while x < 10.0:
        shift -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 / 132))))
    return shift + math.log(x) - 0.5 / x - series


def math_prod_grad(g, iterable, start):
    """Adjoint of ``math.prod(iterable, start=start)`` for the elements: each gets ``g`` times the product of
    ``start`` and the others (exclusive prefix and suffix products: exact with zeros)."""
    values = list(iterable)
    prefix = [start]
    for v in values[:-1]:
        prefix.append(prefix[-1] * v)
    suffix = [1]
    for v in reversed(values[1:]):
        suffix.append(suffix[-1] * v)
    suffix.reverse()
    parts = [g * p * q for p, q in zip(prefix, suffix)]
    if isinstance(iterable, (tuple, list)):
        return SeqGrad(parts)
    return np.reshape(np.stack(parts), np.shape(iterable)) if parts else np.zeros(np.shape(iterable))


def math_prod_start_grad(g, iterable):
    """Adjoint of ``math.prod(iterable, start=start)`` for ``start``: the product of the elements."""
    product = 1
    for v in iterable:
        product = product * v
    return g * product


def math_prod_tangent(iterable_dot, start_dot, iterable, start):
    """Tangent of ``math.prod(iterable, start=start)``: each element's tangent times the product of the others."""
    partials = math_prod_grad(1.0, iterable, start)
    tangent = 0.0
    for d, p in zip(iterable_dot, partials):
        tangent = tangent + d * p
    if start_dot is not None:
        tangent = tangent + start_dot * math_prod_start_grad(1.0, iterable)
    return tangent


def _trapezoid_widths(y, x, dx, axis):
    """The interval widths along ``axis`` (an array broadcasting against the intervals of ``y``, or ``dx``)."""
    if x is None:
        return dx
    x = as_array(x, float)
    d = np.diff(x, axis=axis if x.ndim > 1 else -1)
    if x.ndim == 1:
        shape = [1] * np.ndim(y)
        shape[axis] = d.shape[0]
        d = d.reshape(shape)
    return d


def trapezoid_grad_y(g, y, x, dx, axis):
    """Adjoint of ``np.trapezoid(y, x, dx, axis)`` for ``y``: each sample weighs half its two intervals."""
    y = as_array(y, float)
    widths = np.broadcast_to(_trapezoid_widths(y, x, dx, axis),
                             y.shape[:axis % y.ndim] + (y.shape[axis] - 1,) + y.shape[axis % y.ndim + 1:])
    pad = [(0, 0)] * y.ndim
    before, after = list(pad), list(pad)
    before[axis] = (1, 0)
    after[axis] = (0, 1)
    weights = 0.5 * (np.pad(widths, before) + np.pad(widths, after))
    return np.expand_dims(g, axis) * weights


def trapezoid_grad_x(g, y, x, axis):
    """Adjoint for the sample points ``x`` (1-D along ``axis``, or shaped like ``y``): interval i has width
    x[i+1] - x[i] and height (y[i] + y[i+1]) / 2."""
    y = as_array(y, float)
    heights = 0.5 * (np.take(y, range(1, y.shape[axis]), axis=axis) + np.take(y, range(y.shape[axis] - 1), axis=axis))
    per_interval = np.expand_dims(g, axis) * heights
    pad = [(0, 0)] * y.ndim
    before, after = list(pad), list(pad)
    before[axis] = (1, 0)
    after[axis] = (0, 1)
    full = np.pad(per_interval, before) - np.pad(per_interval, after)
    if np.ndim(x) == 1:
        return np.sum(np.moveaxis(full, axis, -1).reshape(-1, y.shape[axis]), axis=0)
    return unbroadcast(full, x)


def trapezoid_grad_dx(g, y, axis):
    """Adjoint for the spacing ``dx``: the sum of the interval heights."""
    y = as_array(y, float)
    inner = np.sum(y, axis=axis) - 0.5 * (np.take(y, 0, axis=axis) + np.take(y, -1, axis=axis))
    return np.sum(g * inner)


def polyval_grad_p(g, p, x):
    """Adjoint of ``np.polyval(p, x)`` for the coefficients (highest power first): sum of g * x**k."""
    n = np.shape(p)[0]
    powers = as_array(x, float)[..., None] ** np.arange(n - 1, -1, -1)
    return np.reshape(np.sum(as_array(g)[..., None] * powers, axis=tuple(range(powers.ndim - 1))), np.shape(p))


def polyval_tangent(p_dot, x_dot, p, x):
    p = as_array(p, float)
    return np.polyval(np.broadcast_to(p_dot, p.shape), x) + np.polyval(np.polyder(p), x) * x_dot

