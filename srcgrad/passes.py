"""Passes: IR in, facts about it (or a new IR) out; srcgrad/pass_table.py runs them in order as a visible table.

- ``kinds``: which values are Python numbers ("S", float paths: no numpy, no broadcasting helpers) and which may be
  arrays ("A"). Arguments get their kind from the first call; globals and closure variables are always "A" because
  they may change between calls.
- ``activity``: a value is *active* when it depends on a differentiated input (varied) and reaches the output
  through differentiable operations (useful). Only active operations get adjoint code.
- ``inplace``: writes another name could see (``y[i] = v`` on an array ``z = y`` also names) are refused or checked
  where they run (srcgrad/aliasing.py); before ``dce``, since an unused write still changes the object.
- ``shapes``: which values certainly share a shape, and each value's layout (rank and axes of length 1,
  srcgrad/layouts.py) where the arguments' layouts decide it.
- ``dce``: forward operations whose result reaches neither the output nor an active operation are removed
  (known primitives only; calls to unknown functions stay, they may have effects).
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable
from dataclasses import field, replace
from typing import Any

import numpy as np

from srcgrad import codereading, ir, usercode
from srcgrad.binding import (
    ARRAY,
    SCALAR,
    SEQUENCE,
    SEQUENCE_OF_SEQUENCES,
    bind_params,
    call_fact,
    const_kind,
    location,
)
from srcgrad.errors import NoRuleError, SrcgradError
from srcgrad.records import record


@record
class Facts:
    """What the passes learned about a function, read by the adjoint stage."""

    kinds: dict[str, str] = field(default_factory=dict)
    varied: set[str] = field(default_factory=set)
    useful: set[str] = field(default_factory=set)
    shapes: dict[str, str] = field(default_factory=dict)  # values with the same symbol have the same shape
    checked: frozenset = frozenset()  # values whose op a run-time alias check comes before (the inplace pass)
    layouts: dict[str, str | None] = field(default_factory=dict)  # rank and axes of length 1 (srcgrad/layouts.py)

    def same_shape(self, a: str, b: str) -> bool:
        return a in self.shapes and self.shapes.get(a) == self.shapes.get(b)

    def layout(self, operand: ir.Operand) -> str | None:
        """The layout of a value (srcgrad/layouts.py), None when not known; a Python number's is ``""``."""
        if isinstance(operand, ir.Var):
            return self.layouts.get(operand.name)
        return "" if isinstance(operand, ir.Const) and const_kind(operand) == SCALAR else None

    def kind(self, operand: ir.Operand) -> str:
        if isinstance(operand, ir.Var):
            return self.kinds.get(operand.name, ARRAY)
        if isinstance(operand, ir.Const):
            return const_kind(operand)
        return ARRAY

    def is_active(self, name: str) -> bool:
        return name in self.varied and name in self.useful

    def describe(self, name: str) -> str:
        """The facts about ``name`` as ``SRCGRAD_DUMP`` prints them: ``t1:A active shape=param:x``; kinds ``S``/
        ``A``/``L``, ``active`` (varied and useful), ``varied`` or ``useful`` alone, ``checked``, and a shape
        shared with another value."""
        words = [f"{name}:{self.kinds[name]}" if name in self.kinds else ""]
        activity = "active" if self.is_active(name) else "varied" if name in self.varied else \
            "useful" if name in self.useful else ""
        shape = self.shapes.get(name, "")
        words += [activity, "checked" if name in self.checked else "",
                  f"shape={shape}" if shape not in ("", SCALAR, f"own:{name}") else ""]
        return " ".join(w for w in words if w)


# --- kinds -------------------------------------------------------------------------------------------------------


def infer_kinds(fn: ir.Function, arg_kinds: dict[str, str], call_kind: Any = None) -> dict[str, str]:
    """Kinds of every value; ``call_kind(func, arg_kinds)`` gives the result kind of a call to a user function."""
    kinds = dict(arg_kinds)
    facts = Facts(kinds)
    for op in ir.walk_ops(fn.body):
        if op.callee is range:  # iterating over a range gives ints
            kinds[f"{op.target}:elements"] = SCALAR
    changed = True
    while changed:  # loops make this a fixpoint; kinds only move from S to A (unknown yet counts as S)
        changed = False
        for stmt in ir.walk(fn.body):
            if isinstance(stmt, ir.For) and kinds.get(stmt.target) != ARRAY:
                new = _iter_kind(stmt.iterable, facts)
                changed |= kinds.get(stmt.target) != new
                kinds[stmt.target] = new
        for op in ir.walk_ops(fn.body):
            new = _op_kind(op, facts, call_kind)
            old = kinds.get(op.target)
            merged = SEQUENCE if SEQUENCE in (new, old) else ARRAY if ARRAY in (new, old) else SCALAR
            if merged != old:
                kinds[op.target] = merged
                changed = True
            if (new is SEQUENCE_OF_SEQUENCES or _holds_sequences(op, kinds)) \
                    and kinds.get(f"{op.target}:elements") != SEQUENCE:
                kinds[f"{op.target}:elements"] = SEQUENCE
                changed = True
    return kinds


def _holds_sequences(op: ir.Op, kinds: dict[str, str]) -> bool:
    """Whether the list or tuple ``op`` makes may hold lists or tuples (``[[x], [y]]``, a copy or slice of one, one
    appended to): its items (``n[0]``, a loop's variable) are then sequences, so that Python's sequence arithmetic
    on them is seen (``n[0] + n[1]`` joins them)."""
    def kind(a: Any) -> str:
        return kinds.get(a.name, ARRAY) if isinstance(a, ir.Var) else ARRAY

    def holds(a: Any) -> bool:
        return isinstance(a, ir.Var) and kinds.get(f"{a.name}:elements") == SEQUENCE

    if op.form.kind in ("tuple", "list"):
        return any(kind(a) == SEQUENCE for a in op.args)
    if op.form.kind == "append":
        return holds(op.args[0]) or kind(op.args[1]) == SEQUENCE
    if op.form.kind == "copy" or _slices_a_sequence(op, kind):
        return holds(op.args[0])
    return False


def _iter_kind(iterable: ir.Operand, facts: Facts) -> str:
    return facts.kinds.get(f"{getattr(iterable, 'name', '')}:elements", ARRAY)


def _op_kind(op: ir.Op, facts: Facts, call_kind: Any = None) -> str:
    def kind(a: ir.Operand) -> str:
        return facts.kinds.get(a.name, SCALAR) if isinstance(a, ir.Var) else facts.kind(a)

    arg_kinds = [kind(a) for a in op.operands()]
    all_scalar = all(k == SCALAR for k in arg_kinds)
    if op.form.kind == "copy":
        src = op.args[0]
        if isinstance(src, ir.Const) and src.value is None:
            return SCALAR  # a loop header's placeholder: it takes its kind from the loop's real values
        return arg_kinds[0]
    if _makes_a_sequence(op, kind, facts.kinds):
        return SEQUENCE
    if op.form.symbol == "setitem" and op.args and isinstance(op.args[0], ir.Var):
        return kind(op.args[0]) if kind(op.args[0]) != SCALAR else ARRAY
    if op.form.kind in ("compare", "boolop"):
        return SCALAR if all_scalar else ARRAY
    if op.rule is None:
        if call_kind is not None and is_user_call(op):
            try:
                return call_kind(op.callee, _call_arg_kinds(op, kind))
            except TypeError:  # arguments that do not fit the signature: Python reports it at the call
                return ARRAY
        return ARRAY
    return _rule_kind(op, all_scalar, kind, call_kind)


def _rule_kind(op: ir.Op, all_scalar: bool, kind: Any, call_kind: Any) -> str:
    """The kind of a primitive's result, as its rule declares it (``out_kind``)."""
    out_kind = op.rule.out_kind
    if out_kind == "scalar":
        return SCALAR
    if out_kind == "same":
        return SCALAR if all_scalar else ARRAY
    if out_kind == "callee" and call_kind is not None:  # a primitive with source (srcgrad.custom_root): read there
        try:
            return call_kind(op.callee, _call_arg_kinds(op, kind))
        except (TypeError, SrcgradError):  # (arguments that do not fit, or source srcgrad does not read: unsure)
            return ARRAY
    return ARRAY


def _makes_a_sequence(op: ir.Op, kind: Callable[[ir.Operand], str], kinds: dict[str, str]) -> bool:
    """A display, an append, a slice of a list or tuple, an item of a list of lists."""
    return op.form.kind in ("tuple", "list", "append") or _slices_a_sequence(op, kind) \
        or _item_of_sequences(op, kinds)


def _slices_a_sequence(op: ir.Op, kind: Callable[[ir.Operand], str]) -> bool:
    """``a[1:]`` of a list or tuple is a list or tuple (an item, ``a[1]``, is whatever the sequence holds)."""
    return op.form.kind == "subscript" and len(op.args) == 2 and isinstance(op.args[1], ir.Index) and \
        not op.args[1].is_tuple and isinstance(op.args[1].parts[0], ir.Slice) and kind(op.args[0]) == SEQUENCE


def _item_of_sequences(op: ir.Op, kinds: dict[str, str]) -> bool:
    """``n[0]`` of a list or tuple that may hold lists or tuples (:func:`_holds_sequences`)."""
    return op.form.kind == "subscript" and isinstance(op.args[0], ir.Var) and \
        kinds.get(f"{op.args[0].name}:elements") == SEQUENCE


def is_user_call(op: ir.Op) -> bool:
    """A call to a function of the user's own code (differentiated through its source: srcgrad/usercode.py).
    srcgrad's own functions without a rule (runtime helpers that generated code, differentiated again, calls) and
    library functions without one (scipy's, numpy's Python functions) are opaque instead."""
    return op.rule is None and op.form.kind == "call" and usercode.is_user_function(op.callee)


def _is_srcgrad_function(func: Any) -> bool:
    module = getattr(func, "__module__", "") or ""
    return module == "srcgrad" or module.startswith("srcgrad.")


def bind_call(op: ir.Op) -> dict[str, Any]:
    """Parameter name -> operand for a call to a user function (defaults filled in as constants)."""
    sig = codereading.signature_of(op.callee)
    bound = sig.bind(*op.args, **dict(op.kwargs))
    out = {}
    for name, param in sig.parameters.items():
        if name in bound.arguments:
            out[name] = bound.arguments[name]
        elif param.default is not param.empty:
            out[name] = ir.Const(param.default)
        elif param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            out[name] = () if param.kind is param.VAR_POSITIONAL else {}
    for name, param in sig.parameters.items():  # what *args and **kwargs gather: a tuple or dict of operands
        if param.kind is param.VAR_POSITIONAL:
            out[name] = tuple(out[name])
        elif param.kind is param.VAR_KEYWORD:
            out[name] = dict(out[name])
    return out


def gathered(value: Any) -> list:
    """The operands a helper's ``*args`` (a tuple) or ``**kwargs`` (a dict) gathers; ``[value]`` for a parameter."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _call_arg_kinds(op: ir.Op, kind: Any) -> tuple[str, ...]:
    return tuple(ARRAY if isinstance(v, (tuple, dict)) else kind(v) if not (isinstance(v, ir.Const) and v.text is None)
                 else const_kind(v) for v in bind_call(op).values())


# --- activity ----------------------------------------------------------------------------------------------------


def diff_operands(fn: ir.Function, op: ir.Op) -> list[tuple[str, ir.Operand]]:
    """(parameter, operand) pairs through which a gradient can flow."""
    if op.form.kind == "copy":
        return [("x", op.args[0])]
    if op.form.kind == "append":
        return [("list", op.args[0]), ("value", op.args[1])]
    if op.rule is None:
        return [(f"arg{i}", a) for i, a in enumerate(op.operands())]
    if op.rule.nondiff:
        return []
    params = bind_params(fn, op)
    out = []
    for name in op.rule.wrt:
        value = params.get(name)
        if isinstance(value, tuple):  # a variadic parameter: one operand per element
            out.extend((name, v) for v in value)
        elif value is not None:
            out.append((name, value))
    return out


def undifferentiated_operands(fn: ir.Function, op: ir.Op) -> list[tuple[str, ir.Operand]]:
    """(parameter, operand) pairs of a rule's parameters that are neither differentiated (``wrt``) nor declared
    ``discrete``: the result may depend on them smoothly, so a differentiated value there must be refused."""
    if op.rule is None or op.rule.nondiff or op.form.kind in ("copy", "append"):
        return []
    out = []
    for name, value in bind_params(fn, op).items():
        if name in op.rule.wrt or name in op.rule.discrete:
            continue
        for v in value if isinstance(value, tuple) else (value,):
            out.extend((name, a) for a in (v.operands() if isinstance(v, ir.Index) else [v]))
    return out


def _takes_undifferentiated(rule: Any) -> bool:
    return rule is not None and not rule.nondiff and any(
        p not in rule.wrt and p not in rule.discrete for p in rule.signature.parameters)


def check_undifferentiated(fn: ir.Function, ops: list[ir.Op], varied: set[str]) -> None:
    """Refuse a differentiated value entering a parameter its rule does not differentiate (``np.var``'s ``ddof``,
    ``np.einsum``'s subscripts when given as an array) where the result reaches the output through differentiable
    operations: its gradient would be silently dropped. Values computed from such a result count as depending on
    the differentiated value too."""
    if not any(_takes_undifferentiated(op.rule) for op in ops):
        return  # the common case: no rule here has such a parameter
    edges = {id(op): diff_operands(fn, op) + undifferentiated_operands(fn, op) for op in ops}
    depends = _depending(ops, lambda op: edges[id(op)], set(varied))
    reaching = _reaching(ops, lambda op: edges[id(op)], _returned(fn))
    for op in ops:
        if op.target not in reaching:
            continue
        for name, a in undifferentiated_operands(fn, op):
            if isinstance(a, ir.Var) and a.name in depends:
                raise NoRuleError(
                    f"a differentiated value is passed as `{name}` of {op.rule.name}, and srcgrad does not "
                    f"differentiate {op.rule.name} with respect to `{name}`: its gradient would be lost",
                    location(fn, op),
                    hint=f"pass a value that does not depend on the differentiated arguments as `{name}`; for a "
                    "rule of your own, add it to defgrad's wrt=, or to discrete= if the result is piecewise "
                    "constant in it",
                )


def analyse_activity(fn: ir.Function, wrt: list[str], facts: Facts) -> Facts:
    """``facts`` with what is varied (depends on ``wrt``) and useful (reaches a returned value through
    differentiable operations); refuses what no rule differentiates where a gradient would flow through it."""
    ops = list(ir.walk_ops(fn.body))
    varied = _varied_values(fn, ops, set(wrt))
    useful = _useful_values(fn, ops, varied)
    facts = replace(facts, varied=varied, useful=useful)
    check_undifferentiated(fn, ops, varied)
    check_opaque_methods(fn, ops, facts)
    for op in ops:
        if facts.is_active(op.target) and (_sequence_arithmetic(op, facts.kinds) or _sums_sequences(op, facts.kinds)):
            raise _sequence_refusal(fn, op)
        if facts.is_active(op.target) and is_user_call(op):
            _check_gathered(fn, op, varied)
            _check_nested_lists(fn, op, varied, facts.kinds)
        if facts.is_active(op.target) and op.rule is None and op.form.kind not in ("copy", "append") \
                and not is_user_call(op):
            raise _no_rule(fn, op)
    return facts


def _sequence_arithmetic(op: ir.Op, kinds: dict[str, str]) -> bool:
    """``[a] + [b]``, ``[a] * 2``, ``(x,) + t``: an operator with a list or tuple operand whose other operand is a
    list, tuple or number — or may be one (kind ``A``: a parameter, an item of a list, a value an opaque call
    returned) — so Python may join or repeat the sequences (with an array as the other operand, numpy's elementwise
    arithmetic runs instead; the kinds cannot tell which before the call)."""
    if op.form.kind != "binop" or op.form.symbol not in ("+", "*"):
        return False
    operand_kinds = sorted(kinds.get(a.name, ARRAY) if isinstance(a, ir.Var) else _constant_kind(a)
                           if isinstance(a, ir.Const) else ARRAY for a in op.args)
    # (other mixes, a list times a list, are Python's TypeError: they run and fail as in Python)
    if op.form.symbol == "+":
        return operand_kinds in ([ARRAY, SEQUENCE], [SEQUENCE, SEQUENCE])
    return operand_kinds in ([ARRAY, SEQUENCE], [SEQUENCE, SCALAR])


_AN_ARRAY = "array"  # a constant known to be an array: numpy's arithmetic, never Python's sequence arithmetic


def _sequence_refusal(fn: ir.Function, op: ir.Op) -> NoRuleError:
    if op.form.kind == "binop":
        what = (f"`{op.form.symbol}` of a list or tuple {'joins' if op.form.symbol == '+' else 'repeats'} it when "
                "the other operand is a list, tuple or int (Python's sequence arithmetic), which it is or may be here")
    else:
        what = "`sum` of lists or tuples joins them (Python's sum adds with `+`: sequence arithmetic)"
    return NoRuleError(
        f"{what}, and a differentiated value is in them", location(fn, op),
        hint="build the sequence with its elements ([a, b, c]) or make arrays and use np.concatenate / np.tile "
             "(np.asarray(...) for numpy's elementwise arithmetic)",
    )


def _sums_sequences(op: ir.Op, kinds: dict[str, str]) -> bool:
    """``sum(rows, [])``, ``sum([[x], [y]], start)``: Python's ``sum`` adds with ``+``, which joins lists when the
    start or the items are lists or tuples."""
    if op.rule is None or op.rule.func is not builtins.sum or not op.args:
        return False
    items, start = op.args[0], op.args[1] if len(op.args) > 1 else dict(op.kwargs).get("start")
    holds = isinstance(items, ir.Var) and kinds.get(f"{items.name}:elements") == SEQUENCE
    return holds or (start is not None and (kinds.get(start.name, ARRAY) if isinstance(start, ir.Var)
                                            else _constant_kind(start)) == SEQUENCE)


def _constant_kind(c: ir.Const) -> str:
    """What a constant is to Python's ``+`` and ``*``: a tuple or list (``(3.0,)``, a global tuple) is a sequence,
    an ndarray an array (a global's kind is what the call-time guards check: a change regenerates)."""
    if isinstance(c.value, (tuple, list)):
        return SEQUENCE
    return _AN_ARRAY if isinstance(c.value, np.ndarray) else const_kind(c)


def _varied_values(fn: ir.Function, ops: list[ir.Op], varied: set[str]) -> set[str]:
    """``varied`` and every value computed from one through an operand a gradient can flow through."""
    return _depending(ops, lambda op: diff_operands(fn, op), varied)


def _useful_values(fn: ir.Function, ops: list[ir.Op], varied: set[str]) -> set[str]:
    """The returned values, and the operands a gradient flows to from a useful varied value."""
    return _reaching(ops, lambda op: diff_operands(fn, op), _returned(fn), through=varied)


def _returned(fn: ir.Function) -> set[str]:
    return {s.value.name for s in ir.walk(fn.body) if isinstance(s, ir.Return) and isinstance(s.value, ir.Var)}


def _depending(ops: list[ir.Op], edges: Callable, names: set[str]) -> set[str]:
    """``names`` and the targets of ops with an operand (``edges(op)``: (parameter, operand) pairs) among them, to
    a fixpoint (``names`` is extended)."""
    changed = True
    while changed:
        changed = False
        for op in ops:
            if op.target not in names and any(isinstance(a, ir.Var) and a.name in names for _, a in edges(op)):
                names.add(op.target)
                changed = True
    return names


def _reaching(ops: list[ir.Op], edges: Callable, names: set[str], through: set[str] | None = None) -> set[str]:
    """``names`` and the operands (``edges(op)``) of ops whose targets are among them (and in ``through``, when
    given), to a fixpoint (``names`` is extended)."""
    changed = True
    while changed:
        changed = False
        for op in reversed(ops):
            if op.target not in names or (through is not None and op.target not in through):
                continue
            for _, a in edges(op):
                if isinstance(a, ir.Var) and a.name not in names:
                    names.add(a.name)
                    changed = True
    return names


def _check_gathered(fn: ir.Function, op: ir.Op, varied: set[str]) -> None:
    """A differentiated value passed into a helper's ``*args`` or ``**kwargs`` is refused: gradients flow to named
    parameters."""
    for name, value in bind_call(op).items():
        if not isinstance(value, (tuple, dict)):
            continue
        if any(isinstance(v, ir.Var) and v.name in varied for v in gathered(value)):
            star = "*" if isinstance(value, tuple) else "**"
            raise NoRuleError(
                f"a differentiated value is passed into {star}{name} of {op.form.symbol}: srcgrad differentiates "
                "helpers with respect to their named parameters", location(fn, op),
                hint=f"give the value a parameter of its own in {op.form.symbol}")


def _check_nested_lists(fn: ir.Function, op: ir.Op, varied: set[str], kinds: dict[str, str]) -> None:
    """A list of lists carrying a derivative, passed to a helper: the helper's kinds know it is a list, not that its
    items are lists (``n[0] + n[1]`` there would be taken for numpy's ``+``), so it is refused."""
    for a in op.operands():
        if isinstance(a, ir.Var) and a.name in varied and kinds.get(f"{a.name}:elements") == SEQUENCE:
            raise NoRuleError(
                f"a list or tuple holding lists or tuples, with a differentiated value in them, is passed to "
                f"{op.form.symbol}: srcgrad does not follow the kinds of the inner lists into a helper",
                location(fn, op), hint="pass the inner lists as separate arguments, or make them arrays (np.array)")


def check_opaque_methods(fn: ir.Function, ops: list[ir.Op], facts: Facts) -> None:
    """A method srcgrad has no rule for (``xs.sort()``, ``x.fill(0.0)``, ``xs.extend(ys)``) may change the value it
    is called on: refuse it on a differentiated value, with a differentiated argument on a value the result depends
    on (it may keep it there), and on a value whose gradient code reads it (the reverse sweep would read the changed
    value). On other values (``"{}".format(v)``, ``logger.debug("%s", v)``, a local logger) it runs as written."""
    opaque = [op for op in ops if op.form.kind == "method" and op.rule is None and isinstance(op.args[0], ir.Var)]
    if not opaque:
        return
    shared = _copy_groups(ops)
    read_by_gradient = {a.name for op in ops if facts.is_active(op.target) for a in op.operands()
                        if isinstance(a, ir.Var)}
    read_by_result = {a.name for op in ops if op.target in facts.useful and op not in opaque
                      for a in op.operands() if isinstance(a, ir.Var)}
    for op in opaque:
        group = shared.get(op.args[0].name, {op.args[0].name})
        problem = _opaque_problem(fn, op, facts, group & read_by_result, group & read_by_gradient - {op.target})
        if problem is not None:
            raise NoRuleError(problem, location(fn, op),
                              hint="call a numpy function with a rule instead (np.sort(x) for x.sort()), build a new "
                                   "value instead of changing one, or call the method on a constant")


def _opaque_problem(fn: ir.Function, op: ir.Op, facts: Facts, read_by_result: set, read_by_gradient: set) -> str | None:
    """Why a method without a rule cannot run here (None: it can). ``read_by_result``/``read_by_gradient``: the
    names of its receiver's object the result or the gradient code reads."""
    receiver, name = op.args[0].name, f"`.{op.form.symbol}()`"
    if receiver in facts.varied:
        return f"srcgrad has no rule for the method {name}, called here on a differentiated value"
    if read_by_result and any(isinstance(a, ir.Var) and a.name in facts.varied for a in op.operands()[1:]):
        return (f"the method {name} gets a differentiated value here, and srcgrad cannot tell whether it "
                f"keeps it in `{_user_name(fn, receiver)}`, which the result depends on")
    if read_by_gradient:
        return f"the method {name} may change `{_user_name(fn, receiver)}`, which the gradient reads"
    return None


def _copy_groups(ops: list[ir.Op]) -> dict[str, set[str]]:
    """Names joined by copies (``y = x``, loop headers, joins): the same object under several names."""
    group: dict[str, set[str]] = {}
    for op in ops:
        if op.form.kind == "copy" and isinstance(op.args[0], ir.Var):
            merged = group.get(op.target, {op.target}) | group.get(op.args[0].name, {op.args[0].name})
            for n in merged:
                group[n] = merged
    return group


def _user_name(fn: ir.Function, version: str) -> str:
    """The user's name of an SSA version (``xs_2`` is ``xs``), when it is one."""
    base = version
    while base not in fn.local_names and "_" in base:
        base = base.rsplit("_", 1)[0]
    return base if base in fn.local_names else version


def _no_rule(fn: ir.Function, op: ir.Op) -> SrcgradError:
    if op.form.kind == "fstring" or (op.form.kind == "binop" and op.form.symbol == "%"):
        return NoRuleError(
            "a differentiated value is formatted into a string here, and no derivative flows through a string",
            location(fn, op), hint="compute with the number itself; format it only for messages and logs",
        )
    if op.form.kind == "bound":
        return NoRuleError(
            "the value bound by `as` depends on differentiated values and the result depends on it: srcgrad "
            "differentiates no context manager or exception", location(fn, op),
            hint="compute the value inside the block from the differentiated values themselves",
        )
    if op.form.kind == "attr":
        return NoRuleError(
            f"srcgrad has no derivative rule for the attribute `.{op.form.symbol}` of a differentiated value",
            location(fn, op), hint="use the numpy function instead (e.g. np.transpose(x) for x.T, np.real(x))",
        )
    if op.form.kind == "method" and isinstance(op.args[0], ir.Const) and op.args[0].text is not None:
        receiver = op.args[0]
        return NoRuleError(
            f"`{receiver.text}` is not an array (it is a {type(receiver.value).__name__}): srcgrad has no "
            f"derivative rule for its method `.{op.form.symbol}()`", location(fn, op),
            hint="call a numpy function with a rule (np.sum, np.dot, the @ operator), or pass the object as an "
                 "argument: methods of your own classes are differentiated from their source",
        )
    if op.form.kind == "method":
        return NoRuleError(
            f"srcgrad has no derivative rule for the method `.{op.form.symbol}()`", location(fn, op),
            hint="call the numpy function with a rule instead (e.g. np.sum(x) for x.sum()), or wrap the call in "
                 "a function of your own and declare its derivative with @srcgrad.defgrad",
        )
    if op.form.kind == "boolop":
        return NoRuleError(
            f"a differentiated value flows through `{op.form.symbol}`", location(fn, op),
            hint="use an if/else statement or a conditional expression on a comparison",
        )
    if op.form.kind == "dict":
        return NoRuleError(
            "differentiating through this dict is not supported: srcgrad follows a dict through its items when "
            "its keys are constants, it is assigned to a name and read by key (a helper's dict: `r = helper(...)`)",
            location(fn, op),
            hint="build the dict with constant keys, assign it to a name and read its items with constant keys",
        )
    if op.form.kind in ("tuple", "list"):
        return NoRuleError(
            f"differentiating through a {op.form.kind} display is not supported yet", location(fn, op),
            hint="keep differentiated values in separate variables, or build an array with np.stack",
        )
    if op.form.kind == "subscript":
        return NoRuleError(
            f"a differentiated value is used inside the brackets of `{op.args[0]}[...]`, whose indexing builds a "
            "value srcgrad has no rule for", location(fn, op),
            hint="build the array with np.concatenate, np.stack or np.column_stack instead",
        )
    name = op.form.symbol or op.form.kind
    if op.form.kind == "call" and _is_srcgrad_function(op.callee):
        return NoRuleError(
            f"srcgrad cannot differentiate this line twice: the derivative of an operation on it calls srcgrad's "
            f"helper `{name}`, which has no derivative of its own", location(fn, op),
            hint="second derivatives (hessian, hvp, grad of grad) are not supported through this operation; write "
                 "it with operations whose derivatives are smooth (e.g. np.sqrt(np.sum(x * x)) for a 2-norm)",
        )
    if op.form.kind == "call" and (inspect.isroutine(op.callee) or isinstance(op.callee, np.ufunc)):
        # (a function of the user's own code would have been differentiated: this one is a library's)
        return NoRuleError(
            f"srcgrad has no derivative rule for `{name}` ({usercode.qualified_name(op.callee)}), a library "
            "function: srcgrad differentiates your own code and the functions it has rules for, never a library's "
            "source", location(fn, op), hint=_defgrad_example(name, op.callee),
        )
    return NoRuleError(
        f"srcgrad has no derivative rule for `{name}`", location(fn, op),
        hint=f"declare one with @srcgrad.defgrad({name}), or mark it with srcgrad.nondifferentiable "
        "if its result carries no gradient",
    )


def _defgrad_example(name: str, func: Any) -> str:
    """How to declare the derivative of ``func`` (called as ``name``), with its own parameters."""
    try:
        positional = [p.replace(annotation=p.empty) for p in codereading.signature_of(func).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        positional = []
    params = ", ".join(str(p) for p in positional) or "x"
    first = positional[0].name if positional else "x"
    short = name.rsplit(".", 1)[-1]
    return (f"declare its derivative, e.g. `@srcgrad.defgrad({name})` on `def {short}_grad(g, ans, {params}): "
            f"return <g times d{short}/d{first}>` (README: 'Your own derivative rules'), write it with numpy "
            "functions srcgrad has rules for, or mark it with srcgrad.nondifferentiable if its result carries no "
            "gradient")


# --- dead code ---------------------------------------------------------------------------------------------------


def eliminate_dead_code(fn: ir.Function, kinds: dict[str, str] | None = None) -> ir.Function:
    """A copy of ``fn`` without the ops whose values nothing reads and that :func:`droppable` lets go (``fn`` itself
    is left as it is). Without the ``kinds`` of the values, no op is taken to raise on its arrays."""
    def keep(op: ir.Op) -> bool:
        return not droppable(op, kinds)

    live = _live_names(fn, keep)
    body = ir.map_body(fn.body, lambda stmt: [stmt] if not isinstance(stmt, ir.Op) or stmt.target in live
                       or keep(stmt) else [])
    return replace(fn, body=body)


def _live_names(fn: ir.Function, keep: Any) -> set[str]:
    """The values the result, control flow, or a kept op reads (transitively)."""
    live = {a.name for stmt in ir.walk(fn.body) if not isinstance(stmt, ir.Op) for a in _reads(stmt)}
    ops = list(ir.walk_ops(fn.body))
    changed = True
    while changed:
        changed = False
        for op in reversed(ops):
            if op.target in live or keep(op):
                for a in op.operands():
                    if isinstance(a, ir.Var) and a.name not in live:
                        live.add(a.name)
                        changed = True
    return live


def droppable(op: ir.Op, kinds: dict[str, str] | None, shapes: dict[str, str] | None = None) -> bool:
    """May the op go when nothing reads its value? The one answer the dead-code pass and the forward sweep's live
    set (srcgrad/adjoint.py) both ask. Not when it has an effect, a run-time check, is marked kept, or may raise
    where the function would: a call without a rule, an append, Python's float arithmetic and the ``math``
    module on bad input (:func:`fails_on_bad_input`: ``math.log(-1)``, ``1 / 0``), numpy on shapes, axes, indices
    and matrices (:func:`may_raise_on_arrays`: ``np.linalg.cholesky`` of a matrix that is not positive definite).
    A copy, and numpy's elementwise functions of arrays of one shape, which only warn, may go."""
    if op.keep or op.effect or op.guarded:
        return False
    if op.form.kind == "copy":
        return True
    return op.rule is not None and op.form.kind != "append" and not fails_on_bad_input(op) \
        and not (kinds is not None and may_raise_on_arrays(op, kinds, shapes))


def may_raise_on_arrays(op: ir.Op, kinds: dict[str, str], shapes: dict[str, str] | None = None) -> bool:
    """Can the op raise because of what its arrays or lists hold (shapes that do not broadcast, an axis or index out
    of range, a matrix that is not positive definite)? Then an unused one is kept, so the gradient fails where the
    function fails: validation code (``np.linalg.cholesky(cov)`` on its own line) is code. An elementwise op or a
    reduction over all axes of one array cannot (numpy warns there), so a gradient still skips the value it does
    not need (``np.mean(r ** 2)``); nor can an elementwise op of arrays the ``shapes`` facts say share one shape
    (``np.tanh(x) ** 2 * np.exp(-x)``)."""
    if op.rule is None or op.form.kind in ("copy", "append"):
        return False
    arrays = [a for a in op.operands() if isinstance(a, ir.Var) and kinds.get(a.name, SCALAR) != SCALAR]
    elementwise = op.rule.forward == "elementwise"
    if len(arrays) > 1:
        return not (elementwise and shapes is not None and _one_shape(op, arrays, shapes))
    return bool(arrays) and not elementwise and not call_fact(op, "full_reduction", unbound=True)


def _one_shape(op: ir.Op, arrays: list[ir.Var], shapes: dict[str, str]) -> bool:
    """Do the op's array operands certainly share one shape (and no constant operand is an array or a list)?"""
    labels = {shapes.get(a.name) for a in arrays}
    return len(labels) == 1 and None not in labels \
        and not any(isinstance(a, ir.Const) and const_kind(a) != SCALAR for a in op.operands())


def fails_on_bad_input(op: ir.Op) -> bool:
    """Does the op raise on some inputs (where numpy would only warn)? Its rule says so (``raises=``: Python's float
    arithmetic ``1 / 0``, the ``math`` module, conversions to Python numbers, srcgrad's own checks). Such an op is
    kept even when its value is unused, so the gradient fails where the function fails."""
    if op.rule is None or op.form.kind in ("copy", "append"):
        return False
    return call_fact(op, "raises", unbound=True)


def _reads(stmt: ir.Statement) -> list[ir.Var]:
    return [v for v in stmt.header_reads() if isinstance(v, ir.Var)]


# --- shapes -----------------------------------------------------------------------------------------------------


def infer_shapes(fn: ir.Function, facts: Facts) -> dict[str, str]:
    """Which arrays certainly have the same shape: an elementwise operation whose array operands share a shape gives
    that shape (Python numbers do not change it); a copy keeps it; anything else gets a shape of its own. The adjoint
    stage then undoes broadcasting only where shapes can differ."""
    top = "?"
    shapes: dict[str, str] = {p: (SCALAR if facts.kinds.get(p) == SCALAR else f"param:{p}") for p in fn.params}
    ops = list(ir.walk_ops(fn.body))
    for _ in range(len(ops) + 2):  # a fixpoint: loop headers join the shapes that flow around the loop
        changed = False
        for op in ops:
            new = _op_shape(op, facts, shapes)
            old = shapes.get(op.target)
            merged = new if old is None or old == new else top
            if merged == top:
                merged = f"own:{op.target}"
            if merged != old:
                shapes[op.target] = merged
                changed = True
        if not changed:
            break
    return shapes


def _op_shape(op: ir.Op, facts: Facts, shapes: dict) -> str:
    if facts.kinds.get(op.target) == SCALAR:
        return SCALAR
    if op.form.kind == "copy":
        src = op.args[0]
        if isinstance(src, ir.Var):
            return shapes.get(src.name, f"own:{op.target}")
        return f"own:{op.target}" if not (isinstance(src, ir.Const) and src.value is None) else SCALAR
    if op.rule is not None and not op.rule.nondiff and op.rule.forward == "elementwise":
        arrays = {shapes.get(a.name) for a in op.operands() if isinstance(a, ir.Var)
                  and facts.kinds.get(a.name) != SCALAR}
        consts = [a for a in op.operands() if isinstance(a, ir.Const) and const_kind(a) != SCALAR]
        if len(arrays) == 1 and None not in arrays and not consts:
            return arrays.pop()
    return f"own:{op.target}"


def returns_view(fn: ir.Function, op: ir.Op) -> bool:
    """May the result of this call share memory with an argument? Its rule says so (``defgrad(..., view=...)``)."""
    rule = op.rule
    if rule is None or rule.nondiff or not rule.view:
        return False
    return rule.view is True or bool(rule.view(bind_params(fn, op)))
