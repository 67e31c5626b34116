"""Gradient cases (joined to tests/rule_cases.py's table when scipy is installed) for the scipy rules: special
functions, distributions, linear algebra, convolution. Inputs are inside each function's domain; every parameter a
rule takes is passed by some case (tests/test_rule_signatures.py checks it).

``SMOOTH_UNDIFFERENTIATED`` lists the parameters whose value the result depends on smoothly but which no rule
differentiates (a gradient reaching them is refused): tests/test_trust_arguments.py checks the list is exact.
"""

import numpy as np
import scipy.linalg as linalg
import scipy.signal as signal
import scipy.special as special
import scipy.stats as stats
from rule_cases import A, N, U, away_from_zero, bshape, case, shape_of, spd, well_conditioned, with_weight

SMOOTH_UNDIFFERENTIATED = {
    ("scipy.special.gammainc", "a"), ("scipy.special.gammaincc", "a"), ("scipy.special.iv", "v"),
    ("scipy.special.ive", "v"), ("scipy.special.jv", "v"),
    *((f"scipy.stats.{d}.{m}", s) for d, shapes in (("t", ("df",)), ("gamma", ("a",)), ("beta", ("a", "b")),
                                                    ("chi2", ("df",)))
      for m in ("cdf", "logcdf", "sf", "logsf") for s in shapes),
}

# --- scipy.special: elementwise ---------------------------------------------------------------------------------------


def unary(op):
    def f(x, w):
        return np.sum(op(x) * w)
    f.__name__ = f"special_{op.__name__}"
    return f


def positive(lo=0.3, hi=4.0):
    return lambda s=(): U(lo, hi, s)


UNARY = [
    (special.expit, N), (special.logit, positive(0.1, 0.9)), (special.erf, N), (special.erfc, N),
    (special.erfinv, lambda s=(): U(-0.9, 0.9, s)), (special.erfcinv, positive(0.1, 1.9)), (special.ndtr, N),
    (special.log_ndtr, lambda s=(): U(-6.0, 3.0, s)), (special.ndtri, positive(0.05, 0.95)),
    (special.gammaln, positive()), (special.gamma, positive()), (special.rgamma, positive()),
    (special.digamma, positive()), (special.entr, positive(0.1, 2.0)), (special.i0, N), (special.i0e, away_from_zero),
    (special.i1, N), (special.i1e, away_from_zero), (special.j0, positive(0.5, 5.0)), (special.j1, N),
    (special.y0, positive(0.5, 5.0)), (special.y1, positive(0.5, 5.0)),
]

for _op, _dom in UNARY:
    case(_op, unary(_op), with_weight(_dom((3, 4)), out=shape_of), name=f"special-{_op.__name__}-array")
    case(_op, unary(_op), with_weight(_dom(), out=shape_of), name=f"special-{_op.__name__}-float")

case(special.gammaln, unary(special.gammaln), with_weight(U(-2.8, -2.2, (4,)), out=shape_of),
     name="special-gammaln-negative")
case(special.psi, unary(special.psi), with_weight(positive()((4,)), out=shape_of), name="special-psi")


def binary(op):
    def f(x, y, w):
        return np.sum(op(x, y) * w)
    f.__name__ = f"special_{op.__name__}"
    return f


BINARY = [  # (function, domain of each operand, the operands differentiated)
    (special.beta, positive(0.5, 3.0), positive(0.5, 3.0), (0, 1)),
    (special.betaln, positive(0.5, 3.0), positive(0.5, 3.0), (0, 1)),
    (special.xlogy, N, positive(0.2, 3.0), (0, 1)), (special.xlog1py, N, positive(-0.5, 2.0), (0, 1)),
    (special.rel_entr, positive(0.1, 2.0), positive(0.1, 2.0), (0, 1)),
    (special.gammainc, positive(0.5, 3.0), positive(0.2, 4.0), (1,)),
    (special.gammaincc, positive(0.5, 3.0), positive(0.2, 4.0), (1,)),
    (special.iv, positive(-1.5, 2.5), positive(0.2, 3.0), (1,)),
    (special.ive, positive(-1.5, 2.5), positive(0.2, 3.0), (1,)),
    (special.jv, positive(-1.5, 2.5), positive(0.5, 5.0), (1,)),
]

for _op, _d1, _d2, _wrt in BINARY:
    for _s1, _s2 in (((3, 4), (3, 4)), ((3, 1), (4,)), ((), (3, 4)), ((), ())):
        case(_op, binary(_op), with_weight(_d1(_s1), _d2(_s2), out=bshape), wrt=_wrt,
             name=f"special-{_op.__name__}-{_s1}-{_s2}")


def integer_orders(x, w):
    return (np.sum(special.jn(2, x) * w) + np.sum(special.yn(3, x) * w) + np.sum(special.polygamma(1, x) * w)
            + np.sum(special.polygamma(np.array([0, 2, 1, 0]), x)))


def yn_orders(x):
    return np.sum(special.yn(np.array([0, 1, 2, 4]), x))


def multigammaln_fn(a, w):
    return np.sum(special.multigammaln(a, 3) * w) + special.multigammaln(a[0], d=1)


case(special.yn, integer_orders, A(U(0.5, 5.0, (4,)), N((4,))), name="special-integer-orders")
case(special.yn, yn_orders, A(U(0.5, 5.0, (4,))), name="special-yn")
case(special.polygamma, integer_orders, A(U(0.5, 5.0, (4,)), N((4,))), name="special-polygamma")
case(special.multigammaln, multigammaln_fn, A(U(1.6, 4.0, (4,)), N((4,))), name="special-multigammaln")

# --- scipy.special: reductions ----------------------------------------------------------------------------------------


def logsumexp_axes(a, w):
    return (special.logsumexp(a) + np.sum(special.logsumexp(a, axis=0) * w[0])
            + np.sum(special.logsumexp(a, 1, keepdims=True) * w[:, :1]) + special.logsumexp(a, axis=(0, -1)))


def logsumexp_weights(a, b, w):
    return np.sum(special.logsumexp(a, axis=-1, b=b) * w[:, 0]) + special.logsumexp(a, b=b[0])


def logsumexp_sign(a, b):  # weights of both signs: the sign carries no gradient
    lse, sign = special.logsumexp(a, b=b, return_sign=True)
    out = special.logsumexp(a, 0, b, True, True)
    return lse * sign + np.sum(out[0]) + lse


def signed_weights(rng):
    a = rng.normal(size=(3, 4))
    b = rng.uniform(0.5, 1.5, size=(3, 4)) * np.where(rng.uniform(size=(3, 4)) < 0.3, -0.2, 1.0)
    return a, b


case(special.logsumexp, logsumexp_axes, A(N((3, 4)), N((3, 4))), name="logsumexp-axes")
case(special.logsumexp, logsumexp_weights, A(N((3, 4)), U(0.2, 2.0, (4,)), N((3, 4))), wrt=(0, 1),
     name="logsumexp-b")
case(special.logsumexp, logsumexp_sign, signed_weights, wrt=(0, 1), name="logsumexp-return-sign")


def softmaxes(x, w):
    return (np.sum(special.softmax(x) * w) + np.sum(special.softmax(x, axis=1) * w ** 2)
            + np.sum(special.log_softmax(x) * w) + np.sum(special.log_softmax(x, axis=0) * w ** 2))


case(special.softmax, softmaxes, A(N((3, 4)), N((3, 4))), name="softmax")
case(special.log_softmax, softmaxes, A(N((3, 4)), N((3, 4))), name="log_softmax")

# --- scipy.stats: continuous distributions ------------------------------------------------------------------------

CONTINUOUS = {  # name -> (domain of x, of loc, of scale, of each shape parameter)
    "norm": (N, N, positive(0.5, 2.0), ()),
    "t": (N, N, positive(0.5, 2.0), (positive(2.0, 6.0),)),
    "gamma": (positive(0.5, 3.0), positive(-0.3, 0.2), positive(0.5, 2.0), (positive(1.5, 4.0),)),
    "beta": (positive(0.2, 0.8), positive(-0.1, 0.1), positive(1.0, 1.2), (positive(1.5, 4.0), positive(1.5, 4.0))),
    "chi2": (positive(0.5, 3.0), positive(-0.3, 0.2), positive(0.5, 2.0), (positive(2.5, 5.0),)),
    "expon": (positive(0.5, 3.0), positive(-0.3, 0.2), positive(0.5, 2.0), ()),
    "laplace": (away_from_zero, positive(-0.1, 0.1), positive(0.5, 2.0), ()),
    "logistic": (N, N, positive(0.5, 2.0), ()),
    "cauchy": (N, N, positive(0.5, 2.0), ()),
}
METHODS = ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")


def continuous_fn(method, n_shapes):
    """method(x, *shapes, loc, scale) summed with weights; loc and scale by position, then by keyword."""
    def f0(x, loc, scale, w):
        return np.sum(method(x, loc, scale) * w) + np.sum(method(x, scale=scale, loc=loc) ** 2) + np.sum(method(x))
    def f1(x, loc, scale, s1, w):
        return np.sum(method(x, s1, loc, scale) * w) + np.sum(method(x, s1, scale=scale, loc=loc) ** 2)
    def f2(x, loc, scale, s1, s2, w):
        return np.sum(method(x, s1, s2, loc, scale) * w) + np.sum(method(x, s1, s2, scale=scale, loc=loc) ** 2)
    return (f0, f1, f2)[n_shapes]


for _name, (_dx, _dloc, _dscale, _dshapes) in CONTINUOUS.items():
    _dist = getattr(stats, _name)
    for _m in METHODS:
        _method = getattr(_dist, _m)
        _density = _m in ("logpdf", "pdf")
        _wrt = (0, 1, 2) + (tuple(range(3, 3 + len(_dshapes))) if _density else ())
        _makers = [_dx((5,)), _dloc(), _dscale()] + [d() for d in _dshapes]
        case(_method, continuous_fn(_method, len(_dshapes)),
             with_weight(*_makers, out=lambda x, *rest: np.shape(x)), wrt=_wrt, name=f"stats-{_name}-{_m}")

# Broadcast parameters, and Python numbers throughout.


def norm_broadcast(x, loc, scale, w):
    return np.sum(stats.norm.logpdf(x, loc, scale) * w) + stats.norm.logpdf(x[0, 0], loc[0], scale)


def t_float(x, df, scale):
    return stats.t.logpdf(x, df, 0.5, scale) + stats.t.cdf(x, 3.5, scale=scale)


case(stats.norm.logpdf, norm_broadcast, A(N((3, 4)), N((4,)), U(0.5, 2.0), N((3, 4))), wrt=(0, 1, 2),
     name="stats-norm-logpdf-broadcast")
case(stats.t.logpdf, t_float, A(N(), U(2.0, 6.0), U(0.5, 2.0)), wrt=(0, 1, 2), name="stats-t-float")

# --- scipy.stats: discrete distributions --------------------------------------------------------------------------

K = np.array([0, 1, 3, 4, 7])


def discrete_fn(method, shapes):
    """method(k, *shapes) and method(k + 2, *shapes, loc=2) (the same values), weighted."""
    def f1(mu, w):
        return np.sum(method(K, mu) * w) + np.sum(method(K + 2, mu, loc=2) * w)

    def f2(p, w):  # n = 9 trials (a count: discrete)
        return np.sum(method(K, 9, p) * w) + np.sum(method(K + 2, 9, p, 2) * w)

    def f3(n, p, w):  # n real (nbinom)
        return np.sum(method(K, n, p) * w) + np.sum(method(K + 2, n, p, loc=2) ** 2)

    return {"poisson": f1, "binom": f2, "nbinom": f3}[shapes]


for _m in ("logpmf", "pmf"):
    case(getattr(stats.poisson, _m), discrete_fn(getattr(stats.poisson, _m), "poisson"), A(U(0.5, 4.0), N((5,))),
         name=f"stats-poisson-{_m}")
    case(getattr(stats.binom, _m), discrete_fn(getattr(stats.binom, _m), "binom"), A(U(0.2, 0.8, (5,)), N((5,))),
         name=f"stats-binom-{_m}")
    case(getattr(stats.nbinom, _m), discrete_fn(getattr(stats.nbinom, _m), "nbinom"),
         A(U(1.0, 5.0), U(0.2, 0.8), N((5,))), wrt=(0, 1), name=f"stats-nbinom-{_m}")

# --- scipy.stats: dirichlet and multivariate_normal ------------------------------------------------------------------


def simplex(k, samples=()):
    def make(rng):
        v = rng.uniform(0.3, 1.0, size=(k,) + samples)
        return v / np.sum(v, axis=0)
    return make


def dirichlet_fn(alpha, x, xs, w):  # (x on the simplex: only its first K-1 components can move, see below)
    return (stats.dirichlet.logpdf(x, alpha) + np.sum(stats.dirichlet.logpdf(xs, alpha) * w)
            + stats.dirichlet.pdf(x, alpha) + np.sum(stats.dirichlet.pdf(xs, alpha) * w))


def dirichlet_implicit(x, alpha, xs, w):  # the first K-1 components: scipy completes the simplex
    return (stats.dirichlet.logpdf(x[:2], alpha) + stats.dirichlet.pdf(x[:2] * 1.0, alpha)
            + np.sum(stats.dirichlet.logpdf(xs[:2], alpha) * w) + np.sum(stats.dirichlet.pdf(xs[:2], alpha) * w))


for _m in ("logpdf", "pdf"):
    case(getattr(stats.dirichlet, _m), dirichlet_fn, A(U(0.5, 3.0, (3,)), simplex(3), simplex(3, (4,)), N((4,))),
         name=f"stats-dirichlet-{_m}")
    case(getattr(stats.dirichlet, _m), dirichlet_implicit, A(simplex(3), U(0.5, 3.0, (3,)), simplex(3, (4,)), N((4,))),
         wrt=(0, 1, 2),
         name=f"stats-dirichlet-{_m}-implicit")


def mvn_fn(method):
    def f(x, mean, cov, w):
        return (np.sum(method(x, mean, cov) * w) + method(x[0], mean=mean, cov=cov, allow_singular=False)
                + np.sum(method(x, mean, np.diagonal(cov))) + np.sum(method(x[1], cov=cov[0, 0] * np.eye(3)))
                + method(x[2], mean, 1.5) + method(x[1], None, cov))
    return f


def mvn_one_dimensional(x, mean, var):  # dimension 1: a vector of samples
    return np.sum(stats.multivariate_normal.logpdf(x, mean, var)) + stats.multivariate_normal.pdf(x[0], mean, var)


for _m in ("logpdf", "pdf"):
    _method = getattr(stats.multivariate_normal, _m)
    case(_method, mvn_fn(_method), A(N((4, 3)), N((3,)), spd(3), N((4,))), wrt=(0, 1, 2),
         name=f"stats-multivariate_normal-{_m}")
    case(_method, mvn_one_dimensional, A(N((5,)), N(), U(0.5, 2.0)), wrt=(0, 1, 2),
         name=f"stats-multivariate_normal-{_m}-1d")

# --- scipy.signal.convolve ------------------------------------------------------------------------------------------


def convolve_1d(a, v, w):
    return (np.sum(signal.convolve(a, v) * w[:9]) + np.sum(signal.convolve(a, v, mode="same") * w[:6])
            + np.sum(signal.convolve(a, v, "valid") * w[:3]) + np.sum(signal.convolve(v, a, "valid") ** 2)
            + np.sum(signal.convolve(v, a, mode="same", method="direct") * w[:4]))


def convolve_2d(a, v, w):
    return (np.sum(signal.convolve(a, v, method="fft") * w) + np.sum(signal.convolve(a, v, "same") ** 2)
            + np.sum(signal.convolve(a, v, "valid") * w[:2, :3]))


case(signal.convolve, convolve_1d, A(N((6,)), N((4,)), N((9,))), wrt=(0, 1), name="convolve-1d")
case(signal.convolve, convolve_2d, A(N((4, 5)), N((3, 3)), N((6, 7))), wrt=(0, 1), name="convolve-2d")

# --- scipy.linalg ---------------------------------------------------------------------------------------------------


def solve_triangular_fn(a, b, w):
    return (np.sum(linalg.solve_triangular(a, b) * w) + np.sum(linalg.solve_triangular(a, b, lower=True) ** 2)
            + np.sum(linalg.solve_triangular(a, b[:, 0], trans=1, lower=True))
            + np.sum(linalg.solve_triangular(a, b, 'T', False, True, check_finite=False) * w)
            + np.sum(linalg.solve_triangular(a, b, trans=2, unit_diagonal=True, lower=True) * w))


case(linalg.solve_triangular, solve_triangular_fn, A(well_conditioned(3), N((3, 2)), N((3, 2))), wrt=(0, 1),
     name="solve_triangular")


def cholesky_fn(a, w):
    return (np.sum(linalg.cholesky(a) * w) + np.sum(linalg.cholesky(a, lower=True) * w)
            + np.sum(linalg.cholesky(a, True, check_finite=False) ** 2))


case(linalg.cholesky, cholesky_fn, A(spd(3), N((3, 3))), name="scipy-cholesky")


def cho_factor_fn(a, w):
    c, low = linalg.cho_factor(a)
    c2, _ = linalg.cho_factor(a, lower=True, check_finite=False)
    return np.sum(c * w) + np.sum(c2 * w ** 2) + float(low)


def cho_solve_fn(a, b, w):
    factor = linalg.cho_factor(a, True)
    upper = linalg.cho_factor(a)
    return (np.sum(linalg.cho_solve(factor, b) * w) + np.sum(linalg.cho_solve(upper, b[:, 0]))
            + np.sum(linalg.cho_solve((linalg.cholesky(a), False), b, check_finite=False) ** 2))


case(linalg.cho_factor, cho_factor_fn, A(spd(3), N((3, 3))), name="cho_factor")
case(linalg.cho_solve, cho_solve_fn, A(spd(3), N((3, 2)), N((3, 2))), wrt=(0, 1), name="cho_solve")


def expm_fn(a, w):
    return np.sum(linalg.expm(a) * w) + np.sum(linalg.expm(a[None] * 0.5))


def sqrtm_fn(a, w):
    return np.sum(linalg.sqrtm(a) * w)


case(linalg.expm, expm_fn, A(lambda rng: 0.5 * rng.normal(size=(3, 3)), N((3, 3))), name="expm")
case(linalg.sqrtm, sqrtm_fn, A(spd(3), N((3, 3))), name="sqrtm")
