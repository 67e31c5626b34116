"""Calls to user functions: each differentiated helper becomes a pair of generated functions.

In: a user function (a module-level ``def``), the kinds of its arguments and which of its parameters carry a
gradient at the call site. Out: :class:`HelperVariant` — ``NAME_fwd(params) -> (value, saved)`` runs the helper
forward and returns what its reverse sweep reads; ``NAME_bwd(saved, g) -> gradient(s)`` runs the reverse sweep.
What holds: a variant is generated once per (function, kinds, differentiated parameters) and reused by every caller
while its guards hold (srcgrad/guards.py: the helper's names and defaults still denote what they did); recursion
works because callers bind the variant's cells before the variant is compiled.
"""

from __future__ import annotations

import ast
import types
from dataclasses import field
from typing import Any

from srcgrad import adjoint, codegen, driver, frontend, guards, ir, locks, lower, naming, passes
from srcgrad.binding import SEQUENCE_OF_SEQUENCES
from srcgrad.program import Block, Program, loads, stores
from srcgrad.records import record


@record
class CellRef:
    """A closure cell shared by every function that calls a generated helper (filled once it is compiled)."""

    cell: Any


@record(eq=False)
class HelperVariant:
    func: Any
    kinds: tuple[str, ...]
    varied: tuple[str, ...]
    fwd: CellRef
    bwd: CellRef
    fwd_name: str = ""
    bwd_name: str = ""
    source: str = ""
    bound: dict = field(default_factory=dict)
    guards: Any = None  # what its code assumed about the names the helper reads (collected before generating)
    tangent_params: dict = field(default_factory=dict)  # NAME_jvp: varied parameter -> the parameter of its tangent


_LOCK = locks.rlock(on_reset=lambda: _forget_unfinished())
_KINDS: dict[tuple, tuple[str, Any]] = {}  # (function, kinds) -> (result kind, guards)
_VARIANTS: dict[tuple, HelperVariant] = {}
_IN_PROGRESS: set[tuple] = set()


def _forget_unfinished() -> None:
    """In a child forked while another thread generated a helper: what that thread was making never finishes."""
    _IN_PROGRESS.clear()
    for key, v in list(_VARIANTS.items()):
        if not (_filled(v.fwd.cell) and _filled(v.bwd.cell)):  # (the last thing generation does)
            del _VARIANTS[key]


def _filled(cell: types.CellType) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def parsed(func: Any) -> frontend.ParsedFunction:
    return frontend.parse_helper(func)


def return_kind(func: Any, kinds: tuple[str, ...]) -> str:
    """The kind of a helper's result for arguments of the given kinds (arrays when unsure, e.g. in recursion)."""
    key = (func, kinds)
    with _LOCK:
        known = _KINDS.get(key)
        if known is not None and known[1].hold():
            return known[0]
        if key in _IN_PROGRESS:
            return passes.ARRAY
        _IN_PROGRESS.add(key)
        try:
            found = guards.collect(func, parsed(func), defaults=True)
            fn = passes.eliminate_dead_code(lower.lowered(parsed(func)))
            arg_kinds = dict(zip(fn.params, kinds))
            kinds_map = passes.infer_kinds(fn, arg_kinds, return_kind)
            ret = fn.body[-1].value
            result = kinds_map.get(ret.name, passes.ARRAY) if isinstance(ret, ir.Var) else passes.const_kind(ret)
            if fn.may_return_non_number:
                result = passes.ARRAY  # (not assumed a number: its caller checks what it returns)
            elif isinstance(ret, ir.Var) and kinds_map.get(f"{ret.name}:elements") == passes.SEQUENCE:
                result = SEQUENCE_OF_SEQUENCES  # (its items are lists or tuples for the caller too)
        finally:
            _IN_PROGRESS.discard(key)
        _KINDS[key] = (result, found)
        return result


def variant(func: Any, kinds: tuple[str, ...], varied: tuple[str, ...]) -> HelperVariant:
    """The forward/backward pair of ``func`` for these argument kinds and differentiated parameters."""
    key = (func, kinds, varied)
    with _LOCK:
        found = _VARIANTS.get(key)
        if found is not None and found.guards.hold():
            return found
        v = HelperVariant(func, kinds, varied, CellRef(types.CellType()), CellRef(types.CellType()),
                          f"{func.__name__}_fwd", f"{func.__name__}_bwd",
                          guards=guards.collect(func, parsed(func), defaults=True))
        _VARIANTS[key] = v  # registered before generation: a recursive call finds these cells
        try:
            _generate(v)
        except BaseException:
            _VARIANTS.pop(key, None)
            raise
        return v


def _generate(v: HelperVariant) -> None:
    made = driver.run(parsed(v.func), HelperPair(v))
    v.bound = dict(made.scope.bound)
    v.source = made.source
    v.fwd.cell.cell_contents, v.bwd.cell.cell_contents = made.functions


class HelperPair(driver.Product):
    """``NAME_fwd(params) -> (value, saved)`` and ``NAME_bwd(saved, g) -> gradient(s)`` of a helper variant."""

    call_kind = staticmethod(return_kind)

    def __init__(self, v: HelperVariant):
        self.v, self.wrt = v, list(v.varied)
        self.g = self.saved = ""

    def prepare(self, fn: ir.Function) -> ir.Function:
        self.kinds = dict(zip(fn.params, self.v.kinds))
        return fn

    def build(self, fn: ir.Function, facts: passes.Facts, scope: codegen.Scope) -> Program:
        v = self.v
        self.g = scope.local("g")
        self.saved = scope.local("saved")
        # The pair's own names are bound first, so a recursive call inside refers to the same cells.
        v.fwd_name = scope.bind(f"{fn.name}_fwd", v.fwd)
        v.bwd_name = scope.bind(f"{fn.name}_bwd", v.bwd)
        return adjoint.build_program(fn, facts, self.wrt, scope, "split", self.g, variant)

    def units(self, made: driver.Made) -> list[driver.Unit]:
        program, fn, v = made.program, made.fn, self.v
        forward_names = stores(program.forward) | set(fn.params)
        residuals = sorted(loads(program.reverse + program.results) & forward_names)
        saved_tuple = ast.Tuple(elts=[codegen.name(r) for r in residuals], ctx=ast.Load())
        # Values defined on some paths only (inside a branch or loop) start as None, so packing them never fails.
        definite = stores([item for item in program.forward if not isinstance(item, Block)]) | set(fn.params)
        maybe = [codegen.assign(r, ast.Constant(value=None)) for r in residuals if r not in definite]
        returned = ast.Tuple(elts=[codegen.operand(fn.body[-1].value), saved_tuple], ctx=ast.Load())
        made.scope.link([returned])
        unpack = ast.Assign(
            targets=[ast.Tuple(elts=[ast.Name(id=r, ctx=ast.Store()) for r in residuals], ctx=ast.Store())],
            value=codegen.name(self.saved), lineno=0,
        )
        results = program.results
        bwd_value = results[0] if len(results) == 1 else ast.Tuple(elts=results, ctx=ast.Load())
        return [
            driver.Unit(Program(forward=maybe + program.forward), v.fwd_name, fn.signature, [returned],
                        f"Forward sweep of {fn.name}: its value, and what its reverse sweep reads.", f"{fn.name}:fwd"),
            driver.Unit(Program(reverse=[unpack] + program.reverse), v.bwd_name, f"{self.saved}, {self.g}",
                        [bwd_value], f"Reverse sweep of {fn.name}: the gradient with respect to "
                        f"{', '.join(v.varied)}.", f"{fn.name}:bwd"),
        ]


def helpers_of(bound: dict, seen: set | None = None) -> list[HelperVariant]:
    """Every helper variant a generated function uses, transitively, in first-use order."""
    seen = set() if seen is None else seen
    out = []
    for obj in bound.values():
        if isinstance(obj, CellRef):
            for v in list(_VARIANTS.values()) + list(_JVP_VARIANTS.values()):
                if (v.fwd is obj or v.bwd is obj) and id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
                    out.extend(helpers_of(v.bound, seen))
    return out


_JVP_VARIANTS: dict[tuple, HelperVariant] = {}


def jvp_variant(func: Any, kinds: tuple[str, ...], varied: tuple[str, ...]) -> HelperVariant:
    """``NAME_jvp(params..., *, p_dot...) -> (value, tangent)`` for these argument kinds and varied parameters."""
    key = (func, kinds, varied)
    with _LOCK:
        found = _JVP_VARIANTS.get(key)
        if found is not None and found.guards.hold():
            return found
        v = HelperVariant(func, kinds, varied, CellRef(types.CellType()), CellRef(types.CellType()),
                          f"{func.__name__}_jvp", "", guards=guards.collect(func, parsed(func), defaults=True))
        _JVP_VARIANTS[key] = v
        try:
            _generate_jvp(v)
        except BaseException:
            _JVP_VARIANTS.pop(key, None)
            raise
        return v


def _generate_jvp(v: HelperVariant) -> None:
    made = driver.run(parsed(v.func), HelperJvp(v))
    v.bound = dict(made.scope.bound)
    v.source = made.source
    v.fwd.cell.cell_contents = made.functions[0]


class HelperJvp(HelperPair):
    """``NAME_jvp(params..., *, p_dot...) -> (value, tangent)`` of a helper variant."""

    call_kind = staticmethod(return_kind)

    def build(self, fn: ir.Function, facts: passes.Facts, scope: codegen.Scope) -> Program:
        from srcgrad import forward  # forward mode builds on the reverse-mode program types

        v = self.v
        v.fwd_name = scope.bind(f"{fn.name}_jvp", v.fwd)
        v.tangent_params = {p: scope.local(naming.tangent(p)) for p in v.varied}  # (before a recursive call reads it)
        inputs = {p: codegen.name(t) for p, t in v.tangent_params.items()}
        program, self.tangent = forward.build_tangent_program(fn, facts, self.wrt, scope, inputs, jvp_variant)
        return program

    def units(self, made: driver.Made) -> list[driver.Unit]:
        program, fn, v = made.program, made.fn, self.v
        returned = ast.Tuple(elts=[program.value, self.tangent], ctx=ast.Load())
        doc = f"Forward mode of {fn.name}: its value and its tangent along {', '.join(v.varied)}."
        signature = codegen.with_keywords(fn.signature, list(v.tangent_params.values()))
        return [driver.Unit(program, v.fwd_name, signature, [returned], doc, f"{fn.name}:jvp")]
