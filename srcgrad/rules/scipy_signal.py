"""Derivative rules: ``scipy.signal.convolve`` (registered once the user's code imported scipy.signal).

In: ``scipy.signal.convolve(in1, in2, mode, method)``. Out: the contributions to ``in1`` and ``in2``.
What holds: the convolution is bilinear, for modes 'full', 'same' and 'valid' and arrays of any dimension: the
adjoint of an operand is the correlation of the output's adjoint (placed in the full output) with the other operand,
the tangent one convolution per differentiated operand; ``method`` is discrete (it picks an algorithm, not a result).
"""

import scipy.signal as signal

from srcgrad.rules.registry import defgrad
from srcgrad.scipy_runtime import convolve_grad


@defgrad(signal.convolve, wrt=("in1", "in2"), discrete=("mode", "method"), name="scipy.signal.convolve",
         forward="multilinear")
def convolve(g, ans, in1, in2, mode="full", method="auto"):
    return convolve_grad(g, in1, in2, mode, in2), convolve_grad(g, in1, in2, mode, in1)


