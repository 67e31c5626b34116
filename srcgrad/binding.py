"""Binding: what every pass and builder asks of an op first — the kinds of values, a constant's kind, the rule's
parameters bound to the op's operands, and a call's facts.

In: IR ops (srcgrad/ir.py) and their rules (srcgrad/rules/registry.py). Out: kinds ("S" a Python number, "A" maybe an
array, "L" a list or tuple), the operands under the rule's parameter names (defaults filled in as constants), a
location in the user's file. Below the passes (srcgrad/passes.py) and the layouts (srcgrad/layouts.py), which both
read it; it reads neither.
"""

from __future__ import annotations

import inspect
from typing import Any

from srcgrad import ir
from srcgrad.errors import Location, SrcgradError

SCALAR, ARRAY, SEQUENCE = "S", "A", "L"  # Python number, maybe-array, list or tuple


class _SequenceOfSequences(str):
    """The kind ``"L"`` (equal to it everywhere) of a helper's result that may hold lists or tuples
    (``return [[x], [y]]``): its caller's items of it are sequences too (srcgrad.passes.infer_kinds)."""


SEQUENCE_OF_SEQUENCES = _SequenceOfSequences(SEQUENCE)


def const_kind(c: ir.Const) -> str:
    if c.live:
        return ARRAY
    return SCALAR if type(c.value) in (int, float, bool) else ARRAY


def location(fn: ir.Function, stmt) -> Location:
    line = getattr(stmt, "line", fn.first_line)
    return Location(fn.filename, line, getattr(stmt, "col", 0) + fn.col_offset, fn.source_lines.get(line, ""))


def bind_params(fn: ir.Function, op: ir.Op) -> dict[str, ir.Operand]:
    """Map the rule's parameter names to the op's operands (defaults filled in as constants). Every pass asks this
    of every op, some several times: the binding is kept on the op for as long as its rule and operands (tuples)
    are the very ones it was made of."""
    held = op.__dict__.get("_binding")
    if held is not None and held[0] is op.args and held[1] is op.kwargs and held[2] is op.rule:
        return dict(held[3])
    params = _bind(fn, op)
    op.__dict__["_binding"] = (op.args, op.kwargs, op.rule, params)
    return dict(params)


def _bind(fn: ir.Function, op: ir.Op) -> dict[str, ir.Operand]:
    rule = op.rule
    positional = _positionally_bound(op)  # (defaults as constants)
    if positional is not None:
        return positional
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
        elif param.kind is param.VAR_POSITIONAL:
            params[name] = ()  # no extra positional arguments (np.gradient(f) has no spacing)
    return params


def call_fact(op: ir.Op, fact: str, unbound: bool) -> bool:
    """A fact of the op's rule that may depend on the call (``view``, ``full_reduction``, ``raises``: see
    :class:`~srcgrad.rules.registry.Rule`); ``unbound`` when the arguments do not fit the rule (refused where the
    call is bound)."""
    value = getattr(op.rule, fact)
    if isinstance(value, bool):
        return value
    params = _positionally_bound(op, lambda default: default)  # (defaults as bind gives them: wrapped below)
    if params is None:
        try:
            bound = op.rule.signature.bind(*op.args, **dict(op.kwargs))
        except TypeError:
            return unbound
        bound.apply_defaults()
        params = bound.arguments
    return op.rule.holds(fact, {k: v if isinstance(v, (ir.Var, ir.Const, tuple)) else ir.Const(v)
                                for k, v in params.items()})


def _positionally_bound(op: ir.Op, default_value: Any = ir.Const) -> dict[str, Any] | None:
    """What ``signature.bind`` and ``apply_defaults`` give for a call of operands by position only to a rule whose
    parameters all take a position (each default as ``default_value`` makes it); None for any other call (then bind
    it)."""
    plan = None if op.kwargs else _positional_plan(op.rule.signature)
    if plan is None or len(op.args) > len(plan):
        return None
    params = dict(zip([name for name, _ in plan], op.args))
    for name, default in plan[len(op.args):]:
        if default is inspect.Parameter.empty:
            return None  # (a required parameter missing: bind says so)
        params[name] = default_value(default)
    return params


_PLANS: dict[int, tuple[inspect.Signature, tuple | None]] = {}


def _positional_plan(signature: inspect.Signature) -> tuple | None:
    """(name, default) of each parameter when all of them can be given by position (no ``*args``, no keyword-only),
    else None: then binding positional operands is a zip, which a long function does for every op several times."""
    known = _PLANS.get(id(signature))
    if known is not None and known[0] is signature:
        return known[1]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = signature.parameters.values()
    plan = tuple((p.name, p.default) for p in params) if all(p.kind in positional for p in params) else None
    _PLANS[id(signature)] = (signature, plan)  # (the signature kept alive: its id stays its own)
    return plan
