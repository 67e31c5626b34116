"""Derivative rules: Python operators and builtins.

Each rule is ``rule(g, ans, *params)`` returning the contribution of ``g`` to each differentiable parameter.
Scalar variants (``scalar=True``) are used when every operand is a Python number; they avoid numpy entirely.
``%`` differentiates as ``x - (x // y) * y`` (``x // y`` is piecewise constant: ``//`` has no gradient).
Indexing (``operator.getitem``) is with the numpy shape rules.
At ties, ``max``/``min``/``maximum``/``minimum`` split the gradient equally (what a central difference sees);
``max`` and ``min`` of an iterable or of three or more arguments give each of the ``k`` tied items ``1/k``, as
``np.max`` does.
"""

import math
import operator

import numpy as np

from srcgrad import ir
from srcgrad.rules.registry import defgrad, defjvp, nondifferentiable
from srcgrad.runtime import (
    builtin_sum_grad,
    extreme_items_grad,
    extreme_items_tangent,
    matmul_grad_left,
    matmul_grad_right,
    power_base_grad,
    setitem,
    setitem_rest_grad,
    setitem_value_grad,
)

# --- arithmetic operators -------------------------------------------------------------------------------------
# `/`, `//`, `%` raise on Python numbers (ZeroDivisionError), and `**` too (OverflowError, a negative number to a
# fractional power), except to a constant whole power k >= 0, which can only overflow: its derivative is still right.


def _not_whole_power(params: dict) -> bool:
    y = params.get("y")
    return not (isinstance(y, ir.Const) and type(y.value) is int and y.value >= 0)



@defgrad(operator.add, broadcast=True, out_kind="same", name="add")
def add(g, ans, x, y):
    return g, g


@defgrad(operator.sub, broadcast=True, out_kind="same", name="sub")
def sub(g, ans, x, y):
    return g, -g


@defgrad(operator.mul, broadcast=True, out_kind="same", name="mul")
def mul(g, ans, x, y):
    return g * y, g * x


@defgrad(operator.truediv, broadcast=True, out_kind="same", name="div", raises=True)
def truediv(g, ans, x, y):
    return g / y, -g * ans / y


@defgrad(operator.pow, broadcast=True, out_kind="same", name="pow", raises=_not_whole_power)
def power(g, ans, x, y):
    return (g * (y * x ** (y - 1) if y != 0 else 0.0 * x) if isinstance(y, (int, float))
            else g * power_base_grad(x, y)), g * ans * np.log(np.where(x == 0, 1.0, x))


@defgrad(operator.pow, scalar=True)
def power_scalar(g, ans, x, y):
    return (g * y * x ** (y - 1) if y != 0 else 0.0 * g), (g * ans * math.log(x) if x > 0 else
                                                            (0.0 * g if x == 0 else math.nan))


@defgrad(operator.neg, out_kind="same", name="neg", forward="elementwise")
def neg(g, ans, x):
    return -g


@defgrad(operator.pos, out_kind="same", name="pos", forward="elementwise")
def pos(g, ans, x):
    return g


@defgrad(operator.matmul, name="matmul", forward="multilinear")
def matmul(g, ans, x, y):
    return matmul_grad_left(g, x, y), matmul_grad_right(g, x, y)


# x - (x // y) * y, for floats and arrays
@defgrad(operator.mod, broadcast=True, out_kind="same", name="mod", raises=True)
def mod(g, ans, x, y):
    return g, -g * (x // y)


@defgrad(operator.floordiv, wrt=(), discrete=("x", "y"), out_kind="same", name="floordiv", raises=True)
def floordiv(g, ans, x, y):
    return ()


# --- builtins --------------------------------------------------------------------------------------------------


@defgrad(abs, out_kind="same", forward="elementwise")
def abs_(g, ans, x):
    return g * np.sign(x)


@defgrad(abs, scalar=True)
def abs_scalar(g, ans, x):
    return g * (float(x > 0) - float(x < 0))


@defgrad(max, out_kind="same", forward="elementwise", view=True)  # max(x, y) is x or y
def max_(g, ans, x, y):
    return g * ((x > y) + 0.5 * (x == y)), g * ((y > x) + 0.5 * (x == y))


@defgrad(min, out_kind="same", forward="elementwise", view=True)
def min_(g, ans, x, y):
    return g * ((x < y) + 0.5 * (x == y)), g * ((y < x) + 0.5 * (x == y))


# max(iterable) and max(a, b, c, ...) (whose arguments the lowering packs into a tuple): ties share 1/k each; the
# result is one of the items
@defgrad(("builtin", "max of items"), wrt=("iterable",), name="max", view=True)
def max_items(g, ans, iterable):
    return extreme_items_grad(g, ans, iterable)


defgrad(("builtin", "min of items"), wrt=("iterable",), name="min", view=True)(max_items)


@defjvp(("builtin", "max of items"))
@defjvp(("builtin", "min of items"))
def extreme_items_jvp(iterable_dot, ans, iterable):
    return extreme_items_tangent(iterable_dot, ans, iterable)


@defgrad(float, out_kind="scalar", forward="elementwise")
def float_(g, ans, x):
    return g


# Comparisons and friends produce values that carry no gradient.
for _op in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, operator.not_,
            operator.is_, operator.is_not, operator.contains, operator.truth):
    nondifferentiable(_op, name=_op.__name__.strip("_"), out_kind="scalar")
# Bitwise operators take integers, booleans and masks (a float raises TypeError, in numpy too): no derivative.
for _op in (operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift, operator.invert):
    nondifferentiable(_op, name=_op.__name__.strip("_"), out_kind="same", raises=True)
# (not str, repr: float(str(x)) is x; not id, hash: no number near x gives the same one)
for _fn in (len, int, bool, round, range, isinstance, print, type):
    nondifferentiable(_fn, out_kind="scalar")


# (not a full reduction: sum(x) of a matrix is its row sum, a vector)
@defgrad(sum, wrt=("iterable", "start"), forward="linear")
def builtin_sum(g, ans, iterable, start=0):
    return builtin_sum_grad(g, iterable), g


@defgrad(setitem, wrt=("x", "value"), discrete=("index",), name="setitem", forward="linear")
def setitem_(g, ans, x, index, value):
    return setitem_rest_grad(g, index), setitem_value_grad(g, index, value)
