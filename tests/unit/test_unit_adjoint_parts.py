"""The parts of the reverse-mode builder on small IR: tape planning (srcgrad/tape.py), adjoint accumulation
(srcgrad/accumulate.py) and the program items (srcgrad/program.py)."""

import ast

import numpy as np
from irsamples import every_statement, lowered, scalar_loop

from srcgrad import codegen, ir, pass_table, passes, tape
from srcgrad.accumulate import Adjoints
from srcgrad.binding import ARRAY, SCALAR
from srcgrad.program import Block, Comment, Program, loads, stores, walk_items


def loop_invariant_sample(x, w, n):
    s = 0.0
    for i in range(n):
        c = np.cos(w)  # the same in every iteration
        s = s + c * x * i
    return s


def test_loop_defined_and_invariant():
    fn = lowered(loop_invariant_sample)
    defined = tape.loop_defined(fn.body)
    loop = next(s for s in ir.walk(fn.body) if isinstance(s, ir.For))
    cos = next(op.target for op in ir.walk_ops(fn.body) if "np.cos" in ir.format_op(op))
    assert loop.target in defined and cos in defined
    assert "x" not in defined and "s" not in defined  # defined before the loop
    scaled = next(op.target for op in ir.walk_ops(fn.body) if ir.format_op(op).endswith(f"mul({cos}, x)"))
    assert tape.loop_invariant(fn.body, defined) == {cos, scaled}  # c * x too: both operands are the same each time


def test_plan_records_recomputes_scalar_work():
    fn, facts = pass_table.run_passes(lowered(scalar_loop), ["x"], {"x": SCALAR, "n": SCALAR})
    plan = tape.TapePlan(fn, facts, codegen.scope_for(fn, lambda name: None))
    loop = next(s for s in ir.walk(fn.body) if isinstance(s, ir.For))
    ops = [s for s in loop.body if isinstance(s, ir.Op)]
    product = next(op for op in ops if op.form.symbol == "*")
    pushed, recomputed = plan.plan_records(ops, {product.target})
    assert product in recomputed and product.target not in pushed  # a float product: recomputed from its inputs
    assert not plan.used  # nothing asked for the tape's name yet


def adjoints_for(kinds):
    facts = passes.Facts(kinds=kinds, varied=set(kinds), useful=set(kinds))
    scope = codegen.Scope(set(kinds))
    return Adjoints(facts, scope, {}, lambda func: codegen.name(scope.bind(func.__name__, func)))


def text(statements):
    return [ast.unparse(s) for s in statements]


def test_accumulate_assigns_then_adds():
    adjoints = adjoints_for({"x": ARRAY, "y": ARRAY})
    out = []
    adjoints.control_depth = 1  # (inside control flow: no constant propagation)
    adjoints.accumulate(out, "x", codegen.name("y"), True)
    adjoints.accumulate(out, "x", codegen.name("y"), True)
    assert text(out) == ["x_bar = y", "x_bar = x_bar + y"]
    assert adjoints.has_gradient("x") and adjoints.var_of("x_bar") == "x"


def test_numbers_at_the_top_level_are_propagated_and_materialized():
    adjoints = adjoints_for({"x": SCALAR})
    out = []
    adjoints.accumulate(out, "x", ast.Constant(value=2), False)
    assert out == [] and ast.unparse(adjoints.ref("x_bar")) == "2"
    assert text(adjoints.materialize()) == ["x_bar = 2"]


def test_join_zeroes_what_one_path_did_not_assign():
    adjoints = adjoints_for({"x": SCALAR, "y": SCALAR})
    adjoints.adj("x"), adjoints.adj("y")
    then_code, else_code = [], []
    adjoints.join([then_code, else_code], [{"x_bar"}, {"y_bar"}])
    assert text(then_code) == ["y_bar = 0.0"] and text(else_code) == ["x_bar = 0.0"]
    assert adjoints.assigned == {"x_bar", "y_bar"}


def test_program_items_protocol():
    inner = [codegen.assign("a", codegen.name("b")), Comment("note")]
    block = Block("for", target="i", iter=codegen.name("items"), body=inner)
    items = [codegen.assign("c", codegen.name("a")), block]
    assert list(walk_items(items)) == [items[0], block, *inner]
    assert loads(items) == {"a", "b", "items"}
    assert stores(items) == {"a", "c", "i"}
    assert Program().forward == []


def test_every_statement_kind_has_a_reverse_and_a_forward():
    import srcgrad

    g = srcgrad.grad(every_statement)
    assert g(0.7, 3) == 2.0 * 2
