"""Passes: IR in, IR (or facts about it) out. Run as a visible table; ``SRCGRAD_DUMP=lower,dce`` prints the IR.

- ``kinds``: which values are Python numbers ("S", float paths: no numpy, no broadcasting helpers) and which may be
  arrays ("A"). Arguments get their kind from the first call; globals and closure variables are always "A" because
  they may change between calls.
- ``activity``: a value is *active* when it depends on a differentiated input (varied) and reaches the output
  through differentiable operations (useful). Only active operations get adjoint code.
- ``dce``: forward operations whose result reaches neither the output nor an active operation are removed
  (known primitives only; calls to unknown functions stay, they may have effects).
"""

from __future__ import annotations

import inspect
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srcgrad import ir
from srcgrad.errors import Location, NoRuleError, SrcgradError

SCALAR, ARRAY, SEQUENCE = "S", "A", "L"  # Python number, maybe-array, list or tuple


@dataclass
class Facts:
    """What the passes learned about a function, read by the adjoint stage."""

    kinds: dict[str, str] = field(default_factory=dict)
    varied: set[str] = field(default_factory=set)
    useful: set[str] = field(default_factory=set)
    shapes: dict[str, str] = field(default_factory=dict)  # values with the same symbol have the same shape

    def same_shape(self, a: str, b: str) -> bool:
        return a in self.shapes and self.shapes.get(a) == self.shapes.get(b)

    def kind(self, operand: ir.Operand) -> str:
        if isinstance(operand, ir.Var):
            return self.kinds.get(operand.name, ARRAY)
        if isinstance(operand, ir.Const):
            return const_kind(operand)
        return ARRAY

    def is_active(self, name: str) -> bool:
        return name in self.varied and name in self.useful


def const_kind(c: ir.Const) -> str:
    if c.live:
        return ARRAY
    return SCALAR if type(c.value) in (int, float, bool) else ARRAY


def location(fn: ir.Function, stmt) -> Location:
    line = getattr(stmt, "line", fn.first_line)
    return Location(fn.filename, line, getattr(stmt, "col", 0), fn.source_lines.get(line, ""))


def bind_params(fn: ir.Function, op: ir.Op) -> dict[str, ir.Operand]:
    """Map the rule's parameter names to the op's operands (defaults filled in as constants)."""
    rule = op.rule
    try:
        bound = rule.signature.bind(*op.args, **dict(op.kwargs))
    except TypeError as exc:
        raise SrcgradError(
            f"srcgrad's rule for {rule.name} does not accept these arguments ({exc})",
            location(fn, op),
            hint=f"call {rule.name} with the arguments its rule supports: {rule.signature}",
        ) from None
    params = {}
    for name, param in rule.signature.parameters.items():
        if name in bound.arguments:
            params[name] = bound.arguments[name]
        elif param.default is not param.empty:
            params[name] = ir.Const(param.default)
    return params


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
        for stmt in _walk_stmts(fn.body):
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
    return kinds


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
    if op.form.kind in ("tuple", "list", "append"):
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
    if op.rule.out_kind == "scalar":
        return SCALAR
    if op.rule.out_kind == "same":
        return SCALAR if all_scalar else ARRAY
    return ARRAY


def is_user_call(op: ir.Op) -> bool:
    """A call to a user's Python function (differentiated through its own source). srcgrad's own functions without
    a rule (runtime helpers that generated code, differentiated again, calls) are opaque instead."""
    return op.rule is None and op.form.kind == "call" and isinstance(op.callee, types.FunctionType) \
        and not _is_srcgrad_function(op.callee)


def _is_srcgrad_function(func: Any) -> bool:
    module = getattr(func, "__module__", "") or ""
    return module == "srcgrad" or module.startswith("srcgrad.")


def bind_call(op: ir.Op) -> dict[str, Any]:
    """Parameter name -> operand for a call to a user function (defaults filled in as constants)."""
    sig = inspect.signature(op.callee)
    bound = sig.bind(*op.args, **dict(op.kwargs))
    out = {}
    for name, param in sig.parameters.items():
        if name in bound.arguments:
            out[name] = bound.arguments[name]
        elif param.default is not param.empty:
            out[name] = ir.Const(param.default)
    return out


def _call_arg_kinds(op: ir.Op, kind: Any) -> tuple[str, ...]:
    return tuple(kind(v) if not (isinstance(v, ir.Const) and v.text is None) else const_kind(v)
                 for v in bind_call(op).values())


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
    depends, changed = set(varied), True
    while changed:
        changed = False
        for op in ops:
            if op.target not in depends and any(isinstance(a, ir.Var) and a.name in depends for _, a in edges[id(op)]):
                depends.add(op.target)
                changed = True
    reaching = {r.value.name for r in _walk_stmts(fn.body) if isinstance(r, ir.Return) and isinstance(r.value, ir.Var)}
    changed = True
    while changed:
        changed = False
        for op in reversed(ops):
            if op.target in reaching:
                for _, a in edges[id(op)]:
                    if isinstance(a, ir.Var) and a.name not in reaching:
                        reaching.add(a.name)
                        changed = True
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


def analyse_activity(fn: ir.Function, wrt: list[str], facts: Facts) -> None:
    varied = set(wrt)
    changed = True
    while changed:
        changed = False
        for op in ir.walk_ops(fn.body):
            if op.target in varied:
                continue
            if any(isinstance(a, ir.Var) and a.name in varied for _, a in diff_operands(fn, op)):
                varied.add(op.target)
                changed = True
    useful = set()
    returns = [s for s in _walk_stmts(fn.body) if isinstance(s, ir.Return)]
    for r in returns:
        if isinstance(r.value, ir.Var):
            useful.add(r.value.name)
    ops = list(ir.walk_ops(fn.body))
    changed = True
    while changed:
        changed = False
        for op in reversed(ops):
            if op.target not in useful or op.target not in varied:
                continue
            for _, a in diff_operands(fn, op):
                if isinstance(a, ir.Var) and a.name not in useful:
                    useful.add(a.name)
                    changed = True
    facts.varied, facts.useful = varied, useful
    check_undifferentiated(fn, ops, varied)
    for op in ops:
        if facts.is_active(op.target) and op.rule is None and op.form.kind not in ("copy", "append") \
                and not is_user_call(op):
            raise _no_rule(fn, op)


def _no_rule(fn: ir.Function, op: ir.Op) -> SrcgradError:
    if op.form.kind == "boolop":
        return NoRuleError(
            f"a differentiated value flows through `{op.form.symbol}`", location(fn, op),
            hint="use an if/else statement or a conditional expression on a comparison",
        )
    if op.form.kind == "dict":
        return NoRuleError(
            "differentiating through a dict display is not supported yet (a dict of parameters is: pass it as an "
            "argument)", location(fn, op),
            hint="keep differentiated values in separate variables; dicts in the body may hold what is not "
                 "differentiated, such as an auxiliary output",
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
    return NoRuleError(
        f"srcgrad has no derivative rule for `{name}`", location(fn, op),
        hint=f"declare one with @srcgrad.defgrad({name}), or mark it with srcgrad.nondifferentiable "
        "if its result carries no gradient",
    )


# --- dead code ---------------------------------------------------------------------------------------------------


def eliminate_dead_code(fn: ir.Function) -> ir.Function:
    live: set[str] = set()
    for stmt in _walk_stmts(fn.body):
        if isinstance(stmt, ir.Return):
            live.update(a.name for a in _reads(stmt))
    ops = list(ir.walk_ops(fn.body))
    changed = True
    while changed:
        changed = False
        for op in reversed(ops):
            if op.target in live or _keep(op):
                for a in op.operands():
                    if isinstance(a, ir.Var) and a.name not in live:
                        live.add(a.name)
                        changed = True
        for stmt in _walk_stmts(fn.body):
            for a in _reads(stmt):
                if not isinstance(stmt, ir.Op) and a.name not in live:
                    live.add(a.name)
                    changed = True
    fn.body = _filter(fn.body, live)
    return fn


def _keep(op: ir.Op) -> bool:
    return (op.rule is None and op.form.kind == "call") or op.form.kind == "append" or op.guard_shared or op.keep \
        or fails_on_bad_input(op)


_MAY_RAISE_ON_FLOATS = {"/", "//", "%", "**"}  # ZeroDivisionError, OverflowError on Python numbers


def fails_on_bad_input(op: ir.Op) -> bool:
    """Does the op raise on some inputs (where numpy would only warn)? Python's float arithmetic (``1 / 0``), the
    ``math`` module (``math.log(-1)``) and conversions to Python numbers do. Such an op is kept even when its value
    is unused, so the gradient fails where the function fails. ``x ** k`` with a constant whole ``k >= 0`` is not
    kept: it can only overflow (a value too large for a float), where its derivative, which the gradient computes,
    is still right."""
    if op.rule is None or op.form.kind in ("copy", "append"):
        return False
    if op.form.kind == "binop" and op.form.symbol in _MAY_RAISE_ON_FLOATS:
        k = op.args[1]
        whole_power = op.form.symbol == "**" and isinstance(k, ir.Const) and type(k.value) is int and k.value >= 0
        return not whole_power
    return getattr(op.callee, "__module__", None) == "math" or op.rule.out_kind == "scalar"


def _reads(stmt) -> list[ir.Var]:
    if isinstance(stmt, ir.Return):
        vals = [stmt.value]
    elif isinstance(stmt, ir.If):
        vals = [stmt.cond]
    elif isinstance(stmt, ir.For):
        vals = [stmt.iterable]
    elif isinstance(stmt, ir.While):
        vals = [stmt.cond]
    else:
        return []
    return [v for v in vals if isinstance(v, ir.Var)]


def _filter(body: list, live: set[str]) -> list:
    out = []
    for stmt in body:
        if isinstance(stmt, ir.Op):
            if stmt.target in live or _keep(stmt):
                out.append(stmt)
            continue
        if isinstance(stmt, ir.If):
            stmt.body, stmt.orelse = _filter(stmt.body, live), _filter(stmt.orelse, live)
        elif isinstance(stmt, ir.For):
            stmt.body = _filter(stmt.body, live)
        elif isinstance(stmt, ir.While):
            stmt.test, stmt.body = _filter(stmt.test, live), _filter(stmt.body, live)
        out.append(stmt)
    return out


def _walk_stmts(body: list):
    for stmt in body:
        yield stmt
        if isinstance(stmt, ir.If):
            yield from _walk_stmts(stmt.body)
            yield from _walk_stmts(stmt.orelse)
        elif isinstance(stmt, (ir.For,)):
            yield from _walk_stmts(stmt.body)
        elif isinstance(stmt, ir.While):
            yield from _walk_stmts(stmt.test)
            yield from _walk_stmts(stmt.body)


# --- shapes -----------------------------------------------------------------------------------------------------


def infer_shapes(fn: ir.Function, facts: Facts) -> None:
    """Which arrays certainly have the same shape: an elementwise operation whose array operands share a shape gives
    that shape (Python numbers do not change it); a copy keeps it; anything else gets a shape of its own. The adjoint
    stage then undoes broadcasting only where shapes can differ."""
    from srcgrad.rules.forward import kind_of  # the table of elementwise primitives

    top = "?"
    shapes: dict[str, str] = {p: (SCALAR if facts.kinds.get(p) == SCALAR else f"param:{p}") for p in fn.params}
    ops = list(ir.walk_ops(fn.body))
    for _ in range(len(ops) + 2):  # a fixpoint: loop headers join the shapes that flow around the loop
        changed = False
        for op in ops:
            new = _op_shape(op, facts, shapes, kind_of)
            old = shapes.get(op.target)
            merged = new if old is None or old == new else top
            if merged == top:
                merged = f"own:{op.target}"
            if merged != old:
                shapes[op.target] = merged
                changed = True
        if not changed:
            break
    facts.shapes = shapes


def _op_shape(op: ir.Op, facts: Facts, shapes: dict, kind_of: Any) -> str:
    if facts.kinds.get(op.target) == SCALAR:
        return SCALAR
    if op.form.kind == "copy":
        src = op.args[0]
        if isinstance(src, ir.Var):
            return shapes.get(src.name, f"own:{op.target}")
        return f"own:{op.target}" if not (isinstance(src, ir.Const) and src.value is None) else SCALAR
    if op.rule is not None and not op.rule.nondiff and kind_of(op.rule) == "elementwise":
        arrays = {shapes.get(a.name) for a in op.operands() if isinstance(a, ir.Var)
                  and facts.kinds.get(a.name) != SCALAR}
        consts = [a for a in op.operands() if isinstance(a, ir.Const) and const_kind(a) != SCALAR]
        if len(arrays) == 1 and None not in arrays and not consts:
            return arrays.pop()
    return f"own:{op.target}"


# --- in-place updates -------------------------------------------------------------------------------------------

# Operations whose result may share memory with an operand (numpy views) or with another name.
_VIEW_FORMS = ("subscript", "attr")
_FRESH_METHODS = ("copy", "astype", "sum", "mean", "dot", "prod", "max", "min", "std", "var", "cumsum", "cumprod",
                  "round", "clip", "repeat", "argsort", "argmax", "argmin", "flatten", "tolist", "item")


def check_inplace_updates(fn: ir.Function, facts: Facts) -> None:
    """``y += v`` on an array updates the array in place; srcgrad computes a new array instead. The two agree unless
    another name refers to the same array (``z = y``, a view such as ``y = x[1:]`` or ``y = x.T``): then refuse."""
    shared: set[str] = set()
    ops = list(ir.walk_ops(fn.body))
    for op in ops:
        if op.alias:
            shared.update({op.target, op.args[0].name})
        elif op.form.kind in _VIEW_FORMS or (op.form.kind == "method" and op.form.symbol not in _FRESH_METHODS):
            shared.add(op.target)
        elif op.form.kind == "call" and op.rule is not None and not isinstance(op.callee, np.ufunc) \
                and getattr(op.callee, "__name__", "") in ("reshape", "transpose", "ravel", "swapaxes", "moveaxis",
                                                           "squeeze", "expand_dims", "broadcast_to", "diagonal",
                                                           "flip", "fliplr", "flipud", "asarray", "real"):
            shared.add(op.target)
    changed = True
    while changed:  # compiler copies (loop headers, joins) keep the object: sharing flows along them
        changed = False
        for op in ops:
            if op.form.kind == "copy" and isinstance(op.args[0], ir.Var) and op.args[0].name in shared \
                    and op.target not in shared:
                shared.add(op.target)
                changed = True
    for op in ops:
        if op.inplace and facts.kinds.get(op.target) != SCALAR:
            updated = op.args[0]
            if isinstance(updated, ir.Var) and updated.name in shared:
                # Only an ndarray is updated in place (a Python or numpy scalar is rebound): the generated code
                # checks the value's type where the update happens and refuses an array (runtime.check_unshared).
                op.guard_shared = True


# --- the pass table ----------------------------------------------------------------------------------------------


def run_passes(fn: ir.Function, wrt: list[str], arg_kinds: dict[str, str],
               call_kind: Any = None) -> tuple[ir.Function, Facts]:
    """Run the pass table in order; dump the IR after each pass named in SRCGRAD_DUMP."""
    dump = set(filter(None, os.environ.get("SRCGRAD_DUMP", "").split(",")))
    facts = Facts()
    _dump("lower", fn, dump)
    table = [
        ("kinds", lambda: facts.kinds.update(infer_kinds(fn, arg_kinds, call_kind))),
        ("inplace", lambda: check_inplace_updates(fn, facts)),  # before dce: an unused update still aliases
        ("dce", lambda: eliminate_dead_code(fn)),
        ("activity", lambda: analyse_activity(fn, wrt, facts)),
        ("shapes", lambda: infer_shapes(fn, facts)),
    ]
    for name, run in table:
        run()
        _dump(name, fn, dump)
    return fn, facts


def _dump(name: str, fn: ir.Function, dump: set[str]) -> None:
    if name in dump or "all" in dump:
        print(f"--- after {name} ---\n{fn}", file=sys.stderr)
