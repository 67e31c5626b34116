"""The rule table's test cases: one or more gradient checks for every derivative rule srcgrad registers.

Each :class:`Case` names the primitive whose rule it exercises, a small function using that primitive (returning a
scalar), a factory for arguments in the rule's valid domain, and the arguments to differentiate. Elementwise binary
operations get every broadcasting variant, reductions every axis variant (None, int, negative, tuple, keepdims).
Most functions end in ``np.sum(result * w)`` with a random weight ``w`` shaped like the result, so the check covers
the whole vector-Jacobian product, not only the sum of its rows.

``tests/test_numpy_rules.py`` runs every case through :func:`srcgrad.testing.check_grad`; ``tests/test_rule_table.py``
fails when a registered differentiable rule has no case here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# --- the table ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    prim: Any  # the primitive whose rule is exercised: np.exp, operator.add, ("method", "astype"), ...
    fn: Callable  # a function using it; returns a scalar
    args: Callable[[np.random.Generator], tuple]  # rng -> arguments, inside the rule's domain
    wrt: tuple = (0,)
    name: str = ""
    rtol: float = 1e-5
    atol: float = 1e-7
    eps: float = 1e-6
    pending: tuple | None = None  # (exception, reason): expected to raise until the core supports it

    @property
    def id(self) -> str:
        return self.name or getattr(self.fn, "__name__", "case")


CASES: list[Case] = []


def case(prim, fn, args, wrt=(0,), name="", **kw) -> None:
    CASES.append(Case(prim, fn, args, tuple(wrt) if isinstance(wrt, (tuple, list)) else (wrt,), name, **kw))


# --- argument factories -------------------------------------------------------------------------------------------


def U(lo, hi, shape=()):
    """Uniform in [lo, hi): a Python float for shape (), else an array."""
    if shape == ():
        return lambda rng: float(rng.uniform(lo, hi))
    return lambda rng: rng.uniform(lo, hi, size=shape)


def N(shape=()):
    return U(-1.5, 1.5, shape)


def away_from_zero(shape=()):
    """Values with |v| in [0.3, 2): for functions with a kink at 0 (abs, sign...)."""
    def make(rng):
        v = rng.uniform(0.3, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        return float(v) if shape == () else v
    return make


def away_from_bounds(shape):
    """Values in (-1.5, 1.5) at least 0.1 from the bounds -0.5 and 0.5 of the clip cases (a mask's kinks)."""
    def make(rng):
        v = rng.uniform(-1.5, 1.5, size=shape)
        return np.where(np.abs(np.abs(v) - 0.5) < 0.1, v + 0.25, v)
    return make


def const(value):
    return lambda rng: value


def A(*makers):
    """Arguments made by ``makers``, in order."""
    return lambda rng: tuple(m(rng) for m in makers)


def with_weight(*makers, out):
    """Arguments made by ``makers``, then a normal weight of shape ``out(*args)``."""
    def make(rng):
        args = tuple(m(rng) for m in makers)
        shape = out(*args)
        w = rng.normal(size=shape) if shape != () else float(rng.normal())
        return args + (w,)
    return make


def spd(n, batch=()):
    """A symmetric positive definite matrix (or a stack of them)."""
    def make(rng):
        b = rng.normal(size=batch + (n, n))
        return b @ np.swapaxes(b, -1, -2) + n * np.eye(n)
    return make


def well_conditioned(n, batch=()):
    return lambda rng: rng.normal(size=batch + (n, n)) + 3.0 * np.eye(n)


def shape_of(*args):
    return np.shape(args[0])


def bshape(*args):
    return np.broadcast_shapes(*(np.shape(a) for a in args))


# --- 1. elementwise: unary ----------------------------------------------------------------------------------------


def unary(op):
    def f(x, w):
        return np.sum(op(x) * w)
    f.__name__ = f"unary_{getattr(op, '__name__', 'op')}"
    return f


UNARY = [  # (function, domain of x)
    (np.negative, N), (np.positive, N), (np.reciprocal, lambda s=(): U(0.3, 2.0, s)),
    (np.square, N), (np.sqrt, lambda s=(): U(0.2, 3.0, s)), (np.cbrt, lambda s=(): U(0.2, 3.0, s)),
    (np.abs, away_from_zero), (np.fabs, away_from_zero),
    (np.exp, N), (np.exp2, N), (np.expm1, N), (np.log, lambda s=(): U(0.2, 3.0, s)),
    (np.log2, lambda s=(): U(0.2, 3.0, s)), (np.log10, lambda s=(): U(0.2, 3.0, s)),
    (np.log1p, lambda s=(): U(-0.5, 2.0, s)),
    (np.sin, N), (np.cos, N), (np.tan, lambda s=(): U(-1.2, 1.2, s)),
    (np.arcsin, lambda s=(): U(-0.9, 0.9, s)), (np.arccos, lambda s=(): U(-0.9, 0.9, s)), (np.arctan, N),
    (np.sinh, N), (np.cosh, N), (np.tanh, N), (np.arcsinh, N), (np.arccosh, lambda s=(): U(1.2, 3.0, s)),
    (np.arctanh, lambda s=(): U(-0.9, 0.9, s)), (np.deg2rad, N), (np.rad2deg, N),
]

for _op, _dom in UNARY:
    case(_op, unary(_op), with_weight(_dom((3, 4)), out=shape_of), name=f"{_op.__name__}-array")
    case(_op, unary(_op), with_weight(_dom(), out=shape_of), name=f"{_op.__name__}-float")

case(np.cbrt, unary(np.cbrt), with_weight(U(-3.0, -0.2, (5,)), out=shape_of), name="cbrt-negative")
case(np.sinc, unary(np.sinc), with_weight(U(-2.5, 2.5, (3, 4)), out=shape_of), name="sinc-array")
case(np.sinc, unary(np.sinc), with_weight(U(-1e-3, 1e-3, (3, 4)), out=shape_of), name="sinc-near-zero")


# --- 1. elementwise: binary, every broadcasting variant -------------------------------------------------------------


def binary(op):
    def f(x, y, w):
        return np.sum(op(x, y) * w)
    f.__name__ = f"binary_{getattr(op, '__name__', 'op')}"
    return f


SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
          ((3, 4), ()), ((), (3, 4)), ((), ())]

BINARY = [  # (function, domain of x1, domain of x2)
    (np.add, N, N), (np.subtract, N, N), (np.multiply, N, N),
    (np.divide, N, lambda s=(): U(0.5, 2.0, s)),
    (np.power, lambda s=(): U(0.5, 2.0, s), lambda s=(): U(-1.5, 2.0, s)),
    (np.float_power, lambda s=(): U(0.5, 2.0, s), lambda s=(): U(-1.5, 2.0, s)),
    (np.arctan2, N, away_from_zero), (np.hypot, N, N),
    (np.maximum, N, N), (np.minimum, N, N), (np.fmax, N, N), (np.fmin, N, N),
    (np.logaddexp, N, N), (np.logaddexp2, N, N),
    (np.mod, lambda s=(): U(-3.0, 3.0, s), lambda s=(): U(0.6, 1.7, s)),
    (np.fmod, lambda s=(): U(-3.0, 3.0, s), lambda s=(): U(0.6, 1.7, s)),
]

for _op, _d1, _d2 in BINARY:
    for _s1, _s2 in SHAPES:
        case(_op, binary(_op), with_weight(_d1(_s1), _d2(_s2), out=bshape), wrt=(0, 1),
             name=f"{_op.__name__}-{_s1}-{_s2}")


def tie_args(rng):
    x = rng.normal(size=(3, 4))
    y = np.where(rng.uniform(size=(3, 4)) < 0.5, x, rng.normal(size=(3, 4)))
    return x, y, rng.normal(size=(3, 4))


for _op in (np.maximum, np.minimum, np.fmax, np.fmin):
    case(_op, binary(_op), tie_args, wrt=(0, 1), name=f"{_op.__name__}-ties")


def fmax_nan(x, y, w):
    nan = np.array([False, True, False])
    return np.sum(np.fmax(x, np.where(nan, np.nan, y)) * w) + np.sum(np.fmin(np.where(nan, np.nan, x), y) * w)


# fmax/fmin ignore a NaN operand: the other one gets the gradient
case(np.fmax, fmax_nan, A(N((3,)), N((3,)), N((3,))), wrt=(0, 1), name="fmax-fmin-nan")
case(np.fmin, fmax_nan, A(N((3,)), N((3,)), N((3,))), wrt=(0, 1), name="fmin-fmax-nan")


def power_int_exponent(x, w):
    return np.sum(np.power(x, 3) * w) + np.sum(np.power(x, 0) * w)


case(np.power, power_int_exponent, with_weight(N((4,)), out=shape_of), name="power-int-exponent")


def clip_both(a, lo, hi, w):
    return np.sum(np.clip(a, lo, hi) * w)


def clip_none(a, w):
    return np.sum(np.clip(a, None, 0.5) * w) + np.sum(np.clip(a, -0.5, None) * w)


def clip_method(a, w):
    return np.sum(a.clip(-0.5, 0.5) * w)


def clip_ties(a, w):  # a value equal to a bound: value and bound share the gradient (what central differences see)
    return np.sum(np.clip(a, a[0], a[1]) * w)


case(np.clip, clip_both, A(N((3, 4)), const(-0.4), const(0.6), N((3, 4))), name="clip-array")
case(np.clip, clip_both, A(N((3, 4)), U(-1.0, -0.2, (4,)), U(0.2, 1.0, (3, 1)), N((3, 4))), wrt=(0, 1, 2),
     name="clip-broadcast-bounds")
case(np.clip, clip_both, A(N(), U(-1.0, -0.2), U(0.2, 1.0), N()), wrt=(0, 1, 2), name="clip-float")
case(np.clip, clip_none, A(N((3, 4)), N((3, 4))), name="clip-none-bound")
case(np.clip, clip_method, A(N((3, 4)), N((3, 4))), name="clip-method")
case(np.clip, clip_ties, A(const(np.array([-0.5, 0.5, -0.5, 0.5, 0.1, -2.0])), N((6,))), name="clip-ties")


def where_fn(c, x, y, w):
    return np.sum(np.where(c > 0.0, x, y) * w)


def where_indices(x, y):
    positive = np.where(x > 0.0)  # indices: no gradient
    return np.sum(np.where(x > 0.0, x, y) ** 2) + np.sum(x[positive])


case(np.where, where_fn, with_weight(N((3, 4)), N((3, 4)), N((3, 4)), out=shape_of), wrt=(1, 2), name="where")
case(np.where, where_fn, with_weight(N((3, 4)), N((4,)), N(), out=shape_of), wrt=(1, 2), name="where-broadcast")
case(np.where, where_fn, with_weight(N((3, 1)), N((1, 4)), N((3, 4)), out=bshape), wrt=(1, 2),
     name="where-broadcast-condition")
case(np.where, where_indices, A(N((3, 4)), N((3, 4))), wrt=(0, 1), name="where-indices")


def heaviside_fn(x1, x2, w):
    return np.sum(np.heaviside(x1, x2) * w)


case(np.heaviside, heaviside_fn, A(const(np.array([-1.0, 0.0, 2.0, 0.0])), N((4,)), N((4,))), wrt=(1,),
     name="heaviside-value-at-zero")
case(np.heaviside, heaviside_fn, A(const(np.array([-1.0, 0.0, 2.0])), N(), N((3,))), wrt=(1,),
     name="heaviside-scalar-x2")


# --- Python operators (also tested in test_grad_core.py) ------------------------------------------------------------


def op_add(x, y, w):
    return np.sum((x + y) * w)


def op_sub(x, y, w):
    return np.sum((x - y) * w)


def op_mul(x, y, w):
    return np.sum((x * y) * w)


def op_div(x, y, w):
    return np.sum((x / y) * w)


def op_pow(x, y, w):
    return np.sum((x ** y) * w)


def op_mod(x, y, w):
    return np.sum((x % y) * w)


def op_floordiv(x, y, w):  # x // y is piecewise constant: only x * ... carries a gradient
    return np.sum((x // y) * x * w)


def op_neg_pos(x, w):
    return np.sum((-x + (+x) * 2.0) * w)


OPERATOR_CASES = [
    (operator.add, op_add, N, N), (operator.sub, op_sub, N, N), (operator.mul, op_mul, N, N),
    (operator.truediv, op_div, N, lambda s=(): U(0.5, 2.0, s)),
    (operator.pow, op_pow, lambda s=(): U(0.5, 2.0, s), lambda s=(): U(-1.5, 2.0, s)),
    (operator.mod, op_mod, lambda s=(): U(-3.0, 3.0, s), lambda s=(): U(0.6, 1.7, s)),
    (operator.floordiv, op_floordiv, lambda s=(): U(-3.0, 3.0, s), lambda s=(): U(0.6, 1.7, s)),
]

for _op, _fn, _d1, _d2 in OPERATOR_CASES:
    for _s1, _s2 in SHAPES:
        case(_op, _fn, with_weight(_d1(_s1), _d2(_s2), out=bshape), wrt=(0, 1), name=f"{_fn.__name__}-{_s1}-{_s2}")


def mod_quotient(x, y):  # 2.54 % 0.1: the quotient 25 is x // y; (x - x % y) // y rounds to 24
    return x % y


MOD_X, MOD_Y = np.array([2.54, -4.72, 2.43, -3.37]), np.array([0.1, 0.1, 0.7, 0.7])
case(operator.mod, mod_quotient, A(const(2.54), const(0.1)), wrt=(0, 1), name="op_mod-exact-quotient")
case(operator.mod, op_mod, A(const(MOD_X), const(MOD_Y), N((4,))), wrt=(0, 1), name="op_mod-exact-quotient-array")
case(np.mod, binary(np.mod), A(const(MOD_X), const(MOD_Y), N((4,))), wrt=(0, 1), name="mod-exact-quotient")
for _s in ((3, 4), ()):
    case(operator.neg, op_neg_pos, with_weight(N(_s), out=shape_of), name=f"op_neg-{_s}")
    case(operator.pos, op_neg_pos, with_weight(N(_s), out=shape_of), name=f"op_pos-{_s}")


def op_matmul(x, y, w):
    return np.sum((x @ y) * w)


def np_matmul(x, y, w):
    return np.sum(np.matmul(x, y) * w)


MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 4)), ((3,), (5, 3, 4)),
                 ((5, 2, 3), (3,)), ((2, 1, 2, 3), (5, 3, 2))]


def matmul_out(x, y, w=None):
    return np.shape(np.matmul(np.zeros(np.shape(x)), np.zeros(np.shape(y))))


for _s1, _s2 in MATMUL_SHAPES:
    case(operator.matmul, op_matmul, with_weight(N(_s1), N(_s2), out=matmul_out), wrt=(0, 1),
         name=f"op_matmul-{_s1}-{_s2}")
    case(np.matmul, np_matmul, with_weight(N(_s1), N(_s2), out=matmul_out), wrt=(0, 1),
         name=f"matmul-{_s1}-{_s2}")


# --- builtins -----------------------------------------------------------------------------------------------------


def builtin_abs(x, w):
    return np.sum(abs(x) * w)


def builtin_max_min(x, y):
    return max(x, y) * 2.0 + min(x, y) * 3.0


def builtin_max(x, y):
    return max(x, y) * 2.0


def builtin_min(x, y):
    return min(x, y) * 3.0


def builtin_float(x):
    return float(x) * 2.0 + float(x * x)


case(abs, builtin_abs, with_weight(away_from_zero(), out=shape_of), name="abs-float")
case(abs, builtin_abs, with_weight(away_from_zero((3, 4)), out=shape_of), name="abs-array")
for _x, _y in ((1.2, 0.5), (0.5, 1.2), (0.7, 0.7)):
    case(max, builtin_max, A(const(_x), const(_y)), wrt=(0, 1), name=f"max-{_x}-{_y}")
    case(min, builtin_min, A(const(_x), const(_y)), wrt=(0, 1), name=f"min-{_x}-{_y}")
case(float, builtin_float, A(N()), name="float")


def builtin_max_min_of_three(x, y, z):  # (the lowering packs the arguments into a tuple: max((x, y, z)))
    return max(x, y * 2.0, z) * 2.0 + min(x, y, z) * 3.0


def builtin_max_min_of_list(x, y):
    return max([x, y * 2.0, x * y]) + min([y, x]) * 3.0


def builtin_max_min_of_array(x):  # over the items of a 1-d array
    return max(x) * 2.0 + min(x) * 3.0


for _prim in (("builtin", "max of items"), ("builtin", "min of items")):
    for _x, _y, _z in ((1.2, 0.5, -0.3), (0.2, 0.5, 0.6), (0.5, 0.1, 0.5), (0.1, 0.4, 0.1)):  # and two-way ties
        case(_prim, builtin_max_min_of_three, A(const(_x), const(_y), const(_z)), wrt=(0, 1, 2),
             name=f"{_prim[1]}-{_x}-{_y}-{_z}")
    case(_prim, builtin_max_min_of_list, A(N(), N()), wrt=(0, 1), name=f"{_prim[1]}-list")
    case(_prim, builtin_max_min_of_array, A(N((5,))), name=f"{_prim[1]}-array")


def builtin_sum_list(x, y):
    return np.sum(sum([x, y * 2.0, x * y]) + sum((x, y), 0.5) * sum([y], x))


def builtin_sum_array(x, w):  # sum over an array's first axis
    return np.sum(sum(x) * w)


case(sum, builtin_sum_list, A(N(), N()), wrt=(0, 1), name="sum-list")
case(sum, builtin_sum_list, A(N((3,)), N((3,))), wrt=(0, 1), name="sum-list-arrays")
case(sum, builtin_sum_array, A(N((3, 4)), N((4,))), name="sum-array")


# --- math (also tested in test_grad_core.py) ------------------------------------------------------------------------


def scalar_fn(op):
    def f(x):
        return op(x) * 1.5
    f.__name__ = f"math_{op.__name__}"
    return f


MATH_UNARY = [
    (math.exp, N), (math.log, lambda: U(0.2, 3.0)), (math.log2, lambda: U(0.2, 3.0)),
    (math.log10, lambda: U(0.2, 3.0)), (math.log1p, lambda: U(-0.5, 2.0)), (math.expm1, N),
    (math.sqrt, lambda: U(0.2, 3.0)), (math.sin, N), (math.cos, N), (math.tan, lambda: U(-1.2, 1.2)),
    (math.tanh, N), (math.sinh, N), (math.cosh, N), (math.asin, lambda: U(-0.9, 0.9)),
    (math.acos, lambda: U(-0.9, 0.9)), (math.atan, N), (math.asinh, N), (math.acosh, lambda: U(1.2, 3.0)),
    (math.atanh, lambda: U(-0.9, 0.9)), (math.fabs, away_from_zero), (math.erf, N),
]

for _op, _dom in MATH_UNARY:
    case(_op, scalar_fn(_op), A(_dom()), name=f"math.{_op.__name__}")


def math_log_base(x, b):
    return math.log(x, b)


def math_atan2(y, x):
    return math.atan2(y, x)


def math_hypot(x, y):
    return math.hypot(x, y)


def math_pow(x, y):
    return math.pow(x, y)


case(math.log, math_log_base, A(U(0.2, 3.0), U(1.5, 4.0)), wrt=(0, 1), name="math.log-base")
case(math.atan2, math_atan2, A(N(), away_from_zero()), wrt=(0, 1), name="math.atan2")
case(math.hypot, math_hypot, A(N(), N()), wrt=(0, 1), name="math.hypot")
case(math.pow, math_pow, A(U(0.3, 2.0), N()), wrt=(0, 1), name="math.pow")


# --- 2. reductions: every axis variant ------------------------------------------------------------------------------


def reduction(op, axis, keepdims, **kw):
    if kw:
        ddof = kw["ddof"]

        def f(x, w):
            return np.sum(op(x, axis=axis, ddof=ddof, keepdims=keepdims) * w)
    else:
        def f(x, w):
            return np.sum(op(x, axis=axis, keepdims=keepdims) * w)
    f.__name__ = f"reduce_{op.__name__}"
    return f


def reduced_shape(shape, axis, keepdims):
    return np.shape(np.sum(np.zeros(shape), axis=axis, keepdims=keepdims))


AXES = [None, 0, -1, 1, (0, 2), (-1, 0)]
X3 = (2, 3, 4)

REDUCTIONS = [(np.sum, N), (np.mean, N), (np.prod, lambda s: U(0.5, 1.5, s)), (np.max, N), (np.amax, N),
              (np.min, N), (np.amin, N), (np.var, N), (np.std, N)]

for _op, _dom in REDUCTIONS:
    for _axis in AXES:
        for _keep in (False, True):
            case(_op, reduction(_op, _axis, _keep),
                 A(_dom(X3), N(reduced_shape(X3, _axis, _keep))),
                 name=f"{_op.__name__}-axis{_axis}-keepdims{_keep}")

for _op in (np.var, np.std):
    for _axis in (None, 1, (0, -1)):
        case(_op, reduction(_op, _axis, False, ddof=1), A(N(X3), N(reduced_shape(X3, _axis, False))),
             name=f"{_op.__name__}-ddof1-axis{_axis}")


def sum_of_float(x):
    return np.sum(x) * 2.0 + np.mean(x) + np.prod(x) + np.max(x)


case(np.sum, sum_of_float, A(N()), name="sum-of-float")
case(np.mean, sum_of_float, A(N()), name="mean-of-float")
case(np.prod, sum_of_float, A(U(0.5, 1.5)), name="prod-of-float")
case(np.max, sum_of_float, A(N()), name="max-of-float")


def prod_axis(x, w):
    return np.sum(np.prod(x, axis=1) * w) + np.prod(x)


def with_zeros(count):
    def make(rng):
        x = rng.uniform(0.5, 1.5, size=(3, 4))
        x[0, 1] = 0.0
        if count > 1:
            x[0, 3] = 0.0
            x[2, 2] = 0.0
        return x, rng.normal(size=3)
    return make


case(np.prod, prod_axis, with_zeros(1), name="prod-one-zero")
case(np.prod, prod_axis, with_zeros(2), name="prod-two-zeros")


def max_axis(x, w):
    return np.sum(np.max(x, axis=1) * w) + np.min(x) + np.amax(x, axis=0)[1] + np.amin(x, axis=-1)[0]


def two_way_ties(rng):  # central differences see 1/2 at a two-way tie, which is the equal split
    x = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, -1.0, 0.0, 2.0], [-1.0, -0.5, 0.25, 4.0]])
    return x, rng.normal(size=3)


for _op in (np.max, np.min, np.amax, np.amin):
    case(_op, max_axis, two_way_ties, name=f"{_op.__name__}-two-way-ties")


def norm_fn(ord, axis, keepdims):
    def f(x, w):
        return np.sum(np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims) * w)
    f.__name__ = "norm"
    return f


def norm_default(x):
    return np.linalg.norm(x)


NORM_CASES = [  # (ord, axis, keepdims, shape)
    (None, None, False, (5,)), (1, None, False, (5,)), (2, None, False, (5,)), (np.inf, None, False, (5,)),
    (-np.inf, None, False, (5,)), (3, None, False, (5,)), (0.5, None, False, (5,)), (0, None, False, (5,)),
    (None, None, False, (3, 4)), ("fro", None, False, (3, 4)), ("nuc", None, False, (3, 4)),
    (2, None, False, (3, 4)), (-2, None, False, (3, 4)), (1, None, False, (3, 4)), (-1, None, False, (3, 4)),
    (np.inf, None, False, (3, 4)), (-np.inf, None, False, (3, 4)),
    (None, 1, False, (3, 4)), (None, -1, True, (3, 4)), (2, 0, False, (3, 4)), (1, 1, False, (3, 4)),
    (np.inf, 0, True, (3, 4)), (None, (1, 2), False, (2, 3, 4)), (None, (-1, 0), True, (2, 3, 4)),
    ("fro", (0, 1), False, (3, 4, 2)), ("nuc", (1, 2), False, (2, 3, 4)), (2, (2, 1), False, (2, 3, 4)),
    (None, None, True, (2, 3, 4)),
]


def norm_out(ord, axis, keepdims, shape):
    return np.shape(np.linalg.norm(np.ones(shape), ord=ord, axis=axis, keepdims=keepdims))


for _ord, _axis, _keep, _shape in NORM_CASES:
    case(np.linalg.norm, norm_fn(_ord, _axis, _keep), A(N(_shape), N(norm_out(_ord, _axis, _keep, _shape))),
         name=f"norm-ord{_ord}-axis{_axis}-keepdims{_keep}-{_shape}")
case(np.linalg.norm, norm_default, A(N((4,))), name="norm-default")


def cumsum_fn(axis):
    def f(x, w):
        return np.sum(np.cumsum(x, axis=axis) * w)
    return f


def cumprod_fn(axis):
    def f(x, w):
        return np.sum(np.cumprod(x, axis=axis) * w)
    return f


def scan_methods(x, w):
    return np.sum(x.cumsum(axis=0) * w) + np.sum(x.cumprod(axis=-1) * w)


for _axis, _out in ((None, (12,)), (0, (3, 4)), (-1, (3, 4)), (1, (3, 4))):
    case(np.cumsum, cumsum_fn(_axis), A(N((3, 4)), N(_out)), name=f"cumsum-axis{_axis}")
    case(np.cumprod, cumprod_fn(_axis), A(U(0.5, 1.5, (3, 4)), N(_out)), name=f"cumprod-axis{_axis}")
for _axis, _out in ((None, (12,)), (1, (3, 4)), (0, (3, 4))):
    case(np.cumprod, cumprod_fn(_axis), lambda rng, _o=_out: (with_zeros(2)(rng)[0], rng.normal(size=_o)),
         name=f"cumprod-zeros-axis{_axis}")
case(np.cumsum, scan_methods, A(U(0.5, 1.5, (3, 4)), N((3, 4))), name="cumsum-method")
case(np.cumprod, scan_methods, A(U(0.5, 1.5, (3, 4)), N((3, 4))), name="cumprod-method")


def trace_fn(offset, axis1, axis2):
    def f(x, w):
        return np.sum(np.trace(x, offset, axis1, axis2) * w)
    return f


def diagonal_fn(offset, axis1, axis2):
    def f(x, w):
        return np.sum(np.diagonal(x, offset, axis1, axis2) * w)
    return f


def diagonal_methods(x):
    return x.trace() * 2.0 + np.sum(x.diagonal(1) ** 2)


for _off, _a1, _a2, _shape in ((0, 0, 1, (3, 4)), (1, 0, 1, (3, 4)), (-1, 0, 1, (3, 4)), (0, 1, 2, (2, 3, 4)),
                               (1, -1, 0, (3, 2, 4)), (2, 0, 1, (3, 3))):
    out_t = np.shape(np.trace(np.ones(_shape), _off, _a1, _a2))
    out_d = np.shape(np.diagonal(np.ones(_shape), _off, _a1, _a2))
    case(np.trace, trace_fn(_off, _a1, _a2), A(N(_shape), N(out_t)), name=f"trace-{_off}-{_a1}-{_a2}-{_shape}")
    case(np.diagonal, diagonal_fn(_off, _a1, _a2), A(N(_shape), N(out_d)),
         name=f"diagonal-{_off}-{_a1}-{_a2}-{_shape}")
case(np.trace, diagonal_methods, A(N((3, 4))), name="trace-method")
case(np.diagonal, diagonal_methods, A(N((3, 4))), name="diagonal-method")


def diag_fn(k):
    def f(v, w):
        return np.sum(np.diag(v, k) * w)
    return f


for _k, _shape in ((0, (3,)), (1, (3,)), (-2, (3,)), (0, (3, 4)), (1, (3, 4)), (-1, (4, 3)), (0, (3, 3))):
    case(np.diag, diag_fn(_k), A(N(_shape), N(np.shape(np.diag(np.ones(_shape), _k)))), name=f"diag-{_k}-{_shape}")


# --- 3. linear algebra ----------------------------------------------------------------------------------------------


def np_dot(a, b, w):
    return np.sum(np.dot(a, b) * w)


def dot_method(a, b, w):
    return np.sum(a.dot(b) * w)


def dot_out(a, b):
    return np.shape(np.dot(np.zeros(np.shape(a)), np.zeros(np.shape(b))))


for _s1, _s2 in (((), (3,)), ((3, 4), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                 ((2, 3, 4), (4,)), ((2, 3, 4), (5, 4, 2)), ((3,), (2, 3, 4)), ((2, 3), (5, 3, 2))):
    case(np.dot, np_dot, with_weight(N(_s1), N(_s2), out=dot_out), wrt=(0, 1), name=f"dot-{_s1}-{_s2}")
case(np.dot, dot_method, with_weight(N((2, 3)), N((3, 4)), out=dot_out), wrt=(0, 1), name="dot-method")


def np_outer(a, b, w):
    return np.sum(np.outer(a, b) * w)


def np_inner(a, b, w):
    return np.sum(np.inner(a, b) * w)


def np_vdot(a, b):
    return np.vdot(a, b) * 2.0


def inner_out(a, b):
    return np.shape(np.inner(np.zeros(np.shape(a)), np.zeros(np.shape(b))))


def outer_out(a, b):
    return (np.size(a), np.size(b))


for _s1, _s2 in (((3,), (4,)), ((2, 2), (3,)), ((), (3,))):
    case(np.outer, np_outer, with_weight(N(_s1), N(_s2), out=outer_out), wrt=(0, 1), name=f"outer-{_s1}-{_s2}")
for _s1, _s2 in (((3,), (3,)), ((2, 3), (4, 3)), ((2, 3, 4), (4,)), ((), (3, 2)), ((2, 3), ())):
    case(np.inner, np_inner, with_weight(N(_s1), N(_s2), out=inner_out), wrt=(0, 1), name=f"inner-{_s1}-{_s2}")
for _s1, _s2 in (((3,), (3,)), ((2, 3), (6,)), ((2, 3), (3, 2))):
    case(np.vdot, np_vdot, A(N(_s1), N(_s2)), wrt=(0, 1), name=f"vdot-{_s1}-{_s2}")


def tensordot_fn(axes):
    def f(a, b, w):
        return np.sum(np.tensordot(a, b, axes) * w)
    return f


def tensordot_default(a, b):
    return np.tensordot(a, b) * 2.0


for _axes, _s1, _s2 in ((2, (2, 3, 4), (3, 4, 5)), (1, (2, 3), (3, 4)), (0, (2, 3), (4,)),
                        (([1, 0], [0, 1]), (3, 2, 4), (2, 3, 5)), (([2], [0]), (2, 3, 4), (4, 5)),
                        ((1, 1), (2, 3, 4), (5, 3)), (([0, 2], [2, 1]), (2, 3, 4), (5, 4, 2))):
    _out = np.shape(np.tensordot(np.ones(_s1), np.ones(_s2), _axes))
    case(np.tensordot, tensordot_fn(_axes), A(N(_s1), N(_s2), N(_out)), wrt=(0, 1),
         name=f"tensordot-{_axes}-{_s1}-{_s2}")
case(np.tensordot, tensordot_default, A(N((3, 4)), N((3, 4))), wrt=(0, 1), name="tensordot-default")


def einsum1(spec):
    def f(a, w):
        return np.sum(np.einsum(spec, a) * w)
    return f


def einsum2(spec):
    def f(a, b, w):
        return np.sum(np.einsum(spec, a, b) * w)
    return f


def einsum3(spec):
    def f(a, b, c, w):
        return np.sum(np.einsum(spec, a, b, c) * w)
    return f


EINSUM = [  # (subscripts, operand shapes)
    ("ij,jk->ik", ((2, 3), (3, 4))), ("ij,jk", ((2, 3), (3, 4))), ("i,i->", ((3,), (3,))),
    ("ij,ij->ij", ((2, 3), (2, 3))), ("bij,bjk->bik", ((5, 2, 3), (5, 3, 4))), ("ij,k->ijk", ((2, 3), (4,))),
    ("ij,jk->", ((2, 3), (3, 4))), ("ii,i->i", ((3, 3), (3,))), ("ij, jk -> ki", ((2, 3), (3, 4))),
    ("ij->j", ((2, 3),)), ("ij->", ((2, 3),)), ("ii->i", ((3, 3),)), ("ii->", ((3, 3),)), ("ijk->kji", ((2, 3, 4),)),
    ("iji->ij", ((3, 2, 3),)), ("ij->ji", ((2, 3),)), ("ij,jk,kl->il", ((2, 3), (3, 4), (4, 2))),
    ("i,j,k->ijk", ((2,), (3,), (4,))),
]

for _spec, _shapes in EINSUM:
    _out = np.shape(np.einsum(_spec, *[np.ones(s) for s in _shapes]))
    _fn = {1: einsum1, 2: einsum2, 3: einsum3}[len(_shapes)](_spec)
    case(np.einsum, _fn, A(*[N(s) for s in _shapes], N(_out)), wrt=tuple(range(len(_shapes))),
         name=f"einsum-{_spec.replace(' ', '')}")


def einsum4(a, b, c, d):
    return np.einsum("ij,jk,kl,l->", a, b, c, d, optimize=True)


def einsum5(a, b, c, d, e):
    return np.einsum("ij,jk,kl,l,i->", a, b, c, d, e)


case(np.einsum, einsum4, A(N((2, 3)), N((3, 4)), N((4, 2)), N((2,))), wrt=(0, 1, 2, 3), name="einsum-four")
case(np.einsum, einsum5, A(N((2, 3)), N((3, 4)), N((4, 2)), N((2,)), N((2,))), wrt=(1, 4), name="einsum-five")


def inv_fn(a, w):
    return np.sum(np.linalg.inv(a) * w)


def solve_fn(a, b, w):
    return np.sum(np.linalg.solve(a, b) * w)


def det_fn(a, w):
    return np.sum(np.linalg.det(a) * w)


def slogdet_fn(a):
    return np.linalg.slogdet(a)[1] * 2.0


def slogdet_both(a, w):
    r = np.linalg.slogdet(a)
    return np.sum(r[0] * r[1] * w) + np.sum(r[1])


def slogdet_unpack(a):
    sign, logdet = np.linalg.slogdet(a)
    return logdet * 2.0 + sign


def cholesky_fn(a, w):
    return np.sum(np.linalg.cholesky(a) * w)


def cholesky_of_gram(b, w):  # a symmetric parametrisation: agrees with the usual symmetric gradient
    return np.sum(np.linalg.cholesky(b @ b.T + 3.0 * np.eye(3)) * w)


def minus_eye(n, batch=()):
    return lambda rng: rng.normal(size=batch + (n, n)) - 3.0 * np.eye(n)  # negative determinant for odd n


for _batch in ((), (2,)):
    case(np.linalg.inv, inv_fn, A(well_conditioned(3, _batch), N(_batch + (3, 3))), name=f"inv-{_batch}")
    case(np.linalg.det, det_fn, A(well_conditioned(3, _batch), N(_batch)), name=f"det-{_batch}")
    case(np.linalg.slogdet, slogdet_both, A(minus_eye(3, _batch), N(_batch)), name=f"slogdet-{_batch}")
    case(np.linalg.cholesky, cholesky_fn, A(spd(3, _batch), N(_batch + (3, 3))), name=f"cholesky-{_batch}")
case(np.linalg.slogdet, slogdet_fn, A(well_conditioned(4)), name="slogdet-index")
case(np.linalg.slogdet, slogdet_unpack, A(minus_eye(3)), name="slogdet-unpack")
case(np.linalg.cholesky, cholesky_of_gram, A(N((3, 3)), N((3, 3))), name="cholesky-gram")
for _s1, _s2 in (((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2)), ((2, 3, 3), (3,)),
                 ((2, 3, 3), (3, 2))):
    _out = np.shape(np.linalg.solve(np.eye(3) + np.zeros(_s1), np.ones(_s2)))
    _a = well_conditioned(3, _s1[:-2])
    case(np.linalg.solve, solve_fn, A(_a, N(_s2), N(_out)), wrt=(0, 1), name=f"solve-{_s1}-{_s2}")


# decompositions (svd, eigh, eig, pinv, qr, lstsq, matrix_power, cond, matrix norms): their own table, which adds
# its cases to CASES
import rule_cases_decomp  # noqa: E402, F401

# --- 4. shapes ------------------------------------------------------------------------------------------------------


def reshape_fn(x, w):
    return np.sum(np.reshape(x, (2, -1)) * w)


def reshape_methods(x, w):
    return np.sum(x.reshape(2, 6) * w) + np.sum(x.reshape((6, 2)).T * w) + np.sum(x.reshape(-1)[:12:2])


def ravel_fns(x, w):
    return np.sum(np.ravel(x) * w) + np.sum(x.ravel() * w * 2.0)


def flatten_fn(x, w):
    return np.sum(x.flatten() * w)


def squeeze_fns(x, w):
    return np.sum(np.squeeze(x) * w) + np.sum(np.squeeze(x, axis=0) * w) + np.sum(x.squeeze() * w)


def expand_dims_fn(x, w):
    return np.sum(np.expand_dims(x, 0) * w) + np.sum(np.expand_dims(x, -1)[:, :, 0] * w) + np.sum(
        np.expand_dims(x, (0, 2)))


def none_index(x, w):
    return np.sum(x[None, :, None] * w)


def broadcast_to_fn(x, w):
    return np.sum(np.broadcast_to(x, (2, 3, 4)) * w)


case(np.reshape, reshape_fn, A(N((3, 4)), N((2, 6))), name="reshape")
case(np.reshape, reshape_methods, A(N((3, 4)), N((2, 6))), name="reshape-methods")
case(np.ravel, ravel_fns, A(N((3, 4)), N((12,))), name="ravel")
case(("method", "flatten"), flatten_fn, A(N((3, 4)), N((12,))), name="flatten")
case(np.squeeze, squeeze_fns, A(N((1, 3, 1)), N((3,))), name="squeeze")
case(np.expand_dims, expand_dims_fn, A(N((3, 4)), N((1, 3, 4))), name="expand_dims")
case(operator.getitem, none_index, A(N((3,)), N((1, 3, 1))), name="getitem-none")
case(np.broadcast_to, broadcast_to_fn, A(N((3, 1)), N((2, 3, 4))), name="broadcast_to")
case(np.broadcast_to, broadcast_to_fn, A(N((4,)), N((2, 3, 4))), name="broadcast_to-1d")


def transpose_fns(x, w):
    return np.sum(np.transpose(x) * w) + np.sum(x.T * w) + np.sum(x.transpose() * w * 2.0)


def transpose_axes(x, w):
    return np.sum(np.transpose(x, (1, 2, 0)) * w) + np.sum(x.transpose(1, 2, 0) * w) + np.sum(
        np.transpose(x, (-2, -1, 0)) * w)


def swapaxes_fns(x, w):
    return np.sum(np.swapaxes(x, 0, 2) * w) + np.sum(x.swapaxes(-1, 0) * w)


def moveaxis_fns(x, w):
    return np.sum(np.moveaxis(x, 0, -1) * w) + np.sum(np.moveaxis(x, (0, 1), (2, 0)) * w)


case(np.transpose, transpose_fns, A(N((2, 3, 4)), N((4, 3, 2))), name="transpose")
case(("attribute", "T"), transpose_fns, A(N((2, 3, 4)), N((4, 3, 2))), name="T")
case(np.transpose, transpose_axes, A(N((2, 3, 4)), N((3, 4, 2))), name="transpose-axes")
case(np.swapaxes, swapaxes_fns, A(N((2, 3, 4)), N((4, 3, 2))), name="swapaxes")
case(np.moveaxis, moveaxis_fns, A(N((2, 3, 4)), N((3, 4, 2))), name="moveaxis")


def flip_fns(x, w):
    return np.sum(np.flip(x) * w) + np.sum(np.flip(x, 0) * w * 2.0) + np.sum(np.flip(x, (0, 1)) * w * 3.0)


def flip_lr_ud(x, w):
    return np.sum(np.fliplr(x) * w) + np.sum(np.flipud(x) * w * 2.0)


def roll_fns(x, w):
    return np.sum(np.roll(x, 1) * w) + np.sum(np.roll(x, (1, -2), (0, 1)) * w * 2.0) + np.sum(
        np.roll(x, -1, axis=1) * w)


case(np.flip, flip_fns, A(N((3, 4)), N((3, 4))), name="flip")
case(np.fliplr, flip_lr_ud, A(N((3, 4)), N((3, 4))), name="fliplr")
case(np.flipud, flip_lr_ud, A(N((3, 4)), N((3, 4))), name="flipud")
case(np.roll, roll_fns, A(N((3, 4)), N((3, 4))), name="roll")


def tile_fn(reps):
    def f(x, w):
        return np.sum(np.tile(x, reps) * w)
    return f


def repeat_fn(repeats, axis):
    def f(x, w):
        return np.sum(np.repeat(x, repeats, axis) * w)
    return f


def repeat_method(x, w):
    return np.sum(x.repeat(2, axis=0) * w)


for _reps, _shape in ((2, (3,)), ((2, 1), (2, 3)), ((2, 1, 3), (2, 3)), (2, (2, 3)), ((3,), (2, 1, 2))):
    case(np.tile, tile_fn(_reps), A(N(_shape), N(np.shape(np.tile(np.ones(_shape), _reps)))),
         name=f"tile-{_reps}-{_shape}")
for _rep, _axis in ((2, None), (2, 0), ([1, 0, 3], 0), ([2, 1, 1, 0], -1), (3, 1)):
    _out = np.shape(np.repeat(np.ones((3, 4)), _rep, _axis))
    case(np.repeat, repeat_fn(_rep, _axis), A(N((3, 4)), N(_out)), name=f"repeat-{_rep}-{_axis}")
case(np.repeat, repeat_method, A(N((3, 4)), N((6, 4))), name="repeat-method")


def copies(x, w):
    return np.sum(np.copy(x) * w) + np.sum(x.copy() * w) + np.sum(np.array(x) * w) + np.sum(np.asarray(x) * w)


def casts(x, w):
    return np.sum(x.astype("float64") * w) + np.sum(np.array(x, dtype="float64") * w) + np.sum(
        np.asarray(x, dtype="float64") * w)


def array_copies(x, w):  # (copy=False: no copy needed for a float64 array, the argument itself)
    return np.sum(np.array(x, copy=True) * w) + np.sum(np.array(x, "float64", copy=False) * w * w)


def casts_to_int(x, w):  # a cast to an integer type is piecewise constant
    return np.sum(x.astype("int64") * w) + np.sum(np.asarray(x, "int32") * x * w)


def np_scalar_types(x):
    return np.float64(x) * 2.0 + np.float64(x * x)


def np_float32(x):
    return np.float32(x) * 3.0


def item_fn(x):
    return x.item() * 2.0 + x[0, 0].item()


case(np.copy, copies, A(N((3, 4)), N((3, 4))), name="copy")
case(np.array, copies, A(N((3, 4)), N((3, 4))), name="array-of-array")
case(np.asarray, copies, A(N((3, 4)), N((3, 4))), name="asarray")
case(("method", "astype"), casts, A(N((3, 4)), N((3, 4))), name="astype-float")
case(np.array, casts, A(N((3, 4)), N((3, 4))), name="array-dtype")
case(np.array, array_copies, A(N((3, 4)), N((3, 4))), name="array-copy")
case(np.asarray, casts, A(N((3, 4)), N((3, 4))), name="asarray-dtype")
case(("method", "astype"), casts_to_int, A(U(0.1, 3.9, (3, 4)), N((3, 4))), name="astype-int")
case(np.float64, np_scalar_types, A(N()), name="float64")
case(np.float32, np_float32, A(const(0.75)), eps=1e-3, rtol=1e-4, name="float32")
case(("method", "item"), item_fn, A(N((1, 1))), name="item")


def triangles(x, w):
    return np.sum(np.triu(x) * w) + np.sum(np.tril(x, -1) * w * 2.0) + np.sum(np.triu(x, 1) * w * 3.0) + np.sum(
        np.tril(x, 1))


def diff_fn(n, axis):
    def f(x, w):
        return np.sum(np.diff(x, n, axis) * w)
    return f


case(np.triu, triangles, A(N((3, 4)), N((3, 4))), name="triu")
case(np.tril, triangles, A(N((3, 4)), N((3, 4))), name="tril")
for _n, _axis in ((1, -1), (2, 0), (1, 1), (3, -1)):
    case(np.diff, diff_fn(_n, _axis), A(N((4, 5)), N(np.shape(np.diff(np.ones((4, 5)), _n, _axis)))),
         name=f"diff-{_n}-{_axis}")


# joining and splitting: a sequence of arrays is a list or tuple display, or an array (its first axis).


def concatenate_fn(axis):
    def f(x, w):
        return np.sum(np.concatenate(x, axis) * w)
    return f


def stack_fn(axis):
    def f(x, w):
        return np.sum(np.stack(x, axis) * w)
    return f


def hstack_fn(x, w):
    return np.sum(np.hstack(x) * w)


def vstack_fn(x, w):
    return np.sum(np.vstack(x) * w)


for _axis, _shape in ((0, (3, 2, 4)), (1, (3, 2, 4)), (-1, (3, 2, 4)), (None, (3, 2, 4)), (0, (3, 4))):
    _out = np.shape(np.concatenate(np.ones(_shape), _axis))
    case(np.concatenate, concatenate_fn(_axis), A(N(_shape), N(_out)), name=f"concatenate-array-{_axis}-{_shape}")
for _axis in (0, 1, -1):
    case(np.stack, stack_fn(_axis), A(N((3, 2, 4)), N(np.shape(np.stack(np.ones((3, 2, 4)), _axis)))),
         name=f"stack-array-{_axis}")
for _shape in ((3, 4), (3, 2, 4)):
    case(np.hstack, hstack_fn, A(N(_shape), N(np.shape(np.hstack(np.ones(_shape))))), name=f"hstack-array-{_shape}")
    case(np.vstack, vstack_fn, A(N(_shape), N(np.shape(np.vstack(np.ones(_shape))))), name=f"vstack-array-{_shape}")

def stack_list(a, b, w):
    return np.sum(np.stack([a, b], axis=1) * w)


def concatenate_list(a, b, w):
    return np.sum(np.concatenate((a, b), axis=0) * w)


def hstack_vstack_list(a, b):
    return np.sum(np.hstack([a, b]) ** 2) + np.sum(np.vstack((a, a, b)) ** 3)


def array_of_scalars(x, y):
    v = np.array([x, x * y, [y, 1.0][0]])
    return np.sum(v * v)


def shared_list(a, b):  # one list, two consumers: its adjoints add element by element
    parts = [a, b * 2.0]
    return np.sum(np.stack(parts) ** 2) + np.sum(np.concatenate(parts) * np.arange(6.0))


def tuple_display(x, y):
    t = (x, y * 2.0)
    return t[0] * t[1]


case(np.stack, stack_list, A(N((3,)), N((3,)), N((3, 2))), wrt=(0, 1), name="stack-list")
case(np.concatenate, concatenate_list, A(N((2, 3)), N((1, 3)), N((3, 3))), wrt=(0, 1),
     name="concatenate-tuple")
case(np.hstack, hstack_vstack_list, A(N((3,)), N((3,))), wrt=(0, 1), name="hstack-list")
case(np.vstack, hstack_vstack_list, A(N((3,)), N((3,))), wrt=(0, 1), name="vstack-tuple")
case(("display", "list"), array_of_scalars, A(N(), N()), wrt=(0, 1), name="array-of-scalars")
case(np.array, array_of_scalars, A(N(), N()), wrt=(0, 1), name="array-of-scalars")
case(("display", "tuple"), tuple_display, A(N(), N()), wrt=(0, 1), name="tuple-display")
case(("display", "list"), shared_list, A(N((3,)), N((3,))), wrt=(0, 1), name="list-display-fan-out")


def split_fn(x, w):
    parts = np.split(x, 3, axis=1)
    return np.sum(parts[0] * w) + np.sum(parts[2] * w * 2.0)


def array_split_fn(x, w):
    parts = np.array_split(x, 3)
    return np.sum(parts[0] * w) + np.sum(parts[1] ** 2) + np.sum(parts[-1][1:] ** 3)


def split_unpack(x):
    a, b = np.split(x, 2)
    return np.sum(a * b) + np.sum(b)


case(np.split, split_fn, A(N((3, 6)), N((3, 2))), name="split")
case(np.split, split_unpack, A(N((6,))), name="split-unpack")
case(np.array_split, array_split_fn, A(N((8,)), N((3,))), name="array_split")


def array_split_axis(x, w):
    parts = np.array_split(x, 2, axis=1)
    return np.sum(parts[0] * w) + np.sum(parts[1] ** 2)


case(np.array_split, array_split_axis, A(N((2, 5)), N((2, 3))), name="array_split-axis")


# --- constructors from values: the fill value and linspace's ends carry the gradient --------------------------------


def full_fn(v, w):
    return np.sum(np.full((2, 3), v) ** 2 * w) + np.sum(np.full(3, v[0] if np.ndim(v) else v, dtype="float64") * w[0])


def full_like_fn(v, x):
    # an integer fill (given dtype, or the dtype of `a`) has no gradient; `shape` replaces a's shape
    return (np.sum(np.full_like(x, v) * x) + np.sum(np.full_like(x, v[0], dtype=int) * v)
            + np.sum(np.full_like(x, v[1], shape=(4,)) ** 2) + np.sum(np.full_like(np.arange(3), v[2]) * v))


def linspace_fn(start, stop, w):
    return np.sum(np.linspace(start, stop, 5) ** 2 * w)


def linspace_options(start, stop, w):
    return np.sum(np.linspace(start, stop, 4, endpoint=False, axis=-1) ** 2 * w)


def linspace_arrays(start, stop, w):
    return np.sum(np.linspace(start, stop, 3, axis=1) ** 2 * w)


def linspace_dtypes(start, stop, w):
    # an integer dtype rounds the samples: no gradient (the points are away from the integers)
    return np.sum(np.linspace(start, stop, 5, dtype="float64") * w) + np.sum(np.linspace(start, stop, 5, dtype=int) * w)


case(np.full, full_fn, A(N(), N((2, 3))), name="full-float")
case(np.full, full_fn, A(N((3,)), N((2, 3))), name="full-broadcast-row")
case(np.full_like, full_like_fn, A(U(0.2, 0.7, (3,)), N((2, 3))), name="full_like")
case(np.linspace, linspace_fn, A(N(), N(), N((5,))), wrt=(0, 1), name="linspace")
case(np.linspace, linspace_fn, A(N(), N(), N((5,))), wrt=(1,), name="linspace-stop")
case(np.linspace, linspace_options, A(N((2,)), N(), N((2, 4))), wrt=(0, 1), name="linspace-no-endpoint-axis")
case(np.linspace, linspace_arrays, A(N((2,)), N((2,)), N((2, 3))), wrt=(0, 1), name="linspace-arrays")
case(np.linspace, linspace_dtypes, A(const(0.3), const(2.1), N((5,))), wrt=(0, 1), rtol=1e-4, name="linspace-dtype")


# --- 5. indexing reads ----------------------------------------------------------------------------------------------


def index_int(x):
    return x[1] * 2.0 + x[-1] ** 2 + x[0]


def index_slices(x, w):
    return np.sum(x[1:5:2] * w) + np.sum(x[::-1][:2] * w) + np.sum(x[::3]) + np.sum(x[-3:])


def index_axes(x, w):
    return np.sum(x[1, ::2] * w) + np.sum(x[:, -1] ** 2) + x[-1, 0] * x[0, 1] + np.sum(x[1:, 1:3][0])


def index_ellipsis(x, w):
    return np.sum(x[..., 1] * w) + np.sum(x[0, ...] ** 2) + np.sum(x[..., None, :2])


def index_fancy(x, w):
    idx = np.array([0, 2, 2, 1, 2])
    return np.sum(x[idx] * w) + np.sum(x[[0, 0, 1]] ** 2)


def index_fancy_axes(x, w):
    idx = np.array([3, 0, 3])
    return np.sum(x[:, idx] * w) + np.sum(x[np.array([0, 2]), np.array([1, 1])] ** 2)


def index_mask(x, w):
    return np.sum(x[x > 0.0] ** 2) + np.sum(x[:, w[0] > 0.0] * 2.0)


def index_labels(x, labels):
    return np.sum(np.log(x[np.arange(x.shape[0]), labels]))


def index_scalar_use(x):
    y = x[0] * x[1]
    return y + np.sum(x[2:] * y)


case(operator.getitem, index_int, A(N((4,))), name="getitem-int")
case(operator.getitem, index_slices, A(N((8,)), N((2,))), name="getitem-slices")
case(operator.getitem, index_axes, A(N((3, 4)), N((2,))), name="getitem-axes")
case(operator.getitem, index_ellipsis, A(N((2, 3, 4)), N((2, 3))), name="getitem-ellipsis")
case(operator.getitem, index_fancy, A(N((3, 4)), N((5, 4))), name="getitem-fancy-repeated")
case(operator.getitem, index_fancy_axes, A(N((3, 4)), N((3, 3))), name="getitem-fancy-axes")
case(operator.getitem, index_mask, A(N((3, 4)), N((4,))), name="getitem-mask")
case(operator.getitem, index_labels, A(U(0.2, 2.0, (5, 3)), const(np.array([0, 2, 2, 1, 0]))),
     name="getitem-labels")
case(operator.getitem, index_scalar_use, A(N((5,))), name="getitem-scalar")


def take_fns(x, w):
    idx = np.array([2, 0, 2])
    return np.sum(np.take(x, idx) * w[0]) + np.sum(np.take(x, idx, axis=1) * w) + np.sum(
        np.take(x, idx, axis=-2)[1])


def take_along(x, w):
    order = np.argsort(x, axis=1)
    return np.sum(np.take_along_axis(x, order, axis=1) * w) + np.sum(
        np.take_along_axis(x, np.array([[0, 0], [1, 1], [2, 0]]), 1) ** 2)


case(np.take, take_fns, A(N((3, 4)), N((3, 3))), name="take")
case(np.take_along_axis, take_along, A(N((3, 4)), N((3, 4))), name="take_along_axis")


# --- 7. non-differentiable calls pass through; np.sort differentiates through its permutation -------------------------


def sort_fn(axis):
    def f(x, w):
        return np.sum(np.sort(x, axis) * w)
    return f


def sort_default(x, w):
    return np.sum(np.sort(x) * w)


for _axis in (-1, 0, None):
    _out = np.shape(np.sort(np.ones((3, 4)), _axis))
    case(np.sort, sort_fn(_axis), A(N((3, 4)), N(_out)), name=f"sort-axis{_axis}")
case(np.sort, sort_default, A(N((5,)), N((5,))), name="sort-default")


def sort_kind(x, w):
    return np.sum(np.sort(x, 0, "stable") * w) + np.sum(np.sort(x, kind="heapsort", axis=None) ** 2)


case(np.sort, sort_kind, A(N((3, 4)), N((3, 4))), name="sort-kind")


# --- srcgrad's own runtime helpers (generated forward-mode code is differentiated again) -----------------------------

from srcgrad import runtime as _runtime  # noqa: E402


def as_tuple_case(x, y):
    t = _runtime.as_tuple([x * y, y])
    return t[0] * 2.0 + t[1]


case(_runtime.as_tuple, as_tuple_case, A(N(), N()), wrt=(0, 1), name="runtime-as-tuple")


def broadcast_tangent_case(x, m):
    return np.sum(_runtime.broadcast_tangent(x * x, m) * m)


case(_runtime.broadcast_tangent, broadcast_tangent_case, A(N(), N((2, 3))), name="runtime-broadcast-tangent")
case(_runtime.broadcast_tangent, broadcast_tangent_case, A(N((3,)), N((2, 3))), name="runtime-broadcast-tangent-rows")


# The derivatives tangents are made of (second derivatives differentiate them again): linear in `dy`, masks of `a`.
W34 = np.linspace(-1.0, 1.5, 12).reshape(3, 4)


def clip_grad_case(dy, a):
    y = np.clip(a, -0.5, 0.5)
    return np.sum(_runtime.clip_grad(dy * dy, y, a, -0.5, 0.5) * W34)


def clip_grad_one_bound_case(dy, a):
    y = np.clip(a, None, 0.5)
    return np.sum(_runtime.clip_grad(dy, y, a, None, 0.5) * W34) + np.sum(_runtime.clip_bound_grad(dy, y, a, 0.5))


case(_runtime.clip_grad, clip_grad_case, A(N((3, 4)), away_from_bounds((3, 4))), wrt=(0, 1), name="runtime-clip-grad")
case(_runtime.clip_grad, clip_grad_case, A(N(), away_from_bounds((3, 4))), wrt=(0, 1),
     name="runtime-clip-grad-scalar-dy")
case(_runtime.clip_bound_grad, clip_grad_one_bound_case, A(N((3, 4)), away_from_bounds((3, 4))), wrt=(0, 1),
     name="runtime-clip-bound-grad")


def extremum_grad_case(dy, a):
    y = np.max(a, axis=1)
    return np.sum(_runtime.extremum_grad(dy * dy, y, a, 1, False) * W34)


def extremum_grad_all_case(dy, a):
    y = np.min(a, axis=None, keepdims=True)
    return np.sum(_runtime.extremum_grad(dy, y, a, None, True) * W34)


case(_runtime.extremum_grad, extremum_grad_case, A(N((3,)), N((3, 4))), wrt=(0, 1), name="runtime-extremum-grad")
case(_runtime.extremum_grad, extremum_grad_all_case, A(N((1, 1)), N((3, 4))), wrt=(0, 1),
     name="runtime-extremum-grad-keepdims")
case(_runtime.extremum_grad, extremum_grad_all_case, A(N(), N((3, 4))), wrt=(0, 1),
     name="runtime-extremum-grad-scalar-dy")


def cast_grad_case(dy):
    return np.sum(_runtime.cast_grad(dy * dy, np.float64) * W34) + np.sum(_runtime.cast_grad(dy, np.int64))


case(_runtime.cast_grad, cast_grad_case, A(N((3, 4))), name="runtime-cast-grad")


def var_grad_case(dy, a):
    return np.sum(_runtime.var_grad(dy * dy, a * a, 1, 1, False) * W34)


def var_grad_keepdims_case(dy, a):
    return np.sum(_runtime.var_grad(dy, a * a, None, 0, True) * W34)


case(_runtime.var_grad, var_grad_case, A(N((3,)), N((3, 4))), wrt=(0, 1), name="runtime-var-grad")
case(_runtime.var_grad, var_grad_keepdims_case, A(N((1, 1)), N((3, 4))), wrt=(0, 1),
     name="runtime-var-grad-keepdims")


def setitem_case(x, v):
    y = x * 1.0
    y[1:3] = v * y[0]
    return np.sum(y * y)


case(_runtime.setitem, setitem_case, A(N((4,)), N()), wrt=(0, 1), name="setitem-slice")


# --- more of numpy (srcgrad/rules/numpy_more.py) and np.einsum with '...': their own file, appended here -------------

# --- cases kept in their own files: item-5 calls (math.prod, np.trapezoid...) and scipy's rules (with scipy) ---------
import importlib.util  # noqa: E402

import rule_cases_calls  # noqa: E402, F401
import rule_cases_more  # noqa: E402,F401  (its cases join CASES)

if importlib.util.find_spec("scipy") is not None:
    import rule_cases_scipy  # noqa: F401

