"""Adjoint accumulation: which variable holds each value's adjoint, and the statements that add a contribution to it.

In: the pass facts, the scope of generated names, the float-valued names (a simplify env), and a ``helper(func)``
that binds srcgrad's functions. Out: statements (``ast``) appended to the caller's list.
What holds:
- the adjoint of ``v`` is named after it (``v_bar``); the first contribution assigns, later ones add
  (``x_bar = x_bar + c``, never in place, so aliased adjoints are never mutated);
- at the top level of straight-line code a contribution that is a number is not assigned but propagated into its
  uses (:attr:`Adjoints.consts`); an adjoint may be *uniform* — a number standing for an array of its value's shape
  filled with it (a full sum's adjoint) — until an operation needs the array (:meth:`Adjoints.spread`);
- :meth:`Adjoints.materialize` gives both their variables before control flow, which reads adjoints by name.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from srcgrad import codegen, ir, layouts, naming, runtime
from srcgrad.binding import SCALAR
from srcgrad.passes import Facts, is_user_call


class Adjoints:
    def __init__(self, facts: Facts, scope: codegen.Scope, float_valued: dict, helper: Any):
        self.facts, self.scope, self.float_valued, self.helper = facts, scope, float_valued, helper
        self.names: dict[str, str] = {}  # value -> the name of its adjoint
        self._values: dict[str, str] = {}  # adjoint name -> its value
        self.assigned: set[str] = set()  # adjoints holding a value on the path being generated
        self.arrays: set[str] = set()  # adjoints that may hold numpy values
        self.uniform: set[str] = set()  # adjoints that may hold a number standing for an array of their value's shape
        self.consts: dict[str, ast.expr] = {}  # adjoints known to be a number (top-level straight-line code only)
        self.control_depth = 0  # inside how many branches and loops the code being generated is

    def adj(self, var: str) -> str:
        if var not in self.names:
            self.names[var] = self.scope.local(naming.adjoint(var))
            self._values[self.names[var]] = var
        return self.names[var]

    def var_of(self, adj_name: str) -> str:
        return self._values[adj_name]

    def has_gradient(self, var: str) -> bool:
        return self.names.get(var) in self.assigned

    def accumulate(self, out: list, var: str, contribution: ast.expr, is_array: bool, uniform: bool = False) -> None:
        """Add ``contribution`` to ``var``'s adjoint. ``uniform``: it may be a number standing for an array of
        ``var``'s shape."""
        name = self.adj(var)
        contribution = codegen.simplify(codegen.float_constants(contribution), self.float_valued)
        if is_array:
            self.arrays.add(name)
        uniform = (uniform or _is_number(contribution)) and self.facts.kind(ir.Var(var)) != SCALAR
        if name in self.assigned:
            if not uniform:
                self.uniform.discard(name)  # a sum with a whole array is a whole array
            total = ast.BinOp(left=self.ref(name), op=ast.Add(), right=contribution)
            self.consts.pop(name, None)
            out.append(codegen.assign(name, codegen.simplify(total)))
            return
        if uniform and not self.control_depth:
            self.uniform.add(name)
        if _is_number(contribution) and not self.control_depth:
            self.consts[name] = contribution  # propagated into its uses instead of assigned
        else:
            out.append(codegen.assign(name, contribution))
        self.assigned.add(name)

    def used_up(self, name: str) -> None:
        """The value of adjoint ``name`` is defined here: earlier values of its name start from zero."""
        self.assigned.discard(name)
        self.consts.pop(name, None)
        self.uniform.discard(name)

    def ref(self, name: str) -> ast.expr:
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
        value = self.spread_value(name)
        self.consts.pop(name, None)
        self.uniform.discard(name)
        return codegen.assign(name, value)

    def spread_value(self, name: str) -> ast.expr:
        """A uniform adjoint (a number, or an array that broadcasts to its value's shape) as an array of it."""
        value, var = self.ref(name), self.var_of(name)
        if self.facts.layouts.get(var):  # (known rank, float64: what uniform_to would give)
            return layouts.spread(self.scope.bind("np", np), value, var)
        return ast.Call(func=self.helper(runtime.uniform_to), args=[value, codegen.name(var)], keywords=[])

    def zero_of(self, var: str) -> ast.expr:
        if self.facts.kinds.get(var) == SCALAR:
            return ast.Constant(value=0.0)
        return ast.Call(func=self.helper(runtime.zeros_like), args=[codegen.name(var)], keywords=[])

    def zero(self, name: str) -> ast.stmt:
        """``name = 0`` of its value's kind (an adjoint that holds nothing on one path of a join)."""
        return codegen.assign(name, self.zero_of(self.var_of(name)))

    def join(self, codes: list[list], states: list[set[str]]) -> None:
        """Paths that join: each path's code zeroes what another path assigned and it did not; afterwards every
        adjoint any path assigned holds a value."""
        joined = set().union(*states)
        for code, state in zip(codes, states):
            code.extend(self.zero(name) for name in sorted(joined - state))
        self.assigned = joined

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
        return all(self.facts.same_shape(a.name, op.target) or _same_layout(self.facts, a.name, op.target)
                   for a in op.operands()
                   if isinstance(a, ir.Var) and (self.facts.kind(a) != SCALAR or a.name in self.facts.varied))


def _same_layout(facts: Facts, a: str, result: str) -> bool:
    """An operand of a broadcasting operation with its result's layout has its result's shape."""
    layout = facts.layouts.get(a)
    return layout is not None and layout == facts.layouts.get(result)


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)
