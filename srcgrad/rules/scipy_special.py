"""Derivative rules: ``scipy.special`` (registered only when scipy imports; see srcgrad/rules/__init__.py).

In: calls like ``scipy.special.expit(x)``, ``special.logsumexp(a, axis=0, b=w)``, ``special.gammainc(a, x)``.
Out: the contribution of the output's adjoint to each differentiable argument.

What holds:
- the ufuncs (expit, erf, gammaln, xlogy, the Bessel functions...) are elementwise and broadcast: their rules are
  closed-form derivatives (``erfinv' = sqrt(pi)/2 exp(erfinv(x)^2)``, ``iv'(v, x) = (iv(v-1, x) + iv(v+1, x))/2``),
  their tangents the same expressions (diagonal Jacobians); ufunc keywords (``out=``, ``where=``) are refused;
- orders and counts that are integers are discrete: ``polygamma``'s ``n``, ``yn``'s ``n``, ``multigammaln``'s ``d``;
  a real order whose derivative has no closed form is refused when a gradient reaches it: ``iv``/``ive``/``jv``
  (= ``jn``)'s ``v``, and ``gammainc``/``gammaincc``'s ``a`` (differentiate the incomplete gamma in ``x`` only);
- ``logsumexp`` takes ``axis``, weights ``b`` (differentiable, broadcast against ``a``), ``keepdims`` and
  ``return_sign`` (then it returns ``(lse, sign)``; the sign carries no gradient); ``softmax``/``log_softmax`` take
  ``axis``;
- ``psi`` is ``digamma`` and ``jn`` is ``jv`` (the same objects in scipy): one rule each.
"""

import math

import numpy as np
import scipy.special as special

from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.scipy_runtime import (
    log_softmax_grad,
    logsumexp_grad_a,
    logsumexp_grad_b,
    logsumexp_tangent,
    multigammaln_grad,
    softmax_grad,
)

SQRT_PI = math.sqrt(math.pi)
SQRT_2PI = math.sqrt(2.0 * math.pi)


def _ufunc(func, **kw):
    return defgrad(func, broadcast=True, name=f"scipy.special.{func.__name__}", **kw)


# --- logistic, error functions, normal distribution ----------------------------------------------------------------


@_ufunc(special.expit)
def expit(g, ans, x):
    return g * ans * (1.0 - ans)


@_ufunc(special.logit)
def logit(g, ans, x):
    return g / (x * (1.0 - x))


@_ufunc(special.erf)
def erf(g, ans, x):
    return g * (2.0 / SQRT_PI) * np.exp(-x * x)


@_ufunc(special.erfc)
def erfc(g, ans, x):
    return -g * (2.0 / SQRT_PI) * np.exp(-x * x)


@_ufunc(special.erfinv)
def erfinv(g, ans, x):
    return g * (SQRT_PI / 2.0) * np.exp(ans * ans)


@_ufunc(special.erfcinv)
def erfcinv(g, ans, x):
    return -g * (SQRT_PI / 2.0) * np.exp(ans * ans)


@_ufunc(special.ndtr)
def ndtr(g, ans, x):
    return g * np.exp(-0.5 * x * x) / SQRT_2PI


@_ufunc(special.log_ndtr)  # exp(log pdf - log cdf): no underflow far in the left tail
def log_ndtr(g, ans, x):
    return g * np.exp(-0.5 * x * x - ans) / SQRT_2PI


@_ufunc(special.ndtri)
def ndtri(g, ans, x):
    return g * SQRT_2PI * np.exp(0.5 * ans * ans)


# --- gamma and beta functions ---------------------------------------------------------------------------------------


@_ufunc(special.gammaln)
def gammaln(g, ans, x):
    return g * special.digamma(x)


@_ufunc(special.gamma)
def gamma(g, ans, x):
    return g * ans * special.digamma(x)


@_ufunc(special.rgamma)
def rgamma(g, ans, x):
    return -g * ans * special.digamma(x)


# d/dx of the regularised incomplete gamma functions: the gamma density x^(a-1) e^-x / Gamma(a). The derivative in
# `a` has no closed form: `a` is not differentiated (a gradient reaching it is refused).
@_ufunc(special.gammainc, wrt=("x",))
def gammainc(g, ans, a, x):
    return g * np.exp((a - 1.0) * np.log(x) - x - special.gammaln(a))


@_ufunc(special.gammaincc, wrt=("x",))
def gammaincc(g, ans, a, x):
    return -g * np.exp((a - 1.0) * np.log(x) - x - special.gammaln(a))


@_ufunc(special.digamma)  # also special.psi (the same ufunc)
def digamma(g, ans, x):
    return g * special.polygamma(1, x)


@defgrad(special.polygamma, wrt=("x",), discrete=("n",), broadcast=True, name="scipy.special.polygamma")
def polygamma(g, ans, n, x):
    return g * special.polygamma(n + 1, x)


# raises (ValueError) where a <= (d - 1) / 2, as math does outside its domain
@defgrad(special.multigammaln, wrt=("a",), discrete=("d",), broadcast=True, name="scipy.special.multigammaln",
         raises=True)
def multigammaln(g, ans, a, d):
    return multigammaln_grad(g, a, d)


@_ufunc(special.beta)
def beta(g, ans, a, b):
    return (g * ans * (special.digamma(a) - special.digamma(a + b)),
            g * ans * (special.digamma(b) - special.digamma(a + b)))


@_ufunc(special.betaln)
def betaln(g, ans, a, b):
    return g * (special.digamma(a) - special.digamma(a + b)), g * (special.digamma(b) - special.digamma(a + b))


# --- information theory ---------------------------------------------------------------------------------------------


@_ufunc(special.xlogy)
def xlogy(g, ans, x, y):
    return g * np.log(y), g * x / y


@_ufunc(special.xlog1py)
def xlog1py(g, ans, x, y):
    return g * np.log1p(y), g * x / (1.0 + y)


@_ufunc(special.entr)
def entr(g, ans, x):
    return -g * (np.log(x) + 1.0)


@_ufunc(special.rel_entr)
def rel_entr(g, ans, x, y):
    return g * (np.log(x / y) + 1.0), -g * x / y


# --- Bessel functions (the order is constant: integer orders are discrete, real ones refused) ----------------------


@_ufunc(special.i0)
def i0(g, ans, x):
    return g * special.i1(x)


@_ufunc(special.i0e)
def i0e(g, ans, x):
    return g * (special.i1e(x) - np.sign(x) * ans)


@_ufunc(special.i1)  # I1' = (I0 + I2) / 2: no division by x
def i1(g, ans, x):
    return g * 0.5 * (special.i0(x) + special.iv(2, x))


@_ufunc(special.i1e)
def i1e(g, ans, x):
    return g * (0.5 * (special.i0e(x) + special.ive(2, x)) - np.sign(x) * ans)


@_ufunc(special.iv, wrt=("x",))
def iv(g, ans, v, x):
    return g * 0.5 * (special.iv(v - 1.0, x) + special.iv(v + 1.0, x))


@_ufunc(special.ive, wrt=("x",))
def ive(g, ans, v, x):
    return g * (0.5 * (special.ive(v - 1.0, x) + special.ive(v + 1.0, x)) - np.sign(x) * ans)


@_ufunc(special.j0)
def j0(g, ans, x):
    return -g * special.j1(x)


@_ufunc(special.j1)
def j1(g, ans, x):
    return g * 0.5 * (special.j0(x) - special.jv(2, x))


@_ufunc(special.jv, wrt=("x",))  # also special.jn (the same ufunc)
def jv(g, ans, v, x):
    return g * 0.5 * (special.jv(v - 1.0, x) - special.jv(v + 1.0, x))


@_ufunc(special.y0)
def y0(g, ans, x):
    return -g * special.y1(x)


@_ufunc(special.y1)
def y1(g, ans, x):
    return g * 0.5 * (special.y0(x) - special.yn(2, x))


@_ufunc(special.yn, wrt=("x",), discrete=("n",))
def yn(g, ans, n, x):
    return g * 0.5 * (special.yn(n - 1, x) - special.yn(n + 1, x))


# --- reductions over an axis ----------------------------------------------------------------------------------------


@defgrad(special.logsumexp, wrt=("a", "b"), discrete=("axis", "keepdims", "return_sign"),
         name="scipy.special.logsumexp")
def logsumexp(g, ans, a, axis=None, b=None, keepdims=False, return_sign=False):
    return (logsumexp_grad_a(g, ans, a, axis, b, keepdims, return_sign),
            logsumexp_grad_b(g, ans, a, axis, b, keepdims, return_sign))


@defjvp(special.logsumexp)
def logsumexp_jvp(a_dot, b_dot, ans, a, axis=None, b=None, keepdims=False, return_sign=False):
    return logsumexp_tangent(a_dot, b_dot, ans, a, axis, b, keepdims, return_sign)


@defgrad(special.softmax, wrt=("x",), discrete=("axis",), name="scipy.special.softmax")
def softmax(g, ans, x, axis=None):
    return softmax_grad(g, ans, axis)


@defjvp(special.softmax)
def softmax_jvp(x_dot, ans, x, axis=None):
    return ans * (x_dot - np.sum(ans * x_dot, axis=axis, keepdims=True))


@defgrad(special.log_softmax, wrt=("x",), discrete=("axis",), name="scipy.special.log_softmax")
def log_softmax(g, ans, x, axis=None):
    return log_softmax_grad(g, ans, axis)


@defjvp(special.log_softmax)
def log_softmax_jvp(x_dot, ans, x, axis=None):
    return x_dot - np.sum(np.exp(ans) * x_dot, axis=axis, keepdims=True)
