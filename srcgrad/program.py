"""The generated program: what the builders (srcgrad/adjoint.py, srcgrad/forward.py) make, and the fuse pass and the
emitter read.

A program holds items: stdlib ``ast`` statements, :class:`Comment` lines and :class:`Block` compound statements whose
parts hold items again. What holds: every reader walks items with :func:`walk_items` (a block's header expressions
through :meth:`Block.expressions`, its item lists through :meth:`Block.parts`), so a new kind of block touches only
this module and the emitter.
"""

from __future__ import annotations

import ast
from dataclasses import field
from typing import Any

from srcgrad.records import record


@record
class Comment:
    """A comment of the generated code: the heading of the lines that follow, up to the next heading or the end of
    its block (``line``: the user's line they compute), or an ``aside`` within a group."""

    text: str
    line: int | None = None
    aside: bool = False


@record
class Block:
    """A compound statement of the gradient program: ``if test``, ``for target in iter``, ``while test``,
    ``with test [as target]``, ``try: body / except TYPES [as NAME]: ... / else: orelse / finally: final``
    (``handlers``: ``(types expression or None, name or None, items)``)."""

    kind: str
    test: ast.expr | None = None
    target: str | None = None
    iter: ast.expr | None = None
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)
    handlers: list = field(default_factory=list)
    final: list = field(default_factory=list)

    def parts(self) -> list[list]:
        """Every list of items the block holds, in program order."""
        return [self.body] + [h[2] for h in self.handlers] + [self.orelse, self.final]

    def expressions(self) -> list[ast.expr]:
        """The expressions of its header (the test, the iterable, the exception types)."""
        return [e for e in [self.test, self.iter] + [h[0] for h in self.handlers] if e is not None]

    def bound_names(self) -> list[str]:
        """The names its header binds (the loop or ``as`` target, the handlers' names)."""
        return [n for n in [self.target] + [h[1] for h in self.handlers] if n]


@record
class Program:
    """The gradient program: forward items, then reverse items, then the results (one per wrt parameter)."""

    forward: list = field(default_factory=list)
    reverse: list = field(default_factory=list)
    results: list[ast.expr] = field(default_factory=list)
    value: ast.expr | None = None  # the function's value (saved before the reverse sweep restores loop values)
    float_valued: dict = field(default_factory=dict)  # a simplify env: float-valued names, and np (codegen)
    # srcgrad's own names, recorded where they are made (never recognised by their spelling): the lowering's
    # temporaries in the forward sweep and the adjoints in the reverse sweep, which the fuse pass may fold away
    temporaries: frozenset = frozenset()
    adjoints: frozenset = frozenset()
    derivatives: dict = field(default_factory=dict)  # IR name -> the name of its adjoint (or, forward, its tangent)
    return_line: int | None = None  # the user's line of the return whose value (and derivatives) it returns
    # every argument is a Python number or a float64 ndarray (a layout): a numpy adjoint may be updated in place
    # (``a += e``); another argument may be an array of another library, which numpy's in-place update cannot take
    # (Dask refuses ``out=``): see fuse._update_in_place
    numpy_arguments: bool = False


def walk_items(items: list):
    """Every item, the parts of blocks included, in program order (a block before its parts)."""
    for item in items:
        yield item
        if isinstance(item, Block):
            for part in item.parts():
                yield from walk_items(part)


def trees(items: list) -> list[ast.AST]:
    """Every ``ast`` tree the items hold: statements, and the header expressions of blocks."""
    out: list[ast.AST] = []
    for item in walk_items(items):
        if isinstance(item, Block):
            out.extend(item.expressions())
        elif isinstance(item, ast.AST):
            out.append(item)
    return out


def nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but the markers (``Load``, ``Add``...), parents before children (``ast.walk`` without its
    generators: the passes over generated code walk every statement a few times, so the walk is their hot loop;
    :func:`children` is written out in it, and fields are read from the nodes' ``__dict__``)."""
    out = [tree]
    append = out.append
    known = _NODE_FIELDS
    k = 0
    while k < len(out):
        node = out[k]
        k += 1
        cls = node.__class__
        fields = known.get(cls)
        if fields is None:
            fields = node_fields(cls)
        held = node.__dict__
        for name in fields:
            value = held.get(name)
            if value is None:
                continue
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, _AST):
                        append(item)
            elif isinstance(value, _AST) and not isinstance(value, _MARKERS):
                append(value)
    return out


_AST = ast.AST


_MARKERS = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)  # leaves holding nothing
# Fields that hold names, flags and constants, never a node: the walk does not look at them.
_PLAIN_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "name", "kind", "type_comment", "level", "module",
                           "is_async", "simple", "conversion"})
_NODE_FIELDS: dict[type, tuple[str, ...]] = {}


def node_fields(cls: type) -> tuple[str, ...]:
    """The fields of nodes of class ``cls`` that may hold nodes other than markers."""
    fields = _NODE_FIELDS.get(cls)
    if fields is None:
        fields = _NODE_FIELDS[cls] = () if cls is ast.Constant else \
            tuple(f for f in cls._fields if f not in _PLAIN_FIELDS)
    return fields


def children(node: ast.AST) -> list[ast.AST]:
    out = []
    held = node.__dict__
    for name in _NODE_FIELDS.get(node.__class__) or node_fields(node.__class__):
        value = held.get(name)
        if value is None:
            continue
        if value.__class__ is list:
            out.extend([v for v in value if isinstance(v, _AST)])
        elif isinstance(value, _AST) and not isinstance(value, _MARKERS):
            out.append(value)
    return out


def loads(items: list) -> set[str]:
    """The names the items read."""
    return {n.id for tree in trees(items) for n in nodes(tree) if n.__class__ is ast.Name
            and n.ctx.__class__ is ast.Load}


def stores(items: list) -> set[str]:
    """The names the items assign (block headers' targets included)."""
    names: set[str] = set()
    for item in walk_items(items):
        if isinstance(item, Block):
            names.update(item.bound_names())
        elif isinstance(item, ast.AST):
            names.update(n.id for n in nodes(item) if n.__class__ is ast.Name and n.ctx.__class__ is ast.Store)
    return names


def link(program: Program, scope: Any) -> None:
    """Bind srcgrad's own names in every expression of the program (codegen.own_name) through ``scope``."""
    scope.link([*program.results, program.value, *trees(program.forward), *trees(program.reverse)])
