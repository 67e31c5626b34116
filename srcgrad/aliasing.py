"""Writes seen through another name: srcgrad computes every write as a new value; this pass makes sure no one can tell.

In: a lowered function (:mod:`srcgrad.ir`), the kinds of its values and the differentiated parameters. Out: the same
IR with run-time checks attached to writes (``op.guard_unshared``: refuse an update that turns out to be in place,
``op.guard_distinct``: refuse arguments that share memory), or an :class:`UnsupportedSyntax` naming the write.

Python changes an object in place for ``y[i] = v``, ``y += v`` on an array or a list, ``xs.append(v)``, and inside
any function it hands the object to. srcgrad computes a new value instead (a new version ``y_1``), so every other way
to reach the object — another name, a view (``x[1:]``, ``x.T``, ``np.reshape``), a list holding it, a version read
again in the next iteration of a loop, an argument passed twice — would still show the old value. The two agree
exactly when no such way is read after the write. This pass checks that, conservatively:

1. *points-to*: every value gets the set of abstract objects it may be — its own (``new:t``) for a new result, an
   argument's (``param:x``) or a global's (``global:W``), and its operands' for copies, views, helpers returning an
   argument and calls srcgrad cannot see into — and every container (a list or tuple display, an argument, a
   global, what srcgrad cannot see into) the objects it may hold — arithmetic on a global array of numbers (its
   type is guarded) makes a new array, not a list holding its items. Flow-insensitive, to a fixpoint.
2. *writes*: item and slice assignments, appends, augmented assignments (in place only for arrays and lists: checked
   where they run), helpers that write into a parameter (their bodies are analysed the same way: see
   :func:`helper_effects`; one that changes a global runs as it is, unless the change is a `k += v` its generated
   code checks and the call runs that code), and calls srcgrad cannot see into, which run
   as they are: their writes are real, so what they may change must not carry a derivative, nor have been read by
   an operation that does (the reverse sweep would read the new contents).
3. *stale reads*: a walk in program order (each side of a branch, loops until nothing changes) marks, at every write,
   each value that may reach a written object as stale, except the write's own new version; reading a stale value
   is refused — or checked where the write runs when it is in place only for arrays (``y += v`` where ``y`` may be a
   number), or only if two arguments share memory (``f(a, a)``).

Writing into an argument itself stays allowed: the caller's array keeps its value (documented in the README).
"""

from __future__ import annotations

import builtins
from dataclasses import field
from typing import Any

import numpy as np

from srcgrad import codereading, frontend, ir, locks, lower, runtime, usercode
from srcgrad.binding import SCALAR, SEQUENCE, call_fact, location
from srcgrad.errors import NoRuleError, SrcgradError, UnsupportedSyntax
from srcgrad.passes import _useful_values, _varied_values, bind_call, infer_kinds, is_user_call
from srcgrad.records import record

# Whether a function with a derivative rule may return an argument, a view of one, or hold one (np.split: a list of
# views) is its rule's ``view`` (np.reshape, np.rot90, np.einsum...); tests/test_trust_aliasing.py calls every rule's
# function to check it. A call with a `copy=` or `out=` keyword may share too.
_SHARING_KEYWORDS = ("copy", "out")

# Calls without a derivative rule that certainly change none of their arguments (everything else may).
_PURE_BUILTINS = frozenset({print, len, isinstance, type, repr, str, abs, round, int, float, bool, range, hash, id,
                            format, any, all, divmod, pow, sorted, sum, min, max})
_NUMPY_WRITERS = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis", "shuffle"})


@record(eq=False)
class _Write:
    """One place where Python changes an object in place."""

    op: ir.Op
    objects: frozenset  # what it changes
    new: str | None  # srcgrad's new value for the changed object (None: a call that changes its argument)
    certain: bool  # False: `y += v`, in place only when y turns out to be an array or a list
    checked: Any = None  # (not certain) the operand whose type decides it, checked where the write runs
    real: bool = False  # the generated code changes the object itself (a call srcgrad runs as it is)
    helper: bool = False  # a user function's write into its parameter (run as it is when its result is unused)
    written: tuple = ()  # the operands whose values end up in the object


@record(frozen=True)
class HelperEffects:
    """What a user function does to its arguments, seen from a call: which parameters it writes into (name ->
    (the write's location, certain: False when only an array or a list argument is changed, as by `p += v`, deep:
    it writes into what the argument holds too)), which its result may be (or view) and which it may hold."""

    writes: dict = field(default_factory=dict)
    returns: frozenset = frozenset()
    holds: frozenset = frozenset()
    writes_globals: Any = None  # where it changes a global's (or a closure variable's) array or list (True: may)
    # where it may change one by `k += v` (in place only if k turns out to be an array or a list): its generated
    # code checks that where the write runs, so only a call that runs the function as it is can change the global
    guards_globals: Any = None


# --- entry points ---------------------------------------------------------------------------------------------


def check_writes(fn: ir.Function, kinds: dict[str, str], wrt: list[str], call_kind: Any = None) -> None:
    """Refuse (or guard at run time) every write that another way to the same object could see. ``call_kind``: the
    result kind of a call to a user function (``call_kind(func, arg_kinds)``, as the kinds pass asks)."""
    if any(_may_write(op) for op in ir.walk_ops(fn.body)):  # (the common case: nothing changed in place)
        objects = _Objects(fn, kinds, call_kind)
        objects.wrt = wrt
        writes = objects.writes()
        if writes:
            _StaleReads(fn, objects, writes, _varied(fn, objects, writes, wrt)).run()
    _refuse_caught_checks(fn)


# What srcgrad's run-time checks raise (in process, and in emitted modules: ValueError).
_CHECK_ERRORS = (ValueError, TypeError, SrcgradError)


def _refuse_caught_checks(fn: ir.Function) -> None:
    """A check the generated code runs (an update that may be in place, arguments that may share memory, a loop
    over what may be a dict) refuses by raising: inside a ``try`` whose ``except`` may catch that, the handler would
    run instead — Python's value and gradient of another path, silently. Refused at generation."""
    for stmt in ir.walk(fn.body):
        if not isinstance(stmt, ir.Try):
            continue
        handler = next((h for h in stmt.handlers if _may_catch(h.types)), None)
        checked = next((op for op in ir.walk_ops(stmt.body) if op.guard_unshared or op.guard_distinct
                        or op.callee in runtime.REFUSING_CHECKS), None)
        if handler is not None and checked is not None:
            raise UnsupportedSyntax(
                f"srcgrad checks this line when it runs, and would refuse it by raising an exception, which the "
                f"`except` at line {handler.line} may catch: the handler would run instead of the refusal",
                location(fn, checked),
                hint="move the line out of the `try`, or catch only the exceptions you mean (e.g. ZeroDivisionError)",
            )


def _may_catch(types: Any) -> bool:
    """May ``except types`` catch what srcgrad's checks raise? (A bare except, a computed one: yes.)"""
    if not isinstance(types, ir.Const):
        return True
    classes = types.value if isinstance(types.value, tuple) else (types.value,)
    return any(not isinstance(c, type) or any(issubclass(e, c) for e in _CHECK_ERRORS) for c in classes)


def _active_calls(fn: ir.Function, wrt: list[str]) -> set[str]:
    """The targets of calls of user functions that will run the function's generated code: the active ones (what
    passes.analyse_activity decides after this pass; removing dead code first changes no op's activity)."""
    ops = list(ir.walk_ops(fn.body))
    varied = _varied_values(fn, ops, set(wrt))
    useful = _useful_values(fn, ops, varied)
    return {op.target for op in ops if is_user_call(op) and op.target in varied and op.target in useful}


def helper_effects(func: Any, kinds: tuple[str, ...], call_kind: Any = None) -> HelperEffects:
    """The parameters a user function writes into and those its result may be, for arguments of these kinds
    (cached). A function srcgrad cannot lower may do anything to any argument. Recursion: a call of a function
    being analysed counts as writing nothing (its own body's writes are found where they are)."""
    key = (func, kinds)
    with _LOCK:
        found = _EFFECTS.get(key)
        if found is not None:
            return found
        if key in _IN_PROGRESS:
            return HelperEffects(returns=frozenset(_params_of(func)))
        _IN_PROGRESS.add(key)
        try:
            effects = _compute_effects(func, kinds, call_kind)
        finally:
            _IN_PROGRESS.discard(key)
        _EFFECTS[key] = effects
        return effects


_LOCK = locks.rlock()
_EFFECTS: dict[tuple, HelperEffects] = {}
_IN_PROGRESS: set[tuple] = set()


def _params_of(func: Any) -> list[str]:
    try:
        return list(codereading.signature_of(func).parameters)
    except (TypeError, ValueError):
        return []


def _compute_effects(func: Any, kinds: tuple[str, ...], call_kind: Any) -> HelperEffects:
    params = _params_of(func)
    try:
        fn = lower.lowered(frontend.parse_helper(func))
        value_kinds = infer_kinds(fn, dict(zip(fn.params, kinds)), call_kind)
    except SrcgradError:  # not lowered: it runs as it is, and may do anything to what it is given
        everything = frozenset(p for p, k in zip(params, kinds) if k != SCALAR)
        return HelperEffects({p: (None, True, True) for p in everything}, everything, writes_globals=True)
    objects = _Objects(fn, value_kinds, call_kind)
    writes: dict = {}
    found = objects.writes()
    writes_globals, guards_globals = _global_writes(fn, found)
    for w in found:
        for obj in sorted(w.objects):
            root = _root(obj)
            if root.startswith("param:"):
                loc, certain, deep = writes.get(root[6:], (location(fn, w.op), False, False))
                writes[root[6:]] = (loc, certain or w.certain, deep or obj != root)
    result = objects.of(fn.body[-1].value)
    returned = {_root(o)[6:] for o in result if _root(o).startswith("param:")}
    held = {_root(o)[6:] for o in objects.reach(result) - result if _root(o).startswith("param:")}
    return HelperEffects(writes, frozenset(returned), frozenset(held - returned), writes_globals, guards_globals)


def _global_writes(fn: ir.Function, writes: list[_Write]) -> tuple[Any, Any]:
    """Where the first write into a global is, among the certain writes and among those in place only for an array
    or a list (None: there is none)."""
    into_globals = [w for w in writes if any(_root(o).startswith("global:") for o in w.objects)]
    return (next((location(fn, w.op) for w in into_globals if w.certain), None),
            next((location(fn, w.op) for w in into_globals if not w.certain), None))


# --- 1. points-to ---------------------------------------------------------------------------------------------


def _root(obj: str) -> str:
    """The argument or global an object belongs to (``inner:param:x`` -> ``param:x``)."""
    return obj[6:] if obj.startswith("inner:") else obj


def _is_external(obj: str) -> bool:
    return _root(obj).startswith(("param:", "global:"))


class _Objects:
    """What each value may be (``pts``) and what each object may hold (``holds``). Only objects that may be lists
    or tuples (``containers``: displays, arguments, globals, results of calls srcgrad cannot see into) hold anything:
    writing an array into an item of an array copies its values."""

    def __init__(self, fn: ir.Function, kinds: dict[str, str], call_kind: Any = None):
        self.fn = fn
        self.kinds = kinds
        self.pts: dict[str, set] = {}
        self.holds: dict[str, set] = {}
        self.named: dict[str, ir.Operand] = {}  # an argument's or a global's object -> the operand that names it
        self.containers: set = set()
        self.arrays: set = set()  # globals' objects that are arrays of numbers: `+` and `*` make new arrays of them
        self.wrt: list | None = None  # the differentiated parameters (None: a helper's effects, for any)
        self._generated_calls: set | None = None
        self.effects: dict[int, HelperEffects] = {}  # id(op) -> effects of the user function it calls
        for p in fn.params:
            if kinds.get(p) != SCALAR:
                self._external(p, f"param:{p}", ir.Var(p))
        ops = list(ir.walk_ops(fn.body))
        self.defined_by = {op.target: op for op in ops}
        for op in ops:
            if is_user_call(op):
                self.effects[id(op)] = helper_effects(op.callee, _call_kinds(op, self.kind), call_kind)
        changed = True
        while changed:
            changed = False
            for op in ops:
                changed |= self._flow(op)

    def _external(self, key: str, obj: str, operand: ir.Operand) -> None:
        inner = f"inner:{obj}"
        self.pts[key] = {obj}
        self.holds[obj] = {inner}
        self.holds[inner] = {inner}
        self.named[obj] = operand
        self.containers |= {obj, inner}

    def kind(self, operand: Any) -> str:
        if isinstance(operand, ir.Var):
            return self.kinds.get(operand.name, "A")
        if isinstance(operand, ir.Const):
            return SCALAR if operand.text is None and type(operand.value) in (int, float, bool) else "A"
        return SCALAR

    def key(self, operand: Any) -> str | None:
        """The value an operand reads: a variable's name, ``@W`` for a global ``W`` (None: a literal)."""
        if isinstance(operand, ir.Var):
            return operand.name
        if isinstance(operand, ir.Const) and operand.text is not None:
            key = f"@{operand.text}"
            if key not in self.pts:
                self._external(key, f"global:{operand.text}", operand)
                if _numeric_array(operand.value):  # (its type is guarded: srcgrad.guards)
                    self.arrays |= {f"global:{operand.text}", f"inner:global:{operand.text}"}
            return key
        return None

    def of(self, operand: Any) -> set:
        if self.kind(operand) == SCALAR:
            return set()
        key = self.key(operand)
        return self.pts.get(key, set()) if key is not None else set()

    def reach(self, objects: set) -> set:
        out, todo = set(objects), list(objects)
        while todo:
            for inner in self.holds.get(todo.pop(), ()):
                if inner not in out:
                    out.add(inner)
                    todo.append(inner)
        return out

    def reach_all(self, operands: Any) -> set:
        return self.reach(set().union(*(self.of(a) for a in operands)))

    def _add(self, target: str, objects: set) -> bool:
        have = self.pts.setdefault(target, set())
        if objects <= have:
            return False
        have |= objects
        return True

    def _container(self, objects: set) -> bool:
        if objects <= self.containers:
            return False
        self.containers |= objects
        return True

    def _hold(self, containers: set, objects: set) -> bool:
        changed = False
        for c in containers & self.containers:
            have = self.holds.setdefault(c, set())
            if not objects <= have:
                have |= objects
                changed = True
        return changed

    def _flow(self, op: ir.Op) -> bool:
        t, kind, args = op.target, op.form.kind, op.args
        new = {f"new:{t}"}
        operands = set().union(*(self.of(a) for a in op.operands())) if op.operands() else set()
        if kind == "copy" or kind == "boolop":  # `a or b` is one of its operands
            return self._add(t, operands)
        if kind == "append":
            return self._add(t, self.of(args[0])) | self._hold(self.of(args[0]), self.of(args[1]))
        if _item_assignment(op):
            return self._add(t, self.of(args[0])) | self._hold(self.of(args[0]), self.of(args[2]))
        if op.callee is runtime.setitem:  # called by name (generated code read again): a copy, the item replaced
            lists = self.of(args[0]) & self.containers
            held = set().union(*(self.holds.get(o, set()) for o in lists)) if lists else set()
            return (self._container(new) if lists else False) | self._add(t, new) \
                | self._hold(new, held | self.of(args[2]))
        if kind in ("tuple", "list"):
            return self._container(new) | self._add(t, new) | self._hold(new, operands)
        if kind == "subscript":  # an element of a list, or a view of an array
            return self._flow_subscript(op)
        if kind in ("binop", "unaryop", "compare"):
            return self._flow_operator(op, new, operands)
        if self.kinds.get(t) == SCALAR:
            return False
        return self._flow_call(op, new, operands)

    def _flow_subscript(self, op: ir.Op) -> bool:
        base = self.of(op.args[0])
        held = set().union(*(self.holds.get(o, set()) for o in base)) if base else set()
        return self._add(op.target, held | (base if self.kind(op.args[0]) != SEQUENCE else set()))

    def _flow_operator(self, op: ir.Op, new: set, operands: set) -> bool:
        """New; `xs + ys` holds what both lists hold."""
        lists = operands & self.containers - self.arrays
        held = set().union(*(self.holds.get(o, set()) for o in lists)) if lists else set()
        same = self.of(op.args[0]) if op.inplace else set()  # `y += v` is y itself when y is an array
        return (self._container(new) if lists else False) | self._add(op.target, new | same) | self._hold(new, held)

    def _flow_call(self, op: ir.Op, new: set, operands: set) -> bool:
        t = op.target
        if is_user_call(op):
            effects, bound = self.effects[id(op)], _bind(op)
            shared = self.reach_all(bound[p] for p in effects.returns if p in bound)
            held = self.reach_all(bound[p] for p in effects.holds if p in bound)
            return self._container(new) | self._add(t, new | shared) | self._hold(new, shared | held)
        if _may_share(op):
            shared = self.reach(operands)
            return self._container(new) | self._add(t, new | shared) | self._hold(new, shared)
        return self._add(t, new)

    def writes(self) -> list[_Write]:
        out = []
        for op in ir.walk_ops(self.fn.body):
            if _item_assignment(op):
                out.append(_Write(op, frozenset(self.of(op.args[0])), op.target, True, written=(op.args[2],)))
            elif op.form.kind == "append":
                out.append(_Write(op, frozenset(self.of(op.args[0])), op.target, True, written=(op.args[1],)))
            elif op.inplace and op.form.kind == "binop" and self.kind(op.args[0]) != SCALAR \
                    and not self._updates_an_array_item(op):
                out.append(_Write(op, frozenset(self.of(op.args[0])), op.target, False, op.args[0],
                                  written=(op.args[1],)))
            elif is_user_call(op):
                out.extend(self._helper_writes(op))
            elif _opaque_writer(op):
                changed = self.reach(set().union(*(self.of(a) for a in op.operands())))
                if changed:
                    out.append(_Write(op, frozenset(changed), None, True, real=True, written=tuple(op.operands())))
        return out

    def _updates_an_array_item(self, op: ir.Op) -> bool:
        """``A[i] += v`` with A an array: Python changes the item A[i] (a view of A) in place, then writes it back
        into A, as the item assignment that follows does; an item of a list is an object of its own (another name may
        hold it), so ``lst[0] += v`` is a write to that object."""
        item = op.args[0]
        source = self.defined_by.get(item.name) if isinstance(item, ir.Var) else None
        return source is not None and source.form.kind == "subscript" and item.name in self.fn.temporaries \
            and self.kind(source.args[0]) not in (SEQUENCE, SCALAR)

    def runs_generated_code(self, op: ir.Op) -> bool:
        """Does this call of a user function run its generated code (not the function as it is)?"""
        if self.wrt is None:
            return False
        if self._generated_calls is None:
            self._generated_calls = _active_calls(self.fn, self.wrt)
        return op.target in self._generated_calls

    def _helper_writes(self, op: ir.Op) -> list[_Write]:
        out = []
        effects, bound = self.effects[id(op)], _bind(op)
        # A helper that changes a global: the generated pair refuses such a write, and checks one that is in place
        # only for an array (`k += v`) where it runs; only the helper itself, run as it is, changes it for real here.
        if effects.writes_globals or (effects.guards_globals and not self.runs_generated_code(op)):
            changed = self.reach({o for o in self.named if o.startswith("global:")})  # any global the caller reads
            if changed:
                out.append(_Write(op, frozenset(changed), None, True, real=True, helper=True,
                                  written=tuple(op.operands())))
        for param, (_, certain, deep) in sorted(effects.writes.items()):
            changed = self.reach(self.of(bound.get(param))) if deep else self.of(bound.get(param))
            if changed:
                out.append(_Write(op, frozenset(changed), None, certain, bound[param], helper=True,
                                  written=tuple(op.operands())))
        return out


def _numeric_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype != object


def _item_assignment(op: ir.Op) -> bool:
    """``y[i] = v`` (Python writes into y's object); a call of srcgrad's ``setitem`` by name, in generated code
    that is differentiated again, makes a copy instead."""
    return op.callee is runtime.setitem and op.inplace


def _may_write(op: ir.Op) -> bool:
    return _item_assignment(op) or op.form.kind == "append" or (op.inplace and op.form.kind == "binop") \
        or is_user_call(op) or _opaque_writer(op)


def _bind(op: ir.Op) -> dict[str, Any]:
    try:
        return bind_call(op)
    except TypeError:  # Python reports a call that does not fit the signature where it happens
        return {}


def _call_kinds(op: ir.Op, kind: Any) -> tuple[str, ...]:
    return tuple(kind(v) for v in _bind(op).values())


def _always_copies(keyword: str, value: Any) -> bool:
    """``copy=True`` written as the constant: numpy always copies (``copy=False`` or ``None`` may share)."""
    return keyword == "copy" and isinstance(value, ir.Const) and value.value is True


def _may_share(op: ir.Op) -> bool:
    """May the result be (a view of) an operand, or hold one?"""
    if op.form.kind == "attr" or any(k in _SHARING_KEYWORDS and not _always_copies(k, v) for k, v in op.kwargs):
        return True
    if op.rule is None:
        return True  # srcgrad cannot see into it
    return call_fact(op, "view", unbound=True)


_SRCGRAD_HELPERS = ("srcgrad.runtime", "srcgrad.scipy_runtime")


def _opaque_writer(op: ir.Op) -> bool:
    """A call that runs as it is and may change an argument: no derivative rule, not a user function srcgrad
    differentiates, and not known to leave its arguments alone."""
    if op.form.kind not in ("call", "method") or op.callee is runtime.setitem or is_user_call(op):
        return False
    if op.form.kind == "method" and op.rule is None:
        return False  # methods without a rule: passes.check_opaque_methods decides (they may change their receiver)
    if op.rule is not None:  # (an ``out=`` the rule does not take is refused where the call is bound, by its name)
        return any(k == "out" for k, _ in op.kwargs) and "out" in op.rule.signature.parameters
    callee = op.callee
    if any(k == "out" for k, _ in op.kwargs):
        return True
    module = getattr(callee, "__module__", None) or ""
    if module in _SRCGRAD_HELPERS:
        return False  # (srcgrad's runtime helpers build new values; generated code differentiated again calls them)
    if module in ("math", "warnings", "_warnings", "logging") \
            or (isinstance(callee, type) and issubclass(callee, BaseException)):
        return False  # (exceptions are made, warnings and log records written: their arguments are only read)
    if module == "builtins" or getattr(builtins, getattr(callee, "__name__", ""), None) is callee:
        return callee not in _PURE_BUILTINS
    if module.split(".")[0] == "numpy" or isinstance(callee, np.ufunc):
        return getattr(callee, "__name__", "") in _NUMPY_WRITERS
    return True


# --- 2. what carries a derivative ------------------------------------------------------------------------------


def _varied(fn: ir.Function, objects: _Objects, writes: list[_Write], wrt: list[str]) -> set[str]:
    """Values that may depend on a differentiated argument, also through objects written with such a value."""
    varied = set(wrt)
    varied_objects: set = set().union(*(objects.pts.get(p, set()) for p in wrt)) if wrt else set()
    by_op = {id(w.op): w for w in writes}
    ops = list(ir.walk_ops(fn.body))
    changed = True
    while changed:
        changed = False
        for op in ops:
            w = by_op.get(id(op))
            if w is not None and any(objects.key(a) in varied for a in w.written) \
                    and not w.objects <= varied_objects:
                varied_objects |= w.objects
                changed = True
            if op.target not in varied and (any(objects.key(a) in varied for a in op.operands())
                                            or objects.pts.get(op.target, set()) & varied_objects):
                varied.add(op.target)
                changed = True
    return varied


# --- 3. stale reads --------------------------------------------------------------------------------------------


@record
class _State:
    stale: dict = field(default_factory=dict)  # value -> {(write, pair of arguments or None)}
    seen: set = field(default_factory=set)  # values read so far by operations that carry a derivative

    def copy(self) -> _State:
        return _State({k: set(v) for k, v in self.stale.items()}, set(self.seen))

    def merge(self, other: _State) -> _State:
        out = self.copy()
        for k, v in other.stale.items():
            out.stale.setdefault(k, set()).update(v)
        out.seen |= other.seen
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _State) and self.stale == other.stale and self.seen == other.seen


class _StaleReads:
    def __init__(self, fn: ir.Function, objects: _Objects, writes: list[_Write], varied: set[str]):
        self.fn, self.objects, self.varied = fn, objects, varied
        self.writes: dict[int, list[_Write]] = {}
        for w in writes:
            self.writes.setdefault(id(w.op), []).append(w)
        self.reach = {k: frozenset(objects.reach(v)) for k, v in objects.pts.items() if v}

    def run(self) -> None:
        self.block(self.fn.body, _State())

    def block(self, body: list, state: _State) -> _State:
        for stmt in body:
            if isinstance(stmt, ir.Op):
                self.op(stmt, state)
            elif isinstance(stmt, ir.If):
                self.read(stmt.cond, stmt, state)
                state = self.block(stmt.body, state.copy()).merge(self.block(stmt.orelse, state.copy()))
            elif isinstance(stmt, (ir.For, ir.While)):
                state = self.loop(stmt, state)
            elif isinstance(stmt, ir.With):
                self.read(stmt.manager, stmt, state)
                state = self.block(stmt.body, state)
            elif isinstance(stmt, ir.Try):
                state = self.try_(stmt, state)
            elif isinstance(stmt, ir.Return):
                self.read(stmt.value, stmt, state)
        return state

    def try_(self, stmt: ir.Try, state: _State) -> _State:
        """A handler may start after any statement of the body (what each made stale is stale there); ``else``
        follows the whole body, ``finally`` any of them."""
        raised = state.copy()
        body = state.copy()
        for inner in stmt.body:
            body = self.block([inner], body)
            raised = raised.merge(body)
        ends = [self.block(stmt.orelse, body)]
        for handler in stmt.handlers:
            start = raised.copy()
            if handler.types is not None:
                self.read(handler.types, stmt, start)
            ends.append(self.block(handler.body, start))
        after = ends[0]
        for end in ends[1:]:
            after = after.merge(end)
        return self.block(stmt.final, after.merge(raised) if stmt.final else after)

    def loop(self, loop: ir.For | ir.While, state: _State) -> _State:
        """Iterations until the stale values at the top of the body stop changing (the next iteration reads what
        this one made stale); the loop may also end after its test, or run no iteration at all."""
        if isinstance(loop, ir.For):
            self.read(loop.iterable, loop, state)
        entry = state
        while True:
            s = entry.copy()
            if isinstance(loop, ir.For):
                s.stale.pop(loop.target, None)
            else:
                s = self.block(loop.test, s)
                self.read(loop.cond, loop, s)
            after_test = s.copy()
            s = self.block(loop.body, s)
            merged = entry.merge(s)
            if merged == entry:
                return entry.merge(after_test)
            entry = merged

    def op(self, op: ir.Op, state: _State) -> None:
        passed_on = self.stale_copy(op, state)
        if passed_on is None:
            for a in op.operands():
                self.read(a, op, state)
        writes = self.writes.get(id(op), ())
        for write in writes:
            if write.real or write.helper:
                self.check_real(write, state)
        if op.target in self.varied:
            state.seen.update(k for k in map(self.objects.key, op.operands()) if k is not None)
        state.stale.pop(op.target, None)
        if passed_on:
            state.stale[op.target] = passed_on
        for write in writes:
            if not write.real:
                self.mark(write, state)

    def stale_copy(self, op: ir.Op, state: _State) -> set | None:
        """The stale marks of what ``op`` copies (``b = a``, the copies srcgrad adds where branches join and
        iterations end), which its target takes over: a copy reads nothing of the contents, so only a later read of
        the copy tells (a copy that nothing reads — of an earlier iteration's name at a join — is no refusal)."""
        if op.form.kind != "copy" or len(op.args) != 1 or op.kwargs:
            return None
        key = self.objects.key(op.args[0])
        return set(state.stale[key]) if key is not None and key in state.stale else None

    def read(self, operand: Any, where: Any, state: _State) -> None:
        key = self.objects.key(operand)
        reasons = state.stale.get(key) if key is not None else None
        for write, pair in sorted(reasons or (), key=lambda r: (r[0].op.line, r[0].op.col, str(r[1]))):
            if pair is not None:
                named = tuple(self.objects.named[p] for p in pair)
                if not any(map(_same_operands, write.op.guard_distinct, [named] * len(write.op.guard_distinct))):
                    write.op.guard_distinct = write.op.guard_distinct + (named,)
            elif not write.certain:
                self.guard_unshared(write)  # in place only for an array or a list: checked where it runs
            else:
                raise self.refusal(write, key, where)

    def mark(self, write: _Write, state: _State) -> None:
        """After ``write``, every value that may reach what it changed shows the old contents (srcgrad's) where
        Python's shows the new; the write's own new version is the one that is right."""
        written_args = {_root(o) for o in write.objects if _root(o).startswith("param:")}
        for key, reach in self.reach.items():
            if key == write.op.target:  # the write's own result: the new contents (a helper's after its write)
                continue
            if reach & write.objects:
                state.stale.setdefault(key, set()).add((write, None))
                continue
            for other in sorted({_root(o) for o in reach if _is_external(o)} - written_args):
                for arg in sorted(written_args):  # stale only if the two arguments share memory when called
                    state.stale.setdefault(key, set()).add((write, (arg, other)))
        if write.certain and write.new is not None:
            for obj in sorted(write.objects):
                if _root(obj).startswith("global:"):
                    raise self.refusal(write, None, write.op, global_obj=_root(obj))
        elif write.new is not None and any(_root(o).startswith("global:") for o in write.objects):
            self.guard_unshared(write)

    @staticmethod
    def guard_unshared(write: _Write) -> None:
        if not any(_same_operands(write.checked, known) for known in write.op.guard_unshared):
            write.op.guard_unshared = write.op.guard_unshared + (write.checked,)

    def check_real(self, write: _Write, state: _State) -> None:
        """A call that runs as it is changes the object itself: what it may change must not carry a derivative,
        and no operation carrying one may have read it before (the reverse sweep would read the new contents)."""
        varied = [a for a in write.written if self.objects.key(a) in self.varied] \
            if write.real and not write.helper else []
        seen = sorted(k for k in state.seen if self.reach.get(k, frozenset()) & write.objects)
        if seen and not varied and not write.certain:
            self.guard_unshared(write)  # a helper's `p += v`: in place only for an array or a list
        elif write.helper and seen:
            raise _helper_refusal(self, write, seen[0], write.op, before=True)
        elif varied:
            callee = write.op.callee
            name = usercode.qualified_name(callee) if callee is not None else write.op.form.symbol
            what = "" if callee is None or usercode.is_user_function(callee) else "the library function "
            raise NoRuleError(
                f"srcgrad has no derivative rule for {what}`{name}`, and cannot see whether it changes its arguments "
                "in place: a value that carries a derivative goes into it",
                self.location(write.op),
                hint=f"declare one with @srcgrad.defgrad({name}), or mark it with srcgrad.nondifferentiable if its "
                     "result carries no gradient and it changes nothing",
            )
        elif seen:
            name = getattr(write.op.callee, "__name__", write.op.form.symbol)
            raise UnsupportedSyntax(
                f"`{name}` may change its arguments in place, and a derivative computed before it reads "
                f"{self.describe(seen[0])}: the reverse sweep would read the changed contents",
                self.location(write.op),
                hint="build the new value instead (y = y.copy(), then y[i] = v or np.where), or mark the function "
                     "with srcgrad.nondifferentiable if it changes nothing",
            )

    # --- messages -----------------------------------------------------------------------------------------

    def location(self, stmt: Any):
        return location(self.fn, stmt)

    def refusal(self, write: _Write, key: str | None, where: Any, global_obj: str | None = None) -> SrcgradError:
        op = write.op
        what = "a list" if op.form.kind == "append" or self.objects.kinds.get(op.target) == SEQUENCE else "an array"
        noun = what.split()[1]
        if write.new is None:
            return _helper_refusal(self, write, key, where)
        if global_obj is not None:
            return UnsupportedSyntax(
                f"this write changes {what} in place, and another name refers to the same {noun}: the global "
                f"`{global_obj[7:]}`, which srcgrad does not change (it computes a new {noun})",
                self.location(op), hint=f"copy it first (`y = {global_obj[7:]}.copy()`), or build a new {noun}",
            )
        return UnsupportedSyntax(
            f"this write changes {what} in place, and another name refers to the same {noun}: "
            f"{self.describe(key)}, read at line {getattr(where, 'line', '?')}, would see the change in Python, but "
            f"srcgrad computes a new {noun}, so there it would not",
            self.location(op),
            hint=f"copy first (`y = x.copy()`) so that each name has its own {noun}, or build a new value "
                 "(`y = y + v`, np.where) and use that name everywhere after",
        )

    def describe(self, key: str | None) -> str:
        if key is None:
            return "a value"
        if key.startswith("@"):
            return f"`{key[1:]}`"
        for name in (key, self.fn.versions.get(key, key)):
            if name in self.fn.local_names:
                return f"`{name}`"
        return "a value computed from it"


def _same_operands(a: Any, b: Any) -> bool:
    """Equal operands, or tuples of them (a constant compared by identity: its value may be an array)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(_same_operands, a, b))
    return a is b or (isinstance(a, ir.Var) and isinstance(b, ir.Var) and a.name == b.name)


def _helper_refusal(stale: _StaleReads, write: _Write, key: str | None, where: Any,
                    before: bool = False) -> SrcgradError:
    op = write.op
    name = getattr(op.callee, "__name__", op.form.symbol)
    effects = stale.objects.effects.get(id(op))
    places = sorted(f"`{p}` (at {loc})" if loc is not None else f"`{p}`"
                    for p, (loc, _, _) in (effects.writes.items() if effects else ()))
    if write.checked is None:  # a global it writes into
        where_global = (effects.writes_globals or effects.guards_globals) if effects is not None else None
        places = ["a global array or list" + (f" (at {where_global})" if where_global not in (None, True) else "")]
    seen = (f"a derivative computed before it reads {stale.describe(key)}" if before else
            f"{stale.describe(key)}, read at line {getattr(where, 'line', '?')}, refers to the same object")
    return UnsupportedSyntax(
        f"`{name}` changes {'' if write.checked is None else 'its parameter '}{', '.join(places)} in place, and "
        f"{seen}: srcgrad cannot follow a "
        f"helper's change to its argument (its generated `{name}` computes a new value instead)",
        stale.location(op),
        hint=f"return the new value from `{name}` and assign it here (`y = {name}(y, ...)`), building it without "
             "changing the argument (y = y.copy() first, or np.where)",
    )
