"""Each pass on small lowered IR: the facts it returns (srcgrad/passes.py), and that it leaves its input as it was."""

import numpy as np
import pytest
from irsamples import branches, lowered, scalar_loop, shapes, straight, tuple_out, with_effects, writes_argument

from srcgrad import ir, pass_table, passes
from srcgrad.binding import ARRAY, SCALAR, SEQUENCE
from srcgrad.errors import NoRuleError


def run(func, wrt, kinds, upto):
    """The function and facts after the passes up to ``upto`` (included)."""
    fn, facts = lowered(func), passes.Facts()
    request = pass_table.Request(tuple(wrt), kinds, None)
    for p in pass_table.PASSES:
        fn, facts = p.run(fn, facts, request)
        if p.name == upto:
            return fn, facts
    raise AssertionError(upto)


def target_of(fn, text):
    return next(op.target for op in ir.walk_ops(fn.body) if text in ir.format_op(op))


def test_pass_table_order():
    assert [p.name for p in pass_table.PASSES] == ["kinds", "inplace", "dce", "activity", "shapes"]


def test_kinds_numbers_arrays_sequences():
    fn, facts = run(straight, ["x"], {"x": ARRAY, "y": SCALAR}, "kinds")
    assert facts.kinds[target_of(fn, "mul(2.0, y)")] == SCALAR  # a Python number times a Python number
    assert facts.kinds[target_of(fn, "np.sin(x)")] == ARRAY
    fn, facts = run(straight, ["x"], {"x": SCALAR, "y": SCALAR}, "kinds")
    assert facts.kinds[target_of(fn, "np.sin(x)")] == ARRAY  # numpy gives a numpy value, not a Python number
    assert facts.kinds[target_of(fn, "mul(2.0, y)")] == SCALAR
    fn, facts = run(tuple_out, ["x"], {"x": SCALAR}, "kinds")
    assert facts.kinds[fn.body[-1].value.name] == SEQUENCE


def test_kinds_of_a_loop_reach_a_fixpoint():
    fn, facts = run(scalar_loop, ["x"], {"x": ARRAY, "n": SCALAR}, "kinds")
    loop = next(s for s in ir.walk(fn.body) if isinstance(s, ir.For))
    assert facts.kinds[loop.target] == SCALAR  # iterating over a range gives ints
    assert facts.kinds[fn.body[-1].value.name] == ARRAY  # 0.0 + array * i around the loop: an array


def test_dce_returns_a_new_function_without_dead_ops():
    fn, facts = run(straight, ["x"], {"x": ARRAY, "y": SCALAR}, "inplace")
    after = passes.eliminate_dead_code(fn)
    assert "np.cos" in str(fn) and "np.cos" not in str(after)  # the input is left as it was
    assert after is not fn


def test_dce_keeps_effects_and_what_may_raise():
    fn = passes.eliminate_dead_code(lowered(with_effects))
    text = str(fn)
    assert "print(" in text and "math.log" in text


def test_activity_facts():
    fn, facts = run(straight, ["x"], {"x": ARRAY, "y": SCALAR}, "activity")
    sin = target_of(fn, "np.sin(x)")
    k = target_of(fn, "mul(2.0, y)")
    assert facts.is_active(sin)
    assert k not in facts.varied and k in facts.useful  # reaches the output, does not depend on x
    assert "y" not in facts.varied
    fn, facts = run(branches, ["x"], {"x": SCALAR, "flag": SCALAR}, "activity")
    assert facts.is_active(fn.body[-1].value.name)


def test_activity_refuses_a_gradient_through_a_function_without_a_rule():
    with pytest.raises(NoRuleError, match="tolist"):
        run(no_rule, ["x"], {"x": ARRAY}, "activity")


def no_rule(x):
    return x.tolist()[0] * 1.0  # a method without a rule on a differentiated value


def test_shapes_facts():
    fn, facts = run(shapes, ["x", "w"], {"x": ARRAY, "w": ARRAY}, "shapes")
    a, b, c = (target_of(fn, text) for text in ("np.tanh(x)", "mul(a, 2.0)", "mul(a, w)"))
    assert facts.same_shape(a, "x") and facts.same_shape(b, "x")
    assert not facts.same_shape(c, "x")


def test_inplace_names_the_checked_writes():
    fn, facts = run(writes_argument, ["b"], {"a": ARRAY, "b": ARRAY}, "inplace")
    assert facts.checked, str(fn)
    assert all(op.guarded for op in ir.walk_ops(fn.body) if op.target in facts.checked)
    fn, facts = run(straight, ["x"], {"x": ARRAY, "y": SCALAR}, "inplace")
    assert not facts.checked


def test_passes_never_change_the_facts_they_are_given():
    fn, facts = lowered(straight), passes.Facts()
    request = pass_table.Request(("x",), {"x": ARRAY, "y": SCALAR}, None)
    for p in pass_table.PASSES:
        before = (dict(facts.kinds), set(facts.varied), set(facts.useful), dict(facts.shapes))
        fn, new = p.run(fn, facts, request)
        assert before == (facts.kinds, facts.varied, facts.useful, facts.shapes)
        facts = new


def test_dump_prints_the_facts_and_they_change_from_pass_to_pass(monkeypatch, capsys):
    monkeypatch.setenv("SRCGRAD_DUMP", "all")
    pass_table.run_passes(lowered(straight), ["x"], {"x": ARRAY, "y": SCALAR})
    dumps = {}
    for part in capsys.readouterr().err.split("--- after ")[1:]:
        name, _, text = part.partition(" ---\n")
        dumps[name] = text
    assert list(dumps) == ["lower", "kinds", "inplace", "dce", "activity", "shapes"]
    assert "t1:A" not in dumps["lower"] and ":A" in dumps["kinds"]
    assert "active" not in dumps["dce"] and "active" in dumps["activity"]
    assert "shape=param:x" in dumps["shapes"] and "shape=" not in dumps["activity"]
    assert dumps["kinds"] != dumps["inplace"] or dumps["kinds"] != dumps["activity"]
    assert np.cos.__name__ in dumps["inplace"] and "np.cos" not in dumps["dce"]
