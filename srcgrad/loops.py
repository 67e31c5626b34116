"""Loop reversal: a loop of the primal IR in; its forward sweep (with what its reverse needs counted or recorded) and
its reverse sweep out, as items of the gradient program (srcgrad/program.py).

In: an :class:`srcgrad.ir.For` or :class:`srcgrad.ir.While` and the gradient builder (srcgrad/adjoint.py) that
generates the loop's body, its adjoints (srcgrad/accumulate.py) and its tape plan (srcgrad/tape.py).
What holds:
- a ``for`` loop iterates over a range (the lowering makes it so) and is reversed by walking that range backwards;
  with a ``break``, only the iterations that ran (a counted prefix); inside another loop the range walked is recorded;
- a ``while`` loop is reversed by counting its iterations (recorded inside another loop) and running that many;
- every iteration's reverse starts from the same state: an adjoint that accumulates across iterations holds a value
  on entry, one used up by a definition in the body is zero for the iteration before;
- invariant operations at the top of a top-level loop's body (the same operands in every iteration) have their
  reverse run once, after the loop's, on the adjoint summed over the iterations (:meth:`LoopReversal.deferred_reverse`);
- a product ``W @ x`` at the top of a top-level loop's body, ``W`` defined before the loop and ``x`` changing: the
  reverse loop records each step's adjoint of the product and ``x`` in two lists, and ``W``'s adjoint is their sum
  of outer products computed once after the loop, as one matrix product of the stacked steps
  (:meth:`LoopReversal._stacked_products`, ``runtime.matmul_steps_grad``: step by step where the steps' shapes do
  not stack).
"""

from __future__ import annotations

import ast
from typing import Any

from srcgrad import codegen, generated, ir, layouts, runtime
from srcgrad.binding import bind_params
from srcgrad.passes import bind_call, is_user_call
from srcgrad.program import Block, Comment
from srcgrad.records import record


@record(frozen=True)
class StackedProduct:
    """``op`` is ``matrix @ other`` (``left``) or ``other @ matrix``; ``lists``: the names of the lists the reverse
    loop records the steps' adjoints of the product and values of ``other`` in."""

    op: ir.Op
    matrix: str
    other: ir.Var
    left: bool
    lists: tuple[str, str]


class LoopReversal:
    def __init__(self, builder: Any):
        self.builder = builder
        self.deferred: set[str] = set()  # invariant values whose reverse runs once after their loop's reverse
        self.stacked: dict[int, StackedProduct] = {}  # id(op) -> its product, summed after its loop

    # --- reverse sweep ---------------------------------------------------------------------------------------

    def reverse(self, loop: ir.For | ir.While, depth: int) -> list:
        b = self.builder
        adjoints, tape = b.adjoints, b.tape
        deferred = [op for op in loop.body if isinstance(op, ir.Op) and not depth and op.target in tape.invariant
                    and b.facts.is_active(op.target) and op.form.kind != "copy" and not is_user_call(op)]
        self.deferred.update(op.target for op in deferred)
        written = self._written_adjoints(loop.body)
        # A loop-carried variable with a gradient on entry that the body rebinds (even to a constant) loses it.
        if not written and not any(adjoints.has_gradient(v) for v in loop.carried):
            return []
        products = self._stacked_products(loop) if not depth else []
        self.stacked.update((id(p.op), p) for p in products)
        pre = self._entry_values(loop, written - {p.matrix for p in products})
        pre += [codegen.assign(name, ast.List(elts=[], ctx=ast.Load())) for p in products for name in p.lists]
        start = set(adjoints.assigned)
        if isinstance(loop, ir.For):
            tape.restored.add(loop.target)  # the reverse loop walks the range backwards: no need to record it
        body = b.reverse_block(loop.body, depth + 1)
        # Every iteration's reverse starts from the same state (see the module docstring).
        body.extend(adjoints.zero(name) for name in sorted(start) if name not in adjoints.assigned)
        adjoints.assigned = start
        header = Comment(f"grad of the loop at line {loop.line}: its iterations in reverse", loop.line)
        walked, block = self._reverse_walk(loop, depth, body)
        tape.loop_counts.setdefault(id(loop), "")
        return pre + [header, block] + self._summed_products(products) + self.deferred_reverse(deferred, walked)

    # --- a loop-invariant matrix's adjoint: one product after the loop -----------------------------------------

    def _stacked_products(self, loop: ir.For | ir.While) -> list[StackedProduct]:
        """The products ``W @ x`` (or ``x @ W``) at the top of a top-level loop's body whose matrix ``W`` is defined
        before the loop (the same in every iteration) and differentiated while ``x`` changes: the reverse sweep
        records each step's ``(adjoint of the product, x)`` instead of adding an outer product to ``W``'s adjoint,
        and :meth:`_summed_products` adds them up after the loop in one product of the stacked steps."""
        b = self.builder
        found = []
        for op in loop.body:
            if not (isinstance(op, ir.Op) and op.rule is not None and op.rule.func in layouts.MATMULS
                    and len(op.args) == 2 and not op.kwargs and b.facts.is_active(op.target)):
                continue
            for position, matrix in enumerate(op.args):
                other = op.args[1 - position]
                if self._loop_constant(matrix) and matrix.name in b.facts.varied and isinstance(other, ir.Var) \
                        and not self._loop_constant(other):
                    g_name = b.adjoints.adj(op.target)
                    lists = (b.scope.local(f"{g_name}_steps"), b.scope.local(f"{other.name}_steps"))
                    found.append(StackedProduct(op, matrix.name, other, position == 0, lists))
                    break
        return found

    def _loop_constant(self, operand: Any) -> bool:
        """A variable defined before any loop (a parameter, a value computed before the loop)."""
        return isinstance(operand, ir.Var) and operand.name not in self.builder.tape.loop_defined

    def record_step(self, product: StackedProduct, g: ast.expr, other: ast.expr) -> list:
        """In the reverse loop's body: this step's adjoint of the product and its other operand, recorded."""
        gs, others = product.lists
        return [codegen.template_stmt("STEPS.append(G)", STEPS=codegen.name(gs), G=g),
                codegen.template_stmt("STEPS.append(X)", STEPS=codegen.name(others), X=other)]

    def _summed_products(self, products: list[StackedProduct]) -> list:
        b = self.builder
        out: list = []
        for p in products:
            gs, others = p.lists
            text = b.fn.source_lines.get(p.op.line, "").strip()
            out.append(Comment(f"grad of line {p.op.line} for {p.matrix}, every iteration's in one product: {text}",
                               p.op.line))
            total = ast.Call(func=b.helper(runtime.matmul_steps_grad), keywords=[], args=[
                codegen.name(gs), codegen.name(p.matrix), codegen.name(others), ast.Constant(value=p.left)])
            b.adjoints.accumulate(out, p.matrix, total, True)
        return out

    def _entry_values(self, loop: ir.For | ir.While, written: set[str]) -> list:
        """Adjoints that accumulate across iterations must hold a value on entry."""
        adjoints = self.builder.adjoints
        body_defined = {op.target for op in ir.walk_ops(loop.body)} - set(loop.carried) - self.deferred
        if isinstance(loop, ir.For):
            body_defined.add(loop.target)
        pre = []
        for name in sorted(adjoints.adj(v) for v in written if v not in body_defined):
            if name not in adjoints.assigned:
                var = adjoints.var_of(name)
                # An invariant's value does not exist before the loop: its adjoint starts as the number 0.0.
                zero = ast.Constant(value=0.0) if var in self.deferred else adjoints.zero_of(var)
                pre.append(codegen.assign(name, zero))
                adjoints.assigned.add(name)
        return pre

    def _reverse_walk(self, loop: ir.For | ir.While, depth: int, body: list) -> tuple[ast.expr, Block]:
        """The reverse loop, and the expression that is truthy when the loop ran (the range it walks, or its
        iteration count)."""
        b = self.builder
        body = body or [ast.Pass()]
        if isinstance(loop, ir.For):
            if depth:
                walked: ast.expr = b.tape.pop()
            elif _has_break(loop):
                walked = codegen.template_expr("ITER[:COUNT]", ITER=codegen.operand(loop.iterable),
                                               COUNT=b.tape.loop_count(loop))
            else:
                walked = codegen.operand(loop.iterable)
            backwards = codegen.template_expr("REVERSED(WALKED)", REVERSED=b.helper(reversed), WALKED=walked)
            return walked, Block("for", target=loop.target, iter=backwards, body=body)
        count = b.tape.pop() if depth else codegen.name(b.tape.loop_count(loop))
        times = codegen.template_expr("RANGE(COUNT)", RANGE=b.helper(range), COUNT=count)
        return count, Block("for", target=b.scope.local("_"), iter=times, body=body)

    def deferred_reverse(self, deferred: list[ir.Op], ran: ast.expr) -> list:
        """The reverse of the loop's invariant operations, once, if the loop ran at all (``ran`` is truthy then:
        the range walked, or the iteration count); their operands' adjoints are given a value first."""
        self.deferred.difference_update(op.target for op in deferred)
        if not deferred:
            return []
        b = self.builder
        adjoints = b.adjoints
        pre, code = [], []
        for op in reversed(deferred):
            for a in op.operands():
                if isinstance(a, ir.Var) and a.name in b.facts.varied and a.name not in self.deferred:
                    name = adjoints.adj(a.name)
                    if name not in adjoints.assigned:
                        pre.append(codegen.assign(name, adjoints.zero_of(a.name)))
                        adjoints.assigned.add(name)
            code.extend(generated.mark(b.reverse_op(op), op))
        if not code:
            return pre
        note = Comment("grad of the loop's invariant values, added up over its iterations")
        return pre + [note, Block("if", test=ran, body=code)]

    def _written_adjoints(self, body: list) -> set[str]:
        """The varied values whose adjoints the reverse of ``body`` adds to."""
        facts = self.builder.facts
        written = set()
        for op in ir.walk_ops(body):
            if facts.is_active(op.target):
                written.update(a.name for a in self._gradient_operands(op)
                               if isinstance(a, ir.Var) and a.name in facts.varied)
        return written

    def _gradient_operands(self, op: ir.Op) -> list:
        if op.form.kind == "copy":
            return [op.args[0]]
        if is_user_call(op):
            return list(bind_call(op).values())
        if op.form.kind == "append":
            return list(op.args)
        params = bind_params(self.builder.fn, op)
        operands = []
        for p in op.rule.wrt:
            value = params.get(p)
            operands.extend(value if isinstance(value, tuple) else [value])
        return operands

    # --- forward sweep ---------------------------------------------------------------------------------------

    def forward(self, loop: ir.For | ir.While, depth: int) -> list:
        """The loop in the forward sweep: counted when its reverse needs the count (a ``while``, a ``for`` with a
        ``break``), its range or count recorded inside another loop."""
        b = self.builder
        recorded = id(loop) in b.tape.loop_counts  # the loop has a reverse sweep
        body = b.forward_block(loop.body, depth + 1)
        out: list = []
        counter = None
        if recorded and (_has_break(loop) or isinstance(loop, ir.While)):
            counter = b.tape.loop_count(loop)
            out.append(codegen.assign(counter, ast.Constant(value=0)))
            body.insert(0, codegen.template_stmt("COUNT += 1", COUNT=counter))
        if isinstance(loop, ir.For):
            out.append(Block("for", target=loop.target, iter=codegen.operand(loop.iterable), body=body))
            if recorded and depth:
                walked = codegen.operand(loop.iterable)
                if counter is not None:
                    walked = codegen.template_expr("WALKED[:COUNT]", WALKED=walked, COUNT=counter)
                out.append(b.tape.call("append", [walked]))
            return out
        out.append(while_block(loop, b.forward_block(loop.test, depth + 1), body))
        if recorded and depth:
            out.append(b.tape.call("append", [codegen.name(counter)]))
        return out


def while_block(loop: ir.While, test: list, body: list) -> Block:
    """``while cond: body``, or ``while True:`` with the statements computing the condition and ``if not cond:
    break`` first."""
    if not test:
        return Block("while", test=codegen.operand(loop.cond), body=body or [ast.Pass()])
    exit_test = codegen.template_expr("not COND", COND=codegen.operand(loop.cond))
    return Block("while", test=ast.Constant(value=True),
                 body=test + [Block("if", test=exit_test, body=[ast.Break()])] + body)


def _has_break(loop: ir.For | ir.While) -> bool:
    """Does a ``break`` of this loop itself (not of a loop inside it) occur in its body?"""
    todo = list(loop.body)
    while todo:
        stmt = todo.pop()
        if isinstance(stmt, ir.Break):
            return True
        if not isinstance(stmt, (ir.For, ir.While)):
            todo.extend(s for block in stmt.blocks() for s in block)
    return False
