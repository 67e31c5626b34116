"""Adjoint: the primal IR and the pass facts in; the gradient program (srcgrad/program.py) out — the forward sweep
(with what the reverse sweep needs recorded) and the reverse sweep, as Python ``ast`` statements, comments and
compound blocks.

The parts: :class:`GradientBuilder` walks the IR (one dispatch per statement class: ``reverse_If``, ``forward_For``...)
and writes each op's reverse from its rule; :mod:`srcgrad.accumulate` adds contributions to adjoints;
:mod:`srcgrad.tape` plans what loops record; :mod:`srcgrad.loops` reverses loops.
What holds:
- a rule's contribution is inlined from the rule's own ``return`` expression when it is a single expression;
- broadcasting is undone here, once, for rules registered with ``broadcast=True`` — and only where shapes can
  differ; when every operand is a Python number the code is plain float arithmetic and ``math``;
- adjoints, constants and uniform adjoints follow srcgrad/accumulate.py; what loops record, srcgrad/tape.py;
- the forward sweep is generated after the reverse sweep, from what the reverse sweep planned and reads: pure
  values nobody reads are not computed.
"""

from __future__ import annotations

import ast
import contextlib
from typing import Any

import numpy as np

from srcgrad import checks, codegen, generated, ir, layouts, runtime
from srcgrad.accumulate import Adjoints
from srcgrad.binding import ARRAY, SCALAR, SEQUENCE, bind_params, location
from srcgrad.errors import NonScalarOutput
from srcgrad.loops import LoopReversal
from srcgrad.passes import Facts, bind_call, droppable, is_user_call
from srcgrad.program import Block, Comment, Program, link, loads
from srcgrad.tape import TapePlan

__all__ = ["Block", "Comment", "Program", "ProgramBuilder", "GradientBuilder", "build_program", "try_block"]


def segments(body: list) -> list:
    """Split a block into runs of ops (lists) and single control statements."""
    out: list = []
    for stmt in body:
        if isinstance(stmt, ir.Op):
            if out and isinstance(out[-1], list):
                out[-1].append(stmt)
            else:
                out.append([stmt])
        else:
            out.append(stmt)
    return out


class ProgramBuilder:
    """What the reverse-mode and forward-mode builders share: binding srcgrad's names, spelling forward values,
    zeros of a value's kind."""

    scope: codegen.Scope
    facts: Facts
    live: set[str] | None = None  # forward values worth computing (None: all)

    def helper(self, func: Any) -> ast.expr:
        return codegen.name(self.scope.bind(func.__name__, func))

    def forward_value(self, op: ir.Op) -> ast.expr:
        """The op's right-hand side; functions srcgrad introduces itself (setitem, the loop checks, the ``len`` of a
        loop over a list) are bound by name (the user's own calls keep the user's names: the guards check what they
        denote)."""
        if op.form.kind == "call" and (op.callee is runtime.setitem or op.callee in runtime.LOOP_CHECKS or op.own):
            return codegen.op_value(op, self.scope.bind(op.callee.__name__, op.callee))
        return codegen.op_value(op)

    def forward_statements(self, op: ir.Op) -> list:
        """The op in the forward sweep: ``xs.append(v); xs_1 = xs`` for an append, ``raise e`` for a raise, nothing
        for what a ``with``/``except`` binds, ``call(...)`` for an effect whose value nobody reads, else
        ``target = value``. A statement with an effect is marked ``srcgrad_effect``: the fuse pass moves nothing
        past it."""
        if op.form.kind == "raise":
            cause = codegen.operand(op.args[1]) if op.form.symbol == "from" else None
            return [ast.Raise(exc=codegen.operand(op.args[0]) if op.args else None, cause=cause)]
        if op.form.kind == "bound":
            return []
        if op.effect and self.live is not None and op.target not in self.live:
            return [ast.Expr(value=self.forward_value(op))]
        if op.effect:
            statement = codegen.assign(op.target, self.forward_value(op))
            statement.srcgrad_effect = True
            return [statement]
        if op.form.kind == "append":
            lst = codegen.operand(op.args[0])
            method = ast.Attribute(value=lst, attr="append", ctx=ast.Load())
            return [ast.Expr(value=ast.Call(func=method, args=[codegen.operand(op.args[1])], keywords=[])),
                    codegen.assign(op.target, codegen.operand(op.args[0]))]
        return [codegen.assign(op.target, self.forward_value(op))]

    def zero_of(self, var: str) -> ast.expr:
        if self.facts.kinds.get(var) == SCALAR:
            return ast.Constant(value=0.0)
        return ast.Call(func=self.helper(runtime.zeros_like), args=[codegen.name(var)], keywords=[])

    def guards(self, op: ir.Op) -> list:
        """Before a write another name may see (srcgrad.aliasing): refuse an in-place update of an array, and
        arguments that share memory with the one written."""
        place = [ast.Constant(value=self.fn.filename), ast.Constant(value=op.line),
                 ast.Constant(value=op.col + self.fn.col_offset)]
        out = []
        for written, other in op.guard_distinct:
            args = [codegen.operand(written), codegen.operand(other), ast.Constant(value=str(written)),
                    ast.Constant(value=str(other)), *place]
            out.append(ast.Expr(value=ast.Call(func=self.helper(checks.check_distinct), args=args, keywords=[])))
        helper = [ast.Constant(value=op.callee.__name__)] if op.form.kind == "call" and is_user_call(op) else []
        for value in op.guard_unshared:
            args = [codegen.operand(value), *place, *helper]
            out.append(ast.Expr(value=ast.Call(func=self.helper(checks.check_unshared), args=args, keywords=[])))
        return out


class GradientBuilder(ProgramBuilder):
    """The reverse sweep of a function, then its forward sweep (see the module docstring)."""

    def __init__(self, fn: ir.Function, facts: Facts, scope: codegen.Scope, helper_variant: Any = None):
        self.fn, self.facts, self.scope = fn, facts, scope
        self.helper_variant = helper_variant  # (func, kinds, varied) -> calls.HelperVariant
        self.split_calls: dict[int, tuple[str, str]] = {}  # id(op) -> (forward function name, saved name)
        self.pullbacks: dict[int, str] = {}  # id(op) -> the variable holding a multi-result reverse call's value
        defs: dict[str, list[ir.Op]] = {}
        for op in ir.walk_ops(fn.body):
            defs.setdefault(op.target, []).append(op)
        self.single_defs = {name: ops[0] for name, ops in defs.items() if len(ops) == 1}
        self.float_valued = _float_valued(self.single_defs)
        self.has_appends = any(op.form.kind == "append" for op in ir.walk_ops(fn.body))
        self.adjoints = Adjoints(facts, scope, self.float_valued, self.helper)
        self.tape = TapePlan(fn, facts, scope)
        self.loops = LoopReversal(self)

    # --- reverse sweep ---------------------------------------------------------------------------------------

    def reverse_block(self, body: list, depth: int) -> list:
        out: list = []
        for item in reversed(segments(body)):
            if isinstance(item, list):
                out.extend(self.reverse_segment(item, depth))
            else:
                out.extend(ir.dispatch(self, "reverse_", item, depth, default=[]))
        return out

    @contextlib.contextmanager
    def control(self, pending: list):
        """Inside a branch, loop, ``with`` or ``try``: adjoints held as numbers get variables first (``pending``
        receives their statements), and none is held as a number inside."""
        pending.extend(self.adjoints.materialize())
        self.adjoints.control_depth += 1
        try:
            yield
        finally:
            self.adjoints.control_depth -= 1

    def reverse_segment(self, ops: list[ir.Op], depth: int) -> list:
        code: list = []
        last_line = None
        for op in reversed(ops):
            if not self.facts.is_active(op.target) or op.target in self.loops.deferred:
                continue
            lines = generated.mark(self.reverse_op(op), op)
            if lines and op.line != last_line and op.form.kind != "copy":
                text = self.fn.source_lines.get(op.line, "").strip()
                code.append(Comment(f"grad of line {op.line}: {text}", op.line))
                last_line = op.line
            code.extend(lines)
        if depth and code:
            pushed, recomputed = self.tape.plan_records(ops, self.tape.to_record(loads(code)))
            prefix = [self.tape.pop_into(pushed)] if pushed else []
            if recomputed:
                prefix.append(Comment("recompute what is cheaper to recompute than to record", aside=True))
                prefix.extend(codegen.assign(op.target, self.forward_value(op)) for op in recomputed)
            if pushed:
                self.tape.pushes[id(ops[0])] = pushed
            code[:0] = prefix
        return code

    def reverse_op(self, op: ir.Op) -> list:
        g_name = self.adjoints.names.get(op.target)
        if g_name is None or g_name not in self.adjoints.assigned:
            return []  # no gradient reached this value
        out = self._reverse_op(op, g_name)
        self.adjoints.used_up(g_name)
        return out

    def _reverse_op(self, op: ir.Op, g_name: str) -> list:
        out: list = []
        adjoints = self.adjoints
        full_reduction = not adjoints.control_depth and _full_sum_or_mean(self.fn, op)
        uniform = g_name in adjoints.uniform and not full_reduction  # (a full reduction's value is a number)
        if uniform and not adjoints.keeps_uniform(op):
            out.append(adjoints.spread(g_name))
            uniform = False
        g = adjoints.ref(g_name)
        g_is_array = g_name in adjoints.arrays
        if op.form.kind == "copy":
            src = op.args[0]
            if isinstance(src, ir.Var) and src.name in self.facts.varied:
                adjoints.accumulate(out, src.name, g, g_is_array, uniform)
            return out
        if full_reduction:
            return self._reverse_full_reduction(op, g, out)
        if op.rule is not None and not is_user_call(op):
            reduced = self._reverse_reduction(op, g, out)
            if reduced is not None:
                return reduced
        if is_user_call(op):
            return out + self._reverse_call(op, g)
        if op.form.kind == "append":
            return out + self._reverse_append(op, g)
        return self._reverse_rule(op, g, g_is_array, uniform, out)

    def _reverse_rule(self, op: ir.Op, g: ast.expr, g_is_array: bool, uniform: bool, out: list) -> list:
        """An op with a rule: each varied operand gets the rule's contribution (unbroadcast where shapes may
        differ)."""
        params = bind_params(self.fn, op)
        # (contribution index, element of a variadic parameter or None, operand)
        needed = []
        for i, pname in enumerate(op.rule.wrt):
            value = params.get(pname)
            elements = enumerate(value) if isinstance(value, tuple) else [(None, value)]
            needed.extend((i, j, v) for j, v in elements if isinstance(v, ir.Var) and v.name in self.facts.varied)
        needed = self._stacked_aside(op, g, needed, out)
        if not needed:
            return out
        kinds = [self.facts.kind(a) for a in op.operands()]
        all_scalar = all(k == SCALAR for k in kinds)
        contribs = self._contributions(op, params, g, all_scalar, {i for i, _, _ in needed}, out)
        result_is_array = g_is_array or not all_scalar or self.facts.kind(ir.Var(op.target)) != SCALAR
        grouped = self._unbroadcast(op, needed, contribs, sum(k in (ARRAY, SEQUENCE) for k in kinds))
        whole = {a.name for a in op.operands() if isinstance(a, ir.Var) and self.facts.kind(a) != SCALAR}
        for var_name, c in grouped.items():
            self.adjoints.accumulate(out, var_name, c, result_is_array,
                                     uniform and not _scaled_by(c, whole | {op.target}))
        return out

    def _stacked_aside(self, op: ir.Op, g: ast.expr, needed: list, out: list) -> list:
        """``needed`` less a loop-invariant matrix whose steps are recorded instead (``out`` gets the recording):
        its adjoint is summed after the loop (srcgrad/loops.py)."""
        stacked = self.loops.stacked.get(id(op))
        if stacked is None:
            return needed
        out.extend(self.loops.record_step(stacked, g, self._operand_as_read(op, stacked.other)))
        return [n for n in needed if n[2].name != stacked.matrix]

    def _contributions(self, op: ir.Op, params: dict, g: ast.expr, all_scalar: bool, indices: set[int],
                       out: list) -> dict:
        """The rule's contribution for each differentiated parameter index: its expression inlined, or a call of
        the rule."""
        plain = self._plain_contributions(op, params, g)
        if plain is not None:
            return plain
        adjoint = op.rule.adjoint_for(all_scalar)
        templates = op.rule.inline_exprs(adjoint)
        mapping = {"g": g, "ans": codegen.name(op.target)}
        mapping.update({p: self._operand_as_read(op, v) for p, v in params.items()})
        if templates is None:
            return self._call_rule(out, op, adjoint, mapping, params)
        return {i: codegen.instantiate(templates[i], mapping, adjoint.__globals__, self.scope) for i in sorted(indices)}

    def _plain_contributions(self, op: ir.Op, params: dict, g: ast.expr) -> dict | None:
        """The contributions of ``x @ y`` written as a person writes them, where the operands' layouts are known
        (srcgrad/layouts.py); None for other ops."""
        if op.rule.func not in layouts.MATMULS or len(op.args) != 2 or op.kwargs:
            return None
        x, y = op.args
        found = layouts.matmul_adjoints(self.scope.bind("np", np), g, self._operand_as_read(op, x),
                                        self._operand_as_read(op, y), self.facts.layout(x), self.facts.layout(y))
        return None if found is None else dict(enumerate(found))

    def _reverse_reduction(self, op: ir.Op, g: ast.expr, out: list) -> list | None:
        """``np.sum``/``np.mean`` over constant axes of a value with a layout, at the top level: the adjoint is
        ``g`` with the reduced axes restored (``g[:, None]``), divided by the count for a mean, and held as an
        array that broadcasts to the value's shape (a uniform adjoint) until an operation needs the whole array.
        None when this op is not one."""
        if self.adjoints.control_depth or not any(op.rule.func is f for f in (np.sum, np.mean)) \
                or op.form.kind != "call":
            return None
        parts = layouts.reduction_parts(bind_params(self.fn, op), self.facts.layouts)
        if parts is None:
            return None
        a, layout, axes, keepdims = parts
        if a.name in self.facts.varied:
            c = layouts.restored(g, layout, axes, keepdims)
            if op.rule.func is np.mean:
                c = ast.BinOp(left=c, op=ast.Div(), right=layouts.count(codegen.name(a.name), layout, axes))
            self.adjoints.accumulate(out, a.name, c, True, uniform=True)
        return out

    def _unbroadcast(self, op: ir.Op, needed: list, contribs: dict, n_arrays: int) -> dict[str, ast.expr]:
        """The contributions summed per operand, each summed back to its operand's shape where shapes may differ
        (the shapes pass knows where they do not): a number with arrays, a number or a 0-d array that a constructor
        spreads over an array (np.full(3, w)), a list numpy reads as an array."""
        grouped: dict[str, ast.expr] = {}
        result_kind = self.facts.kind(ir.Var(op.target))
        for i, j, var in needed:
            c = contribs[i]
            if j is not None:
                c = ast.Subscript(value=c, slice=ast.Constant(value=j), ctx=ast.Load())
            own = self.facts.kind(var)  # (a list a numpy function reads is an array: np.add([[y], [2 * y]], m))
            spread = own == SCALAR and (n_arrays or result_kind != SCALAR)
            # (one maybe-array operand may be smaller than the result too: np.full(3, w) for a 0-d w)
            if op.rule.broadcast and (spread or own in (ARRAY, SEQUENCE)) \
                    and not self.facts.same_shape(var.name, op.target):
                c = self._sum_to(c, var, op)
            grouped[var.name] = c if var.name not in grouped else ast.BinOp(
                left=grouped[var.name], op=ast.Add(), right=c)
        return grouped

    def _sum_to(self, c: ast.expr, var: ir.Var, op: ir.Op) -> ast.expr:
        """``c`` (of ``op``'s result's shape) summed to ``var``'s: in plain numpy where both layouts are known,
        else by ``unbroadcast`` at run time."""
        have, want = self.facts.layouts.get(op.target), self.facts.layout(var)
        if have is not None and want is not None:
            return layouts.unbroadcast(self.scope.bind("np", np), c, have, want)
        return ast.Call(func=self.helper(runtime.unbroadcast), args=[c, codegen.operand(var)], keywords=[])

    def _reverse_full_reduction(self, op: ir.Op, g: ast.expr, out: list) -> list:
        """``np.sum(a)`` / ``np.mean(a)`` over every axis: ``a``'s adjoint is uniform, ``g`` (or ``g / a.size``)
        everywhere, kept as that number until an operation needs the array (see Adjoints.uniform)."""
        a = bind_params(self.fn, op)["a"]
        if not (isinstance(a, ir.Var) and a.name in self.facts.varied):
            return out
        if op.rule.uniform == "mean":
            # `or 1`: the mean of an empty array is nan (numpy warns), its gradient an empty array: the uniform
            # adjoint fills no element, and must not divide by zero on the way.
            source = self._same_shape_source(a.name)
            if self.facts.layout(a):  # (an array with a layout has no empty axis)
                g = codegen.template_expr("G / A.size", G=g, A=source)
            else:
                # (runtime.size_or_one, not np.size: Dask implements no np.size and would compute the array)
                g = codegen.template_expr("G / N(A)", G=g, N=self.scope.bind("size_or_one", runtime.size_or_one),
                                          A=source)
        self.adjoints.accumulate(out, a.name, g, True, uniform=True)
        return out

    def _same_shape_source(self, name: str) -> str:
        """The earliest value with certainly the same shape as ``name``: a parameter when there is one, else back
        through elementwise operations (so that reading its size keeps no later forward value alive)."""
        param = next((p for p in self.fn.params if self.facts.kinds.get(p) != SCALAR
                      and self.facts.same_shape(p, name)), None)
        if param is not None:
            return param
        seen = {name}
        while True:
            op = self.single_defs.get(name)
            if op is None or op.form.kind in ("append",) or op.rule is None:
                return name
            earlier = next((a.name for a in op.operands() if isinstance(a, ir.Var) and a.name not in seen
                            and self.facts.kind(a) != SCALAR and self.facts.same_shape(a.name, name)), None)
            if earlier is None:
                return name
            name = earlier
            seen.add(name)

    def _operand_as_read(self, op: ir.Op, value: Any) -> ast.expr:
        """How the reverse sweep refers to an operand. A list that is appended to later is read as it was then:
        ``xs[:n]`` with its length ``n`` recorded right after the op."""
        if isinstance(value, tuple):
            return ast.Tuple(elts=[self._operand_as_read(op, v) for v in value], ctx=ast.Load())
        if isinstance(value, ir.Var) and self.facts.kinds.get(value.name) == SEQUENCE and self.has_appends:
            return codegen.template_expr("XS[:N]", XS=value.name, N=self.tape.length_of(op, value.name))
        return codegen.operand(value)

    def _reverse_append(self, op: ir.Op, g: ast.expr) -> list:
        """``xs_1 = append(xs, v)``: v gets the last element's adjoint, xs the others."""
        out: list = []
        lst, value = op.args
        if isinstance(value, ir.Var) and value.name in self.facts.varied:
            last = ast.Subscript(value=g, slice=ast.Constant(value=-1), ctx=ast.Load())
            self.adjoints.accumulate(out, value.name, last, self.facts.kind(value) != SCALAR)
        if isinstance(lst, ir.Var) and lst.name in self.facts.varied:
            rest = ast.Call(func=self.helper(runtime.drop_last), args=[g], keywords=[])
            self.adjoints.accumulate(out, lst.name, rest, True)
        return out

    def _reverse_call(self, op: ir.Op, g: ast.expr) -> list:
        """A call to a user function: its generated forward/backward pair (see :mod:`srcgrad.calls`)."""
        params = bind_call(op)
        varied = tuple(p for p, v in params.items() if isinstance(v, ir.Var) and v.name in self.facts.varied)
        out: list = []
        if not varied:
            return out
        kinds = tuple(self.facts.kind(v) for v in params.values())
        variant = self.helper_variant(op.callee, kinds, varied)
        fwd = self.scope.bind(variant.fwd_name, variant.fwd)
        bwd = self.scope.bind(variant.bwd_name, variant.bwd)
        if id(op) not in self.split_calls:
            self.split_calls[id(op)] = (fwd, self.scope.local(f"{op.target}_saved"))
        saved = self.split_calls[id(op)][1]
        if op.target in self.tape.loop_defined:
            self.tape.loop_defined.add(saved)  # rewritten every iteration: the loop must record it
        call = ast.Call(func=codegen.name(bwd), args=[codegen.name(saved), g], keywords=[])
        contribs = [call] if len(varied) == 1 else self._pulled_back(op, call, len(varied), out)
        grouped: dict[str, ast.expr] = {}
        for p, c in zip(varied, contribs):
            name = params[p].name
            grouped[name] = c if name not in grouped else ast.BinOp(left=grouped[name], op=ast.Add(), right=c)
        for name, c in grouped.items():
            self.adjoints.accumulate(out, name, c, self.facts.kinds.get(name) != SCALAR)
        return out

    def _pulled_back(self, op: ir.Op, call: ast.expr, n: int, out: list) -> list[ast.expr]:
        """``t_pullback = call`` (appended to ``out``), and its ``n`` elements."""
        if id(op) not in self.pullbacks:
            self.pullbacks[id(op)] = self.scope.local(f"{op.target}_pullback")
        tmp = self.pullbacks[id(op)]
        out.append(codegen.assign(tmp, call))
        return [ast.Subscript(value=codegen.name(tmp), slice=ast.Constant(value=i), ctx=ast.Load()) for i in range(n)]

    def _call_rule(self, out: list, op: ir.Op, adjoint: Any, mapping: dict, params: dict) -> dict:
        func = codegen.name(self.scope.bind(adjoint.__name__.lstrip("_") + "_rule", adjoint))
        args = [mapping["g"], mapping["ans"]]
        keywords = []
        sig = op.rule.signature.parameters
        for p, v in params.items():
            if sig[p].kind is sig[p].KEYWORD_ONLY:
                keywords.append(ast.keyword(arg=p, value=mapping[p]))
            else:
                args.extend(mapping[p].elts if isinstance(v, tuple) else [mapping[p]])
        call = ast.Call(func=func, args=args, keywords=keywords)
        if len(op.rule.wrt) == 1:
            return {0: call}
        return dict(enumerate(self._pulled_back(op, call, len(op.rule.wrt), out)))

    def reverse_If(self, stmt: ir.If, depth: int) -> list:
        pending: list = []
        with self.control(pending):
            adjoints = self.adjoints
            before = set(adjoints.assigned)
            then_code = self.reverse_block(stmt.body, depth)
            after_then = adjoints.assigned
            adjoints.assigned = set(before)
            else_code = self.reverse_block(stmt.orelse, depth)
            if not then_code and not else_code:
                adjoints.assigned = after_then | adjoints.assigned
                return pending
            adjoints.join([then_code, else_code], [after_then, adjoints.assigned])
            if depth:
                self.tape.pushed_conditions.add(id(stmt))
                test = self.tape.pop()
            else:
                test = codegen.operand(stmt.cond)
            return pending + [Block("if", test=test, body=then_code or [ast.Pass()], orelse=else_code)]

    def reverse_For(self, loop: ir.For, depth: int) -> list:
        pending: list = []
        with self.control(pending):
            return pending + self.loops.reverse(loop, depth)

    reverse_While = reverse_For

    def reverse_With(self, stmt: ir.With, depth: int) -> list:
        """The reverse sweep of a ``with`` block: inside the manager computed again (np.errstate: see
        lower.stmt_With), else as it is. In a loop, what the context expression reads is recorded after the block."""
        pending: list = []
        with self.control(pending):
            body = self.reverse_block(stmt.body, depth)
        if not body or not stmt.reenter:
            return pending + body
        prefix: list = []
        if depth:
            made = {op.target for op in stmt.context}
            reads = sorted(self.tape.to_record({a.name for op in stmt.context for a in op.operands()
                                                if isinstance(a, ir.Var)}) - made)
            if reads:
                self.tape.with_records[id(stmt)] = reads
                prefix.append(self.tape.pop_into(reads))
        prefix.extend(codegen.assign(op.target, self.forward_value(op)) for op in stmt.context)
        return pending + prefix + [Block("with", test=codegen.operand(stmt.manager), body=body)]

    def reverse_Try(self, stmt: ir.Try, depth: int) -> list:
        """The reverse of ``finally``, then of the path the forward sweep took (recorded in ``stmt.path``: 0 the body
        and ``else``, k the k-th handler), as an if/elif chain: the reverse sweep is never inside the user's ``try``,
        so its own exceptions are never caught by an ``except``. The part of the body that ran before an exception
        needs no reverse: the lowering refuses reading what it assigned on the handler's path."""
        pending: list = []
        with self.control(pending):
            adjoints = self.adjoints
            final = self.reverse_block(stmt.final, depth)
            before = set(adjoints.assigned)
            codes, states = [], []
            for parts in [[stmt.orelse, stmt.body]] + [[h.body] for h in stmt.handlers]:
                adjoints.assigned = set(before)
                codes.append([item for part in parts for item in self.reverse_block(part, depth)])
                states.append(adjoints.assigned)
            if not any(codes):
                adjoints.assigned = set().union(*states)
                return pending + final
            adjoints.join(codes, states)
            prefix = []
            if depth:
                self.tape.pushed_conditions.add(id(stmt))
                prefix.append(codegen.assign(stmt.path, self.tape.pop()))
            chain = codes[-1]
            for k in reversed(range(len(codes) - 1)):
                test = codegen.template_expr("PATH == K", PATH=stmt.path, K=ast.Constant(value=k))
                chain = [Block("if", test=test, body=codes[k] or [ast.Pass()], orelse=chain)]
            return pending + final + prefix + chain

    # --- forward sweep ---------------------------------------------------------------------------------------

    def forward_block(self, body: list, depth: int) -> list:
        out: list = []
        for item in segments(body):
            if isinstance(item, list):
                out.extend(self.forward_segment(item))
            else:
                out.extend(ir.dispatch(self, "forward_", item, depth, default=[]))
        return out

    def forward_If(self, stmt: ir.If, depth: int) -> list:
        out: list = []
        then_items = self.forward_block(stmt.body, depth)
        else_items = self.forward_block(stmt.orelse, depth)
        if then_items or else_items:  # both branches may be empty once unused values are dropped
            test = codegen.operand(stmt.cond)
            if not then_items:  # (an assert: `if not t1: raise ...`)
                test, then_items, else_items = ast.UnaryOp(op=ast.Not(), operand=test), else_items, []
            out.append(Block("if", test=test, body=then_items, orelse=else_items))
        if id(stmt) in self.tape.pushed_conditions:
            # recorded after the branch, so the reverse pops it before the branch's own records
            out.append(self.tape.call("append", [codegen.operand(stmt.cond)]))
        return out

    def forward_For(self, loop: ir.For, depth: int) -> list:
        return self.loops.forward(loop, depth)

    forward_While = forward_For

    def forward_With(self, stmt: ir.With, depth: int) -> list:
        """``with manager as target: body``; when the manager may suppress an exception of the body, a flag set at the
        body's end is checked after it: a block that ran in part has no reverse sweep (runtime.check_completed). In
        a loop, what the context expression reads is recorded after the block when its reverse enters it again."""
        body = self.forward_block(stmt.body, depth)
        if not stmt.checked:
            out = [Block("with", test=codegen.operand(stmt.manager), target=stmt.target, body=body)]
        else:
            done = self.scope.local("completed")
            where = [ast.Constant(value=self.fn.filename), ast.Constant(value=stmt.line),
                     ast.Constant(value=stmt.col + self.fn.col_offset)]
            check = ast.Call(func=self.helper(checks.check_completed), args=[codegen.name(done), *where], keywords=[])
            out = [codegen.assign(done, ast.Constant(value=False)),
                   Block("with", test=codegen.operand(stmt.manager), target=stmt.target,
                         body=body + [codegen.assign(done, ast.Constant(value=True))]),
                   ast.Expr(value=check)]
        if id(stmt) in self.tape.with_records:
            out.append(self.tape.push(self.tape.with_records[id(stmt)]))
        return out

    def forward_Try(self, stmt: ir.Try, depth: int) -> list:
        out = [try_block(stmt, lambda part: self.forward_block(part, depth))]
        if id(stmt) in self.tape.pushed_conditions:
            out.append(self.tape.call("append", [codegen.name(stmt.path)]))
        return out

    def forward_Break(self, stmt: ir.Break, depth: int) -> list:
        return [ast.Break()]

    def forward_segment(self, ops: list[ir.Op]) -> list:
        out: list = []
        last_line = None
        records: dict[int, list] = {}
        for (op_id, lst_name), n in self.tape.lengths.items():
            records.setdefault(op_id, []).append((lst_name, n))
        emitted = [op for op in ops if self._emit_forward(op) or id(op) in records or op.guarded]
        push = self.tape.pushes.get(id(ops[0]))
        push_after = self._push_position(emitted) if push else None
        if push_after == -1:
            out.append(self.tape.push(push))
        for i, op in enumerate(emitted):
            if op.line != last_line and op.form.kind not in ("copy", "bound"):
                out.append(Comment(f"line {op.line}: {self.fn.source_lines.get(op.line, '').strip()}", op.line))
                last_line = op.line
            first = len(out)
            out.extend(self.guards(op))
            if self._emit_forward(op):  # (else only its list's length is recorded)
                out.extend(self._forward_op(op))
            for lst_name, n in records.get(id(op), []):
                out.append(codegen.assign(n, codegen.template_expr("LEN(XS)", LEN=self.helper(len), XS=lst_name)))
            generated.mark(out[first:], op)
            if i == push_after:
                out.append(self.tape.push(push))
        return out

    @staticmethod
    def _push_position(emitted: list[ir.Op]) -> int:
        """Where a loop segment records its values: after its last op that is not a copy (-1: before it all)."""
        non_copies = [i for i, op in enumerate(emitted) if op.form.kind != "copy"]
        return non_copies[-1] if non_copies else -1

    def _forward_op(self, op: ir.Op) -> list:
        if id(op) not in self.split_calls:
            return self.forward_statements(op)
        fwd, saved = self.split_calls[id(op)]
        call = codegen.op_value(op)
        call.func = codegen.name(fwd)
        targets = ast.Tuple(elts=[ast.Name(id=op.target, ctx=ast.Store()), ast.Name(id=saved, ctx=ast.Store())],
                            ctx=ast.Store())
        return [ast.Assign(targets=[targets], value=call, lineno=0)]

    def _emit_forward(self, op: ir.Op) -> bool:
        """Is the op's value needed: by the reverse sweep, the result, control flow, or for its effects?"""
        return self.live is None or op.target in self.live or not droppable(op, self.facts.kinds, self.facts.shapes)

    def compute_live(self, seeds: set[str]) -> None:
        """Forward values worth computing: what the reverse sweep and the results read, what control flow reads,
        and everything those depend on. Pure operations whose values nobody reads are not emitted."""
        live = set(seeds)
        for stmt in ir.walk(self.fn.body):
            if not isinstance(stmt, (ir.Op, ir.Return)):
                live.update(a.name for a in stmt.header_reads() if isinstance(a, ir.Var))
        ops = list(ir.walk_ops(self.fn.body))
        changed = True
        while changed:
            changed = False
            for op in ops:
                if op.target in live or id(op) in self.split_calls \
                        or not droppable(op, self.facts.kinds, self.facts.shapes):
                    for a in op.operands():
                        if isinstance(a, ir.Var) and a.name not in live:
                            live.add(a.name)
                            changed = True
        self.live = live


def try_block(stmt: ir.Try, block: Any) -> Block:
    """The ``try`` statement of the forward sweep, each part made by ``block(ir_statements)``."""
    handlers = [(codegen.operand(h.types) if h.types is not None else None, h.name, block(h.body) or [ast.Pass()])
                for h in stmt.handlers]
    return Block("try", body=block(stmt.body) or [ast.Pass()], handlers=handlers, orelse=block(stmt.orelse),
                 final=block(stmt.final))




def _full_reduction(fn: ir.Function, var: str | None) -> bool:
    """Is ``var`` certainly a scalar: a reduction over every axis (np.sum(x), x.mean(), np.vdot...)?"""
    op = next((o for o in ir.walk_ops(fn.body) if o.target == var), None)
    return op is not None and _reduces_everything(fn, op)


def _reduces_everything(fn: ir.Function, op: ir.Op) -> bool:
    """Is ``op`` a reduction over every axis, with no axes kept? Its rule says so (``full_reduction``)."""
    return op.rule is not None and op.rule.holds("full_reduction", bind_params(fn, op))


def _scaled_by(expr: ast.expr, names: set[str]) -> bool:
    """Is ``expr`` a product or quotient with a factor that reads one of ``names`` (arrays of the full shape), so
    that its value is a whole array even when the adjoint in it is a number?"""
    if isinstance(expr, ast.IfExp):
        return _scaled_by(expr.body, names) and _scaled_by(expr.orelse, names)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Add, ast.Sub)):  # (x * x: two scaled terms)
        return _scaled_by(expr.left, names) and _scaled_by(expr.right, names)
    if not (isinstance(expr, ast.BinOp) and isinstance(expr.op, (ast.Mult, ast.Div))):
        return False
    return any(isinstance(node, ast.Name) and node.id in names
               for side in (expr.left, expr.right) for node in ast.walk(side))


def _float_valued(defs: dict[str, ir.Op]) -> dict[str, object]:
    """Values that are certainly floats or float arrays (never bool or integer): results of float-valued numpy
    functions (``np.exp``...), and arithmetic on them or with a float constant. A simplify env (codegen)."""
    out: dict[str, object] = {}

    def is_float(a: Any) -> bool:
        return (isinstance(a, ir.Const) and type(a.value) is float) or (isinstance(a, ir.Var) and a.name in out)

    for name, op in defs.items():  # program order: operands come first
        callee = op.callee if op.form.kind == "call" else None
        if callee is not None and op.rule is not None and op.rule.float_valued:
            out[name] = codegen.FLOAT_VALUED
        elif op.form.kind == "binop" and op.form.symbol == "/":  # true division: never bool nor integer
            out[name] = codegen.FLOAT_VALUED
        elif op.form.kind == "binop" and op.form.symbol in ("+", "-", "*") and any(map(is_float, op.args)):
            out[name] = codegen.FLOAT_VALUED
        elif op.form.kind == "binop" and op.form.symbol == "**" and is_float(op.args[0]):
            out[name] = codegen.FLOAT_VALUED
        elif op.form.kind == "unaryop" and op.form.symbol == "-" and is_float(op.args[0]):
            out[name] = codegen.FLOAT_VALUED
    return out


def _full_sum_or_mean(fn: ir.Function, op: ir.Op) -> bool:
    return op.rule is not None and op.rule.uniform is not None and _reduces_everything(fn, op)


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def build_program(fn: ir.Function, facts: Facts, wrt: list[str], scope: codegen.Scope, mode: str,
                  seed_name: str | None, helper_variant: Any = None) -> Program:
    """Generate the gradient program of ``fn`` for the differentiated parameters ``wrt``.

    ``mode``: ``grad``, ``value_and_grad``, ``vjp``, or ``split`` (a helper's reverse sweep: the seed is the
    parameter ``seed_name`` and the results are raw adjoints, shaped by the caller's rules), or ``explain``
    (value_and_grad keeping every forward value and adjoint in a variable, for srcgrad.explain).
    """
    builder = GradientBuilder(fn, facts, scope, helper_variant)
    optimize = mode != "explain"
    if not optimize:
        mode = "value_and_grad"
        builder.adjoints.control_depth = 1  # no constant adjoints: every adjoint is a variable
    ret = fn.body[-1]
    prologue: list = []
    value = codegen.operand(ret.value)
    if isinstance(ret.value, ir.Var) and ret.value.name in builder.tape.loop_defined and mode == "value_and_grad":
        saved = scope.local("value")
        prologue.append(codegen.assign(saved, value))
        value = codegen.name(saved)
    prologue.extend(_output_checks(builder, ret, mode))
    _seed(builder, ret, mode, seed_name, prologue)
    reverse = builder.reverse_block(fn.body, 0)
    results = _results(builder, wrt, mode, prologue + reverse)
    seeds = loads(prologue + reverse + results)
    if mode in ("value_and_grad", "split"):
        seeds |= loads([value])
    if optimize:
        builder.compute_live(seeds)
    forward = builder.forward_block(fn.body, 0)
    if builder.tape.used:
        forward.insert(0, codegen.assign(builder.tape.name, ast.List(elts=[], ctx=ast.Load())))
    program = Program(forward=forward, reverse=prologue + reverse, results=results, value=value,
                      temporaries=fn.temporaries, adjoints=frozenset(builder.adjoints.names.values()),
                      derivatives=dict(builder.adjoints.names), return_line=ret.line)
    link(program, scope)
    program.float_valued = {**builder.float_valued, **codegen.modules_env(scope)}
    program.numpy_arguments = all(facts.kinds.get(p) == SCALAR or facts.layouts.get(p) is not None for p in fn.params)
    return program


def _output_checks(builder: GradientBuilder, ret: ir.Return, mode: str) -> list:
    """Before the reverse sweep: a gradient needs a number as the output, a vjp a numeric one (checked when the
    facts do not settle it)."""
    fn, facts = builder.fn, builder.facts
    out_var = ret.value.name if isinstance(ret.value, ir.Var) else None
    kind = facts.kind(ret.value)
    if mode in ("grad", "value_and_grad") and kind == SEQUENCE:
        raise NonScalarOutput(
            f"grad needs a scalar output, but {fn.user_name or fn.name} returns a tuple or list", location(fn, ret),
            hint="use srcgrad.vjp(f)(*args, seed) with one seed per element, or differentiate each element "
            "separately",
        )
    unsure = out_var is None or fn.may_return_non_number
    if mode in ("grad", "value_and_grad") and (unsure or kind != SCALAR) and not _full_reduction(fn, out_var) \
            and facts.layouts.get(out_var) != "":  # (a float64 value with no dimensions: a number)
        check = checks.check_scalar_output
    elif mode == "vjp" and (unsure or kind not in (SCALAR, SEQUENCE)) and not _full_reduction(fn, out_var):
        check = checks.check_numeric_output
    else:
        return []
    args = [codegen.operand(ret.value), ast.Constant(value=fn.user_name or fn.name)]
    return [ast.Expr(value=ast.Call(func=builder.helper(check), args=args, keywords=[]))]


def _seed(builder: GradientBuilder, ret: ir.Return, mode: str, seed_name: str | None, prologue: list) -> None:
    """The output's adjoint: 1.0, or the seed parameter."""
    out_var = ret.value.name if isinstance(ret.value, ir.Var) else None
    if out_var is None or out_var not in builder.facts.varied:
        return
    seed = codegen.name(seed_name) if seed_name else ast.Constant(value=1.0)
    if mode == "vjp":  # (the seed's shape is the output's: any other would be broadcast into a meaningless product)
        check = builder.helper(checks.check_seed_shape)
        where = ast.Constant(value=builder.fn.user_name or builder.fn.name)
        prologue.append(ast.Expr(value=ast.Call(func=check, keywords=[], args=[
            codegen.name(seed_name), codegen.name(out_var), where])))
    builder.adjoints.accumulate(prologue, out_var, seed, bool(seed_name) or builder.facts.kind(ret.value) != SCALAR)
    if mode in ("grad", "value_and_grad"):  # the output is a number (checked), its adjoint too
        builder.adjoints.uniform.discard(builder.adjoints.adj(out_var))


def _results(builder: GradientBuilder, wrt: list[str], mode: str, reverse: list) -> list[ast.expr]:
    """One expression per differentiated parameter: its adjoint, shaped like the argument (returned as it is where
    the code shows it is a new array of the argument's layout and dtype: :func:`_bare_results`)."""
    facts, adjoints = builder.facts, builder.adjoints
    results = []
    bare = _bare_results(builder, wrt, reverse) if mode in ("grad", "value_and_grad") else set()
    for p in wrt:
        adj = adjoints.names.get(p)
        scalar = facts.kinds.get(p) == SCALAR
        if adj is None or adj not in adjoints.assigned:
            results.append(ast.Constant(value=0.0) if scalar else ast.Call(
                func=builder.helper(runtime.zeros_like), args=[codegen.name(p)], keywords=[]))
        elif mode == "split" and adj in adjoints.uniform:
            results.append(adjoints.spread_value(adj))
        elif mode == "split" or (scalar and adj not in adjoints.arrays):
            results.append(adjoints.ref(adj))
        elif p in bare and scalar:
            results.append(ast.Call(func=codegen.name(builder.scope.bind("float", float)), args=[codegen.name(adj)],
                                    keywords=[]))
        elif p in bare:
            results.append(codegen.name(adj))
        elif mode in ("grad", "value_and_grad") and not scalar:
            results.append(_owned(builder, p, adj, wrt, bare))
        else:
            value = adjoints.spread_value(adj) if adj in adjoints.uniform else adjoints.ref(adj)
            results.append(ast.Call(func=builder.helper(runtime.match_grad), args=[value, codegen.name(p)],
                                    keywords=[]))
    return results


def _bare_results(builder: GradientBuilder, wrt: list[str], reverse: list) -> set[str]:
    """The differentiated parameters whose adjoint is returned as it is: in straight-line code where every value has
    a layout (so every array is float64, srcgrad/layouts.py), the adjoint's last value is a new array the gradient
    code made (an arithmetic result, ``@``, ``np.sum`` over axes: not an argument, a view, or another name's value)
    of the argument's layout. (``owned_grad`` would return it as it is, after checking at run time.)"""
    facts, adjoints, fn = builder.facts, builder.adjoints, builder.fn
    straight = all(isinstance(s, (ir.Op, ir.Return)) for s in fn.body) and \
        all(isinstance(s, (ast.stmt, Comment)) and not isinstance(s, Block) for s in reverse)
    if not straight or any(layout is None for layout in facts.layouts.values()):
        return set()
    helpers = {name: _SHAPED_LIKE[obj] for name, obj in builder.scope.bound.items()
               if callable(obj) and obj in _SHAPED_LIKE}
    owned = layouts.owned_results(reverse, facts.layouts, builder.scope.bind("np", np), helpers)
    out = set()
    for p in wrt:
        adj = adjoints.names.get(p)
        layout = facts.layouts.get(p)
        if adj not in adjoints.assigned or adj in adjoints.uniform or adj in adjoints.consts:
            continue
        found, fresh = owned.get(adj, (None, False))
        if layout is not None and found == layout and (fresh or (layout == "" and facts.kinds.get(p) == SCALAR)):
            out.add(p)  # (a Python number's adjoint: a number, made a float below)
    return out


# srcgrad's helpers whose result has the shape of one of their arguments (its position)
_SHAPED_LIKE = {runtime.extremum_grad: 2, runtime.restore_axes: 1, runtime.unbroadcast: 1, runtime.uniform_to: 1,
                runtime.matmul_grad_left: 1, runtime.matmul_grad_right: 2}


def _owned(builder: GradientBuilder, p: str, adj: str, wrt: list[str], bare: set[str]) -> ast.expr:
    """``owned_grad(p_bar, p, others...)``: no copy of an array the gradient code made itself, unless another result
    (earlier, or returned as it is) or argument is it."""
    facts, adjoints, fn = builder.facts, builder.adjoints, builder.fn
    gathering = _gathering(fn.signature)
    others: list[ast.expr] = [codegen.name(a) for a in fn.params if a != p and facts.kinds.get(a) != SCALAR
                              and a not in gathering]
    for a, star in gathering.items():
        gathered = codegen.name(a) if star == "*" else codegen.template_expr("KWARGS.values()", KWARGS=a)
        others.append(ast.Starred(value=gathered, ctx=ast.Load()))
    earlier = [adjoints.names.get(q) for q in wrt[:wrt.index(p)] + sorted(bare - set(wrt[:wrt.index(p)]))]
    others += [codegen.name(a) for a in earlier if a in adjoints.assigned and a not in adjoints.consts]
    value = adjoints.spread_value(adj) if adj in adjoints.uniform else adjoints.ref(adj)
    return ast.Call(func=builder.helper(runtime.owned_grad), args=[value, codegen.name(p), *others], keywords=[])


def _gathering(signature: str) -> dict[str, str]:
    """The parameters of a signature (text) that gather arguments: ``{"args": "*", "kwargs": "**"}``."""
    if "*" not in signature:
        return {}
    args = ast.parse(f"def _({signature}): pass").body[0].args
    return {**({args.vararg.arg: "*"} if args.vararg else {}), **({args.kwarg.arg: "**"} if args.kwarg else {})}
