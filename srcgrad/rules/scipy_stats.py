"""Derivative rules: ``scipy.stats`` distributions (registered only when scipy imports).

In: calls of the methods of scipy's distribution objects, such as ``scipy.stats.norm.logpdf(x, loc, scale)``,
``stats.t.cdf(x, df)``, ``stats.poisson.logpmf(k, mu)``, ``stats.multivariate_normal.logpdf(x, mean, cov)``.
Out: the contribution of the output's adjoint to each differentiable argument.

What holds:
- a rule is keyed by the bound method (``stats.norm.logpdf``): a new object at every attribute read, equal to the
  others (same instance, same function), so the lookup finds it; the call-time guard holds the distribution object;
- ``logpdf``/``pdf`` of norm, t, gamma, beta, chi2, expon, laplace, logistic and cauchy differentiate ``x``, the
  shape parameters, ``loc`` and ``scale``; ``cdf``/``logcdf``/``sf``/``logsf`` differentiate ``x``, ``loc`` and
  ``scale`` (their derivatives in the shape parameters have no closed form: a gradient reaching ``df``, ``a`` or
  ``b`` there is refused); every formula is in :func:`srcgrad.scipy_runtime.continuous_partial`;
- ``logpmf``/``pmf`` of poisson (``mu``), binom (``p``; ``n`` is a count) and nbinom (``n`` and ``p``, ``n`` real
  there): ``k`` and ``loc`` are discrete;
- ``dirichlet.logpdf``/``pdf`` differentiate ``x`` (all K components, or the first K-1 as scipy accepts) and
  ``alpha``; ``multivariate_normal.logpdf``/``pdf`` differentiate ``x``, ``mean`` and ``cov`` (a matrix, of which
  scipy reads the lower triangle: the gradient is with respect to those entries, as for np.linalg.cholesky; a vector
  of variances; a number). ``allow_singular`` is a flag: a singular covariance raises in the gradient;
- frozen distributions (``stats.norm(0, 1).logpdf(x)``) and the other methods are not differentiated: the call is
  refused (srcgrad has no rule for it) when a gradient reaches it.
"""

import scipy.stats as stats

from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.scipy_runtime import (
    continuous_partial,
    dirichlet_grad_alpha,
    dirichlet_grad_x,
    dirichlet_tangent,
    discrete_partial,
    mvn_grad_cov,
    mvn_grad_mean,
    mvn_grad_x,
    mvn_tangent,
)


def _name(method):
    return f"scipy.stats.{method.__self__.name}.{method.__name__}"


def _continuous(method, wrt):
    """A method of a continuous distribution: elementwise in x, loc, scale and the shapes (which broadcast)."""
    return defgrad(method, wrt=wrt, broadcast=True, name=_name(method))


def _discrete(method, wrt, discrete):
    return defgrad(method, wrt=wrt, discrete=discrete, broadcast=True, name=_name(method))


# --- norm ------------------------------------------------------------------------------------------------------------


@_continuous(stats.norm.logpdf, wrt=("x", "loc", "scale"))
def norm_logpdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.norm, "logpdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "logpdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "logpdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.norm.pdf, wrt=("x", "loc", "scale"))
def norm_pdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.norm, "pdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "pdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "pdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.norm.cdf, wrt=("x", "loc", "scale"))
def norm_cdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.norm, "cdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "cdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "cdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.norm.logcdf, wrt=("x", "loc", "scale"))
def norm_logcdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.norm, "logcdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "logcdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "logcdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.norm.sf, wrt=("x", "loc", "scale"))
def norm_sf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.norm, "sf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "sf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "sf", "scale", ans, x, (), loc, scale))


@_continuous(stats.norm.logsf, wrt=("x", "loc", "scale"))
def norm_logsf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.norm, "logsf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "logsf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.norm, "logsf", "scale", ans, x, (), loc, scale))


# --- t ---------------------------------------------------------------------------------------------------------------


@_continuous(stats.t.logpdf, wrt=("x", "df", "loc", "scale"))
def t_logpdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.t, "logpdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logpdf", 0, ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logpdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logpdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.t.pdf, wrt=("x", "df", "loc", "scale"))
def t_pdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.t, "pdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "pdf", 0, ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "pdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "pdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.t.cdf, wrt=("x", "loc", "scale"))
def t_cdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.t, "cdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "cdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "cdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.t.logcdf, wrt=("x", "loc", "scale"))
def t_logcdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.t, "logcdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logcdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logcdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.t.sf, wrt=("x", "loc", "scale"))
def t_sf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.t, "sf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "sf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "sf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.t.logsf, wrt=("x", "loc", "scale"))
def t_logsf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.t, "logsf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logsf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.t, "logsf", "scale", ans, x, (df,), loc, scale))


# --- gamma -----------------------------------------------------------------------------------------------------------


@_continuous(stats.gamma.logpdf, wrt=("x", "a", "loc", "scale"))
def gamma_logpdf(g, ans, x, a, loc=0, scale=1):
    return (g * continuous_partial(stats.gamma, "logpdf", "x", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logpdf", 0, ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logpdf", "loc", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logpdf", "scale", ans, x, (a,), loc, scale))


@_continuous(stats.gamma.pdf, wrt=("x", "a", "loc", "scale"))
def gamma_pdf(g, ans, x, a, loc=0, scale=1):
    return (g * continuous_partial(stats.gamma, "pdf", "x", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "pdf", 0, ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "pdf", "loc", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "pdf", "scale", ans, x, (a,), loc, scale))


@_continuous(stats.gamma.cdf, wrt=("x", "loc", "scale"))
def gamma_cdf(g, ans, x, a, loc=0, scale=1):
    return (g * continuous_partial(stats.gamma, "cdf", "x", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "cdf", "loc", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "cdf", "scale", ans, x, (a,), loc, scale))


@_continuous(stats.gamma.logcdf, wrt=("x", "loc", "scale"))
def gamma_logcdf(g, ans, x, a, loc=0, scale=1):
    return (g * continuous_partial(stats.gamma, "logcdf", "x", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logcdf", "loc", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logcdf", "scale", ans, x, (a,), loc, scale))


@_continuous(stats.gamma.sf, wrt=("x", "loc", "scale"))
def gamma_sf(g, ans, x, a, loc=0, scale=1):
    return (g * continuous_partial(stats.gamma, "sf", "x", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "sf", "loc", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "sf", "scale", ans, x, (a,), loc, scale))


@_continuous(stats.gamma.logsf, wrt=("x", "loc", "scale"))
def gamma_logsf(g, ans, x, a, loc=0, scale=1):
    return (g * continuous_partial(stats.gamma, "logsf", "x", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logsf", "loc", ans, x, (a,), loc, scale),
            g * continuous_partial(stats.gamma, "logsf", "scale", ans, x, (a,), loc, scale))


# --- beta ------------------------------------------------------------------------------------------------------------


@_continuous(stats.beta.logpdf, wrt=("x", "a", "b", "loc", "scale"))
def beta_logpdf(g, ans, x, a, b, loc=0, scale=1):
    return (g * continuous_partial(stats.beta, "logpdf", "x", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logpdf", 0, ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logpdf", 1, ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logpdf", "loc", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logpdf", "scale", ans, x, (a, b), loc, scale))


@_continuous(stats.beta.pdf, wrt=("x", "a", "b", "loc", "scale"))
def beta_pdf(g, ans, x, a, b, loc=0, scale=1):
    return (g * continuous_partial(stats.beta, "pdf", "x", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "pdf", 0, ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "pdf", 1, ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "pdf", "loc", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "pdf", "scale", ans, x, (a, b), loc, scale))


@_continuous(stats.beta.cdf, wrt=("x", "loc", "scale"))
def beta_cdf(g, ans, x, a, b, loc=0, scale=1):
    return (g * continuous_partial(stats.beta, "cdf", "x", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "cdf", "loc", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "cdf", "scale", ans, x, (a, b), loc, scale))


@_continuous(stats.beta.logcdf, wrt=("x", "loc", "scale"))
def beta_logcdf(g, ans, x, a, b, loc=0, scale=1):
    return (g * continuous_partial(stats.beta, "logcdf", "x", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logcdf", "loc", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logcdf", "scale", ans, x, (a, b), loc, scale))


@_continuous(stats.beta.sf, wrt=("x", "loc", "scale"))
def beta_sf(g, ans, x, a, b, loc=0, scale=1):
    return (g * continuous_partial(stats.beta, "sf", "x", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "sf", "loc", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "sf", "scale", ans, x, (a, b), loc, scale))


@_continuous(stats.beta.logsf, wrt=("x", "loc", "scale"))
def beta_logsf(g, ans, x, a, b, loc=0, scale=1):
    return (g * continuous_partial(stats.beta, "logsf", "x", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logsf", "loc", ans, x, (a, b), loc, scale),
            g * continuous_partial(stats.beta, "logsf", "scale", ans, x, (a, b), loc, scale))


# --- chi2 ------------------------------------------------------------------------------------------------------------


@_continuous(stats.chi2.logpdf, wrt=("x", "df", "loc", "scale"))
def chi2_logpdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.chi2, "logpdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logpdf", 0, ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logpdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logpdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.chi2.pdf, wrt=("x", "df", "loc", "scale"))
def chi2_pdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.chi2, "pdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "pdf", 0, ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "pdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "pdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.chi2.cdf, wrt=("x", "loc", "scale"))
def chi2_cdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.chi2, "cdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "cdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "cdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.chi2.logcdf, wrt=("x", "loc", "scale"))
def chi2_logcdf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.chi2, "logcdf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logcdf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logcdf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.chi2.sf, wrt=("x", "loc", "scale"))
def chi2_sf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.chi2, "sf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "sf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "sf", "scale", ans, x, (df,), loc, scale))


@_continuous(stats.chi2.logsf, wrt=("x", "loc", "scale"))
def chi2_logsf(g, ans, x, df, loc=0, scale=1):
    return (g * continuous_partial(stats.chi2, "logsf", "x", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logsf", "loc", ans, x, (df,), loc, scale),
            g * continuous_partial(stats.chi2, "logsf", "scale", ans, x, (df,), loc, scale))


# --- expon -----------------------------------------------------------------------------------------------------------


@_continuous(stats.expon.logpdf, wrt=("x", "loc", "scale"))
def expon_logpdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.expon, "logpdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "logpdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "logpdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.expon.pdf, wrt=("x", "loc", "scale"))
def expon_pdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.expon, "pdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "pdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "pdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.expon.cdf, wrt=("x", "loc", "scale"))
def expon_cdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.expon, "cdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "cdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "cdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.expon.logcdf, wrt=("x", "loc", "scale"))
def expon_logcdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.expon, "logcdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "logcdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "logcdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.expon.sf, wrt=("x", "loc", "scale"))
def expon_sf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.expon, "sf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "sf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "sf", "scale", ans, x, (), loc, scale))


@_continuous(stats.expon.logsf, wrt=("x", "loc", "scale"))
def expon_logsf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.expon, "logsf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "logsf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.expon, "logsf", "scale", ans, x, (), loc, scale))


# --- laplace ---------------------------------------------------------------------------------------------------------


@_continuous(stats.laplace.logpdf, wrt=("x", "loc", "scale"))
def laplace_logpdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.laplace, "logpdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "logpdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "logpdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.laplace.pdf, wrt=("x", "loc", "scale"))
def laplace_pdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.laplace, "pdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "pdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "pdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.laplace.cdf, wrt=("x", "loc", "scale"))
def laplace_cdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.laplace, "cdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "cdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "cdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.laplace.logcdf, wrt=("x", "loc", "scale"))
def laplace_logcdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.laplace, "logcdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "logcdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "logcdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.laplace.sf, wrt=("x", "loc", "scale"))
def laplace_sf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.laplace, "sf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "sf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "sf", "scale", ans, x, (), loc, scale))


@_continuous(stats.laplace.logsf, wrt=("x", "loc", "scale"))
def laplace_logsf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.laplace, "logsf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "logsf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.laplace, "logsf", "scale", ans, x, (), loc, scale))


# --- logistic --------------------------------------------------------------------------------------------------------


@_continuous(stats.logistic.logpdf, wrt=("x", "loc", "scale"))
def logistic_logpdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.logistic, "logpdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "logpdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "logpdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.logistic.pdf, wrt=("x", "loc", "scale"))
def logistic_pdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.logistic, "pdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "pdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "pdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.logistic.cdf, wrt=("x", "loc", "scale"))
def logistic_cdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.logistic, "cdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "cdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "cdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.logistic.logcdf, wrt=("x", "loc", "scale"))
def logistic_logcdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.logistic, "logcdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "logcdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "logcdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.logistic.sf, wrt=("x", "loc", "scale"))
def logistic_sf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.logistic, "sf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "sf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "sf", "scale", ans, x, (), loc, scale))


@_continuous(stats.logistic.logsf, wrt=("x", "loc", "scale"))
def logistic_logsf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.logistic, "logsf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "logsf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.logistic, "logsf", "scale", ans, x, (), loc, scale))


# --- cauchy ----------------------------------------------------------------------------------------------------------


@_continuous(stats.cauchy.logpdf, wrt=("x", "loc", "scale"))
def cauchy_logpdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.cauchy, "logpdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "logpdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "logpdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.cauchy.pdf, wrt=("x", "loc", "scale"))
def cauchy_pdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.cauchy, "pdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "pdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "pdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.cauchy.cdf, wrt=("x", "loc", "scale"))
def cauchy_cdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.cauchy, "cdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "cdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "cdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.cauchy.logcdf, wrt=("x", "loc", "scale"))
def cauchy_logcdf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.cauchy, "logcdf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "logcdf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "logcdf", "scale", ans, x, (), loc, scale))


@_continuous(stats.cauchy.sf, wrt=("x", "loc", "scale"))
def cauchy_sf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.cauchy, "sf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "sf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "sf", "scale", ans, x, (), loc, scale))


@_continuous(stats.cauchy.logsf, wrt=("x", "loc", "scale"))
def cauchy_logsf(g, ans, x, loc=0, scale=1):
    return (g * continuous_partial(stats.cauchy, "logsf", "x", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "logsf", "loc", ans, x, (), loc, scale),
            g * continuous_partial(stats.cauchy, "logsf", "scale", ans, x, (), loc, scale))


# --- poisson ---------------------------------------------------------------------------------------------------------


@_discrete(stats.poisson.logpmf, wrt=("mu",), discrete=("k", "loc"))
def poisson_logpmf(g, ans, k, mu, loc=0):
    return g * discrete_partial(stats.poisson, "logpmf", 0, ans, k, (mu,), loc)


@_discrete(stats.poisson.pmf, wrt=("mu",), discrete=("k", "loc"))
def poisson_pmf(g, ans, k, mu, loc=0):
    return g * discrete_partial(stats.poisson, "pmf", 0, ans, k, (mu,), loc)


# --- binom -----------------------------------------------------------------------------------------------------------


@_discrete(stats.binom.logpmf, wrt=("p",), discrete=("k", "n", "loc"))
def binom_logpmf(g, ans, k, n, p, loc=0):
    return g * discrete_partial(stats.binom, "logpmf", 1, ans, k, (n, p), loc)


@_discrete(stats.binom.pmf, wrt=("p",), discrete=("k", "n", "loc"))
def binom_pmf(g, ans, k, n, p, loc=0):
    return g * discrete_partial(stats.binom, "pmf", 1, ans, k, (n, p), loc)


# --- nbinom ----------------------------------------------------------------------------------------------------------


@_discrete(stats.nbinom.logpmf, wrt=("n", "p"), discrete=("k", "loc"))
def nbinom_logpmf(g, ans, k, n, p, loc=0):
    return (g * discrete_partial(stats.nbinom, "logpmf", 0, ans, k, (n, p), loc),
            g * discrete_partial(stats.nbinom, "logpmf", 1, ans, k, (n, p), loc))


@_discrete(stats.nbinom.pmf, wrt=("n", "p"), discrete=("k", "loc"))
def nbinom_pmf(g, ans, k, n, p, loc=0):
    return (g * discrete_partial(stats.nbinom, "pmf", 0, ans, k, (n, p), loc),
            g * discrete_partial(stats.nbinom, "pmf", 1, ans, k, (n, p), loc))



# --- dirichlet (components on the first axis of x, samples on the others) --------------------------------------------


@defgrad(stats.dirichlet.logpdf, name="scipy.stats.dirichlet.logpdf")
def dirichlet_logpdf(g, ans, x, alpha):
    return dirichlet_grad_x(g, ans, x, alpha, "logpdf"), dirichlet_grad_alpha(g, ans, x, alpha, "logpdf")


@defjvp(stats.dirichlet.logpdf)
def dirichlet_logpdf_jvp(x_dot, alpha_dot, ans, x, alpha):
    return dirichlet_tangent(x_dot, alpha_dot, ans, x, alpha, "logpdf")


@defgrad(stats.dirichlet.pdf, name="scipy.stats.dirichlet.pdf")
def dirichlet_pdf(g, ans, x, alpha):
    return dirichlet_grad_x(g, ans, x, alpha, "pdf"), dirichlet_grad_alpha(g, ans, x, alpha, "pdf")


@defjvp(stats.dirichlet.pdf)
def dirichlet_pdf_jvp(x_dot, alpha_dot, ans, x, alpha):
    return dirichlet_tangent(x_dot, alpha_dot, ans, x, alpha, "pdf")


# --- multivariate_normal (samples on the leading axes of x, the dimension last) --------------------------------------


@defgrad(stats.multivariate_normal.logpdf, wrt=("x", "mean", "cov"), discrete=("allow_singular",),
         name="scipy.stats.multivariate_normal.logpdf")
def multivariate_normal_logpdf(g, ans, x, mean=None, cov=1, allow_singular=False):
    return (mvn_grad_x(g, ans, x, mean, cov, "logpdf"), mvn_grad_mean(g, ans, x, mean, cov, "logpdf"),
            mvn_grad_cov(g, ans, x, mean, cov, "logpdf"))


@defjvp(stats.multivariate_normal.logpdf)
def multivariate_normal_logpdf_jvp(x_dot, mean_dot, cov_dot, ans, x, mean=None, cov=1, allow_singular=False):
    return mvn_tangent(x_dot, mean_dot, cov_dot, ans, x, mean, cov, "logpdf")


@defgrad(stats.multivariate_normal.pdf, wrt=("x", "mean", "cov"), discrete=("allow_singular",),
         name="scipy.stats.multivariate_normal.pdf")
def multivariate_normal_pdf(g, ans, x, mean=None, cov=1, allow_singular=False):
    return (mvn_grad_x(g, ans, x, mean, cov, "pdf"), mvn_grad_mean(g, ans, x, mean, cov, "pdf"),
            mvn_grad_cov(g, ans, x, mean, cov, "pdf"))


@defjvp(stats.multivariate_normal.pdf)
def multivariate_normal_pdf_jvp(x_dot, mean_dot, cov_dot, ans, x, mean=None, cov=1, allow_singular=False):
    return mvn_tangent(x_dot, mean_dot, cov_dot, ans, x, mean, cov, "pdf")
