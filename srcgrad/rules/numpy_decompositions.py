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
- the rules are a table (each function's parameters, the discrete ones, its reverse and tangent rules' returns):
  each is the function :func:`srcgrad.rules.registry.rule_function` defines from its text, inlined like a written
  rule;
- discrete parameters: ``full_matrices``, ``compute_uv``, ``hermitian``, ``UPLO``, ``mode``, ``rcond``/``rtol`` (the
  result is piecewise constant in them), ``n`` of ``matrix_power`` and ``p`` of ``cond``.
"""

import numpy as np

from srcgrad.rules.registry import defgrad, defjvp, rule_function
from srcgrad.runtime import (  # noqa: F401 (the rules' text reads them)
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

# function -> (its parameters as numpy's, the discrete ones, the reverse rule's return, the tangent rule's return);
# the differentiated parameters are the others without a default
DECOMPOSITIONS = {
    np.linalg.svd: ("a, full_matrices=True, compute_uv=True, hermitian=False",
                    ("full_matrices", "compute_uv", "hermitian"),
                    "svd_grad(g, ans, a, full_matrices, compute_uv, hermitian)",
                    "svd_tangent(a, a_dot, ans, full_matrices, compute_uv, hermitian)"),
    np.linalg.eigh: ('a, UPLO="L"', ("UPLO",), "eigh_grad(g, ans, UPLO)", "eigh_tangent(a_dot, ans, UPLO)"),
    np.linalg.eigvalsh: ('a, UPLO="L"', ("UPLO",), "eigvalsh_grad(g, a, UPLO)", "eigvalsh_tangent(a, a_dot, UPLO)"),
    np.linalg.eig: ("a", (), "eig_grad(g, ans)", "eig_tangent(a_dot, ans)"),
    np.linalg.eigvals: ("a", (), "eigvals_grad(g, ans, a)", "eigvals_tangent(a, a_dot, ans)"),
    np.linalg.pinv: ("a, rcond=None, hermitian=False, *, rtol=None", ("rcond", "hermitian", "rtol"),
                     "pinv_grad(g, ans, a, hermitian)", "pinv_tangent(a, a_dot, ans, hermitian)"),
    np.linalg.qr: ('a, mode="reduced"', ("mode",), "qr_grad(g, ans, a, mode)", "qr_tangent(a, a_dot, ans, mode)"),
    np.linalg.lstsq: ("a, b, rcond=None", ("rcond",), "lstsq_grad_a(g, ans, a, b), lstsq_grad_b(g, ans, a, b)",
                      "lstsq_tangent(a, a_dot, b, b_dot, ans)"),
    np.linalg.matrix_power: ("a, n", ("n",), "matrix_power_grad(g, a, n)", "matrix_power_tangent(a, a_dot, n)"),
    np.linalg.cond: ("x, p=None", ("p",), "cond_grad(g, ans, x, p)", "cond_tangent(x, x_dot, ans, p)"),
}
if hasattr(np.linalg, "svdvals"):  # numpy >= 2
    DECOMPOSITIONS[np.linalg.svdvals] = ("x", (), "svd_grad(g, ans, x, False, False, False)",
                                         "svd_tangent(x, x_dot, ans, False, False, False)")
FACTS = {np.linalg.matrix_power: {"view": True}}  # matrix_power(a, 1) is a itself


for _func, (_params, _discrete, _reverse, _tangent) in DECOMPOSITIONS.items():
    _wrt = tuple(p for p in _params.split(", ") if "=" not in p and p != "*" and p not in _discrete)
    _name = _func.__name__
    defgrad(_func, wrt=_wrt, discrete=_discrete, **FACTS.get(_func, {}))(
        rule_function(globals(), _name, f"g, ans, {_params}", _reverse))
    defjvp(_func)(rule_function(globals(), f"{_name}_jvp", ", ".join(f"{w}_dot" for w in _wrt) + f", ans, {_params}",
                                _tangent))
