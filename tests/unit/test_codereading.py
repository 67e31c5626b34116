"""srcgrad.codereading against the slow ways it replaces, over every rule srcgrad registers (scipy's included) and
over functions of every parameter kind: the signature equals ``inspect.signature``; the returned expression equals
the value of the definition's one ``return`` (as ``ast.parse`` of the whole definition gives it), and is None
exactly when the body is not one return statement."""

import ast
import inspect
import sys
import textwrap
import types

import pytest

import srcgrad
from srcgrad import codereading
from srcgrad.rules import registry

pytest.importorskip("scipy")
import scipy.linalg  # noqa: E402,F401  (their rules register once the library is imported)
import scipy.signal  # noqa: E402,F401
import scipy.special  # noqa: E402,F401
import scipy.stats  # noqa: E402,F401


def _rule_functions():
    functions = {}
    for rule in registry.all_rules():
        for fn in (rule.adjoint, rule.scalar_adjoint, rule.jvp):
            if isinstance(fn, types.FunctionType):  # (a tangent rule may be an object: custom_root's)
                functions[id(fn)] = fn
    return list(functions.values())


RULE_FUNCTIONS = _rule_functions()


def _every_kind(a, b: int = 2, /, c=3, *args: float, d, e=5, **kwargs) -> float:
    return a


def _keyword_only(*, x, y=1.0):
    return x * y


def _annotated(g: float, ans, x: "list[float]") -> "float":
    return g * x


@pytest.mark.parametrize("fn", [*RULE_FUNCTIONS, _every_kind, _keyword_only, _annotated, lambda x, *a: x,
                                srcgrad.grad, textwrap.dedent], ids=lambda f: getattr(f, "__qualname__", "?"))
def test_signature_is_inspects(fn):
    assert codereading.signature_of(fn) == inspect.signature(fn)
    assert str(codereading.signature_of(fn)) == str(inspect.signature(fn))


def _slow_returned(fn):
    kept = registry._LINES_AT_REGISTRATION.get(id(fn))
    first = fn.__code__.co_firstlineno - 1
    lines = kept[1] if kept is not None else inspect.getsourcelines(fn)[0]
    block = inspect.getblock(lines[first:]) if kept is not None else lines
    definition = ast.parse(textwrap.dedent("".join(block))).body[0]
    body = [s for s in definition.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return body[0].value if len(body) == 1 and isinstance(body[0], ast.Return) else None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="instruction positions are from Python 3.11")
@pytest.mark.parametrize("fn", RULE_FUNCTIONS, ids=lambda f: f.__qualname__)
def test_returned_expression_is_the_definitions(fn):
    kept = registry._LINES_AT_REGISTRATION.get(id(fn))
    lines = kept[1] if kept is not None else inspect.findsource(fn)[0]
    fast, slow = codereading.returned_expression(fn.__code__, lines), _slow_returned(fn)
    if slow is None:
        assert fast is None
    elif fast is not None:  # (None is allowed: then the whole definition is parsed)
        assert ast.dump(fast) == ast.dump(slow)


def _two_statements(g, ans, x):
    y = g * x
    return y


def _branches(g, ans, x):
    if x > 0:
        return g
    return -g


def _multiline(g, ans, x):
    """A docstring, then one return over several lines."""
    return (g *  # a comment inside
            x), \
        -g


def _unicode(g, ans, x):
    return g * "é∂" if x else g  # (positions count UTF-8 bytes)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="instruction positions are from Python 3.11")
@pytest.mark.parametrize("fn, expected", [
    (_two_statements, None), (_branches, None), (_multiline, "((g * x), (- g))"),
    (_unicode, "(g * 'é∂') if x else g"),
])
def test_returned_expression_of_written_functions(fn, expected):
    value = codereading.returned_expression(fn.__code__, inspect.findsource(fn)[0])
    if expected is None:
        assert value is None
    else:
        assert ast.unparse(value) == ast.unparse(ast.parse(expected, mode="eval").body)
