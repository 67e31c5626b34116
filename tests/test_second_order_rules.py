"""Second derivatives through every rule: srcgrad.hvp (reverse mode over the generated forward mode, which calls the
rules' own derivatives and srcgrad's runtime helpers) against central differences of srcgrad's first gradient, or a
clear refusal at the user's line — never a wrong number, never an internal error or a line of generated code.

One case of tests/rule_cases.py per primitive (its first), so the table stays fast; a case whose first gradient has a
kink at its point (ties) is left out: its second derivative is not defined there. Found this way: np.clip (its
derivative runtime.clip_grad had no rule), max/min, astype/casts and var (the same), and np.fmax/np.fmin (their rule
wrote `~`, which generated code differentiated again cannot read; the error named a line of generated code)."""

import inspect

import numpy as np
import pytest
from rule_cases import CASES

import srcgrad


def _first_case_per_primitive():
    seen, out = set(), []
    for case in CASES:
        key = repr(case.prim)
        if key in seen or case.pending is not None or "tie" in case.id:
            continue
        seen.add(key)
        out.append(case)
    return out


SAMPLE = _first_case_per_primitive()
# Rules whose second derivatives were refused until their runtime helpers got rules: they must work.
MUST_WORK = {"clip-array", "max-axisNone-keepdimsFalse", "amin-axisNone-keepdimsFalse", "var-axisNone-keepdimsFalse",
             "astype-float", "fmax-(3, 4)-(3, 4)", "fmin-(3, 4)-(3, 4)", "runtime-clip-grad", "runtime-var-grad"}


def _position(case):
    position = case.wrt[0]
    return list(inspect.signature(case.fn).parameters).index(position) if isinstance(position, str) else position


def _second_derivative_by_differences(case, args, position, v, eps):
    gradient = srcgrad.grad(case.fn, wrt=position)

    def at(shift):
        moved = list(args)
        moved[position] = args[position] + shift * v
        return np.asarray(gradient(*moved), dtype=float)

    return (at(eps) - at(-eps)) / (2 * eps)


@pytest.mark.parametrize("case", SAMPLE, ids=[c.id for c in SAMPLE])
def test_hvp_is_right_or_refused_at_the_users_line(case):
    rng = np.random.default_rng(sum(map(ord, case.id)))
    args = case.args(rng)
    position = _position(case)
    x = args[position]
    if not (isinstance(x, float) or (isinstance(x, np.ndarray) and x.dtype == np.float64)):
        pytest.skip("the differentiated argument is not a float64 number or array")
    v = 1.0 if isinstance(x, float) else rng.standard_normal(x.shape)
    try:
        hv = srcgrad.hvp(case.fn, wrt=position)(*args, v)
    except srcgrad.InternalError:
        raise
    except srcgrad.SrcgradError as refused:
        assert case.id not in MUST_WORK, refused
        where = refused.location
        assert where is not None and not where.filename.startswith("<"), f"not at the user's line: {refused}"
        return
    coarse = _second_derivative_by_differences(case, args, position, v, 1e-4)
    fine = _second_derivative_by_differences(case, args, position, v, 1e-5)
    if not np.allclose(coarse, fine, rtol=1e-3, atol=1e-4):
        pytest.skip("the first gradient is not smooth at this point")
    np.testing.assert_allclose(np.asarray(hv, dtype=float), fine, rtol=1e-4, atol=1e-5)


def test_the_sample_is_the_table():
    assert len(SAMPLE) > 250 and MUST_WORK <= {c.id for c in SAMPLE}


def clipped_cubes(x, lo):
    return np.sum(np.clip(x, lo, 1.0) ** 3)


def test_hvp_and_grad_of_grad_through_clip():
    x = np.array([0.5, -0.3, 2.0, 0.9])
    # inside the bounds 6 x v, outside 0
    np.testing.assert_allclose(srcgrad.hvp(clipped_cubes)(x, -1.0, np.ones(4)), [3.0, -1.8, 0.0, 5.4])
    np.testing.assert_allclose(srcgrad.hessian(clipped_cubes)(x, -1.0), np.diag([3.0, -1.8, 0.0, 5.4]))
    assert srcgrad.grad(srcgrad.grad(clipped_cubes))(0.5, -1.0) == pytest.approx(3.0)
    assert srcgrad.grad(srcgrad.grad(clipped_cubes))(1.5, -1.0) == pytest.approx(0.0)


def items_written(x):
    y = np.zeros(3)
    y[0] = x[0] * x[1]
    y[1:] = x[1:] ** 2
    return np.sum(y * y)


def test_second_derivatives_through_item_assignment():
    # The generated forward mode calls setitem(y, 0, t) by name, a copy; the alias analysis took it for `y[0] = t`
    # (a write into y, whose old value the tangent code reads): refused, naming a line of the generated code.
    x, v = np.array([0.3, -0.7, 1.2]), np.array([1.0, -0.5, 0.25])
    gradient = srcgrad.grad(items_written)
    expected = (gradient(x + 1e-5 * v) - gradient(x - 1e-5 * v)) / 2e-5
    np.testing.assert_allclose(srcgrad.hvp(items_written)(x, v), expected, rtol=1e-6)
    np.testing.assert_allclose(srcgrad.hessian(items_written)(x) @ v, expected, rtol=1e-6)
