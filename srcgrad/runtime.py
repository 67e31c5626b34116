"""Helpers that generated gradient code calls on array paths.

In: arrays and Python numbers flowing through generated code. Out: adjoints of the right shape and dtype.
What holds: this module imports only ``math`` and ``numpy`` so that ahead-of-time emitted modules can carry copies
of these functions and never import srcgrad (tests/test_trust_emit.py parses it): its checks raise ``ValueError``;
their in-process twins, raising srcgrad's own errors, are in :mod:`srcgrad.checks`. Float-only code paths never
call into here (they are inlined).
Each helper is the adjoint of one numpy operation (or a piece of one); none of them undoes broadcasting of an
elementwise operation's operands — the adjoint stage does that, once, with :func:`unbroadcast`.
"""

import numpy as np

# --- plumbing: broadcasting, types, zeros -------------------------------------------------------------------------


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
    x = np.asarray(x)
    return np.zeros(x.shape, dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def uniform_to(g, x):
    """An adjoint that may be a number standing for an array filled with it, as an array of ``x``'s shape."""
    shape = np.shape(x)
    if not shape or (type(g) is np.ndarray and g.shape == shape):
        return g
    if isinstance(g, (float, int)):
        g = np.asarray(g, dtype=float_dtype(x))
    return np.broadcast_to(g, shape)


def match_grad(g, x):
    """Give the adjoint ``g`` of argument ``x`` the type, shape and float dtype of ``x`` (a fresh, writable array)."""
    if type(x) in (float, int, bool):
        return float(g) if np.ndim(g) == 0 else float(np.sum(g))
    if type(g) is np.ndarray and type(x) is np.ndarray and g.shape == x.shape and g.dtype == x.dtype \
            and g.dtype.kind == "f":
        return g.copy()  # the common case, without the general path's conversions
    x_arr = np.asarray(x)
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
    return match_grad(g, x)


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


def real_valued(y):
    if isinstance(y, (int, float)):
        return True
    return isinstance(y, (np.ndarray, np.generic)) and y.dtype.kind in "biuf"


def non_numeric_message(y, where):
    what = f"dtype {y.dtype}" if isinstance(y, (np.ndarray, np.generic)) else f"{type(y).__name__} {y!r:.40}"
    return f"{where} returned {what}, not a real number or array: it has no gradient"


def _non_numeric(y, where):
    raise TypeError(non_numeric_message(y, where) + "; return the number (or array) to differentiate")


def cast_grad(g, dtype):
    """Adjoint of a cast to ``dtype``: the gradient passes a cast to a float type, and is zero through a cast to an
    integer or boolean type (rounding is piecewise constant)."""
    if dtype is None or np.dtype(dtype).kind in "fc":
        return g
    return np.zeros(np.shape(g))


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


def clip_grad(g, ans, a, a_min, a_max):
    """Adjoint of ``np.clip`` with respect to ``a``: ``g`` where ``a`` is inside the bounds, half of it where ``a``
    equals a bound (a tie), zero outside. A bound of None is no bound."""
    inside = np.asarray(ans == a, dtype=float)
    for bound in (a_min, a_max):
        if bound is not None:
            inside = inside - 0.5 * ((a == bound) & (ans == bound))
    return g * inside


def clip_bound_grad(g, ans, a, bound):
    """Adjoint of ``np.clip`` with respect to one bound: ``g`` where the bound is the result, half at a tie."""
    at_bound = ans == bound
    return g * (at_bound * (1.0 - 0.5 * (a == bound)))


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
        g = np.asarray(g, dtype=float_dtype(x))
    if not keepdims and axis is not None:
        g = np.expand_dims(g, normalize_axes(axis, len(shape)))
    return np.broadcast_to(g, shape)


def reduced_count(x, ans):
    """How many elements of ``x`` each element of the reduction ``ans`` summarises."""
    return np.size(x) / max(np.size(ans), 1)


def extremum_grad(g, ans, a, axis, keepdims):
    """Adjoint of ``np.max``/``np.min``: ``g`` goes to the extreme elements, split equally among ties."""
    a = np.asarray(a)
    mask = a == restore_axes(ans, a, axis, keepdims)
    count = np.sum(mask, axis=normalize_axes(axis, a.ndim), keepdims=True)
    return restore_axes(g, a, axis, keepdims) * (mask / count)


def prod_grad(g, a, axis, keepdims):
    """Adjoint of ``np.prod``: each element gets the product of the others (computed without division, so zeros
    are handled exactly: products of exclusive prefix and suffix cumulative products)."""
    a = np.asarray(a)
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


def var_grad(g, a, axis, ddof, keepdims):
    """Adjoint of ``np.var(a, axis, ddof=ddof)``: ``2 (a - mean) / (N - ddof)``."""
    a = np.asarray(a)
    axes = normalize_axes(axis, a.ndim)
    n = np.prod([a.shape[i] for i in axes]) if axes else 1
    centred = a - np.mean(a, axis=axes, keepdims=True)
    return restore_axes(g, a, axis, keepdims) * centred * (2.0 / (n - ddof))


def std_grad(g, ans, a, axis, ddof, keepdims):
    """Adjoint of ``np.std``: the adjoint of var scaled by ``1 / (2 std)``, and 0 where std is 0. One element's std
    is identically 0; constant data's std grows like ``|t|`` along every direction ``t``, whose central difference
    is 0 (as for ``abs`` at 0)."""
    scale = np.divide(g, 2.0 * ans, out=np.zeros(np.shape(ans), dtype=np.result_type(g, ans, 1.0)), where=ans != 0)
    return var_grad(scale, a, axis, ddof, keepdims)


def _safe_divide(x, y):
    return np.divide(x, y, out=np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y))), where=y != 0)


def norm_grad(g, ans, x, ord, axis, keepdims):
    """Adjoint of ``np.linalg.norm``. Vectors: ord None/2, 1, inf, -inf and any other p (a zero vector gets a zero
    gradient); matrices (2-D with axis None, or a pair of axes): 'fro' (also ord None), 'nuc', 2, -2, 1, -1, inf, -inf.
    At ties (inf/1 orders) the gradient is split equally."""
    x = np.asarray(x)
    matrix = (axis is None and ord is not None and x.ndim == 2) or (
        axis is not None and not isinstance(axis, (int, np.integer)) and len(axis) == 2)
    g = restore_axes(g, x, axis, keepdims)
    r = restore_axes(ans, x, axis, keepdims)
    if ord is None or (matrix and ord == "fro") or (not matrix and ord == 2):
        return g * _safe_divide(x, r)
    sign = np.sign(x)
    if not matrix:
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
    rows, cols = (0, 1) if axis is None else tuple(int(a) % x.ndim for a in axis)
    if ord in ("nuc", 2, -2):
        m = np.moveaxis(x, (rows, cols), (-2, -1))
        u, _, vt = np.linalg.svd(m, full_matrices=False)
        if ord == "nuc":
            dm = u @ vt
        else:
            i = 0 if ord == 2 else -1  # singular values come sorted, largest first
            dm = u[..., :, i, None] @ vt[..., i, None, :]
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
    a = np.asarray(a)
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
    if nx == 2 and type(g) is np.ndarray:  # the common cases first, without helpers
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
    if nx == 2 and type(g) is np.ndarray:  # the common cases first, without helpers
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
    return np.transpose(r, np.argsort(perm))


def tensordot_grad_right(g, a, b, axes):
    """Adjoint of ``np.tensordot(a, b, axes)`` with respect to ``b``."""
    nda, ndb = np.ndim(a), np.ndim(b)
    a_axes, b_axes = _tensordot_axes(axes, nda, ndb)
    a_free = [i for i in range(nda) if i not in a_axes]
    b_free = [i for i in range(ndb) if i not in b_axes]
    r = np.tensordot(a, g, axes=(a_free, list(range(len(a_free)))))
    perm = [b_axes[a_axes.index(i)] for i in sorted(a_axes)] + b_free
    return np.transpose(r, np.argsort(perm))


def _dot_axes(x, y):
    return [np.ndim(x) - 1], [max(np.ndim(y) - 2, 0)]


def dot_grad_left(g, x, y):
    """Adjoint of ``np.dot(x, y)`` with respect to ``x`` (scalars, vectors, matrices, N-D: a tensordot)."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return unbroadcast(g * y, x)
    if np.ndim(x) <= 2 and np.ndim(y) <= 2:
        return matmul_grad_left(g, x, y)
    return tensordot_grad_left(g, x, y, _dot_axes(x, y))


def dot_grad_right(g, x, y):
    """Adjoint of ``np.dot(x, y)`` with respect to ``y``."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return unbroadcast(g * x, y)
    if np.ndim(x) <= 2 and np.ndim(y) <= 2:
        return matmul_grad_right(g, x, y)
    return tensordot_grad_right(g, x, y, _dot_axes(x, y))


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


def _einsum_subscripts(subscripts, n):
    if not isinstance(subscripts, str):
        raise ValueError("srcgrad: the gradient of np.einsum needs its subscripts as a string (or the sublist form "
                         "written with literal lists of integers)")
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise ValueError("srcgrad: the gradient of np.einsum does not support '...' in subscripts; name the axes")
    if "->" in spec:
        inputs, output = spec.split("->")
    else:  # implicit mode: the output is every letter that appears once, in alphabetical order
        inputs = spec
        letters = inputs.replace(",", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = inputs.split(",")
    if len(ins) != n:
        raise ValueError(f"srcgrad: einsum subscripts {subscripts!r} name {len(ins)} operands, got {n}")
    return ins, output


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
    a letter repeated in it (a diagonal, ``'ii->'``) gets ``g`` on that diagonal and zeros elsewhere."""
    ins, out = _einsum_subscripts(subscripts, len(operands))
    target = ins[which]
    shape = np.shape(operands[which])
    letters = "".join(dict.fromkeys(target))  # unique, in order of first appearance
    sizes = {c: shape[target.index(c)] for c in letters}
    others = [s for j, s in enumerate(ins) if j != which]
    available = set(out) | set("".join(others))
    present = "".join(c for c in letters if c in available)
    expr = ",".join([out] + others) + "->" + present
    r = np.einsum(expr, g, *[op for j, op in enumerate(operands) if j != which])
    missing = "".join(c for c in letters if c not in available)
    if missing:
        r = np.reshape(r, np.shape(r) + (1,) * len(missing))
        order = present + missing
        r = np.broadcast_to(np.transpose(r, [order.index(c) for c in letters]), [sizes[c] for c in letters])
    elif present != letters:
        r = np.transpose(r, [present.index(c) for c in letters])
    if len(letters) == len(target):
        return r
    full = np.zeros(shape, dtype=np.result_type(r, float))
    grid = np.indices(r.shape, sparse=True)
    full[tuple(grid[letters.index(c)] for c in target)] = r
    return full


def solve_grad_b(g, a, b):
    """Adjoint of ``x = np.linalg.solve(a, b)`` with respect to ``b``: ``solve(a.T, g)``."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(b) == 1:
        return unbroadcast(np.linalg.solve(at, np.asarray(g)[..., None])[..., 0], b)
    return unbroadcast(np.linalg.solve(at, g), b)


def solve_grad_a(g, ans, a, b):
    """Adjoint of ``x = np.linalg.solve(a, b)`` with respect to ``a``: ``-solve(a.T, g) x.T``."""
    at = np.swapaxes(a, -1, -2)
    if np.ndim(b) == 1:
        gb = np.linalg.solve(at, np.asarray(g)[..., None])[..., 0]
        return unbroadcast(-gb[..., :, None] * np.asarray(ans)[..., None, :], a)
    gb = np.linalg.solve(at, g)
    return unbroadcast(-gb @ np.swapaxes(ans, -1, -2), a)


def det_grad(g, ans, a):
    """Adjoint of ``np.linalg.det``: ``g det(a) inv(a).T`` (``a`` must be invertible)."""
    scale = np.asarray(g * ans)[..., None, None]
    return scale * np.swapaxes(np.linalg.inv(a), -1, -2)


def slogdet_grad(g, a):
    """Adjoint of ``np.linalg.slogdet`` (a pair ``(sign, logabsdet)``): ``g_logabsdet inv(a).T``; the sign is
    piecewise constant."""
    g_logdet = g[1]
    return np.asarray(g_logdet)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)


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


# --- shapes -------------------------------------------------------------------------------------------------------


def inverse_axes(axes):
    """The permutation that undoes ``np.transpose(x, axes)`` (None: reversing, its own inverse)."""
    if axes is None:
        return None
    return tuple(int(i) for i in np.argsort([a % len(axes) for a in axes]))


def concatenate_grad(g, arrays, axis):
    """Adjoint of ``np.concatenate(arrays, axis)``: ``g`` split back into one piece per array."""
    shapes = _element_shapes(arrays)
    if axis is None:
        sizes = [int(np.prod(s)) for s in shapes]
        parts = np.split(np.ravel(g), np.cumsum(sizes)[:-1])
    else:
        parts = np.split(g, np.cumsum([s[axis] for s in shapes])[:-1], axis=axis)
    return parts_grad(parts, arrays)


def stack_grad(g, arrays, axis):
    """Adjoint of ``np.stack(arrays, axis)``: the slices of ``g`` along ``axis``."""
    return parts_grad(list(np.moveaxis(g, axis, 0)), arrays)


def hstack_grad(g, tup):
    """Adjoint of ``np.hstack``: split along axis 0 (1-D inputs) or 1, each piece shaped like its input."""
    shapes = [np.shape(np.atleast_1d(a)) for a in tup]
    axis = 0 if len(shapes[0]) == 1 else 1
    return parts_grad(np.split(g, np.cumsum([s[axis] for s in shapes])[:-1], axis=axis), tup)


def vstack_grad(g, tup):
    """Adjoint of ``np.vstack``: split along axis 0, each piece shaped like its input."""
    shapes = [np.shape(np.atleast_2d(a)) for a in tup]
    return parts_grad(np.split(g, np.cumsum([s[0] for s in shapes])[:-1], axis=0), tup)


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
        g = np.asarray(g)
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
    g = np.asarray(g)
    dtype = g.dtype if g.dtype.kind == "f" else np.float64
    out = np.zeros(np.shape(x), dtype=dtype)
    if _is_basic_index(index) or _is_mask(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


def take_grad(g, a, indices, axis):
    """Adjoint of ``np.take(a, indices, axis)``: repeated indices accumulate."""
    out = np.zeros(np.shape(a), dtype=np.result_type(g, float))
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
    items = np.asarray(iterable)
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
    a = np.asarray(a, dtype=float)
    a_dot = np.broadcast_to(np.asarray(a_dot, dtype=float), a.shape)
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


# The checks lowered loops call (srcgrad binds them by name): the errors they raise are the user's, as Python raises
# them for the loop.
LOOP_CHECKS = (check_equal_lengths, check_unpacks, integer_start)


# --- item assignment --------------------------------------------------------------------------------------------


def setitem(x, index, value):
    """``x[index] = value`` as a value: a copy of ``x`` with the item replaced (generated code never writes into an
    array that another variable of the forward sweep still holds)."""
    out = list(x) if isinstance(x, (list, tuple)) else np.array(x, dtype=np.result_type(x, value), copy=True)
    out[index] = value
    return out


def setitem_rest_grad(g, index):
    """Adjoint of ``setitem(x, index, v)`` with respect to ``x``: ``g`` with the overwritten items zeroed."""
    if isinstance(g, (list, tuple)):
        parts = list(g)
        parts[index] = zeros_like(parts[index])
        return SeqGrad(parts)
    out = np.array(g, dtype=np.result_type(g, float), copy=True)
    out[index] = 0.0
    return out


def setitem_value_grad(g, index, value):
    """Adjoint of ``setitem(x, index, v)`` with respect to ``v``: the written items of ``g``, summed to v's shape
    (a value broadcast into a slice, a scalar written to many places)."""
    return unbroadcast(np.asarray(g)[index] if not isinstance(g, (list, tuple)) else g[index], value)


def solve_tangent(a, a_dot, b, b_dot, x):
    """Tangent of ``x = np.linalg.solve(a, b)``: solve(a, b_dot - a_dot @ x), with numpy's rule that a 1-D ``b`` is
    one vector (also against a stack of matrices)."""
    if np.ndim(b) == 1:
        rhs = b_dot - np.matmul(a_dot, x[..., None])[..., 0]
        return np.linalg.solve(a, rhs[..., None])[..., 0]
    return np.linalg.solve(a, b_dot - np.matmul(a_dot, x))


SHARED_UPDATE = (
    "this update changes an array in place, and another name refers to the same array (an assignment `y = x`, or a "
    "view such as `x[1:]` or `x.T`): srcgrad computes a new array instead, so the other name would not see the update"
)
SHARED_UPDATE_HINT = "copy first (`y = x.copy()`), or build a new array (`y = y + value`, np.where)"


def check_unshared(value, filename, line, col):
    """Before ``y += v`` / ``y[i] = v`` where another name may share y: Python would update an array in place (the
    other name sees it), srcgrad computes a new one — so an array is refused; numbers are simply rebound."""
    if isinstance(value, np.ndarray):
        short = filename.replace("\\", "/").rsplit("/", 1)[-1]
        raise ValueError(f"{short}:{line}:{col + 1}: {SHARED_UPDATE}; {SHARED_UPDATE_HINT}")


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
        return y * np.power(x, y - 1.0) if y != 0 else 0.0 * np.asarray(x, dtype=float)
    y = np.asarray(y)
    safe = np.where(y == 0, 1.0, y)
    return np.where(y == 0, 0.0, safe * np.power(x, safe - 1.0))
