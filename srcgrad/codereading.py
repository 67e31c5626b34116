"""What a function's code object says about it, read without parsing its text or running :mod:`inspect`'s machinery.

In: a plain Python function (or its code object and the lines of its file). Out: its signature
(:func:`signature_of`), and the expression its body returns when the body is one ``return`` statement
(:func:`returned_expression`, parsed alone).

Why: a derivative rule is read at its first use, in the first gradient of a process (issue 12's cold generation):
``inspect.signature`` and parsing the rule's whole definition cost some 40 µs each per rule, several times what
reading the code object does.

What holds: :func:`signature_of` equals ``inspect.signature`` for every function it answers (others — wrapped
functions, ``__signature__``, builtins — get ``inspect.signature`` itself); :func:`returned_expression` answers only
when every instruction of the body after the function's prologue lies inside the one ``return`` statement, and then
gives the tree parsing the definition would hold as that statement's value; None otherwise (Python 3.10 has no
instruction positions: always None there). tests/unit/test_codereading.py compares both with the slow ways over
every rule srcgrad registers.
"""

from __future__ import annotations

import ast
import inspect
import opcode
import types
from collections.abc import Callable

_EMPTY = inspect.Parameter.empty
_VARARGS = inspect.CO_VARARGS
_VARKEYWORDS = inspect.CO_VARKEYWORDS


def signature_of(fn: Callable) -> inspect.Signature:
    """``inspect.signature(fn)``, read from the code object of a plain function."""
    if type(fn) is not types.FunctionType or "__wrapped__" in fn.__dict__ or "__signature__" in fn.__dict__:
        return inspect.signature(fn)
    code = fn.__code__
    names = code.co_varnames
    positional, keyword_only = code.co_argcount, code.co_kwonlyargcount
    defaults = fn.__defaults__ or ()
    keyword_defaults = fn.__kwdefaults__ or {}
    annotations = fn.__annotations__
    first_default = positional - len(defaults)
    params = []
    for index in range(positional):
        kind = inspect.Parameter.POSITIONAL_ONLY if index < code.co_posonlyargcount else \
            inspect.Parameter.POSITIONAL_OR_KEYWORD
        default = defaults[index - first_default] if index >= first_default else _EMPTY
        params.append(inspect.Parameter(names[index], kind, default=default,
                                        annotation=annotations.get(names[index], _EMPTY)))
    rest = positional + keyword_only  # (co_varnames: positional, keyword-only, then *args, then **kwargs)
    if code.co_flags & _VARARGS:
        params.append(inspect.Parameter(names[rest], inspect.Parameter.VAR_POSITIONAL,
                                        annotation=annotations.get(names[rest], _EMPTY)))
        rest += 1
    for name in names[positional:positional + keyword_only]:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                        default=keyword_defaults.get(name, _EMPTY),
                                        annotation=annotations.get(name, _EMPTY)))
    if code.co_flags & _VARKEYWORDS:
        params.append(inspect.Parameter(names[rest], inspect.Parameter.VAR_KEYWORD,
                                        annotation=annotations.get(names[rest], _EMPTY)))
    return inspect.Signature(params, return_annotation=annotations.get("return", _EMPTY))


_RETURN_VALUE = opcode.opmap["RETURN_VALUE"]
_RESUME = opcode.opmap.get("RESUME")  # (the last instruction of a function's prologue, from Python 3.11)


def returned_expression(code: types.CodeType, lines: list[str]) -> ast.expr | None:
    """The value of the one ``return`` statement that is all of the function's body (a docstring aside), parsed from
    ``lines`` (its file's, as they were when the code was made) where the code's positions place it; else None."""
    span = _return_span(code)
    if span is None:
        return None
    line, end_line, col, end_col = span
    try:
        chosen = [text.encode() for text in lines[line - 1:end_line]]
        if len(chosen) != end_line - line + 1:
            return None
        chosen[-1] = chosen[-1][:end_col]  # (positions count bytes of UTF-8, not characters)
        chosen[0] = chosen[0][col:]
        text = b"".join(chosen).decode()
    except (UnicodeError, IndexError):
        return None
    if not text.startswith("return") or text[6:7].isidentifier() or text[6:7].isdigit():
        return None
    try:  # (in brackets: a value written over several lines reads as one expression)
        tree = ast.parse("(" + text[6:] + "\n)", mode="eval")
    except SyntaxError:
        return None
    return tree.body


def _return_span(code: types.CodeType) -> tuple[int, int, int, int] | None:
    if _RESUME is None:  # (Python 3.10: instructions have no columns)
        return None
    operations = code.co_code[::2]
    positions = list(code.co_positions())
    start = operations.find(bytes([_RESUME])) + 1
    # (one statement may return from several instructions: Python 3.13 returns from each branch of ``a if c else b``)
    returns = {positions[i] for i in range(start, len(operations)) if operations[i] == _RETURN_VALUE}
    if len(returns) != 1:
        return None
    (span,) = returns
    if None in span:
        return None
    line, end_line, col, end_col = span  # type: ignore[misc]
    for i in range(start, len(operations)):
        first, last, first_col, last_col = positions[i]
        if first is None or first_col is None:
            continue  # (an instruction of no line: artificial)
        if (first, first_col) < (line, col) or (last, last_col) > (end_line, end_col):
            return None  # (another statement: the body is not one return)
    return line, end_line, col, end_col
