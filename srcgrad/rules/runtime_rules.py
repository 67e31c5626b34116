"""Rules for srcgrad's own runtime helpers, so that generated code can be differentiated again.

In: the helpers generated code calls (``zeros_like``, ``zero_list``, ``as_tuple``, ``broadcast_tangent``,
``check_scalar_argument``, ``logaddexp_weight``; the derivatives of clip, max/min, casts and var that tangents are
made of) and the checks lowered loops call (``runtime.LOOP_CHECKS``).
Out: their rules. What holds: zeros and checks carry no gradient; ``as_tuple`` passes it through;
``broadcast_tangent`` spreads a tangent over its result's shape (its adjoint is summed back); ``logaddexp_weight``
(in np.logaddexp's gradient) is ``exp(x - total)``; the derivatives of clip, max/min and casts are linear in the
incoming gradient ``dy`` and piecewise constant in everything else (masks of where the bounds or extremes are:
their second derivative is 0 almost everywhere); var's is linear in ``dy`` and in ``a``. A runtime helper without a
rule is refused at the user's line when a second derivative reaches it (passes: "srcgrad cannot differentiate this
line twice").
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


# The derivatives that forward-mode code is made of (second derivatives differentiate them again). Each is linear in
# ``dy`` (the gradient or tangent it carries): its own adjoint in ``dy`` is the same mask (elementwise, so its own
# transpose) or the reduction that undoes its spreading.
@defgrad(runtime.clip_grad, wrt=("dy",), discrete=("y", "a", "a_min", "a_max"), broadcast=True, forward="linear")
def clip_grad(g, ans, dy, y, a, a_min, a_max):
    return runtime.clip_grad(g, y, a, a_min, a_max)


@defgrad(runtime.clip_bound_grad, wrt=("dy",), discrete=("y", "a", "bound"), broadcast=True, forward="linear")
def clip_bound_grad(g, ans, dy, y, a, bound):
    return runtime.clip_bound_grad(g, y, a, bound)


@defgrad(runtime.extremum_grad, wrt=("dy",), discrete=("y", "a", "axis", "keepdims"), broadcast=True,
         forward="linear")
def extremum_grad(g, ans, dy, y, a, axis, keepdims):
    return runtime.extremum_grad_transpose(g, y, a, axis, keepdims)


@defgrad(runtime.cast_grad, wrt=("dy",), discrete=("dtype",), forward="linear")
def cast_grad(g, ans, dy, dtype):
    return runtime.cast_grad(g, dtype)


@defgrad(runtime.var_grad, wrt=("dy", "a"), discrete=("axis", "ddof", "keepdims"), broadcast=True,
         forward="multilinear")
def var_grad(g, ans, dy, a, axis, ddof, keepdims):
    return (runtime.var_grad_transpose(g, a, axis, ddof, keepdims),
            runtime.var_grad_centred(g, dy, a, axis, ddof, keepdims))
