"""Helpers that generated gradient code calls on array paths.

In: arrays and Python numbers flowing through generated code. Out: adjoints of the right shape and dtype.
What holds: this module imports only ``math`` and ``numpy`` so that ahead-of-time emitted modules can carry copies
of these functions and never import srcgrad. Float-only code paths never call into here (they are inlined).
"""

import numpy as np


def unbroadcast(g, x):
    """Sum ``g`` down to the shape of ``x``: undo numpy broadcasting (the one place srcgrad does it)."""
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


def restore_axes(g, x, axis, keepdims):
    """Broadcast the adjoint of a reduction over ``axis`` back to the shape of its input ``x``."""
    shape = np.shape(x)
    if not keepdims and axis is not None:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        ndim = len(shape)
        g = np.expand_dims(g, tuple(sorted(a % ndim for a in axes)))
    return np.broadcast_to(g, shape)


def reduced_count(x, ans):
    """How many elements of ``x`` each element of the reduction ``ans`` summarises."""
    return np.size(x) / max(np.size(ans), 1)


def matmul_grad_left(g, x, y):
    """Adjoint of ``x @ y`` with respect to ``x`` (1-D, 2-D and batched operands)."""
    if np.ndim(y) == 1:
        if np.ndim(x) == 1:
            return g * y
        return np.multiply.outer(g, y) if np.ndim(g) else g * y
    if np.ndim(x) == 1:
        return unbroadcast(np.matmul(y, g[..., None])[..., 0] if np.ndim(g) > 1 else y @ g, x)
    return unbroadcast(np.matmul(g, np.swapaxes(y, -1, -2)), x)


def matmul_grad_right(g, x, y):
    """Adjoint of ``x @ y`` with respect to ``y`` (1-D, 2-D and batched operands)."""
    if np.ndim(x) == 1:
        if np.ndim(y) == 1:
            return g * x
        return np.multiply.outer(x, g) if np.ndim(y) == 2 else unbroadcast(x[:, None] * g[..., None, :], y)
    if np.ndim(y) == 1:
        return unbroadcast(np.matmul(np.swapaxes(x, -1, -2), g[..., None])[..., 0], y)
    return unbroadcast(np.matmul(np.swapaxes(x, -1, -2), g), y)


def dot_grad_left(g, x, y):
    """Adjoint of ``np.dot(x, y)`` with respect to ``x`` (scalars, 1-D and 2-D operands)."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return unbroadcast(g * y, x)
    if np.ndim(x) > 2 or np.ndim(y) > 2:
        raise ValueError("srcgrad: np.dot gradient supports operands of at most 2 dimensions; use np.matmul")
    return matmul_grad_left(g, x, y)


def dot_grad_right(g, x, y):
    """Adjoint of ``np.dot(x, y)`` with respect to ``y`` (scalars, 1-D and 2-D operands)."""
    if np.ndim(x) == 0 or np.ndim(y) == 0:
        return unbroadcast(g * x, y)
    if np.ndim(x) > 2 or np.ndim(y) > 2:
        raise ValueError("srcgrad: np.dot gradient supports operands of at most 2 dimensions; use np.matmul")
    return matmul_grad_right(g, x, y)


def inverse_axes(axes):
    """The permutation that undoes ``np.transpose(x, axes)``."""
    return tuple(np.argsort(axes))


def zeros_like(x):
    """A zero adjoint shaped like ``x``: ``0.0`` for a Python number, a float array otherwise."""
    if isinstance(x, (float, int)):
        return 0.0
    x = np.asarray(x)
    return np.zeros(x.shape, dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def match_grad(g, x):
    """Give the adjoint ``g`` of argument ``x`` the type, shape and float dtype of ``x`` (a fresh, writable array)."""
    if isinstance(x, (float, int)):
        return float(g) if np.ndim(g) == 0 else float(np.sum(g))
    x_arr = np.asarray(x)
    dtype = x_arr.dtype if x_arr.dtype.kind == "f" else np.float64
    g = unbroadcast(g, x_arr)
    if isinstance(x, np.generic):
        return dtype.type(g)
    out = np.array(g, dtype=dtype, copy=True)
    return out.reshape(x_arr.shape)


def check_scalar_output(y, where):
    """``grad`` needs a scalar output: raise a clear error pointing to ``vjp`` otherwise."""
    if np.ndim(y) != 0:
        from srcgrad.errors import NonScalarOutput  # only reached on the error path

        raise NonScalarOutput(
            f"grad needs a scalar output, but {where} returned an array of shape {np.shape(y)}",
            hint="use srcgrad.vjp(f)(*args, seed) for non-scalar outputs, or reduce the output (e.g. np.sum)",
        )
    return y


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice, np.integer)) for p in parts)


def getitem_grad(g, x, index):
    """Adjoint of ``x[index]``: scatter ``g`` into zeros shaped like ``x`` (repeated fancy indices accumulate)."""
    g = np.asarray(g)
    dtype = g.dtype if g.dtype.kind == "f" else np.float64
    out = np.zeros(np.shape(x), dtype=dtype)
    if _is_basic_index(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out
