"""Forward mode: the primal IR and the pass facts in; a program that computes each value and its tangent side by side.

In: a lowered function, the parameters whose tangents are given, and how the tangents arrive (keyword parameters
``x_dot`` of the generated function, or parameters of a directional-derivative function, or the number 1.0).
Out: :class:`srcgrad.adjoint.Program` items — every op, followed by its tangent ``t_dot`` when it is active.
What holds:
- control flow keeps its shape (no tape: forward mode needs no record of the past);
- a tangent rule comes from the rule table: elementwise operations reuse their reverse rule with ``g`` replaced by
  the operand's tangent (their Jacobian is diagonal, so it is its own transpose); linear operations apply
  themselves to the tangents; multilinear ones (products) sum one term per differentiated operand; others have an
  explicit forward rule (:func:`srcgrad.rules.registry.defjvp`) or are refused with a clear error;
- calls to user functions become calls to their generated tangent functions (``NAME_jvp``), made once per kinds.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

import numpy as np

from srcgrad import checks, codegen, generated, ir, naming, runtime
from srcgrad.adjoint import ProgramBuilder, segments, try_block
from srcgrad.binding import SCALAR, SEQUENCE, bind_params, location
from srcgrad.errors import NoRuleError
from srcgrad.loops import while_block
from srcgrad.passes import Facts, bind_call, is_user_call
from srcgrad.program import Block, Comment, Program, link
from srcgrad.rules import forward as forward_rules
from srcgrad.rules.registry import single_return


class TangentBuilder(ProgramBuilder):
    def __init__(self, fn: ir.Function, facts: Facts, scope: codegen.Scope, helper_jvp: Any = None):
        self.fn = fn
        self.facts = facts
        self.scope = scope
        self.helper_jvp = helper_jvp  # (func, kinds, varied) -> calls.HelperVariant with a jvp function
        self.dots: dict[str, str] = {}

    def dot(self, var: str) -> str:
        if var not in self.dots:
            self.dots[var] = self.scope.local(naming.tangent(var))
        return self.dots[var]

    def zero_of(self, var: str) -> ast.expr:
        """A zero tangent of ``var``; a list's is a list of its own (``append`` adds the items' tangents to it)."""
        if self.facts.kinds.get(var) == SEQUENCE:
            return ast.Call(func=self.helper(runtime.zero_list), args=[codegen.name(var)], keywords=[])
        return super().zero_of(var)

    def has_tangent(self, operand: Any) -> bool:
        return isinstance(operand, ir.Var) and operand.name in self.facts.varied

    def tangent_of(self, operand: Any, out: list) -> ast.expr:
        """The tangent of an operand: its ``_dot`` variable, or zeros when it does not depend on the inputs."""
        if self.has_tangent(operand):
            return codegen.name(self.dot(operand.name))
        if isinstance(operand, ir.Var):
            return self.zero_of(operand.name)
        if isinstance(operand, ir.Const) and type(operand.value) in (int, float, bool):
            return ast.Constant(value=0.0)
        return ast.Call(func=self.helper(runtime.zeros_like), args=[codegen.operand(operand)], keywords=[])

    # --- the program -----------------------------------------------------------------------------------------

    def block(self, body: list) -> list:
        out: list = []
        for item in segments(body):
            if isinstance(item, list):
                last_line = None
                for op in item:
                    if op.line != last_line and op.form.kind != "copy":
                        out.append(Comment(f"line {op.line}: {self.fn.source_lines.get(op.line, '').strip()}",
                                           op.line))
                        last_line = op.line
                    out.extend(generated.mark(self.op(op), op))
            else:
                out.extend(ir.dispatch(self, "block_", item, default=[]))
        return out

    def block_If(self, stmt: ir.If) -> list:
        return [Block("if", test=codegen.operand(stmt.cond), body=self.block(stmt.body) or [ast.Pass()],
                      orelse=self.block(stmt.orelse))]

    def block_For(self, stmt: ir.For) -> list:
        return [Block("for", target=stmt.target, iter=codegen.operand(stmt.iterable),
                      body=self.block(stmt.body) or [ast.Pass()])]

    def block_While(self, stmt: ir.While) -> list:
        test = self.block(stmt.test)
        return [while_block(stmt, test, self.block(stmt.body))]

    def block_With(self, stmt: ir.With) -> list:
        return [Block("with", test=codegen.operand(stmt.manager), target=stmt.target,
                      body=self.block(stmt.body) or [ast.Pass()])]

    def block_Try(self, stmt: ir.Try) -> list:
        return [try_block(stmt, self.block)]  # (forward mode runs once: nothing to record)

    def block_Break(self, stmt: ir.Break) -> list:
        return [ast.Break()]

    def op(self, op: ir.Op) -> list:
        out: list = self.guards(op)
        active = self.facts.is_active(op.target)
        if active and is_user_call(op):
            return self.call(op)
        out.extend(self.forward_statements(op))
        if active:
            out.extend(self.tangent(op))
        return out

    def tangent(self, op: ir.Op) -> list:
        out: list = []
        target = self.dot(op.target)
        if op.form.kind == "copy":
            src = op.args[0]
            if isinstance(src, ir.Const) and src.value is None:
                value: ast.expr = ast.Constant(value=None)  # a loop header's placeholder
            else:
                value = self.tangent_of(src, out)
            out.append(codegen.assign(target, value))
            return out
        if op.form.kind == "append":
            lst, item = op.args
            if self.has_tangent(lst):
                method = ast.Attribute(value=codegen.name(self.dot(lst.name)), attr="append", ctx=ast.Load())
                out.append(ast.Expr(value=ast.Call(func=method, args=[self.tangent_of(item, out)], keywords=[])))
                out.append(codegen.assign(target, codegen.name(self.dot(lst.name))))
            else:
                zeros = ast.Call(func=self.helper(runtime.zero_list), args=[codegen.operand(lst)], keywords=[])
                out.append(codegen.assign(target, zeros))
                last = ast.Subscript(value=codegen.name(target), slice=ast.Constant(value=-1), ctx=ast.Store())
                out.append(ast.Assign(targets=[last], value=self.tangent_of(item, out), lineno=0))
            return out
        rule = op.rule
        kind = rule.forward
        params = bind_params(self.fn, op)
        varied = [p for p in rule.wrt if _any_varied(params.get(p), self)]
        if kind == "elementwise":
            return self._elementwise(op, params, varied, target)
        if kind in ("linear", "multilinear"):
            return self._linear(op, params, varied, target, kind)
        if kind == "reduction":
            return self._reduction(op, params, target)
        if kind == "explicit":
            return self._explicit(op, params, target)
        raise NoRuleError(
            f"srcgrad has no forward-mode rule for `{rule.name}`", location(self.fn, op),
            hint=f"declare one with srcgrad.defjvp({rule.name}), or use reverse mode (srcgrad.grad / vjp)",
        )

    def _elementwise(self, op: ir.Op, params: dict, varied: list[str], target: str) -> list:
        """Diagonal Jacobian: the reverse rule with ``g`` replaced by each operand's tangent, summed."""
        kinds = [self.facts.kind(a) for a in op.operands()]
        adjoint = op.rule.adjoint_for(all(k == SCALAR for k in kinds))
        templates = op.rule.inline_exprs(adjoint)
        terms = []
        out: list = []
        for i, pname in enumerate(op.rule.wrt):
            if pname not in varied:
                continue
            mapping = {"g": codegen.name(self.dot(params[pname].name)), "ans": codegen.name(op.target)}
            mapping.update({p: codegen.operand(v) for p, v in params.items()})
            if templates is None:
                func = codegen.name(self.scope.bind(adjoint.__name__.lstrip("_") + "_rule", adjoint))
                call = ast.Call(func=func, args=[mapping["g"], mapping["ans"]] +
                                [codegen.operand(v) for v in params.values()], keywords=[])
                term = call if len(op.rule.wrt) == 1 else ast.Subscript(value=call, slice=ast.Constant(value=i),
                                                                        ctx=ast.Load())
            else:
                term = codegen.instantiate(templates[i], mapping, adjoint.__globals__, self.scope)
            terms.append(term)
        total = _sum(terms)
        if self._may_spread(op, [params[p] for p in varied]):
            total = ast.Call(func=self.helper(runtime.broadcast_tangent), args=[total, codegen.name(op.target)],
                             keywords=[])
        out.append(codegen.assign(target, total))
        return out

    def _may_spread(self, op: ir.Op, varied: list) -> bool:
        """Whether a broadcasting operation may spread a varied operand over a larger result: a number over an
        array, an array (or a list numpy reads as one) over a larger one. The operand's term — the rule with ``g``
        replaced by its tangent — may then have the operand's shape (``y - M``: ``y_dot``), not the result's."""
        if not op.rule.broadcast:
            return False
        n_shaped = sum(self.facts.kind(a) != SCALAR for a in op.operands())  # arrays, and lists numpy reads as ones
        result_is_number = self.facts.kind(ir.Var(op.target)) == SCALAR
        for var in varied:
            own = self.facts.kind(var)
            spread = own == SCALAR and (n_shaped or not result_is_number) or own != SCALAR and n_shaped > 1
            if spread and isinstance(var, ir.Var) and not self.facts.same_shape(var.name, op.target):
                return True
        return False

    def _reduction(self, op: ir.Op, params: dict, target: str) -> list:
        """Each output element depends on its own slice: tangent = sum(partials * a_dot, axis), the partials being
        the reverse rule at g = 1."""
        (pname,) = op.rule.wrt
        adjoint = op.rule.adjoint
        template = forward_rules.reduction_template(op.rule)
        ones = ast.Call(func=ast.Attribute(value=codegen.name(self.scope.bind("np", np)), attr="ones_like",
                                           ctx=ast.Load()), args=[codegen.name(op.target)], keywords=[])
        mapping = {"g": ones, "ans": codegen.name(op.target)}
        mapping.update({p: codegen.operand(v) for p, v in params.items()})
        partials = codegen.instantiate(template, mapping, adjoint.__globals__, self.scope)
        out: list = []
        product = ast.BinOp(left=partials, op=ast.Mult(), right=self.tangent_of(params[pname], out))
        keywords = [ast.keyword(arg=k, value=codegen.operand(params[k])) for k in ("axis", "keepdims") if k in params]
        total = ast.Call(func=ast.Attribute(value=codegen.name(self.scope.bind("np", np)), attr="sum",
                                            ctx=ast.Load()), args=[product], keywords=keywords)
        out.append(codegen.assign(target, total))
        return out

    def _linear(self, op: ir.Op, params: dict, varied: list[str], target: str, kind: str) -> list:
        """Linear: the op applied to the tangents (zeros where none). Multilinear: one term per tangent."""
        out: list = []
        diff = set(op.rule.wrt)
        if kind == "linear":
            replace_sets = [{(p, None) for p in diff}]
        else:  # one term per differentiated operand (elements of a variadic parameter count separately)
            replace_sets = []
            for p in op.rule.wrt:
                value = params.get(p)
                if isinstance(value, tuple):
                    replace_sets.extend([{(p, j)}] for j, v in enumerate(value) if self.has_tangent(v))
                elif self.has_tangent(value):
                    replace_sets.append({(p, None)})
            replace_sets = [r[0] if isinstance(r, list) else r for r in replace_sets]
        terms = []
        for replace in replace_sets:
            mapping = {}
            for pname, j in replace:
                value = params.get(pname)
                if isinstance(value, tuple):
                    mapping[pname] = tuple(self._tangent_operand(v, out) if j is None or k == j else v
                                           for k, v in enumerate(value))
                elif value is not None:
                    mapping[pname] = self._tangent_operand(value, out)
            terms.append(self.forward_value(_substituted(op, params, mapping)))
        out.append(codegen.assign(target, _sum(terms)))
        return out

    def _tangent_operand(self, operand: Any, out: list) -> ir.Operand:
        if self.has_tangent(operand):
            return ir.Var(self.dot(operand.name))
        zero = self.scope.local("zero")
        out.append(codegen.assign(zero, self.tangent_of(operand, out)))
        return ir.Var(zero)

    def _explicit(self, op: ir.Op, params: dict, target: str) -> list:
        rule_fn = op.rule.jvp
        out: list = []
        tangents = {p: (self.tangent_of(params[p], out) if p in params else ast.Constant(value=None))
                    for p in op.rule.wrt}
        mapping = {"ans": codegen.name(op.target)}
        mapping.update({p: codegen.operand(v) for p, v in params.items()})
        mapping.update({naming.tangent(p): t for p, t in tangents.items()})  # (forward rules' own parameter names)
        template = single_return(rule_fn)  # (None: the rule is called)
        if template is not None:
            value = codegen.instantiate(template, mapping, rule_fn.__globals__, self.scope)
        else:
            func = codegen.name(self.scope.bind(rule_fn.__name__, rule_fn))
            names = list(inspect.signature(rule_fn).parameters)
            value = ast.Call(func=func, args=[mapping[n] for n in names], keywords=[])
        out.append(codegen.assign(target, value))
        return out

    def call(self, op: ir.Op) -> list:
        """A user function: ``t, t_dot = NAME_jvp(args..., p_dot=...)``."""
        params = bind_call(op)
        varied = tuple(p for p, v in params.items() if self.has_tangent(v))
        kinds = tuple(self.facts.kind(v) for v in params.values())
        variant = self.helper_jvp(op.callee, kinds, varied)
        name = self.scope.bind(variant.fwd_name, variant.fwd)
        out: list = []
        call = codegen.op_value(op)
        call.func = codegen.name(name)
        call.keywords = list(call.keywords) + [  # (the helper's tangent parameters, by the names it gave them)
            ast.keyword(arg=variant.tangent_params[p], value=self.tangent_of(params[p], out)) for p in varied]
        targets = ast.Tuple(elts=[ast.Name(id=op.target, ctx=ast.Store()),
                                  ast.Name(id=self.dot(op.target), ctx=ast.Store())], ctx=ast.Store())
        out.append(ast.Assign(targets=[targets], value=call, lineno=0))
        return out


def _any_varied(value: Any, builder: TangentBuilder) -> bool:
    if isinstance(value, tuple):
        return any(builder.has_tangent(v) for v in value)
    return builder.has_tangent(value)


def _sum(terms: list[ast.expr]) -> ast.expr:
    total = terms[0]
    for t in terms[1:]:
        total = ast.BinOp(left=total, op=ast.Add(), right=t)
    return codegen.simplify(total)


def _substituted(op: ir.Op, params: dict, mapping: dict) -> ir.Op:
    """A copy of ``op`` whose operands bound to the parameters in ``mapping`` are replaced (the user's spelling —
    which operands are positional, which are keywords — is kept)."""
    markers = [("pos", i) for i in range(len(op.args))]
    bound = op.rule.signature.bind(*markers, **{k: ("kw", k) for k, _ in op.kwargs})
    args, kwargs = list(op.args), dict(op.kwargs)
    for pname, value in mapping.items():
        where = bound.arguments.get(pname)
        if where is None:
            continue
        pairs = zip(where, value) if isinstance(value, tuple) else [(where, value)]
        for (kind, slot), new in pairs:
            if kind == "pos":
                args[slot] = new
            else:
                kwargs[slot] = new
    return ir.Op(op.target, op.rule, op.form, tuple(args), tuple((k, kwargs[k]) for k, _ in op.kwargs),
                 op.line, op.col, op.callee)


def build_tangent_program(fn: ir.Function, facts: Facts, wrt: list[str], scope: codegen.Scope,
                          tangent_inputs: dict[str, ast.expr], helper_jvp: Any = None) -> tuple[Program, ast.expr]:
    """The forward-mode program of ``fn``. ``tangent_inputs`` gives the tangent of each ``wrt`` parameter as an
    expression. Returns the program and the expression of the output's tangent."""
    builder = TangentBuilder(fn, facts, scope, helper_jvp)
    prologue = []
    for p in wrt:
        given = tangent_inputs[p]
        if isinstance(given, ast.Name):
            builder.dots[p] = given.id  # the tangent parameter is the parameter's tangent variable
        else:
            prologue.append(codegen.assign(builder.dot(p), given))
    body = builder.block(fn.body)
    ret = fn.body[-1].value
    if builder.has_tangent(ret):
        out_tangent: ast.expr = codegen.name(builder.dot(ret.name))
    elif isinstance(ret, ir.Var):
        out_tangent = builder.zero_of(ret.name)
    else:
        out_tangent = builder.tangent_of(ret, prologue)
    if facts.kinds.get(getattr(ret, "name", ""), None) == SEQUENCE:
        out_tangent = ast.Call(func=builder.helper(runtime.as_tuple), args=[out_tangent], keywords=[])
    elif fn.may_return_non_number:  # (`return None` somewhere: a derivative of no number is an error, as in reverse)
        check = ast.Call(func=builder.helper(checks.check_numeric_output), keywords=[],
                         args=[codegen.operand(ret), ast.Constant(value=fn.user_name or fn.name)])
        body.append(ast.Expr(value=check))
    program = Program(forward=prologue + body, value=codegen.operand(ret), derivatives=dict(builder.dots),
                      return_line=fn.body[-1].line)
    link(program, scope)
    scope.link([out_tangent])
    return program, out_tangent

