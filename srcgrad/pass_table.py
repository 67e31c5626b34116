"""The pass table: the passes of srcgrad/passes.py and the write check of srcgrad/aliasing.py, in order, as one
list of named passes the driver runs (it sits above both: the alias analysis reads the passes' helpers).

In: a lowered function, the differentiated parameters, the arguments' kinds. Out: the function after the passes and
the facts they found (srcgrad.passes.Facts). ``SRCGRAD_DUMP=lower,kinds,...`` (or ``all``) prints the IR with the
facts on every bound name after each pass named.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import field, replace
from typing import Any

from srcgrad import aliasing, ir, layouts
from srcgrad.passes import Facts, analyse_activity, eliminate_dead_code, infer_kinds, infer_shapes
from srcgrad.records import record


@record(frozen=True)
class Request:
    """What a generation asks the passes about: the differentiated parameters, the arguments' kinds, and how to find
    the result kind of a call to a user function (``call_kind(func, arg_kinds)``)."""

    wrt: tuple[str, ...]
    arg_kinds: dict
    call_kind: Any = None
    arg_layouts: dict = field(default_factory=dict)  # array arguments' layouts (srcgrad/layouts.py)


@record(frozen=True)
class Pass:
    """A named pass: ``run(fn, facts, request)`` returns the function and the facts after it. A pass never changes
    the facts it is given; an analysis returns new facts, a rewrite (``dce``) a new function."""

    name: str
    run: Callable[[ir.Function, Facts, Request], tuple[ir.Function, Facts]]


def _kinds_pass(fn: ir.Function, facts: Facts, request: Request) -> tuple[ir.Function, Facts]:
    return fn, replace(facts, kinds=infer_kinds(fn, request.arg_kinds, request.call_kind))


def _inplace_pass(fn: ir.Function, facts: Facts, request: Request) -> tuple[ir.Function, Facts]:
    """Writes another name could see: refused, or given run-time checks (the ops' ``guard_*`` fields, on the
    pipeline's own copy of the IR); the facts name the values whose op is checked."""
    aliasing.check_writes(fn, facts.kinds, list(request.wrt), request.call_kind)
    return fn, replace(facts, checked=frozenset(op.target for op in ir.walk_ops(fn.body) if op.guarded))


def _dce_pass(fn: ir.Function, facts: Facts, request: Request) -> tuple[ir.Function, Facts]:
    return eliminate_dead_code(fn, facts.kinds), facts


def _activity_pass(fn: ir.Function, facts: Facts, request: Request) -> tuple[ir.Function, Facts]:
    return fn, analyse_activity(fn, list(request.wrt), facts)


def _shapes_pass(fn: ir.Function, facts: Facts, request: Request) -> tuple[ir.Function, Facts]:
    return fn, replace(facts, shapes=infer_shapes(fn, facts),
                       layouts=layouts.infer(fn, facts.kinds, request.arg_layouts))


# The passes, in order. ``inplace`` comes before ``dce``: an unused write still changes the object.
PASSES = (
    Pass("kinds", _kinds_pass),
    Pass("inplace", _inplace_pass),
    Pass("dce", _dce_pass),
    Pass("activity", _activity_pass),
    Pass("shapes", _shapes_pass),
)


def run_passes(fn: ir.Function, wrt: list[str], arg_kinds: dict[str, str],
               call_kind: Any = None) -> tuple[ir.Function, Facts]:
    """Run :data:`PASSES` in order; ``SRCGRAD_DUMP=lower,kinds,...`` (or ``all``) prints the IR, with the facts on
    each bound name, before the first pass (``lower``) and after each pass named."""
    dump = set(filter(None, os.environ.get("SRCGRAD_DUMP", "").split(",")))
    split = {p: layouts.split(k) for p, k in arg_kinds.items()}  # "A:nn": kind "A", layout "nn"
    request = Request(tuple(wrt), {p: k for p, (k, _) in split.items()}, call_kind,
                      {p: lay for p, (_, lay) in split.items() if lay is not None})
    facts = Facts()
    dump_ir("lower", fn, facts, dump)
    for p in PASSES:
        fn, facts = p.run(fn, facts, request)
        dump_ir(p.name, fn, facts, dump)
    return fn, facts


def dump_ir(name: str, fn: ir.Function, facts: Facts, dump: set[str]) -> None:
    if name in dump or "all" in dump:
        print(f"--- after {name} ---\n{ir.format_function(fn, facts.describe)}", file=sys.stderr)
