"""Adjoint: the primal IR and the pass facts in; the gradient program out — the forward sweep (with what the reverse
sweep needs recorded) and the reverse sweep, as Python ``ast`` statements, comments and compound blocks.

What holds:
- the adjoint of ``v`` is named after it (``v_bar``); the first contribution assigns, later ones add
  (``x_bar = x_bar + c``, never in place, so aliased adjoints are never mutated); zeros are written only where
  control flow joins a path that assigned an adjoint with one that did not;
- a rule's contribution is inlined from the rule's own ``return`` expression when it is a single expression;
- broadcasting is undone here, once, for rules registered with ``broadcast=True`` — and only where shapes can
  differ; when every operand is a Python number the code is plain float arithmetic and ``math``;
- straight-line code needs no tape: SSA versions keep every value the reverse sweep reads. Inside loops, each
  straight-line segment pushes (once per execution) exactly the values its reverse reads, each branch inside a loop
  pushes its condition, each loop inside a loop pushes its trip count; the reverse sweep pops them in reverse order.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srcgrad import checks, codegen, generated, ir, naming, runtime
from srcgrad.errors import NonScalarOutput
from srcgrad.passes import (
    ARRAY,
    SCALAR,
    SEQUENCE,
    Facts,
    bind_call,
    bind_params,
    fails_on_bad_input,
    is_user_call,
    location,
)


@dataclass
class Comment:
    """A comment of the generated code: the heading of the lines that follow, up to the next heading or the end of
    its block (``line``: the user's line they compute), or an ``aside`` within a group."""

    text: str
    line: int | None = None
    aside: bool = False


@dataclass
class Block:
    """A compound statement of the gradient program: ``if test``, ``for target in iter``, ``while test``,
    ``with test [as target]``, ``try: body / except TYPES [as NAME]: ... / else: orelse / finally: final``
    (``handlers``: ``(types expression or None, name or None, items)``)."""

    kind: str
    test: ast.expr | None = None
    target: str | None = None
    iter: ast.expr | None = None
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)
    handlers: list = field(default_factory=list)
    final: list = field(default_factory=list)

    def parts(self) -> list[list]:
        """Every list of items the block holds, in program order."""
        return [self.body] + [h[2] for h in self.handlers] + [self.orelse, self.final]

    def expressions(self) -> list[ast.expr]:
        """The expressions of its header (the test, the iterable, the exception types)."""
        return [e for e in [self.test, self.iter] + [h[0] for h in self.handlers] if e is not None]


@dataclass
class Program:
    """The gradient program: forward items, then reverse items, then the results (one per wrt parameter)."""

    forward: list = field(default_factory=list)
    reverse: list = field(default_factory=list)
    results: list[ast.expr] = field(default_factory=list)
    value: ast.expr | None = None  # the function's value (saved before the reverse sweep restores loop values)
    float_valued: dict = field(default_factory=dict)  # a simplify env: float-valued names, and np (codegen)
    # srcgrad's own names, recorded where they are made (never recognised by their spelling): the lowering's
    # temporaries in the forward sweep and the adjoints in the reverse sweep, which the fuse pass may fold away
    temporaries: frozenset = frozenset()
    adjoints: frozenset = frozenset()
    derivatives: dict = field(default_factory=dict)  # IR name -> the name of its adjoint (or, forward, its tangent)
    return_line: int | None = None  # the user's line of the return whose value (and derivatives) it returns


def _segments(body: list) -> list:
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


def _loads(items: list) -> set[str]:
    names: set[str] = set()
    for item in items:
        if isinstance(item, ast.AST):
            names.update(n.id for n in ast.walk(item) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
        elif isinstance(item, Block):
            names.update(_loads(item.expressions()))
            for part in item.parts():
                names.update(_loads(part))
    return names


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
        place = [ast.Constant(value=self.fn.filename), ast.Constant(value=op.line), ast.Constant(value=op.col)]
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
    def __init__(self, fn: ir.Function, facts: Facts, scope: codegen.Scope, helper_variant: Any = None):
        self.fn = fn
        self.helper_variant = helper_variant  # (func, kinds, varied) -> calls.HelperVariant
        self.split_calls: dict[int, tuple[str, str]] = {}  # id(op) -> (forward function name, saved name)
        self.facts = facts
        self.scope = scope
        self.adj_names: dict[str, str] = {}
        self.assigned: set[str] = set()
        self.array_adjoint: set[str] = set()  # adjoints that may hold numpy values
        # Adjoints of arrays that may hold a number standing for an array of their value's shape filled with it (the
        # adjoint of a full sum or mean, and what elementwise operations pass on from it): cheaper than the array.
        self.uniform: set[str] = set()
        # Loop-invariant values whose reverse runs once after the loop's reverse sweep (their adjoints add up over
        # the iterations: the value is the same in each), not once per iteration.
        self.deferred: set[str] = set()
        defs: dict[str, list[ir.Op]] = {}
        for op in ir.walk_ops(fn.body):
            defs.setdefault(op.target, []).append(op)
        self.single_defs = {name: ops[0] for name, ops in defs.items() if len(ops) == 1}
        self.float_valued = _float_valued(self.single_defs)
        self.loop_defined = _loop_defined(fn.body)
        self.pushes: dict[int, list[str]] = {}  # id(first op of a segment) -> names its reverse reads
        self.pushed_conditions: set[int] = set()  # ids of If statements whose condition is recorded
        self.loop_counts: dict[int, str] = {}  # id(loop) -> trip-count variable (top-level loops)
        self._tape: str | None = None
        self._pullbacks: dict[int, str] = {}
        self.has_appends = any(op.form.kind == "append" for op in ir.walk_ops(fn.body))
        self.consts: dict[str, ast.expr] = {}  # adjoints known to be a number (top-level straight-line code only)
        self.restored: set[str] = set()  # loop variables the reverse loops set themselves
        self.invariant = _loop_invariant(fn.body, self.loop_defined)  # same value in every iteration
        self.control_depth = 0
        self.lengths: dict[tuple[int, str], str] = {}  # (id(op), list name) -> recorded length
        self.with_records: dict[int, list[str]] = {}  # id(With in a loop) -> what its context expression reads

    # --- names -----------------------------------------------------------------------------------------------

    def adj(self, var: str) -> str:
        if var not in self.adj_names:
            self.adj_names[var] = self.scope.local(naming.adjoint(var))
        return self.adj_names[var]

    @property
    def tape(self) -> str:
        if self._tape is None:
            self._tape = self.scope.local("tape")
        return self._tape


    def accumulate(self, out: list, var: str, contribution: ast.expr, is_array: bool, uniform: bool = False) -> None:
        name = self.adj(var)
        contribution = codegen.simplify(codegen.float_constants(contribution), self.float_valued)
        if is_array:
            self.array_adjoint.add(name)
        # ``uniform``: the contribution may be a number standing for an array of var's shape (see self.uniform).
        uniform = (uniform or _is_number(contribution)) and self.facts.kind(ir.Var(var)) != SCALAR
        if name in self.assigned:
            if not uniform:
                self.uniform.discard(name)  # a sum with a whole array is a whole array
            total = ast.BinOp(left=self.adj_ref(name), op=ast.Add(), right=contribution)
            self.consts.pop(name, None)
            out.append(codegen.assign(name, codegen.simplify(total)))
            return
        if uniform and not self.control_depth:
            self.uniform.add(name)
        if _is_number(contribution) and not self.control_depth:
            self.consts[name] = contribution  # propagated into its uses instead of assigned
            self.assigned.add(name)
        else:
            out.append(codegen.assign(name, contribution))
            self.assigned.add(name)

    def adj_ref(self, name: str) -> ast.expr:
        """How code reads an adjoint: its number when it is a known constant, else its name."""
        if name in self.consts:
            return ast.Constant(value=self.consts[name].value)
        return codegen.name(name)

    def materialize(self) -> list:
        """Assign the adjoints still held as constants, and give uniform adjoints their arrays (before control flow,
        which reads adjoints by name, the same code in every iteration)."""
        out = [self.spread(name) if name in self.uniform else codegen.assign(name, ast.Constant(value=c.value))
               for name, c in list(self.consts.items())]
        out += [self.spread(name) for name in sorted(self.uniform) if name not in self.consts]
        self.consts.clear()
        self.uniform.clear()
        return out

    def spread(self, name: str) -> ast.stmt:
        """``name = uniform_to(name, var)``: a uniform adjoint becomes an array of its value's shape."""
        value = self.adj_ref(name)
        self.consts.pop(name, None)
        self.uniform.discard(name)
        call = ast.Call(func=self.helper(runtime.uniform_to), args=[value, codegen.name(self._var_of(name))],
                        keywords=[])
        return codegen.assign(name, call)

    def keeps_uniform(self, op: ir.Op) -> bool:
        """Can ``op``'s reverse take a uniform adjoint as it is? Copies can, and elementwise operations whose array
        operands all have the result's shape: each contribution is then the number, or an array of that shape,
        and nothing is summed back to a smaller shape."""
        if op.form.kind == "copy":
            return True
        rule = op.rule
        if rule is None or is_user_call(op) or op.form.kind == "append":
            return False
        if not (rule.broadcast or isinstance(op.callee, np.ufunc) or op.form.kind == "unaryop"):
            return False
        return all(self.facts.same_shape(a.name, op.target) for a in op.operands()
                   if isinstance(a, ir.Var) and (self.facts.kind(a) != SCALAR or a.name in self.facts.varied))

    def push(self, names: list[str]) -> ast.stmt:
        value = codegen.name(names[0]) if len(names) == 1 else ast.Tuple(
            elts=[codegen.name(n) for n in names], ctx=ast.Load())
        return self.tape_call("append", [value])

    def pop_into(self, names: list[str]) -> ast.stmt:
        target = ast.Name(id=names[0], ctx=ast.Store()) if len(names) == 1 else ast.Tuple(
            elts=[ast.Name(id=n, ctx=ast.Store()) for n in names], ctx=ast.Store())
        return ast.Assign(targets=[target], value=self.tape_pop(), lineno=0)

    def tape_call(self, method: str, args: list) -> ast.stmt:
        func = ast.Attribute(value=codegen.name(self.tape), attr=method, ctx=ast.Load())
        return ast.Expr(value=ast.Call(func=func, args=args, keywords=[]))

    def tape_pop(self) -> ast.expr:
        func = ast.Attribute(value=codegen.name(self.tape), attr="pop", ctx=ast.Load())
        return ast.Call(func=func, args=[], keywords=[])

    # --- reverse sweep ---------------------------------------------------------------------------------------

    def reverse_block(self, body: list, depth: int) -> list:
        out: list = []
        for item in reversed(_segments(body)):
            if isinstance(item, list):
                out.extend(self.reverse_segment(item, depth))
            elif isinstance(item, ir.If):
                out.extend(self.reverse_if(item, depth))
            elif isinstance(item, (ir.For, ir.While)):
                out.extend(self.reverse_loop(item, depth))
            elif isinstance(item, ir.With):
                out.extend(self.reverse_with(item, depth))
            elif isinstance(item, ir.Try):
                out.extend(self.reverse_try(item, depth))
        return out

    def reverse_segment(self, ops: list[ir.Op], depth: int) -> list:
        code: list = []
        last_line = None
        for op in reversed(ops):
            if not self.facts.is_active(op.target) or op.target in self.deferred:
                continue
            lines = generated.mark(self.reverse_op(op), op)
            if lines and op.line != last_line and op.form.kind != "copy":
                text = self.fn.source_lines.get(op.line, "").strip()
                code.append(Comment(f"grad of line {op.line}: {text}", op.line))
                last_line = op.line
            code.extend(lines)
        if depth and code:
            reads = _loads(code) & self.loop_defined - self.restored - self.invariant
            pushed, recomputed = self.plan_records(ops, reads)
            prefix = [self.pop_into(pushed)] if pushed else []
            if recomputed:
                prefix.append(Comment("recompute what is cheaper to recompute than to record", aside=True))
                prefix.extend(codegen.assign(op.target, self.forward_value(op)) for op in recomputed)
            if pushed:
                self.pushes[id(ops[0])] = pushed
            code[:0] = prefix
        return code

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
                todo.extend(a.name for a in op.operands() if isinstance(a, ir.Var) and a.name in self.loop_defined
                            and a.name not in self.restored and a.name not in self.invariant)
            else:
                pushed.add(name)
        return sorted(pushed), [op for op in ops if op.target in recompute]

    def _recomputable(self, op: ir.Op) -> bool:
        return (op.rule is not None and not op.rule.nondiff and self.facts.kinds.get(op.target) == SCALAR
                and op.form.kind not in ("append", "copy") and op.callee is not runtime.setitem
                and all(self.facts.kind(a) == SCALAR for a in op.operands()))

    def reverse_op(self, op: ir.Op) -> list:
        g_name = self.adj_names.get(op.target)
        if g_name is None or g_name not in self.assigned:
            return []  # no gradient reached this value
        out = self._reverse_op(op, g_name)
        self.assigned.discard(g_name)  # the value is defined here: earlier values of the name start from zero
        self.consts.pop(g_name, None)
        self.uniform.discard(g_name)
        return out

    def _reverse_op(self, op: ir.Op, g_name: str) -> list:
        out: list = []
        full_reduction = not self.control_depth and _full_sum_or_mean(self.fn, op)
        uniform = g_name in self.uniform and not full_reduction  # (a full reduction's value is a number)
        if uniform and not self.keeps_uniform(op):
            out.append(self.spread(g_name))
            uniform = False
        g = self.adj_ref(g_name)
        g_is_array = g_name in self.array_adjoint
        if op.form.kind == "copy":
            src = op.args[0]
            if isinstance(src, ir.Var) and src.name in self.facts.varied:
                self.accumulate(out, src.name, g, g_is_array, uniform)
            return out
        if full_reduction:
            return self._reverse_full_reduction(op, g, out)
        if is_user_call(op):
            return out + self._reverse_call(op, g)
        if op.form.kind == "append":
            return out + self._reverse_append(op, g, g_is_array)
        rule = op.rule
        params = bind_params(self.fn, op)
        kinds = [self.facts.kind(a) for a in op.operands()]
        all_scalar = all(k == SCALAR for k in kinds)
        # (contribution index, element of a variadic parameter or None, operand)
        needed = []
        for i, pname in enumerate(rule.wrt):
            value = params.get(pname)
            elements = enumerate(value) if isinstance(value, tuple) else [(None, value)]
            needed.extend((i, j, v) for j, v in elements if isinstance(v, ir.Var) and v.name in self.facts.varied)
        if not needed:
            return out
        adjoint = rule.adjoint_for(all_scalar)
        templates = rule.inline_exprs(adjoint)
        mapping = {"g": g, "ans": codegen.name(op.target)}
        mapping.update({p: self._operand_as_read(op, v) for p, v in params.items()})
        if templates is None:
            contribs = self._call_rule(out, op, adjoint, mapping, params)
        else:
            contribs = {i: codegen.instantiate(templates[i], mapping, adjoint.__globals__, self.scope)
                        for i in sorted({i for i, _, _ in needed})}
        result_is_array = g_is_array or not all_scalar or self.facts.kind(ir.Var(op.target)) != SCALAR
        n_arrays = sum(k == ARRAY for k in kinds)
        grouped: dict[str, ast.expr] = {}
        for i, j, var in needed:
            c = contribs[i]
            if j is not None:
                c = ast.Subscript(value=c, slice=ast.Constant(value=j), ctx=ast.Load())
            # Unbroadcast only where shapes may differ: a number with arrays, or a number that a constructor spreads
            # over an array (np.full(3, w): no operand is an array, the result is).
            own = self.facts.kind(var)
            spread = own == SCALAR and (n_arrays or self.facts.kind(ir.Var(op.target)) != SCALAR)
            if rule.broadcast and (spread or (own == ARRAY and n_arrays > 1)) \
                    and not self.facts.same_shape(var.name, op.target):
                c = ast.Call(func=self.helper(runtime.unbroadcast), args=[c, codegen.operand(var)], keywords=[])
            grouped[var.name] = c if var.name not in grouped else ast.BinOp(
                left=grouped[var.name], op=ast.Add(), right=c)
        whole = {a.name for a in op.operands() if isinstance(a, ir.Var) and self.facts.kind(a) != SCALAR}
        for var_name, c in grouped.items():
            self.accumulate(out, var_name, c, result_is_array, uniform and not _scaled_by(c, whole | {op.target}))
        return out

    def _reverse_full_reduction(self, op: ir.Op, g: ast.expr, out: list) -> list:
        """``np.sum(a)`` / ``np.mean(a)`` over every axis: ``a``'s adjoint is uniform, ``g`` (or ``g / a.size``)
        everywhere, kept as that number until an operation needs the array (see self.uniform)."""
        a = bind_params(self.fn, op)["a"]
        if not (isinstance(a, ir.Var) and a.name in self.facts.varied):
            return out
        if op.rule.name == "np.mean":
            np_size = ast.Attribute(value=codegen.name(self.scope.bind("np", np)), attr="size", ctx=ast.Load())
            size = ast.Call(func=np_size, args=[codegen.name(self._same_shape_source(a.name))], keywords=[])
            # `or 1`: the mean of an empty array is nan (numpy warns), its gradient an empty array: the uniform
            # adjoint fills no element, and must not divide by zero on the way.
            size = ast.BoolOp(op=ast.Or(), values=[size, ast.Constant(value=1)])
            g = ast.BinOp(left=g, op=ast.Div(), right=size)
        self.accumulate(out, a.name, g, True, uniform=True)
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
            key = (id(op), value.name)
            if key not in self.lengths:
                self.lengths[key] = self.scope.local(f"{value.name}_len")
                if op.target in self.loop_defined:
                    self.loop_defined.add(self.lengths[key])
            n = codegen.name(self.lengths[key])
            return ast.Subscript(value=codegen.name(value.name), slice=ast.Slice(upper=n), ctx=ast.Load())
        return codegen.operand(value)

    def _reverse_append(self, op: ir.Op, g: ast.expr, g_is_array: bool) -> list:
        """``xs_1 = append(xs, v)``: v gets the last element's adjoint, xs the others."""
        out: list = []
        lst, value = op.args
        if isinstance(value, ir.Var) and value.name in self.facts.varied:
            last = ast.Subscript(value=g, slice=ast.Constant(value=-1), ctx=ast.Load())
            self.accumulate(out, value.name, last, self.facts.kind(value) != SCALAR)
        if isinstance(lst, ir.Var) and lst.name in self.facts.varied:
            rest = ast.Call(func=self.helper(runtime.drop_last), args=[g], keywords=[])
            self.accumulate(out, lst.name, rest, True)
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
        if op.target in self.loop_defined:
            self.loop_defined.add(saved)  # rewritten every iteration: the loop must record it
        call = ast.Call(func=codegen.name(bwd), args=[codegen.name(saved), g], keywords=[])
        if len(varied) == 1:
            contribs = [call]
        else:
            if id(op) not in self._pullbacks:
                self._pullbacks[id(op)] = self.scope.local(f"{op.target}_pullback")
            tmp = self._pullbacks[id(op)]
            out.append(codegen.assign(tmp, call))
            contribs = [ast.Subscript(value=codegen.name(tmp), slice=ast.Constant(value=i), ctx=ast.Load())
                        for i in range(len(varied))]
        grouped: dict[str, ast.expr] = {}
        for p, c in zip(varied, contribs):
            name = params[p].name
            grouped[name] = c if name not in grouped else ast.BinOp(left=grouped[name], op=ast.Add(), right=c)
        for name, c in grouped.items():
            self.accumulate(out, name, c, self.facts.kinds.get(name) != SCALAR)
        return out

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
        if id(op) not in self._pullbacks:
            self._pullbacks[id(op)] = self.scope.local(f"{op.target}_pullback")
        tmp = self._pullbacks[id(op)]
        out.append(codegen.assign(tmp, call))
        return {i: ast.Subscript(value=codegen.name(tmp), slice=ast.Constant(value=i), ctx=ast.Load())
                for i in range(len(op.rule.wrt))}

    def reverse_if(self, stmt: ir.If, depth: int) -> list:
        pending = self.materialize()
        self.control_depth += 1
        try:
            return pending + self._reverse_if(stmt, depth)
        finally:
            self.control_depth -= 1

    def _reverse_if(self, stmt: ir.If, depth: int) -> list:
        before = set(self.assigned)
        then_code = self.reverse_block(stmt.body, depth)
        after_then = self.assigned
        self.assigned = set(before)
        else_code = self.reverse_block(stmt.orelse, depth)
        after_else = self.assigned
        if not then_code and not else_code:
            self.assigned = after_then | after_else
            return []
        joined = after_then | after_else
        for code, state in ((then_code, after_then), (else_code, after_else)):
            for name in sorted(joined - state):
                var = self._var_of(name)
                code.append(codegen.assign(name, self.zero_of(var)))
        self.assigned = joined
        if depth:
            self.pushed_conditions.add(id(stmt))
            test = self.tape_pop()
        else:
            test = codegen.operand(stmt.cond)
        return [Block("if", test=test, body=then_code or [ast.Pass()], orelse=else_code)]

    def reverse_with(self, stmt: ir.With, depth: int) -> list:
        """The reverse sweep of a ``with`` block: inside the manager computed again (np.errstate: see
        lower.stmt_With), else as it is. In a loop, what the context expression reads is recorded after the block."""
        pending = self.materialize()
        self.control_depth += 1
        try:
            body = self.reverse_block(stmt.body, depth)
        finally:
            self.control_depth -= 1
        if not body or not stmt.reenter:
            return pending + body
        prefix: list = []
        if depth:
            made = {op.target for op in stmt.context}
            reads = {a.name for op in stmt.context for a in op.operands() if isinstance(a, ir.Var)}
            reads = sorted(reads & self.loop_defined - self.restored - self.invariant - made)
            if reads:
                self.with_records[id(stmt)] = reads
                prefix.append(self.pop_into(reads))
        prefix.extend(codegen.assign(op.target, self.forward_value(op)) for op in stmt.context)
        return pending + prefix + [Block("with", test=codegen.operand(stmt.manager), body=body)]

    def reverse_try(self, stmt: ir.Try, depth: int) -> list:
        pending = self.materialize()
        self.control_depth += 1
        try:
            return pending + self._reverse_try(stmt, depth)
        finally:
            self.control_depth -= 1

    def _reverse_try(self, stmt: ir.Try, depth: int) -> list:
        """The reverse of ``finally``, then of the path the forward sweep took (recorded in ``stmt.path``: 0 the body
        and ``else``, k the k-th handler), as an if/elif chain: the reverse sweep is never inside the user's ``try``,
        so its own exceptions are never caught by an ``except``. The part of the body that ran before an exception
        needs no reverse: the lowering refuses reading what it assigned on the handler's path."""
        final = self.reverse_block(stmt.final, depth)
        before = set(self.assigned)
        codes, states = [], []
        for parts in [[stmt.orelse, stmt.body]] + [[h.body] for h in stmt.handlers]:
            self.assigned = set(before)
            code: list = []
            for part in parts:
                code.extend(self.reverse_block(part, depth))
            codes.append(code)
            states.append(self.assigned)
        joined = set().union(*states)
        self.assigned = joined
        if not any(codes):
            return final
        for code, state in zip(codes, states):
            for name in sorted(joined - state):
                code.append(codegen.assign(name, self.zero_of(self._var_of(name))))
        prefix = []
        if depth:
            self.pushed_conditions.add(id(stmt))
            prefix.append(codegen.assign(stmt.path, self.tape_pop()))
        chain = codes[-1]
        for k in reversed(range(len(codes) - 1)):
            test = ast.Compare(left=codegen.name(stmt.path), ops=[ast.Eq()], comparators=[ast.Constant(value=k)])
            chain = [Block("if", test=test, body=codes[k] or [ast.Pass()], orelse=chain)]
        return final + prefix + chain

    def _var_of(self, adj_name: str) -> str:
        return next(v for v, a in self.adj_names.items() if a == adj_name)

    def reverse_loop(self, loop: ir.For | ir.While, depth: int) -> list:
        pending = self.materialize()
        self.control_depth += 1
        try:
            return pending + self._reverse_loop(loop, depth)
        finally:
            self.control_depth -= 1

    def _reverse_loop(self, loop: ir.For | ir.While, depth: int) -> list:
        # Invariant operations at the top of a top-level loop's body run in every iteration with the same operands:
        # their reverse runs once, after the loop's, on the adjoint summed over the iterations.
        deferred = [op for op in loop.body if isinstance(op, ir.Op) and not depth and op.target in self.invariant
                    and self.facts.is_active(op.target) and op.form.kind != "copy" and not is_user_call(op)]
        self.deferred.update(op.target for op in deferred)
        body_defined = {op.target for op in ir.walk_ops(loop.body)} - set(loop.carried) - self.deferred
        if isinstance(loop, ir.For):
            body_defined.add(loop.target)
        written = self._written_adjoints(loop.body)
        # A loop-carried variable with a gradient on entry that the body rebinds (even to a constant) loses it.
        rebound = [v for v in loop.carried if self.adj_names.get(v) in self.assigned]
        if not written and not rebound:
            return []
        outer = sorted(self.adj(v) for v in written if v not in body_defined)
        pre = []
        for name in outer:  # adjoints that accumulate across iterations must hold a value on entry
            if name not in self.assigned:
                var = self._var_of(name)
                # An invariant's value does not exist before the loop: its adjoint starts as the number 0.0.
                zero = ast.Constant(value=0.0) if var in self.deferred else self.zero_of(var)
                pre.append(codegen.assign(name, zero))
                self.assigned.add(name)
        start = set(self.assigned)
        is_for = isinstance(loop, ir.For)
        if is_for:
            self.restored.add(loop.target)  # the reverse loop walks the range backwards: no need to record it
        body = self.reverse_block(loop.body, depth + 1)
        # Every iteration's reverse starts from the same state: an adjoint that held a value when the iteration
        # began and was used up by a definition inside it (a loop-carried variable rebound in the body) is zero
        # for the iteration before.
        for name in sorted(start):
            if name not in self.assigned:
                body.append(codegen.assign(name, self.zero_of(self._var_of(name))))
        self.assigned = start
        has_break = any(isinstance(s, ir.Break) for s in _walk_same_loop(loop.body))
        header = Comment(f"grad of the loop at line {loop.line}: its iterations in reverse", loop.line)
        if is_for:
            # A for loop iterates over a range (the lowering makes it so): walk it backwards. With a break, only
            # the iterations that ran: the counted prefix. Inside another loop, the range itself is recorded.
            if depth:
                walked: ast.expr = self.tape_pop()
            elif has_break:
                count = codegen.name(self.loop_count(loop))
                walked = ast.Subscript(value=codegen.operand(loop.iterable), slice=ast.Slice(upper=count),
                                       ctx=ast.Load())
            else:
                walked = codegen.operand(loop.iterable)
            self.loop_counts.setdefault(id(loop), "")
            rng = ast.Call(func=self.helper(reversed), args=[walked], keywords=[])
            block = Block("for", target=loop.target, iter=rng, body=body or [ast.Pass()])
            return pre + [header, block] + self.reverse_deferred(deferred, walked)
        count_expr = self.tape_pop() if depth else codegen.name(self.loop_count(loop))
        self.loop_counts.setdefault(id(loop), "")
        rng = ast.Call(func=self.helper(range), args=[count_expr], keywords=[])
        block = Block("for", target=self.scope.local("_"), iter=rng, body=body or [ast.Pass()])
        return pre + [header, block] + self.reverse_deferred(deferred, count_expr)

    def reverse_deferred(self, deferred: list[ir.Op], ran: ast.expr) -> list:
        """The reverse of the loop's invariant operations, once, if the loop ran at all (``ran`` is truthy then:
        the range walked, or the iteration count); their operands' adjoints are given a value first."""
        self.deferred.difference_update(op.target for op in deferred)
        if not deferred:
            return []
        pre, code = [], []
        for op in reversed(deferred):
            for a in op.operands():
                if isinstance(a, ir.Var) and a.name in self.facts.varied and a.name not in self.deferred:
                    name = self.adj(a.name)
                    if name not in self.assigned:
                        pre.append(codegen.assign(name, self.zero_of(a.name)))
                        self.assigned.add(name)
            code.extend(generated.mark(self.reverse_op(op), op))
        if not code:
            return pre
        note = Comment("grad of the loop's invariant values, added up over its iterations")
        return pre + [note, Block("if", test=ran, body=code)]

    def loop_count(self, loop: Any) -> str:
        if not self.loop_counts.get(id(loop)):
            self.loop_counts[id(loop)] = self.scope.local("n_iter")
        return self.loop_counts[id(loop)]

    def _written_adjoints(self, body: list) -> set[str]:
        written = set()
        for op in ir.walk_ops(body):
            if not self.facts.is_active(op.target):
                continue
            if op.form.kind == "copy":
                operands = [op.args[0]]
            elif is_user_call(op):
                operands = list(bind_call(op).values())
            elif op.form.kind == "append":
                operands = list(op.args)
            else:
                params = bind_params(self.fn, op)
                operands = []
                for p in op.rule.wrt:
                    value = params.get(p)
                    operands.extend(value if isinstance(value, tuple) else [value])
            written.update(a.name for a in operands if isinstance(a, ir.Var) and a.name in self.facts.varied)
        return written

    # --- forward sweep ---------------------------------------------------------------------------------------

    def forward_block(self, body: list, depth: int) -> list:
        out: list = []
        for item in _segments(body):
            if isinstance(item, list):
                out.extend(self.forward_segment(item))
            elif isinstance(item, ir.If):
                then_items = self.forward_block(item.body, depth)
                else_items = self.forward_block(item.orelse, depth)
                if then_items or else_items:  # both branches may be empty once unused values are dropped
                    test = codegen.operand(item.cond)
                    if not then_items:  # (an assert: `if not t1: raise ...`)
                        test, then_items, else_items = ast.UnaryOp(op=ast.Not(), operand=test), else_items, []
                    out.append(Block("if", test=test, body=then_items, orelse=else_items))
                if id(item) in self.pushed_conditions:
                    # recorded after the branch, so the reverse pops it before the branch's own records
                    out.append(self.tape_call("append", [codegen.operand(item.cond)]))
            elif isinstance(item, (ir.For, ir.While)):
                out.extend(self.forward_loop(item, depth))
            elif isinstance(item, ir.With):
                out.extend(self.forward_with(item, depth))
                if id(item) in self.with_records:
                    out.append(self.push(self.with_records[id(item)]))
            elif isinstance(item, ir.Try):
                out.append(try_block(item, lambda part: self.forward_block(part, depth)))
                if id(item) in self.pushed_conditions:
                    out.append(self.tape_call("append", [codegen.name(item.path)]))
            elif isinstance(item, ir.Break):
                out.append(ast.Break())
        return out

    def forward_with(self, stmt: ir.With, depth: int) -> list:
        """``with manager as target: body``; when the manager may suppress an exception of the body, a flag set at the
        body's end is checked after it: a block that ran in part has no reverse sweep (runtime.check_completed)."""
        body = self.forward_block(stmt.body, depth)
        if not stmt.checked:
            return [Block("with", test=codegen.operand(stmt.manager), target=stmt.target, body=body)]
        done = self.scope.local("completed")
        where = [ast.Constant(value=self.fn.filename), ast.Constant(value=stmt.line), ast.Constant(value=stmt.col)]
        check = ast.Call(func=self.helper(checks.check_completed), args=[codegen.name(done), *where], keywords=[])
        return [codegen.assign(done, ast.Constant(value=False)),
                Block("with", test=codegen.operand(stmt.manager), target=stmt.target,
                      body=body + [codegen.assign(done, ast.Constant(value=True))]),
                ast.Expr(value=check)]

    def forward_segment(self, ops: list[ir.Op]) -> list:
        out: list = []
        last_line = None
        push = self.pushes.get(id(ops[0]))
        records = {}
        for (op_id, lst_name), n in self.lengths.items():
            records.setdefault(op_id, []).append((lst_name, n))
        emitted = [op for op in ops if self._emit_forward(op) or id(op) in records or op.guarded]
        push_after = None
        if push:
            non_copies = [i for i, op in enumerate(emitted) if op.form.kind != "copy"]
            push_after = non_copies[-1] if non_copies else -1
            if push_after == -1:
                out.append(self.push(push))
        for i, op in enumerate(emitted):
            if op.line != last_line and op.form.kind not in ("copy", "bound"):
                out.append(Comment(f"line {op.line}: {self.fn.source_lines.get(op.line, '').strip()}", op.line))
                last_line = op.line
            first = len(out)
            out.extend(self.guards(op))
            if not self._emit_forward(op):
                pass  # only its list's length is recorded
            elif id(op) in self.split_calls:
                fwd, saved = self.split_calls[id(op)]
                call = codegen.op_value(op)
                call.func = codegen.name(fwd)
                targets = ast.Tuple(elts=[ast.Name(id=op.target, ctx=ast.Store()),
                                          ast.Name(id=saved, ctx=ast.Store())], ctx=ast.Store())
                out.append(ast.Assign(targets=[targets], value=call, lineno=0))
            else:
                out.extend(self.forward_statements(op))
            for lst_name, n in records.get(id(op), []):
                length = ast.Call(func=self.helper(len), args=[codegen.name(lst_name)], keywords=[])
                out.append(codegen.assign(n, length))
            generated.mark(out[first:], op)
            if i == push_after:
                out.append(self.push(push))
        return out

    def _emit_forward(self, op: ir.Op) -> bool:
        """Is the op's value needed: by the reverse sweep, the result, control flow, or for its effects?"""
        return self.live is None or op.target in self.live or not _pure(op)

    def compute_live(self, seeds: set[str]) -> None:
        """Forward values worth computing: what the reverse sweep and the results read, what control flow reads,
        and everything those depend on. Pure operations whose values nobody reads are not emitted."""
        live = set(seeds)
        for stmt in _walk_all(self.fn.body):
            operand = getattr(stmt, "cond", None) or getattr(stmt, "iterable", None) or getattr(stmt, "manager", None)
            if isinstance(stmt, ir.Try):
                operand = ir.Var(stmt.path)
            if isinstance(operand, ir.Var):
                live.add(operand.name)
        ops = list(ir.walk_ops(self.fn.body))
        changed = True
        while changed:
            changed = False
            for op in ops:
                if op.target in live or not _pure(op) or id(op) in self.split_calls or op.guarded:
                    for a in op.operands():
                        if isinstance(a, ir.Var) and a.name not in live:
                            live.add(a.name)
                            changed = True
        self.live = live

    def forward_loop(self, loop: ir.For | ir.While, depth: int) -> list:
        recorded = id(loop) in self.loop_counts  # the loop has a reverse sweep
        body = self.forward_block(loop.body, depth + 1)
        has_break = any(isinstance(s, ir.Break) for s in _walk_same_loop(loop.body))
        out: list = []
        counter = None
        if recorded and (has_break or isinstance(loop, ir.While)):
            counter = self.loop_count(loop)
            out.append(codegen.assign(counter, ast.Constant(value=0)))
            body.insert(0, ast.AugAssign(target=ast.Name(id=counter, ctx=ast.Store()), op=ast.Add(),
                                         value=ast.Constant(value=1)))
        if isinstance(loop, ir.For):
            out.append(Block("for", target=loop.target, iter=codegen.operand(loop.iterable), body=body))
            if recorded and depth:
                walked = codegen.operand(loop.iterable)
                if counter is not None:
                    walked = ast.Subscript(value=walked, slice=ast.Slice(upper=codegen.name(counter)),
                                           ctx=ast.Load())
                out.append(self.tape_call("append", [walked]))
            return out
        test = self.forward_block(loop.test, depth + 1)
        if test:
            exit_test = ast.UnaryOp(op=ast.Not(), operand=codegen.operand(loop.cond))
            body = test + [Block("if", test=exit_test, body=[ast.Break()])] + body
            out.append(Block("while", test=ast.Constant(value=True), body=body))
        else:
            out.append(Block("while", test=codegen.operand(loop.cond), body=body))
        if recorded and depth:
            out.append(self.tape_call("append", [codegen.name(counter)]))
        return out


def try_block(stmt: ir.Try, block: Any) -> Block:
    """The ``try`` statement of the forward sweep, each part made by ``block(ir_statements)``."""
    handlers = [(codegen.operand(h.types) if h.types is not None else None, h.name, block(h.body) or [ast.Pass()])
                for h in stmt.handlers]
    return Block("try", body=block(stmt.body) or [ast.Pass()], handlers=handlers, orelse=block(stmt.orelse),
                 final=block(stmt.final))


def _pure(op: ir.Op) -> bool:
    """Ops without effects: dropping one whose value is unused changes nothing. Python's float arithmetic and the
    ``math`` module raise on bad input (``math.log(-1)``, ``1 / 0``); those stay, so the gradient fails where the
    function fails (:func:`srcgrad.passes.fails_on_bad_input`). numpy only warns, so numpy operations may go."""
    if op.keep or op.effect:
        return False
    if op.form.kind == "copy":
        return True
    return op.rule is not None and op.form.kind != "append" and not fails_on_bad_input(op)


def _walk_all(body: list):
    for stmt in body:
        yield stmt
        for region in ir.regions(stmt):
            yield from _walk_all(region)


_FULL_REDUCTIONS = {"np.sum", "np.mean", "np.prod", "np.max", "np.min", "np.amax", "np.amin", "np.var", "np.std",
                    "np.linalg.norm", "sum", "np.dot", "np.vdot", "np.trace"}


def _full_reduction(fn: ir.Function, var: str | None) -> bool:
    """Is ``var`` certainly a scalar: a reduction over every axis (np.sum(x), x.mean(), np.vdot...)?"""
    op = next((o for o in ir.walk_ops(fn.body) if o.target == var), None)
    return op is not None and _reduces_everything(fn, op)


def _reduces_everything(fn: ir.Function, op: ir.Op) -> bool:
    """Is ``op`` a reduction over every axis, with no axes kept?"""
    if op.rule is None or op.rule.name not in _FULL_REDUCTIONS:
        return False
    if op.rule.name in ("np.dot", "np.trace"):
        return False  # depends on the operands' dimensions
    params = bind_params(fn, op)
    axis, keepdims = params.get("axis"), params.get("keepdims")
    none_axis = axis is None or (isinstance(axis, ir.Const) and axis.value is None)
    no_keep = keepdims is None or (isinstance(keepdims, ir.Const) and keepdims.value is False)
    return none_axis and no_keep and not (op.rule.name == "np.linalg.norm" and "ord" in params
                                          and isinstance(params["ord"], ir.Const) and params["ord"].value == "nuc")


def _scaled_by(expr: ast.expr, names: set[str]) -> bool:
    """Is ``expr`` a product or quotient with a factor that reads one of ``names`` (arrays of the full shape), so
    that its value is a whole array even when the adjoint in it is a number?"""
    if isinstance(expr, ast.IfExp):
        return _scaled_by(expr.body, names) and _scaled_by(expr.orelse, names)
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
        if (isinstance(callee, np.ufunc) or getattr(callee, "__module__", None) == "math") \
                and getattr(callee, "__name__", None) in codegen.FLOAT_UFUNCS:
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
    return op.rule is not None and op.rule.name in ("np.sum", "np.mean") and _reduces_everything(fn, op)


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _loop_invariant(body: list, loop_defined: set[str]) -> set[str]:
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
            if name in invariant or name not in loop_defined:
                continue
            if all(op.rule is not None and op.form.kind not in ("append", "copy") and op.callee is not runtime.setitem
                   and all(not isinstance(a, ir.Var) or a.name not in loop_defined or a.name in invariant
                           for a in op.operands()) for op in ops):
                invariant.add(name)
                changed = True
    return invariant


def _walk_same_loop(body: list):
    for stmt in body:
        yield stmt
        if isinstance(stmt, ir.If):
            yield from _walk_same_loop(stmt.body)
            yield from _walk_same_loop(stmt.orelse)


def _loop_defined(body: list, inside: bool = False) -> set[str]:
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, ir.Op):
            if inside:
                names.add(stmt.target)
        elif isinstance(stmt, ir.If):
            names |= _loop_defined(stmt.body, inside) | _loop_defined(stmt.orelse, inside)
        elif isinstance(stmt, ir.For):
            names.add(stmt.target)
            names |= _loop_defined(stmt.body, True)
        elif isinstance(stmt, ir.While):
            names |= _loop_defined(stmt.test, True) | _loop_defined(stmt.body, True)
        elif isinstance(stmt, (ir.With, ir.Try)):
            for region in ir.regions(stmt):
                names |= _loop_defined(region, inside)
    return names


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
        builder.control_depth = 1  # no constant adjoints: every adjoint is a variable
    ret = fn.body[-1]
    prologue: list = []
    out_var = ret.value.name if isinstance(ret.value, ir.Var) else None
    value = codegen.operand(ret.value)
    if out_var in builder.loop_defined and mode == "value_and_grad":
        saved = scope.local("value")
        prologue.append(codegen.assign(saved, value))
        value = codegen.name(saved)
    if mode in ("grad", "value_and_grad") and facts.kind(ret.value) == SEQUENCE:
        raise NonScalarOutput(
            f"grad needs a scalar output, but {fn.name} returns a tuple or list", location(fn, ret),
            hint="use srcgrad.vjp(f)(*args, seed) with one seed per element, or differentiate each element "
            "separately",
        )
    if mode in ("grad", "value_and_grad") and (out_var is None or facts.kind(ret.value) != SCALAR
                                               or fn.may_return_non_number) and not _full_reduction(fn, out_var):
        check = ast.Call(func=builder.helper(checks.check_scalar_output),
                         args=[codegen.operand(ret.value), ast.Constant(value=fn.name)], keywords=[])
        prologue.append(ast.Expr(value=check))
    elif mode == "vjp" and (out_var is None or facts.kind(ret.value) not in (SCALAR, SEQUENCE)
                            or fn.may_return_non_number) and not _full_reduction(fn, out_var):
        check = ast.Call(func=builder.helper(checks.check_numeric_output),
                         args=[codegen.operand(ret.value), ast.Constant(value=fn.name)], keywords=[])
        prologue.append(ast.Expr(value=check))
    if out_var is not None and out_var in facts.varied:
        seed = codegen.name(seed_name) if seed_name else ast.Constant(value=1.0)
        builder.accumulate(prologue, out_var, seed, bool(seed_name) or facts.kind(ret.value) != SCALAR)
        if mode in ("grad", "value_and_grad"):
            builder.uniform.discard(builder.adj(out_var))  # the output is a number (checked), its adjoint too
    reverse = builder.reverse_block(fn.body, 0)
    results = _results(builder, facts, wrt, mode)
    seeds = _loads(prologue + reverse + results)
    if mode in ("value_and_grad", "split"):
        seeds |= _loads([value])
    if optimize:
        builder.compute_live(seeds)
    forward = builder.forward_block(fn.body, 0)
    if builder._tape is not None:
        forward.insert(0, codegen.assign(builder.tape, ast.List(elts=[], ctx=ast.Load())))
    program = Program(forward=forward, reverse=prologue + reverse, results=results, value=value,
                      temporaries=fn.temporaries, adjoints=frozenset(builder.adj_names.values()),
                      derivatives=dict(builder.adj_names), return_line=ret.line)
    link(program, scope)
    program.float_valued = {**builder.float_valued, **codegen.modules_env(scope)}
    return program


def link(program: Program, scope: codegen.Scope) -> None:
    """Bind srcgrad's own names in every expression of the program (codegen.own_name)."""
    trees: list = [*program.results, program.value]

    def items(block: list) -> None:
        for item in block:
            if isinstance(item, Block):
                trees.extend(item.expressions())
                for part in item.parts():
                    items(part)
            elif isinstance(item, ast.AST):
                trees.append(item)

    items(program.forward)
    items(program.reverse)
    scope.link(trees)



def _results(builder: GradientBuilder, facts: Facts, wrt: list[str], mode: str) -> list[ast.expr]:
    """One expression per differentiated parameter: its adjoint, shaped like the argument."""
    results = []
    gathering = _gathering(builder.fn.signature)
    for p in wrt:
        adj = builder.adj_names.get(p)
        if adj is not None and adj in builder.assigned:
            if mode == "split" and adj in builder.uniform:
                results.append(ast.Call(func=builder.helper(runtime.uniform_to),
                                        args=[builder.adj_ref(adj), codegen.name(p)], keywords=[]))
            elif mode == "split" or (facts.kinds.get(p) == SCALAR and adj not in builder.array_adjoint):
                results.append(builder.adj_ref(adj))
            elif mode in ("grad", "value_and_grad") and facts.kinds.get(p) != SCALAR:
                # No copy of an array the gradient code made itself, unless another result or argument is it.
                others = [codegen.name(a) for a in builder.fn.params if a != p and facts.kinds.get(a) != SCALAR
                          and a not in gathering]
                others += [ast.Starred(value=codegen.name(a), ctx=ast.Load()) if star == "*" else ast.Starred(
                    value=ast.Call(func=ast.Attribute(value=codegen.name(a), attr="values", ctx=ast.Load()), args=[],
                                   keywords=[]), ctx=ast.Load()) for a, star in gathering.items()]
                earlier = [builder.adj_names.get(q) for q in wrt[:wrt.index(p)]]
                others += [codegen.name(a) for a in earlier if a in builder.assigned and a not in builder.consts]
                results.append(ast.Call(func=builder.helper(runtime.owned_grad),
                                        args=[builder.adj_ref(adj), codegen.name(p), *others], keywords=[]))
            else:
                value = builder.adj_ref(adj)
                results.append(ast.Call(func=builder.helper(runtime.match_grad), args=[value, codegen.name(p)],
                                        keywords=[]))
        elif facts.kinds.get(p) == SCALAR:
            results.append(ast.Constant(value=0.0))
        else:
            results.append(ast.Call(func=builder.helper(runtime.zeros_like), args=[codegen.name(p)], keywords=[]))
    return results


def _gathering(signature: str) -> dict[str, str]:
    """The parameters of a signature (text) that gather arguments: ``{"args": "*", "kwargs": "**"}``."""
    if "*" not in signature:
        return {}
    args = ast.parse(f"def _({signature}): pass").body[0].args
    return {**({args.vararg.arg: "*"} if args.vararg else {}), **({args.kwarg.arg: "**"} if args.kwarg else {})}
