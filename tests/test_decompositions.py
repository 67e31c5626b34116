"""Decompositions beyond the rule table (tests/rule_cases_decomp.py): what happens at degeneracies (repeated
eigenvalues and singular values, rank deficiency, complex eigenvalues), the extra columns of ``full_matrices`` /
``mode='complete'``, and refusals — each a ``UnsupportedValue`` naming the user's line, never nan or inf."""

from __future__ import annotations

import numpy as np
import pytest
from rule_cases_decomp import orthogonal, projectors, spread, with_singular_values

import srcgrad
from srcgrad.testing import check_grad, numerical_grad

RNG = np.random.default_rng(17)


def _line_of(fn, text):
    """``file:line`` of the line of ``fn`` that contains ``text``."""
    import inspect

    lines, first = inspect.getsourcelines(fn)
    index = next(i for i, line in enumerate(lines) if text in line)
    return f"{inspect.getsourcefile(fn)}:{first + index}:"


def with_eigenvalues(values, rng=RNG):
    q = orthogonal(rng, len(values))
    return (q * np.asarray(values, dtype=float)) @ q.T


def _refused(call, fn, text, words):
    with pytest.raises(srcgrad.UnsupportedValue) as info:
        call()
    message = str(info.value)
    assert _line_of(fn, text) in message, message
    assert words in message, message
    return message


# --- full_matrices=True / mode='complete' with several extra columns ------------------------------------------------


def svd_full_tall(a, c, w):
    u, s, vt = np.linalg.svd(a)
    extra = u[..., 3:]
    return np.sum(s * c) + np.sum(projectors(u[..., :3], c) * w) + np.sum((extra @ np.swapaxes(extra, -1, -2)) * w)


def svd_full_wide(a, c, w):
    u, s, vt = np.linalg.svd(a, full_matrices=True)
    extra = vt[2:]
    return np.sum(s * c) + np.sum((extra.T @ extra) * w) + np.sum(projectors(u, c))


def qr_complete(a, w):
    q, r = np.linalg.qr(a, mode="complete")
    extra = q[:, 2:]
    return np.sum((extra @ extra.T) * w) + np.sum(r ** 2)


def test_extra_columns_through_their_projector():
    """Several extra columns: their basis is LAPACK's, their span is not; a function of the span has a gradient."""
    check_grad(svd_full_tall, spread((6, 3))(RNG), RNG.normal(size=3), RNG.normal(size=(6, 6)))
    check_grad(svd_full_tall, spread((2, 5, 3))(RNG), RNG.normal(size=3), RNG.normal(size=(5, 5)))
    check_grad(svd_full_wide, spread((2, 5))(RNG), RNG.normal(size=2), RNG.normal(size=(5, 5)))
    check_grad(qr_complete, spread((5, 2))(RNG), RNG.normal(size=(5, 5)))


def svd_extra_column_itself(a, w):
    u, s, vt = np.linalg.svd(a)
    return np.sum(np.outer(u[:, 3], u[:, 3]) * w)


def qr_extra_column_itself(a, w):
    q, r = np.linalg.qr(a, mode="complete")
    return np.sum(q[:, 3:] ** 2 * w)


def test_extra_columns_used_one_by_one_are_refused():
    """One of several extra columns depends on LAPACK's choice of basis: no gradient (even though a sign-invariant
    use of it); the refusal names the line of the factorisation."""
    _refused(lambda: srcgrad.grad(svd_extra_column_itself)(spread((6, 3))(RNG), RNG.normal(size=(6, 6))),
             svd_extra_column_itself, "np.linalg.svd(a)", "basis")
    _refused(lambda: srcgrad.grad(qr_extra_column_itself)(spread((6, 3))(RNG), RNG.normal(size=(6, 3))),
             qr_extra_column_itself, "np.linalg.qr(a", "basis")


def test_extra_columns_have_no_forward_mode():
    a = spread((6, 3))(RNG)
    args = (a, RNG.normal(size=3), RNG.normal(size=(6, 6)), RNG.normal(size=a.shape))
    _refused(lambda: srcgrad.jvp(svd_full_tall)(*args), svd_full_tall, "np.linalg.svd(a)", "forward mode")
    a = spread((5, 2))(RNG)
    _refused(lambda: srcgrad.jvp(qr_complete)(a, RNG.normal(size=(5, 5)), RNG.normal(size=a.shape)), qr_complete,
             "np.linalg.qr(a", "forward mode")


# --- repeated eigenvalues and singular values ------------------------------------------------------------------------


def eigh_vectors(a, w):
    vals, vecs = np.linalg.eigh(a)
    return np.sum(projectors(vecs, np.arange(3.0)) * w)


def eigh_top_vector(a, w):
    vals, vecs = np.linalg.eigh(a)
    top = vecs[:, -1]
    return np.sum(np.outer(top, top) * w) + vals[-1]


def smallest_eigenvalue(a):
    return np.linalg.eigvalsh(a)[0]


def smallest_from_eigh(a):
    return np.linalg.eigh(a)[0][0] * 2.0


def eigenvalue_sum(a):
    return np.sum(np.linalg.eigvalsh(a, UPLO="U"))


def test_eigenvectors_of_a_repeated_eigenvalue_are_refused():
    a = with_eigenvalues([1.0, 1.0, 3.0])
    message = _refused(lambda: srcgrad.grad(eigh_vectors)(a, RNG.normal(size=(3, 3))), eigh_vectors,
                       "np.linalg.eigh(a)", "repeated")
    assert "nan" not in message
    _refused(lambda: srcgrad.grad(eigh_vectors)(np.eye(3), np.ones((3, 3))), eigh_vectors, "np.linalg.eigh(a)",
             "not unique")


def test_vectors_of_a_distinct_eigenvalue_next_to_a_repeated_one():
    """The top eigenvector is smooth while the two others share an eigenvalue: its gradient is checked."""
    check_grad(eigh_top_vector, with_eigenvalues([1.0, 1.0, 3.0]), RNG.normal(size=(3, 3)))


def test_repeated_eigenvalue_splits_its_gradient_equally():
    """An eigenvalue repeated twice: each copy gets half of the eigenspace's projector, which is what central
    differences see (as for np.max at a two-way tie); the sum of the eigenvalues (the trace) is exact anyway."""
    q = orthogonal(RNG, 3)
    a = (q * np.array([1.0, 1.0, 3.0])) @ q.T
    grad = srcgrad.grad(smallest_eigenvalue)(a)
    projector = q[:, :2] @ q[:, :2].T / 2.0
    expected = np.tril(2.0 * projector, -1) + np.diag(np.diag(projector))  # numpy reads the lower triangle
    np.testing.assert_allclose(grad, expected, atol=1e-12)
    np.testing.assert_allclose(grad, numerical_grad(smallest_eigenvalue, (a,), 0, 1e-6), atol=1e-6)
    np.testing.assert_allclose(srcgrad.grad(smallest_from_eigh)(a), 2.0 * expected, atol=1e-12)
    np.testing.assert_allclose(srcgrad.grad(eigenvalue_sum)(np.eye(3)), np.eye(3), atol=1e-12)
    assert np.all(np.isfinite(srcgrad.grad(smallest_eigenvalue)(np.eye(4))))


def test_forward_mode_at_repeated_eigenvalues():
    a = with_eigenvalues([1.0, 1.0, 3.0])
    t = RNG.normal(size=(3, 3))
    value, tangent = srcgrad.jvp(smallest_eigenvalue)(a, t)
    np.testing.assert_allclose(tangent, np.sum(srcgrad.grad(smallest_eigenvalue)(a) * t), atol=1e-12)
    _refused(lambda: srcgrad.jvp(eigh_vectors)(a, np.ones((3, 3)), t), eigh_vectors, "np.linalg.eigh(a)",
             "repeated eigenvalues")


def spectral_norm(a):
    return np.linalg.norm(a, 2)


def nuclear_norm(a):
    return np.linalg.norm(a, "nuc")


def svd_vectors(a):
    u, s, vt = np.linalg.svd(a)
    return np.sum(u[:, 0] ** 2 * s[0])


def test_repeated_singular_values():
    """The largest singular value repeated: the 2-norm splits its gradient (central differences agree); singular
    vectors of the repeated value are refused."""
    a = with_singular_values((4, 3), [2.0, 2.0, 1.0])(RNG)
    check_grad(spectral_norm, a)
    check_grad(nuclear_norm, with_singular_values((3, 3), [1.5, 1.5, 1.5])(RNG))
    _refused(lambda: srcgrad.grad(svd_vectors)(a), svd_vectors, "np.linalg.svd(a)", "repeated")


def svd_values_only(a):
    return np.sum(np.linalg.svd(a, compute_uv=False) ** 2)


def test_zero_singular_values():
    """A rank-deficient matrix: a function of the singular values has a gradient (a zero singular value is a kink,
    like abs at 0: it contributes none); the nuclear norm's is u v.T over the nonzero ones."""
    a = with_singular_values((4, 3), [2.0, 1.0, 0.0])(RNG)
    check_grad(svd_values_only, a)
    grad = srcgrad.grad(nuclear_norm)(a)
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(grad, u[:, :2] @ vt[:2], atol=1e-12)


# --- pinv at its cutoff, rank deficiency ----------------------------------------------------------------------------


def pinv_cut(a, w):
    return np.sum(np.linalg.pinv(a, rcond=1e-3) * w)


def test_pinv_of_a_rank_deficient_matrix():
    """Exactly rank 2 and a cutoff: small perturbations stay cut, so central differences see the function whose
    gradient srcgrad computes."""
    check_grad(pinv_cut, with_singular_values((5, 4), [3.0, 1.0, 0.0, 0.0])(RNG), RNG.normal(size=(4, 5)))


def qr_fn(a):
    q, r = np.linalg.qr(a)
    return np.sum(q[:, :1] ** 2) + np.sum(r ** 2)


def qr_raw(a):
    h, tau = np.linalg.qr(a, mode="raw")
    return np.sum(h) + np.sum(tau)


def test_qr_refusals():
    rank_one = np.outer(RNG.normal(size=4), RNG.normal(size=3))
    _refused(lambda: srcgrad.grad(qr_fn)(rank_one), qr_fn, "np.linalg.qr(a)", "rank-deficient")
    _refused(lambda: srcgrad.grad(qr_raw)(spread((4, 3))(RNG)), qr_raw, "np.linalg.qr(a", "raw")


# --- eig, cond ------------------------------------------------------------------------------------------------------


def eig_abs(a):
    w, v = np.linalg.eig(a)
    return np.sum(np.abs(w))


def cond_fn(a):
    return np.linalg.cond(a, 1)


def cond_default(a):
    return np.linalg.cond(a)


def test_eig_with_complex_eigenvalues_is_refused():
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    _refused(lambda: srcgrad.grad(eig_abs)(rotation), eig_abs, "np.linalg.eig(a)", "complex eigenvalues")


def test_cond_of_a_singular_matrix_is_refused():
    """numpy's cond is inf where it cannot invert (p=1) or a singular value is exactly 0 (p=None)."""
    _refused(lambda: srcgrad.grad(cond_fn)(np.array([[1.0, 2.0], [2.0, 4.0]])), cond_fn, "np.linalg.cond(a, 1)",
             "infinite")
    _refused(lambda: srcgrad.grad(cond_default)(np.diag([1.0, 0.0])), cond_default, "np.linalg.cond(a)", "infinite")


def test_cond_of_an_orthogonal_matrix():
    """Every singular value equal: cond is 1 at its minimum, and its gradient is zero (the ties cancel)."""
    np.testing.assert_allclose(srcgrad.grad(cond_default)(orthogonal(RNG, 3)), np.zeros((3, 3)), atol=1e-12)


# --- emitted modules carry the helpers ------------------------------------------------------------------------------


def eigh_loss(a, w):
    vals, vecs = np.linalg.eigh(a)
    return np.sum(vals ** 2) + np.sum(projectors(vecs, vals) * w) + np.sum(np.linalg.svd(a, compute_uv=False))


def test_emitted_module_differentiates_decompositions(tmp_path):
    text = srcgrad.emit(eigh_loss)
    assert not [line for line in text.splitlines() if line.startswith(("import srcgrad", "from srcgrad"))]
    namespace: dict = {}
    exec(compile(text, str(tmp_path / "emitted.py"), "exec"), namespace)  # noqa: S102 - our own generated module
    a = with_eigenvalues([-1.0, 0.5, 2.0])
    w = RNG.normal(size=(3, 3))
    np.testing.assert_allclose(namespace["eigh_loss_grad"](a, w), srcgrad.grad(eigh_loss)(a, w), rtol=1e-12)
