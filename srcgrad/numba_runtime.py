"""The compiled twins of the names generated code calls, for the numba backend (srcgrad/numba_backend.py).

In: the objects a generated function's text binds (``scope.bound``: builtins such as ``reversed``, srcgrad's runtime
helpers). Out: :func:`twin` — the object numba's nopython mode compiles in its place, under the same name, so the
text users read (``srcgrad.source``) is the text numba compiles; and :data:`OVERLOADS`, the typing functions an
emitted module (``srcgrad emit --backend numba``) copies and registers for its own copies of the helpers.
What holds:
- each runtime helper with a twin here is taught to numba itself (``numba.extending.overload`` of the helper: of
  srcgrad.runtime's, of srcgrad.checks' in-process check of the same name, and of an emitted module's copy), so
  the name stays the helper; the twin computes what the helper computes (srcgrad/runtime.py) for the argument types
  it accepts, chosen by numba at compile time from those types, and where a combination is not covered numba
  reports a typing error (the backend turns it into a SrcgradError naming the user's line), never a different
  result;
- the typing functions (``_numba_*``) read only numba, numpy, ``operator``, each other and the runtime helpers
  (by their names), so an emitted module copies their text without srcgrad;
- importing this module imports numba (only the numba backend does), and teaches numba three things about ranges
  that the reverse sweep needs: ``reversed`` of a range is a range, a range is true when it is not empty, and a
  range sliced ``r[:k]`` is a range.
"""

from __future__ import annotations

import operator
from typing import Any

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from srcgrad import checks, runtime
from srcgrad.runtime import unbroadcast

# --- ranges: reversed, truth, slices -------------------------------------------------------------------------------


def _numba_reversed(r):
    """``reversed(r)`` of a range, as a range (numba has no reversed iterator)."""
    if isinstance(r, types.RangeType):
        return lambda r: range(r.start + (len(r) - 1) * r.step, r.start - r.step, -r.step)
    return None


def _numba_range_truth(r):
    if isinstance(r, types.RangeType):
        return lambda r: len(r) > 0
    return None


def _numba_range_slice(r, s):
    if isinstance(r, types.RangeType) and isinstance(s, types.SliceType):
        def impl(r, s):
            start, stop, step = s.indices(len(r))
            return range(r.start + start * r.step, r.start + stop * r.step, r.step * step)
        return impl
    return None


# --- adjoint helpers -----------------------------------------------------------------------------------------------


def _is_array(t):
    return isinstance(t, types.Array)


def _is_number(t):
    return isinstance(t, (types.Float, types.Integer, types.Boolean))


def _float_dtype(t):
    """The numpy dtype of the adjoint of a value of numba type ``t``: its float dtype, float64 otherwise."""
    dtype = t.dtype if _is_array(t) else t
    return np.dtype(str(dtype)).type if isinstance(dtype, types.Float) else np.float64


def _numba_unbroadcast(g, x):
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


def _match(g, x):
    """The compiled body of match_grad/owned_grad: a fresh array of x's shape and float dtype, or a float."""
    if _is_number(x):
        if _is_array(g):
            return numba.njit(lambda g, x: float(np.sum(g)))
        return numba.njit(lambda g, x: float(g))
    if not _is_array(x):
        return None
    dtype = _float_dtype(x)
    if _is_number(g):
        return numba.njit(lambda g, x: np.full(x.shape, g, dtype))
    if _is_array(g) and g.ndim >= x.ndim:
        def fresh(g, x):
            out = np.empty(x.shape, dtype)
            out[...] = unbroadcast(g, x)
            return out
        return numba.njit(fresh)
    return None


def _numba_match_grad(g, x):
    body = _match(g, x)
    return None if body is None else (lambda g, x: body(g, x))


def _numba_owned_grad(g, x, *others):
    body = _match(g, x)  # (always a fresh array: numba cannot tell which arrays the code made)
    return None if body is None else (lambda g, x, *others: body(g, x))


def _numba_zeros_like(x):
    if _is_number(x):
        return lambda x: 0.0
    if _is_array(x):
        dtype = _float_dtype(x)
        return lambda x: np.zeros(x.shape, dtype)
    return None


def _numba_matmul_grad_left(g, x, y):
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


def _numba_matmul_grad_right(g, x, y):
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


def _numba_power_base_grad(x, y):
    if not _is_number(y):
        return None  # (an array exponent: not covered)
    if _is_array(x):
        return lambda x, y: y * np.power(x, y - 1.0) if y != 0 else 0.0 * x
    return lambda x, y: y * x ** (y - 1.0) if y != 0 else 0.0 * x


def _numba_uniform_to(g, x):
    if _is_number(x) or (_is_array(x) and _is_array(g) and g.ndim == x.ndim):
        return lambda g, x: g
    if _is_array(x) and _is_number(g):
        dtype = _float_dtype(x)
        return lambda g, x: np.full(x.shape, g, dtype)
    return None


def _numba_logaddexp_weight(x, other, total):
    return lambda x, other, total: np.exp(x - total)  # (numba's arrays are numpy's: the numpy form)


def _numba_size_or_one(x):
    if _is_array(x):
        return lambda x: max(x.size, 1)
    return (lambda x: 1) if _is_number(x) else None


def _real(t):
    dtype = t.dtype if _is_array(t) else t
    return isinstance(dtype, (types.Float, types.Integer, types.Boolean))


def _numba_check_scalar_output(y, where):
    if not _real(y):
        return None  # (numba names the type it cannot take)
    if _is_array(y) and y.ndim > 0:
        def refuse(y, where):
            raise ValueError("grad needs a scalar output, but the function returned an array; reduce the output "
                             "(e.g. np.sum), or emit a vjp instead")
        return refuse
    return lambda y, where: None


def _numba_check_numeric_output(y, where):
    return (lambda y, where: None) if _real(y) else None


def _numba_check_seed_shape(seed, y, where):
    if not _is_array(seed) or seed.ndim == 0:
        return lambda seed, y, where: None  # (a number stands for an array filled with it)
    if _is_array(y) and y.ndim == seed.ndim:
        def check(seed, y, where):
            if seed.shape != y.shape:
                raise ValueError("srcgrad: the seed of the vjp has another shape than the output; pass a number, or an "
                                 "array of the output's shape")
        return check

    def refuse(seed, y, where):
        raise ValueError("srcgrad: the seed of the vjp has another number of dimensions than the output; pass a "
                         "number, or an array of the output's shape")
    return refuse


# --- the table -----------------------------------------------------------------------------------------------------

# the name of a runtime helper (or builtin) -> its typing function: what an emitted module registers for its copies
OVERLOADS: dict[str, Any] = {
    "unbroadcast": _numba_unbroadcast, "match_grad": _numba_match_grad, "owned_grad": _numba_owned_grad,
    "zeros_like": _numba_zeros_like, "matmul_grad_left": _numba_matmul_grad_left,
    "matmul_grad_right": _numba_matmul_grad_right, "power_base_grad": _numba_power_base_grad,
    "uniform_to": _numba_uniform_to, "check_scalar_output": _numba_check_scalar_output,
    "check_numeric_output": _numba_check_numeric_output, "check_seed_shape": _numba_check_seed_shape,
    "logaddexp_weight": _numba_logaddexp_weight, "size_or_one": _numba_size_or_one,
}
# what every module compiled with numba needs about ranges: (the function overloaded, its typing function)
RANGES: tuple[tuple[Any, Any], ...] = (
    (reversed, _numba_reversed), (bool, _numba_range_truth), (operator.getitem, _numba_range_slice))


def _register() -> dict[int, Any]:
    """Teach numba the helpers (srcgrad.runtime's, and srcgrad.checks' in-process twins of the same names) and the
    ranges; by id, the objects that now compile as themselves."""
    taught = {}
    for name, typing in OVERLOADS.items():
        for home in (runtime, checks):
            helper = getattr(home, name, None)
            if helper is not None:
                overload(helper)(typing)
                taught[id(helper)] = helper
    for func, typing in RANGES:
        overload(func)(typing)
    taught[id(reversed)] = reversed
    return taught


_TAUGHT = _register()
_HOMES = ("srcgrad.runtime", "srcgrad.checks")


def twin(value: Any) -> Any:
    """What numba compiles in place of ``value``: ``value`` itself when numba knows it (``np``, ``math``, ``range``,
    a helper taught here); a runtime helper without a twin is compiled as it is (numba refuses it if it cannot)."""
    if _TAUGHT.get(id(value)) is value:
        return value
    if getattr(value, "__module__", None) not in _HOMES or not callable(value):
        return value
    return numba.njit(value)


def typing_of(value: Any) -> Any:
    """The typing function an emitted module registers for its copy of ``value`` (a runtime helper), or None."""
    if _TAUGHT.get(id(value)) is not value or value is reversed:
        return None
    return OVERLOADS.get(getattr(value, "__name__", ""))
