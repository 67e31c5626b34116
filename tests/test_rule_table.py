"""Meta-tests of the rule table: every registered differentiable rule has a gradient case in tests/rule_cases.py,
and every case really exercises the rule it names."""

import pytest
import rule_cases_decomp
from rule_cases import CASES

import srcgrad
from srcgrad import ir
from srcgrad.rules import all_rules, lookup, registry


def _covered() -> dict[int, list]:
    by_rule: dict[int, list] = {}
    for case in CASES:
        rule = lookup(case.prim)
        if rule is not None:
            by_rule.setdefault(id(rule), []).append(case)
    return by_rule


def _builtin(rule) -> bool:
    """Registered by srcgrad itself (tests register user rules of their own)."""
    return rule.adjoint is not None and rule.adjoint.__module__.startswith("srcgrad.")


def _missing() -> list[str]:
    covered = _covered()
    # (numpy 2.5's eig returns complex arrays even for real eigenvalues: its cases need numpy < 2.5)
    uncheckable = set() if rule_cases_decomp.NUMPY_EIG_REAL else {"np.linalg.eig", "np.linalg.eigvals"}
    return sorted(rule.name for rule in all_rules()
                  if _builtin(rule) and not rule.nondiff and id(rule) not in covered and rule.name not in uncheckable)


def test_every_differentiable_rule_has_a_case():
    missing = _missing()
    assert not missing, f"rules without a gradient case in tests/rule_cases.py: {missing}"


def test_a_rule_without_a_case_is_reported():
    def untested(x):
        return x

    def untested_grad(g, ans, x):
        return g

    untested_grad.__module__ = "srcgrad.rules.example"  # as if srcgrad registered it
    registry.defgrad(untested)(untested_grad)
    try:
        assert _missing() == [registry.lookup(untested).name]
    finally:
        del registry._RULES[registry._key(untested)]


def test_every_scalar_variant_has_a_float_case():
    """A rule with a variant for Python numbers (``defgrad(..., scalar=True)``) needs a case with float arguments."""
    covered = _covered()
    missing = []
    for rule in all_rules():
        if rule.scalar_adjoint is None or not _builtin(rule):
            continue
        cases = covered.get(id(rule), [])
        if not any(all(type(a) in (float, int) for a in c.args(_rng())[:2]) for c in cases):
            missing.append(rule.name)
    assert not missing, f"rules whose float variant has no case with float arguments: {missing}"


def _rng():
    import numpy as np

    return np.random.default_rng(0)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_uses_its_primitive(case):
    rule = lookup(case.prim)
    assert rule is not None and not rule.nondiff, f"{case.prim!r} has no differentiable rule"
    fn = srcgrad.graph(case.fn).function
    used = {id(op.rule) for op in ir.walk_ops(fn.body) if op.rule is not None}
    assert id(rule) in used, f"{case.id}: {case.fn.__name__} does not call {rule.name}"


def test_builtin_rules_are_single_expressions():
    """Built-in rules are inlined into the generated code: each body is one ``return`` (complex adjoints call a
    helper in srcgrad.runtime, which standalone emitted modules carry along)."""
    not_inlined = [rule.name for rule in all_rules() if _builtin(rule) and not rule.nondiff
                   for adjoint in (rule.adjoint, rule.scalar_adjoint)
                   if adjoint is not None and rule.inline_exprs(adjoint) is None]
    assert not not_inlined, f"rules that would be called instead of inlined: {not_inlined}"
