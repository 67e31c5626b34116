"""The compiled twins of the names generated code calls, for the numba backend (srcgrad/numba_backend.py).

In: the objects a generated function's text binds (``scope.bound``: builtins such as ``reversed``, srcgrad's runtime
helpers). Out: :func:`twin` — the object numba's nopython mode compiles in its place, under the same name, so the
text users read (``srcgrad.source``) is the text numba compiles.
What holds:
- each twin computes what its runtime helper computes (srcgrad/runtime.py) for the argument types it accepts; it is
  chosen by numba at compile time from those types (``numba.extending.overload``), and where a combination is not
  covered numba reports a typing error (the backend turns it into a SrcgradError naming the user's line), never a
  different result;
- importing this module imports numba (only the numba backend does), and teaches numba two things about ranges that
  the reverse sweep needs: a range is true when it is not empty, and a range sliced ``r[:k]`` is a range.
"""

from __future__ import annotations

import operator
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload

from srcgrad import runtime

# --- ranges: reversed, truth, slices -------------------------------------------------------------------------------


@numba.njit(cache=False)
def reversed_range(r):  # pragma: no cover - compiled
    """``reversed(r)`` of a range, as a range (numba has no reversed iterator)."""
    return range(r.start + (len(r) - 1) * r.step, r.start - r.step, -r.step)


@overload(bool)
def _range_truth(r):
    if isinstance(r, types.RangeType):
        return lambda r: len(r) > 0
    return None


@overload(operator.getitem)
def _range_slice(r, s):
    if isinstance(r, types.RangeType) and isinstance(s, types.SliceType):
        def impl(r, s):
            start, stop, step = s.indices(len(r))
            return range(r.start + start * r.step, r.start + stop * r.step, r.step * step)
        return impl
    return None


# --- adjoint helpers -----------------------------------------------------------------------------------------------


def _is_array(t: Any) -> bool:
    return isinstance(t, types.Array)


def _is_number(t: Any) -> bool:
    return isinstance(t, (types.Float, types.Integer, types.Boolean))


def _float_dtype(t: Any) -> Any:
    """The numpy dtype of the adjoint of a value of numba type ``t``: its float dtype, float64 otherwise."""
    dtype = t.dtype if _is_array(t) else t
    return np.dtype(str(dtype)).type if isinstance(dtype, types.Float) else np.float64


def unbroadcast(g, x):  # pragma: no cover - a name for numba; runtime.unbroadcast runs in Python
    return runtime.unbroadcast(g, x)


@overload(unbroadcast)
def _unbroadcast(g, x):
    if _is_number(x):
        if _is_array(g):
            return lambda g, x: np.sum(g)
        return lambda g, x: g
    if not (_is_array(x) and _is_array(g)) or g.ndim < x.ndim or x.ndim > 2:
        return None
    if g.ndim == x.ndim == 1:
        def same1(g, x):
            if g.shape[0] == x.shape[0]:
                return g
            return np.full(1, np.sum(g))
        return same1
    if g.ndim == 2 and x.ndim == 1:
        def lead1(g, x):
            s = np.sum(g, axis=0)
            if s.shape[0] == x.shape[0]:
                return s
            return np.full(1, np.sum(s))
        return lead1
    if g.ndim == x.ndim == 2:
        def same2(g, x):
            if g.shape[0] == x.shape[0] and g.shape[1] == x.shape[1]:
                return g
            s = g
            if x.shape[0] == 1 and g.shape[0] != 1:
                s = np.sum(s, axis=0).reshape((1, s.shape[1]))
            if x.shape[1] == 1 and g.shape[1] != 1:
                s = np.sum(s, axis=1).reshape((s.shape[0], 1))
            return np.ascontiguousarray(s)
        return same2
    return None


def _match(g, x):  # the overload of match_grad/owned_grad: a fresh array of x's shape and float dtype, or a float
    if _is_number(x):
        if _is_array(g):
            return lambda g, x, *others: float(np.sum(g))
        return lambda g, x, *others: float(g)
    if not _is_array(x):
        return None
    dtype = _float_dtype(x)
    if _is_number(g):
        return lambda g, x, *others: np.full(x.shape, g, dtype)
    if _is_array(g) and g.ndim >= x.ndim:
        def fresh(g, x, *others):
            out = np.empty(x.shape, dtype)
            out[...] = unbroadcast(g, x)
            return out
        return fresh
    return None


def match_grad(g, x, *others):  # pragma: no cover - a name for numba (others: as owned_grad's, unused)
    return runtime.match_grad(g, x)


def owned_grad(g, x, *others):  # pragma: no cover - a name for numba
    return runtime.owned_grad(g, x, *others)


@overload(match_grad)
def _match_grad(g, x, *others):
    return _match(g, x)


@overload(owned_grad)
def _owned_grad(g, x, *others):
    return _match(g, x)  # (always a fresh array: numba cannot tell which arrays the code made)


def zeros_like(x):  # pragma: no cover - a name for numba
    return runtime.zeros_like(x)


@overload(zeros_like)
def _zeros_like(x):
    if _is_number(x):
        return lambda x: 0.0
    if _is_array(x):
        dtype = _float_dtype(x)
        return lambda x: np.zeros(x.shape, dtype)
    return None


def matmul_grad_left(g, x, y):  # pragma: no cover - a name for numba
    return runtime.matmul_grad_left(g, x, y)


def matmul_grad_right(g, x, y):  # pragma: no cover - a name for numba
    return runtime.matmul_grad_right(g, x, y)


@overload(matmul_grad_left)
def _matmul_grad_left(g, x, y):
    if not (_is_array(x) and _is_array(y)):
        return None
    shapes = (x.ndim, y.ndim)
    if shapes == (2, 1):
        return lambda g, x, y: np.outer(g, y)
    if shapes == (2, 2):
        return lambda g, x, y: g @ y.T
    if shapes == (1, 2):
        return lambda g, x, y: y @ g
    if shapes == (1, 1):
        return lambda g, x, y: g * y
    return None


@overload(matmul_grad_right)
def _matmul_grad_right(g, x, y):
    if not (_is_array(x) and _is_array(y)):
        return None
    shapes = (x.ndim, y.ndim)
    if shapes == (2, 1):
        return lambda g, x, y: g @ x
    if shapes == (2, 2):
        return lambda g, x, y: x.T @ g
    if shapes == (1, 2):
        return lambda g, x, y: np.outer(x, g)
    if shapes == (1, 1):
        return lambda g, x, y: g * x
    return None


def matmul_steps_grad(gs, x, ys, left):  # pragma: no cover - a name for numba
    return runtime.matmul_steps_grad(gs, x, ys, left)


@overload(matmul_steps_grad)
def _matmul_steps_grad(gs, x, ys, left):
    if not (_is_array(x) and x.ndim == 2):
        return None

    def steps(gs, x, ys, left):  # (compiled: the steps one by one cost what one stacked product does)
        total = np.zeros(x.shape)
        for i in range(len(gs)):
            if left:
                total += matmul_grad_left(gs[i], x, ys[i])
            else:
                total += matmul_grad_right(gs[i], ys[i], x)
        return total

    return steps


def power_base_grad(x, y):  # pragma: no cover - a name for numba
    return runtime.power_base_grad(x, y)


@overload(power_base_grad)
def _power_base_grad(x, y):
    if not _is_number(y):
        return None  # (an array exponent: not covered)
    if _is_array(x):
        return lambda x, y: y * np.power(x, y - 1.0) if y != 0 else 0.0 * x
    return lambda x, y: y * x ** (y - 1.0) if y != 0 else 0.0 * x


def uniform_to(g, x):  # pragma: no cover - a name for numba
    return runtime.uniform_to(g, x)


@overload(uniform_to)
def _uniform_to(g, x):
    if _is_number(x) or (_is_array(x) and _is_array(g) and g.ndim == x.ndim):
        return lambda g, x: g
    if _is_array(x) and _is_number(g):
        dtype = _float_dtype(x)
        return lambda g, x: np.full(x.shape, g, dtype)
    return None


def check_scalar_output(y, where):  # pragma: no cover - a name for numba
    return runtime.check_scalar_output(y, where)


def check_numeric_output(y, where):  # pragma: no cover - a name for numba
    return runtime.check_numeric_output(y, where)


def _real(t: Any) -> bool:
    dtype = t.dtype if _is_array(t) else t
    return isinstance(dtype, (types.Float, types.Integer, types.Boolean))


@overload(check_scalar_output)
def _check_scalar_output(y, where):
    if not _real(y):
        return None  # (numba names the type it cannot take)
    if _is_array(y) and y.ndim > 0:
        def refuse(y, where):
            raise ValueError("grad needs a scalar output, but the function returned an array; reduce the output "
                             "(e.g. np.sum), or emit a vjp instead")
        return refuse
    return lambda y, where: None


@overload(check_numeric_output)
def _check_numeric_output(y, where):
    return (lambda y, where: None) if _real(y) else None


# --- the table -----------------------------------------------------------------------------------------------------

_TWINS: dict[str, Any] = {  # by name: srcgrad.runtime's helpers and their in-process twins in srcgrad.checks
    "unbroadcast": unbroadcast, "match_grad": match_grad, "owned_grad": owned_grad, "zeros_like": zeros_like,
    "matmul_grad_left": matmul_grad_left, "matmul_grad_right": matmul_grad_right, "power_base_grad": power_base_grad,
    "matmul_steps_grad": matmul_steps_grad,
    "uniform_to": uniform_to, "check_scalar_output": check_scalar_output, "check_numeric_output": check_numeric_output,
}
_HOMES = ("srcgrad.runtime", "srcgrad.checks")


def twin(value: Any) -> Any:
    """What numba compiles in place of ``value`` (``value`` itself when numba knows it: ``np``, ``math``, ``range``);
    a runtime helper without a twin is compiled as it is (numba refuses it if it cannot)."""
    if value is reversed:
        return reversed_range
    if getattr(value, "__module__", None) not in _HOMES or not callable(value):
        return value
    found = _TWINS.get(getattr(value, "__name__", ""))
    return found if found is not None else numba.njit(value)
