"""Differential fuzzing: random programs from srcgrad's supported subset, checked against central differences.

In: Hypothesis draws. Out: :class:`Case` — the source of a module (module-level helpers and a function ``f``), the
arguments to call ``f`` with, which of them to differentiate and how (``grad``, ``value_and_grad`` or ``vjp``).
:func:`check_case` writes the module to a file, imports it (srcgrad reads source from files), differentiates ``f``
and compares the value and every gradient with central finite differences of the plain function.

What the programs contain: float, int and array (shapes (3,), (2,), (2, 3)) values; arithmetic; ``math`` and numpy
calls on safe domains (``log(e*e + 1)``, ``sqrt(e*e + 0.5)``, ``asin(0.9*tanh(e))``); reductions, indexing with
constants and slices; ``if``/``elif``/``else``, conditional expressions, ``and``/``or``/``not``, chained comparisons;
``for`` over ``range``, arrays, ``enumerate`` and ``zip``; ``while`` loops with bounded counters; ``break``,
``continue``, early ``return``; calls to generated helpers (keyword and default arguments, bounded recursion);
rebinding, augmented and tuple assignment; local names that collide with srcgrad's own (``t1``, ``x_1``, ``tape``,
``ret``, ``seed``, ``x_bar`` ...).

Points near kinks are avoided exactly rather than by a margin: every module is also rendered as a *probe* variant in
which each comparison and each non-smooth primitive (``abs``, ``max``, ``np.maximum``, ``np.where``, ``%`` ...)
records its outcome. A point is checked only when the probe's record (branches taken, loop trip counts, which side
of every kink) is the same at every point the finite differences evaluate; otherwise the example is rejected
(:class:`Rejected`, turned into ``hypothesis.assume(False)`` by the tests).

Outcomes: *ok*; *refused* when srcgrad raises an error it raises by design (:data:`REFUSALS`: an in-place update
of an array another name refers to); *mismatch* when the value or a gradient disagrees with the plain function
beyond the finite-difference error (central differences with h=1e-6, then 4-point stencils and other steps; at least
two estimates must agree with each other, else the point is ill-conditioned and redrawn);
*crash* when srcgrad raises anything but a clean :class:`srcgrad.SrcgradError` (internal errors included);
*unsupported* for a clean ``SrcgradError`` on a program the generator believes supported; *known* when a failure
matches an entry of :data:`KNOWN_BUGS`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import operator
import os
import re
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import srcgrad

try:
    from srcgrad import cache as disk_cache  # the on-disk cache of generated code, where it exists
except ImportError:  # pragma: no cover - a srcgrad without it
    disk_cache = None


def cache_in_use() -> bool:
    """Does the pipeline read and write the on-disk cache (so that a round trip through it can be checked)?"""
    from srcgrad import pipeline

    return disk_cache is not None and getattr(pipeline, "cache", None) is disk_cache


def set_disk_cache(directory: str | None) -> None:
    """Turn the on-disk cache off (None) or on in ``directory``; nothing to do without one."""
    if disk_cache is None:
        return
    if directory is None:
        disk_cache.disable()
    else:
        disk_cache.enable(directory)


def reset_disk_cache() -> None:
    if disk_cache is not None:
        disk_cache.reset()

# --- expressions and statements as renderers -------------------------------------------------------------------
#
# An expression is a function ``render(probe: bool) -> str``; a statement is ``render(probe, indent) -> [lines]``.
# ``probe=False`` gives the program srcgrad sees; ``probe=True`` the instrumented twin run by the kink check.

Expr = Callable[[bool], str]
Stmt = Callable[[bool, str], list]


def lit(text: str) -> Expr:
    return lambda p: text


def tmpl(text: str, *kids: Expr) -> Expr:
    return lambda p: text.format(*[k(p) for k in kids])


def probed(plain: str, probe: str, *kids: Expr) -> Expr:
    return lambda p: (probe if p else plain).format(*[k(p) for k in kids])


def line(text: Expr) -> Stmt:
    return lambda p, ind: [ind + text(p)]


def compound(head: Expr, body: list, tails: list | None = None) -> Stmt:
    """``head:`` + body, then (head, body) pairs for elif/else clauses."""

    def render(p: bool, ind: str) -> list:
        out = [ind + head(p) + ":"]
        for stmt in body or [line(lit("pass"))]:
            out += stmt(p, ind + "    ")
        for tail_head, tail_body in tails or []:
            out.append(ind + tail_head(p) + ":")
            for stmt in tail_body or [line(lit("pass"))]:
                out += stmt(p, ind + "    ")
        return out

    return render


# Types of values in generated programs: a Python float ("S"), an int ("INT"), arrays of shape (3,), (2,), (2, 3).
S, INT, V, W, M = "S", "INT", "V", "W", "M"
SHAPES = {V: (3,), W: (2,), M: (2, 3)}
GLOBAL_DATA = {V: "VEC", W: "WEC", M: "MAT"}
PRELUDE = """\
import math

import numpy as np

C1 = 0.75
C2 = -1.25
VEC = np.array([0.5, -1.0, 2.0])
WEC = np.array([1.5, -0.5])
MAT = np.array([[0.5, -1.0, 0.25], [1.0, 0.75, -0.5]])
"""

# Local names, many chosen to collide with names srcgrad generates (temporaries, versions, adjoints, flags, tape).
LOCAL_NAMES = [
    "s", "u", "acc", "t1", "t2", "t3", "x_1", "s_1", "ret", "broke", "skip", "returned", "tape", "g", "saved",
    "seed", "n_iter", "s_bar", "x_bar", "t1_bar", "value", "out", "result", "tmp", "z", "w_1", "tape_1", "ret_1",
    "pullback", "t5_saved", "_",
]
LOOP_NAMES = ["i", "j", "k", "t4", "i_1", "ii", "n_iter_1", "i_bar"]
ITEM_NAMES = ["e", "el", "row", "v_1", "item", "e_bar"]
COUNTER_NAMES = ["cnt", "k2", "count", "c_1", "steps"]
HELPER_NAMES = ["h", "helper", "h_fwd", "sq", "f_grad", "g_bwd", "f_fwd", "h2", "inner", "h_1"]
SCALAR_PARAMS = ["x", "y", "z_1", "t2", "x_bar", "seed", "g", "w"]
ARRAY_PARAMS = {V: ["a", "v", "t1"], M: ["m", "mat", "m_1"]}
INT_PARAMS = ["n", "n_iter", "k"]
CONSTANTS = ["0.5", "1.5", "2.0", "-0.75", "3", "0.25", "1.0", "-2.0"]

@dataclass(frozen=True)
class KnownBug:
    """A bug found and not fixed yet; its xfail test is in tests/test_regressions.py.

    ``avoid``: the generator leaves the construct out. ``pattern``: a failure whose report matches this regular
    expression is counted as this bug ("known") rather than as a new mismatch or crash.
    """

    description: str
    test: str
    avoid: bool = False
    pattern: str | None = None


# Delete an entry when its bug is fixed (its strict-xfail test then fails as a reminder). ``scripts/fuzz.py
# --known-bugs`` ignores this table: everything is generated and every failure counts.
KNOWN_BUGS: dict[str, KnownBug] = {
    # None open. Fixed, with the tests that found them: "array_augassign" (`a += b` on an aliased array, now refused),
    # "fabs" (math.fabs of a numpy scalar), "helper_unused_param" (NameError in a helper's reverse sweep),
    # "loop_overwrite" (a variable overwritten in a loop kept the adjoints of every iteration), "flag_names" (user
    # variables named broke / skip / returned), "power_zero" (x ** 0 at 0). An entry looks like
    # "power_zero": KnownBug("x ** n at x = 0 with n = 0: nan", "test_power_with_zero_exponent_at_zero", avoid=True),
    # and the generator checks ``"power_zero" in self.avoid`` where it would produce the construct.
}


@dataclass
class Param:
    name: str
    type: str
    default: str | None = None
    kwonly: bool = False


@dataclass
class Helper:
    name: str
    params: list[Param]
    returns: str
    recursive: bool = False


@dataclass
class Scope:
    """The names visible at a point of a generated function: name -> type, and which of them may be rebound."""

    types: dict[str, str] = field(default_factory=dict)
    mutable: set[str] = field(default_factory=set)
    fresh_arrays: set[str] = field(default_factory=set)  # bound to a new array (shared by the whole function)

    def child(self) -> Scope:
        return Scope(dict(self.types), set(self.mutable), self.fresh_arrays)

    def of(self, t: str) -> list[str]:
        return sorted(n for n, k in self.types.items() if k == t)


@dataclass
class Context:
    """Where a statement is generated: inside which loops, what the enclosing function returns."""

    returns: str
    loops: int = 0
    depth: int = 0
    function: str = "f"


class Generator:
    """Draws one module: helpers first (each may call earlier ones), then ``f``."""

    def __init__(self, draw: Callable, avoid: frozenset = frozenset()):
        self.draw = draw
        self.avoid = avoid
        self.helpers: list[Helper] = []
        self.taken: set[str] = set()
        self.extended = False  # also use primitives outside the README's list (their rules exist)

    # --- choices ---------------------------------------------------------------------------------------------

    def pick(self, items: list) -> Any:
        return self.draw(st.sampled_from(items))

    def chance(self, percent: int) -> bool:
        return self.draw(st.integers(0, 99)) < percent

    def between(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def fresh(self, pool: list[str]) -> str:
        free = [n for n in pool if n not in self.taken]
        name = self.pick(free) if free else f"v{len(self.taken)}"
        self.taken.add(name)
        return name

    # --- expressions -----------------------------------------------------------------------------------------

    def expr(self, t: str, scope: Scope, depth: int) -> Expr:
        if depth <= 0 or self.chance(25):
            return self.leaf(t, scope)
        return {S: self.scalar, V: self.vector, W: self.short_vector, M: self.matrix, INT: self.integer}[t](
            scope, depth - 1)

    def leaf(self, t: str, scope: Scope) -> Expr:
        names = scope.of(t)
        if t == INT:
            return lit(self.pick(names + ["1", "2"]))
        if t == S:
            ints = scope.of(INT)
            options = names * 3 + ["const", "global"] + (["int"] if ints else [])
            choice = self.pick(options)
            if choice == "const":
                return lit(self.pick(CONSTANTS))
            if choice == "global":
                return lit(self.pick(["C1", "C2"]))
            if choice == "int":
                i = self.pick(ints)
                return lit(self.pick([f"({i} * 0.5)", f"float({i})", f"({i} - 1.5)"]))
            return lit(choice)
        return lit(self.pick(names * 2 + [GLOBAL_DATA[t]]))

    def integer(self, scope: Scope, depth: int) -> Expr:
        return self.leaf(INT, scope)

    def any_array(self, scope: Scope, depth: int) -> tuple[str, Expr]:
        t = self.pick([V, V, W, M])
        return t, self.expr(t, scope, depth)

    def scalar(self, scope: Scope, depth: int) -> Expr:
        e = lambda: self.expr(S, scope, depth)  # noqa: E731 - a fresh sub-expression per use
        kind = self.pick(["arith"] * 6 + ["math"] * 4 + ["numpy", "kink", "ifexp", "reduce", "reduce", "call",
                                                          "pow"])
        if kind == "arith":
            form = self.pick(["({} + {})", "({} - {})", "({} * {})", "({} / ({} * {} + 1.0))", "({} / 2.5)",
                              "(-{})", "({} ** 2)", "({} ** 3)"])
            a, b = e(), e()
            if form == "({} / ({} * {} + 1.0))":
                return tmpl(form, a, b, b)
            return tmpl(form, *([a, b][:form.count("{}")]))
        if kind == "pow":
            ints = scope.of(INT)
            forms = ["(({0} * {0} + 0.5) ** 0.5)", "({0} ** 2.0)", "(({0} * {0} + 1.0) ** math.sin({1}))",
                     "math.pow({0} * {0} + 1.0, 1.5)"]
            if ints:  # an int exponent, which may be 0
                forms.append("({0} ** " + self.pick(ints) + ")")
            return tmpl(self.pick(forms), e(), e())
        if kind == "math":
            form = self.pick([
                "math.sin({0})", "math.cos({0})", "math.tanh({0})", "math.atan({0})", "math.asinh({0})",
                "math.erf({0})", "math.exp(math.sin({0}))", "math.exp(-{0} * {0})", "math.exp({0})",
                "math.log({0} * {0} + 1.0)", "math.log1p({0} * {0})", "math.sqrt({0} * {0} + 0.5)",
                "math.log2({0} * {0} + 2.0)", "math.log10({0} * {0} + 0.5)", "math.log({0} * {0} + 1.0, 3.0)",
                "math.expm1(math.sin({0}))", "math.asin(0.9 * math.tanh({0}))", "math.acos(0.9 * math.tanh({0}))",
                "math.atanh(0.9 * math.tanh({0}))", "math.acosh({0} * {0} + 1.5)", "math.sinh(math.sin({0}))",
                "math.cosh(math.sin({0}))", "math.tan(math.sin({0}))", "math.atan2({0}, {1} * {1} + 1.0)",
                "math.hypot({0}, {1} * {1} + 0.5)", "(math.pi * {0})",
            ])
            return tmpl(form, e(), e())
        if kind == "numpy":
            form = self.pick(["np.sin({0})", "np.tanh({0})", "np.exp(np.sin({0}))", "np.sqrt({0} * {0} + 0.5)",
                              "np.log({0} * {0} + 1.0)", "np.square({0})", "np.float64({0})", "float({0})",
                              "np.cos({0})", "np.log1p({0} * {0})", "np.multiply({0}, {1})"])
            return tmpl(form, e(), e())
        if kind == "kink":
            which = self.pick(["abs", "max", "min", "mod", "fabs"])
            a, b = e(), e()
            if which == "abs":
                return probed("abs({})", "_fz.abs({})", a)
            if which == "fabs":
                return probed("math.fabs({})", "_fz.fabs({})", a)
            if which == "mod":
                return probed("({} % 1.5)", "_fz.mod({}, 1.5)", a)
            return probed(which + "({}, {})", "_fz." + which + "({}, {})", a, b)
        if kind == "ifexp":
            return tmpl("({} if {} else {})", e(), self.condition(scope, depth), e())
        if kind == "call":
            call = self.call(S, scope, depth)
            if call is not None:
                return call
        t, arr = self.any_array(scope, depth)
        if t == V:
            form = self.pick(["np.sum({0})", "np.mean({0})", "{0}.sum()", "{0}.mean()", "{0}[0]", "{0}[2]",
                              "{0}[-1]", "np.dot({0}, {1})", "({0} @ {1})", "np.sum({0}[1:])", "{0}[::-1][0]"]
                             + (["np.max({0})", "np.prod({0})", "np.sum({0}, keepdims=True)[0]"] if self.extended
                                else []))
            other = self.expr(V, scope, depth)
            if form == "np.max({0})":
                return probed("np.max({})", "_fz.npmax({})", arr)
            return tmpl(form, arr, other)
        if t == W:
            return tmpl(self.pick(["np.sum({0})", "{0}[1]", "{0}[-2]", "np.dot({0}, {0})", "{0}.mean()"]), arr)
        return tmpl(self.pick(["np.sum({0})", "{0}[1, 2]", "{0}[0][1]", "{0}[-1, 0]", "np.mean({0})",
                               "{0}.sum()"]), arr)

    def elementwise(self, t: str, scope: Scope, depth: int) -> Expr | None:
        """An expression of array type ``t`` built elementwise (shared by every array shape)."""
        e = lambda: self.expr(t, scope, depth)  # noqa: E731
        s = lambda: self.expr(S, scope, depth)  # noqa: E731
        kind = self.pick(["arith", "arith", "arith", "func", "func", "kink", "ifexp", "call"])
        if kind == "arith":
            form = self.pick(["({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} * {2})", "({2} * {0})",
                              "({0} + {2})", "({2} - {0})", "({0} / ({1} * {1} + 1.0))", "({0} / ({2} * {2} + 1.0))",
                              "(-{0})", "({0} ** 2)"])
            return tmpl(form, e(), e(), s())
        if kind == "func":
            form = self.pick(["np.sin({0})", "np.cos({0})", "np.tanh({0})", "np.exp(np.sin({0}))",
                              "np.log({0} * {0} + 1.0)", "np.sqrt({0} * {0} + 0.5)", "np.log1p({0} * {0})",
                              "np.expm1(np.sin({0}))", "np.square({0})", "np.power({0} * {0} + 1.0, 1.5)",
                              "np.add({0}, {1})", "np.subtract({0}, {1})", "np.multiply({0}, {1})",
                              "np.divide({0}, {1} * {1} + 1.0)", "np.negative({0})", "np.multiply({0}, {2})"])
            return tmpl(form, e(), e(), s())
        if kind == "kink":
            which = self.pick(["abs", "maximum", "minimum", "where"])
            a, b = e(), e()
            if which == "abs":
                return probed("np.abs({})", "_fz.npabs({})", a)
            if which == "where":
                return probed("np.where({0} > {1}, {2}, {3})", "np.where(_fz.gt({0}, {1}), {2}, {3})",
                              a, b, e(), e())
            return probed("np." + which + "({}, {})", "_fz." + which + "({}, {})", a, b)
        if kind == "ifexp":
            return tmpl("({} if {} else {})", e(), self.condition(scope, depth), e())
        return self.call(t, scope, depth)

    def vector(self, scope: Scope, depth: int) -> Expr:
        if self.chance(70):
            found = self.elementwise(V, scope, depth)
            if found is not None:
                return found
        m, w, v = self.expr(M, scope, depth), self.expr(W, scope, depth), self.expr(V, scope, depth)
        form = self.pick(["{2}[::-1]", "{0}[0]", "{0}[1, :]", "({1} @ {0})", "np.dot({1}, {0})", "({0}.T @ {1})",
                          "np.sum({0}, axis=0)", "np.mean({0}, axis=0)", "(np.transpose({0}) @ {1})", "{2}[:]"])
        return tmpl(form, m, w, v)

    def short_vector(self, scope: Scope, depth: int) -> Expr:
        if self.chance(50):
            found = self.elementwise(W, scope, depth)
            if found is not None:
                return found
        m, v = self.expr(M, scope, depth), self.expr(V, scope, depth)
        form = self.pick(["({0} @ {1})", "np.dot({0}, {1})", "np.sum({0}, axis=1)", "np.mean({0}, axis=1)",
                          "{0}[:, 1]", "{1}[0:2]", "{1}[1:]", "np.matmul({0}, {1})"])
        return tmpl(form, m, v)

    def matrix(self, scope: Scope, depth: int) -> Expr:
        if self.chance(60):
            found = self.elementwise(M, scope, depth)
            if found is not None:
                return found
        m, w, v = self.expr(M, scope, depth), self.expr(W, scope, depth), self.expr(V, scope, depth)
        form = self.pick(["({0} + {2})", "({0} * {2})", "({1}[:, None] * {2})", "{0}.T.T", "{0}[::-1]",
                          "{0}[:, ::-1]", "np.transpose(np.transpose({0}))", "({2} - {0})"])
        return tmpl(form, m, w, v)

    def condition(self, scope: Scope, depth: int) -> Expr:
        kind = self.pick(["cmp", "cmp", "cmp", "const", "chain", "not", "and", "or", "int"])
        e = lambda: self.expr(S, scope, min(depth, 2))  # noqa: E731
        if kind == "int" and scope.of(INT):
            i = self.pick(scope.of(INT))
            return lit(self.pick([f"{i} % 2 == 1", f"{i} < 2", f"{i} >= 1", f"{i} == 0"]))
        if kind in ("cmp", "const", "int"):
            op = self.pick(["<", ">", "<=", ">="])
            a = e()
            b = lit(self.pick(CONSTANTS)) if kind == "const" else e()
            return probed("{} " + op + " {}", "_fz.cmp('" + op + "', {}, {})", a, b)
        if kind == "chain":
            lo, hi = self.pick([("-1.0", "1.0"), ("0.0", "2.0"), ("-2.0", "0.5")])
            a = e()
            return probed(lo + " < {} < " + hi, "(_fz.cmp('<', " + lo + ", {0}) and _fz.cmp('<', {0}, " + hi + "))",
                          a)
        if kind == "not":
            return tmpl("not ({})", self.condition(scope, depth - 1))
        c1, c2 = self.condition(scope, depth - 1), self.condition(scope, depth - 1)
        return tmpl("({}) " + kind + " ({})", c1, c2)

    def call(self, t: str, scope: Scope, depth: int) -> Expr | None:
        options = [h for h in self.helpers if h.returns == t]
        if not options:
            return None
        h = self.pick(options)
        parts = []
        for p in h.params:
            if p.default is not None and self.chance(40):
                continue  # use the default
            arg = self.expr(p.type, scope, min(depth, 1)) if p.type != INT else lit(self.pick(["0", "1", "2", "3"]))
            if p.kwonly or (p.default is not None and self.chance(50)):
                parts.append((p.name + "=", arg))
            elif any(name for name, _ in parts):
                parts.append((p.name + "=", arg))  # after a keyword, every argument is a keyword
            else:
                parts.append(("", arg))
        text = h.name + "(" + ", ".join(name + "{}" for name, _ in parts) + ")"
        return tmpl(text, *[a for _, a in parts])

    # --- statements ------------------------------------------------------------------------------------------

    def block(self, scope: Scope, ctx: Context, size: int) -> list:
        stmts = []
        for _ in range(size):
            stmts += self.statement(scope, ctx)
        return stmts

    def statement(self, scope: Scope, ctx: Context) -> list:
        kinds = ["assign"] * 4 + ["rebind"] * 3 + ["aug", "aug", "tuple", "ann", "pass"]
        if ctx.depth < 2:
            kinds += ["if"] * 3 + ["for"] * 3 + ["while"]
        if ctx.loops:
            kinds += ["jump", "jump"]
        if ctx.depth < 3:
            kinds += ["return"]
        kind = self.pick(kinds)
        return getattr(self, "stmt_" + kind)(scope, ctx)

    def value_type(self, scope: Scope) -> str:
        return self.pick([S, S, S, S, V, V, W, M])

    def stmt_pass(self, scope: Scope, ctx: Context) -> list:
        return [line(lit(self.pick(["pass", "assert n >= 0" if "n" in scope.types else "pass"])))]

    def stmt_assign(self, scope: Scope, ctx: Context) -> list:
        t = self.value_type(scope)
        value = self.expr(t, scope, 3)
        name = self.fresh(LOCAL_NAMES)
        if t != S and self.chance(50):
            value = tmpl("({}) * 1.0", value)  # a new array, which `+=` may then update in place
            scope.fresh_arrays.add(name)
        scope.types[name] = t
        scope.mutable.add(name)
        return [line(tmpl(name + " = {}", value))]

    def rebindable(self, scope: Scope, t: str | None = None) -> list[str]:
        return sorted(n for n in scope.mutable if t is None or scope.types[n] == t)

    def stmt_rebind(self, scope: Scope, ctx: Context) -> list:
        names = self.rebindable(scope)
        if not names:
            return self.stmt_assign(scope, ctx)
        name = self.pick(names)
        t = scope.types[name]
        scope.fresh_arrays.discard(name)
        if t == S and self.chance(30):  # a contracting update keeps loops bounded
            return [line(tmpl(name + " = " + name + " * 0.5 + {}", self.expr(S, scope, 2)))]
        return [line(tmpl(name + " = {}", self.expr(t, scope, 3)))]

    def stmt_aug(self, scope: Scope, ctx: Context) -> list:
        # In-place updates of arrays would also change the caller's arguments (and module data) between the
        # finite-difference evaluations; only names bound to fresh arrays may be updated in place.
        names = [n for n in self.rebindable(scope) if scope.types[n] == S or (
            n in scope.fresh_arrays and not ctx.loops)]
        if not names:
            return self.stmt_assign(scope, ctx)
        name = self.pick(names)
        t = scope.types[name]
        op = self.pick(["+=", "-=", "*=", "/="])
        if op == "*=":
            return [line(tmpl(name + " *= math.tanh({})", self.expr(S, scope, 2)))]
        if op == "/=":
            d = self.expr(S, scope, 2)
            return [line(tmpl(name + " /= {} * {} + 1.0", d, d))]
        return [line(tmpl(name + " " + op + " {}", self.expr(self.pick([t, S]), scope, 2)))]

    def stmt_tuple(self, scope: Scope, ctx: Context) -> list:
        names = self.rebindable(scope, S)
        if len(names) >= 2 and self.chance(50):
            p, q = self.pick(names), self.pick(names)
            if p != q:
                return [line(lit(f"{p}, {q} = {q}, {p}"))]
        a, b = self.fresh(LOCAL_NAMES), self.fresh(LOCAL_NAMES)
        ta, tb = self.value_type(scope), S
        ea, eb = self.expr(ta, scope, 2), self.expr(tb, scope, 2)
        scope.types.update({a: ta, b: tb})
        scope.mutable |= {a, b}
        return [line(tmpl(f"{a}, {b} = {{}}, {{}}", ea, eb))]

    def stmt_ann(self, scope: Scope, ctx: Context) -> list:
        name = self.fresh(LOCAL_NAMES)
        value = self.expr(S, scope, 2)
        scope.types[name] = S
        scope.mutable.add(name)
        return [line(tmpl(name + ": float = {}", value))]

    def stmt_return(self, scope: Scope, ctx: Context) -> list:
        cond = self.condition(scope, 2)
        value = self.expr(ctx.returns, scope, 2)
        return [compound(tmpl("if {}", cond), [line(tmpl("return {}", value))])]

    def stmt_jump(self, scope: Scope, ctx: Context) -> list:
        cond = self.condition(scope, 2)
        return [compound(tmpl("if {}", cond), [line(lit(self.pick(["break", "continue"])))])]

    def stmt_if(self, scope: Scope, ctx: Context) -> list:
        """if / elif / else; a name assigned on every path (``joined``) is visible after the statement."""
        inner = Context(ctx.returns, ctx.loops, ctx.depth + 1, ctx.function)
        joined = self.fresh(LOCAL_NAMES) if self.chance(40) else None
        joined_type = self.value_type(scope)
        n_clauses = self.pick([1, 2, 2, 3])
        has_else = n_clauses > 1 and (joined is not None or self.chance(70))
        if joined is not None and n_clauses == 1:
            n_clauses, has_else = 2, True
        heads = [tmpl("if {}", self.condition(scope, 2))]
        heads += [tmpl("elif {}", self.condition(scope, 2)) for _ in range(n_clauses - 1 - has_else)]
        heads += [lit("else")] if has_else else []
        clauses = []
        for _ in heads:
            sub = scope.child()
            body = [line(tmpl(joined + " = {}", self.expr(joined_type, sub, 2)))] if joined else []
            clauses.append(body + self.block(sub, inner, self.between(1, 2)))
        if joined is not None:
            scope.types[joined] = joined_type
            scope.mutable.add(joined)
        return [compound(heads[0], clauses[0], list(zip(heads[1:], clauses[1:])))]

    def loop_body(self, scope: Scope, ctx: Context, prefix: list) -> list:
        inner = Context(ctx.returns, ctx.loops + 1, ctx.depth + 1, ctx.function)
        body = list(prefix)
        acc = self.rebindable(scope, S)
        if acc and self.chance(80):
            name = self.pick(acc)
            body.append(line(tmpl(name + " = " + name + self.pick([" * 0.5 + {}", " + {}", " - 0.25 * {}"]),
                                  self.expr(S, scope, 2))))
        body += self.block(scope, inner, self.between(1, 3))
        return body

    def stmt_for(self, scope: Scope, ctx: Context) -> list:
        sub = scope.child()
        kind = self.pick(["range", "range", "range", "items", "enumerate", "zip", "rows"])
        if kind == "range":
            i = self.fresh(LOOP_NAMES)
            ints = [n for n in scope.of(INT) if n in ("n", "k", "n_iter")]
            bound = self.pick(["0", "1", "2", "3", "1, 4", "0, 5, 2"] + [b.format(n) for n in ints
                                                                         for b in ("{}", "{} + 1", "1, {}")])
            sub.types[i] = INT
            head = lit(f"for {i} in range({bound})")
        elif kind in ("items", "enumerate"):
            e = self.fresh(ITEM_NAMES)
            seq = self.expr(V, scope, 1)
            sub.types[e] = S
            if kind == "enumerate":
                i = self.fresh(LOOP_NAMES)
                sub.types[i] = INT
                head = tmpl(f"for {i}, {e} in enumerate({{}})", seq)
            else:
                head = tmpl(f"for {e} in {{}}", seq)
        elif kind == "zip":
            e1, e2 = self.fresh(ITEM_NAMES), self.fresh(ITEM_NAMES)
            sub.types.update({e1: S, e2: S})
            head = tmpl(f"for {e1}, {e2} in zip({{}}, {{}})", self.expr(V, scope, 1), self.expr(V, scope, 1))
        else:
            row = self.fresh(ITEM_NAMES)
            sub.types[row] = V
            head = tmpl(f"for {row} in {{}}", self.expr(M, scope, 1))
        return [compound(head, self.loop_body(sub, ctx, []))]

    def stmt_while(self, scope: Scope, ctx: Context) -> list:
        sub = scope.child()
        if self.chance(60):
            k = self.fresh(COUNTER_NAMES)
            bound = self.pick(["1", "2", "3", "4"] + (["n"] if scope.types.get("n") == INT else []))
            scope.types[k] = INT  # defined before the loop, visible after it
            sub.types[k] = INT
            test = lit(f"{k} < {bound}")
            if self.chance(30):
                cond = self.condition(scope, 1)
                test = tmpl(f"{k} < {bound} and ({{}})", cond)
            init = line(lit(f"{k} = 0"))
            step = line(lit(self.pick([f"{k} = {k} + 1", f"{k} += 1"])))
        else:
            k = self.fresh(COUNTER_NAMES)
            start = self.expr(S, scope, 2)
            scope.types[k] = S
            sub.types[k] = S
            test = probed(f"{k} < 2.0", f"_fz.cmp('<', {k}, 2.0)")
            init = line(tmpl(f"{k} = math.tanh({{}})", start))
            step = line(lit(f"{k} = {k} + 0.75"))
        return [init, compound(tmpl("while {}", test), self.loop_body(sub, ctx, [step]))]

    # --- functions -------------------------------------------------------------------------------------------

    def function(self, name: str, params: list[Param], returns: str, size: int, doc: bool) -> list:
        self.taken = {p.name for p in params} | {h.name for h in self.helpers} | {name}
        scope = Scope({p.name: p.type for p in params}, {p.name for p in params if p.type != INT})
        ctx = Context(returns, function=name)
        body = [line(lit('"""A generated function."""'))] if doc else []
        body += self.block(scope, ctx, size)
        body.append(line(tmpl("return {}", self.expr(returns, scope, 3))))
        sig = []
        star = False
        for p in params:
            if p.kwonly and not star:
                sig.append("*")
                star = True
            sig.append(p.name if p.default is None else f"{p.name}={p.default}")
        return [compound(lit(f"def {name}({', '.join(sig)})"), body)]

    def helper(self, index: int) -> list:
        name = self.fresh(HELPER_NAMES)
        if self.chance(10):
            h = Helper(name, [Param("p", S), Param("depth", INT)], S, recursive=True)
            body = [
                compound(lit("if depth <= 0"), [line(lit("return p"))]),
                line(tmpl(f"return {name}(p * 0.5 + math.sin(p), depth - 1) * 0.5 + {{}}",
                          self.expr(S, Scope({"p": S}), 1))),
            ]
            self.helpers.append(h)
            return [compound(lit(f"def {name}(p, depth)"), body)]
        params = [Param(self.pick(["p", "q_1", "x", "t1"]), self.pick([S, S, V]))]
        if self.chance(60):
            params.append(Param("q", S))
        if self.chance(30):
            params.append(Param("k", S, default=self.pick(["0.5", "1.5", "-1.0"]), kwonly=self.chance(50)))
        returns = self.pick([S, S, S, V]) if any(p.type == V for p in params) else S
        text = self.function(name, params, returns, self.between(0, 3), doc=False)
        self.helpers.append(Helper(name, params, returns))
        return text

    def module(self) -> tuple[list, list[Param]]:
        self.extended = self.chance(30)
        parts = []
        for i in range(self.pick([0, 0, 1, 1, 2, 3])):
            parts += self.helper(i)
        params = []
        taken = set(h.name for h in self.helpers)
        for _ in range(self.between(1, 3)):
            name = self.pick([n for n in SCALAR_PARAMS if n not in taken])
            taken.add(name)
            params.append(Param(name, S))
        if self.chance(50):
            name = self.pick([n for n in ARRAY_PARAMS[V] if n not in taken])
            taken.add(name)
            params.append(Param(name, V))
        if self.chance(25):
            name = self.pick([n for n in ARRAY_PARAMS[M] if n not in taken])
            taken.add(name)
            params.append(Param(name, M))
        if self.chance(50):
            params.append(Param("n", INT))
        order = self.draw(st.permutations(range(len(params))))
        params = [params[i] for i in order]
        parts += self.function("f", params, S, self.between(1, 6), doc=self.chance(20))
        return parts, params


# --- the probe: outcomes of comparisons and kinks -----------------------------------------------------------------

_CMP = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


class Probe:
    """Records every branch decision and which side of every kink a run took (see the module docstring)."""

    def __init__(self) -> None:
        self.trace: list = []

    def cmp(self, op: str, a: Any, b: Any) -> bool:
        r = bool(_CMP[op](a, b))
        self.trace.append(r)
        return r

    def gt(self, a: Any, b: Any) -> Any:
        r = np.greater(a, b)
        self.trace.append(tuple(np.ravel(r)))
        return r

    def abs(self, x: Any) -> Any:
        self.trace.append(("abs", x > 0, x < 0))
        return abs(x)

    def fabs(self, x: Any) -> float:
        self.trace.append(("abs", x > 0, x < 0))
        return math.fabs(x)

    def max(self, a: Any, b: Any) -> Any:
        self.trace.append(("max", a > b, a < b))
        return max(a, b)

    def min(self, a: Any, b: Any) -> Any:
        self.trace.append(("min", a > b, a < b))
        return min(a, b)

    def mod(self, a: Any, b: Any) -> Any:
        self.trace.append(("mod", a // b, a % b == 0))
        return a % b

    def npabs(self, x: Any) -> Any:
        self.trace.append(("npabs", tuple(np.ravel(x > 0)), tuple(np.ravel(x < 0))))
        return np.abs(x)

    def maximum(self, a: Any, b: Any) -> Any:
        self.trace.append(("maximum", tuple(np.ravel(np.greater(a, b))), tuple(np.ravel(np.less(a, b)))))
        return np.maximum(a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        self.trace.append(("minimum", tuple(np.ravel(np.greater(a, b))), tuple(np.ravel(np.less(a, b)))))
        return np.minimum(a, b)

    def npmax(self, a: Any) -> Any:
        flat = np.ravel(a)
        self.trace.append(("npmax", tuple(flat == np.max(flat))))
        return np.max(a)


# --- cases ------------------------------------------------------------------------------------------------------

@dataclass
class Case:
    source: str  # the module srcgrad differentiates
    probe_source: str  # the same module with probes
    params: list[Param]
    args: tuple
    wrt: tuple  # names or positions, as passed to srcgrad
    wrt_names: tuple[str, ...]
    mode: str  # grad, value_and_grad, vjp
    as_tuple: bool  # wrt given as a tuple

    def reproducer(self) -> str:
        """A standalone script that differentiates the case and compares with finite differences."""
        args = ", ".join(_literal(a) for a in self.args)
        wrt = repr(self.wrt) if self.as_tuple else repr(self.wrt[0])
        return (self.source + "\n\nif __name__ == '__main__':\n    import srcgrad\n"
                "    from srcgrad.testing import check_grad\n\n"
                f"    args = ({args},)\n"
                f"    print(srcgrad.{self.mode}(f, wrt={wrt})(*args{', 1.0' if self.mode == 'vjp' else ''}))\n"
                f"    check_grad(f, *args, wrt={tuple(self.wrt)!r})\n")


def _literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r})"
    if isinstance(value, np.float64):
        return f"np.float64({float(value)!r})"
    return repr(value)


def _render(parts: list, probe: bool) -> str:
    chunks = [PRELUDE]
    for stmt in parts:
        chunks.append("\n\n" + "\n".join(stmt(probe, "")) + "\n")
    return "".join(chunks)


FLOATS = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)


def _argument(draw: Callable, p: Param) -> Any:
    if p.type == INT:
        return draw(st.integers(0, 4))
    if p.type == S:
        x = draw(FLOATS)
        return np.float64(x) if draw(st.integers(0, 4)) == 0 else x
    return np.array(draw(st.lists(FLOATS, min_size=int(np.prod(SHAPES[p.type])),
                                  max_size=int(np.prod(SHAPES[p.type]))))).reshape(SHAPES[p.type])


@st.composite
def cases(draw: Callable, avoid: frozenset | None = None) -> Case:
    """A random program from the supported subset, with arguments and what to differentiate.

    ``avoid``: the entries of :data:`KNOWN_BUGS` whose constructs are left out (default: all with ``avoid=True``).
    """
    if avoid is None:
        avoid = frozenset(name for name, bug in KNOWN_BUGS.items() if bug.avoid)
    gen = Generator(draw, avoid)
    parts, params = gen.module()
    args = tuple(_argument(draw, p) for p in params)
    floats = [i for i, p in enumerate(params) if p.type != INT]
    chosen = sorted(draw(st.sets(st.sampled_from(floats), min_size=1, max_size=len(floats))))
    names = tuple(params[i].name for i in chosen)
    wrt = tuple(draw(st.sampled_from([i, params[i].name])) for i in chosen)
    as_tuple = len(wrt) > 1 or draw(st.booleans())
    mode = draw(st.sampled_from(["grad", "grad", "value_and_grad", "vjp"]))
    return Case(_render(parts, False), _render(parts, True), params, args, wrt, names, mode, as_tuple)


# --- loading modules ----------------------------------------------------------------------------------------------

class Loader:
    """Writes generated modules to files in a private directory and imports them (srcgrad reads files)."""

    def __init__(self, directory: str | None = None):
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="srcgrad-fuzz-")
            directory = self._tmp.name
        self.directory = directory
        self.count = 0

    def load(self, source: str) -> Any:
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        self.count += 1
        name = f"srcgrad_fuzz_{digest}_{self.count}"
        path = os.path.join(self.directory, name + ".py")
        with open(path, "w") as fh:
            fh.write(source)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def probe_namespace(source: str) -> dict:
    namespace: dict = {"__name__": "srcgrad_fuzz_probe"}
    exec(compile(source, "<srcgrad fuzz probe>", "exec"), namespace)
    return namespace


# --- checking -----------------------------------------------------------------------------------------------------

class Rejected(Exception):
    """The example is not a valid test point (the plain function fails, is not finite, or sits on a kink)."""


@dataclass
class Outcome:
    kind: str  # ok, mismatch, crash, unsupported
    detail: str = ""


H_SMALL, H_LARGE = 1e-6, 1e-3
# Errors srcgrad raises by design on programs the generator may produce (not failures): `y += x` on an array that
# another name also refers to (srcgrad computes a new array, so it refuses rather than be silently wrong).
REFUSALS = re.compile(r"an array in place, and another name refers to the same array")


class _Evaluator:
    """Evaluates the plain and the probe function at perturbed arguments, checking that the probe trace holds."""

    def __init__(self, case: Case, plain: Callable, probe_ns: dict):
        self.case, self.plain, self.probe_ns = case, plain, probe_ns
        self.base_trace = self.trace(case.args)

    def trace(self, args: tuple) -> list:
        probe = Probe()
        self.probe_ns["_fz"] = probe
        try:
            self.probe_ns["f"](*args)
        except Exception as exc:  # noqa: BLE001 - any failure of the plain program makes the point invalid
            raise Rejected(f"f raised {type(exc).__name__}") from None
        return probe.trace

    def value(self, args: tuple) -> float:
        try:
            y = self.plain(*args)
        except Exception as exc:  # noqa: BLE001
            raise Rejected(f"f raised {type(exc).__name__}") from None
        y = float(y)
        if not math.isfinite(y) or abs(y) > 1e8:
            raise Rejected("value not finite or too large")
        return y

    def at(self, position: int, index: tuple | None, delta: float) -> float:
        args = list(self.case.args)
        x = args[position]
        if index is None:
            args[position] = type(x)(float(x) + delta)
        else:
            x = np.array(x, dtype=np.float64)
            x[index] += delta
            args[position] = x
        args = tuple(args)
        if self.trace(args) != self.base_trace:
            raise Rejected("a branch or kink is within the finite-difference step")
        return self.value(args)

    def central(self, position: int, index: tuple | None, h: float) -> float:
        return (self.at(position, index, h) - self.at(position, index, -h)) / (2 * h)

    def stencil(self, position: int, index: tuple | None, h: float) -> float:
        f = lambda d: self.at(position, index, d)  # noqa: E731
        return (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)


def _close(got: float, expected: float, value_scale: float, h: float) -> bool:
    roundoff = 1e-13 * (1.0 + value_scale) / h
    return abs(got - expected) <= 1e-5 * max(1.0, abs(got), abs(expected)) + roundoff


def _call_srcgrad(case: Case, func: Callable) -> tuple[Any, tuple]:
    wrt = case.wrt if case.as_tuple else case.wrt[0]
    if case.mode == "value_and_grad":
        value, grads = srcgrad.value_and_grad(func, wrt=wrt)(*case.args)
    elif case.mode == "vjp":
        value, grads = None, srcgrad.vjp(func, wrt=wrt)(*case.args, 1.0)
    else:
        value, grads = None, srcgrad.grad(func, wrt=wrt)(*case.args)
    if not case.as_tuple:
        grads = (grads,)
    return value, tuple(grads)


def check_case(case: Case, loader: Loader, known_bugs: bool = True, cache_round_trip: bool = False) -> Outcome:
    """Differentiate ``case`` with srcgrad and compare with the plain function; raises :class:`Rejected`.

    With ``known_bugs``, a failure that matches a :data:`KNOWN_BUGS` pattern is reported as kind "known". With
    ``cache_round_trip`` (the on-disk cache must be on), the case is differentiated a second time by a fresh
    transform, which loads the code the first one stored; both must give identical results.
    """
    outcome = _check(case, loader, cache_round_trip)
    if known_bugs and outcome.kind not in ("ok", "known"):
        for name, bug in KNOWN_BUGS.items():
            if bug.pattern and re.search(bug.pattern, outcome.detail):
                return Outcome("known", f"{name} ({bug.test}): {bug.description}\n{outcome.detail}")
    return outcome


def _check(case: Case, loader: Loader, cache_round_trip: bool = False) -> Outcome:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        module = loader.load(case.source)
        ev = _Evaluator(case, module.f, probe_namespace(case.probe_source))
        expected_value = ev.value(case.args)
        try:
            value, grads = _call_srcgrad(case, module.f)
        except srcgrad.InternalError:
            return Outcome("crash", traceback.format_exc(limit=-6))
        except srcgrad.SrcgradError as exc:
            if REFUSALS.search(str(exc)):
                return Outcome("refused", str(exc))
            return Outcome("unsupported", traceback.format_exc(limit=-3))
        except Exception:  # noqa: BLE001 - a raw exception reaching the user is what we look for
            return Outcome("crash", traceback.format_exc(limit=-6))
        problems = []
        if value is not None and not abs(float(value) - expected_value) <= 1e-12 * max(1.0, abs(expected_value)):
            problems.append(f"value {value!r} != f(*args) {expected_value!r}")
        if len(grads) != len(case.wrt_names):
            return Outcome("mismatch", f"{len(grads)} gradients for wrt={case.wrt!r}")
        for name, g in zip(case.wrt_names, grads):
            position = [p.name for p in case.params].index(name)
            x = case.args[position]
            problems += _compare_gradient(ev, position, name, x, g, expected_value)
        if problems:
            return Outcome("mismatch", "\n".join(problems))
        if cache_round_trip:
            return _cache_round_trip(case, module.f, value, grads)
        return Outcome("ok")


def _cache_round_trip(case: Case, func: Callable, value: Any, grads: tuple) -> Outcome:
    cache = disk_cache
    before = cache.stats()
    try:
        again = _call_srcgrad(case, func)
    except Exception:  # noqa: BLE001
        return Outcome("crash", "from the cache: " + traceback.format_exc(limit=-6))
    after = cache.stats()
    if after["hits"] == before["hits"] and after["uncacheable"] == before["uncacheable"]:
        return Outcome("mismatch", f"cache: the second generation was not loaded from the cache ({after})")
    same = all(type(a) is type(b) and (a is None or np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
               for a, b in zip((value,) + grads, (again[0],) + again[1]))
    if not same:
        return Outcome("mismatch", f"cache: loaded code gives {again!r}, generated code {(value, grads)!r}")
    return Outcome("ok")


def _compare_gradient(ev: _Evaluator, position: int, name: str, x: Any, g: Any, fx: float) -> list[str]:
    if isinstance(x, np.ndarray):
        if not isinstance(g, np.ndarray) or g.shape != x.shape or g.dtype != x.dtype:
            return [f"gradient of {name}: expected an array {x.shape} {x.dtype}, got {type(g).__name__} "
                    f"{np.shape(g)} {getattr(g, 'dtype', '')}"]
        indices = list(np.ndindex(x.shape))
    else:
        if not isinstance(g, float) or isinstance(g, np.ndarray):
            return [f"gradient of {name}: expected a float, got {type(g).__name__} {g!r}"]
        indices = [None]
    problems = []
    for index in indices:
        got = float(g if index is None else g[index])
        fd = ev.central(position, index, H_SMALL)
        if not math.isfinite(fd):
            raise Rejected("finite difference not finite")
        if _close(got, fd, abs(fx), H_SMALL):
            continue
        # Disagreement: try estimates with other truncation and rounding errors before calling it a mismatch.
        estimates = [("central", H_SMALL, fd)]
        agreed = False
        for method, h in ((ev.stencil, H_LARGE), (ev.stencil, 1e-4), (ev.central, 1e-5), (ev.central, 1e-8)):
            try:
                other = method(position, index, h)
            except Rejected:
                continue  # a kink within this step: no estimate from it
            estimates.append((method.__name__, h, other))
            if _close(got, other, abs(fx), h):
                agreed = True
                break
        if agreed:
            continue
        # A mismatch needs finite differences that agree with each other: when no two estimates (with different steps)
        # agree, the function changes too fast here for differences to say anything (e.g. sin(y ** 3) with y ~ 80).
        if not any(_close(a, b, abs(fx), max(ha, hb)) for i, (_, ha, a) in enumerate(estimates)
                   for _, hb, b in estimates[i + 1:]):
            raise Rejected("finite differences do not converge (ill-conditioned point)")
        where = name if index is None else f"{name}{list(index)}"
        problems.append(f"d/d{where}: srcgrad {got!r}; " + ", ".join(f"{m} {v!r} (h={h})" for m, h, v in estimates))
    return problems


def describe(case: Case, outcome: Outcome) -> str:
    return (f"--- {outcome.kind} ---\n{outcome.detail}\n--- reproducer ---\n{case.reproducer()}")


__all__ = ["Case", "Generator", "Loader", "Outcome", "Probe", "Rejected", "cases", "check_case", "describe"]

if __name__ == "__main__":  # pragma: no cover - print one example program
    print(cases().example().source, file=sys.stdout)
