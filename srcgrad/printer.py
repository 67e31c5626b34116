"""Printing generated code: stdlib ``ast`` trees in, Python source text out, and the check that the text reads back
as the tree that was printed.

What holds:
- every tree srcgrad turns into text goes through :func:`stmt_text` / :func:`expr_text` (astor, with one fix below;
  the common statements are written by :mod:`srcgrad.quickprint`, to the same text, without astor's machinery);
- what astor records on a node while printing it (the precedence its parent needs) is dropped afterwards, so a node
  printed twice, or shared by two trees, is printed the same way each time;
- a number whose spelling starts with a minus (``-2.0``, ``-1``, ``-0.0``, ``-1e1000``, ``-2j``) is printed with the
  precedence of the unary minus it is spelled with, wherever it sits: ``(-2.0) ** 2``, ``-(-0.5) ** 2``,
  ``(-1.0).real``. astor 0.8 prints such a constant as an atom, so ``Constant(-2.0) ** 2`` came out as
  ``-2.0 ** 2``, which Python reads as ``-(2.0 ** 2)``. Negative constants are born in many places (constant
  folding, rule templates, literals), so the printer is where they are closed;
- :func:`differences` compares the tree that was printed with the tree its text parses to, ignoring only what text
  cannot carry (``ctx``, positions, ``kind``) and how a number is spelled (``Constant(-2.0)`` reads back as
  ``-(2.0)``, a NaN as ``1e1000 - 1e1000``: the same value). The generated function's text is compared
  statement by statement against the printed statements (:func:`check_function`); a difference raises
  :class:`Misprinted`, which the pipelines turn into an ``InternalError`` naming the user's function, so text that
  does not mean its tree is never compiled.
"""

from __future__ import annotations

import ast
import cmath
import functools
import math
import operator
from typing import Any

from srcgrad import quickprint, sourcetext


class Misprinted(Exception):
    """The printed text of generated code parses to a different tree than the one printed (a printer bug)."""


@functools.cache
def _astor() -> tuple[Any, type]:
    """astor and srcgrad's printer made from it, imported at the first statement :mod:`srcgrad.quickprint` does not
    print (about 2.5 ms that ``import srcgrad`` need not pay, issue 21)."""
    import astor
    from astor.code_gen import SourceGenerator
    from astor.op_util import Precedence

    class Printer(SourceGenerator):  # type: ignore[misc]
        """astor's printer, except that a number spelled with a leading minus binds like the unary minus it is, and
        that no precedence outlives one printing."""

        _USUB = ast.USub()

        def get__pp(self, node: ast.AST) -> int:
            # astor stores the precedence a parent needs on the child node (``_pp``), read once when the child is
            # printed; a parent that needs none (a call's function, an attribute's value) sets nothing. Taking it
            # away when it is read means that a node printed before (shared by two trees, or printed twice) does not
            # keep an old precedence there and lose its parentheses.
            return int(node.__dict__.pop("_pp", Precedence.highest))

        def visit_Constant(self, node: ast.Constant) -> None:
            if _spelled_with_minus(node.value):
                with self.delimit(node, self._USUB):
                    self._handle_numeric_constant(node.value)
            else:
                super().visit_Constant(node)

    return astor, Printer


def _spelled_with_minus(value: Any) -> bool:
    """Does astor spell this constant with a leading ``-`` (not inside parentheses of its own)?"""
    cls = value.__class__
    if cls is int:
        return value < 0
    if cls is float:
        return math.copysign(1.0, value) < 0 and not math.isnan(value)  # (a NaN is spelled in parentheses)
    if cls is complex:  # astor writes a complex with a real part as "(a+bj)"; without one, as "bj"
        return value.real == 0 and math.copysign(1.0, value.imag) < 0 and not math.isnan(value.imag)
    return False


LINE_LENGTH = 120  # the project's line length: a longer statement is broken the way black breaks it


def _one_line(pieces: list[str]) -> str:
    """astor's pieces of text joined as they are: no line is broken inside an expression (astor's own
    ``pretty_source`` breaks lines at 79 characters, in the middle of a call's arguments)."""
    return "".join(pieces)


def stmt_text(node: ast.stmt) -> str:
    """The text of one statement (several lines for a compound statement), without a final newline: astor's, which
    :mod:`srcgrad.quickprint` writes itself for the statements made of the nodes it knows."""
    text = quickprint.stmt_text(node)
    return text if text is not None else astor_stmt_text(node)


def astor_stmt_text(node: ast.stmt) -> str:
    """:func:`stmt_text` as astor prints it."""
    astor, printer = _astor()
    return str(astor.to_source(node, source_generator_class=printer, pretty_string=sourcetext.string_literal,
                               pretty_source=_one_line)).rstrip("\n")


def expr_text(node: ast.expr) -> str:
    """The text of one expression (as astor prints it as an expression statement)."""
    text = quickprint.expr_text(node)
    return text if text is not None else astor_expr_text(node)


def astor_expr_text(node: ast.expr) -> str:
    """:func:`expr_text` as astor prints it."""
    astor, printer = _astor()
    return str(astor.to_source(ast.Expr(value=node), source_generator_class=printer,
                               pretty_string=sourcetext.string_literal, pretty_source=_one_line)).strip()


def stmt_lines(node: ast.stmt, pad: str) -> list[str]:
    """The lines of one statement indented by ``pad``: one line, unless it is longer than :data:`LINE_LENGTH`; then
    a call's arguments (or a returned tuple's elements) go on a line of their own between the brackets, or one per
    line with a trailing comma when that line is too long as well (each such item broken again the same way), as
    black writes them."""
    text = stmt_text(node)
    lines = [pad + ln for ln in text.split("\n")]
    if len(lines) > 1 or len(lines[0]) <= LINE_LENGTH:
        return lines
    split = _split_point(node)
    return lines if split is None else _broken(*split, pad, "")


def _broken(head: str, items: list, close: str, pad: str, after: str) -> list[str]:
    inner = pad + "    "
    one = inner + ", ".join(_item_text(item) for item in items)
    if len(one) <= LINE_LENGTH:
        return [pad + head, one, pad + close + after]
    out = [pad + head]
    for item in items:
        line = f"{inner}{_item_text(item)},"
        split = _call_parts(item[1], item[0]) if len(line) > LINE_LENGTH else None
        out += [line] if split is None else _broken(*split, inner, ",")
    return out + [pad + close + after]


def _item_text(item: tuple[str, ast.expr]) -> str:
    prefix, node = item
    text = expr_text(node)
    return prefix + (f"({text})" if isinstance(node, ast.Tuple) else text)  # (a tuple among items keeps its brackets)


def _call_parts(value: ast.expr, prefix: str) -> tuple[str, list, str] | None:
    """A call's (or a tuple's) opening text, items and closing bracket; None for other expressions."""
    if isinstance(value, ast.Tuple) and value.elts:
        return prefix + "(", [("", e) for e in value.elts], ")"
    if not isinstance(value, ast.Call) or not (value.args or value.keywords):
        return None
    items = [("", a) for a in value.args]
    items += [(f"{k.arg}=" if k.arg else "**", k.value) for k in value.keywords]
    return f"{prefix}{expr_text(value.func)}(", items, ")"


def _split_point(node: ast.stmt) -> tuple[str, list, str] | None:
    """``(text up to the opening bracket, the items as (prefix, node), the closing bracket)`` of a statement black
    breaks at its last opening bracket: ``x = f(...)``, ``f(...)``, ``return f(...)``, ``return a, b``; None for
    others."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        prefix, value = f"{expr_text(node.targets[0])} = ", node.value
    elif isinstance(node, ast.Return) and node.value is not None:
        prefix, value = "return ", node.value
    elif isinstance(node, ast.Expr):
        prefix, value = "", node.value
    else:
        return None
    if isinstance(value, ast.Tuple) and prefix != "return ":
        return None  # (``x = a, b`` and a bare tuple: left as they are)
    return _call_parts(value, prefix)


# --- reading back ---------------------------------------------------------------------------------------------------


class Anything(ast.expr):
    """In a tree to compare: matches any node (a part that was written as text, not printed from a tree)."""

    _fields = ()


_IGNORED = frozenset({"ctx", "type_comment", "kind"})  # what text does not carry, or carries as the parser likes
_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = tuple(f for f in cls._fields if f not in _IGNORED)
    return found


def same_tree(meant: Any, read: Any) -> bool:
    """Is ``read`` (a parsed tree) the tree ``meant`` (a printed one), up to what text cannot carry?"""
    cls = meant.__class__
    if cls is ast.Name:  # (the commonest node: its own fast path)
        return read.__class__ is ast.Name and meant.id == read.id
    if cls is ast.Constant:
        return _same_constant(meant.value, read)
    if cls is not read.__class__:
        return cls is Anything
    for name in _fields(cls):
        a = getattr(meant, name, None)
        b = getattr(read, name, None)
        if isinstance(a, ast.AST):
            if not (isinstance(b, ast.AST) and same_tree(a, b)):
                return False
        elif a.__class__ is list or b.__class__ is list:
            if not _same_lists(a or [], b or []):
                return False
        elif a != b:
            return False
    return True


def _same_lists(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, ast.AST):
            if not (isinstance(y, ast.AST) and same_tree(x, y)):
                return False
        elif x != y:
            return False
    return True


_NUMBERS = (int, float, complex)


def _same_constant(value: Any, read: Any) -> bool:
    """Does the parsed ``read`` denote the constant ``value`` (of the same type, with the same sign of zero)?"""
    if read.__class__ is ast.Constant:
        return _same_value(value, read.value)
    if value.__class__ not in _NUMBERS:
        return False
    if read.__class__ is ast.UnaryOp and read.op.__class__ is ast.USub:
        return _same_constant(-value, read.operand)  # how a negative number reads back: -(2.0)
    if read.__class__ is ast.BinOp:  # a NaN ("1e1000 - 1e1000") or a complex with a real part ("(1+2j)")
        try:
            return _same_value(value, _number_of(read))
        except (TypeError, ValueError, ArithmeticError):
            return False
    return False


def _same_value(a: Any, b: Any) -> bool:
    if a.__class__ is not b.__class__:
        return False  # 2 is not 2.0, True is not 1
    if a.__class__ is float:
        if a != a:
            return b != b
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if a.__class__ is complex:  # (the sign of a zero part is not always spellable as a literal; the value is)
        return a == b or (cmath.isnan(a) and cmath.isnan(b))
    return a == b


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub}


def _number_of(node: ast.expr) -> Any:
    """The value of a number spelled as a sum or difference of literals (as astor spells NaN and complex numbers)."""
    if node.__class__ is ast.Constant and node.value.__class__ in _NUMBERS:
        return node.value
    if node.__class__ is ast.UnaryOp and node.op.__class__ is ast.USub:
        return -_number_of(node.operand)
    if node.__class__ is ast.BinOp and node.op.__class__ in _ARITHMETIC:
        return _ARITHMETIC[node.op.__class__](_number_of(node.left), _number_of(node.right))
    raise ValueError("not a number")


def check_function(source: str, meant: list[ast.stmt], what: str) -> ast.Module:
    """Check that ``source`` (one ``def`` whose body is a docstring and then the printed statements) reads back as
    the statements ``meant``; raise :class:`Misprinted` naming the first statement that does not (``what``: the
    generated function, for the message). Returns the tree read, with line ``k`` of ``source`` at line ``k + 1``
    (where :func:`srcgrad.emitter.compile_in_scope` compiles it, below the header of a scope function)."""
    try:
        tree = ast.parse("\n" + source)
    except SyntaxError as exc:
        raise Misprinted(f"the generated code of {what} is not valid Python: {exc}") from exc
    body = tree.body[0].body[1:] if len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef) else None
    if body is None or len(body) != len(meant):
        raise Misprinted(f"the generated code of {what} does not have the statements that were printed")
    for printed, read in zip(meant, body):
        if not same_tree(printed, read):
            raise Misprinted(_mismatch(what, "\n" + source, read))
    return tree


def check_text(text: str, meant: ast.AST, what: str) -> None:
    """Check that ``text`` (one statement) reads back as ``meant``; raise :class:`Misprinted` if not."""
    try:
        body = ast.parse(text).body
    except SyntaxError as exc:
        raise Misprinted(f"the generated code of {what} is not valid Python: {exc}") from exc
    if len(body) != 1 or not same_tree(meant, body[0]):
        raise Misprinted(_mismatch(what, text, body[0] if body else None))


def _mismatch(what: str, source: str, read: ast.stmt | None) -> str:
    if read is None:
        return f"the generated code of {what} does not read back as the code srcgrad meant"
    lines = source.split("\n")[read.lineno - 1: read.end_lineno]
    shown = " / ".join(line.strip() for line in lines)
    return f"the generated code of {what} does not read back as the code srcgrad meant, at `{shown}`"
