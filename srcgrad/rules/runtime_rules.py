"""Rules for srcgrad's own runtime helpers, so that generated code can be differentiated again.

In: the helpers generated code calls (``zeros_like``, ``zero_list``, ``as_tuple``, ``broadcast_tangent``,
``check_scalar_argument``) and the checks lowered loops call (``runtime.LOOP_CHECKS``).
Out: their rules. What holds: zeros and checks carry no gradient; ``as_tuple`` passes it through;
``broadcast_tangent`` spreads a tangent over its result's shape (its adjoint is summed back); ``logaddexp_weight``
(in np.logaddexp's gradient) is ``exp(x - total)``.
"""

from srcgrad import checks, runtime
from srcgrad.rules.registry import defgrad, nondifferentiable

for _fn in (runtime.zeros_like, runtime.zero_list, runtime.check_scalar_argument, *runtime.LOOP_CHECKS):
    nondifferentiable(_fn)


@defgrad(runtime.as_tuple, forward="linear", view=True)  # holds its argument's items
def as_tuple(g, ans, x):
    return g


# (the contribution is summed back to the number's shape centrally: broadcast=True)
@defgrad(runtime.broadcast_tangent, wrt=("t",), discrete=("like",), broadcast=True, out_kind="same")
def broadcast_tangent(g, ans, t, like):
    return g


# exp(x - total): the rule of the numpy form. The lazy form (the logistic function of x - other) has the same value
# where total = np.logaddexp(x, other), as in every call np.logaddexp's rule makes, and so the same total derivative:
# other enters through total.
@defgrad(runtime.logaddexp_weight, wrt=("x", "total"), discrete=("other",), broadcast=True)
def logaddexp_weight(g, ans, x, other, total):
    return g * ans, -g * ans


# srcgrad's own checks (in generated code differentiated again): they raise where the function would not run
for _check in (runtime.check_unshared, runtime.check_distinct, checks.check_unshared, checks.check_distinct,
               checks.check_scalar_output, checks.check_numeric_output):
    nondifferentiable(_check, raises=True)
