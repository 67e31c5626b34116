"""Derivative rules: numpy linear algebra (products, contractions, inverse, solve, determinants, Cholesky).

In: calls like ``np.matmul(a, b)`` (and ``a @ b``, see the arithmetic rules), ``np.dot``, ``np.einsum('ij,jk->ik',
a, b)``, ``np.linalg.solve(a, b)``. Out: the contribution of the output's adjoint to each operand.

What holds:
- products work for 1-D, 2-D and batched (stacked, broadcast) operands; batch broadcasting is undone inside the
  product helpers (it is part of the product's semantics, not elementwise broadcasting);
- ``np.dot`` follows numpy for every rank (N-D operands contract the last axis of ``a`` with the second-to-last of
  ``b``); ``tensordot`` takes ``axes`` as an int or a pair; ``einsum`` takes explicit (``'ij,jk->ik'``) or implicit
  subscripts, ``...`` (broadcast axes), repeated letters (diagonals), letters summed in one operand only, axes of
  length 1 broadcast against the same letter's, any number of operands;
- ``inv``, ``solve``, ``det`` need invertible matrices; ``cholesky`` differentiates what numpy computes, which reads
  only the lower triangle of its input (see :func:`srcgrad.runtime.cholesky_grad`);
- ``slogdet`` returns a pair: unpack it (``sign, logdet = np.linalg.slogdet(a)``) or index it; the sign carries
  no gradient.
"""

import numpy as np

from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.runtime import (
    cholesky_grad,
    cholesky_jvp,
    det_grad,
    dot_grad_left,
    dot_grad_right,
    einsum_grads,
    inner_grad_left,
    inner_grad_right,
    matmul_grad_left,
    matmul_grad_right,
    slogdet_grad,
    solve_grad_a,
    solve_grad_b,
    solve_tangent,
    tensordot_grad_left,
    tensordot_grad_right,
)

# --- products -------------------------------------------------------------------------------------------------------


@defgrad(np.matmul, forward="multilinear")
def matmul(g, ans, x1, x2):
    return matmul_grad_left(g, x1, x2), matmul_grad_right(g, x1, x2)


@defgrad(np.dot, forward="multilinear")
def dot(g, ans, a, b):
    return dot_grad_left(g, a, b), dot_grad_right(g, a, b)


@defgrad(np.vdot, forward="multilinear", full_reduction=True)  # the flattened dot product (real inputs)
def vdot(g, ans, a, b):
    return np.reshape(g * np.ravel(b), np.shape(a)), np.reshape(g * np.ravel(a), np.shape(b))


@defgrad(np.inner, forward="multilinear")
def inner(g, ans, a, b):
    return inner_grad_left(g, a, b), inner_grad_right(g, a, b)


@defgrad(np.outer, forward="multilinear")  # inputs are flattened
def outer(g, ans, a, b):
    return np.reshape(g @ np.ravel(b), np.shape(a)), np.reshape(np.ravel(a) @ g, np.shape(b))


@defgrad(np.tensordot, wrt=("a", "b"), discrete=("axes",), forward="multilinear")
def tensordot(g, ans, a, b, axes=2):
    return tensordot_grad_left(g, a, b, axes), tensordot_grad_right(g, a, b, axes)


# operand i gets element i of the (lazily computed) adjoints; subscripts are a string (sublists are converted when
# lowered), never a differentiated value
@defgrad(np.einsum, wrt=("operands",), discrete=("optimize",), forward="multilinear", view=True)
def einsum(g, ans, subscripts, *operands, optimize=False):
    return einsum_grads(g, subscripts, operands)


# --- inverse, solve, determinants, factorisations -------------------------------------------------------------------


@defgrad(np.linalg.inv)
def inv(g, ans, a):
    return -np.swapaxes(ans, -1, -2) @ g @ np.swapaxes(ans, -1, -2)


@defjvp(np.linalg.inv)
def inv_jvp(a_dot, ans, a):
    return -(ans @ a_dot @ ans)


@defgrad(np.linalg.solve)
def solve(g, ans, a, b):
    return solve_grad_a(g, ans, a, b), solve_grad_b(g, a, b)


@defjvp(np.linalg.solve)
def solve_jvp(a_dot, b_dot, ans, a, b):
    return solve_tangent(a, a_dot, b, b_dot, ans)


@defgrad(np.linalg.det)
def det(g, ans, a):
    return det_grad(g, ans, a)


@defjvp(np.linalg.det)
def det_jvp(a_dot, ans, a):
    return ans * np.trace(np.linalg.solve(a, a_dot), axis1=-2, axis2=-1)


@defgrad(np.linalg.slogdet)
def slogdet(g, ans, a):
    return slogdet_grad(g, a)


@defjvp(np.linalg.slogdet)
def slogdet_jvp(a_dot, ans, a):
    return (0.0 * ans[0], np.trace(np.linalg.solve(a, a_dot), axis1=-2, axis2=-1))


@defgrad(np.linalg.cholesky)
def cholesky(g, ans, a):
    return cholesky_grad(g, ans)


@defjvp(np.linalg.cholesky)
def cholesky_jvp_rule(a_dot, ans, a):
    return cholesky_jvp(ans, a_dot)
