"""Check the hand-written reference gradients against central finite differences (float64).

Numbers only, nothing is timed. Small inputs get an element-by-element check; the benchmark-size inputs get
a few random directional derivatives, which is cheap even for the 1e6-element case.
"""

import copy

import numpy as np
import pytest

from benchmarks.cases import CASES, MEMORY_CASES

ALL_CASES = CASES + MEMORY_CASES


def _with(args, position, value):
    args = list(args)
    args[position] = value
    return args


def numeric_grad(fn, args, position, eps=1e-6):
    """Central differences of ``fn`` in every element of ``args[position]`` (a float or an array)."""
    x = args[position]
    if isinstance(x, float):
        h = eps * max(1.0, abs(x))
        return (fn(*_with(args, position, x + h)) - fn(*_with(args, position, x - h))) / (2 * h)
    grad = np.empty_like(x)
    for index in np.ndindex(x.shape):
        h = eps * max(1.0, abs(x[index]))
        xp, xm = x.copy(), x.copy()
        xp[index] += h
        xm[index] -= h
        grad[index] = (fn(*_with(args, position, xp)) - fn(*_with(args, position, xm))) / (2 * h)
    return grad


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_hand_gradient_elementwise(case):
    args = case.small_args()
    grads = case.grad(*args)
    assert isinstance(grads, tuple) and len(grads) == len(case.wrt)
    for position, grad in zip(case.wrt_positions, grads, strict=True):
        expected = numeric_grad(case.fn, args, position)
        assert np.shape(grad) == np.shape(args[position])
        np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hand_gradient_directional(case):
    args = case.args()
    grads = case.grad(*args)
    rng = np.random.default_rng(1)
    for position, grad in zip(case.wrt_positions, grads, strict=True):
        x = args[position]
        for _ in range(2):
            direction = rng.standard_normal(np.shape(x))
            if isinstance(x, float):
                direction = float(direction)
            h = 1e-6 * max(1.0, float(np.max(np.abs(x))))
            up = case.fn(*_with(args, position, x + h * direction))
            down = case.fn(*_with(args, position, x - h * direction))
            numeric = (up - down) / (2 * h)
            analytic = float(np.sum(grad * direction))
            assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_hand_gradient_leaves_inputs_alone(case):
    args = case.small_args()
    before = copy.deepcopy(args)
    case.grad(*args)
    for arg, old in zip(args, before, strict=True):
        np.testing.assert_array_equal(arg, old)


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_inputs_are_deterministic(case):
    for first, second in zip(case.args(), case.args(), strict=True):
        np.testing.assert_array_equal(first, second)


def test_case_names_are_unique():
    names = [case.name for case in ALL_CASES]
    assert len(names) == len(set(names))
