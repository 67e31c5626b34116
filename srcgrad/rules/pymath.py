"""Derivative rules: the ``math`` module (Python floats in, Python floats out, adjoints in ``math`` too).

``lgamma``/``gamma`` use :func:`srcgrad.runtime.digamma` (math has none); ``prod`` and ``fsum`` take an iterable
(a list or tuple: one adjoint per element; an array: its rows) and ``prod``'s ``start``.
"""

import math

from srcgrad.rules.registry import defgrad, defjvp, nondifferentiable
from srcgrad.runtime import builtin_sum_grad, digamma, math_prod_grad, math_prod_start_grad, math_prod_tangent


def _scalar(func, **kw):
    """A function of Python numbers to a Python number, elementwise; it raises on some inputs (``math.log(-1)``), as
    every ``out_kind="scalar"`` primitive does."""
    return defgrad(func, out_kind="scalar", forward="elementwise", **kw)


@_scalar(math.exp, float_valued=True)
def exp(g, ans, x):
    return g * ans


@_scalar(math.log, wrt=("x", "base"), float_valued=True)
def log(g, ans, x, base=math.e):
    return g / (x * math.log(base)), -g * ans / (base * math.log(base))


@_scalar(math.log2, float_valued=True)
def log2(g, ans, x):
    return g / (x * math.log(2.0))


@_scalar(math.log10, float_valued=True)
def log10(g, ans, x):
    return g / (x * math.log(10.0))


@_scalar(math.log1p, float_valued=True)
def log1p(g, ans, x):
    return g / (1.0 + x)


@_scalar(math.expm1, float_valued=True)
def expm1(g, ans, x):
    return g * (ans + 1.0)


@_scalar(math.sqrt, float_valued=True)
def sqrt(g, ans, x):
    return g / (2.0 * ans)


@_scalar(math.sin, float_valued=True)
def sin(g, ans, x):
    return g * math.cos(x)


@_scalar(math.cos, float_valued=True)
def cos(g, ans, x):
    return -g * math.sin(x)


@_scalar(math.tan, float_valued=True)
def tan(g, ans, x):
    return g * (1.0 + ans * ans)


@_scalar(math.tanh, float_valued=True)
def tanh(g, ans, x):
    return g * (1.0 - ans * ans)


@_scalar(math.sinh, float_valued=True)
def sinh(g, ans, x):
    return g * math.cosh(x)


@_scalar(math.cosh, float_valued=True)
def cosh(g, ans, x):
    return g * math.sinh(x)


@_scalar(math.asin)
def asin(g, ans, x):
    return g / math.sqrt(1.0 - x * x)


@_scalar(math.acos)
def acos(g, ans, x):
    return -g / math.sqrt(1.0 - x * x)


@_scalar(math.atan)
def atan(g, ans, x):
    return g / (1.0 + x * x)


@_scalar(math.asinh)
def asinh(g, ans, x):
    return g / math.sqrt(x * x + 1.0)


@_scalar(math.acosh)
def acosh(g, ans, x):
    return g / math.sqrt(x * x - 1.0)


@_scalar(math.atanh)
def atanh(g, ans, x):
    return g / (1.0 - x * x)


@_scalar(math.atan2)
def atan2(g, ans, y, x):
    return g * x / (x * x + y * y), -g * y / (x * x + y * y)


@_scalar(math.hypot)
def hypot(g, ans, x, y):
    return g * x / ans, g * y / ans


@_scalar(math.pow)
def pow_(g, ans, x, y):
    return g * y * math.pow(x, y - 1.0), (g * ans * math.log(x) if x > 0 else (0.0 * g if x == 0 else math.nan))


@_scalar(math.fabs)
def fabs(g, ans, x):
    return g * (float(x > 0) - float(x < 0))


@_scalar(math.erf)
def erf(g, ans, x):
    return g * 2.0 / math.sqrt(math.pi) * math.exp(-x * x)


@_scalar(math.lgamma)
def lgamma(g, ans, x):
    return g * digamma(x)


@_scalar(math.gamma)
def gamma(g, ans, x):
    return g * ans * digamma(x)


@defgrad(math.prod, wrt=("iterable", "start"), out_kind="scalar")
def prod(g, ans, iterable, *, start=1):
    return math_prod_grad(g, iterable, start), math_prod_start_grad(g, iterable)


@defjvp(math.prod)
def prod_jvp(iterable_dot, start_dot, ans, iterable, *, start=1):
    return math_prod_tangent(iterable_dot, start_dot, iterable, start)


@defgrad(math.fsum, out_kind="scalar", forward="linear")  # the correctly rounded sum: each element gets g
def fsum(g, ans, seq):
    return builtin_sum_grad(g, seq)


for _fn in (math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite):
    nondifferentiable(_fn, out_kind="scalar")
