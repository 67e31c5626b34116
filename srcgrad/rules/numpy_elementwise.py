"""Derivative rules: numpy elementwise functions (ufuncs and friends).

In: calls like ``np.exp(x)``, ``np.maximum(x1, x2)``, ``np.where(c, x, y)`` on arrays or Python numbers.
Out: the contribution of the output's adjoint ``g`` to each differentiable argument, with the output's shape.

What holds:
- parameter names follow numpy (``x`` for unary ufuncs, ``x1, x2`` for binary ones), so keyword calls bind;
  keywords numpy has and srcgrad does not support (``out=``, ``dtype=``, ``where=``) are not parameters here, so
  using one is a clear error at transform time;
- every function that broadcasts its operands is registered with ``broadcast=True``: the adjoint stage sums each
  contribution back to its operand's shape, so no rule here unbroadcasts;
- ties: at ``x1 == x2`` ``maximum``/``minimum``/``fmax``/``fmin`` give each operand half of ``g``; ``clip`` at a
  bound gives half to the value and half to the bound; ``abs`` has gradient 0 at 0 — what a central difference sees;
- rules evaluated on ``ans`` (``exp``, ``sqrt``...) reuse the forward value; constants come from ``math`` (Python
  floats), so float32 arrays stay float32;
- functions that are piecewise constant (``sign``, ``floor``, ``ceil``, ``round``, ``rint``, ``trunc``,
  ``floor_divide``, comparisons) are non-differentiable: their results carry no gradient; ``heaviside(x1, x2)`` is
  piecewise constant in ``x1`` and takes the value ``x2`` where ``x1 == 0``.
"""

import math

import numpy as np

from srcgrad.rules.registry import defgrad, nondifferentiable
from srcgrad.runtime import clip_bound_grad, clip_grad, logaddexp_weight, power_base_grad

# --- arithmetic ---------------------------------------------------------------------------------------------------


@defgrad(np.add, broadcast=True)
def add(g, ans, x1, x2):
    return g, g


@defgrad(np.subtract, broadcast=True)
def subtract(g, ans, x1, x2):
    return g, -g


@defgrad(np.multiply, broadcast=True)
def multiply(g, ans, x1, x2):
    return g * x2, g * x1


@defgrad(np.divide, broadcast=True)  # also np.true_divide (the same ufunc)
def divide(g, ans, x1, x2):
    return g / x2, -g * ans / x2


@defgrad(np.negative)
def negative(g, ans, x):
    return -g


@defgrad(np.positive)
def positive(g, ans, x):
    return g


@defgrad(np.reciprocal)  # (integer for integers: np.reciprocal(2) is 0)
def reciprocal(g, ans, x):
    return -g * ans * ans


@defgrad(np.power, broadcast=True)
def power(g, ans, x1, x2):
    return (g * (x2 * np.power(x1, x2 - 1.0) if x2 != 0 else 0.0 * x1) if isinstance(x2, (int, float))
            else g * power_base_grad(x1, x2)), g * ans * np.log(np.where(x1 == 0, 1.0, x1))


@defgrad(np.float_power, broadcast=True)
def float_power(g, ans, x1, x2):
    return (g * (x2 * np.float_power(x1, x2 - 1.0) if x2 != 0 else 0.0 * x1) if isinstance(x2, (int, float))
            else g * power_base_grad(x1, x2)), g * ans * np.log(np.where(x1 == 0, 1.0, x1))


@defgrad(np.square)
def square(g, ans, x):
    return g * 2.0 * x


@defgrad(np.sqrt, float_valued=True)
def sqrt(g, ans, x):
    return g / (2.0 * ans)


@defgrad(np.cbrt, float_valued=True)
def cbrt(g, ans, x):
    return g / (3.0 * ans * ans)


@defgrad(np.abs)  # also np.absolute (the same ufunc)
def absolute(g, ans, x):
    return g * np.sign(x)


@defgrad(np.fabs)
def fabs(g, ans, x):
    return g * np.sign(x)


@defgrad(np.mod, broadcast=True)  # also np.remainder: x1 - floor(x1 / x2) * x2
def mod(g, ans, x1, x2):
    return g, -g * np.floor_divide(x1, x2)


@defgrad(np.fmod, broadcast=True)  # x1 - trunc(x1 / x2) * x2; the quotient is recovered exactly from ans
def fmod(g, ans, x1, x2):
    return g, -g * np.round((x1 - ans) / x2)


# --- exponentials and logarithms ------------------------------------------------------------------------------------


@defgrad(np.exp, float_valued=True)
def exp(g, ans, x):
    return g * ans


@defgrad(np.exp2, float_valued=True)
def exp2(g, ans, x):
    return g * ans * math.log(2.0)


@defgrad(np.expm1, float_valued=True)
def expm1(g, ans, x):
    return g * (ans + 1.0)


@defgrad(np.log, float_valued=True)
def log(g, ans, x):
    return g / x


@defgrad(np.log2, float_valued=True)
def log2(g, ans, x):
    return g / (x * math.log(2.0))


@defgrad(np.log10, float_valued=True)
def log10(g, ans, x):
    return g / (x * math.log(10.0))


@defgrad(np.log1p, float_valued=True)
def log1p(g, ans, x):
    return g / (1.0 + x)


@defgrad(np.logaddexp, broadcast=True)
def logaddexp(g, ans, x1, x2):
    return g * logaddexp_weight(x1, x2, ans), g * logaddexp_weight(x2, x1, ans)  # (exp(x1 - ans), exp(x2 - ans))


@defgrad(np.logaddexp2, broadcast=True)
def logaddexp2(g, ans, x1, x2):
    return g * np.exp2(x1 - ans), g * np.exp2(x2 - ans)


# --- trigonometric and hyperbolic -----------------------------------------------------------------------------------


@defgrad(np.sin, float_valued=True)
def sin(g, ans, x):
    return g * np.cos(x)


@defgrad(np.cos, float_valued=True)
def cos(g, ans, x):
    return -g * np.sin(x)


@defgrad(np.tan, float_valued=True)
def tan(g, ans, x):
    return g * (1.0 + ans * ans)


@defgrad(np.arcsin, float_valued=True)
def arcsin(g, ans, x):
    return g / np.sqrt(1.0 - x * x)


@defgrad(np.arccos, float_valued=True)
def arccos(g, ans, x):
    return -g / np.sqrt(1.0 - x * x)


@defgrad(np.arctan, float_valued=True)
def arctan(g, ans, x):
    return g / (1.0 + x * x)


@defgrad(np.arctan2, broadcast=True)  # arctan2(x1, x2) is the angle of the point (x2, x1)
def arctan2(g, ans, x1, x2):
    return g * x2 / (x1 * x1 + x2 * x2), -g * x1 / (x1 * x1 + x2 * x2)


@defgrad(np.hypot, broadcast=True)
def hypot(g, ans, x1, x2):
    return g * x1 / ans, g * x2 / ans


@defgrad(np.sinh, float_valued=True)
def sinh(g, ans, x):
    return g * np.cosh(x)


@defgrad(np.cosh, float_valued=True)
def cosh(g, ans, x):
    return g * np.sinh(x)


@defgrad(np.tanh, float_valued=True)
def tanh(g, ans, x):
    return g * (1.0 - ans * ans)


@defgrad(np.arcsinh, float_valued=True)
def arcsinh(g, ans, x):
    return g / np.sqrt(x * x + 1.0)


@defgrad(np.arccosh, float_valued=True)
def arccosh(g, ans, x):
    return g / np.sqrt(x * x - 1.0)


@defgrad(np.arctanh, float_valued=True)
def arctanh(g, ans, x):
    return g / (1.0 - x * x)


# sin(pi x) / (pi x) (not a ufunc): its derivative (cos(pi x) - sinc(x)) / x loses digits near 0, where the
# series -pi^2 x / 3 + pi^4 x^3 / 30 takes over (its next term is below 1e-15 there)
@defgrad(np.sinc, forward="elementwise", float_valued=True)
def sinc(g, ans, x):
    return g * np.where(np.abs(x) < 1e-3, x * (x * x * (math.pi ** 4 / 30.0) - math.pi ** 2 / 3.0),
                        (np.cos(math.pi * x) - ans) / np.where(x == 0, 1.0, x))


@defgrad(np.deg2rad)  # np.radians is another ufunc object: its rule is in numpy_more
def deg2rad(g, ans, x):
    return g * (math.pi / 180.0)


@defgrad(np.rad2deg)  # np.degrees is another ufunc object: its rule is in numpy_more
def rad2deg(g, ans, x):
    return g * (180.0 / math.pi)


# --- selection: ties split equally ----------------------------------------------------------------------------------


@defgrad(np.maximum, broadcast=True)
def maximum(g, ans, x1, x2):
    return g * ((x1 > x2) + 0.5 * (x1 == x2)), g * ((x2 > x1) + 0.5 * (x1 == x2))


@defgrad(np.minimum, broadcast=True)
def minimum(g, ans, x1, x2):
    return g * ((x1 < x2) + 0.5 * (x1 == x2)), g * ((x2 < x1) + 0.5 * (x1 == x2))


@defgrad(np.fmax, broadcast=True)  # like maximum, but a NaN operand loses: the other one gets the gradient
def fmax(g, ans, x1, x2):
    return (g * ((x1 > x2) + 0.5 * (x1 == x2) + np.isnan(x2) * np.logical_not(np.isnan(x1))),
            g * ((x2 > x1) + 0.5 * (x1 == x2) + np.isnan(x1) * np.logical_not(np.isnan(x2))))


@defgrad(np.fmin, broadcast=True)
def fmin(g, ans, x1, x2):
    return (g * ((x1 < x2) + 0.5 * (x1 == x2) + np.isnan(x2) * np.logical_not(np.isnan(x1))),
            g * ((x2 < x1) + 0.5 * (x1 == x2) + np.isnan(x1) * np.logical_not(np.isnan(x2))))


@defgrad(np.clip, broadcast=True)  # a bound may be None (no bound); at a bound, value and bound share g
def clip(g, ans, a, a_min, a_max):
    return clip_grad(g, ans, a, a_min, a_max), clip_bound_grad(g, ans, a, a_min), clip_bound_grad(g, ans, a, a_max)


# np.where(condition) alone gives indices: no gradient
@defgrad(np.where, wrt=("x", "y"), discrete=("condition",), broadcast=True)
def where(g, ans, condition, x=None, y=None):
    return np.where(condition, g, 0.0), np.where(condition, 0.0, g)


@defgrad(np.heaviside, wrt=("x2",), discrete=("x1",), broadcast=True)  # x2 is the value where x1 == 0
def heaviside(g, ans, x1, x2):
    return g * (x1 == 0)


# --- no gradient ----------------------------------------------------------------------------------------------------

for _fn in (np.sign, np.floor, np.ceil, np.round, np.around, np.rint, np.trunc, np.fix, np.floor_divide,
            np.isnan, np.isinf, np.isfinite, np.signbit, np.greater, np.less, np.equal, np.greater_equal,
            np.less_equal, np.not_equal, np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
            np.isclose, np.allclose, np.array_equal):
    nondifferentiable(_fn)
