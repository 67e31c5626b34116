"""srcgrad.quickprint writes astor's text (srcgrad.printer's astor printer) for every statement it prints: random
expression trees of the nodes it knows, numbers of every sign and kind among them, and every statement srcgrad
prints for the golden functions. A statement it does not know is left to astor (None)."""

import ast
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_golden import CASES

import srcgrad
from srcgrad import printer, quickprint

NUMBERS = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                    st.sampled_from([-0.0, 0.0, 1e300, -2.5, math.inf, -math.inf]), st.none())
NAMES = st.sampled_from(["x", "y", "np", "t1"]).map(lambda n: ast.Name(id=n, ctx=ast.Load()))
BINOPS = st.sampled_from([ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.MatMult, ast.Mod, ast.FloorDiv,
                          ast.BitOr, ast.BitXor, ast.BitAnd, ast.LShift, ast.RShift])
UNARY = st.sampled_from([ast.USub, ast.UAdd, ast.Not, ast.Invert])
CMPOPS = st.sampled_from([ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In,
                          ast.NotIn])


def _expressions(leaf):
    def extend(inner):
        return st.one_of(
            st.builds(lambda a, o, b: ast.BinOp(left=a, op=o(), right=b), inner, BINOPS, inner),
            st.builds(lambda o, a: ast.UnaryOp(op=o(), operand=a), UNARY, inner),
            st.builds(lambda a, o, b: ast.Compare(left=a, ops=[o()], comparators=[b]), inner, CMPOPS, inner),
            st.builds(lambda o, a, b: ast.BoolOp(op=o(), values=[a, b]), st.sampled_from([ast.And, ast.Or]), inner,
                      inner),
            st.builds(lambda a, b, c: ast.IfExp(test=a, body=b, orelse=c), inner, inner, inner),
            st.builds(lambda f, args: ast.Call(func=f, args=args, keywords=[]), inner, st.lists(inner, max_size=3)),
            st.builds(lambda f, v: ast.Call(func=f, args=[], keywords=[ast.keyword(arg="axis", value=v)]), inner,
                      inner),
            st.builds(lambda a: ast.Attribute(value=a, attr="T", ctx=ast.Load()), inner),
            st.builds(lambda a, i: ast.Subscript(value=a, slice=i, ctx=ast.Load()), inner, inner),
            st.builds(lambda a, lo: ast.Subscript(value=a, slice=ast.Tuple(
                elts=[ast.Slice(lower=lo, upper=None, step=None), ast.Constant(value=None)], ctx=ast.Load()),
                ctx=ast.Load()), inner, inner),
            st.builds(lambda elts: ast.Tuple(elts=elts, ctx=ast.Load()), st.lists(inner, max_size=3)),
            st.builds(lambda elts: ast.List(elts=elts, ctx=ast.Load()), st.lists(inner, max_size=3)),
        )
    return st.recursive(leaf, extend, max_leaves=12)


STRINGS = st.one_of(st.text(max_size=6), st.binary(max_size=4), st.sampled_from(["it's", 'a"b', "line\nbreak", "é"]))
EXPRESSIONS = _expressions(st.one_of(NAMES, NUMBERS.map(lambda v: ast.Constant(value=v)),
                                     STRINGS.map(lambda v: ast.Constant(value=v))))
STATEMENTS = st.one_of(
    EXPRESSIONS.map(lambda e: ast.Assign(targets=[ast.Name(id="t", ctx=ast.Store())], value=e, lineno=0)),
    st.builds(lambda o, e: ast.AugAssign(target=ast.Name(id="t", ctx=ast.Store()), op=o(), value=e), BINOPS,
              EXPRESSIONS),
    EXPRESSIONS.map(lambda e: ast.Return(value=e)),
    EXPRESSIONS.map(lambda e: ast.Expr(value=e)),
    st.sampled_from([ast.Break, ast.Continue, ast.Pass]).map(lambda k: k()),
)


def _assign(value):
    return ast.Assign(targets=[ast.Name(id="t", ctx=ast.Store())], value=value, lineno=0)


def _c(v):
    return ast.Constant(value=v)


_X = ast.Name(id="x", ctx=ast.Load())


@settings(max_examples=400, deadline=None)
@given(STATEMENTS)
@example(_assign(ast.BinOp(left=_c(-2.0), op=ast.Pow(), right=_c(2))))  # (-2.0) ** 2
@example(_assign(ast.UnaryOp(op=ast.USub(), operand=ast.BinOp(left=_c(-0.5), op=ast.Pow(), right=_X))))
@example(_assign(ast.BinOp(left=_X, op=ast.Sub(), right=ast.BinOp(left=_X, op=ast.Sub(), right=_c(math.nan)))))
@example(_assign(ast.Attribute(value=_c(-1.0), attr="real", ctx=ast.Load())))
def test_a_statement_reads_as_astor_writes_it(stmt):
    quick = quickprint.stmt_text(stmt)
    if quick is not None:
        assert quick == printer.astor_stmt_text(stmt)


@settings(max_examples=300, deadline=None)
@given(EXPRESSIONS)
@example(ast.Constant(value=True))
@example(ast.UnaryOp(op=ast.USub(), operand=_c(1.5)))
def test_an_expression_reads_as_astor_writes_it(node):
    # (the heads of loops and branches: ``while True:``, ``for i in range(n - 1, -1, -1):``)
    quick = quickprint.expr_text(node)
    if quick is not None:
        assert quick == printer.astor_expr_text(node)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_statement_of_the_golden_gradients_reads_as_astor_writes_it(name, monkeypatch):
    compared = []

    def both(node):
        quick, slow = quickprint.stmt_text(node), printer.astor_stmt_text(node)
        assert quick is None or quick == slow
        compared.append(quick is not None)
        return slow

    def both_expressions(node):
        quick, slow = quickprint.expr_text(node), printer.astor_expr_text(node)
        assert quick is None or quick == slow
        return slow

    monkeypatch.setattr(printer, "stmt_text", both)
    monkeypatch.setattr(printer, "expr_text", both_expressions)
    srcgrad.cache.disable()
    try:
        func, args, wrt = CASES[name]
        srcgrad.source(srcgrad.grad(func, wrt=wrt), *args)
    finally:
        srcgrad.cache.reset()
    assert any(compared)  # (the quick printer wrote some of them)
