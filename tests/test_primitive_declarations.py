"""One declaration per primitive (issue 14 item 1): every fact srcgrad uses about a primitive is a field of its rule,
declared where the rule is, and checked here against what the function does.

- every registered rule has every property of ``registry.PROPERTIES``, of the right type, consistent with the others;
- no module outside srcgrad/rules compares rule names or keeps a table of primitives;
- a declared fact is true: ``float_valued`` results are never bool or integer, ``full_reduction`` results are one
  number, ``uniform`` adjoints are ``g`` or ``g / size`` everywhere, an elementwise primitive not declared ``raises``
  only warns on bad input (``view`` is checked by tests/test_trust_aliasing.py, ``forward`` by
  tests/test_forward_rules.py, ``discrete`` by tests/test_trust_arguments.py);
- the proof of the issue: a primitive added with only its declaration and one case (``np.rot90``, a view, and
  ``np.sinc``, float-valued) is differentiated right, its view's in-place update is refused, and its float result
  needs no ``1.0 *``.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from rule_cases import CASES

import srcgrad
from srcgrad import ir
from srcgrad.errors import UnsupportedSyntax
from srcgrad.rules import all_rules, lookup, registry
from srcgrad.testing import check_grad

FORWARD_KINDS = {"elementwise", "linear", "multilinear", "reduction", "explicit"}


def _builtin_rules():
    return [r for r in all_rules() if getattr(r.adjoint, "__module__", "srcgrad.").startswith("srcgrad.")]


def _fact_type_ok(value) -> bool:
    return isinstance(value, bool) or callable(value)


def test_every_rule_declares_every_property():
    problems = []
    for rule in all_rules():
        missing = [p for p in registry.PROPERTIES if not hasattr(rule, p)]
        if missing:
            problems.append(f"{rule.name}: no {missing}")
            continue
        if rule.forward not in FORWARD_KINDS | {None}:
            problems.append(f"{rule.name}: forward kind {rule.forward!r}")
        if (rule.forward == "explicit") != (rule.jvp is not None):
            problems.append(f"{rule.name}: forward {rule.forward!r} with tangent rule {rule.jvp}")
        if not all(_fact_type_ok(getattr(rule, f)) for f in ("view", "full_reduction", "raises")):
            problems.append(f"{rule.name}: view, full_reduction and raises are True/False or functions of the call")
        if not isinstance(rule.float_valued, bool) or rule.uniform not in (None, "sum", "mean"):
            problems.append(f"{rule.name}: float_valued {rule.float_valued!r}, uniform {rule.uniform!r}")
        if rule.uniform is not None and rule.full_reduction is False:
            problems.append(f"{rule.name}: a uniform adjoint is one of a full reduction")
        if rule.forward == "reduction" and len(rule.wrt) != 1:
            problems.append(f"{rule.name}: a reduction's tangent differentiates one parameter")
    assert not problems, problems


def test_every_builtin_differentiable_rule_names_its_forward_kind():
    missing = sorted(r.name for r in _builtin_rules() if not r.nondiff and r.wrt and r.forward is None)
    assert not missing, f"declare forward=... or a defjvp for: {missing}"


# the facts the tables outside srcgrad/rules used to hold, by rule name or function name
_NAME_CHECKS = re.compile(r"rule\.name\s*(==|!=|\bin\b|\bnot in\b)|__name__\", None\)\s*(==|\bin\b)"
                          r"|FLOAT_UFUNCS|VIEW_FUNCTIONS|_FULL_REDUCTIONS|_ELEMENTWISE_BUILTINS|\bMULTILINEAR\b")


def test_no_module_outside_the_rules_keeps_facts_about_primitives():
    package = Path(srcgrad.__file__).parent
    found = [f"{path.relative_to(package)}:{number}: {line.strip()}"
             for path in sorted(package.glob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if _NAME_CHECKS.search(line)]
    assert not found, found


# --- each declared fact is true -----------------------------------------------------------------------------------

_INTEGER_INPUTS = (np.arange(1, 5), np.array([True, False, True]), 2, True)


def _call_quietly(func, *args):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return func(*args)


def test_float_valued_results_are_never_bool_or_integer():
    wrong, probed = [], 0
    for rule in all_rules():
        if not rule.float_valued:
            continue
        for x in _INTEGER_INPUTS:
            try:
                result = _call_quietly(rule.func, x)
            except (TypeError, ValueError):  # not a value the function takes (math.acosh(True) and the like)
                continue
            probed += 1
            if np.asarray(result).dtype.kind not in "fc":
                wrong.append(f"{rule.name}({x!r}) has dtype {np.asarray(result).dtype}")
    assert probed >= 60
    assert not wrong, wrong


def _bound_defaults(rule) -> dict:
    return {n: ir.Const(p.default) for n, p in rule.signature.parameters.items() if p.default is not p.empty}


def _full_reduction_calls(rule):
    x = np.arange(1.0, 7.0).reshape(2, 3) / 7.0
    if len(rule.wrt) == 2:  # np.vdot(a, b)
        return [(x, x)]
    return [(x,), (x.ravel(),)]


def test_full_reductions_give_one_number():
    checked = []
    for rule in all_rules():
        if rule.full_reduction is False or not rule.holds("full_reduction", _bound_defaults(rule)):
            continue
        for args in _full_reduction_calls(rule):
            result = _call_quietly(rule.func, *args)
            assert np.ndim(result) == 0, f"{rule.name}{tuple(np.shape(a) for a in args)} gave shape {np.shape(result)}"
        checked.append(rule.name)
    assert {"np.sum", "np.mean", "np.prod", "np.max", "np.var", "np.linalg.norm", "np.vdot"} <= set(checked)


def test_axis_arguments_make_a_reduction_partial():
    rule = lookup(np.sum)
    assert not rule.holds("full_reduction", {"a": ir.Var("x"), "axis": ir.Const(0), "keepdims": ir.Const(False)})
    assert not rule.holds("full_reduction", {"a": ir.Var("x"), "axis": ir.Const(None), "keepdims": ir.Const(True)})
    assert not lookup(np.linalg.norm).holds("full_reduction", {"x": ir.Var("x"), "ord": ir.Const("nuc")})


def test_builtin_sum_is_not_a_full_reduction():
    """sum(x) of a matrix is a vector: grad must refuse it, not take it for a number (it returned all ones)."""

    def row_sums(x):
        return sum(x)

    with pytest.raises(srcgrad.NonScalarOutput):
        srcgrad.grad(row_sums)(np.arange(6.0).reshape(2, 3))
    assert srcgrad.grad(row_sums)(np.arange(3.0)).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("func", [np.sum, np.mean])
def test_uniform_adjoints_are_uniform(func):
    rule = lookup(func)
    x = np.arange(1.0, 7.0).reshape(2, 3)
    adjoint = rule.adjoint(1.0, func(x), x)
    expected = 1.0 if rule.uniform == "sum" else 1.0 / x.size
    np.testing.assert_allclose(adjoint, np.full(x.shape, expected))


_MISUSE = re.compile("truth value of an array|nonzero on 0d")  # arrays where the function wants one number
_BAD_VALUES = (0.0, -1.0, math.nan, math.inf, -math.inf, 1e308, -1e308)


def _raises_on_bad_input(rule) -> str | None:
    """The exception an elementwise primitive raises on one of the bad values (every argument the same), else None."""
    n = len([p for p in rule.signature.parameters.values() if p.default is p.empty and p.kind is not p.VAR_POSITIONAL])
    for value in _BAD_VALUES:
        for args in ((value,) * n, (np.full(3, value),) * n):
            try:
                _call_quietly(rule.func, *args)
            except TypeError:
                continue  # not a call of this function
            except (ValueError, ArithmeticError) as exc:
                if not _MISUSE.search(str(exc)):
                    return f"{type(exc).__name__} at {value}"
    return None


def test_elementwise_primitives_raise_only_where_declared():
    """An op whose value is unused is dropped unless its rule says it raises: then a gradient would come back where
    the function raises. numpy only warns; math, Python's operators and conversions raise."""
    undeclared, probed = [], 0
    for rule in all_rules():
        if rule.nondiff or rule.forward != "elementwise" or not callable(rule.func):
            continue
        probed += 1
        raised = _raises_on_bad_input(rule)
        if raised and not rule.holds("raises", {}):
            undeclared.append(f"{rule.name}: {raised}")
    assert probed > 150
    assert not undeclared, undeclared


def test_python_arithmetic_raises_except_whole_powers():
    power = lookup(__import__("operator").pow)
    assert power.holds("raises", {"x": ir.Var("x"), "y": ir.Const(0.5)})
    assert not power.holds("raises", {"x": ir.Var("x"), "y": ir.Const(3)})


# --- the proof: a new primitive is its declaration and one case ---------------------------------------------------


@pytest.fixture
def unregistered():
    """Take the given primitives' rules out of the table for the test, and put them back after it."""
    saved = {}

    def take(func):
        saved[func] = registry._RULES.pop(registry._key(func))

    yield take
    for func, rule in saved.items():
        registry._RULES[registry._key(func)] = rule


def rotate_then_update(x):
    y = np.rot90(x)
    y += 1.0  # Python changes x through the view
    return np.sum(x * x)


def rotate_weighted(m, w):
    return np.sum(np.rot90(m, 1, (0, 1)) * w) + np.sum(np.rot90(m, -1) ** 2)


def scaled_by_sinc(x):
    return x * np.sinc(3.0)


def sinc_weighted(x, w):
    return np.sum(np.sinc(x) * w)


def test_rot90_declared_in_a_test_is_differentiated_and_its_view_update_refused(unregistered):
    unregistered(np.rot90)

    @srcgrad.defgrad(np.rot90, wrt=("m",), discrete=("k", "axes"), view=True, forward="linear")
    def rot90(g, ans, m, k=1, axes=(0, 1)):
        return np.rot90(g, -k, axes)

    rng = np.random.default_rng(3)
    m, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 3))
    check_grad(rotate_weighted, m, w, wrt=0)
    value, tangent = srcgrad.jvp(rotate_weighted)(m, w, np.ones_like(m))
    assert value == pytest.approx(rotate_weighted(m, w))
    eps = 1e-6
    assert tangent == pytest.approx((rotate_weighted(m + eps, w) - rotate_weighted(m - eps, w)) / (2 * eps), rel=1e-6)
    x = np.arange(1.0, 5.0).reshape(2, 2)
    with pytest.raises(UnsupportedSyntax, match="in place"):
        srcgrad.value_and_grad(rotate_then_update)(x.copy())
    assert rotate_then_update(x.copy()) == pytest.approx(54.0)  # what a silent run would have had to return


def test_sinc_declared_in_a_test_is_differentiated_and_float_valued(unregistered):
    unregistered(np.sinc)

    @srcgrad.defgrad(np.sinc, forward="elementwise", float_valued=True)
    def sinc(g, ans, x):
        return g * np.where(x == 0, 0.0, (np.cos(math.pi * x) - ans) / np.where(x == 0, 1.0, x))

    rng = np.random.default_rng(4)
    x, w = rng.uniform(0.1, 2.0, size=5), rng.normal(size=5)
    check_grad(sinc_weighted, x, w, wrt=0)
    assert srcgrad.grad(scaled_by_sinc)(2.0) == pytest.approx(np.sinc(3.0))
    text = srcgrad.source(srcgrad.grad(scaled_by_sinc))
    assert "x_bar = unbroadcast(t1, x)" in text and "1.0 *" not in text


def test_the_built_in_sinc_and_rot90_have_their_cases():
    assert {"sinc-array", "sinc-near-zero", "rot90"} <= {c.id for c in CASES}
    assert lookup(np.sinc).float_valued and lookup(np.rot90).view is True
