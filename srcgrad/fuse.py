"""Fuse: the gradient program in, the same program with single-use adjoint temporaries written into their use out.

``t3_bar = t4_bar * t4`` followed, a few statements later, by ``x_bar = x_bar + -t3_bar`` becomes
``x_bar = x_bar - t4_bar * t4``. Why: numpy reuses the memory of a temporary that nothing else refers to for the
next operation of the same expression (its temporary elision, for large arrays), but not the memory of a value held
by a name; and Python saves a store and a load. Fewer fresh arrays also means fewer page faults on big arrays.

What holds:
- only adjoint temporaries (``*_bar`` names) of the reverse sweep and the lowering's temporaries (``t7``) of the
  forward sweep are fused (the user's own names stay), only into a later statement of the same block (never into or
  out of a loop or branch), and only when the name is assigned once and read once in the whole program (so a value
  the reverse sweep reads is never fused away);
- nothing the fused expression reads is assigned between its definition and its use, and it calls nothing with an
  effect (tape ``pop``/``append``), so its value and the program's order of effects are unchanged;
- copies of adjoints (``a_bar = b_bar``) are read through, up to where either name is assigned again, and dropped
  once nothing reads them;
- ``a + -b`` is written ``a - b`` (the same IEEE result), and ``(1.0 * a) * b`` is ``a * b`` where ``b`` cannot be a
  bool array;
- ``a = a + e`` becomes ``a += e`` only where ``a`` holds a float value the block itself just made and nothing else
  refers to (see :func:`_update_in_place`).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable

from srcgrad import codegen
from srcgrad.adjoint import Block, Comment, Program

_EFFECTS = {"pop", "append"}
_TEMPORARY = re.compile(r"t\d+")


def fuse(program: Program) -> Program:
    """Read copies through, fuse single-use temporaries into their use, update fresh adjoints in place (``program``
    is changed and returned)."""
    loads: Counter[str] = Counter()
    stores: Counter[str] = Counter()
    for item in _walk(program.forward + program.reverse):
        _count(item, loads, stores)
    for expr in [*program.results, program.value]:
        if expr is not None:
            for node in ast.walk(expr):
                if isinstance(node, ast.Name):
                    loads[node.id] += 1
    _propagate_copies(program.reverse, loads, stores)
    _fuse_block(program.reverse, loads, stores, _is_adjoint)
    _fuse_block(program.forward, loads, stores, _is_temporary)
    _update_in_place(program.reverse, program.float_valued)
    return program


def _update_in_place(items: list, env: dict) -> None:
    """``a = a + e`` becomes ``a += e`` (and ``-``) where ``a`` holds a float array the block made itself and nothing
    else refers to: its definition in this block is arithmetic or a float-valued numpy function (a new array, or a
    number, which ``+=`` rebinds), and ``a`` is not read between that definition and the update. No new array then;
    for big arrays that is a page-faulting allocation saved."""
    for item in items:
        if isinstance(item, Block):
            _update_in_place(item.body, env)
            _update_in_place(item.orelse, env)
    fresh: dict[str, int] = {}  # adjoint name -> index of a definition that made a new float value
    for j, item in enumerate(items):
        if isinstance(item, Comment):
            continue
        if isinstance(item, Block) or not isinstance(item, ast.Assign):
            fresh.clear()  # (what a block or an effect does with the names is not followed)
            continue
        reads = _names(item.value)
        target = item.targets[0].id if len(item.targets) == 1 and isinstance(item.targets[0], ast.Name) else None
        value = item.value
        if target in fresh and isinstance(value, ast.BinOp) and isinstance(value.op, (ast.Add, ast.Sub)) \
                and isinstance(value.left, ast.Name) and value.left.id == target and target not in _names(value.right):
            items[j] = ast.AugAssign(target=ast.Name(id=target, ctx=ast.Store()), op=value.op, value=value.right)
            for name in reads - {target}:
                fresh.pop(name, None)
            continue
        for name in reads | _assigned(item):
            fresh.pop(name, None)  # read: it may now be shared (b = a), so it is not updated in place
        if target is not None and target.endswith("_bar") and _makes_new_float(value, env):
            fresh[target] = j


def _makes_new_float(value: ast.expr, env: dict) -> bool:
    if isinstance(value, ast.Call):
        return codegen.never_bool(value, env)  # a float-valued numpy function: always a new array
    return isinstance(value, (ast.BinOp, ast.UnaryOp)) and codegen.never_bool(value, env)


def _propagate_copies(items: list, loads: Counter, stores: Counter) -> None:
    """``a = b`` (adjoints): later reads of ``a`` in the block read ``b`` instead, up to where either is assigned
    again (or a loop or branch starts); ``a = a`` goes; so does ``a = b`` once nothing reads ``a`` any more."""
    for item in items:
        if isinstance(item, Block):
            _propagate_copies(item.body, loads, stores)
            _propagate_copies(item.orelse, loads, stores)
    changed = True
    while changed:
        changed = False
        i = 0
        while i < len(items):
            item = items[i]
            copy = _copy_of(item)
            if copy is None:
                i += 1
                continue
            a, b = copy
            if a == b:
                del items[i]
                loads[b] -= 1
                stores[a] -= 1
                changed = True
                continue
            for j in range(i + 1, len(items)):
                later = items[j]
                if isinstance(later, Comment):
                    continue
                if not isinstance(later, ast.Assign):
                    break
                count = sum(1 for n in ast.walk(later.value) if isinstance(n, ast.Name) and n.id == a)
                if count:
                    later.value = _Replace(a, ast.Name(id=b, ctx=ast.Load())).visit(later.value)
                    loads[a] -= count
                    loads[b] += count
                    changed = True
                if {a, b} & _assigned(later):
                    break
            if loads[a] == 0 and stores[a] == 1:
                del items[i]
                loads[b] -= 1
                stores[a] -= 1
                changed = True
                continue
            i += 1


def _copy_of(item) -> tuple[str, str] | None:
    if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name) \
            and isinstance(item.value, ast.Name) and _is_adjoint(item.targets[0].id):
        return item.targets[0].id, item.value.id
    return None


def _is_adjoint(name: str) -> bool:
    return name.endswith("_bar")


def _is_temporary(name: str) -> bool:
    """A temporary of the lowering (``t7``): the user's own names stay, so the forward sweep reads like the code."""
    return _TEMPORARY.fullmatch(name) is not None


def _walk(items: list):
    for item in items:
        yield item
        if isinstance(item, Block):
            yield from _walk(item.body)
            yield from _walk(item.orelse)


def _count(item, loads: Counter, stores: Counter) -> None:
    if isinstance(item, Comment):
        return
    if isinstance(item, Block):
        if item.target:
            stores[item.target] += 1
        for expr in (item.test, item.iter):
            if expr is not None:
                for node in ast.walk(expr):
                    if isinstance(node, ast.Name):
                        loads[node.id] += 1
        return
    for node in ast.walk(item):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loads[node.id] += 1
            else:
                stores[node.id] += 1
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            loads[node.target.id] += 1


def _fuse_block(items: list, loads: Counter, stores: Counter, fusable: Callable[[str], bool]) -> None:
    for item in items:
        if isinstance(item, Block):
            _fuse_block(item.body, loads, stores, fusable)
            _fuse_block(item.orelse, loads, stores, fusable)
    i = 0
    while i < len(items):
        name = _fusable_definition(items[i], loads, stores, fusable)
        use = _single_use(items, i, name) if name else None
        if use is None:
            i += 1
            continue
        value = items[i].value
        target = items[use]
        target.value = _Replace(name, value).visit(target.value)
        target.value = _Simplify().visit(target.value)
        del items[i]  # the statements between shift down by one; look at the same position again
        loads[name] -= 1


def _fusable_definition(item, loads: Counter, stores: Counter, fusable: Callable[[str], bool]) -> str | None:
    if not (isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name)):
        return None
    name = item.targets[0].id
    if not fusable(name) or stores[name] != 1 or loads[name] != 1:
        return None
    for node in ast.walk(item.value):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _EFFECTS:
            return None
    return name


def _single_use(items: list, i: int, name: str) -> int | None:
    """The index of the later statement of ``items`` that reads ``name``, when nothing in between (nor that
    statement's own targets before its value is read) assigns a name the definition reads."""
    reads = _names(items[i].value)
    for j in range(i + 1, len(items)):
        item = items[j]
        if isinstance(item, Comment):
            continue
        if isinstance(item, Block) or not isinstance(item, ast.Assign):
            return None
        if name in _names(item.value):
            return j
        if _assigned(item) & reads:
            return None
    return None


def _names(expr: ast.expr) -> set[str]:
    """The names an expression reads."""
    return {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}


def _assigned(item: ast.Assign) -> set[str]:
    """The names an assignment binds."""
    return {n.id for t in item.targets for n in ast.walk(t) if isinstance(n, ast.Name)}


class _Replace(ast.NodeTransformer):
    def __init__(self, name: str, value: ast.expr):
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.value if node.id == self.name else node


class _Simplify(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Add) and isinstance(node.right, ast.UnaryOp) and isinstance(node.right.op, ast.USub):
            return ast.BinOp(left=node.left, op=ast.Sub(), right=node.right.operand)
        # (1.0 * a) * b is a * b when b cannot be a bool array (then neither can a * b be one).
        left = node.left
        if isinstance(node.op, ast.Mult) and isinstance(left, ast.BinOp) and isinstance(left.op, ast.Mult) \
                and isinstance(left.left, ast.Constant) and type(left.left.value) is float and left.left.value == 1.0 \
                and codegen.never_bool(node.right, {}):
            return ast.BinOp(left=left.right, op=ast.Mult(), right=node.right)
        return node
