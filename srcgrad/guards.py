"""Guards: what generated code assumed about the objects the user's code names, checked again at every call.

In: a function and its parsed source (:class:`~srcgrad.frontend.ParsedFunction`). Out: :class:`Guards` — one
:class:`Guard` per name or attribute chain the source reads from outside the function (``act``, ``np.tanh``,
``cfg.W``, a closure variable), transitively through the user functions it calls (helpers are differentiated from
their own source: their names, and their ``__defaults__``, decided code too) — and one compiled check.

What holds:
- the code generated for a function depends on the objects those names denote: a call finds its rule by the object
  called, a user function becomes generated helper code, a number's kind (Python float or array) picks scalar or
  array code. So a guard holds the object itself (identity: ``act is <np.tanh>``) or, for a data value, its type
  (``type(cfg.W) is float``); when any guard fails, the variant is stale and is generated again;
- a guard reads the name where the user's code reads it: the module's globals (then builtins), or the closure cell;
- the check is Python text (:meth:`Guards.expression`) over a tuple of srcgrad's objects (:class:`Consts`, ``k[i]``),
  so it runs inside the entry's own type check at a few nanoseconds per guard, and never reads a name of the user's
  other than the ones it guards (``type`` is ``k[0]``); :meth:`Guards.hold` runs the same text as a function;
- a method with a rule of its own (``scipy.stats.norm.logpdf``, a new object at every read) is guarded by the
  instance it is bound to (``scipy.stats.norm is <norm_gen>``): rebinding the chain to another distribution
  regenerates;
- the names are read from the source, before generation: a rebinding while code is being generated makes the next
  call fail its guard, never the reverse.
"""

from __future__ import annotations

import builtins
import types
from typing import Any

import gast
import numpy as np

from srcgrad import frontend, usercode
from srcgrad.records import record

MISSING = object()


@record(frozen=True)
class Guard:
    """One assumption: what ``name.attr...`` (read in ``owner``'s scope) denotes."""

    owner: Any  # the function whose globals or closure the name is read in
    name: str  # the root name; "" for the owner's defaults (``attrs`` is then ("__defaults__",) or kwdefaults)
    attrs: tuple[str, ...]
    expected: Any  # the object itself, or its type when ``by_type``
    by_type: bool
    cell: Any = None  # the closure cell the name is read from, when it is a closure variable
    in_builtins: bool = False  # resolved in builtins (the module does not define it)


class Consts:
    """The objects a check refers to, as ``k[i]`` in its text; ``k[0]`` is ``type``, ``k[1]`` ``Exception``."""

    def __init__(self, k: str):
        self.k = k
        self.objects: list[Any] = [type, Exception]
        self._index = {id(type): 0, id(Exception): 1}

    def ref(self, obj: Any) -> str:
        i = self._index.get(id(obj))
        if i is None:
            i = self._index[id(obj)] = len(self.objects)
            self.objects.append(obj)
        return f"{self.k}[{i}]"

    def type_of(self, text: str) -> str:
        return f"{self.k}[0]({text})"


class Guards:
    """The guards of one generated variant; :meth:`hold` checks them now."""

    def __init__(self, func: Any, items: list[Guard]):
        self.func = func  # the differentiated function: its module's names are read as bare names
        self.items = items
        self._check: Any = None

    def without_defaults_of(self, func: Any) -> Guards:
        """These guards but those on ``func``'s own defaults (its ``__code__`` stays guarded)."""
        return Guards(self.func, [g for g in self.items if g.name or g.owner is not func or g.attrs == ("__code__",)])

    def expression(self, consts: Consts, shadowed: frozenset = frozenset()) -> str:
        """Python text that is True when every guard holds, read inside a function running in ``func``'s globals
        where the names in ``shadowed`` are its own variables (they are read from the module's dict instead)."""
        return " and ".join(_guard_text(g, self.func, consts, shadowed) for g in self.items)

    def hold(self) -> bool:
        """Do all guards hold now? (A name that is gone, or an attribute that fails, is a failed guard.)"""
        if not self.items:
            return True
        if self._check is None:
            self._check = self._compile()
        return self._check()

    def _compile(self) -> Any:
        from srcgrad.emitter import compile_in_scope  # (emit imports the adjoint stage; guards are imported early)

        k = "__srcgrad_k__"
        consts = Consts(k)
        text = (f"def __srcgrad_guard__():\n    try:\n        return {self.expression(consts)}\n"
                f"    except {k}[1]:\n        return False\n")
        name = getattr(self.func, "__qualname__", "?")
        code = compile_in_scope(text, "__srcgrad_guard__", [k], f"<srcgrad guard {name}>",
                                "# srcgrad: the objects the generated code was made for")
        return types.FunctionType(code, self.func.__globals__, "__srcgrad_guard__", None,
                                  (types.CellType(tuple(consts.objects)),))


def _guard_text(g: Guard, func: Any, consts: Consts, shadowed: frozenset) -> str:
    if not g.name:
        read = f"{consts.ref(g.owner)}"
    elif g.cell is not None:
        read = f"{consts.ref(g.cell)}.cell_contents"
    elif g.owner is func and g.name not in shadowed:
        read = g.name  # a name the differentiated function reads, as it reads it
    elif g.in_builtins:
        read = f"{consts.ref(g.owner.__globals__)}.get({g.name!r}, {consts.ref(getattr(builtins, g.name))})"
    else:
        read = f"{consts.ref(g.owner.__globals__)}[{g.name!r}]"
    read += "".join(f".{a}" for a in g.attrs)
    if g.by_type:
        return f"{consts.type_of(read)} is {consts.ref(g.expected)}"
    return f"{read} is {consts.ref(g.expected)}"


# --- collection ------------------------------------------------------------------------------------------------


def collect(func: Any, pf: Any, defaults: bool = False) -> Guards:
    """The guards of code generated from ``pf`` (the parsed source of ``func``) as the names resolve now.
    ``defaults``: the code holds ``func``'s defaults too (a helper's; the entry reads the function's own live)."""
    found: dict[tuple, Guard] = {}
    _guard_code(func, found)
    if defaults:
        _guard_defaults(func, found)
    _collect(func, pf, found, {func})
    return Guards(func, list(found.values()))


def _collect(owner: Any, pf: Any, found: dict, seen: set) -> None:
    for name, attrs in free_paths(pf.node, pf.nodes):
        guard = _resolve(owner, name, attrs)
        if guard is None:
            continue
        found.setdefault((id(owner), name, guard.attrs), guard)
        obj = guard.expected
        if not guard.by_type and _is_user_function(obj) and obj not in seen:
            seen.add(obj)
            _collect_helper(obj, found, seen)


def _collect_helper(func: Any, found: dict, seen: set) -> None:
    """A user function the code calls: its defaults are inlined as constants and its names decide its code."""
    from srcgrad.errors import SrcgradError

    _guard_code(func, found)
    _guard_defaults(func, found)
    try:
        pf = frontend.parse_helper(func)
    except (SrcgradError, OSError, TypeError):
        return  # not differentiated from source (the generation refuses it or treats it as opaque)
    _collect(func, pf, found, seen)


def _guard_code(func: Any, found: dict) -> None:
    """The function's code object: replacing it (``f.__code__ = g.__code__``, IPython's autoreload updating a
    function in place) makes its source another one."""
    found.setdefault((id(func), "", ("__code__",)), Guard(func, "", ("__code__",), func.__code__, False))


def _guard_defaults(func: Any, found: dict) -> None:
    for attr in ("__defaults__", "__kwdefaults__"):
        found.setdefault((id(func), "", (attr,)), Guard(func, "", (attr,), getattr(func, attr), False))


def _resolve(owner: Any, name: str, attrs: tuple[str, ...]) -> Guard | None:
    """The guard on what ``name.attrs`` denotes in ``owner``'s scope, read as far as the lowering reads it (never
    into an array: ``W.T`` is an operation on ``W``); None when the name is not bound (generation rejects it)."""
    code = owner.__code__
    cell, in_builtins = None, False
    if name in code.co_freevars:
        cell = owner.__closure__[code.co_freevars.index(name)]
        try:
            obj = cell.cell_contents
        except ValueError:
            return None
    elif name in owner.__globals__:
        obj = owner.__globals__[name]
    else:
        obj = getattr(builtins, name, MISSING)
        in_builtins = True
        if obj is MISSING:
            return None
    read: list[str] = []
    for attr in attrs:
        if isinstance(obj, np.ndarray):
            break
        try:
            nxt = getattr(obj, attr, MISSING)
        except Exception:  # noqa: BLE001 - a property that raises: the lowering rejects the name
            break
        if nxt is MISSING:
            break
        obj = nxt
        read.append(attr)
    stable = _stable(owner, name, cell, in_builtins, read, obj)
    if not stable and _is_rule_method(obj):  # its rule is the instance's: guard the instance (scipy.stats.norm)
        return Guard(owner, name, tuple(read[:-1]), obj.__self__, False, cell, in_builtins)
    data = _is_data(obj) or not stable
    return Guard(owner, name, tuple(read), type(obj) if data else obj, data, cell, in_builtins)


def _is_rule_method(obj: Any) -> bool:
    """A method of an object with a rule of its own (``scipy.stats.norm.logpdf``): a new object at every read, equal
    to the others; which rule applies depends on the instance it is bound to."""
    if not isinstance(obj, types.MethodType):
        return False
    from srcgrad.rules import lookup

    return lookup(obj) is not None


def _stable(owner: Any, name: str, cell: Any, in_builtins: bool, attrs: list[str], obj: Any) -> bool:
    """Does reading the chain again give the same object? (A method of an instance is a new object at every read:
    its identity cannot be a guard, its type is.)"""
    if not attrs:
        return True
    again = cell.cell_contents if cell is not None else (getattr(builtins, name) if in_builtins
                                                          else owner.__globals__[name])
    try:
        for attr in attrs:
            again = getattr(again, attr)
    except Exception:  # noqa: BLE001
        return False
    return again is obj


def free_paths(fn: Any, nodes: list | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """(name, attributes) for every name the body reads from outside the function, with the longest attribute
    chain read on it (``np.linalg.inv`` gives ("np", ("linalg", "inv")); ``np`` alone is not listed then), in
    source order. Names assigned anywhere in the function (nested functions and lambdas included) are local."""
    local = set()
    for node in gast.walk(fn) if nodes is None else nodes:  # (``nodes``: the walk of ``fn``, when known)
        if isinstance(node, gast.Name) and not isinstance(node.ctx, gast.Load):
            local.add(node.id)
        elif isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)) and node is not fn:
            local.add(node.name)
    chains: list[tuple[str, tuple[str, ...]]] = []
    for statement in fn.body:
        _chains(statement, local, chains)
    longest = []
    for name, attrs in dict.fromkeys(chains):
        if not any(n == name and len(a) > len(attrs) and a[:len(attrs)] == attrs for n, a in chains):
            longest.append((name, attrs))
    return longest


def _chains(node: Any, local: set, out: list) -> None:
    if isinstance(node, gast.Attribute):
        parts, current = [], node
        while isinstance(current, gast.Attribute):
            parts.append(current.attr)
            current = current.value
        if isinstance(current, gast.Name) and isinstance(current.ctx, gast.Load):
            if current.id not in local:
                out.append((current.id, tuple(reversed(parts))))
            return
        _chains(current, local, out)
        return
    if isinstance(node, gast.Name):
        if isinstance(node.ctx, gast.Load) and node.id not in local:
            out.append((node.id, ()))
        return
    for child in gast.iter_child_nodes(node):
        _chains(child, local, out)


def _is_data(obj: Any) -> bool:
    """A value (number, array, string...) rather than a module, class or function: what the lowering treats as a
    constant, whose kind decides code."""
    return not isinstance(obj, (types.ModuleType, type)) and not callable(obj)


def _is_user_function(obj: Any) -> bool:
    """A Python function without a derivative rule of its own, outside srcgrad: differentiated from its source."""
    if not isinstance(obj, types.FunctionType):
        return False
    from srcgrad.rules import lookup

    if lookup(obj) is not None:
        return False
    return usercode.is_user_function(obj)
