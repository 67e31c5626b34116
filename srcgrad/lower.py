"""Lowering: the parsed function (gast) in, the linear IR (:mod:`srcgrad.ir`) out.

What holds:
- nested expressions become temporaries ``t1, t2, ...`` numbered in program order; user names are kept, and a rebound
  name gets a fresh version (``x``, ``x_1``, ...) so straight-line code never overwrites a value the reverse sweep
  needs (SSA). Branches end by copying each variable they rebind into one shared version (the join).
- names are resolved to the Python objects they denote: calls find their derivative rule by the object called
  (``np.exp`` and ``numpy.exp`` are the same primitive), modules and functions never become values;
- every statement is tagged with its line in the user's file; every rejection names file:line:col.
"""

from __future__ import annotations

import contextlib
import inspect
import operator
import sys
import types
import warnings
from dataclasses import replace
from typing import Any

import gast
import numpy as np

from srcgrad import arrays, guards, ir, locks, naming, usercode
from srcgrad.errors import Location, UnsupportedSyntax
from srcgrad.frontend import _MISSING, ParsedFunction, walk
from srcgrad.records import record
from srcgrad.rules import lookup
from srcgrad.runtime import array_receiver, check_equal_lengths, check_unpacks, integer_start, items_length, setitem

BINOPS = {
    gast.Add: (operator.add, "+"), gast.Sub: (operator.sub, "-"), gast.Mult: (operator.mul, "*"),
    gast.Div: (operator.truediv, "/"), gast.Pow: (operator.pow, "**"), gast.MatMult: (operator.matmul, "@"),
    gast.Mod: (operator.mod, "%"), gast.FloorDiv: (operator.floordiv, "//"),
    gast.BitAnd: (operator.and_, "&"), gast.BitOr: (operator.or_, "|"), gast.BitXor: (operator.xor, "^"),
    gast.LShift: (operator.lshift, "<<"), gast.RShift: (operator.rshift, ">>"),
}
UNARYOPS = {gast.USub: (operator.neg, "-"), gast.UAdd: (operator.pos, "+"), gast.Not: (operator.not_, "not"),
            gast.Invert: (operator.invert, "~")}
COMPARES = {
    gast.Lt: "<", gast.LtE: "<=", gast.Gt: ">", gast.GtE: ">=", gast.Eq: "==", gast.NotEq: "!=",
    gast.Is: "is", gast.IsNot: "is not", gast.In: "in", gast.NotIn: "not in",
}

# ndarray methods and attributes, as the numpy functions whose rules differentiate them.
METHODS = {
    "sum": np.sum, "mean": np.mean, "dot": np.dot, "transpose": np.transpose, "reshape": np.reshape,
    "max": np.max, "min": np.min, "prod": np.prod, "std": np.std, "var": np.var, "copy": np.copy,
    "ravel": np.ravel, "flatten": "flatten", "squeeze": np.squeeze, "clip": np.clip, "cumsum": np.cumsum,
    "cumprod": np.cumprod, "astype": "astype", "argmax": np.argmax, "argmin": np.argmin, "argsort": np.argsort,
    "swapaxes": np.swapaxes, "trace": np.trace, "diagonal": np.diagonal, "repeat": np.repeat,
    "item": "item", "tolist": "tolist", "round": np.round, "any": np.any, "all": np.all, "nonzero": np.nonzero,
    "take": np.take,
}
# Methods whose arguments numpy takes as separate positionals (x.reshape(2, 3)) but whose function takes a tuple.
VARARG_METHODS = {"reshape", "transpose"}
# Builtins whose extra positionals the lowering packs into a tuple (max(a, b, c) is max((a, b, c))).
PACKED_BUILTINS = (max, min)
ATTRIBUTES = {"T": ("attribute", "T")}  # rule keys: see srcgrad/rules/numpy_shapes.py
NONDIFF_ATTRIBUTES = {"shape", "ndim", "size", "dtype"}


@record(frozen=True)
class _Ref:
    """A name or attribute that denotes a module, function or class (never a value in the IR)."""

    obj: Any
    text: str


class Lowerer:
    def __init__(self, pf: ParsedFunction):
        self.pf = pf
        self.node = pf.node
        self.params = parameter_names(pf.node.args)
        names = [n for n in pf.nodes if isinstance(n, gast.Name)]
        self.locals = {n.id for n in names if isinstance(n.ctx, gast.Store)} | set(self.params)
        self.used = {n.id for n in names} | set(self.params)
        self.loaded = {n.id for n in names if isinstance(n.ctx, gast.Load)}
        self.env: dict[str, str] = {p: p for p in self.params}
        self.defined: set[str] = set(self.params)
        self.n_temps = 0
        self.last_version: dict[str, int] = {}  # user name -> the suffix of its latest version
        self.version_of: dict[str, str] = {}  # a version (x_1) -> the name it versions (x): recorded, not spelled
        self.temporaries: set[str] = set()  # the names fresh_temp made: what is a temporary is recorded, not spelled
        self.block: list = []
        self.loops: list[_Loop] = []
        # srcgrad's own variables (result, flags) never take a name the user's code mentions
        self.ret_name, self.returned_name = self.synthetic(RET), self.synthetic(RETURNED)
        self.local_functions: dict[str, Any] = {}  # nested defs and lambdas bound to names: inlined at calls
        self.maybe_unbound: set[str] = set()  # versions assigned on some paths only
        self.inlining: list[str] = []
        self.returns_non_number = False  # a return of a constant that is not a number (None, a string)
        self.terminated = False  # the block being lowered ended with a `raise`: what follows is unreachable
        self.compound = 0  # `with`/`try` bodies being lowered: a return inside raises the `returned` flag
        self.unknown: dict[str, str] = {}  # a version standing for a value that depends on where an exception was
        # raised (a name a try body assigns, read in an except block): reading it is refused with this reason

    # --- names -----------------------------------------------------------------------------------------------


    def fresh_temp(self) -> str:
        while True:
            self.n_temps += 1
            name = naming.temporary(self.n_temps)
            if name not in self.used and name not in self.defined:
                self.defined.add(name)
                self.temporaries.add(name)
                return name

    def new_version(self, user_name: str) -> str:
        if user_name not in self.defined:
            self.defined.add(user_name)
            return user_name
        k = self.last_version.get(user_name, 0)  # every smaller suffix is taken already: no rescan from 1
        while True:
            k += 1
            name = naming.version(user_name, k)
            if name not in self.used and name not in self.defined:
                self.defined.add(name)
                self.last_version[user_name] = k
                self.version_of[name] = user_name
                return name

    # --- errors ----------------------------------------------------------------------------------------------

    def reject(self, node: Any, message: str, hint: str | None = None) -> UnsupportedSyntax:
        return UnsupportedSyntax(message, self.pf.location(node), hint)

    # --- entry -----------------------------------------------------------------------------------------------

    def lower(self) -> ir.Function:
        self.init_returned_flag(self.node)
        self.lower_block(list(self.node.body), top=True)
        body = self.block
        if not body or not isinstance(body[-1], ir.Return):
            if self.terminated:  # every path raises: the return is never reached
                body.append(ir.Return(ir.Const(None), self.pf.file_line(self.node), 0))
            elif self.ret_name in self.env:
                body.append(ir.Return(ir.Var(self.env[self.ret_name]), self.pf.file_line(self.node), 0))
            else:
                raise self.reject(
                    self.node, f"{self.node.name} must return a value on every path",
                    hint="end the function with `return <value>`",
                )
        for op in ir.walk_ops(body):  # a read of a possibly unbound name must run, so it fails where Python does
            if any(isinstance(a, ir.Var) and a.name in self.maybe_unbound for a in op.operands()):
                op.keep = True
        # ... and such a name starts as None, so the copies srcgrad adds (loop headers, joins) never fail first
        line = self.pf.file_line(self.node)
        body[:0] = [_copy(v, ir.Const(None), line) for v in sorted(self.maybe_unbound)]
        source_lines = {k: v.rstrip("\n") for k, v in self.pf.file_lines.items()}
        implicit_none = any(self.version_of.get(v, v) == self.ret_name for v in self.maybe_unbound) \
            or _returns_a_copied_non_number(body)
        return ir.Function(
            name=self.node.name, params=self.params, body=body, filename=self.pf.filename,
            first_line=self.pf.line_offset + self.node.lineno, source_lines=source_lines,
            signature=self.signature_text(), used_names=frozenset(self.used), local_names=frozenset(self.locals),
            may_return_non_number=self.returns_non_number or implicit_none,
            temporaries=frozenset(self.temporaries), versions=dict(self.version_of),
            user_name=getattr(self.pf.func, "__name__", self.node.name), col_offset=self.pf.col_offset,
        )

    def signature_text(self) -> str:
        """The parameter list as written (``x, y=2.0, *, k=1``), annotations dropped."""
        args = self.node.args
        positional = args.posonlyargs + args.args
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        parts = []
        for i, (a, d) in enumerate(zip(positional, defaults)):
            parts.append(a.id if d is None else f"{a.id}={self.pf.segment(d)}")
            if args.posonlyargs and i == len(args.posonlyargs) - 1:
                parts.append("/")
        if args.vararg is not None:
            parts.append(f"*{args.vararg.id}")
        if args.kwonlyargs:
            if args.vararg is None:
                parts.append("*")
            for a, d in zip(args.kwonlyargs, args.kw_defaults):
                parts.append(a.id if d is None else f"{a.id}={self.pf.segment(d)}")
        if args.kwarg is not None:
            parts.append(f"**{args.kwarg.id}")
        return ", ".join(parts)

    def lower_block(self, stmts: list, top: bool = False) -> None:
        """Lower statements into the current block; control transfers become flags and guards (structured IR)."""
        for i, stmt in enumerate(stmts):
            rest = stmts[i + 1:]
            if isinstance(stmt, gast.Return):
                if top and not self.loops and not rest:
                    self.stmt_Return(stmt)
                else:
                    self.set_result(stmt)
                return  # what follows a return is unreachable
            if isinstance(stmt, gast.If) and not self.loops and rest and _contains(stmt, gast.Return):
                # `if c: return a` followed by more code: the rest belongs to the paths that fall through.
                self.lower_if(stmt, list(stmt.body) + rest, list(stmt.orelse) + rest)
                return
            if isinstance(stmt, (gast.Break, gast.Continue)):
                loop = self.loops[-1]
                self.set_flag(loop.break_name if isinstance(stmt, gast.Break) else loop.continue_name, stmt)
                return  # the rest of this block is skipped by the flag
            self.lower_stmt(stmt)
            if self.terminated:
                return  # what follows a raise is unreachable
            flags = self.flags_set_by(stmt)
            if flags and rest:
                guard = self.guard(flags, rest[0])
                self.emit_if(guard, rest, [], rest[0])
                return

    def init_returned_flag(self, fn_node: Any) -> None:
        """A function that returns from inside a loop gets its `returned` flag at its start, so the flag is bound on
        every path (code after an early return is lowered once per path that reaches it)."""
        nodes = self.pf.nodes if fn_node is self.node else walk(fn_node)
        loops = [n for n in nodes if isinstance(n, (gast.For, gast.While, gast.With, gast.Try)) and n is not fn_node]
        if any(_contains(loop, gast.Return) for loop in loops):
            self.assign_name(self.returned_name, ir.Const(False), fn_node, retarget=False)

    def set_result(self, stmt: Any) -> None:
        if stmt.value is None:
            raise self.reject(stmt, "the differentiated function returns nothing", hint="return a number or array")
        value = self.value(stmt.value)
        self.note_returned(value)
        self.assign_name(self.ret_name, value, stmt)
        if self.loops or self.compound:
            self.set_flag(self.returned_name, stmt)

    def set_flag(self, flag: str, stmt: Any) -> None:
        self.assign_name(flag, ir.Const(True), stmt, retarget=False)

    def flags_set_by(self, stmt: Any) -> list[str]:
        """The flags (break/continue/return) a statement may raise, which the rest of its block must check."""
        flags = []
        if self.loops:
            loop = self.loops[-1]
            if loop.break_name and _contains_jump(stmt, gast.Break):
                flags.append(loop.break_name)
            if loop.continue_name and _contains_jump(stmt, gast.Continue):
                flags.append(loop.continue_name)
        if _contains(stmt, gast.Return) and (self.loops or isinstance(stmt, (gast.For, gast.While, gast.With,
                                                                             gast.Try))):
            flags.append(self.returned_name)
        return flags

    def guard(self, flags: list[str], node: Any) -> ir.Operand:
        operands = tuple(ir.Var(self.env[f]) for f in flags)
        any_flag = operands[0] if len(operands) == 1 else self.op(
            _BOOLOP_RULE, ir.Form("boolop", "or"), operands, (), node)
        return self.op(lookup(operator.not_), ir.Form("unaryop", "not"), (any_flag,), (), node)

    # --- regions: branches and loops ---------------------------------------------------------------------------

    def region(self, stmts: list, env: dict[str, str]) -> tuple[list, dict[str, str]]:
        """Lower ``stmts`` into a block of their own, starting from ``env``; ``self.terminated`` then tells whether
        the block always ends in a ``raise``."""
        saved_block, saved_env = self.block, self.env
        self.block, self.env, self.terminated = [], dict(env), False
        try:
            self.lower_block(stmts)
            return self.block, self.env
        finally:
            self.block, self.env = saved_block, saved_env

    def lower_if(self, node: Any, body: list, orelse: list) -> None:
        cond = self.value(node.test)
        self.emit_if(cond, body, orelse, node)

    def emit_if(self, cond: ir.Operand, body: list, orelse: list, node: Any) -> None:
        before = dict(self.env)
        then_block, then_env = self.region(body, before)
        then_raises = self.terminated
        else_block, else_env = self.region(orelse, before)
        else_raises = self.terminated
        self.terminated = then_raises and else_raises
        if then_raises or else_raises:  # a side that raises joins nothing: the names are the other side's
            self.env = then_env if else_raises else else_env
            self.block.append(ir.If(cond, then_block, else_block, self.pf.file_line(node), node.col_offset))
            return
        for n in sorted(set(then_env) | set(else_env)):
            a, b = then_env.get(n), else_env.get(n)
            if a in self.unknown or b in self.unknown:
                self.env[n] = a if a in self.unknown else b  # (reading it stays refused)
            elif a == b:
                self.env[n] = a
            elif a is None or b is None:
                self.env[n] = a or b  # defined on one path only: reading it after the if may raise, as in Python
                self.maybe_unbound.add(a or b)
            else:
                joined = self.new_version(n)
                line = self.pf.file_line(node)
                then_block.append(_copy(joined, a, line))
                else_block.append(_copy(joined, b, line))
                self.env[n] = joined
        self.block.append(ir.If(cond, then_block, else_block, self.pf.file_line(node), node.col_offset))

    def stmt_If(self, node: Any) -> None:
        self.lower_if(node, list(node.body), list(node.orelse))

    def expr_IfExp(self, node: Any) -> ir.Var:
        cond = self.value(node.test)
        target = self.fresh_temp()
        line = self.pf.file_line(node)
        blocks = []
        for branch in (node.body, node.orelse):
            saved = self.block
            self.block = []
            value = self.value(branch)
            self.block.append(_copy(target, value.name if isinstance(value, ir.Var) else value, line))
            blocks.append(self.block)
            self.block = saved
        self.block.append(ir.If(cond, blocks[0], blocks[1], line, node.col_offset))
        return ir.Var(target)

    def stmt_For(self, node: Any) -> None:
        if node.orelse:
            raise self.reject(node.orelse[0], "`for ... else` is not supported",
                              hint="use a flag variable set before `break`")
        plan = self.iteration_plan(node)
        self.lower_loop(node, plan)

    def stmt_While(self, node: Any) -> None:
        if node.orelse:
            raise self.reject(node.orelse[0], "`while ... else` is not supported",
                              hint="use a flag variable set before `break`")
        self.lower_loop(node, None)

    def iteration_plan(self, node: Any) -> tuple:
        """(iterable operand, [(user target node, how to compute it from the index)]) for a `for` loop."""
        it, target = node.iter, node.target
        if self.builtin_callee(it) is range:
            if not isinstance(target, gast.Name):
                raise self.reject(target, "a range loop needs a single loop variable")
            return self.expr(it), [(target, None)]
        length, bindings = self.iterated(it, target)
        return self.call_builtin(range, (length,), it), bindings

    def builtin_callee(self, node: Any) -> Any:
        """The object a call like ``enumerate(...)`` calls, when it is named by a global or builtin name."""
        if isinstance(node, gast.Call) and isinstance(node.func, gast.Name) and node.func.id not in self.locals:
            return self.pf.resolve(node.func.id)
        return None

    def iterated(self, it: Any, target: Any) -> tuple[ir.Operand, list]:
        """How many items ``for target in it`` visits, and how each name of ``target`` is computed from the index:
        ``("item", seq)`` is ``seq[i]``, ``("offset", start)`` is ``i + start``, ``("item from the end", (seq,
        last))`` is ``seq[last - i]`` (``reversed``). ``enumerate`` and ``zip`` unpack into their own targets (nested
        as deep as written: ``for i, (a, b) in enumerate(zip(x, y))``)."""
        callee = self.builtin_callee(it)
        if callee is enumerate:
            args = self.builtin_arguments(it, _ENUMERATE)
            if not (isinstance(target, (gast.Tuple, gast.List)) and len(target.elts) == 2):
                raise self.reject(target, "unpack enumerate() into two names: `for i, v in enumerate(xs)`")
            length, inner = self.iterated(args["iterable"], target.elts[1])
            start = self.value(args["start"]) if "start" in args else ir.Const(0)
            if not (isinstance(start, ir.Const) and type(start.value) is int):
                start = self.loop_check(integer_start, (start,), args["start"])  # a float start: TypeError
            return length, [(target.elts[0], ("offset", start))] + inner
        if callee is zip:
            args = self.builtin_arguments(it, _ZIP)
            seqs = args.get("iterables", ())
            if not seqs:
                raise self.reject(it, "zip() without arguments gives no items", hint="zip the sequences to loop over")
            if not (isinstance(target, (gast.Tuple, gast.List)) and len(target.elts) == len(seqs)):
                raise self.reject(target, f"unpack zip() into {len(seqs)} names")
            parts = [self.iterated(s, t) for s, t in zip(seqs, target.elts)]
            lengths = [length for length, _ in parts]
            if "strict" in args:
                self.zip_strict(args["strict"], lengths, it)
            length = lengths[0]
            for other in lengths[1:]:  # the shortest sequence ends the loop
                length = self.call_builtin(min, (length, other), it)
            return length, [binding for _, inner in parts for binding in inner]
        if callee is reversed:
            seq = self.value(self.builtin_arguments(it, _REVERSED)["sequence"])
            length = self.call_builtin(len, (seq,), it)
            last = self.op(lookup(operator.sub), ir.Form("binop", "-"), (length, ir.Const(1)), (), it)
            return length, [(target, ("item from the end", (seq, last)))]
        return self.indexed(it, target)

    def indexed(self, it: Any, target: Any) -> tuple[ir.Operand, list]:
        """``for target in it`` over a sequence or an array, read by index."""
        seq = self.value(it)
        if isinstance(seq, ir.Const) and isinstance(seq.value, (dict, set, frozenset)):
            raise self.reject(it, f"srcgrad loops over sequences and arrays by index, not over a "
                                  f"{type(seq.value).__name__}", hint="loop over a list of its keys or values")
        if self.made_opaquely(seq):  # (any object: refused at run time unless it is a sequence or an array)
            return self.loop_check(items_length, (seq,), it), [(target, ("item", seq))]
        return self.call_builtin(len, (seq,), it), [(target, ("item", seq))]

    def made_opaquely(self, value: ir.Operand) -> bool:
        """Is ``value`` what a call or an attribute srcgrad runs as written just returned (its type unknown)?"""
        made = next((op for op in reversed(self.block) if isinstance(op, ir.Op) and isinstance(value, ir.Var)
                     and op.target == value.name), None)
        return made is not None and made.rule is None and made.form.kind in ("call", "method", "attr")

    def builtin_arguments(self, call: Any, signature: inspect.Signature) -> dict[str, Any]:
        """The argument nodes of a call to a builtin srcgrad lowers itself, by parameter name, bound as Python binds
        them: an argument the builtin does not take is refused here, never dropped."""
        name = call.func.id
        for a in call.args:
            if isinstance(a, gast.Starred):
                raise self.reject(a, f"srcgrad cannot lower star-unpacking in a call of {name}()",
                                  hint="pass arguments explicitly")
        for k in call.keywords:
            if k.arg is None:
                raise self.reject(k.value, f"srcgrad cannot lower **keyword unpacking in a call of {name}()",
                                  hint="pass keyword arguments explicitly")
        try:
            bound = signature.bind(*call.args, **{k.arg: k.value for k in call.keywords})
        except TypeError as exc:
            raise self.reject(call, f"{name}() does not take these arguments ({exc})",
                              hint=f"call it as {name}{signature}") from None
        return dict(bound.arguments)

    def zip_strict(self, strict_node: Any, lengths: list, node: Any) -> None:
        """``zip(..., strict=True)`` raises when the lengths differ, as Python does; ``strict=False`` is the default."""
        if not isinstance(strict_node, gast.Constant) or not isinstance(strict_node.value, bool):
            raise self.reject(strict_node, "zip(strict=...) takes the constant True or False here")
        if strict_node.value:
            self.loop_check(check_equal_lengths, tuple(lengths), node)

    def loop_check(self, check: Any, args: tuple, node: Any) -> ir.Var:
        """A call of one of srcgrad's loop checks (runtime.LOOP_CHECKS), kept even where its value is unused: it
        raises where Python raises."""
        op = ir.Op(self.fresh_temp(), lookup(check), ir.Form("call", check.__name__), args, (),
                   self.pf.file_line(node), getattr(node, "col_offset", 0), check)
        op.keep = True
        return self.emit(op)

    def call_builtin(self, func: Any, args: tuple, node: Any) -> ir.Var:
        """A call srcgrad adds (``range(len(xs))`` for ``for v in xs``): generated code binds ``func`` itself."""
        result = self.op(lookup(func), ir.Form("call", func.__name__), args, (), node, func)
        self.block[-1].own = True
        return result

    def lower_loop(self, node: Any, plan: tuple | None) -> None:
        """A loop: loop-carried names get a header version, copied back at the end of every iteration."""
        line = self.pf.file_line(node)
        loop = _Loop(node, [self.returned_name, self.ret_name], self.synthetic)
        returned = self.returned_name if loop.returns else None
        for flag in (loop.break_name, returned if returned not in self.env else None):
            if flag:
                self.assign_name(flag, ir.Const(False), node, retarget=False)
        direct_target = [node.target.id] if isinstance(node, gast.For) and plan is not None \
            and plan[1][0][1] is None else []
        header = self.loop_header(node, loop, direct_target, line)
        test, cond, index_name, body, end_env = self.loop_body(node, plan, loop, header)
        body_raises, self.terminated = self.terminated, False  # (the loop may run no iteration)
        if not body_raises:  # (when an iteration never ends, nothing flows to the next one)
            body.extend(_copy(header[n], end_env[n], line) for n in sorted(header)
                        if n in end_env and end_env[n] != header[n] and n not in direct_target)
        self.loop_exit(node, body, header, [header[f] for f in (loop.break_name, returned) if f], line)
        self.env.update(header)
        carried = sorted(header.values())
        if plan is not None:
            self.block.append(ir.For(index_name, plan[0], body, line, node.col_offset, carried))
        else:
            self.block.append(ir.While(test, cond, body, line, node.col_offset, carried))

    def loop_header(self, node: Any, loop: Any, direct_target: list, line: Any) -> dict[str, str]:
        """The header versions of the names a loop carries, each set to its value before the loop."""
        header: dict[str, str] = {}
        # Names assigned in the loop and read somewhere flow between iterations (and out of the loop).
        calls = {n.func.id for n in walk(node) if isinstance(n, gast.Call) and isinstance(n.func, gast.Name)}
        stored = _stored_names(node).union(*(self.written_captures(f) for f in sorted(calls)))
        carried = sorted(n for n in stored if n in self.loaded)
        for n in carried + loop.flags() + direct_target:
            if n in header:
                continue
            if self.env.get(n) in self.unknown:
                self.known(n, node)  # (refused: the loop would carry a value that depends on an exception)
            header[n] = self.new_version(n)
            # Before the first iteration a header holds the value from before the loop, or None when there is
            # none (a name first assigned inside the loop), so copying it never fails.
            self.block.append(_copy(header[n], self.env[n] if n in self.env else ir.Const(None), line))
        return header

    def loop_body(self, node: Any, plan: tuple | None, loop: Any, header: dict[str, str]) -> tuple:
        """The loop's test (a while loop's), its index name (a for loop's), its body and the names at its end."""
        saved_block, saved_env = self.block, self.env
        self.block, self.env = [], {**saved_env, **header}
        self.loops.append(loop)
        try:
            test, cond, index_name = [], None, None
            if plan is None:
                cond = self.value(node.test)
                test, self.block = self.block, []
            else:
                iterable, targets = plan
                direct = targets[0][1] is None
                index_name = header[targets[0][0].id] if direct else self.fresh_temp()
            if loop.continue_name:
                self.assign_name(loop.continue_name, ir.Const(False), node, retarget=False)
            if plan is not None:
                for tnode, how in targets:
                    if how is not None:
                        self.bind_loop_target(tnode, how, index_name, header)
            self.terminated = False
            self.lower_block(list(node.body))
            body, end_env = self.block, self.env
        finally:
            self.loops.pop()
            self.block, self.env = saved_block, saved_env
        return test, cond, index_name, body, end_env

    def loop_exit(self, node: Any, body: list, header: dict[str, str], exits: list, line: Any) -> None:
        """End the body with a break when a break or return flag is set."""
        if not exits:
            return
        self.env.update(header)
        if len(exits) == 1:
            exit_cond: ir.Operand = ir.Var(exits[0])
        else:
            saved = self.block
            self.block = body
            exit_cond = self.op(_BOOLOP_RULE, ir.Form("boolop", "or"), tuple(ir.Var(e) for e in exits), (), node)
            self.block = saved
        body.append(ir.If(exit_cond, [ir.Break(line)], [], line, node.col_offset))

    def bind_loop_target(self, tnode: Any, how: tuple, index_name: str, header: dict[str, str]) -> None:
        """Bind one target of a loop (a name, or a tuple of names that unpacks the item) for the current index."""
        for n in walk(tnode):
            if isinstance(n, (gast.Attribute, gast.Subscript, gast.Starred)):
                raise self.reject(n, "a for loop's variables must be names (a tuple of names unpacks each item)",
                                  hint="loop over plain names and assign inside the loop")
        kind, operand = how
        if kind == "item":
            value = self.op(lookup(operator.getitem), ir.Form("subscript"),
                            (operand, ir.Index((ir.Var(index_name),), False)), (), tnode)
        elif kind == "item from the end":  # reversed(seq): seq[last - i]
            seq, last = operand
            index = self.op(lookup(operator.sub), ir.Form("binop", "-"), (last, ir.Var(index_name)), (), tnode)
            value = self.op(lookup(operator.getitem), ir.Form("subscript"), (seq, ir.Index((index,), False)), (),
                            tnode)
        else:
            value = self.op(lookup(operator.add), ir.Form("binop", "+"), (ir.Var(index_name), operand), (), tnode)
        self.unpack_checked(tnode, value)

    def unpack_checked(self, target: Any, value: ir.Operand) -> None:
        """Bind a loop target; a tuple of names first checks that the item has exactly that many values (Python
        raises ValueError otherwise; reading the first ones would silently run on)."""
        if not isinstance(target, (gast.Tuple, gast.List)):
            self.bind(target, value, target)
            return
        self.check_unpack_length(target, value)
        for i, elt in enumerate(target.elts):
            item = self.op(lookup(operator.getitem), ir.Form("subscript"), (value, ir.Index((ir.Const(i),), False)),
                           (), elt)
            self.unpack_checked(elt, item)

    def check_unpack_length(self, target: Any, value: ir.Operand) -> None:
        """``a, b = value`` reads ``value[0]`` and ``value[1]``: Python raises ValueError unless ``value`` has exactly
        as many items as there are names. A length known here (a constant, a tuple or list display) is compared now
        (refused when it differs); any other value is checked when the code runs (runtime.check_unpacks)."""
        n = len(target.elts)
        known = self.known_length(value)
        if known is None:
            self.loop_check(check_unpacks, (value, ir.Const(n)), target)
        elif known != n:
            raise self.unpack_count(target, known)

    def unpack_count(self, target: Any, known: int) -> UnsupportedSyntax:
        """The refusal of unpacking ``known`` values into another number of names: also the ValueError Python
        raises."""
        from srcgrad.structures import UnpackCount

        return UnpackCount(f"cannot unpack {known} values into {len(target.elts)} names", self.pf.location(target),
                           "unpack into as many names as there are values")

    def known_length(self, value: ir.Operand) -> int | None:
        """The length of a value when the lowering knows it: a constant tuple, list or string, or the result of a
        tuple or list display (followed through copies) in the current block."""
        if isinstance(value, ir.Const):
            return len(value.value) if type(value.value) in (tuple, list, str) else None
        name = value.name if isinstance(value, ir.Var) else None
        for op in reversed(self.block):
            if name is None:
                return None
            if isinstance(op, ir.Op) and op.target == name:
                if op.form.kind in ("tuple", "list"):
                    return len(op.args)
                copied = op.args[0] if op.form.kind == "copy" and len(op.args) == 1 else None
                if isinstance(copied, ir.Const):
                    return self.known_length(copied)
                name = copied.name if isinstance(copied, ir.Var) else None
        return None

    # --- statements ------------------------------------------------------------------------------------------

    def lower_stmt(self, stmt: Any) -> None:
        method = getattr(self, "stmt_" + type(stmt).__name__, None)
        if method is None:
            raise self.reject(stmt, f"srcgrad cannot differentiate a `{type(stmt).__name__}` statement here")
        method(stmt)

    def stmt_Pass(self, stmt: Any) -> None:
        pass

    # --- try ------------------------------------------------------------------------------------------------------

    def known(self, name: str, node: Any) -> str:
        """The version of ``name`` a read sees; refused when its value depends on where an exception was raised."""
        version = self.env[name]
        if version in self.unknown:
            raise self.reject(node, f"`{name}` {self.unknown[version]}, so its value here depends on where the "
                                    "exception was raised",
                              hint=f"assign `{name}` before the try, or again in every except block")
        return version

    def stmt_Try(self, node: Any) -> None:
        """``try``/``except``/``else``/``finally``: the forward sweep runs the same statement, and records which path
        it took (``path``: 0 when the body completed, k when the k-th handler ran); the reverse sweep follows that
        path outside any ``try``, so an exception of the reverse sweep is never caught by the user's ``except``.
        What the body assigned is unknown in a handler (the exception may come before or after the assignment):
        reading it there, or after the try when the handler does not assign it again, is refused; so is reading in
        ``finally`` what any part assigned."""
        self.check_try(node)
        line, before = self.pf.file_line(node), dict(self.env)
        path = self.synthetic("path")
        self.compound += 1
        try:
            body, body_env = self.region(list(node.body), before)
            body_raises = self.terminated
            paths = []  # (block, env, raises) of each way through: the body and else, then each handler
            saved = self.block, self.env
            self.block, self.env, self.terminated = [], dict(body_env), False
            self.assign_name(path, ir.Const(0), node, retarget=False)
            if node.orelse and self.returned_name in body_env and _contains(node, gast.Return):
                self.emit_if(self.guard([self.returned_name], node), list(node.orelse), [], node)  # (return: no else)
            else:
                self.lower_block(list(node.orelse))
            paths.append((self.block, self.env, body_raises or self.terminated))
            self.block, self.env = saved
            handlers = []
            unknown_env = self.unknown_after_body(before, body_env, body, node)
            for k, h in enumerate(node.handlers, 1):
                handler, paths_entry = self.lower_handler(h, k, path, unknown_env)
                handlers.append(handler)
                paths.append(paths_entry)
        finally:
            self.compound -= 1
        self.terminated = all(raises for _, _, raises in paths)
        self.join_paths([(b, e) for b, e, raises in paths if not raises] or [(paths[0][0], paths[0][1])], node)
        final = self.lower_finally(node, before)
        self.block.append(ir.Try(body, handlers, paths[0][0], final, self.env[path], line, node.col_offset))

    def check_try(self, node: Any) -> None:
        """What the lowering refuses in a try statement (see the README)."""
        for stmt in node.finalbody:
            for n in walk(stmt):
                if isinstance(n, (gast.Return, gast.Break, gast.Continue)) and not (
                        isinstance(n, (gast.Break, gast.Continue)) and not _contains_jump(stmt, type(n))):
                    raise self.reject(n, f"`{type(n).__name__.lower()}` in a `finally` block is not supported (it "
                                         "swallows the exception being raised)",
                                      hint="move it after the try statement")
        if self.loops:
            parts = list(node.body) + [s for h in node.handlers for s in h.body] + list(node.orelse)
            for stmt in parts:
                jump = next((n for n in walk(stmt) if isinstance(n, gast.Return)), None) or next(
                    (n for n in walk(stmt) if isinstance(n, (gast.Break, gast.Continue))
                     and _contains_jump(stmt, type(n))), None)
                if jump is not None:
                    raise self.reject(jump, f"`{type(jump).__name__.lower()}` inside a try statement inside a loop is "
                                            "not supported", hint="set a flag in the try statement and test it "
                                                                  "after it")
        for h in node.handlers:
            if h.name is not None and not isinstance(h.name, gast.Name):
                raise self.reject(h, "`except ... as` binds a single name")

    def unknown_after_body(self, before: dict, body_env: dict, body: list, node: Any) -> dict:
        """The environment a handler starts from: the names as before the try, except that the user's names the body
        assigned are unknown (the exception may have come before or after each assignment) — unless the body assigns
        the name once, by an op after which nothing can raise (``L = np.linalg.cholesky(K)``): then the exception
        came before it, and the name keeps its value from before the try."""
        env = dict(before)
        last_raising = max((i for i, s in enumerate(body) if not (isinstance(s, ir.Op) and s.form.kind == "copy")),
                           default=-1)
        settled = {s.target for s in body[last_raising:] if isinstance(s, ir.Op)} if last_raising >= 0 else set()
        for n, version in body_env.items():
            if before.get(n) == version or n not in self.locals or n not in self.loaded:
                continue
            if version in settled and _assignments(node.body, n) == 1:
                if n in before:
                    env[n] = before[n]
                else:
                    env.pop(n, None)
            else:
                marker = f"?{n}@{node.lineno}"
                self.unknown[marker] = f"is assigned in the try block at line {self.pf.file_line(node)}"
                env[n] = marker
        return env

    def lower_handler(self, h: Any, k: int, path: str, env: dict) -> tuple:
        types = None
        if h.type is not None:
            types = self.value(h.type)
            if not (isinstance(types, ir.Const) and types.text is not None) and not isinstance(types, ir.Var):
                raise self.reject(h.type, "an except clause names exception classes here",
                                  hint="name the class (ValueError, np.linalg.LinAlgError) or a tuple of them")
        saved = self.block, self.env
        self.block, self.env, self.terminated = [], dict(env), False
        try:
            self.assign_name(path, ir.Const(k), h, retarget=False)
            name = None
            if h.name is not None:
                name = self.new_version(h.name.id)
                self.emit(ir.Op(name, None, ir.Form("bound"), (), (), self.pf.file_line(h), h.col_offset))
                self.env[h.name.id] = name
            self.lower_block(list(h.body))
            if h.name is not None:
                self.env.pop(h.name.id, None)  # (Python deletes it at the end of the handler)
            return ir.Handler(types, name, self.block, self.pf.file_line(h)), (self.block, self.env, self.terminated)
        finally:
            self.block, self.env = saved

    def join_paths(self, paths: list, node: Any) -> None:
        """The environment after a statement with several ways through (``(block, env)`` each): a name with one
        version keeps it, an unknown value stays unknown, others get a joined version copied at each block's end."""
        line = self.pf.file_line(node)
        names = sorted(set().union(*(env for _, env in paths)))
        self.env = {}
        for n in names:
            versions = [env.get(n) for _, env in paths]
            unknown = next((v for v in versions if v in self.unknown), None)
            if unknown is not None:
                self.env[n] = unknown
            elif all(v == versions[0] for v in versions):
                self.env[n] = versions[0]
            elif None in versions:
                present = next(v for v in versions if v is not None)
                if len({v for v in versions if v is not None}) == 1:
                    self.env[n] = present
                    self.maybe_unbound.add(present)
                else:
                    joined = self.new_version(n)
                    for (block, _), v in zip(paths, versions):
                        block.append(_copy(joined, v if v is not None else ir.Const(None), line))
                    self.env[n] = joined
                    self.maybe_unbound.add(joined)
            else:
                joined = self.new_version(n)
                for (block, _), v in zip(paths, versions):
                    block.append(_copy(joined, v, line))
                self.env[n] = joined

    def lower_finally(self, node: Any, before: dict) -> list:
        """``finally``: runs on every path, also while an exception propagates, when what the other parts assigned
        may not exist: reading it there is refused."""
        if not node.finalbody:
            return []
        after = dict(self.env)
        env = dict(after)
        for n, version in after.items():
            if before.get(n) != version and n in self.locals and n in self.loaded:
                marker = f"?{n}@{node.lineno}/finally"
                self.unknown[marker] = (f"is assigned in the try statement at line {self.pf.file_line(node)} and "
                                        "read in its finally block (which also runs while an exception propagates)")
                env[n] = marker
        final, final_env = self.region(list(node.finalbody), env)
        self.env = {n: (final_env[n] if final_env.get(n) != env.get(n) else after.get(n, final_env[n]))
                    for n in final_env}
        return final

    # --- with ------------------------------------------------------------------------------------------------------

    def stmt_With(self, node: Any) -> None:
        """``with a as x, b: body`` is ``with a as x: with b: body``. Each manager is computed (its context ops),
        entered around the forward statements of the body, and, for np.errstate (whose state decides what the
        arithmetic of the reverse sweep does), computed again and entered around the body's reverse sweep. Other
        managers (timers, catch_warnings, nullcontext, locks) are entered once: entering them again would repeat
        what they do. The ``as`` value is bound by the statement; a gradient through it is refused."""
        self.lower_with(node, list(node.items))

    def lower_with(self, node: Any, items: list) -> None:
        item = items[0]
        start = len(self.block)
        manager = self.value(item.context_expr)
        context = [op for op in self.block[start:] if isinstance(op, ir.Op)]
        reenter = bool(context) and any(context[-1].callee is m for m in REENTERED_MANAGERS)
        saved_block = self.block
        self.block = []
        target = None
        self.compound += 1
        try:
            if item.optional_vars is not None:
                if not isinstance(item.optional_vars, gast.Name):
                    raise self.reject(item.optional_vars, "`with ... as` binds a single name here",
                                      hint="bind one name, and unpack it in a statement of its own")
                target = self.new_version(item.optional_vars.id)
                op = ir.Op(target, None, ir.Form("bound"), (manager,), (), self.pf.file_line(item.optional_vars),
                           item.optional_vars.col_offset)
                self.emit(op)
                self.env[item.optional_vars.id] = target
            if len(items) > 1:
                self.lower_with(node, items[1:])
            else:
                self.lower_block(list(node.body))
            body = self.block
        finally:
            self.compound -= 1
            self.block = saved_block
        suppresses = not (context and any(context[-1].callee is m for m in NONSUPPRESSING_MANAGERS))
        self.block.append(ir.With(manager, target, body, context if reenter else [], reenter, suppresses,
                                  self.pf.file_line(node), node.col_offset))

    def stmt_Expr(self, stmt: Any) -> None:
        if isinstance(stmt.value, gast.Constant):
            return  # docstring or bare constant
        self.expr(stmt.value)

    def stmt_Assert(self, stmt: Any) -> None:
        """``assert test, msg`` is ``if not test: raise AssertionError(msg)``, the message computed only when it fails
        (and nothing at all when Python runs with -O, as for the function's own assert). ``AssertionError`` is
        bound by srcgrad, whatever the user's module calls by that name."""
        if sys.flags.optimize:
            return
        cond = self.value(stmt.test)
        saved_block, saved_env = self.block, self.env
        self.block, self.env = [], dict(self.env)
        try:
            args = (self.value(stmt.msg),) if stmt.msg is not None else ()
            exc = self.op(None, ir.Form("call", "AssertionError"), args, (), stmt, AssertionError)
            self.block[-1].own = True
            self.raise_op((exc,), "", stmt)
            failure = self.block
        finally:
            self.block, self.env = saved_block, saved_env  # (the failing side raises: it binds nothing)
        self.block.append(ir.If(cond, [], failure, self.pf.file_line(stmt), stmt.col_offset))

    def stmt_Raise(self, stmt: Any) -> None:
        """``raise E(msg) [from cause]`` runs in the forward sweep where the function raises it; what follows is
        unreachable."""
        args = [self.value(stmt.exc)] if stmt.exc is not None else []
        if stmt.cause is not None:
            args.append(self.value(stmt.cause))
        self.raise_op(tuple(args), "from" if stmt.cause is not None else "", stmt)
        self.terminated = True

    def raise_op(self, args: tuple, symbol: str, stmt: Any) -> None:
        op = ir.Op(self.fresh_temp(), None, ir.Form("raise", symbol), args, (), self.pf.file_line(stmt),
                   stmt.col_offset)
        op.effect = True
        self.emit(op)

    def stmt_Return(self, stmt: Any) -> None:
        if stmt.value is None:
            raise self.reject(stmt, "the differentiated function returns nothing", hint="return a number or array")
        value = self.value(stmt.value)
        self.note_returned(value)
        self.block.append(ir.Return(value, self.pf.file_line(stmt), stmt.col_offset))

    def note_returned(self, value: ir.Operand) -> None:
        """A returned constant that is not a number (``return None``): the generated code checks what the function
        returns, whatever kind the other paths give it."""
        if isinstance(value, ir.Const) and (value.live or not isinstance(value.value, (int, float))):
            self.returns_non_number = True

    def stmt_Assign(self, stmt: Any) -> None:
        if isinstance(stmt.value, gast.Lambda):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], gast.Name):
                raise self.reject(stmt, "bind a lambda to a single name: `f = lambda v: ...`")
            self.define_local_function(stmt.targets[0].id, stmt.value, stmt.value.args)
            return
        if len(stmt.targets) == 1 and isinstance(stmt.targets[0], (gast.Tuple, gast.List)) \
                and isinstance(stmt.value, (gast.Tuple, gast.List)):
            self.assign_parallel(stmt.targets[0], stmt.value)
            return
        value = self.value(stmt.value)
        for target in stmt.targets:  # (`a = b = v`: each name a copy of v; renaming v to `a` would lose it for b)
            self.bind(target, value, stmt, retarget=len(stmt.targets) == 1)

    def stmt_AnnAssign(self, stmt: Any) -> None:
        if stmt.value is None:
            return
        self.bind(stmt.target, self.value(stmt.value), stmt)

    def stmt_AugAssign(self, stmt: Any) -> None:
        target = stmt.target
        if isinstance(target, gast.Subscript):
            read = gast.Subscript(target.value, target.slice, gast.Load())
            gast.copy_location(read, target)
            binop = gast.BinOp(read, stmt.op, stmt.value)
            gast.copy_location(binop, stmt)
            value = self.value(binop)
            self.mark_in_place(value)  # `lst[0] += v` changes the item itself when it is an array or a list
            self.bind(target, value, stmt)
            return
        if not isinstance(target, gast.Name):
            raise self.reject(target, "augmented assignment to an attribute is not supported",
                              hint="compute the new value into a fresh variable")
        load = gast.Name(target.id, gast.Load(), None, None)
        gast.copy_location(load, target)
        binop = gast.BinOp(load, stmt.op, stmt.value)
        gast.copy_location(binop, stmt)
        value = self.value(binop)
        self.mark_in_place(value)
        self.bind(target, value, stmt)

    def mark_in_place(self, value: ir.Operand) -> None:
        """The operation of ``x op= v`` just emitted is in place when x is an array (checked once kinds are known:
        srcgrad.aliasing)."""
        last = self.block[-1] if self.block else None
        if isinstance(last, ir.Op) and isinstance(value, ir.Var) and last.target == value.name:
            last.inplace = True

    def assign_parallel(self, targets: Any, values: Any) -> None:
        if len(targets.elts) != len(values.elts):
            raise self.unpack_count(targets, len(values.elts))
        operands = [self.value(v) for v in values.elts]  # all right-hand sides first: `a, b = b, a` swaps
        for target, operand in zip(targets.elts, operands):
            self.bind(target, operand, target, retarget=False)

    def assign_name(self, user_name: str, value: ir.Operand, stmt: Any, retarget: bool = True,
                    to: str | None = None) -> None:
        """Bind a (user or synthetic) name to a value: a fresh SSA version, or ``to`` when given."""
        name = to or self.new_version(user_name)
        last = self.block[-1] if self.block else None
        if retarget and isinstance(value, ir.Var) and isinstance(last, ir.Op) and last.target == value.name \
                and value.name not in self.env.values() and value.name in self.temporaries:
            last.target = name  # the expression's last temporary becomes the user's variable
        else:
            op = _copy(name, value.name if isinstance(value, ir.Var) else value, self.pf.file_line(stmt),
                       getattr(stmt, "col_offset", 0))
            # a user's `y = x` where x is a variable: one object, two names (a temporary has no other name)
            op.alias = isinstance(value, ir.Var) and retarget and value.name in self.env.values()
            self.emit(op)
        self.env[user_name] = name

    def bind(self, target: Any, value: ir.Operand, stmt: Any, retarget: bool = True) -> None:
        if isinstance(target, (gast.Tuple, gast.List)):
            for elt in target.elts:
                if isinstance(elt, gast.Starred):
                    raise self.reject(elt, "starred unpacking is not supported", hint="index the value instead")
            self.check_unpack_length(target, value)
            for i, elt in enumerate(target.elts):
                item = self.op(lookup(operator.getitem), ir.Form("subscript"),
                               (value, ir.Index((ir.Const(i),), False)), (), elt)
                self.bind(elt, item, stmt)
            return
        if isinstance(target, gast.Subscript) and isinstance(target.value, gast.Name) \
                and target.value.id in self.locals:
            self.set_item(target, value, stmt)
            return
        if not isinstance(target, gast.Name):
            raise self.reject(target, "assigning to an attribute, or to an item of something other than a local "
                                      "variable, is not supported",
                              hint="build the new value in a local variable (e.g. y = x.copy(); y[i] = v)")
        self.assign_name(target.id, value, stmt, retarget)

    def set_item(self, target: Any, value: ir.Operand, stmt: Any) -> None:
        """``y[index] = v``: a new version of y with the item replaced (``setitem`` copies, then writes). Python
        writes in place; the two agree unless another name shares y's array, which the passes refuse."""
        name = target.value.id
        if name not in self.env:
            raise self.reject(target.value, f"`{name}` is used before it is assigned")
        index = self.index(target.slice)
        version = self.new_version(name)
        op = ir.Op(version, lookup(_SETITEM), ir.Form("call", "setitem"), (ir.Var(self.known(name, target)), index,
                                                                            value),
                   (), self.pf.file_line(stmt), getattr(stmt, "col_offset", 0), _SETITEM)
        op.inplace = True
        self.emit(op)
        self.env[name] = version

    def emit(self, op: ir.Op) -> ir.Var:
        self.block.append(op)
        return ir.Var(op.target)

    # --- expressions -----------------------------------------------------------------------------------------

    def value(self, node: Any) -> ir.Operand:
        """Lower an expression that must denote a value (not a module or function)."""
        result = self.expr(node)
        if isinstance(result, _Ref):
            if isinstance(result.obj, (int, float, complex, bool, np.ndarray, np.generic, type, np.dtype)):
                return ir.Const(result.obj, result.text)  # numbers, arrays, and types as values (dtype=float)
            raise self.reject(node, f"`{result.text}` is a {type(result.obj).__name__}, not a number or array")
        return result

    def expr(self, node: Any) -> Any:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.reject(node, f"srcgrad cannot differentiate the expression `{type(node).__name__}` here")
        return method(node)

    def op(self, rule: Any, form: ir.Form, args: tuple, kwargs: tuple, node: Any, callee: Any = None) -> ir.Var:
        target = self.fresh_temp()
        return self.emit(ir.Op(target, rule, form, args, kwargs, self.pf.file_line(node),
                               getattr(node, "col_offset", 0), callee))

    def expr_Constant(self, node: Any) -> ir.Operand:
        value = node.value
        if not (value is None or value is Ellipsis or type(value) in (int, float, bool, str)):
            kind = "complex number" if isinstance(value, complex) else type(value).__name__
            raise self.reject(node, f"srcgrad cannot differentiate code with a {kind} literal ({value!r})",
                              hint="srcgrad differentiates real numbers: write the real and imaginary parts as "
                                   "separate real values")
        return ir.Const(value)

    def expr_Name(self, node: Any) -> Any:
        name = node.id
        if name in self.locals:
            if name not in self.env:
                raise self.reject(node, f"`{name}` is used before it is assigned")
            return ir.Var(self.known(name, node))
        obj = self.pf.resolve(name)
        if obj is _MISSING:
            raise self.reject(node, f"name `{name}` is not defined",
                              hint="define it at module level before the first call of the gradient")
        if _is_data(obj):
            return ir.Const(obj, name, live=True)
        return _Ref(obj, name)

    def expr_Attribute(self, node: Any) -> Any:
        base = self.expr(node.value)
        if isinstance(base, _Ref):
            obj = getattr(base.obj, node.attr, _MISSING)
            if obj is _MISSING:
                raise self.reject(node, f"`{base.text}` has no attribute `{node.attr}`")
            text = f"{base.text}.{node.attr}"
            live = not isinstance(base.obj, types.ModuleType)
            return ir.Const(obj, text, live=live) if _is_data(obj) else _Ref(obj, text)
        if isinstance(base, ir.Const) and base.text is not None and not isinstance(base.value, np.ndarray):
            obj = getattr(base.value, node.attr, _MISSING)
            if obj is not _MISSING and _is_data(obj):
                return ir.Const(obj, f"{base.text}.{node.attr}", live=True)
            if isinstance(obj, types.ModuleType):  # (`cfg.xp.sum(v)` calls the module's function; guarded as a chain)
                return _Ref(obj, f"{base.text}.{node.attr}")
        if node.attr in ATTRIBUTES:
            return self.op(lookup(ATTRIBUTES[node.attr]), ir.Form("attr", node.attr), (base,), (), node)
        if node.attr in NONDIFF_ATTRIBUTES:
            return self.op(_NONDIFF_ATTR, ir.Form("attr", node.attr), (base,), (), node)
        return self.opaque_attribute(base, node)

    def opaque_attribute(self, base: ir.Operand, node: Any) -> ir.Var:
        """An attribute srcgrad has no rule for (``timer.elapsed``, ``err.args``): read as written; a gradient through
        it is refused (passes._no_rule)."""
        return self.op(None, ir.Form("attr", node.attr), (base,), (), node)

    def expr_BinOp(self, node: Any) -> ir.Var:
        func, symbol = BINOPS[type(node.op)]
        left, right = self.value(node.left), self.value(node.right)
        if symbol == "%" and isinstance(left, ir.Const) and isinstance(left.value, str):
            # printf-style formatting: no rule (no derivative flows through a string); it may raise, so it stays
            result = self.op(None, ir.Form("binop", symbol), (left, right), (), node)
            self.block[-1].keep = True
            return result
        return self.op(lookup(func), ir.Form("binop", symbol), (left, right), (), node)

    def expr_UnaryOp(self, node: Any) -> ir.Operand:
        func, symbol = UNARYOPS[type(node.op)]
        if isinstance(node.op, gast.USub) and isinstance(node.operand, gast.Constant) \
                and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
            return ir.Const(-node.operand.value)
        operand = self.value(node.operand)
        return self.op(lookup(func), ir.Form("unaryop", symbol), (operand,), (), node)

    def expr_Compare(self, node: Any) -> ir.Var:
        operands = (self.value(node.left),) + tuple(self.value(c) for c in node.comparators)
        symbols = " ".join(COMPARES[type(o)] for o in node.ops)
        return self.op(_COMPARE, ir.Form("compare", symbols), operands, (), node)

    def expr_NamedExpr(self, node: Any) -> ir.Var:
        """``(y := value)``: binds ``y`` (in the function's scope, also inside a comprehension) and is its value."""
        value = self.value(node.value)
        self.assign_name(node.target.id, value, node)
        return ir.Var(self.env[node.target.id])

    def expr_BoolOp(self, node: Any) -> ir.Var:
        for later in node.values[1:]:  # (the lowering evaluates every operand: a binding must not depend on that)
            walrus = next((n for n in walk(later) if isinstance(n, gast.NamedExpr)), None)
            if walrus is not None:
                word = "and" if isinstance(node.op, gast.And) else "or"
                raise self.reject(walrus, f"an assignment expression after `{word}` is not supported (it binds only "
                                          "when that operand is reached)",
                                  hint="assign it in a statement of its own before the condition")
        operands = tuple(self.value(v) for v in node.values)
        symbol = "and" if isinstance(node.op, gast.And) else "or"
        return self.op(_BOOLOP, ir.Form("boolop", symbol), operands, (), node)

    def expr_Tuple(self, node: Any) -> ir.Operand:
        return self._sequence(node, "tuple")

    def expr_List(self, node: Any) -> ir.Operand:
        return self._sequence(node, "list")

    def _sequence(self, node: Any, kind: str) -> ir.Operand:
        elts = tuple(self.value(e) for e in node.elts)
        if kind == "tuple" and all(isinstance(e, ir.Const) and e.text is None for e in elts):
            return ir.Const(tuple(e.value for e in elts))
        return self.op(lookup(("display", kind)), ir.Form(kind), elts, (), node)

    def expr_Dict(self, node: Any) -> ir.Var:
        """A dict display: built as written, opaque (no rule), so a gradient that would flow through it is refused
        (what it is for: an auxiliary output, ``return loss, {"pred": pred}``, or constants)."""
        if any(k is None for k in node.keys):
            raise self.reject(node, "srcgrad cannot lower `**` unpacking in a dict display",
                              hint="write the keys out")
        keys = tuple(self.value(k) for k in node.keys)
        values = tuple(self.value(v) for v in node.values)
        return self.op(None, ir.Form("dict"), keys + values, (), node)

    def expr_Subscript(self, node: Any) -> ir.Var:
        base = self.value(node.value)
        index = self.index(node.slice)
        # Indexing reads items of arrays and containers; an object with an indexing of its own (np.r_[a, b],
        # np.c_, np.mgrid) computes something else from the index: opaque, so a gradient reaching it is refused.
        rule = lookup(operator.getitem)
        if isinstance(base, ir.Const) and not isinstance(base.value, _INDEXABLE):
            rule = None
        return self.op(rule, ir.Form("subscript"), (base, index), (), node)

    def index(self, node: Any) -> ir.Index:
        parts = node.elts if isinstance(node, gast.Tuple) else [node]
        return ir.Index(tuple(self.index_part(p) for p in parts), isinstance(node, gast.Tuple))

    def index_part(self, node: Any) -> Any:
        if isinstance(node, gast.Slice):
            bound = [None if b is None else self.value(b) for b in (node.lower, node.upper, node.step)]
            return ir.Slice(*bound)
        if isinstance(node, gast.Constant) and node.value is None:
            return None
        if isinstance(node, gast.Constant) and node.value is Ellipsis:
            return Ellipsis
        return self.value(node)

    def expr_Call(self, node: Any) -> ir.Var:
        self.reject_call_unpacking(node)
        result = self.special_call(node)
        if result is not None:
            return result
        return self.named_call(node)

    def reject_call_unpacking(self, node: Any) -> None:
        """``f(*xs)`` and ``f(**kw)`` are refused."""
        for a in node.args:
            if isinstance(a, gast.Starred):
                raise self.reject(a, "srcgrad cannot differentiate star-unpacking in a call",
                                  hint="pass arguments explicitly")
        for k in node.keywords:
            if k.arg is None:
                raise self.reject(k.value, "srcgrad cannot differentiate **keyword unpacking in a call",
                                  hint="pass keyword arguments explicitly")

    def special_call(self, node: Any) -> Any:
        """A call lowered its own way (a nested function, ``xs.append``, a method, ``sum`` of a comprehension,
        ``max``/``min`` of items, ``list``/``tuple`` of a generator); None for a call of a named function."""
        func = node.func
        if isinstance(func, gast.Name) and func.id in self.local_functions:
            return self.inline_call(func.id, node)
        if isinstance(func, gast.Attribute):
            if func.attr == "append" and isinstance(func.value, gast.Name) and func.value.id in self.locals:
                return self.append(func.value, node)
            base = self.expr(func.value)
            if not isinstance(base, _Ref):
                return self.method_call(base, func.attr, node)
        if self.builtin_callee(node) is sum and node.args \
                and isinstance(node.args[0], (gast.GeneratorExp, gast.ListComp)):
            args = self.builtin_arguments(node, _SUM)
            return self.sum_comprehension(args["iterable"], args.get("start"))
        if any(self.builtin_callee(node) is f for f in PACKED_BUILTINS) and (len(node.args) != 2 or node.keywords):
            return self.extreme(node)
        if self.builtin_callee(node) in (any, all) and len(node.args) == 1 and not node.keywords \
                and isinstance(node.args[0], gast.GeneratorExp):
            return self.deciding_generator(node.args[0], self.builtin_callee(node))
        if self.is_sequence_of_generator(node):
            return self.expr_ListComp(node.args[0])  # list(f(v) for v in xs) is a list comprehension
        return None

    def is_sequence_of_generator(self, node: Any) -> bool:
        """``list(f(v) for v in xs)`` or ``tuple(...)``, the builtins themselves."""
        func = node.func
        return isinstance(func, gast.Name) and func.id in ("list", "tuple") and func.id not in self.locals \
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], gast.GeneratorExp) \
            and self.pf.resolve(func.id) in (list, tuple)

    def named_call(self, node: Any) -> ir.Var:
        """A call of a named function (``np.exp(x)``, ``helper(x)``): one op, by the callee's rule."""
        func = node.func
        callee = self.expr(func)
        if not isinstance(callee, _Ref) or not callable(callee.obj):
            raise self.reject(func, "only named functions can be called here",
                              hint="call the function by its name (e.g. np.exp(x), helper(x))")
        arg_nodes = list(node.args)
        if callee.obj is np.einsum and self.einsum_sublists(node) is not None:
            subscripts, arg_nodes = self.einsum_sublists(node)
            arg_nodes = [gast.Constant(subscripts, None)] + arg_nodes
        args = tuple(self.value(a) for a in arg_nodes)
        kwargs = tuple((k.arg, self.value(k.value)) for k in node.keywords)
        rule = lookup(callee.obj)
        result = self.op(rule, ir.Form("call", callee.text), args, kwargs, node, callee.obj)
        if (rule is None and not _is_user_function(callee.obj)) or any(callee.obj is b for b in _EFFECT_BUILTINS):
            # an opaque callable (allowed on constants, an error when a gradient flows through it) may do something
            # (print, log, warn): it runs once, in the forward sweep, in program order
            self.block[-1].effect = True
        return result

    def extreme(self, node: Any) -> ir.Var:
        """``max(iterable)``, ``max(a, b, c, ...)`` (its arguments packed into a tuple: the same result) and their
        ``min``: one rule, ties sharing the gradient equally. ``max(a, b)`` keeps its own two-argument rule."""
        func = self.builtin_callee(node)
        name = func.__name__
        key = next((k for k in node.keywords if k.arg == "key"), None)
        if key is not None:
            raise self.reject(key.value, f"srcgrad's rule for {name} does not accept these arguments (key=...: "
                                         "the key decides which item is the result)",
                              hint="compute the index of the item (np.argmax, a loop) and index with it")
        if len(node.args) == 1 and isinstance(node.args[0], gast.GeneratorExp):
            args = (self.expr_ListComp(node.args[0]),)  # max(f(v) for v in xs) is max of the list
        else:
            args = tuple(self.value(a) for a in node.args)
        if len(args) > 1:
            args = (self.op(lookup(("display", "tuple")), ir.Form("tuple"), args, (), node),)
        kwargs = tuple((k.arg, self.value(k.value)) for k in node.keywords)
        rule = lookup(("builtin", f"{name} of items"))
        return self.op(rule, ir.Form("call", node.func.id), args, kwargs, node, func)

    def einsum_sublists(self, node: Any) -> tuple[str, list] | None:
        """``np.einsum(a, [0, 1], b, [1, 2], [0, 2])`` (the sublist form) as its subscripts ``'AB,BC->AC'`` and the
        operand nodes; None for the subscripts form. Sublists must be written as lists or tuples of integers."""
        args = node.args
        if len(args) < 2 or not isinstance(args[1], (gast.Tuple, gast.List)) \
                or (isinstance(args[0], gast.Constant) and isinstance(args[0].value, str)):
            return None
        operands, sublists = args[0::2], [args[i] for i in range(1, len(args), 2)]
        if len(args) % 2:  # an odd count ends with the output's sublist
            operands, sublists = operands[:-1], sublists + [args[-1]]
        letters = []
        for sub in sublists:
            items = sub.elts if isinstance(sub, (gast.Tuple, gast.List)) else None
            if items is None or not all(self.is_ellipsis(i) or (isinstance(i, gast.Constant) and type(i.value) is int
                                                                 and 0 <= i.value < 52) for i in items):
                raise self.reject(sub, "np.einsum's sublist form is differentiated when each sublist is written as a "
                                       "list of integers 0..51 and `...` (or `Ellipsis`)",
                                  hint="write the subscripts as a string instead: np.einsum('ij,jk->ik', a, b)")
            letters.append("".join("..." if self.is_ellipsis(i) else _EINSUM_LETTERS[i.value] for i in items))
        inputs = ",".join(letters[:len(operands)])
        if len(letters) > len(operands):
            return inputs + "->" + letters[-1], list(operands)
        # implicit: the `...` axes, then the indices that appear once in increasing order — numpy's order for the
        # letters, which are the indices' in the same order
        return inputs, list(operands)

    def is_ellipsis(self, node: Any) -> bool:
        """``...``, or the name ``Ellipsis`` denoting it (a global or builtin: guarded like every name read)."""
        if isinstance(node, gast.Constant):
            return node.value is Ellipsis
        return isinstance(node, gast.Name) and node.id == "Ellipsis" and node.id not in self.locals \
            and self.pf.resolve(node.id) is Ellipsis

    # --- local functions: nested defs and lambdas, inlined where they are called -----------------------------------

    def stmt_FunctionDef(self, node: Any) -> None:
        if node.decorator_list:
            raise self.reject(node.decorator_list[0], "decorators on nested functions are not supported",
                              hint="define the decorated function at module level")
        self.define_local_function(node.name, node, node.args)

    def define_local_function(self, name: str, node: Any, args: Any) -> None:
        if args.vararg is not None or args.kwarg is not None:
            raise self.reject(node, "nested functions with *args or **kwargs are not supported",
                              hint="list the parameters explicitly")
        params = [a.id for a in args.posonlyargs + args.args + args.kwonlyargs]
        positional = args.posonlyargs + args.args
        # Python evaluates defaults once, where the function is defined.
        defaults = {a.id: self.value(d) for a, d in zip(positional[len(positional) - len(args.defaults):],
                                                           args.defaults)}
        defaults.update({a.id: self.value(d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
        self.locals |= set(params)
        self.local_functions[name] = (node, params, defaults, len(positional))

    def inline_call(self, name: str, node: Any) -> ir.Operand:
        """A call to a nested function or lambda: its body, lowered here with the arguments bound to its
        parameters and its free names seeing the caller's variables as they are now (closure semantics)."""
        if name in self.inlining:
            raise self.reject(node, f"the nested function `{name}` calls itself",
                              hint="define a recursive helper at module level")
        fnode, params, defaults, n_positional = self.local_functions[name]
        if len(node.args) > n_positional:
            raise self.reject(node, f"`{name}` takes {n_positional} positional arguments")
        bound: dict[str, ir.Operand] = {}
        for pname, arg in zip(params, node.args):
            bound[pname] = self.value(arg)
        for kw in node.keywords:
            if kw.arg not in params or kw.arg in bound:
                raise self.reject(kw.value, f"`{name}` got an unexpected or repeated argument `{kw.arg}`")
            bound[kw.arg] = self.value(kw.value)
        for pname in params:
            if pname not in bound:
                if pname not in defaults:
                    raise self.reject(node, f"`{name}` is missing the argument `{pname}`")
                bound[pname] = defaults[pname]
        saved = (self.env, self.loops, self.ret_name, self.returned_name, self.compound)
        self.env, self.loops, self.compound = dict(self.env), [], 0
        self.ret_name = self.fresh_user_name(f"{name}_result")
        self.returned_name = self.fresh_user_name(f"{name}_returned")
        self.inlining.append(name)
        captured = self.written_captures(name)
        try:
            for pname in params:
                self.assign_name(pname, bound[pname], node, retarget=False)
            if isinstance(fnode, gast.Lambda):
                result = self.value(fnode.body)
            else:
                self.locals |= {self.ret_name, self.returned_name}
                self.loaded |= {self.ret_name, self.returned_name}
                self.init_returned_flag(fnode)
                self.lower_block(list(fnode.body))
                if self.ret_name not in self.env:
                    raise self.reject(fnode, f"the nested function `{name}` returns nothing",
                                      hint="return a value from it")
                result = ir.Var(self.env[self.ret_name])
            # A caller's list or array the function appended to or wrote items of is the caller's variable (a
            # closure): its new version is the caller's from here on.
            written = {n: self.env[n] for n in captured if n in self.env and self.env[n] != saved[0].get(n)}
        finally:
            self.inlining.pop()
            self.env, self.loops, self.ret_name, self.returned_name, self.compound = saved
        self.env.update(written)
        return result

    def written_captures(self, name: str) -> set[str]:
        """The caller's variables a nested function (or lambda) bound to ``name`` writes into — appends to, or
        assigns items of — directly or through the nested functions it calls; its own names excluded."""
        out: set[str] = set()
        todo, seen = [name], set()
        while todo:
            current = todo.pop()
            if current in seen or current not in self.local_functions:
                continue
            seen.add(current)
            fnode, params, _, _ = self.local_functions[current]
            own = set(params) | (_stored_targets(fnode) - {current} if not isinstance(fnode, gast.Lambda) else set())
            out |= _written_receivers(fnode) - own
            todo.extend(n.func.id for n in walk(fnode)
                        if isinstance(n, gast.Call) and isinstance(n.func, gast.Name))
        return out

    # --- containers -----------------------------------------------------------------------------------------------

    def append(self, receiver: Any, node: Any) -> ir.Const:
        """``xs.append(v)``: the list gets a new version (the same object), so its adjoint can drop the element. The
        call's own value is None, as in Python."""
        if len(node.args) != 1 or node.keywords:
            raise self.reject(node, "append takes one value")
        value = self.value(node.args[0])
        if receiver.id not in self.env:
            raise self.reject(receiver, f"`{receiver.id}` is used before it is assigned")
        lst = ir.Var(self.known(receiver.id, receiver))
        target = self.new_version(receiver.id)
        self.emit(ir.Op(target, lookup(_APPEND), ir.Form("append"), (lst, value), (), self.pf.file_line(node),
                        node.col_offset))
        self.env[receiver.id] = target
        return ir.Const(None)

    def comprehension_loop(self, node: Any, body: Any) -> Any:
        """``for`` statements (gast) equivalent to the generators of a comprehension, around ``body``.

        The comprehension's variables get fresh names so they never clobber the function's own variables."""
        renames = {}
        for gen in node.generators:
            for n in walk(gen.target):
                if isinstance(n, gast.Name):
                    renames[n.id] = self.fresh_user_name(n.id)
        node = _Rename(renames).visit(_deepcopy(node))
        body = _Rename(renames).visit(_deepcopy(body))
        stmt = body
        for gen in reversed(node.generators):
            if gen.is_async:
                raise self.reject(node, "async comprehensions are not differentiable")
            for cond in reversed(gen.ifs):
                stmt = gast.If(test=cond, body=[stmt], orelse=[])
                gast.copy_location(stmt, cond)
            stmt = gast.For(target=gen.target, iter=gen.iter, body=[stmt], orelse=[], type_comment=None)
            gast.copy_location(stmt, node)
        new = _stored_targets(stmt)
        self.locals |= new
        self.loaded |= new
        return stmt

    def synthetic(self, base: str) -> str:
        """A name for a variable srcgrad adds (a flag, the result): ``base``, or ``base_2``... when taken."""
        name = naming.fresh(base, lambda n: n in self.used or n in self.locals, first=2)
        self.used.add(name)
        return name

    def fresh_user_name(self, base: str) -> str:
        """A variable srcgrad adds for the user's code (a comprehension's variable, an inlined result)."""
        return self.synthetic(f"{base}_c")

    def sum_comprehension(self, node: Any, start: Any = None) -> ir.Var:
        """``sum(f(v) for v in xs if c)`` (or ``sum(..., start)``) is a loop that adds to ``start``, no list
        needed."""
        acc = self.fresh_user_name("total")
        target = gast.Name(acc, gast.Store(), None, None)
        load = gast.Name(acc, gast.Load(), None, None)
        add = gast.Assign(targets=[target], value=gast.BinOp(load, gast.Add(), node.elt), type_comment=None)
        for n in (target, load, add, add.value):
            gast.copy_location(n, node)
        self.locals.add(acc)
        self.loaded.add(acc)
        # Python creates the generator (reading the first iterable) before it evaluates `start`; neither has effects
        self.assign_name(acc, ir.Const(0) if start is None else self.value(start), node, retarget=False)
        self.lower_stmt(self.comprehension_loop(node, add))
        return ir.Var(self.env[acc])

    def deciding_generator(self, node: Any, func: Any) -> ir.Var:
        """``any(c(v) for v in xs if ...)`` and ``all(...)``: a loop that stops at the first item that decides, as
        the builtin stops taking the generator's items (a later item is never computed: it may raise)."""
        if len(node.generators) != 1:
            raise self.reject(node, f"{func.__name__}() of a generator expression with several `for` clauses",
                              hint=f"write the loops, or take {func.__name__}() of a list comprehension [...]")
        flag = self.fresh_user_name("decided")
        self.locals.add(flag)
        self.loaded.add(flag)
        decides = func is any  # any: True at the first true item; all: False at the first false one
        self.assign_name(flag, ir.Const(not decides), node, retarget=False)
        test = node.elt if decides else gast.UnaryOp(gast.Not(), node.elt)
        set_flag = gast.Assign(targets=[gast.Name(flag, gast.Store(), None, None)],
                               value=gast.Constant(decides, None), type_comment=None)
        stmt = gast.If(test=test, body=[set_flag, gast.Break()], orelse=[])
        for n in (test, set_flag, set_flag.targets[0], set_flag.value, stmt.body[1], stmt):
            gast.copy_location(n, node)
        self.lower_stmt(self.comprehension_loop(node, stmt))
        return ir.Var(self.env[flag])

    def expr_ListComp(self, node: Any) -> ir.Var:
        acc = self.fresh_user_name("items")
        self.locals.add(acc)
        self.loaded.add(acc)
        empty = self.op(lookup(("display", "list")), ir.Form("list"), (), (), node)
        self.assign_name(acc, empty, node)
        call = gast.Call(func=gast.Attribute(gast.Name(acc, gast.Load(), None, None), "append", gast.Load()),
                         args=[node.elt], keywords=[])
        stmt = gast.Expr(value=call)
        for n in (call, call.func, call.func.value, stmt):
            gast.copy_location(n, node)
        self.lower_stmt(self.comprehension_loop(node, stmt))
        return ir.Var(self.env[acc])

    def expr_Lambda(self, node: Any) -> ir.Var:
        raise self.reject(node, "a lambda is differentiated only when bound to a name and called",
                          hint="write `f = lambda v: ...` and call `f(x)`, or define a helper with def")

    def expr_GeneratorExp(self, node: Any) -> ir.Var:
        raise self.reject(node, "a generator expression is differentiated only as the argument of sum(), list(), "
                                "tuple(), max(), min(), any() or all()", hint="use a list comprehension [...] instead")

    def method_call(self, receiver: ir.Operand, name: str, node: Any) -> ir.Var:
        target = METHODS.get(name)
        if target is None or _known_not_array(receiver):
            return self.opaque_method(receiver, name, node)
        if self.made_opaquely(receiver):  # (its type is known only when it runs: checked to be an array there)
            self.loop_check(array_receiver, (receiver,), node)
        args = tuple(self.value(a) for a in node.args)
        if name in VARARG_METHODS and len(args) > 1:
            tup = self.op(lookup(("display", "tuple")), ir.Form("tuple"), args, (), node)
            args = (tup,)
        kwargs = tuple((k.arg, self.value(k.value)) for k in node.keywords)
        rule = lookup(target) if not isinstance(target, str) else lookup(("method", target))
        return self.op(rule, ir.Form("method", name), (receiver,) + args, kwargs, node, target)


    def opaque_method(self, receiver: ir.Operand, name: str, node: Any) -> ir.Var:
        """A method srcgrad has no rule for (``logger.debug(...)``, ``"{}".format(v)``): called as written, once, in
        the forward sweep. Its result carries no gradient, and the passes refuse it where it might (a differentiated
        receiver, or a differentiated argument handed to a local value it may change: see
        passes.check_opaque_methods)."""
        args = tuple(self.value(a) for a in node.args)
        kwargs = tuple((k.arg, self.value(k.value)) for k in node.keywords)
        result = self.op(None, ir.Form("method", name), (receiver,) + args, kwargs, node)
        self.block[-1].effect = True
        return result

    # --- strings ----------------------------------------------------------------------------------------------------

    def expr_JoinedStr(self, node: Any) -> ir.Var:
        """An f-string: one ``fstring`` op, spelled ``'...'.format(...)`` in generated code (codegen.fstring: the
        same text). Formatting may raise (a bad format spec), so it is computed even when unused; no derivative flows
        through a string."""
        args: list = []
        codes = []
        for part in node.values:
            if isinstance(part, gast.Constant):
                args.append(ir.Const(part.value))
                codes.append("L")
                continue
            args.append(self.value(part.value))
            code = _CONVERSIONS[part.conversion]
            if part.format_spec is not None:
                spec = part.format_spec
                literal = all(isinstance(v, gast.Constant) for v in spec.values)
                args.append(ir.Const("".join(v.value for v in spec.values)) if literal else self.value(spec))
                code += ":"
            codes.append(code)
        result = self.op(None, ir.Form("fstring", " ".join(codes)), tuple(args), (), node)
        self.block[-1].keep = True
        return result

    def expr_FormattedValue(self, node: Any) -> ir.Var:  # (only inside an f-string: see expr_JoinedStr)
        raise self.reject(node, "a formatted value outside an f-string")


REENTERED_MANAGERS = (np.errstate,)  # entered again around the reverse sweep of their block (see stmt_With)
# Managers that never suppress an exception of their block (others may: the gradient checks the block ran to its end)
NONSUPPRESSING_MANAGERS = (np.errstate, warnings.catch_warnings, contextlib.nullcontext)
_CONVERSIONS = {-1: "n", 115: "s", 114: "r", 97: "a"}  # FormattedValue.conversion: none, !s, !r, !a
_EFFECT_BUILTINS = (print,)  # builtins with a rule (no gradient) that still do something


RET, BREAK, CONTINUE, RETURNED = "ret", "broke", "skip", "returned"


class _Loop:
    """The flags of one loop being lowered: raised by break / continue, read by guards and the exit test."""

    def __init__(self, node: Any, result_names: list[str], synthetic: Any):
        self.result_names = result_names  # the returned flag and the result variable of the enclosing function
        body = list(node.body)
        self.break_name = synthetic(BREAK) if any(_contains_jump(s, gast.Break) for s in body) else None
        self.continue_name = synthetic(CONTINUE) if any(_contains_jump(s, gast.Continue) for s in body) else None
        self.returns = any(_contains(s, gast.Return) for s in body)

    def flags(self) -> list[str]:
        return [f for f in (self.break_name, self.continue_name) if f] + (self.result_names if self.returns else [])


def _assignments(stmts: list, name: str) -> int:
    """How many times ``stmts`` may bind ``name`` (an item write or append counts as many)."""
    count = 0
    for s in stmts:
        for n in walk(s):
            if isinstance(n, gast.Name) and n.id == name and isinstance(n.ctx, gast.Store):
                count += 1
            elif isinstance(n, (gast.Subscript, gast.Attribute)) and isinstance(n.ctx, gast.Store) \
                    and isinstance(n.value, gast.Name) and n.value.id == name:
                count += 2
            elif isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute) \
                    and isinstance(n.func.value, gast.Name) and n.func.value.id == name:
                count += 2  # (a method may change it: xs.append(v))
            elif isinstance(n, (gast.For, gast.While)) and name in _stored_targets(n):
                count += 2
    return count


def _contains(node: Any, kind: type) -> bool:
    """Does the tree of ``node`` hold a node of ``kind``? (Asked of every statement: a walk without generators.)"""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind):
            return True
        for name in current._fields:
            value = getattr(current, name, None)
            if isinstance(value, gast.AST):
                stack.append(value)
            elif value.__class__ is list:
                stack.extend([v for v in value if isinstance(v, gast.AST)])
    return False


def _contains_jump(node: Any, kind: type) -> bool:
    """Does ``node`` hold a break/continue that belongs to the enclosing loop (not to a nested one)?"""
    if isinstance(node, kind):
        return True
    if isinstance(node, (gast.For, gast.While)):
        return False
    return any(_contains_jump(c, kind) for c in gast.iter_child_nodes(node))


def _written_receivers(node: Any) -> set[str]:
    """Names whose object ``node`` changes: ``xs.append(v)``, ``y[i] = v``, ``y[i] += v``."""
    names = set()
    for n in walk(node):
        if isinstance(n, gast.Subscript) and isinstance(n.ctx, gast.Store) and isinstance(n.value, gast.Name):
            names.add(n.value.id)
        elif isinstance(n, gast.AugAssign) and isinstance(n.target, gast.Subscript) \
                and isinstance(n.target.value, gast.Name):
            names.add(n.target.value.id)
        elif isinstance(n, gast.Call) and isinstance(n.func, gast.Attribute) and n.func.attr == "append" \
                and isinstance(n.func.value, gast.Name):
            names.add(n.func.value.id)
    return names


def _stored_names(loop: Any) -> set[str]:
    """Names a loop rebinds: assignment targets, and lists it appends to (each append is a new version)."""
    names = set()
    for s in loop.body + ([loop.test] if isinstance(loop, gast.While) else []):  # (`while (n := n - 1) > 0`)
        names |= {n.id for n in walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
        names |= _written_receivers(s)  # y[i] = v makes a new version of y (an append too)
    if isinstance(loop, gast.For):
        names |= {n.id for n in walk(loop.target) if isinstance(n, gast.Name)}
    return names


def parameter_names(args: Any) -> list[str]:
    """A function's parameters in the order of its signature: ``*args`` (a tuple) and ``**kwargs`` (a dict) are
    parameters like the others."""
    star = [args.vararg.id] if args.vararg is not None else []
    double = [args.kwarg.id] if args.kwarg is not None else []
    return [a.id for a in args.posonlyargs + args.args] + star + [a.id for a in args.kwonlyargs] + double


def _returns_a_copied_non_number(body: list) -> bool:
    """Whether the returned value may be a non-number constant that reached it through copies (``r = None`` then
    ``return r``, a name bound on some paths only, whose placeholder is None): the generated code then checks what
    the function returns, as for ``return None`` (the kinds call a copy of None a number)."""
    ret = body[-1].value
    return isinstance(ret, ir.Var) and ret.name in _holding_non_numbers(body)


def _holding_non_numbers(body: list) -> set[str]:
    """The values that may hold a non-number constant (``None``, a string) through copies (joins are copies)."""
    copies = [op for op in ir.walk_ops(body) if op.form.kind == "copy"]
    holding: set[str] = set()
    changed = True
    while changed:
        changed = False
        for op in copies:
            source = op.args[0]
            if op.target not in holding and (_non_number(source) or getattr(source, "name", None) in holding):
                holding.add(op.target)
                changed = True
    return holding


def return_location(pf: ParsedFunction) -> Location:
    """Where a function that returned no number returned (its returns join before the output is checked): the one
    return statement whose value may be a non-number (``return None``, ``return r`` after ``r = None``), else its
    end when its result may be unbound there (an implicit ``return None``), else its last return statement."""
    returns = sorted((n for n in pf.nodes if isinstance(n, gast.Return)), key=lambda n: (n.lineno, n.col_offset))
    by_line = {pf.file_line(n): n for n in returns}
    body = lowered(pf).body
    holding = _holding_non_numbers(body)
    lines = {op.line for op in ir.walk_ops(body) if op.form.kind == "copy" and op.line in by_line
             and (_non_number(op.args[0]) or getattr(op.args[0], "name", None) in holding)}
    last = body[-1]
    if isinstance(last.value, ir.Var) and last.value.name in holding and last.line in by_line:
        lines.add(last.line)  # (a return at the top level returns its value directly)
    if lines:
        return pf.location(by_line[min(lines)])
    if not returns or _may_run_off(pf.node.body):
        return pf.location(pf.node)
    return pf.location(returns[-1])


def _may_run_off(body: list) -> bool:
    """Whether running ``body`` may reach its end (conservatively: returns, raises and ``if``s whose branches both
    end so are the only statements counted as ending)."""
    last = body[-1] if body else None
    if isinstance(last, (gast.Return, gast.Raise)):
        return False
    if isinstance(last, gast.If):
        return _may_run_off(last.body) or _may_run_off(last.orelse)
    return True


def _non_number(operand: Any) -> bool:
    return isinstance(operand, ir.Const) and not operand.live and not isinstance(operand.value, (int, float))


def _copy(target: str, source: Any, line: int, col: int = 0) -> ir.Op:
    operand = ir.Var(source) if isinstance(source, str) else source
    return ir.Op(target, None, ir.Form("copy"), (operand,), (), line, col)


def _is_data(obj: Any) -> bool:
    return not isinstance(obj, (types.ModuleType, type)) and not callable(obj)


def _known_not_array(receiver: ir.Operand) -> bool:
    """A global or constant that is not an array (a user's object, a list, a sparse matrix): its ``.sum``/``.dot``
    are its own methods, not ndarray's, so the numpy rules of :data:`METHODS` do not describe them."""
    return isinstance(receiver, ir.Const) and not isinstance(receiver.value, (np.ndarray, np.generic)) \
        and not arrays.is_protocol_array(receiver.value)


def _is_user_function(obj: Any) -> bool:
    return usercode.is_user_function(obj)


def _opaque_rule(name: str):
    from srcgrad.rules.registry import Rule

    return Rule(func=None, name=name, signature=inspect.Signature(), wrt=(), nondiff=True)


_COMPARE = _opaque_rule("compare")
_NONDIFF_ATTR = _opaque_rule("attribute")
_BOOLOP = None  # `and`/`or` return one of their operands: a gradient through them is refused by the adjoint stage
_BOOLOP_RULE = _opaque_rule("or")  # `or` of flags (never differentiated)
_APPEND = ("method", "append")

_INDEXABLE = (np.ndarray, np.generic, list, tuple, dict, str, range, int, float)  # what getitem's rule reads
_EINSUM_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # sublist index i is letter i (sorted)

# Builtins the lowering turns into loops itself: their parameters, as Python binds them.
_P = inspect.Parameter
_ENUMERATE = inspect.Signature([_P("iterable", _P.POSITIONAL_OR_KEYWORD), _P("start", _P.POSITIONAL_OR_KEYWORD,
                                                                             default=0)])
_SUM = inspect.Signature([_P("iterable", _P.POSITIONAL_ONLY), _P("start", _P.POSITIONAL_OR_KEYWORD, default=0)])
_REVERSED = inspect.Signature([_P("sequence", _P.POSITIONAL_ONLY)])
_ZIP = inspect.Signature([_P("iterables", _P.VAR_POSITIONAL), _P("strict", _P.KEYWORD_ONLY, default=False)])


class _Rename(gast.NodeTransformer):
    def __init__(self, renames: dict[str, str]):
        self.renames = renames

    def visit_Name(self, node: Any) -> Any:
        if node.id in self.renames:
            node.id = self.renames[node.id]
        return node


def _deepcopy(node: Any) -> Any:
    import copy

    return copy.deepcopy(node)


def _stored_targets(node: Any) -> set[str]:
    return {n.id for n in walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}


_SETITEM = setitem


def lower(pf: ParsedFunction) -> ir.Function:
    """Lower a fenced, parsed function to the linear IR (the dicts its body builds are variables first)."""
    from srcgrad import structures

    return Lowerer(structures.rewrite_locals(pf)).lower()


# --- lowering, once per parsed function ---------------------------------------------------------------------------


@record
class _Lowered:
    fn: ir.Function
    guards: Any  # what the names the source reads denoted when it was lowered (guards.Guards)


_LOCK = locks.lock()


def lowered(pf: ParsedFunction) -> ir.Function:
    """The IR of ``pf``, a copy of its own for the caller (the passes annotate theirs). The function is lowered once
    and the lowering reused while the names its source reads (and its defaults) denote what they did: what a call
    resolves to, a global's kind, decide the IR (the same guards decide when generated code is stale)."""
    with _LOCK:
        known = pf.lowered
    if known is None or not known.guards.hold():
        with _LOCK:
            found, pf.fresh_guards = pf.fresh_guards, None
        if found is None:
            found = guards.collect(pf.func, pf, defaults=True)
        known = _Lowered(lower(pf), found)
        with _LOCK:
            pf.lowered = known
    return copy_function(known.fn)


def copy_function(fn: ir.Function) -> ir.Function:
    """``fn`` with a body of new statement objects (the operands, immutable, are shared)."""
    return replace(fn, body=ir.copy_body(fn.body))
