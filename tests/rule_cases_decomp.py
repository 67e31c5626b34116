"""The rule table's cases for matrix decompositions (svd, svdvals, eigh, eigvalsh, eig, eigvals, pinv, qr, lstsq,
matrix_power, cond) and the matrix norms built on them; ``tests/rule_cases.py`` includes them in its ``CASES``.

Inputs are away from degeneracies (distinct singular values and eigenvalues, full rank, away from the cutoff of
``pinv``), and the functions use eigenvectors and singular vectors in ways that do not depend on their signs
(weighted sums of ``v_i v_i^T``, ``u diag(s) vt``, squares), so central differences are well defined whatever signs
LAPACK picks.
"""

from __future__ import annotations

import numpy as np
from rule_cases import A, N, case

# --- inputs ---------------------------------------------------------------------------------------------------------


def orthogonal(rng, n, batch=()):
    q, r = np.linalg.qr(rng.normal(size=batch + (n, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def with_singular_values(shape, values):
    """A matrix (or a stack) of ``shape`` with the given singular values (random singular vectors)."""
    def make(rng):
        m, n = shape[-2:]
        batch = shape[:-2]
        k = min(m, n)
        u = orthogonal(rng, m, batch)[..., :k]
        v = orthogonal(rng, n, batch)[..., :k]
        return (u * np.asarray(values, dtype=float)) @ np.swapaxes(v, -1, -2)
    return make


def spread(shape):
    """Distinct singular values 1, 1.6, 2.2, ... (well separated, no zero)."""
    k = min(shape[-2:])
    return with_singular_values(shape, 1.0 + 0.6 * np.arange(k)[::-1])


def symmetric(n, batch=(), values=None):
    """A symmetric matrix with distinct eigenvalues (of both signs unless given)."""
    def make(rng):
        q = orthogonal(rng, n, batch)
        w = np.linspace(-2.0, 2.5, n) if values is None else np.asarray(values, dtype=float)
        return (q * w) @ np.swapaxes(q, -1, -2)
    return make


def lower_only(n, batch=()):
    """Symmetric in its lower triangle, noise above it (which eigh/eigvalsh with UPLO='L' do not read)."""
    def make(rng):
        return np.tril(symmetric(n, batch)(rng)) + np.triu(rng.normal(size=batch + (n, n)), 1)
    return make


def upper_only(n, batch=()):
    def make(rng):
        return np.triu(symmetric(n, batch)(rng)) + np.tril(rng.normal(size=batch + (n, n)), -1)
    return make


def real_spectrum(n, values):
    """A non-symmetric matrix with the given real, distinct eigenvalues."""
    def make(rng):
        p = rng.normal(size=(n, n)) + 2.0 * np.eye(n)
        return p @ np.diag(values) @ np.linalg.inv(p)
    return make


def weights(*shape):
    return N(shape)


def _t(x):
    return np.swapaxes(x, -1, -2)


def projectors(vectors, c):
    """``sum_i c_i v_i v_i^T``: depends on each vector, not on its sign."""
    return (vectors * c) @ _t(vectors)


# --- svd ------------------------------------------------------------------------------------------------------------


def svd_reduced(a, c, w):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return np.sum(s * c) + np.sum(projectors(u, c) * w) + np.sum(projectors(_t(vt), c) ** 2) \
        + np.sum((u * s[..., None, :]) @ vt * a)


def svd_default(a, c, w):
    u, s, vt = np.linalg.svd(a)  # full_matrices=True: square here
    return np.sum(s * c) + np.sum(projectors(u, c) * w) + np.sum(projectors(_t(vt), c) * _t(w))


def svd_full_tall(a, c, w):
    """full_matrices=True: the extra columns of u only through their projector (their basis is LAPACK's)."""
    u, s, vt = np.linalg.svd(a, full_matrices=True)
    k = s.shape[-1]
    extra = u[..., k:]
    return np.sum(s * c) + np.sum(projectors(u[..., :k], c) * w) + np.sum((extra @ _t(extra)) * w) \
        + np.sum(projectors(_t(vt), c))


def svd_full_one_extra(a, c, w):
    """One extra column of u (m = n + 1): unique up to its sign, so any sign-invariant use has a gradient."""
    u, s, vt = np.linalg.svd(a, True)
    last = u[..., -1]
    return np.sum(np.outer(last, last) * w) + np.sum(s * c)


def svd_full_wide(a, c, w):
    u, s, vt = np.linalg.svd(a, full_matrices=True, compute_uv=True)
    k = s.shape[-1]
    extra = _t(vt)[..., k:]
    return np.sum(s * c) + np.sum((extra @ _t(extra)) * w) + np.sum(projectors(u, c))


def svd_values(a, c):
    return np.sum(np.linalg.svd(a, compute_uv=False) * c)


def svd_positional(a, c):
    return np.sum(np.linalg.svd(a, False, False, False) * c)


def svd_hermitian(a, c, w):
    u, s, vt = np.linalg.svd(a, hermitian=True)
    return np.sum(s * c) + np.sum(projectors(u, c) * w) + np.sum((u * s) @ vt * w) + np.sum(
        np.linalg.svd(a, compute_uv=False, hermitian=True) ** 2)


def svd_indexed(a, c):
    r = np.linalg.svd(a, full_matrices=False)
    return np.sum(r[1] * c) + np.sum((r[0] * r[1]) @ r[2] * a)


for _shape in ((5, 3), (3, 5), (4, 4), (2, 4, 3)):
    _k = min(_shape[-2:])
    case(np.linalg.svd, svd_reduced, A(spread(_shape), N((_k,)), N(_shape[:-1] + (_shape[-2],))),
         name=f"svd-reduced-{_shape}")
    case(np.linalg.svd, svd_values, A(spread(_shape), N((_k,))), name=f"svd-values-{_shape}")
case(np.linalg.svd, svd_default, A(spread((4, 4)), N((4,)), N((4, 4))), name="svd-default-square")
# (full_matrices=True with several extra columns has no forward mode: tests/test_decompositions.py checks it)
case(np.linalg.svd, svd_full_tall, A(spread((4, 3)), N((3,)), N((4, 4))), name="svd-full-tall")
case(np.linalg.svd, svd_full_tall, A(spread((2, 3, 2)), N((2,)), N((3, 3))), name="svd-full-tall-batched")
case(np.linalg.svd, svd_full_one_extra, A(spread((4, 3)), N((3,)), N((4, 4))), name="svd-full-one-extra")
case(np.linalg.svd, svd_full_wide, A(spread((2, 3)), N((2,)), N((3, 3))), name="svd-full-wide")
case(np.linalg.svd, svd_positional, A(spread((4, 3)), N((3,))), name="svd-positional")
case(np.linalg.svd, svd_hermitian, A(lower_only(4), N((4,)), N((4, 4))), name="svd-hermitian")
case(np.linalg.svd, svd_indexed, A(spread((5, 3)), N((3,))), name="svd-indexed")


NUMPY_EIG_REAL = np.linalg.eig(np.diag([1.0, 2.0]))[0].dtype.kind == "f"


# --- eigh, eigvalsh -------------------------------------------------------------------------------------------------


def eigh_default(a, c, w):
    vals, vecs = np.linalg.eigh(a)
    return np.sum(vals * c) + np.sum(projectors(vecs, c) * w)


def eigh_upper(a, c, w):
    vals, vecs = np.linalg.eigh(a, UPLO="U")
    return np.sum(vals ** 2 * c) + np.sum(projectors(vecs, c) * w)


def eigh_positional(a, c):
    r = np.linalg.eigh(a, "L")
    return np.sum(r[0] * c) + np.sum(projectors(r[1], r[0]) * a)


def eigvalsh_fn(a, c):
    return np.sum(np.linalg.eigvalsh(a) * c)


def eigvalsh_upper(a, c):
    return np.sum(np.linalg.eigvalsh(a, UPLO="U") * c) + np.sum(np.linalg.eigvalsh(a, "U") ** 3)


case(np.linalg.eigh, eigh_default, A(symmetric(4), N((4,)), N((4, 4))), name="eigh-symmetric")
case(np.linalg.eigh, eigh_default, A(lower_only(4), N((4,)), N((4, 4))), name="eigh-lower-read")
case(np.linalg.eigh, eigh_upper, A(upper_only(4), N((4,)), N((4, 4))), name="eigh-upper-read")
case(np.linalg.eigh, eigh_default, A(lower_only(3, (2,)), N((3,)), N((3, 3))), name="eigh-batched")
case(np.linalg.eigh, eigh_positional, A(symmetric(3), N((3,))), name="eigh-positional")
case(np.linalg.eigvalsh, eigvalsh_fn, A(lower_only(4), N((4,))), name="eigvalsh-lower-read")
case(np.linalg.eigvalsh, eigvalsh_upper, A(upper_only(3, (2,)), N((3,))), name="eigvalsh-upper-batched")


# --- eig (real eigenvalues) -----------------------------------------------------------------------------------------


def eig_fn(a, c, w):
    vals, vecs = np.linalg.eig(a)
    order = np.argsort(vals)  # LAPACK's order is its own: compare eigenpairs by value
    vals, vecs = vals[order], vecs[:, order]
    return np.sum(vals * c) + np.sum(projectors(vecs, c) * w)


def eig_values(a, c):
    return np.sum(np.sort(np.linalg.eig(a)[0]) * c)


if NUMPY_EIG_REAL:  # (numpy 2.5's eig returns complex arrays even for real eigenvalues)
    case(np.linalg.eig, eig_fn, A(real_spectrum(4, [-1.5, 0.5, 1.2, 2.5]), N((4,)), N((4, 4))), name="eig")
if NUMPY_EIG_REAL:  # (numpy 2.5's eig returns complex arrays even for real eigenvalues)
    case(np.linalg.eig, eig_fn, A(symmetric(3), N((3,)), N((3, 3))), name="eig-symmetric")
if NUMPY_EIG_REAL:  # (numpy 2.5's eig returns complex arrays even for real eigenvalues)
    case(np.linalg.eig, eig_values, A(real_spectrum(3, [0.7, 1.9, -2.0]), N((3,))), name="eig-values")


def eigvals_fn(a, c):
    return np.sum(np.sort(np.linalg.eigvals(a)) * c)


def svdvals_fn(x, c):
    return np.sum(np.linalg.svdvals(x) * c)


def eig_batched(a, w):
    vals, vecs = np.linalg.eig(a)
    return np.sum(np.sort(vals, axis=-1) * w) + np.sum(vecs ** 2 * w[:, None, :])


def real_spectra(rng):
    p = rng.normal(size=(2, 3, 3)) + 2.0 * np.eye(3)
    return p @ (np.array([-1.0, 0.5, 2.0])[:, None] * np.eye(3)) @ np.linalg.inv(p)


if NUMPY_EIG_REAL:  # (numpy 2.5's eig returns complex arrays even for real eigenvalues)
    case(np.linalg.eig, eig_batched, A(real_spectra, N((2, 3))), name="eig-batched")
if NUMPY_EIG_REAL:  # (numpy 2.5's eig returns complex arrays even for real eigenvalues)
    case(np.linalg.eigvals, eigvals_fn, A(real_spectrum(4, [0.7, 1.9, -2.0, -0.4]), N((4,))), name="eigvals")
if hasattr(np.linalg, "svdvals"):  # numpy >= 2
    case(np.linalg.svdvals, svdvals_fn, A(spread((2, 4, 3)), N((3,))), name="svdvals")


# --- pinv -----------------------------------------------------------------------------------------------------------


def pinv_fn(a, w):
    return np.sum(np.linalg.pinv(a) * w)


def pinv_cut(a, w):
    """Singular values 3, 1.5, 0.1 with a cutoff at 0.6 (rcond 0.2): the smallest is cut, far from the cutoff."""
    return np.sum(np.linalg.pinv(a, rcond=0.2) * w) + np.sum(np.linalg.pinv(a, rtol=0.2) * w ** 2)


def pinv_positional(a, w):
    return np.sum(np.linalg.pinv(a, 1e-12, False) * w)


def pinv_hermitian(a, w):
    return np.sum(np.linalg.pinv(a, hermitian=True) * w)


for _shape in ((5, 3), (3, 5), (4, 4), (2, 4, 3)):
    case(np.linalg.pinv, pinv_fn, A(spread(_shape), N(_shape[:-2] + _shape[-2:][::-1])), name=f"pinv-{_shape}")
case(np.linalg.pinv, pinv_cut, A(with_singular_values((5, 3), [3.0, 1.5, 0.1]), N((3, 5))), name="pinv-cut")
case(np.linalg.pinv, pinv_cut, A(with_singular_values((3, 3), [3.0, 3.0, 0.1]), N((3, 3))),
     name="pinv-cut-repeated")
case(np.linalg.pinv, pinv_fn, A(with_singular_values((4, 4), [1.0, 1.0, 1.0, 1.0]), N((4, 4))),
     name="pinv-orthogonal")
case(np.linalg.pinv, pinv_positional, A(spread((3, 4)), N((4, 3))), name="pinv-positional")
case(np.linalg.pinv, pinv_hermitian, A(lower_only(4), N((4, 4))), name="pinv-hermitian")


# --- qr -------------------------------------------------------------------------------------------------------------


def qr_reduced(a, c, w):
    q, r = np.linalg.qr(a)
    return np.sum(projectors(q, c) * w) + np.sum(r ** 2 * c[:, None]) + np.sum((q @ r) * a)


def qr_complete(a, c, w):
    q, r = np.linalg.qr(a, mode="complete")
    k = min(a.shape[-2], a.shape[-1])
    extra = q[..., k:]
    return np.sum(projectors(q[..., :k], c) * w) + np.sum((extra @ _t(extra)) * w) + np.sum(r ** 2)


def qr_r(a, w):
    return np.sum(np.linalg.qr(a, "r") ** 2 * w)


def qr_wide(a, c, w):
    q, r = np.linalg.qr(a, mode="reduced")
    return np.sum(projectors(q, c) * w) + np.sum(r ** 2 * w[:, :1]) + np.sum(q[:, :1] * r[:1, :] @ _t(a) * w)


for _shape in ((5, 3), (4, 4), (2, 4, 3)):
    _k = min(_shape[-2:])
    case(np.linalg.qr, qr_reduced, A(spread(_shape), N((_k,)), N((_shape[-2], _shape[-2]))), name=f"qr-{_shape}")
case(np.linalg.qr, qr_complete, A(spread((4, 3)), N((3,)), N((4, 4))), name="qr-complete-tall")
case(np.linalg.qr, qr_complete, A(spread((3, 5)), N((3,)), N((3, 3))), name="qr-complete-wide")
case(np.linalg.qr, qr_r, A(spread((5, 3)), N((3, 3))), name="qr-r")
case(np.linalg.qr, qr_wide, A(spread((3, 5)), N((3,)), N((3, 3))), name="qr-wide")


# --- lstsq ----------------------------------------------------------------------------------------------------------


def lstsq_all(a, b, c):
    x, residuals, rank, s = np.linalg.lstsq(a, b)
    return np.sum(x * c) + np.sum(residuals) * 0.5 + np.sum(s * np.arange(1.0, 4.0)) + rank


def lstsq_cut(a, b, c):
    """Singular values 3, 1.5, 0.1 and rcond 0.2: rank 2, no residuals, the minimum-norm solution."""
    r = np.linalg.lstsq(a, b, rcond=0.2)
    return np.sum(r[0] * c) + np.sum(r[0] ** 2)


def lstsq_positional(a, b, c):
    x = np.linalg.lstsq(a, b, None)[0]
    return np.sum(x * c)


case(np.linalg.lstsq, lstsq_all, A(spread((5, 3)), N((5,)), N((3,))), wrt=(0, 1), name="lstsq-vector")
case(np.linalg.lstsq, lstsq_all, A(spread((5, 3)), N((5, 2)), N((3, 2))), wrt=(0, 1), name="lstsq-matrix")
case(np.linalg.lstsq, lstsq_cut, A(with_singular_values((5, 3), [3.0, 1.5, 0.1]), N((5, 2)), N((3, 2))),
     wrt=(0, 1), name="lstsq-cut")
case(np.linalg.lstsq, lstsq_positional, A(spread((3, 5)), N((3,)), N((5,))), wrt=(0, 1), name="lstsq-wide")


# --- matrix_power ---------------------------------------------------------------------------------------------------


def matrix_power_fn(n):
    def f(a, w):
        return np.sum(np.linalg.matrix_power(a, n) * w)
    f.__name__ = f"matrix_power_{n}".replace("-", "minus")
    return f


def matrix_power_keyword(a, w):
    return np.sum(np.linalg.matrix_power(a, n=3) * w)


for _n in (0, 1, 2, 5, -1, -3):
    case(np.linalg.matrix_power, matrix_power_fn(_n), A(spread((3, 3)), N((3, 3))), name=f"matrix_power-{_n}")
case(np.linalg.matrix_power, matrix_power_keyword, A(spread((2, 3, 3)), N((2, 3, 3))), name="matrix_power-batched")


# --- cond -----------------------------------------------------------------------------------------------------------


def cond_fn(p):
    def f(x, w):
        return np.sum(np.linalg.cond(x, p) * w)
    f.__name__ = "cond_" + str(p).replace("-", "minus")
    return f


def cond_default(x):
    return np.linalg.cond(x)


for _p in (None, 2, -2, "fro", "nuc", np.inf, -np.inf, 1, -1):
    case(np.linalg.cond, cond_fn(_p), A(spread((2, 3, 3)), N((2,))), name=f"cond-{_p}")
case(np.linalg.cond, cond_default, A(spread((4, 4))), name="cond-default")
case(np.linalg.cond, cond_fn(None), A(spread((5, 3)), N(())), name="cond-tall")


# --- norms built on decompositions (more orders than tests/rule_cases.py's) -----------------------------------------


def norm_fn(ord, axis, keepdims):
    def f(x, w):
        return np.sum(np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims) * w)
    f.__name__ = "norm"
    return f


def norm_out(ord, axis, keepdims, shape):
    return np.shape(np.linalg.norm(np.ones(shape), ord=ord, axis=axis, keepdims=keepdims))


NORM_CASES = [  # (ord, axis, keepdims, shape)
    (-1, None, False, (5,)), (-2, None, False, (5,)), (-3.5, 0, True, (4, 3)), (1.5, -1, False, (2, 3, 4)),
    (2, None, True, (3, 4)), (-2, (1, 2), True, (2, 3, 4)), ("nuc", (-2, -1), True, (2, 4, 3)),
    (1, (2, 0), False, (3, 2, 4)), (-1, (0, 1), True, (3, 4, 2)), (np.inf, (1, 2), False, (2, 3, 4)),
    (-np.inf, (-1, -2), False, (2, 3, 4)), ("fro", None, True, (3, 4)),
]

for _ord, _axis, _keep, _shape in NORM_CASES:
    case(np.linalg.norm, norm_fn(_ord, _axis, _keep), A(spread(_shape) if len(_shape) > 1 and _ord in
                                                        (2, -2, "nuc") else N(_shape),
                                                        N(norm_out(_ord, _axis, _keep, _shape))),
         name=f"norm-decomp-ord{_ord}-axis{_axis}-keepdims{_keep}-{_shape}")
