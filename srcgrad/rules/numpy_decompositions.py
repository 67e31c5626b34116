"""Derivative rules: numpy matrix decompositions and what is built on them (svd, svdvals, eigh, eigvalsh, eig,
eigvals, pinv, qr, lstsq, matrix_power, cond), reverse and forward.

In: calls like ``u, s, vt = np.linalg.svd(a, full_matrices=False)`` or ``w, v = np.linalg.eigh(a)``. Out: the
contribution of the output's adjoint to each differentiable operand (reverse), the output's tangent (forward).

What holds:
- a tuple result (svd, eigh, eig, qr, lstsq) is unpacked or indexed like ``slogdet``'s: its adjoint is one adjoint
  per element, zeros for the elements the function does not use;
- eigenvectors and singular vectors are differentiated as numpy returns them (their signs are LAPACK's choice, which
  is locally constant); a function of vectors of a repeated value is refused (they are not unique), a repeated
  value alone splits its gradient equally among its copies (as ``np.max`` splits ties); see the helpers in
  :mod:`srcgrad.runtime`;
- ``eigh``, ``eigvalsh`` and ``svd``/``pinv`` with ``hermitian=True`` read one triangle of their input: the gradient
  is with respect to the entries read (zeros in the other triangle), as for ``cholesky``;
- discrete parameters: ``full_matrices``, ``compute_uv``, ``hermitian``, ``UPLO``, ``mode``, ``rcond``/``rtol`` (the
  result is piecewise constant in them), ``n`` of ``matrix_power`` and ``p`` of ``cond``.
"""

import numpy as np

from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.runtime import (
    cond_grad,
    cond_tangent,
    eig_grad,
    eig_tangent,
    eigh_grad,
    eigh_tangent,
    eigvals_grad,
    eigvals_tangent,
    eigvalsh_grad,
    eigvalsh_tangent,
    lstsq_grad_a,
    lstsq_grad_b,
    lstsq_tangent,
    matrix_power_grad,
    matrix_power_tangent,
    pinv_grad,
    pinv_tangent,
    qr_grad,
    qr_tangent,
    svd_grad,
    svd_tangent,
)

# --- reverse rules ------------------------------------------------------------------------------------------------


@defgrad(np.linalg.svd, wrt=("a",), discrete=("full_matrices", "compute_uv", "hermitian"))
def svd(g, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    return svd_grad(g, ans, a, full_matrices, compute_uv, hermitian)


@defgrad(np.linalg.eigh, wrt=("a",), discrete=("UPLO",))
def eigh(g, ans, a, UPLO="L"):  # noqa: N803 (numpy's name)
    return eigh_grad(g, ans, UPLO)


@defgrad(np.linalg.eigvalsh, wrt=("a",), discrete=("UPLO",))
def eigvalsh(g, ans, a, UPLO="L"):  # noqa: N803
    return eigvalsh_grad(g, a, UPLO)


@defgrad(np.linalg.eig)
def eig(g, ans, a):
    return eig_grad(g, ans)


@defgrad(np.linalg.eigvals)
def eigvals(g, ans, a):
    return eigvals_grad(g, ans, a)


if hasattr(np.linalg, "svdvals"):  # numpy >= 2

    @defgrad(np.linalg.svdvals)
    def svdvals(g, ans, x):
        return svd_grad(g, ans, x, False, False, False)

    @defjvp(np.linalg.svdvals)
    def svdvals_jvp(x_dot, ans, x):
        return svd_tangent(x, x_dot, ans, False, False, False)


@defgrad(np.linalg.pinv, wrt=("a",), discrete=("rcond", "hermitian", "rtol"))
def pinv(g, ans, a, rcond=None, hermitian=False, *, rtol=None):
    return pinv_grad(g, ans, a, hermitian)


@defgrad(np.linalg.qr, wrt=("a",), discrete=("mode",))
def qr(g, ans, a, mode="reduced"):
    return qr_grad(g, ans, a, mode)


@defgrad(np.linalg.lstsq, wrt=("a", "b"), discrete=("rcond",))
def lstsq(g, ans, a, b, rcond=None):
    return lstsq_grad_a(g, ans, a, b), lstsq_grad_b(g, ans, a, b)


@defgrad(np.linalg.matrix_power, wrt=("a",), discrete=("n",), view=True)  # n == 1: the argument
def matrix_power(g, ans, a, n):
    return matrix_power_grad(g, a, n)


@defgrad(np.linalg.cond, wrt=("x",), discrete=("p",))
def cond(g, ans, x, p=None):
    return cond_grad(g, ans, x, p)


# --- forward rules ------------------------------------------------------------------------------------------------


@defjvp(np.linalg.svd)
def svd_jvp(a_dot, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    return svd_tangent(a, a_dot, ans, full_matrices, compute_uv, hermitian)


@defjvp(np.linalg.eigh)
def eigh_jvp(a_dot, ans, a, UPLO="L"):  # noqa: N803
    return eigh_tangent(a_dot, ans, UPLO)


@defjvp(np.linalg.eigvalsh)
def eigvalsh_jvp(a_dot, ans, a, UPLO="L"):  # noqa: N803
    return eigvalsh_tangent(a, a_dot, UPLO)


@defjvp(np.linalg.eig)
def eig_jvp(a_dot, ans, a):
    return eig_tangent(a_dot, ans)


@defjvp(np.linalg.eigvals)
def eigvals_jvp(a_dot, ans, a):
    return eigvals_tangent(a, a_dot, ans)


@defjvp(np.linalg.pinv)
def pinv_jvp(a_dot, ans, a, rcond=None, hermitian=False, *, rtol=None):
    return pinv_tangent(a, a_dot, ans, hermitian)


@defjvp(np.linalg.qr)
def qr_jvp(a_dot, ans, a, mode="reduced"):
    return qr_tangent(a, a_dot, ans, mode)


@defjvp(np.linalg.lstsq)
def lstsq_jvp(a_dot, b_dot, ans, a, b, rcond=None):
    return lstsq_tangent(a, a_dot, b, b_dot, ans)


@defjvp(np.linalg.matrix_power)
def matrix_power_jvp(a_dot, ans, a, n):
    return matrix_power_tangent(a, a_dot, n)


@defjvp(np.linalg.cond)
def cond_jvp(x_dot, ans, x, p=None):
    return cond_tangent(x, x_dot, ans, p)
