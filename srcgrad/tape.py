"""Tape planning: what the forward sweep records inside loops, so that the reverse sweep can read it back.

In: the primal IR (:mod:`srcgrad.ir`), the pass facts and the scope of generated names. Out: the plan the reverse
sweep makes while it is generated (read afterwards by the forward sweep: both sweeps are generated from one plan),
and the ``tape.append``/``tape.pop`` statements.
What holds:
- straight-line code needs no tape: SSA versions keep every value the reverse sweep reads. Inside loops, each
  straight-line segment pushes (once per execution) exactly the values its reverse reads, each branch inside a loop
  pushes its condition, each loop inside a loop pushes its trip count (or the range it walked), each ``with`` that is
  entered again pushes what its context expression reads; the reverse sweep pops them in reverse order;
- a loop segment's scalar (Python number) operations are recomputed from their operands instead of recorded, so the
  tape holds only the segment's inputs (:meth:`TapePlan.plan_records`);
- values that are the same in every iteration (:attr:`TapePlan.invariant`) and loop targets the reverse loop sets
  itself (:attr:`TapePlan.restored`) are never recorded.
"""

from __future__ import annotations

import ast
from typing import Any

from srcgrad import codegen, ir, runtime
from srcgrad.binding import SCALAR
from srcgrad.passes import Facts


class TapePlan:
    def __init__(self, fn: ir.Function, facts: Facts, scope: codegen.Scope):
        self.facts, self.scope = facts, scope
        self._name: str | None = None
        self.loop_defined = loop_defined(fn.body)  # values (re)defined inside a loop
        self.invariant = loop_invariant(fn.body, self.loop_defined)  # same value in every iteration
        self.restored: set[str] = set()  # loop variables the reverse loops set themselves
        self.pushes: dict[int, list[str]] = {}  # id(first op of a segment) -> names its reverse reads
        self.pushed_conditions: set[int] = set()  # ids of If/Try statements whose condition or path is recorded
        self.loop_counts: dict[int, str] = {}  # id(loop) -> trip-count variable ("" until one is needed)
        self.lengths: dict[tuple[int, str], str] = {}  # (id(op), list name) -> its recorded length
        self.with_records: dict[int, list[str]] = {}  # id(With in a loop) -> what its context expression reads

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self.scope.local("tape")
        return self._name

    @property
    def used(self) -> bool:
        return self._name is not None

    # --- statements ------------------------------------------------------------------------------------------

    def push(self, names: list[str]) -> ast.stmt:
        value = codegen.name(names[0]) if len(names) == 1 else ast.Tuple(
            elts=[codegen.name(n) for n in names], ctx=ast.Load())
        return self.call("append", [value])

    def pop_into(self, names: list[str]) -> ast.stmt:
        target = ast.Name(id=names[0], ctx=ast.Store()) if len(names) == 1 else ast.Tuple(
            elts=[ast.Name(id=n, ctx=ast.Store()) for n in names], ctx=ast.Store())
        return ast.Assign(targets=[target], value=self.pop(), lineno=0)

    def call(self, method: str, args: list) -> ast.stmt:
        func = ast.Attribute(value=codegen.name(self.name), attr=method, ctx=ast.Load())
        return ast.Expr(value=ast.Call(func=func, args=args, keywords=[]))

    def pop(self) -> ast.expr:
        return codegen.template_expr("TAPE.pop()", TAPE=self.name)

    # --- the plan --------------------------------------------------------------------------------------------

    def to_record(self, names: set[str]) -> set[str]:
        """Of ``names`` (read by a reverse sweep inside a loop), those the forward sweep must record."""
        return names & self.loop_defined - self.restored - self.invariant

    def plan_records(self, ops: list[ir.Op], reads: set[str]) -> tuple[list[str], list[ir.Op]]:
        """Which values a loop segment records per iteration, and which its reverse recomputes instead: scalar
        (Python number) operations of the segment itself are recomputed from their operands, so the tape holds
        only the segment's inputs (a float per iteration for a scalar recurrence, as a hand-written sweep would)."""
        defs = {op.target: op for op in ops}
        recompute: set[str] = set()
        pushed: set[str] = set()
        todo = sorted(reads)
        while todo:
            name = todo.pop()
            if name in recompute or name in pushed:
                continue
            op = defs.get(name)
            if op is not None and self._recomputable(op):
                recompute.add(name)
                todo.extend(self.to_record({a.name for a in op.operands() if isinstance(a, ir.Var)}))
            else:
                pushed.add(name)
        return sorted(pushed), [op for op in ops if op.target in recompute]

    def _recomputable(self, op: ir.Op) -> bool:
        return (op.rule is not None and not op.rule.nondiff and self.facts.kinds.get(op.target) == SCALAR
                and op.form.kind not in ("append", "copy") and op.callee is not runtime.setitem
                and all(self.facts.kind(a) == SCALAR for a in op.operands()))

    def loop_count(self, loop: Any) -> str:
        """The variable counting the iterations of ``loop`` (made when first asked for)."""
        if not self.loop_counts.get(id(loop)):
            self.loop_counts[id(loop)] = self.scope.local("n_iter")
        return self.loop_counts[id(loop)]

    def length_of(self, op: ir.Op, list_name: str) -> str:
        """The variable recording the length of list ``list_name`` right after ``op`` (in a loop, it is recorded
        as any value defined there)."""
        key = (id(op), list_name)
        if key not in self.lengths:
            self.lengths[key] = self.scope.local(f"{list_name}_len")
            if op.target in self.loop_defined:
                self.loop_defined.add(self.lengths[key])
        return self.lengths[key]


def loop_defined(body: list) -> set[str]:
    """The values defined inside a loop (targets of its ops, loop targets), at any depth."""
    names: set[str] = set()
    for stmt in ir.walk(body):
        if isinstance(stmt, ir.For):
            names.add(stmt.target)
        if isinstance(stmt, (ir.For, ir.While)):
            names.update(op.target for block in stmt.blocks() for op in ir.walk_ops(block))
    return names


def loop_invariant(body: list, defined_in_loops: set[str]) -> set[str]:
    """Values computed inside loops from values defined before any loop, by deterministic primitives: they are the
    same in every iteration, so the tape never records them."""
    defs: dict[str, list[ir.Op]] = {}
    for op in ir.walk_ops(body):
        defs.setdefault(op.target, []).append(op)
    invariant: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, ops in defs.items():
            if name in invariant or name not in defined_in_loops:
                continue
            if all(_deterministic(op) and all(not isinstance(a, ir.Var) or a.name not in defined_in_loops
                                              or a.name in invariant for a in op.operands()) for op in ops):
                invariant.add(name)
                changed = True
    return invariant


def _deterministic(op: ir.Op) -> bool:
    return op.rule is not None and op.form.kind not in ("append", "copy") and op.callee is not runtime.setitem
