"""Every case of the rule table (tests/rule_cases.py) against central differences, plus the behaviours that a
gradient check alone does not pin down: tie rules, float32, non-differentiable calls, user rules, errors."""


import numpy as np
import pytest
from rule_cases import CASES

from srcgrad.testing import check_grad


def _param(case):
    marks = []
    if case.pending is not None:
        exc, reason = case.pending
        marks.append(pytest.mark.xfail(raises=exc, strict=True, reason=reason))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_rule_case(case):
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    check_grad(case.fn, *args, wrt=case.wrt, rtol=case.rtol, atol=case.atol, eps=case.eps)
