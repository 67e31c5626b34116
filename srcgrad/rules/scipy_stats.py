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
- the rules are a table (each distribution's shape parameters, each method's differentiated ones): each is the
  function :func:`srcgrad.rules.registry.rule_function` defines from its text, inlined like a written rule;
- frozen distributions (``stats.norm(0, 1).logpdf(x)``) and the other methods are not differentiated: the call is
  refused (srcgrad has no rule for it) when a gradient reaches it.
"""

import scipy.stats as stats

from srcgrad.rules.registry import defgrad, defjvp, rule_function
from srcgrad.scipy_runtime import (  # noqa: F401 (the rules' text reads them)
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

# distribution -> its shape parameters, in scipy's order (then loc=0, scale=1)
CONTINUOUS = {"norm": (), "t": ("df",), "gamma": ("a",), "beta": ("a", "b"), "chi2": ("df",), "expon": (),
              "laplace": (), "logistic": (), "cauchy": ()}
DENSITIES = ("logpdf", "pdf")  # differentiated in the shape parameters too
TAILS = ("cdf", "logcdf", "sf", "logsf")  # in x, loc and scale only
# distribution -> (its shape parameters, the differentiated ones); k and loc=0 are discrete
DISCRETE = {"poisson": (("mu",), ("mu",)), "binom": (("n", "p"), ("p",)), "nbinom": (("n", "p"), ("n", "p"))}
MULTIVARIATE = {  # distribution -> its parameters, the differentiated ones, its helpers' names
    "dirichlet": ("x, alpha", ("x", "alpha"), ("dirichlet_grad_x", "dirichlet_grad_alpha"), "dirichlet_tangent"),
    "multivariate_normal": ("x, mean=None, cov=1, allow_singular=False", ("x", "mean", "cov"),
                            ("mvn_grad_x", "mvn_grad_mean", "mvn_grad_cov"), "mvn_tangent"),
}


def _declare(dist: str, method: str, params: str, wrt: tuple[str, ...], terms: list[str], **facts) -> None:
    """The rule of ``stats.<dist>.<method>(<params>)``: ``terms`` are the contributions to ``wrt``."""
    returns = terms[0] if len(terms) == 1 else "(" + ", ".join(terms) + ")"
    func = getattr(getattr(stats, dist), method)
    rule = rule_function(globals(), f"{dist}_{method}", f"g, ans, {params}", returns)
    defgrad(func, wrt=wrt, name=f"scipy.stats.{dist}.{method}", **facts)(rule)


def _tuple(names: tuple[str, ...]) -> str:
    return "(" + "".join(f"{n}, " for n in names) + ")"


for _dist, _shapes in CONTINUOUS.items():
    for _method in DENSITIES + TAILS:
        _wrt = ("x", *(_shapes if _method in DENSITIES else ()), "loc", "scale")
        _which = ['"x"', *(map(str, range(len(_shapes))) if _method in DENSITIES else ()), '"loc"', '"scale"']
        _declare(_dist, _method, ", ".join(("x", *_shapes, "loc=0", "scale=1")), _wrt,
                 [f'g * continuous_partial(stats.{_dist}, "{_method}", {w}, ans, x, {_tuple(_shapes)}, loc, scale)'
                  for w in _which], broadcast=True)

for _dist, (_shapes, _wrt) in DISCRETE.items():
    for _method in ("logpmf", "pmf"):
        _partials = [f'discrete_partial(stats.{_dist}, "{_method}", {_shapes.index(w)}, ans, k, {_tuple(_shapes)}, loc)'
                     for w in _wrt]
        _declare(_dist, _method, ", ".join(("k", *_shapes, "loc=0")), _wrt, [f"g * {p}" for p in _partials],
                 discrete=("k", *(s for s in _shapes if s not in _wrt), "loc"), broadcast=True)

# dirichlet: components on the first axis of x, samples on the others; multivariate_normal: samples on the leading
# axes of x, the dimension last. Their tangent rules are their own (they are not elementwise).
for _dist, (_params, _wrt, _grads, _tangent) in MULTIVARIATE.items():
    _args = ", ".join(p.split("=")[0] for p in _params.split(", ") if not p.startswith("allow"))
    for _method in DENSITIES:
        _declare(_dist, _method, _params, _wrt, [f'{h}(g, ans, {_args}, "{_method}")' for h in _grads],
                 discrete=("allow_singular",) if "allow_singular" in _params else ())
        _dots = ", ".join(f"{w}_dot" for w in _wrt)
        _jvp = rule_function(globals(), f"{_dist}_{_method}_jvp", f"{_dots}, ans, {_params}",
                             f'{_tangent}({_dots}, ans, {_args}, "{_method}")')
        defjvp(getattr(getattr(stats, _dist), _method))(_jvp)
