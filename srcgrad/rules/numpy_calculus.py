"""Derivative rules: numpy integration and polynomials (``np.trapezoid``, ``np.trapz`` where numpy has it,
``np.polyval``).

In: ``np.trapezoid(y, x=None, dx=1.0, axis=-1)``, ``np.polyval(p, x)``. Out: the contributions to ``y``, ``x``,
``dx``; to ``p`` and ``x``.
What holds: the trapezoid rule is linear in ``y`` and in the interval widths (``x`` 1-D along ``axis`` or shaped
like ``y``; or ``dx``): its tangent is one call per differentiated operand (multilinear); ``polyval`` takes 1-D
coefficients, highest power first, and ``x`` of any shape.
"""

import numpy as np

from srcgrad.rules.registry import defgrad, defjvp
from srcgrad.runtime import (
    polyval_grad_p,
    polyval_tangent,
    trapezoid_grad_dx,
    trapezoid_grad_x,
    trapezoid_grad_y,
)

for _trapezoid in (getattr(np, "trapezoid", None), getattr(np, "trapz", None)):  # (numpy renamed it in 2.0)
    if _trapezoid is None:
        continue

    @defgrad(_trapezoid, wrt=("y", "x", "dx"), discrete=("axis",), forward="multilinear")
    def trapezoid(g, ans, y, x=None, dx=1.0, axis=-1):
        return trapezoid_grad_y(g, y, x, dx, axis), trapezoid_grad_x(g, y, x, axis), trapezoid_grad_dx(g, y, axis)


@defgrad(np.polyval)
def polyval(g, ans, p, x):
    return polyval_grad_p(g, p, x), g * np.polyval(np.polyder(p), x)


@defjvp(np.polyval)
def polyval_jvp(p_dot, x_dot, ans, p, x):
    return polyval_tangent(p_dot, x_dot, p, x)
