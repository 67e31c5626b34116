"""Forward-mode (tangent) rules: how each primitive's tangent follows from its operands' tangents.

In: a :class:`~srcgrad.rules.registry.Rule`, whose ``forward`` field (declared with the primitive: ``defgrad(...,
forward=...)`` or :func:`~srcgrad.rules.registry.defjvp`) names the kind. Out: for reductions, the template of
their tangent.
What holds — the kinds:
- ``explicit``: a rule registered with ``defjvp`` (``rule.jvp``) — a function of ``ans``, the primitive's parameters
  and the tangents ``<param>_dot`` of its differentiable parameters, returning the output's tangent;
- ``reduction``: a reduction over ``axis`` (prod, max, var, norm...): each output element depends on its own slice,
  so the tangent is ``sum(partials * a_dot, axis)`` where the partials are the reverse rule at ``g = 1``;
- ``linear``: the tangent is the primitive applied to the tangents (sum, reshape, indexing, stacking...);
- ``multilinear``: products (matmul, dot, einsum...): one term per differentiated operand;
- ``elementwise``: ufuncs, ``math``, operators: the reverse rule with ``g`` replaced by each operand's tangent —
  their Jacobian is diagonal, so it is its own transpose.
A primitive with none of these has no forward mode; srcgrad says so at generation time.
"""

from __future__ import annotations

import ast

from srcgrad import freshness
from srcgrad.errors import InternalError
from srcgrad.rules.registry import Rule


def reduction_template(rule: Rule) -> ast.expr:
    """The return expression of a reduction's reverse rule, which its tangent instantiates at ``g = 1``. There is no
    call to fall back to: when the rule's file changed since it was imported, its text is not the rule's any more,
    and that is an :class:`InternalError`."""
    adjoint = rule.adjoint
    templates = rule.inline_exprs(adjoint)
    if templates is not None:
        return templates[0]
    if freshness.is_stale(adjoint):
        problem = f"{adjoint.__code__.co_filename} no longer holds it: the file changed since it was imported"
        hint = "restart the interpreter (or kernel) so that the rule's module is imported again"
    else:
        problem = "it is not a single `return` expression"
        hint = "write the rule as one `return` expression"
    raise InternalError(f"forward mode of {rule.name} needs the text of its rule {adjoint.__qualname__}, and "
                        f"{problem}", hint=hint)
