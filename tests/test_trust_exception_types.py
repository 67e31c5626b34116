"""An ``except`` naming a tuple of exception types: the tuple is a value the lowering computes, and the forward
sweep must compute it too (it was dropped as unused: a raise in the body then gave NameError instead of running the
handler)."""

import math

import pytest

import srcgrad


def guarded_ratio(x, d):
    try:
        y = x / d  # ZeroDivisionError for d == 0.0
    except (ZeroDivisionError, ValueError):
        y = x * 3.0
    return y * math.sin(x)


@pytest.mark.parametrize("d", [0.0, 2.0])
def test_the_handler_runs_in_the_gradient(d):
    x = 0.7
    value, grad = srcgrad.value_and_grad(guarded_ratio)(x, d)
    factor = 3.0 if d == 0.0 else 1.0 / d
    assert value == pytest.approx(factor * x * math.sin(x))
    assert grad == pytest.approx(factor * (math.sin(x) + x * math.cos(x)))
    assert srcgrad.jvp(guarded_ratio)(x, d, 1.0)[1] == pytest.approx(grad)  # forward mode: the same handler
