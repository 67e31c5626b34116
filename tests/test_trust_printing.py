"""Printed code is the code that was meant (issue 12, item 1).

A negative number as the base of ``**`` was printed without parentheses (``Constant(-2.0) ** 2`` became
``-2.0 ** 2``, which Python reads as ``-(2.0 ** 2)``): value and gradient had the wrong sign in every mode. These tests
run every reproduction of the issue in every mode against Python's own value and central differences, check the
printer on a table of expressions with negative numbers and unary operators in every operand position, and check
that a corrupted printer makes generation fail with an InternalError instead of running the text.
"""

import ast
import importlib
import itertools
import math
import re
import sys
import warnings

import astor
import numpy as np
import pytest

import srcgrad
from srcgrad import cache, printer, quickprint, standalone
from srcgrad import emitter as emit
from srcgrad.testing import check_grad, numerical_grad
from tests.module_files import load

REPRODUCTIONS = '''
import numpy as np


def power_of_negative_literal(x):
    return x * (-2.0) ** 2


def negative_base_variable_exponent(x, n):
    return x * (-2.0) ** n


def minus_power_of_negative(x):
    return x * -(-0.5) ** 2


def alternating_series(x, n):
    s = 0.0
    for i in range(n):
        s = s + (-1) ** i * x ** i
    return s


def divide_by_sum_with_negative_power(y):
    return y / (1.0 + (-1.0) ** 2)


def negative_base_power_of_x(x):
    return (-2.0) ** x


# second derivatives that depend on the sign of the constant (the functions above are linear in x)
def curved_power_of_negative_literal(x):
    return x * x * (-2.0) ** 2


def curved_minus_power_of_negative(x):
    return x * x * -(-0.5) ** 2


def curved_divide(y):
    return y * y / (1.0 + (-1.0) ** 2)


def on_arrays(x):
    return np.sum(x * x * (-2.0) ** 2 + x * -(-0.5) ** 3)
'''

# (function name, arguments, the position differentiated)
CASES = [
    ("power_of_negative_literal", (1.5,)),
    ("negative_base_variable_exponent", (1.5, 2)),
    ("negative_base_variable_exponent", (1.5, 3)),
    ("minus_power_of_negative", (1.5,)),
    ("alternating_series", (0.7, 5)),
    ("alternating_series", (-1.3, 4)),
    ("divide_by_sum_with_negative_power", (1.5,)),
    ("curved_power_of_negative_literal", (1.5,)),
    ("curved_minus_power_of_negative", (-0.8,)),
    ("curved_divide", (1.5,)),
    ("on_arrays", (np.array([0.5, -1.0, 2.0]),)),
]
CURVED = [case for case in CASES if case[0].startswith(("curved", "alternating", "on_arrays"))]
IDS = [f"{name}{args[1:] if len(args) > 1 else ''}" for name, args in CASES]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    module = load(tmp_path_factory.mktemp("printing") / "printing_model.py", REPRODUCTIONS)
    yield module
    sys.modules.pop(module.__name__, None)


def expected_grad(func, args):
    return numerical_grad(func, args, 0)


def assert_close(got, expected):
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_the_issue_example_gives_pythons_numbers(model):
    assert srcgrad.value_and_grad(model.power_of_negative_literal)(1.5) == (6.0, 4.0)
    assert model.power_of_negative_literal(1.5) == 6.0


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_grad_and_value_and_grad(model, name, args):
    func = getattr(model, name)
    check_grad(func, *args)  # the value equals func's, the gradient central differences
    assert_close(srcgrad.grad(func)(*args), expected_grad(func, args))


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_jvp(model, name, args):
    func = getattr(model, name)
    x = args[0]
    direction = np.ones_like(x) if isinstance(x, np.ndarray) else 1.0
    value, tangent = srcgrad.jvp(func)(*args, direction)
    assert value == pytest.approx(func(*args), rel=1e-12)
    assert_close(tangent, np.sum(expected_grad(func, args) * direction))


@pytest.mark.parametrize("name,args", CURVED, ids=[c[0] for c in CURVED])
def test_hessian_and_hvp(model, name, args):
    func = getattr(model, name)
    x = args[0]

    def gradient_at(v):
        return numerical_grad(func, (v, *args[1:]), 0, eps=1e-5)

    if isinstance(x, np.ndarray):
        expected = np.stack([(gradient_at(x + 1e-4 * e) - gradient_at(x - 1e-4 * e)) / 2e-4
                             for e in np.eye(x.size)], axis=-1)
        np.testing.assert_allclose(srcgrad.hessian(func)(*args), expected, rtol=1e-4, atol=1e-5)
        v = np.array([1.0, -2.0, 0.5])
        np.testing.assert_allclose(srcgrad.hvp(func)(*args, v), expected @ v, rtol=1e-4, atol=1e-5)
    else:
        expected = (gradient_at(x + 1e-4) - gradient_at(x - 1e-4)) / 2e-4
        assert srcgrad.hessian(func)(*args) == pytest.approx(expected, rel=1e-4, abs=1e-5)
        assert srcgrad.hvp(func)(*args, 2.0) == pytest.approx(2.0 * expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_explain(model, name, args):
    func = getattr(model, name)
    explanation = srcgrad.explain(func, *args)
    assert explanation.value == pytest.approx(func(*args), rel=1e-12)
    assert_close(explanation.gradient, expected_grad(func, args))


SPELLED = {  # how the negative base is printed in the generated code of each function
    "power_of_negative_literal": "(-2.0) ** 2", "negative_base_variable_exponent": "(-2.0) ** n",
    "minus_power_of_negative": "-(-0.5) ** 2", "alternating_series": "(-1) ** i",
    "divide_by_sum_with_negative_power": "(-1.0) ** 2", "curved_power_of_negative_literal": "(-2.0) ** 2",
    "curved_minus_power_of_negative": "-(-0.5) ** 2", "curved_divide": "(-1.0) ** 2", "on_arrays": "(-2.0) ** 2",
}
UNPARENTHESISED = re.compile(r"(?<![(\w])-\d[\d.]* \*\*|--")


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_source_text_reads_as_meant(model, name, args):
    func = getattr(model, name)
    for text in (srcgrad.source(srcgrad.grad(func), *args), srcgrad.source(srcgrad.jvp(func), *args),
                 srcgrad.explain(func, *args).source):
        assert SPELLED[name] in text
        assert not UNPARENTHESISED.search(text), text


@pytest.mark.parametrize("name,args", CASES, ids=IDS)
def test_standalone_module(model, tmp_path, name, args):
    func = getattr(model, name)
    module_name = f"printing_emitted_{name}"
    (tmp_path / f"{module_name}.py").write_text(standalone.emit(func))  # what `srcgrad emit` writes
    sys.path.insert(0, str(tmp_path))
    try:
        emitted = importlib.import_module(module_name)
        assert_close(getattr(emitted, f"{name}_grad")(*args), expected_grad(func, args))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module_name, None)


def test_negative_base_with_a_variable_exponent_keeps_the_value(model):
    # (-2.0) ** x: the real derivative does not exist (Python's (-2.0) ** 2.5 is complex); the value must be right.
    value, gradient = srcgrad.value_and_grad(model.negative_base_power_of_x)(2.0)
    assert value == 4.0 and math.isnan(gradient)
    assert srcgrad.jvp(model.negative_base_power_of_x)(3.0, 1.0)[0] == -8.0


# --- the printer on a table of expressions ---------------------------------------------------------------------------

NUMBERS = [-2.0, -1, -0.0, -0.5, 3, 2.5, 0.0, -math.inf, math.inf, math.nan, -(2 ** 70), -2j, complex(1.5, -2.0)]
_USUB = ast.USub


def C(value):
    return ast.Constant(value=value)


def N(name):
    return ast.Name(id=name, ctx=ast.Load())


def negated(node):
    return ast.UnaryOp(op=ast.USub(), operand=node)


def operands():
    """Leaves to put in every position: numbers (negative ones included), names, and unary operators of them."""
    leaves = [C(v) for v in NUMBERS] + [N("x")]
    return leaves + [negated(C(2.0)), negated(N("x")), negated(C(-2.0)), ast.UnaryOp(op=ast.Invert(), operand=C(-3)),
                     ast.UnaryOp(op=ast.Not(), operand=C(-1)), ast.UnaryOp(op=ast.UAdd(), operand=C(-1.5))]


BINARY = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult, ast.BitAnd, ast.LShift]


def positions(a, b):
    """Expressions with ``a`` and ``b`` in every operand position the generated code can have."""
    yield from (ast.BinOp(left=a, op=op(), right=b) for op in BINARY)
    yield ast.BinOp(left=ast.BinOp(left=a, op=ast.Pow(), right=b), op=ast.Pow(), right=a)  # (a ** b) ** a
    yield ast.BinOp(left=a, op=ast.Pow(), right=ast.BinOp(left=b, op=ast.Pow(), right=a))  # a ** b ** a
    yield ast.BinOp(left=ast.BinOp(left=a, op=ast.Sub(), right=b), op=ast.Mult(), right=a)
    for op in (ast.USub, ast.UAdd, ast.Invert, ast.Not):
        yield ast.UnaryOp(op=op(), operand=a)
        yield ast.UnaryOp(op=op(), operand=ast.BinOp(left=a, op=ast.Pow(), right=b))
    yield ast.Attribute(value=a, attr="real", ctx=ast.Load())
    yield ast.Call(func=ast.Attribute(value=a, attr="conjugate", ctx=ast.Load()), args=[], keywords=[])
    yield ast.Subscript(value=a, slice=b, ctx=ast.Load())
    yield ast.Subscript(value=N("seq"), slice=ast.Slice(lower=a, upper=b, step=None), ctx=ast.Load())
    yield ast.Subscript(value=N("seq"), slice=ast.Tuple(elts=[a, b], ctx=ast.Load()), ctx=ast.Load())
    yield ast.Call(func=N("f"), args=[a, b], keywords=[ast.keyword(arg="k", value=a)])
    yield ast.Call(func=a, args=[b], keywords=[])
    yield ast.Compare(left=a, ops=[ast.Lt(), ast.Eq()], comparators=[b, a])
    yield ast.BoolOp(op=ast.And(), values=[a, ast.BoolOp(op=ast.Or(), values=[b, a])])
    yield ast.IfExp(test=a, body=b, orelse=a)
    yield ast.Tuple(elts=[a, b], ctx=ast.Load())
    yield ast.List(elts=[a], ctx=ast.Load())
    yield ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                                        kwarg=None, defaults=[]), body=ast.BinOp(left=a, op=ast.Pow(), right=b))


TABLE = [e for a, b in itertools.product(operands(), [C(-2.0), C(2), N("x"), negated(C(1.0))]) for e in positions(a, b)]


def outcome(code, namespace):
    """What evaluating ``code`` gives: its value's repr (a lambda's: its result's), or the exception type."""
    try:
        value = eval(code, dict(namespace))
        return ("value", repr(value() if callable(value) else value))
    except Exception as exc:  # noqa: BLE001 - the same failure on both sides is the same meaning
        return ("raises", type(exc).__name__)


def test_round_trip_table_has_the_bugs_it_covers():
    # the table contains the misprints of the issue: plain astor gets them wrong, srcgrad's printer does not
    base = ast.BinOp(left=C(-2.0), op=ast.Pow(), right=C(2))
    assert astor.to_source(ast.Expr(base)).strip() == "-2.0 ** 2"
    assert printer.expr_text(base) == "(-2.0) ** 2"
    assert printer.expr_text(negated(ast.BinOp(left=C(-0.5), op=ast.Pow(), right=C(2)))) == "-(-0.5) ** 2"
    assert any(not printer.same_tree(e, ast.parse(astor.to_source(ast.Expr(e))).body[0].value) for e in TABLE)
    assert len(TABLE) > 1500


def test_every_expression_reads_back_as_printed_and_means_the_same():
    namespace = {"x": 1.5, "seq": list(range(10)), "f": lambda *a, **k: (a, k), "math": math}
    for expr in TABLE:
        text = printer.expr_text(expr)
        read = ast.parse(text, mode="eval").body
        assert printer.same_tree(expr, read), (ast.dump(expr), text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # ("'float' object is not callable": meant here)
            meant = compile(ast.fix_missing_locations(ast.Expression(body=expr)), "<tree>", "eval")
            written = compile(text, "<text>", "eval")
        assert outcome(meant, namespace) == outcome(written, namespace), (ast.dump(expr), text)


@pytest.mark.parametrize("value", NUMBERS + [True, "a'b\"", b"\x00", None, Ellipsis, 10 ** 400])
def test_constants_read_back_as_themselves(value):
    statement = ast.Assign(targets=[ast.Name(id="t", ctx=ast.Store())], value=C(value), lineno=0)
    text = printer.stmt_text(statement)
    printer.check_text(text, statement, "f")
    namespace = {}
    exec(text, namespace)
    assert repr(namespace["t"]) == repr(value)


@pytest.mark.parametrize("meant,text", [
    (ast.BinOp(left=C(-2.0), op=ast.Pow(), right=C(2)), "-2.0 ** 2"),
    (negated(ast.BinOp(left=C(-0.5), op=ast.Pow(), right=C(2))), "--0.5 ** 2"),
    (C(-0.0), "0.0"),
    (C(2), "2.0"),
    (C(1), "True"),
    (C(math.nan), "1e1000"),
    (ast.BinOp(left=N("a"), op=ast.Sub(), right=ast.BinOp(left=N("b"), op=ast.Sub(), right=N("c"))), "a - b - c"),
    (ast.Attribute(value=N("a"), attr="b", ctx=ast.Load()), "a.c"),
])
def test_a_different_tree_is_told_apart(meant, text):
    assert not printer.same_tree(meant, ast.parse(text, mode="eval").body)
    with pytest.raises(printer.Misprinted):
        printer.check_text(text, ast.Expr(value=meant), "f")


# --- a corrupted printer is caught, and the text never runs -------------------------------------------------------


@pytest.fixture(params=["astor", "quickprint"])
def corrupted(monkeypatch, request):
    """The printer without its fix (astor's own spelling of negative numbers: in the astor printer, or in the quick
    printer that writes the common statements); no cache, and a record of every generated function compiled."""
    if request.param == "astor":
        monkeypatch.setattr(printer, "_spelled_with_minus", lambda value: False)
        monkeypatch.setattr(quickprint, "stmt_text", lambda node: None)
    else:
        monkeypatch.setattr(quickprint, "_USUB", quickprint._CONSTANT)
    cache.disable()
    compiled = []
    original = emit.compile_function
    monkeypatch.setattr(emit, "compile_function", lambda emitted, *a: compiled.append(emitted.source) or
                        original(emitted, *a))
    yield compiled
    cache.reset()


MODES = {
    "grad": lambda f: srcgrad.grad(f)(1.5),
    "value_and_grad": lambda f: srcgrad.value_and_grad(f)(1.5),
    "vjp": lambda f: srcgrad.vjp(f)(1.5, 1.0),
    "jvp": lambda f: srcgrad.jvp(f)(1.5, 1.0),
    "hessian": lambda f: srcgrad.hessian(f)(1.5),
    "explain": lambda f: srcgrad.explain(f, 1.5),
    "source": lambda f: srcgrad.source(srcgrad.grad(f)),
    "emit": lambda f: standalone.emit(f),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_a_misprint_is_an_internal_error_and_never_runs(model, corrupted, mode):
    func = model.power_of_negative_literal
    with pytest.raises(srcgrad.InternalError) as info:
        MODES[mode](func)
    message = str(info.value)
    assert "power_of_negative_literal" in message and "does not read back" in message
    assert "printing_model.py" in message  # located at the user's code
    assert not any("-2.0 ** 2" in text for text in corrupted)


def test_explain_runs_the_checked_text_and_prints_nothing_again(model, monkeypatch):
    # explain reads the generated function's locals from its frame: no second text (a copy that also returns its
    # locals) is printed, so nothing escapes the read-back check
    original = printer.stmt_text
    whole_functions = []

    def stmt_text(node):
        if isinstance(node, ast.FunctionDef):
            whole_functions.append(node.name)
        return original(node)

    monkeypatch.setattr(printer, "stmt_text", stmt_text)
    profiler = sys.getprofile()
    explanation = srcgrad.explain(model.power_of_negative_literal, 1.5)
    assert whole_functions == []
    assert explanation.source == explanation.generated.main
    assert sys.getprofile() is profiler  # the hook that read the locals is gone


def test_an_emitted_module_that_loses_a_line_is_an_internal_error(model, monkeypatch):
    # the standalone module's definitions are compared with the generated trees they were cut from
    original = standalone._rename

    def loses_its_return(text, node, name, renames):
        out = original(text, node, name, renames)
        return out.replace("    return ", "    # return ") if name == "power_of_negative_literal_grad" else out

    monkeypatch.setattr(standalone, "_rename", loses_its_return)
    with pytest.raises(srcgrad.InternalError, match="emitting power_of_negative_literal.*does not read back"):
        standalone.emit(model.power_of_negative_literal)
