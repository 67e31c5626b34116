"""Quick printing: a statement of generated code in, the text :func:`srcgrad.printer.stmt_text` gives for it out —
or None when the statement holds a node this module does not print, and astor prints it.

Why: most generated statements are assignments of arithmetic, calls, attributes and subscripts of names and numbers;
astor prints them through a visitor per node, a closure per write and a context manager per bracket, which is most
of the time of emitting a long function. This module prints those nodes directly.

What holds: the text is astor's, character for character (Python's precedence levels in the same order and ties as
astor numbers them — :data:`_LEVELS` — and the same rule: a node gets brackets when its precedence is below what its
parent asks for; a number spelled with a minus binds as a unary minus, as srcgrad's printer has astor do). astor
itself is not imported here: printing common code does not load it (``import srcgrad`` need not either).
tests/unit/test_quickprint.py prints random
statements and every statement of the golden gradients both ways and compares them; and the generated function's
text is read back and compared with the trees printed on every generation (srcgrad.printer.check_function),
whichever printer wrote it.
"""

from __future__ import annotations

import ast
import math
from typing import Any

# Binding strength, weakest first; names in one group bind alike. Besides operators: the contexts a statement or a
# bracket gives its expression (an assignment's value, a subscript's index, a call's only argument...) and the right
# operand of ``**`` (PowRHS: ``2 ** -x`` needs no brackets). Levels are odd numbers two apart, so that ``p + 1``
# (the right operand of a left-associative operator) lies between two levels.
_LEVELS = (
    ("Assign",), ("AugAssign", "Expr"), ("Return",), ("Slice", "Subscript"), ("Tuple",), ("Comma",), ("call_one_arg",),
    ("Lambda", "IfExp"), ("Or",), ("And",), ("Not",),
    ("Eq", "NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot", "In", "NotIn"),
    ("BitOr",), ("BitXor",), ("BitAnd",), ("LShift", "RShift"), ("Add", "Sub"),
    ("Mult", "Div", "Mod", "FloorDiv", "MatMult"), ("PowRHS",), ("Invert", "UAdd", "USub"), ("Pow",), ("Await",),
    ("Constant",),
)
_LEVEL = {name: 2 * rank + 1 for rank, group in enumerate(_LEVELS) for name in group}
_SYMBOLS = {
    ast.Or: "or", ast.And: "and", ast.Not: "not", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=",
    ast.Gt: ">", ast.GtE: ">=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&", ast.LShift: "<<", ast.RShift: ">>", ast.Add: "+",
    ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@",
    ast.Invert: "~", ast.UAdd: "+", ast.USub: "-", ast.Pow: "**",
}
_PRECEDENCE = {cls: _LEVEL[cls.__name__] for cls in _SYMBOLS} | {ast.IfExp: _LEVEL["IfExp"]}

_HIGHEST = _LEVEL["Constant"] + 2
_COMMA = _LEVEL["Comma"]
_ONE_ARG = _LEVEL["call_one_arg"]
_POW_LEFT = _LEVEL["Pow"] + 1
_POW_RIGHT = _LEVEL["PowRHS"]
_USUB = _LEVEL["USub"]
_CONSTANT = _LEVEL["Constant"]
_TUPLE = _LEVEL["Tuple"]
_SUBSCRIPT = _LEVEL["Subscript"]
_SLICE = _LEVEL["Slice"]


def get_op_precedence(node: Any) -> int:
    """How strongly the operator (or the conditional expression) ``node`` binds."""
    return _PRECEDENCE[node.__class__]


def get_op_symbol(op: Any, form: str = "%s") -> str:
    """The operator's symbol, in ``form``."""
    return form % _SYMBOLS[op.__class__]


class _Unsupported(Exception):
    pass


_KEYWORDS = {ast.Break: "break", ast.Continue: "continue", ast.Pass: "pass"}


def stmt_text(node: ast.stmt) -> str | None:
    """The text of one simple statement (assignment, augmented assignment, return, expression), or None."""
    try:
        cls = node.__class__
        if cls is ast.Assign:
            pp = _LEVEL["Assign"]
            return "".join(expr(t, pp) + " = " for t in node.targets) + expr(node.value, pp)
        if cls is ast.AugAssign:
            pp = _LEVEL["AugAssign"]
            return expr(node.target, pp) + get_op_symbol(node.op, " %s= ") + expr(node.value, pp)
        if cls is ast.Return:
            return "return" if node.value is None else "return " + expr(node.value, _LEVEL["Return"])
        if cls is ast.Expr and node.value.__class__ is not ast.Constant:  # (a docstring-like string: astor's)
            return expr(node.value, _LEVEL["Expr"])
        if cls in _KEYWORDS:
            return _KEYWORDS[cls]
    except _Unsupported:
        return None
    return None


def expr_text(node: ast.expr) -> str | None:
    """The text of an expression as astor prints it as an expression statement, or None."""
    if node.__class__ is ast.Constant and isinstance(node.value, (str, bytes)):  # (astor's docstring spelling)
        return None
    try:
        return expr(node, _LEVEL["Expr"])
    except _Unsupported:
        return None


def expr(node: Any, pp: int) -> str:
    """The text of ``node`` where its parent asks for precedence ``pp``."""
    printer = _PRINTERS.get(node.__class__)
    if printer is None:
        raise _Unsupported(node.__class__.__name__)
    return printer(node, pp)


def _bracket(text: str, p: int, pp: int) -> str:
    return text if p >= pp else "(" + text + ")"


def _name(node: ast.Name, pp: int) -> str:
    return node.id


def _constant(node: ast.Constant, pp: int) -> str:
    value = node.value
    cls = value.__class__
    if value is Ellipsis or getattr(node, "kind", None):
        raise _Unsupported("constant")
    if cls is str or cls is bytes:  # (by its repr, one line, as srcgrad's astor printer writes it: sourcetext)
        return repr(value)
    if cls is int or cls is float or cls is bool:
        text = _number(value)
        return _bracket(text, _USUB if text.startswith("-") else _CONSTANT, pp)
    if cls is complex or isinstance(value, (int, float, complex)):
        raise _Unsupported("constant")
    return repr(value)  # None (astor writes other constants by their repr, without brackets)


def _number(value: Any) -> str:
    """astor's spelling of an int, a float or a bool (infinity is ``1e1000``, a NaN ``(1e1000-1e1000)``)."""
    if value.__class__ is float:
        if math.isinf(value):
            return "-1e1000" if value < 0 else "1e1000"
        if math.isnan(value):
            return "(1e1000-1e1000)"
    return repr(value)


def _bin_op(node: ast.BinOp, pp: int) -> str:
    op = node.op
    p = get_op_precedence(op)
    if op.__class__ is ast.Pow:
        text = expr(node.left, _POW_LEFT) + " ** " + expr(node.right, _POW_RIGHT)
    else:
        text = expr(node.left, p) + get_op_symbol(op, " %s ") + expr(node.right, p + 1)
    return _bracket(text, p, pp)


def _unary_op(node: ast.UnaryOp, pp: int) -> str:
    p = get_op_precedence(node.op)
    symbol = get_op_symbol(node.op)
    return _bracket(symbol + (" " if symbol.isalpha() else "") + expr(node.operand, p), p, pp)


def _bool_op(node: ast.BoolOp, pp: int) -> str:
    p = get_op_precedence(node.op)
    return _bracket(get_op_symbol(node.op, " %s ").join(expr(v, p + 1) for v in node.values), p, pp)


def _compare(node: ast.Compare, pp: int) -> str:
    p = get_op_precedence(node.ops[0])
    text = expr(node.left, p + 1) + "".join(get_op_symbol(op, " %s ") + expr(right, p + 1)
                                            for op, right in zip(node.ops, node.comparators))
    return _bracket(text, p, pp)


def _if_exp(node: ast.IfExp, pp: int) -> str:
    p = get_op_precedence(node)
    text = expr(node.body, p + 1) + " if " + expr(node.test, p + 1) + " else " + expr(node.orelse, p)
    return _bracket(text, p, pp)


def _call(node: ast.Call, pp: int) -> str:
    args, keywords = node.args, node.keywords
    p = _COMMA if len(args) + len(keywords) > 1 else _ONE_ARG
    parts = [expr(a, p) for a in args]
    for keyword in keywords:
        if keyword.arg is None:
            raise _Unsupported("**")
        parts.append(keyword.arg + "=" + expr(keyword.value, _COMMA))
    return expr(node.func, _HIGHEST) + "(" + ", ".join(parts) + ")"


def _attribute(node: ast.Attribute, pp: int) -> str:
    return expr(node.value, _HIGHEST) + "." + node.attr


def _subscript(node: ast.Subscript, pp: int) -> str:
    return expr(node.value, _HIGHEST) + "[" + expr(node.slice, _SUBSCRIPT) + "]"


def _slice(node: ast.Slice, pp: int) -> str:
    text = ("" if node.lower is None else expr(node.lower, _SLICE)) + ":" \
        + ("" if node.upper is None else expr(node.upper, _SLICE))
    step = node.step
    if step is not None:
        text += ":"
        if not (step.__class__ is ast.Name and step.id == "None"):
            text += expr(step, _SLICE)
    return text


def _tuple(node: ast.Tuple, pp: int) -> str:
    elts = node.elts
    text = ", ".join(expr(e, _COMMA) for e in elts) + ("," if len(elts) == 1 else "")
    return text if elts and _TUPLE >= pp else "(" + text + ")"


def _list(node: ast.List, pp: int) -> str:
    return "[" + ", ".join(expr(e, _COMMA) for e in node.elts) + "]"


_PRINTERS: dict[type, Any] = {
    ast.Name: _name, ast.Constant: _constant, ast.BinOp: _bin_op, ast.UnaryOp: _unary_op, ast.BoolOp: _bool_op,
    ast.Compare: _compare, ast.IfExp: _if_exp, ast.Call: _call, ast.Attribute: _attribute,
    ast.Subscript: _subscript, ast.Slice: _slice, ast.Tuple: _tuple, ast.List: _list,
}
