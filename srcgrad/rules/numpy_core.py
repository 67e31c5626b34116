"""Derivative rules: numpy (elementwise functions, reductions, linear algebra, shapes).

Elementwise binary rules are registered with ``broadcast=True``: the adjoint stage sums each contribution back to
its operand's shape, so no rule here unbroadcasts. Reductions restore the reduced axes with ``restore_axes``.
At ties, ``maximum``/``minimum`` split the gradient equally (what a central difference sees).
"""

import numpy as np

from srcgrad.rules.registry import defgrad, nondifferentiable
from srcgrad.runtime import (
    dot_grad_left,
    dot_grad_right,
    inverse_axes,
    matmul_grad_left,
    matmul_grad_right,
    reduced_count,
    restore_axes,
)

# --- elementwise -----------------------------------------------------------------------------------------------


@defgrad(np.add, broadcast=True)
def add(g, ans, x, y):
    return g, g


@defgrad(np.subtract, broadcast=True)
def subtract(g, ans, x, y):
    return g, -g


@defgrad(np.multiply, broadcast=True)
def multiply(g, ans, x, y):
    return g * y, g * x


@defgrad(np.divide, broadcast=True)
def divide(g, ans, x, y):
    return g / y, -g * ans / y


@defgrad(np.negative)
def negative(g, ans, x):
    return -g


@defgrad(np.power, broadcast=True)
def power(g, ans, x, y):
    return g * y * np.power(x, y - 1), g * ans * np.log(np.where(x == 0, 1.0, x))


@defgrad(np.square)
def square(g, ans, x):
    return g * 2.0 * x


@defgrad(np.exp)
def exp(g, ans, x):
    return g * ans


@defgrad(np.log)
def log(g, ans, x):
    return g / x


@defgrad(np.log1p)
def log1p(g, ans, x):
    return g / (1.0 + x)


@defgrad(np.expm1)
def expm1(g, ans, x):
    return g * (ans + 1.0)


@defgrad(np.sqrt)
def sqrt(g, ans, x):
    return g / (2.0 * ans)


@defgrad(np.sin)
def sin(g, ans, x):
    return g * np.cos(x)


@defgrad(np.cos)
def cos(g, ans, x):
    return -g * np.sin(x)


@defgrad(np.tanh)
def tanh(g, ans, x):
    return g * (1.0 - ans * ans)


@defgrad(np.abs)
def absolute(g, ans, x):
    return g * np.sign(x)


@defgrad(np.maximum, broadcast=True)
def maximum(g, ans, x, y):
    return g * ((x > y) + 0.5 * (x == y)), g * ((y > x) + 0.5 * (x == y))


@defgrad(np.minimum, broadcast=True)
def minimum(g, ans, x, y):
    return g * ((x < y) + 0.5 * (x == y)), g * ((y < x) + 0.5 * (x == y))


@defgrad(np.where, wrt=("x", "y"), broadcast=True)
def where(g, ans, condition, x, y):
    return np.where(condition, g, 0.0), np.where(condition, 0.0, g)


@defgrad(np.float64)
def float64(g, ans, x):
    return g


@defgrad(np.asarray, wrt=("a",))
def asarray(g, ans, a, dtype=None):
    return g


# --- reductions ------------------------------------------------------------------------------------------------


@defgrad(np.sum, wrt=("a",))
def sum_(g, ans, a, axis=None, keepdims=False):
    return restore_axes(g, a, axis, keepdims)


@defgrad(np.mean, wrt=("a",))
def mean(g, ans, a, axis=None, keepdims=False):
    return restore_axes(g, a, axis, keepdims) / reduced_count(a, ans)


# --- linear algebra --------------------------------------------------------------------------------------------


@defgrad(np.matmul)
def matmul(g, ans, x1, x2):
    return matmul_grad_left(g, x1, x2), matmul_grad_right(g, x1, x2)


@defgrad(np.dot)
def dot(g, ans, a, b):
    return dot_grad_left(g, a, b), dot_grad_right(g, a, b)


# --- shapes ----------------------------------------------------------------------------------------------------


@defgrad(np.transpose, wrt=("a",))
def transpose(g, ans, a, axes=None):
    return np.transpose(g) if axes is None else np.transpose(g, inverse_axes(axes))


# --- no gradient -----------------------------------------------------------------------------------------------

for _fn in (np.shape, np.ndim, np.size, np.sign, np.floor, np.ceil, np.round, np.argmax, np.argmin, np.argsort,
            np.isnan, np.isinf, np.isfinite, np.zeros, np.ones, np.empty, np.full, np.zeros_like, np.ones_like,
            np.empty_like, np.full_like, np.arange, np.linspace, np.eye, np.greater, np.less, np.equal,
            np.greater_equal, np.less_equal, np.not_equal, np.logical_and, np.logical_or, np.logical_not):
    nondifferentiable(_fn)
