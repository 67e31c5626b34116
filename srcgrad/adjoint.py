"""Adjoint: the primal IR and the pass facts in, the reverse sweep out (as Python ``ast`` statements and comments).

What holds:
- the adjoint of ``v`` is named after it (``v_bar``); the first contribution assigns, later ones add
  (``x_bar = x_bar + c``, never in place, so aliased adjoints are never mutated); no zeros are allocated for an
  adjoint that is written once;
- a rule's contribution is inlined from the rule's own ``return`` expression when it is a single expression;
- broadcasting is undone here, once, for rules registered with ``broadcast=True`` — and only when some operand may be
  an array; when every operand is a Python number the code is plain float arithmetic and ``math``;
- straight-line code needs no tape: SSA versions keep every value the reverse sweep reads.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from srcgrad import codegen, ir, runtime
from srcgrad.errors import SrcgradError
from srcgrad.passes import ARRAY, SCALAR, Facts, bind_params, location


@dataclass
class Comment:
    text: str


@dataclass
class Reverse:
    """The reverse sweep of a function."""

    body: list = field(default_factory=list)  # ast.stmt | Comment
    results: list[ast.expr] = field(default_factory=list)  # one per wrt parameter
    prologue: list = field(default_factory=list)  # statements right after the forward pass (checks, seed)


class AdjointBuilder:
    def __init__(self, fn: ir.Function, facts: Facts, scope: codegen.Scope):
        self.fn = fn
        self.facts = facts
        self.scope = scope
        self.adj_names: dict[str, str] = {}
        self.assigned: set[str] = set()
        self.array_adjoint: set[str] = set()  # adjoints that may hold numpy values

    # --- names -----------------------------------------------------------------------------------------------

    def adj(self, var: str) -> str:
        if var not in self.adj_names:
            self.adj_names[var] = self.scope.local(f"{var}_bar")
        return self.adj_names[var]

    def helper(self, func: Any) -> ast.expr:
        return codegen.name(self.scope.bind(func.__name__, func))

    def accumulate(self, out: list, var: str, contribution: ast.expr, is_array: bool) -> None:
        name = self.adj(var)
        if is_array:
            self.array_adjoint.add(name)
        if name in self.assigned:
            out.append(codegen.assign(name, ast.BinOp(left=codegen.name(name), op=ast.Add(), right=contribution)))
        else:
            out.append(codegen.assign(name, contribution))
            self.assigned.add(name)

    # --- the sweep -------------------------------------------------------------------------------------------

    def reverse_block(self, body: list) -> list:
        out: list = []
        last_line = None
        for stmt in reversed(body):
            if isinstance(stmt, ir.Op):
                if not self.facts.is_active(stmt.target):
                    continue
                code = self.reverse_op(stmt)
                if code and stmt.line != last_line:
                    text = self.fn.source_lines.get(stmt.line, "").strip()
                    out.append(Comment(f"grad of line {stmt.line}: {text}"))
                    last_line = stmt.line
                out.extend(code)
            elif isinstance(stmt, ir.Return):
                continue
            else:
                raise SrcgradError("control flow is not differentiated yet", location(self.fn, stmt))
        return out

    def reverse_op(self, op: ir.Op) -> list:
        g_name = self.adj_names.get(op.target)
        if g_name is None or g_name not in self.assigned:
            return []  # no gradient reached this value
        g = codegen.name(g_name)
        g_is_array = g_name in self.array_adjoint
        out: list = []
        if op.form.kind == "copy":
            src = op.args[0]
            if isinstance(src, ir.Var) and src.name in self.facts.varied:
                self.accumulate(out, src.name, g, g_is_array)
            return out
        rule = op.rule
        params = bind_params(self.fn, op)
        kinds = [self.facts.kind(a) for a in op.operands()]
        all_scalar = all(k == SCALAR for k in kinds)
        needed = [
            (i, pname, params[pname]) for i, pname in enumerate(rule.wrt)
            if isinstance(params.get(pname), ir.Var) and params[pname].name in self.facts.varied
        ]
        if not needed:
            return out
        adjoint = rule.adjoint_for(all_scalar)
        templates = rule.inline_exprs(adjoint)
        mapping = {"g": g, "ans": codegen.name(op.target)}
        mapping.update({p: codegen.operand(v) for p, v in params.items()})
        if templates is None:
            contribs = self._call_rule(out, op, adjoint, mapping, params)
        else:
            contribs = {i: codegen.instantiate(templates[i], mapping, adjoint.__globals__, self.scope)
                        for i, _, _ in needed}
        result_is_array = g_is_array or not all_scalar or self.facts.kind(ir.Var(op.target)) == ARRAY
        grouped: dict[str, ast.expr] = {}
        n_arrays = sum(k == ARRAY for k in kinds)
        for i, _pname, var in needed:
            c = contribs[i]
            # A Python-number operand cannot enlarge the result's shape: unbroadcast only where shapes may differ.
            own = self.facts.kind(var)
            if rule.broadcast and ((own == SCALAR and n_arrays) or (own == ARRAY and n_arrays > 1)):
                c = ast.Call(func=self.helper(runtime.unbroadcast), args=[c, codegen.operand(var)], keywords=[])
            grouped[var.name] = c if var.name not in grouped else ast.BinOp(
                left=grouped[var.name], op=ast.Add(), right=c)
        for var_name, c in grouped.items():
            self.accumulate(out, var_name, c, result_is_array)
        return out

    def _call_rule(self, out: list, op: ir.Op, adjoint: Any, mapping: dict, params: dict) -> dict:
        func = codegen.name(self.scope.bind(adjoint.__name__.lstrip("_") + "_rule", adjoint))
        args = [mapping["g"], mapping["ans"]] + [codegen.operand(v) for v in params.values()]
        call = ast.Call(func=func, args=args, keywords=[])
        if len(op.rule.wrt) == 1:
            return {0: call}
        tmp = self.scope.local(f"{op.target}_pullback")
        out.append(codegen.assign(tmp, call))
        return {i: ast.Subscript(value=codegen.name(tmp), slice=ast.Constant(value=i), ctx=ast.Load())
                for i in range(len(op.rule.wrt))}


def build_reverse(fn: ir.Function, facts: Facts, wrt: list[str], scope: codegen.Scope, mode: str,
                  seed_name: str | None) -> Reverse:
    """Generate the reverse sweep of ``fn`` for the differentiated parameters ``wrt``."""
    builder = AdjointBuilder(fn, facts, scope)
    ret = fn.body[-1]
    rev = Reverse()
    out_var = ret.value.name if isinstance(ret.value, ir.Var) else None
    if mode == "grad" and (out_var is None or facts.kind(ret.value) == ARRAY):
        check = ast.Call(func=builder.helper(runtime.check_scalar_output),
                         args=[codegen.operand(ret.value), ast.Constant(value=fn.name)], keywords=[])
        rev.prologue.append(ast.Expr(value=check))
    if out_var is not None and out_var in facts.varied:
        seed = codegen.name(seed_name) if seed_name else ast.Constant(value=1.0)
        name = builder.adj(out_var)
        rev.prologue.append(codegen.assign(name, seed))
        builder.assigned.add(name)
        if seed_name or facts.kind(ret.value) == ARRAY:
            builder.array_adjoint.add(name)
    rev.body = builder.reverse_block(fn.body)
    for p in wrt:
        adj = builder.adj_names.get(p)
        if adj is not None and adj in builder.assigned:
            if facts.kinds.get(p) == SCALAR and adj not in builder.array_adjoint:
                rev.results.append(codegen.name(adj))
            else:
                rev.results.append(ast.Call(func=builder.helper(runtime.match_grad),
                                            args=[codegen.name(adj), codegen.name(p)], keywords=[]))
        elif facts.kinds.get(p) == SCALAR:
            rev.results.append(ast.Constant(value=0.0))
        else:
            rev.results.append(ast.Call(func=builder.helper(runtime.zeros_like), args=[codegen.name(p)],
                                        keywords=[]))
    return rev
