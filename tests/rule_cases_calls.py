"""Gradient cases (joined to tests/rule_cases.py's table) for ``math.prod``, ``math.fsum``, ``math.lgamma``,
``math.gamma``, ``np.trapezoid`` (and ``np.trapz`` where numpy has it), ``np.polyval`` and ``np.take``'s ``mode``."""

import math

import numpy as np
from rule_cases import A, N, U, case, with_weight

# --- math -----------------------------------------------------------------------------------------------------------


def math_lgamma(x):
    return math.lgamma(x) * 1.5


def math_gamma(x):
    return math.gamma(x) + x


case(math.lgamma, math_lgamma, A(U(0.2, 5.0)), name="math-lgamma")
case(math.lgamma, math_lgamma, A(U(-2.8, -2.2)), name="math-lgamma-negative")  # log|Gamma|: digamma still
case(math.gamma, math_gamma, A(U(0.2, 4.0)), name="math-gamma")
case(math.gamma, math_gamma, A(U(-1.8, -1.2)), name="math-gamma-negative")


def math_prod_list(x, y, s):
    return math.prod([x, y, x * y], start=s)


def math_prod_zero(x, y):
    return math.prod((x, 0.0, y)) + math.prod([x])  # a zero factor: the others still get their gradient


def math_prod_array(x, w):
    return np.sum(math.prod(x) * w)  # the product of an array's rows


case(math.prod, math_prod_list, A(N(), N(), N()), wrt=(0, 1, 2), name="math-prod-list")
case(math.prod, math_prod_zero, A(N(), N()), wrt=(0, 1), name="math-prod-zero")
case(math.prod, math_prod_array, A(N((3, 2)), N((2,))), name="math-prod-array")


def math_fsum(x, y):
    return math.fsum([x, y * x, 0.1]) * y


case(math.fsum, math_fsum, A(N(), N()), wrt=(0, 1), name="math-fsum")

# --- numpy: integration, polynomials, take ---------------------------------------------------------------------------


def sorted_points(shape):
    return lambda rng: np.cumsum(rng.uniform(0.2, 1.0, size=shape), axis=-1)


TRAPEZOIDS = [f for f in (getattr(np, "trapezoid", None), getattr(np, "trapz", None)) if f is not None]


def trapezoid_fns(trap):
    def points(y, x, w):  # 1-D sample points along the last axis
        return np.sum(trap(y, x) * w)

    def spacing(y, dx, w):
        return np.sum(trap(y, dx=dx, axis=0) * w[:4])

    def full_points(y, x, w):  # sample points shaped like y, along axis 0
        return np.sum(trap(y, x=np.transpose(x), axis=0) * w[:4])

    def default(y):
        return trap(y[0])

    return points, spacing, full_points, default


for _trap in TRAPEZOIDS:
    _points, _spacing, _full, _default = trapezoid_fns(_trap)
    case(_trap, _points, A(N((4, 5)), sorted_points((5,)), N((4,))), wrt=(0, 1), name=f"{_trap.__name__}-x")
    case(_trap, _spacing, A(N((5, 4)), U(0.3, 1.5), N((4,))), wrt=(0, 1), name=f"{_trap.__name__}-dx")
    case(_trap, _full, A(N((5, 4)), sorted_points((4, 5)), N((4,))), wrt=(0, 1), name=f"{_trap.__name__}-x-full")
    case(_trap, _default, A(N((2, 6))), name=f"{_trap.__name__}-default")


def polyval_fn(p, x, w):
    return np.sum(np.polyval(p, x) * w) + np.polyval(p, x[0])


case(np.polyval, polyval_fn, with_weight(N((4,)), N((5,)), out=lambda p, x: np.shape(x)), wrt=(0, 1),
     name="polyval")


def polyval_constant(x):
    return np.polyval([2.0, -1.0, 0.5], x) * x


case(np.polyval, polyval_constant, A(N()), name="polyval-constant-coefficients")


def take_modes(x, w):
    idx = np.array([0, 5, -7, 2, 2])
    return (np.sum(np.take(x, idx, mode="wrap") * w) + np.sum(np.take(x, idx, axis=1, mode="clip") ** 2)
            + np.sum(np.take(x, np.array([1, 0]), 0, mode="raise")))


case(np.take, take_modes, A(N((3, 4)), N((5,))), name="take-mode")
