"""Fuse: the gradient program in, the same program with single-use adjoint temporaries written into their use out.

``t3_bar = t4_bar * t4`` followed, a few statements later, by ``x_bar = x_bar + -t3_bar`` becomes
``x_bar = x_bar - t4_bar * t4``. Why: numpy reuses the memory of a temporary that nothing else refers to for the
next operation of the same expression (its temporary elision, for large arrays), but not the memory of a value held
by a name; and Python saves a store and a load. Fewer fresh arrays also means fewer page faults on big arrays.

What holds:
- only srcgrad's own names are fused, as the program records them (``Program.adjoints``: the adjoints of the
  reverse sweep; ``Program.temporaries``: the lowering's temporaries of the forward sweep) — never a name because of
  its spelling, so the user's own names stay whatever they are called; only into a later statement of the same
  block (never into or out of a loop or branch), and only when the name is assigned once and read once in the whole
  program (so a value the reverse sweep reads is never fused away);
- nothing the fused expression reads is assigned between its definition and its use, it calls nothing with an
  effect (tape ``pop``/``append``), and it moves past no statement with an effect (a user's ``print(...)``, an
  assignment marked ``srcgrad_effect``), so its value and the program's order of effects are unchanged;
- a fused expression stays at most :data:`MAX_HEIGHT` levels deep (a long chain keeps a name every so often), so
  printing and compiling it never recurse deeply;
- copies of adjoints (``a_bar = b_bar``) are read through, up to where either name is assigned again, and dropped
  once nothing reads them (or nothing reads them before the block assigns the name again);
- ``a + -b`` is written ``a - b`` (the same IEEE result), and ``(1.0 * a) * b`` is ``a * b`` where ``b`` cannot be a
  bool array;
- ``a = a + e`` becomes ``a += e`` only where ``a`` holds a float value the block itself just made and nothing else
  refers to (see :func:`_update_in_place`), and only where every argument is a number or a float64 ndarray (a Dask
  ``e`` cannot be added into a numpy ``a`` in place);
- every step is one walk over each block (with indexes built before it): the time grows with the program's length.
"""

from __future__ import annotations

import ast
import bisect
from collections import Counter
from collections.abc import Callable

from srcgrad import codegen
from srcgrad.program import Block, Comment, Program, children, nodes, walk_items

_EFFECTS = {"pop", "append"}
MAX_HEIGHT = 24  # expression levels a fused statement may reach (printing and compiling recurse into them)


def fuse(program: Program) -> Program:
    """Read copies through, fuse single-use temporaries into their use, update fresh adjoints in place (``program``
    is changed and returned)."""
    loads: Counter[str] = Counter()
    stores: Counter[str] = Counter()
    for item in walk_items(program.forward + program.reverse):
        _count(item, loads, stores)
    for expr in [*program.results, program.value]:
        if expr is not None:
            for node in ast.walk(expr):
                if isinstance(node, ast.Name):
                    loads[node.id] += 1
    _propagate_copies(program.reverse, loads, stores, program.adjoints)
    _fuse_block(program.reverse, loads, stores, program.adjoints)
    _fuse_block(program.forward, loads, stores, program.temporaries)
    if program.numpy_arguments:
        _update_in_place(program.reverse, program.float_valued, program.adjoints)
    return program


def _update_in_place(items: list, env: dict, adjoints: frozenset) -> None:
    """``a = a + e`` becomes ``a += e`` (and ``-``) where ``a`` holds a float array the block made itself and nothing
    else refers to: its definition in this block is arithmetic or a float-valued numpy function (a new array, or a
    number, which ``+=`` rebinds), and ``a`` is not read between that definition and the update. No new array then;
    for big arrays that is a page-faulting allocation saved."""
    for item in items:
        if isinstance(item, Block):
            for part in item.parts():
                _update_in_place(part, env, adjoints)
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
        if target in adjoints and _makes_new_float(value, env):
            fresh[target] = j


def _makes_new_float(value: ast.expr, env: dict) -> bool:
    if isinstance(value, ast.Call):
        return codegen.never_bool(value, env)  # a float-valued numpy function: always a new array
    return isinstance(value, (ast.BinOp, ast.UnaryOp)) and codegen.never_bool(value, env)


def _propagate_copies(items: list, loads: Counter, stores: Counter, adjoints: frozenset) -> None:
    """``a = b`` (adjoints): later reads of ``a`` in the block read ``b`` instead, up to where either is assigned
    again (or a loop or branch starts); ``a = a`` goes; so does ``a = b`` once nothing reads ``a`` any more.

    One walk over the block: ``live`` maps each copy still in force to its source (sources of copies are read
    through first, so chains end at the first name that is not a copy)."""
    for item in items:
        if isinstance(item, Block):
            for part in item.parts():
                _propagate_copies(part, loads, stores, adjoints)
    live: dict[str, str] = {}  # copy -> the name it reads through to
    readers: dict[str, set[str]] = {}  # source -> the copies reading through to it
    copies: list[int] = []
    dead: set[int] = set()
    for i, item in enumerate(items):
        if isinstance(item, Comment):
            continue
        if not isinstance(item, ast.Assign):
            live.clear()
            readers.clear()
            continue
        if live and not live.keys().isdisjoint(_names(item.value)):
            item.value = _read_through(item.value, live, loads)
        copy = _copy_of(item, adjoints)
        if copy is not None and copy[0] == copy[1]:  # ``a = a``: changes nothing, so every copy stays in force
            dead.add(i)
            loads[copy[1]] -= 1
            stores[copy[0]] -= 1
            continue
        for name in _assigned(item):
            _forget(name, live, readers)
        if copy is not None:
            a, b = copy
            live[a] = b
            readers.setdefault(b, set()).add(a)
            copies.append(i)
    for i in reversed(copies):  # last first: dropping a copy may leave an earlier one unread
        a, b = _copy_of(items[i], adjoints)
        if (loads[a] == 0 and stores[a] == 1) or _overwritten_unread(items, i, a, dead):
            dead.add(i)
            loads[b] -= 1
            stores[a] -= 1
    if dead:
        items[:] = [item for k, item in enumerate(items) if k not in dead]


def _overwritten_unread(items: list, i: int, name: str, dead: set[int]) -> bool:
    """Is ``name``, assigned by ``items[i]``, assigned again later in the block by a plain assignment, with nothing
    reading it in between (and no loop, branch or other statement in between, which might)?"""
    for k in range(i + 1, len(items)):
        item = items[k]
        if isinstance(item, Comment) or k in dead:
            continue
        if not isinstance(item, ast.Assign) or name in _names(item.value):
            return False
        if name in _assigned(item):  # (a plain name rebound; a subscript's target reads the object)
            return len(item.targets) == 1 and isinstance(item.targets[0], ast.Name)
    return False


def _read_through(expr: ast.expr, live: dict[str, str], loads: Counter) -> ast.expr:
    """``expr`` with every read of a copy in ``live`` reading its source instead (``loads`` follow)."""
    def source_of(node: ast.Name) -> ast.expr:
        source = live.get(node.id)
        if source is None:
            return node
        loads[node.id] -= 1
        loads[source] += 1
        return ast.Name(id=source, ctx=ast.Load())

    return _MapNames(source_of).visit(expr)


def _forget(name: str, live: dict[str, str], readers: dict[str, set[str]]) -> None:
    """``name`` is assigned: copies of it, and ``name`` as a copy, are no longer in force."""
    source = live.pop(name, None)
    if source is not None:
        readers[source].discard(name)
    for copy in readers.pop(name, ()):
        del live[copy]


def _copy_of(item, adjoints: frozenset) -> tuple[str, str] | None:
    if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name) \
            and isinstance(item.value, ast.Name) and item.targets[0].id in adjoints:
        return item.targets[0].id, item.value.id
    return None


def _count(item, loads: Counter, stores: Counter) -> None:
    if isinstance(item, Comment):
        return
    if isinstance(item, Block):
        for name in item.bound_names():
            stores[name] += 1
        for expr in item.expressions():
            for node in nodes(expr):
                if isinstance(node, ast.Name):
                    loads[node.id] += 1
        return
    for node in nodes(item):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                loads[node.id] += 1
            else:
                stores[node.id] += 1
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            loads[node.target.id] += 1


def _fuse_block(items: list, loads: Counter, stores: Counter, fusable: frozenset) -> None:
    """Each single-use ``fusable`` name of the block whose value can move goes into the statement reading it.

    One walk over the block, with an index built before it (which statement reads each name, where each name is
    assigned, where the statements are that nothing moves past), so the cost grows with the block, not its square."""
    for item in items:
        if isinstance(item, Block):
            for part in item.parts():
                _fuse_block(part, loads, stores, fusable)
    index = _BlockIndex(items)
    dead: set[int] = set()
    for i, item in enumerate(items):
        name = _fusable_definition(item, loads, stores, fusable)
        use = index.reader.get(name) if name else None
        if use is None or not index.can_move(i, use):
            continue
        height = _depth_of(name, items[use].value) - 1 + index.heights[i]
        if height > MAX_HEIGHT:
            continue  # printed and compiled expressions stay shallow: a long chain keeps a name now and then
        items[use].value = _Simplify().visit(_Replace(name, item.value).visit(items[use].value))
        dead.add(i)
        loads[name] -= 1
        index.moved(name, i, use, height)
    if dead:
        items[:] = [item for k, item in enumerate(items) if k not in dead]


class _BlockIndex:
    """What :func:`_fuse_block` asks of a block's statements, built in one walk and kept up to date as values move."""

    def __init__(self, items: list):
        self.reads: dict[int, set[str]] = {}  # statement -> the names its value reads
        self.heights: dict[int, int] = {}  # statement -> an upper bound of its value's height
        self.reader: dict[str, int] = {}  # name -> the first statement of the block whose value reads it
        self.assigned_at: dict[str, list[int]] = {}  # name -> the statements assigning it, in order
        self.barriers: list[int] = []  # statements nothing moves past: blocks and anything not an assignment
        for p, item in enumerate(items):
            if isinstance(item, Comment):
                continue
            if not isinstance(item, ast.Assign) or getattr(item, "srcgrad_effect", False):
                self.barriers.append(p)
                if not isinstance(item, ast.Assign):
                    continue
            self.reads[p], self.heights[p] = _names_and_height(item.value)
            for name in self.reads[p]:
                self.reader.setdefault(name, p)
            for name in _assigned(item):
                self.assigned_at.setdefault(name, []).append(p)

    def can_move(self, i: int, use: int) -> bool:
        """Can statement ``i``'s value move into the later statement ``use``: nothing in between is a barrier or
        assigns what the value reads (it would change on the way)?"""
        if use <= i or _any_between(self.barriers, i, use):
            return False
        return not any(_any_between(self.assigned_at.get(read, ()), i, use) for read in self.reads[i])

    def moved(self, name: str, i: int, use: int, height: int) -> None:
        """Statement ``i``'s value (of ``name``) moved into ``use``: what the definition read, its use reads now."""
        self.reads[use] = (self.reads[use] - {name}) | self.reads[i]
        self.heights[use] = max(self.heights[use], height)
        for read in self.reads[i]:
            if self.reader.get(read) == i:
                self.reader[read] = use


def _any_between(positions, start: int, stop: int) -> bool:
    """Whether the sorted ``positions`` hold one strictly between ``start`` and ``stop``."""
    k = bisect.bisect_right(positions, start)
    return k < len(positions) and positions[k] < stop


def _names_and_height(expr: ast.expr) -> tuple[set[str], int]:
    """The names ``expr`` reads, and its number of levels down to its deepest leaf (iterative: no recursion)."""
    names: set[str] = set()
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.Name):
            names.add(node.id)
        deepest = max(deepest, depth)
        stack.extend([(child, depth + 1) for child in children(node)])
    return names, deepest


def _height(expr: ast.expr) -> int:
    return _names_and_height(expr)[1]


def _depth_of(name: str, expr: ast.expr) -> int:
    """The level (``expr`` itself is 1) of the deepest read of ``name`` in ``expr``."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.Name) and node.id == name:
            deepest = max(deepest, depth)
        stack.extend([(child, depth + 1) for child in children(node)])
    return deepest


def _fusable_definition(item, loads: Counter, stores: Counter, fusable: frozenset) -> str | None:
    if not (isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name)):
        return None
    name = item.targets[0].id
    if name not in fusable or stores[name] != 1 or loads[name] != 1:
        return None
    for node in nodes(item.value):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _EFFECTS:
            return None
    return name


def _names(expr: ast.expr) -> set[str]:
    """The names an expression reads."""
    return {n.id for n in nodes(expr) if isinstance(n, ast.Name)}


def _assigned(item: ast.Assign) -> set[str]:
    """The names an assignment binds."""
    targets = item.targets
    if len(targets) == 1 and isinstance(targets[0], ast.Name):
        return {targets[0].id}
    return {n.id for t in targets for n in nodes(t) if isinstance(n, ast.Name)}


class _MapNames(codegen.Transformer):
    def __init__(self, replace: Callable[[ast.Name], ast.expr]):
        self.replace = replace

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.replace(node)


class _Replace(codegen.Transformer):
    def __init__(self, name: str, value: ast.expr):
        self.name, self.value = name, value

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.value if node.id == self.name else node


class _Simplify(codegen.Transformer):
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
