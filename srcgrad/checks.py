"""Checks that generated code runs in-process, raising srcgrad's own errors (with the user's line).

In: the values generated code checks (an output, an array about to be updated) and where they come from. Out:
nothing, or a :class:`~srcgrad.errors.SrcgradError`. What holds: each check has a twin of the same name and
signature in :mod:`srcgrad.runtime` that raises a plain ``ValueError`` with the same words; modules written by
``srcgrad emit`` carry those twins (srcgrad.standalone substitutes them), because runtime imports only math and
numpy and an emitted module never imports srcgrad.
"""

from __future__ import annotations

import linecache

import numpy as np

from srcgrad import runtime
from srcgrad.errors import InvalidArgument, Location, NonNumericOutput, NonScalarOutput, UnsupportedSyntax


def check_scalar_output(y, where):
    """``grad`` needs a scalar output: raise a clear error pointing to ``vjp`` otherwise (returns nothing: a check
    carries no value, so it is piecewise constant like every function declared without gradient)."""
    if np.ndim(y) != 0:
        raise NonScalarOutput(
            f"grad needs a scalar output, but {where} returned an array of shape {np.shape(y)}",
            hint="use srcgrad.vjp(f)(*args, seed) for non-scalar outputs, or reduce the output (e.g. np.sum)",
        )
    check_numeric_output(y, where)


def check_numeric_output(y, where):
    """``vjp``: an output of any shape, but of real numbers (a gradient of None or of a string is no gradient); the
    location of the return line is added by the failure handler (srcgrad.api)."""
    if not runtime.real_valued(y):
        raise NonNumericOutput(runtime.non_numeric_message(y, where),
                               hint="return the number (or array) to differentiate")


def check_unshared(value, filename, line, col, helper=""):
    """:func:`srcgrad.runtime.check_unshared`, refusing with ``UnsupportedSyntax`` at the update's line."""
    if isinstance(value, (np.ndarray, list)):
        message, hint = runtime.in_place_update_text(helper)
        raise UnsupportedSyntax(message, Location(filename, line, col, linecache.getline(filename, line)), hint=hint)


def check_distinct(written, other, written_name, other_name, filename, line, col):
    """:func:`srcgrad.runtime.check_distinct`, refusing with ``InvalidArgument`` at the write's line."""
    if isinstance(written, (np.ndarray, list)) and runtime.shares_memory(written, other, 3):
        message, hint = runtime.shared_arguments_text(written_name, other_name)
        raise InvalidArgument(message, Location(filename, line, col, linecache.getline(filename, line)), hint=hint)


def check_completed(done, filename, line, col):
    """:func:`srcgrad.runtime.check_completed`, refusing with ``UnsupportedSyntax`` at the ``with`` statement."""
    if not done:
        raise UnsupportedSyntax(runtime.PARTIAL_WITH, Location(filename, line, col, linecache.getline(filename, line)),
                                hint=runtime.PARTIAL_WITH_HINT)


# Each check and the twin a standalone module carries instead.
def check_seed_shape(seed, y, where):
    """``vjp``: the seed has the output's shape, or is a number (refused with ``InvalidArgument`` otherwise)."""
    if not runtime.seed_fits(seed, y):
        raise InvalidArgument(runtime.seed_shape_message(seed, y, where),
                              hint="pass a number, or an array of the output's shape (the adjoint of the output)")


STANDALONE_TWINS = {
    check_scalar_output: runtime.check_scalar_output,
    check_numeric_output: runtime.check_numeric_output,
    check_seed_shape: runtime.check_seed_shape,
    check_unshared: runtime.check_unshared,
    check_distinct: runtime.check_distinct,
    check_completed: runtime.check_completed,
}
