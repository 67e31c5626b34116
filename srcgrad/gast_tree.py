"""From Python's ``ast`` to gast: a parsed tree in, the same tree as gast nodes out — what ``gast.ast_to_gast`` gives,
several times faster.

Why: gast's own converter builds every node through its constructor from a dict of keyword arguments; for a long
function that is a good part of reading it. This one copies a node's fields straight into a new gast node of the same
name. What holds: the result is the tree ``gast.ast_to_gast`` builds (the test suite compares the two, positions
included, over whole source trees). The node classes whose gast form differs from the ``ast`` one are handled here
the way gast does it (``Name``, a parameter ``arg`` as a ``Name`` in the ``Param`` context, an ``except ... as``
name, the ``type_params`` of a function before Python 3.12); any other class whose fields differ between the two,
or that gast's converter treats specially, is handed to gast's converter whole.
"""

from __future__ import annotations

import ast
from typing import Any

import gast
from gast.ast3 import Ast3ToGAst

_POSITIONS = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def to_gast(node: Any) -> Any:
    """``node`` (an ``ast`` tree, a list of them, or a plain value) as gast."""
    if isinstance(node, ast.AST):
        convert = _CONVERTERS.get(node.__class__)
        if convert is None:
            convert = _converter(node.__class__)
        return convert(node)
    if node.__class__ is list:
        return [to_gast(item) for item in node]
    return node


def copy_node(node: ast.AST, cls: type, convert: Any) -> Any:
    """A ``cls`` node holding ``node``'s fields and positions (its ``__dict__``: a parsed or generated node holds
    nothing else), each node among them (alone or in a list) replaced by ``convert(it)``. The constructor is not
    called: it is slow, and Python 3.13 warns when a field is left out."""
    new = cls.__new__(cls)
    fields = new.__dict__
    for key, value in node.__dict__.items():
        if value.__class__ is list:
            fields[key] = [convert(item) for item in value]
        elif isinstance(value, ast.AST):
            fields[key] = convert(value)
        else:
            fields[key] = value
    return new


def _copy(node: ast.AST, cls: type) -> Any:
    return copy_node(node, cls, to_gast)


_ABSENT = object()


def _name(node: ast.Name) -> Any:
    new = _copy(node, gast.Name)
    new.annotation = new.type_comment = None
    return new


def _arg(node: ast.arg) -> Any:
    new = gast.Name.__new__(gast.Name)
    new.__dict__.update(id=node.arg, ctx=gast.Param(), annotation=to_gast(node.annotation),
                        type_comment=node.type_comment)
    for key in _POSITIONS:
        value = getattr(node, key, _ABSENT)
        if value is not _ABSENT:
            new.__dict__[key] = value
    return new


def _except_handler(node: ast.ExceptHandler) -> Any:
    new = _copy(node, gast.ExceptHandler)
    if node.name:
        new.name = gast.Name(node.name, gast.Store(), None, None)
    return new


def _function(cls: type) -> Any:
    def convert(node: ast.AST) -> Any:
        new = _copy(node, cls)
        new.__dict__.setdefault("type_params", [])  # (before Python 3.12, gast adds an empty list)
        return new
    return convert


def _delegate(node: ast.AST) -> Any:
    return Ast3ToGAst().visit(node)


def _converter(cls: type) -> Any:
    """How nodes of ``cls`` convert: copied field by field when gast's class of that name has the same fields and
    gast's converter does nothing special with it; by gast's converter otherwise."""
    target = getattr(gast, cls.__name__, None)
    if target is None or cls.__name__ in _SPECIAL or set(target._fields) != set(cls._fields):
        convert = _delegate
    else:
        def convert(node: ast.AST) -> Any:
            return _copy(node, target)
    _CONVERTERS[cls] = convert
    return convert


# The classes gast's converter treats specially (its visit_ methods; not ast.NodeVisitor's own).
_SPECIAL = frozenset(name[len("visit_"):] for klass in Ast3ToGAst.__mro__ if klass.__module__.startswith("gast")
                     for name in vars(klass) if name.startswith("visit_"))
_CONVERTERS: dict[type, Any] = {
    ast.Name: _name,
    ast.arg: _arg,
    ast.ExceptHandler: _except_handler,
}
for _cls in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):  # (gast's own class has the same fields then)
    if set(getattr(gast, _cls.__name__)._fields) == {*_cls._fields, "type_params"}:
        _CONVERTERS[_cls] = _function(getattr(gast, _cls.__name__))
