"""Every rule of the table has a forward-mode (tangent) rule, checked on every case of tests/rule_cases.py: the
directional derivative from ``srcgrad.jvp`` against a central difference along a random direction."""

import numpy as np
import pytest
from rule_cases import CASES

import srcgrad
from srcgrad.rules import all_rules


def test_every_differentiable_rule_has_a_forward_rule():
    builtin = [r for r in all_rules() if getattr(r.adjoint, "__module__", "").startswith("srcgrad.")]
    missing = sorted(r.name for r in builtin if not r.nondiff and r.wrt and r.forward is None)
    assert not missing, f"rules without a forward-mode rule: {missing}"


def _direction(x, rng):
    if isinstance(x, (float, int)):
        return float(rng.normal())
    return rng.normal(size=np.shape(x))


def _shift(x, t, eps):
    return (x + eps * t) if not isinstance(x, (float, int)) else float(x) + eps * t


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.pending is None])
def test_jvp_of_rule_case(case):
    rng = np.random.default_rng(sum(map(ord, case.id)) + 1)
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    position = case.wrt[0]
    x = args[position]
    t = _direction(x, rng)
    value, tangent = srcgrad.jvp(case.fn, wrt=position)(*args, t)
    np.testing.assert_allclose(value, case.fn(*args), rtol=1e-12)
    eps = case.eps
    plus = list(args)
    minus = list(args)
    plus[position] = _shift(x, t, eps)
    minus[position] = _shift(x, t, -eps)
    expected = (np.asarray(case.fn(*plus)) - np.asarray(case.fn(*minus))) / (2 * eps)
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(tangent, expected, rtol=case.rtol * 10, atol=max(case.atol, 1e-6) * scale)
