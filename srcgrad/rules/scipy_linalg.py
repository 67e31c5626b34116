"""Derivative rules: ``scipy.linalg`` (registered once the user's code imported it).

In: calls like ``scipy.linalg.solve_triangular(L, b, lower=True)``, ``cho_solve(cho_factor(K), y)``,
``scipy.linalg.expm(A)``.
Out: the contribution of the output's adjoint to each differentiable argument.

What holds:
- the triangular routines differentiate the entries LAPACK reads: ``solve_triangular`` the triangle ``lower``
  names (without the diagonal for ``unit_diagonal=True``), with ``trans`` 0/1/2 or 'N'/'T'/'C' (real matrices);
  ``cholesky(a, lower)`` the lower triangle of ``a`` for lower=True, the upper one otherwise; ``cho_factor`` returns
  ``(c, lower)`` where ``c`` holds the factor in one triangle and ``a``'s own entries in the other (both carry
  gradients); ``cho_solve((c, lower), b)`` reads the factor's triangle of ``c``;
- ``overwrite_a``/``overwrite_b`` are refused (the reverse sweep may read the overwritten array); ``check_finite``
  is a flag (keyword-only here: it follows ``overwrite_*`` in scipy's order);
- ``expm``: the adjoint is the upper-right block of ``expm([[A^T, G], [0, A^T]])`` (the tangent: the same with
  ``A``), for stacks of matrices too; ``sqrtm`` (real principal square roots): the Sylvester equation
  ``X^T Y + Y X^T = G``, solved with ``scipy.linalg.solve_sylvester``; ``disp``/``blocksize`` are refused.
"""

import scipy.linalg

from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.scipy_runtime import (
    cho_factor_grad,
    cho_factor_tangent,
    cho_solve_grad_b,
    cho_solve_grad_c,
    cho_solve_tangent,
    expm_grad,
    expm_tangent,
    scipy_cholesky_grad,
    scipy_cholesky_tangent,
    solve_triangular_grad_a,
    solve_triangular_grad_b,
    solve_triangular_tangent,
    sqrtm_grad,
    sqrtm_tangent,
)

# --- triangular systems and Cholesky --------------------------------------------------------------------------------


@defgrad(scipy.linalg.solve_triangular, wrt=("a", "b"), discrete=("trans", "lower", "unit_diagonal", "check_finite"),
         name="scipy.linalg.solve_triangular")
def solve_triangular(g, ans, a, b, trans=0, lower=False, unit_diagonal=False, *, check_finite=True):
    return (solve_triangular_grad_a(g, ans, a, trans, lower, unit_diagonal),
            solve_triangular_grad_b(g, a, trans, lower, unit_diagonal))


@defjvp(scipy.linalg.solve_triangular)
def solve_triangular_jvp(a_dot, b_dot, ans, a, b, trans=0, lower=False, unit_diagonal=False, *, check_finite=True):
    return solve_triangular_tangent(a_dot, b_dot, ans, a, b, trans, lower, unit_diagonal)


@defgrad(scipy.linalg.cholesky, wrt=("a",), discrete=("lower", "check_finite"), name="scipy.linalg.cholesky")
def cholesky(g, ans, a, lower=False, *, check_finite=True):
    return scipy_cholesky_grad(g, ans, lower)


@defjvp(scipy.linalg.cholesky)
def cholesky_jvp(a_dot, ans, a, lower=False, *, check_finite=True):
    return scipy_cholesky_tangent(a_dot, ans, lower)


@defgrad(scipy.linalg.cho_factor, wrt=("a",), discrete=("lower", "check_finite"), name="scipy.linalg.cho_factor")
def cho_factor(g, ans, a, lower=False, *, check_finite=True):
    return cho_factor_grad(g, ans, lower)


@defjvp(scipy.linalg.cho_factor)
def cho_factor_jvp(a_dot, ans, a, lower=False, *, check_finite=True):
    return cho_factor_tangent(a_dot, ans, lower)


@defgrad(scipy.linalg.cho_solve, wrt=("c_and_lower", "b"), discrete=("check_finite",), name="scipy.linalg.cho_solve")
def cho_solve(g, ans, c_and_lower, b, *, check_finite=True):
    return cho_solve_grad_c(g, ans, c_and_lower, check_finite), cho_solve_grad_b(g, c_and_lower, check_finite)


@defjvp(scipy.linalg.cho_solve)
def cho_solve_jvp(c_and_lower_dot, b_dot, ans, c_and_lower, b, *, check_finite=True):
    return cho_solve_tangent(c_and_lower_dot, b_dot, ans, c_and_lower, check_finite)


# --- matrix functions -----------------------------------------------------------------------------------------------


@defgrad(scipy.linalg.expm, name="scipy.linalg.expm")
def expm(g, ans, A):
    return expm_grad(g, A)


@defjvp(scipy.linalg.expm)
def expm_jvp(A_dot, ans, A):
    return expm_tangent(A_dot, A)


@defgrad(scipy.linalg.sqrtm, name="scipy.linalg.sqrtm")
def sqrtm(g, ans, A):
    return sqrtm_grad(g, ans)


@defjvp(scipy.linalg.sqrtm)
def sqrtm_jvp(A_dot, ans, A):
    return sqrtm_tangent(A_dot, ans)
