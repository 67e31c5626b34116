"""Helpers of the scipy rules (srcgrad/rules/scipy_*.py): the adjoints and tangents too long for one expression.

In: the operands of a scipy call, its output ``ans`` and the output's adjoint ``g`` (or the operands' tangents).
Out: the contribution to one operand (or the output's tangent), shaped like that operand.
What holds: imported only once the user's code imported scipy (the rules register only then); like
:mod:`srcgrad.runtime`, these are plain functions of numpy and scipy values, which standalone emitted modules copy;
they read scipy's submodules as attributes of ``scipy`` (loaded on first use); broadcasting of elementwise functions
is undone by the adjoint stage, not here.
"""

from __future__ import annotations

import numpy as np
import scipy  # (its submodules load on first use: only those the user's code imported are)

from srcgrad.runtime import SeqGrad, cholesky_grad, cholesky_jvp, normalize_axes, restore_axes, unbroadcast

# --- scipy.special: reductions over an axis -------------------------------------------------------------------------


def _kept(value, a, axis, keepdims):
    """A reduction's result with the reduced axes kept (size 1), so that it broadcasts against ``a``."""
    value = np.asarray(value)
    if keepdims or axis is None and value.ndim == np.ndim(a):
        return value
    if axis is None:
        return np.reshape(value, (1,) * np.ndim(a))
    return np.expand_dims(value, normalize_axes(axis, np.ndim(a)))


def _weighted(a, b):
    """``a`` and ``b`` broadcast together, as logsumexp does first (``b`` None: no weights)."""
    a = np.asarray(a, dtype=float)
    if b is None:
        return a, None
    a, b = np.broadcast_arrays(a, np.asarray(b, dtype=float))
    return a, b


def logsumexp_weights(ans, a, axis, b, keepdims, return_sign):
    """d lse / d(b * exp(a)) times exp(a): ``exp(a - lse) * sign`` per element (``ans``: logsumexp's output)."""
    if not return_sign:
        return np.exp(a - _kept(ans, a, axis, keepdims))
    return np.exp(a - _kept(ans[0], a, axis, keepdims)) * _kept(ans[1], a, axis, keepdims)


def logsumexp_grad_a(g, ans, a, axis, b, keepdims, return_sign):
    """Adjoint of ``logsumexp(a, axis, b, keepdims, return_sign)`` for ``a``: ``g * b * exp(a - lse) * sign``."""
    full_a, full_b = _weighted(a, b)
    g = restore_axes(g[0] if return_sign else g, full_a, axis, keepdims)
    weights = logsumexp_weights(ans, full_a, axis, b, keepdims, return_sign)
    return unbroadcast(g * (weights if full_b is None else weights * full_b), a)


def logsumexp_grad_b(g, ans, a, axis, b, keepdims, return_sign):
    """Adjoint of logsumexp for the weights ``b``: ``g * exp(a - lse) * sign``."""
    full_a, _ = _weighted(a, b)
    g = restore_axes(g[0] if return_sign else g, full_a, axis, keepdims)
    return unbroadcast(g * logsumexp_weights(ans, full_a, axis, b, keepdims, return_sign), b)


def logsumexp_tangent(a_dot, b_dot, ans, a, axis, b, keepdims, return_sign):
    """Tangent of logsumexp: ``sum(w * (b * a_dot + b_dot))`` over ``axis``, ``w = exp(a - lse) * sign``."""
    full_a, full_b = _weighted(a, b)
    weights = logsumexp_weights(ans, full_a, axis, b, keepdims, return_sign)
    inner = a_dot if full_b is None else full_b * a_dot + b_dot
    total = np.sum(np.broadcast_to(weights * inner, full_a.shape), axis=axis, keepdims=keepdims)
    return (total, 0.0 * ans[1]) if return_sign else total


def softmax_grad(g, ans, axis):
    return ans * (g - np.sum(g * ans, axis=axis, keepdims=True))


def log_softmax_grad(g, ans, axis):
    return g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)


def multigammaln_grad(g, a, d):
    """d/da of log Gamma_d(a) = sum over j < d of digamma(a - j / 2)."""
    return g * sum(scipy.special.digamma(np.asarray(a, dtype=float) - j / 2.0) for j in range(int(d)))


# --- scipy.stats: univariate distributions with loc and scale --------------------------------------------------------

# d log f / dz of the standard density (z = (x - loc) / scale), by distribution, given its shape parameters.
def _score(name, z, shapes):
    if name == "norm":
        return -z
    if name == "t":
        (df,) = shapes
        return -(df + 1.0) * z / (df + z * z)
    if name == "gamma":
        (a,) = shapes
        return (a - 1.0) / z - 1.0
    if name == "beta":
        a, b = shapes
        return (a - 1.0) / z - (b - 1.0) / (1.0 - z)
    if name == "chi2":
        (df,) = shapes
        return (0.5 * df - 1.0) / z - 0.5
    if name == "expon":
        return -np.ones_like(z)
    if name == "laplace":
        return -np.sign(z)
    if name == "logistic":
        return -np.tanh(0.5 * z)
    if name == "cauchy":
        return -2.0 * z / (1.0 + z * z)
    raise ValueError(f"srcgrad: no score for scipy.stats.{name}")


def _shape_partial(name, which, z, shapes):
    """d log f / d(shape parameter ``which``) of the standard density at ``z``."""
    digamma = scipy.special.digamma
    if name == "t":
        (df,) = shapes
        return (0.5 * digamma(0.5 * (df + 1.0)) - 0.5 * digamma(0.5 * df) - 0.5 / df
                - 0.5 * np.log1p(z * z / df) + 0.5 * (df + 1.0) * z * z / (df * (df + z * z)))
    if name == "gamma":
        (a,) = shapes
        return np.log(z) - digamma(a)
    if name == "beta":
        a, b = shapes
        if which == 0:
            return np.log(z) - digamma(a) + digamma(a + b)
        return np.log1p(-z) - digamma(b) + digamma(a + b)
    if name == "chi2":
        (df,) = shapes
        return 0.5 * np.log(0.5 * z) - 0.5 * digamma(0.5 * df)
    raise ValueError(f"srcgrad: scipy.stats.{name} has no shape parameter {which}")


def continuous_partial(dist, method, which, ans, x, shapes, loc, scale):
    """d method(x, *shapes, loc, scale) / d(which) of the distribution ``dist`` (``scipy.stats.norm``...).

    ``which`` is "x", "loc", "scale" or the index of a shape parameter (log-densities only: the distribution
    functions' derivatives in their shapes have no closed form, and their rules do not take them)."""
    name = dist.name
    z = (x - loc) / scale
    if method in ("logpdf", "pdf"):
        if which == "x":
            partial = _score(name, z, shapes) / scale
        elif which == "loc":
            partial = -_score(name, z, shapes) / scale
        elif which == "scale":
            partial = -(_score(name, z, shapes) * z + 1.0) / scale
        else:
            partial = _shape_partial(name, which, z, shapes)
        return partial if method == "logpdf" else partial * ans
    # distribution functions: dF/dx is the density; F depends on (x, loc, scale) through z only
    chain = {"x": 1.0, "loc": -1.0, "scale": -z}[which]
    logpdf = dist.logpdf(x, *shapes, loc=loc, scale=scale)
    if method == "cdf":
        return chain * np.exp(logpdf)
    if method == "sf":
        return -chain * np.exp(logpdf)
    if method == "logcdf":
        return chain * np.exp(logpdf - ans)
    if method == "logsf":
        return -chain * np.exp(logpdf - ans)
    raise ValueError(f"srcgrad: no rule for scipy.stats.{name}.{method}")


def discrete_partial(dist, method, which, ans, k, shapes, loc):
    """d logpmf (or pmf) / d(shape parameter ``which``) of the distribution ``dist`` at ``k``."""
    name = dist.name
    k = k - loc
    if name == "poisson":
        (mu,) = shapes
        partial = k / mu - 1.0
    elif name == "binom":
        n, p = shapes
        partial = k / p - (n - k) / (1.0 - p)
    elif name == "nbinom":
        n, p = shapes
        if which == 0:
            partial = scipy.special.digamma(n + k) - scipy.special.digamma(n) + np.log(p)
        else:
            partial = n / p - k / (1.0 - p)
    else:
        raise ValueError(f"srcgrad: no rule for scipy.stats.{name}.{method}")
    return partial if method == "logpmf" else partial * ans


# --- scipy.stats: dirichlet and multivariate_normal ----------------------------------------------------------------


def _dirichlet_full(x, alpha):
    """``x`` with all components (scipy accepts the first K-1 and completes the simplex); whether it did."""
    x = np.asarray(x, dtype=float)
    if x.shape[0] + 1 == np.shape(alpha)[0]:
        return np.concatenate([x, 1.0 - np.sum(x, axis=0, keepdims=True)], axis=0), True
    return x, False


def _along_components(values, x):
    """A per-component vector shaped to broadcast against ``x`` (components on axis 0)."""
    return np.reshape(values, np.shape(values) + (1,) * (np.ndim(x) - 1))


def dirichlet_grad_x(g, ans, x, alpha, method):
    full, completed = _dirichlet_full(x, alpha)
    score = _along_components(np.asarray(alpha, dtype=float) - 1.0, full) / full
    if completed:  # the last component is 1 - sum of the others
        score = score[:-1] - score[-1:]
    return g * (score if method == "logpdf" else score * ans)


def dirichlet_grad_alpha(g, ans, x, alpha, method):
    full, _ = _dirichlet_full(x, alpha)
    alpha = np.asarray(alpha, dtype=float)
    per_sample = g if method == "logpdf" else g * ans  # one per sample (x's trailing axes)
    sample_axes = tuple(range(1, full.ndim))
    log_x = np.sum(np.log(full) * per_sample, axis=sample_axes)
    constant = scipy.special.digamma(np.sum(alpha)) - scipy.special.digamma(alpha)
    return constant * np.sum(per_sample) + log_x


def dirichlet_tangent(x_dot, alpha_dot, ans, x, alpha, method):
    full, completed = _dirichlet_full(x, alpha)
    alpha = np.asarray(alpha, dtype=float)
    x_dot = np.broadcast_to(x_dot, np.shape(x))
    if completed:
        x_dot = np.concatenate([x_dot, -np.sum(x_dot, axis=0, keepdims=True)], axis=0)
    by_x = np.sum(_along_components(alpha - 1.0, full) / full * x_dot, axis=0)
    constant = scipy.special.digamma(np.sum(alpha)) - scipy.special.digamma(alpha)
    alpha_dot = np.broadcast_to(alpha_dot, alpha.shape)
    by_alpha = np.sum(constant * alpha_dot) + np.sum(np.log(full) * _along_components(alpha_dot, full), axis=0)
    tangent = by_x + by_alpha
    return tangent if method == "logpdf" else tangent * ans


def _mvn_parts(x, mean, cov):
    """(samples as rows, mean, the full covariance scipy reads (its lower triangle), dimension) of a
    multivariate_normal call, following scipy's conventions for scalar, vector and matrix covariances."""
    cov = np.asarray(cov, dtype=float)
    if mean is not None:
        dim = np.size(mean)
    elif cov.ndim == 2:
        dim = cov.shape[0]
    else:
        dim = max(np.size(cov), 1)
    mean = np.zeros(dim) if mean is None else np.reshape(np.asarray(mean, dtype=float), (dim,))
    if cov.ndim == 0:
        full = cov * np.eye(dim)
    elif cov.ndim == 1:
        full = np.diag(cov)
    else:
        full = np.tril(cov) + np.swapaxes(np.tril(cov, -1), -1, -2)
    x = np.asarray(x, dtype=float)
    rows = x.reshape(-1, dim) if not (x.ndim == 1 and dim == 1) else x.reshape(-1, 1)
    return rows, mean, full


def _mvn_weights(g, ans, method, count):
    per_sample = g if method == "logpdf" else g * ans
    return np.reshape(np.broadcast_to(per_sample, np.shape(ans)), (count,))


def _mvn_residuals(x, mean, cov):
    rows, mean, full = _mvn_parts(x, mean, cov)
    solved = np.linalg.solve(full, (rows - mean).T).T  # cov^-1 (x - mean), one row per sample
    return rows, mean, full, solved


def mvn_grad_x(g, ans, x, mean, cov, method):
    rows, _, _, solved = _mvn_residuals(x, mean, cov)
    weights = _mvn_weights(g, ans, method, rows.shape[0])
    return np.reshape(-weights[:, None] * solved, np.shape(x))


def mvn_grad_mean(g, ans, x, mean, cov, method):
    rows, _, _, solved = _mvn_residuals(x, mean, cov)
    weights = _mvn_weights(g, ans, method, rows.shape[0])
    return np.reshape(np.sum(weights[:, None] * solved, axis=0), np.shape(mean))


def mvn_grad_cov(g, ans, x, mean, cov, method):
    """-1/2 sum over samples of w (cov^-1 - s s^T), s = cov^-1 (x - mean), as the gradient with respect to what
    scipy reads: the lower triangle of a matrix (off-diagonal entries count twice), the diagonal of a vector, the
    trace for a number."""
    rows, _, full, solved = _mvn_residuals(x, mean, cov)
    weights = _mvn_weights(g, ans, method, rows.shape[0])
    sym = -0.5 * (np.sum(weights) * np.linalg.inv(full) - (weights[:, None] * solved).T @ solved)
    cov = np.asarray(cov)
    if cov.ndim == 0:
        return np.trace(sym)
    if cov.ndim == 1:
        return np.diagonal(sym).copy()
    return np.tril(2.0 * sym) - np.diag(np.diagonal(sym))


def mvn_tangent(x_dot, mean_dot, cov_dot, ans, x, mean, cov, method):
    rows, mean_full, full, solved = _mvn_residuals(x, mean, cov)
    x_dot = np.reshape(np.broadcast_to(x_dot, np.shape(x)), rows.shape)
    mean_dot = np.reshape(np.broadcast_to(mean_dot, mean_full.shape), (1, -1))
    _, _, full_dot = _mvn_parts(x, mean, np.broadcast_to(cov_dot, np.shape(cov)))
    trace = np.trace(np.linalg.solve(full, full_dot))
    quadratic = np.einsum("si,ij,sj->s", solved, full_dot, solved)
    per_sample = -np.sum(solved * (x_dot - mean_dot), axis=1) - 0.5 * trace + 0.5 * quadratic
    tangent = np.reshape(per_sample, np.shape(ans))
    return tangent if method == "logpdf" else tangent * ans


# --- scipy.signal ---------------------------------------------------------------------------------------------------


def _full_adjoint(g, in1, in2, mode):
    """``g`` (of the output of convolve(in1, in2, mode)) placed in the full convolution's shape: 'same' and 'valid'
    are the centred part of 'full'."""
    full_shape = tuple(n1 + n2 - 1 for n1, n2 in zip(np.shape(in1), np.shape(in2)))
    g = np.asarray(g, dtype=float)
    if mode == "full":
        return np.broadcast_to(g, full_shape)
    g = np.broadcast_to(g, tuple(n1 if mode == "same" else abs(n1 - n2) + 1
                                 for n1, n2 in zip(np.shape(in1), np.shape(in2))))
    out = np.zeros(full_shape)
    out[tuple(slice((f - n) // 2, (f - n) // 2 + n) for f, n in zip(full_shape, g.shape))] = g
    return out


def convolve_grad(g, in1, in2, mode, other):
    """Adjoint of ``scipy.signal.convolve(in1, in2, mode)`` for ``in1`` (``other`` is ``in2``) or for ``in2``
    (``other`` is ``in1``): the correlation of the full-shaped adjoint with the other operand."""
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"srcgrad: scipy.signal.convolve mode {mode!r} (one of 'full', 'same', 'valid')")
    full = _full_adjoint(g, in1, in2, mode)
    return scipy.signal.correlate(full, other, mode="valid", method="direct")


# --- scipy.linalg ---------------------------------------------------------------------------------------------------


def _transposed(trans):
    return trans in (1, 2, "T", "C")


def _triangle(a, lower, unit_diagonal=False):
    """The part of ``a`` a triangular routine reads."""
    part = np.tril(a) if lower else np.triu(a)
    return part - np.diag(np.diagonal(part)) if unit_diagonal else part


def _flip(trans):
    return 0 if _transposed(trans) else 1


def solve_triangular_grad_b(g, a, trans, lower, unit_diagonal):
    return scipy.linalg.solve_triangular(a, g, trans=_flip(trans), lower=lower, unit_diagonal=unit_diagonal)


def solve_triangular_grad_a(g, ans, a, trans, lower, unit_diagonal):
    """-gb x^T for op(A) (transposed back for trans), restricted to the triangle read (no diagonal for
    unit_diagonal: it is not read)."""
    gb = solve_triangular_grad_b(g, a, trans, lower, unit_diagonal)
    grad = -np.outer(gb, ans) if np.ndim(ans) == 1 else -gb @ np.swapaxes(ans, -1, -2)
    return _triangle(grad.T if _transposed(trans) else grad, lower, unit_diagonal)


def solve_triangular_tangent(a_dot, b_dot, ans, a, b, trans, lower, unit_diagonal):
    m_dot = _triangle(np.broadcast_to(a_dot, np.shape(a)), lower, unit_diagonal)
    m_dot = m_dot.T if _transposed(trans) else m_dot
    rhs = np.broadcast_to(b_dot, np.shape(b)) - m_dot @ ans
    return scipy.linalg.solve_triangular(a, rhs, trans=trans, lower=lower, unit_diagonal=unit_diagonal)


def scipy_cholesky_grad(g, ans, lower):
    """Adjoint of ``scipy.linalg.cholesky(a, lower)``: LAPACK reads the lower triangle of ``a`` for lower=True, the
    upper one otherwise (upper: U = cholesky of a^T's lower triangle, transposed)."""
    if lower:
        return cholesky_grad(g, ans)
    return np.swapaxes(cholesky_grad(np.swapaxes(g, -1, -2), np.swapaxes(ans, -1, -2)), -1, -2)


def scipy_cholesky_tangent(a_dot, ans, lower):
    if lower:
        return cholesky_jvp(ans, a_dot)
    return np.swapaxes(cholesky_jvp(np.swapaxes(ans, -1, -2), np.swapaxes(a_dot, -1, -2)), -1, -2)


def cho_factor_grad(g, ans, lower):
    """Adjoint of ``(c, lower) = cho_factor(a, lower)``: ``c`` is the factor in one triangle and, in the other,
    ``a``'s own entries (scipy < 1.18: LAPACK leaves them as they were) or zeros (scipy 1.18)."""
    c, lower = ans
    g_c = np.asarray(g[0], dtype=float)
    factor = _triangle(c, lower)
    grad = scipy_cholesky_grad(_triangle(g_c, lower), factor, lower)
    if not _cho_factor_keeps_other_triangle():
        return grad
    return grad + (np.triu(g_c, 1) if lower else np.tril(g_c, -1))


def cho_factor_tangent(a_dot, ans, lower):
    c, lower = ans
    factor = _triangle(c, lower)
    a_dot = np.broadcast_to(a_dot, np.shape(c))
    tangent = scipy_cholesky_tangent(a_dot, factor, lower)
    if _cho_factor_keeps_other_triangle():
        tangent = tangent + (np.triu(a_dot, 1) if lower else np.tril(a_dot, -1))
    return tangent, 0.0 * lower


_CHO_FACTOR_KEEPS: list = []


def _cho_factor_keeps_other_triangle():
    """Does this scipy's ``cho_factor`` leave ``a``'s own entries in the triangle it does not use (scipy < 1.18),
    or zeros there (scipy 1.18)? Asked of scipy once, with a nonzero entry there."""
    if not _CHO_FACTOR_KEEPS:
        c, _ = scipy.linalg.cho_factor(np.array([[4.0, 0.0], [1.0, 4.0]]), lower=False)
        _CHO_FACTOR_KEEPS.append(bool(c[1, 0] != 0.0))
    return _CHO_FACTOR_KEEPS[0]


def cho_solve_grad_b(g, c_and_lower, check_finite):
    return scipy.linalg.cho_solve(c_and_lower, g, check_finite=check_finite)


def cho_solve_grad_c(g, ans, c_and_lower, check_finite):
    """The adjoint of the factor for x = A^-1 b, A = L L^T (or U^T U): G = -gb x^T, then dL = (G + G^T) L."""
    c, lower = c_and_lower
    gb = scipy.linalg.cho_solve(c_and_lower, g, check_finite=check_finite)
    grad = -np.outer(gb, ans) if np.ndim(ans) == 1 else -gb @ np.swapaxes(ans, -1, -2)
    sym = grad + grad.T
    factor = _triangle(c, lower)
    g_c = np.tril(sym @ factor) if lower else np.triu(factor @ sym)
    return SeqGrad((g_c, 0.0))


def cho_solve_tangent(c_and_lower_dot, b_dot, ans, c_and_lower, check_finite):
    c, lower = c_and_lower
    factor = _triangle(c, lower)
    c_dot = c_and_lower_dot[0] if isinstance(c_and_lower_dot, tuple) else c_and_lower_dot
    factor_dot = _triangle(np.broadcast_to(c_dot, np.shape(c)), lower)
    if lower:
        a_dot = factor_dot @ factor.T + factor @ factor_dot.T
    else:
        a_dot = factor_dot.T @ factor + factor.T @ factor_dot
    rhs = np.broadcast_to(b_dot, np.shape(ans)) - a_dot @ ans
    return scipy.linalg.cho_solve(c_and_lower, rhs, check_finite=check_finite)


def _expm_block(top_left, upper_right):
    """The upper-right block of expm([[M, E], [0, M]]): the derivative of expm at M in the direction E."""
    n = np.shape(top_left)[-1]
    zeros = np.zeros_like(top_left)
    block = np.concatenate([np.concatenate([top_left, upper_right], axis=-1),
                            np.concatenate([zeros, top_left], axis=-1)], axis=-2)
    return scipy.linalg.expm(block)[..., :n, n:]


def expm_grad(g, a):
    """Adjoint of expm: the derivative of expm at A^T in the direction g (the Frechet derivative is self-adjoint up
    to transposing A)."""
    a = np.asarray(a, dtype=float)
    return _expm_block(np.swapaxes(a, -1, -2), np.broadcast_to(np.asarray(g, dtype=float), a.shape))


def expm_tangent(a_dot, a):
    a = np.asarray(a, dtype=float)
    return _expm_block(a, np.broadcast_to(np.asarray(a_dot, dtype=float), a.shape))


def sqrtm_grad(g, ans):
    """Adjoint of X = sqrtm(A) (X X = A): solve X^T Y + Y X^T = g for Y."""
    xt = np.swapaxes(ans, -1, -2)
    return scipy.linalg.solve_sylvester(xt, xt, np.asarray(g, dtype=float) * np.ones_like(ans))


def sqrtm_tangent(a_dot, ans):
    """Tangent of X = sqrtm(A): solve X Y + Y X = A_dot for Y."""
    return scipy.linalg.solve_sylvester(ans, ans, np.asarray(a_dot, dtype=float) * np.ones_like(ans))
