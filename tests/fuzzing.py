"""Differential fuzzing: random programs from srcgrad's supported subset, checked against central differences.

In: Hypothesis draws. Out: :class:`Case` — the source of a module (module-level helpers and a function ``f``), the
arguments to call ``f`` with, which of them to differentiate and how (``grad``, ``value_and_grad``, ``vjp`` or
``jvp``), and statements that rebind module globals between calls. :func:`check_case` writes the module to a file,
imports it (srcgrad reads source from files), differentiates ``f`` and compares the value and every derivative with
central finite differences of the plain function.

The base grammar: float, int and array (shapes (3,), (2,), (2, 3)) values; arithmetic; ``math`` and numpy calls on
safe domains (``log(e*e + 1)``, ``sqrt(e*e + 0.5)``, ``asin(0.9*tanh(e))``); reductions, indexing with constants and
slices; ``if``/``elif``/``else``, conditional expressions, ``and``/``or``/``not``, chained comparisons; ``for`` over
``range``, arrays, ``enumerate`` and ``zip``; ``while`` loops with bounded counters; ``break``, ``continue``, early
``return``; calls to generated helpers (keyword and default arguments, bounded recursion); rebinding, augmented and
tuple assignment; local names that collide with srcgrad's own (``t1``, ``x_1``, ``tape``, ``ret``, ``x_bar`` ...).
On top of it, the grammar features of :data:`FEATURES` (issue 12): unary operators and negative literals in every
operand position, negative power bases, keyword arguments, constructors fed differentiated values, item assignment,
lists, nested defs and lambdas, aliases written through, one array passed twice, helpers that mutate their
arguments, globals rebound between calls, builtins shadowed by module functions / parameters / locals, np.matrix and
masked arguments, ``None`` results, defaults and comments that trip the emitted module, names like temporaries, jvp.
Each program records the features it uses (``Case.features``); :data:`KNOWN_BUGS` can leave features out.

Points near kinks are avoided exactly rather than by a margin: every module is also rendered as a *probe* variant in
which each comparison and each non-smooth primitive (``abs``, ``max``, ``np.maximum``, ``np.where``, ``%`` ...)
records its outcome. A point is checked only when the probe's record (branches taken, loop trip counts, which side
of every kink) is the same at every point the finite differences evaluate; otherwise the example is rejected
(:class:`Rejected`, turned into ``hypothesis.assume(False)`` by the tests). Every call gets a copy of the arguments
(programs write into them); an array passed for two parameters stays one object, and its gradient is compared as
the sum of both.

Every program is also checked for: the generated text (``srcgrad.source``) parses, and printing the parsed tree
again gives the same tree (item 1's round trip); the module ``srcgrad.emit`` writes parses back the same way and
computes what the in-process gradient computes; after each rebinding statement the same gradient function is called
again and compared with finite differences of the module as it now is.

Outcomes: *ok*; *refused* when srcgrad raises an error it raises by design (:data:`REFUSALS`), or a
:class:`srcgrad.SrcgradError` located in the generated module for a program that uses a feature of
:data:`REFUSABLE` (or whose ``f`` returns no number); *mismatch* when the value or a derivative disagrees with the
plain function beyond the finite-difference error (central differences with h=1e-6, then 4-point stencils and other
steps; at least two estimates must agree with each other, else the point is ill-conditioned and redrawn); *crash*
when srcgrad raises anything but a clean SrcgradError (internal errors included); *unsupported* for any other
SrcgradError; *round-trip* and *emitted* for failures of the two checks above; *known* when a failure matches an
entry of :data:`KNOWN_BUGS`.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib.util
import inspect
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


BACKEND = "python"  # the backend the gradients are generated for (scripts/fuzz.py --backend)


def set_backend(name: str) -> None:
    """Generate every gradient for backend ``name`` ("python" or "numba"). With numba, a program numba cannot
    compile is "refused" when srcgrad says so at the user's line (a SrcgradError naming numba), never a failure of
    another kind; the emitted-module check stays the Python backend's (``emit`` of the same function)."""
    global BACKEND
    BACKEND = name

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
# More names spelled like srcgrad's temporaries (feature "temporary-names"): the IR must not take them for its own.
TEMPORARY_NAMES = ["t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11", "t12", "t9_bar", "t10_dot", "s_2", "x_2"]
LOOP_NAMES = ["i", "j", "k", "t4", "i_1", "ii", "n_iter_1", "i_bar"]
ITEM_NAMES = ["e", "el", "row", "v_1", "item", "e_bar"]
COUNTER_NAMES = ["cnt", "k2", "count", "c_1", "steps"]
HELPER_NAMES = ["h", "helper", "h_fwd", "sq", "f_grad", "g_bwd", "f_fwd", "h2", "inner", "h_1"]
TWIN_NAMES = ["h_alt", "helper_v2", "h_new", "other_h"]  # what a helper is rebound to between calls
LIST_NAMES = ["lst", "acc_1", "parts", "terms", "ys"]
NESTED_NAMES = ["inner_1", "sq_1", "lam", "fn", "sub", "t6_fn"]
MUTATOR_NAMES = {"append": ["push", "store"], "setitem": ["put", "poke"], "scale": ["scale", "bump"]}
SCALAR_PARAMS = ["x", "y", "z_1", "t2", "x_bar", "seed", "g", "w"]
ARRAY_PARAMS = {V: ["a", "v", "t1", "b_1"], M: ["m", "mat", "m_1", "m_2"]}
INT_PARAMS = ["n", "n_iter", "k"]
CONSTANTS = ["0.5", "1.5", "2.0", "-0.75", "3", "0.25", "1.0", "-2.0"]
# Builtins and modules a program may shadow (feature "shadowed-builtins"); srcgrad's own code must not see them.
SHADOWABLE = ["reversed", "range", "len", "sum", "float", "abs", "max", "min", "enumerate", "zip", "sorted",
              "isinstance", "int", "list", "tuple", "round", "iter", "next", "print", "getattr", "math", "np"]
MODULES = {"math", "np"}  # shadowable by parameters and locals, not by module-level functions (they are imports)
ODD_COMMENTS = ["# a note\u2028that Python keeps on one line", "# form\x0cfeed", "# next\x85line",
                "# para\u2029graph", "# vertical\x0btab"]


# --- grammar features -----------------------------------------------------------------------------------------
#
# The base grammar (always on) is the subset the fuzzer of issue 8 covered. Each feature adds the constructs that
# reach one class of issue 12; programs record the features they use (Case.features). A feature is left out while a
# KNOWN_BUGS entry that lists it is avoided, or when `scripts/fuzz.py --features` does not name it.

FEATURES: dict[str, str] = {
    "unary-operands": "unary - and + on names in every operand position, `- -x`, `x ** -2` (12.1)",
    "negative-power-base": "negative literals as bases of **: `(-2.0) ** 2`, `-(-0.5) ** 2`, `(-1) ** i` (12.1)",
    "keyword-arguments": "axis=, keepdims=, ddof=, initial=, shift=, ord=, enumerate(start=) (12.2)",
    "constant-constructors": "differentiated values in np.linspace, np.full, np.r_, np.c_, sublist einsum (12.2)",
    "std-single-element": "np.std / np.var of one element (a scalar, a (1, 3) array along axis 0) (12.2)",
    "item-assignment": "y[i] = v and y[i] += v on new arrays and on arguments (base of 12.3)",
    "lists": "list displays, append, sum / indexing / np.array of lists (base of 12.3)",
    "nested-functions": "nested defs and lambdas reading the caller's variables",
    "aliasing": "a, b = y, y / z = y if c else y.copy() / z = y[1:] / other = lst, then a write through one (12.3)",
    "same-array-twice": "one array passed for two parameters: f(a, a) (12.3)",
    "helper-mutation": "helpers, nested defs and lambdas that append to, write into or scale an argument (12.3)",
    "global-rebind": "a global value, function, kind, helper or __defaults__ rebound between two calls (12.4)",
    "shadowed-builtins": "module functions, parameters and locals named like builtins, math and np (12.5)",
    "exotic-arguments": "np.matrix and masked arrays as arguments (12.6)",
    "non-number-return": "f returns None or a string on some path (12.6)",
    "emitted-module": "defaults naming a global rebound later in the module; U+2028 / FF / NEL in comments (12.7)",
    "temporary-names": "user variables named t4 ... t12, t9_bar, s_2 (12.8)",
    "jvp": "forward mode: srcgrad.jvp besides grad, value_and_grad and vjp",
}
# A program that uses one of these may be refused: a SrcgradError located in the generated module is then an
# acceptable outcome (srcgrad may refuse what it cannot compute as Python does). Elsewhere a refusal is a failure.
REFUSABLE = frozenset({"keyword-arguments", "constant-constructors", "std-single-element", "aliasing",
                       "same-array-twice", "helper-mutation", "exotic-arguments", "non-number-return", "jvp"})


@dataclass(frozen=True)
class KnownBug:
    """A bug found and not fixed yet; its xfail test is in tests/test_regressions.py.

    ``avoid``: the generator leaves out the construct (the entry's name, for the older entries, and every grammar
    feature in ``features``). ``pattern``: a failure whose report matches this regular expression is counted as this
    bug ("known") rather than as a new mismatch or crash; ``source_pattern`` the same for a failure of a program whose
    source matches (for a construct the base grammar too can compose, rarely).
    """

    description: str
    test: str
    avoid: bool = False
    pattern: str | None = None
    features: tuple[str, ...] = ()
    source_pattern: str | None = None


# Delete an entry when its bug is fixed (its strict-xfail test then fails as a reminder). ``scripts/fuzz.py
# --known-bugs`` ignores this table: everything is generated and every failure counts. Fixed earlier, with the tests
# that found them: "array_augassign" (`a += b` on an aliased array, now refused), "fabs" (math.fabs of a numpy
# scalar), "helper_unused_param" (NameError in a helper's reverse sweep), "loop_overwrite" (a variable overwritten in
# a loop kept the adjoints of every iteration), "flag_names" (user variables named broke / skip / returned),
# "power_zero" (x ** 0 at 0); the classes of issue 12 (negative power bases, enumerate's start, differentiated values
# into constructors, np.std of one element, mutation through another name, stale globals, shadowed builtins,
# unrepresentable arguments and results, emitted defaults) and a list read in a loop then appended to.
KNOWN_BUGS: dict[str, KnownBug] = {
    # Issue 12 (found by the grammar features of item 9; the other classes of the issue are fixed).
}


def features_left_out(avoid: frozenset) -> frozenset:
    """The grammar features the KNOWN_BUGS entries named in ``avoid`` leave out."""
    return frozenset(f for name in avoid if name in KNOWN_BUGS for f in KNOWN_BUGS[name].features)


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
    fresh_arrays: set[str] = field(default_factory=set)  # arrays the function may write in place (whole function)
    nonempty: set[str] = field(default_factory=set)  # lists with an element from the start (whole function)

    def child(self) -> Scope:
        return Scope(dict(self.types), set(self.mutable), self.fresh_arrays, self.nonempty)

    def of(self, t: str) -> list[str]:
        return sorted(n for n, k in self.types.items() if k == t)


@dataclass
class Context:
    """Where a statement is generated: inside which loops, what the enclosing function returns."""

    returns: str
    loops: int = 0
    depth: int = 0
    function: str = "f"


def names_used(text: str, names: set[str]) -> bool:
    """Does ``text`` (a form, before its operands are filled in) read one of ``names`` as a global name?"""
    return any(re.search(r"(?<![\w.])" + re.escape(n) + r"\b", text) for n in names)


class Generator:
    """Draws one module: helpers first (each may call earlier ones), then ``f``.

    ``features``: the grammar features it may use (:data:`FEATURES`); ``used`` collects those the module does use.
    """

    def __init__(self, draw: Callable, avoid: frozenset = frozenset(), features: frozenset | None = None):
        self.draw = draw
        self.avoid = avoid
        self.features = (frozenset(FEATURES) if features is None else features) - features_left_out(avoid)
        self.used: set[str] = set()
        self.helpers: list[Helper] = []
        self.taken: set[str] = set()
        self.extended = False  # also use primitives outside the README's list (their rules exist)
        self.banned: set[str] = set()  # builtins shadowed where the current function is generated
        self.banned_module: set[str] = set()  # builtins shadowed by module-level functions
        self.mutators: dict[str, str] = {}  # kind of mutation -> name of the module helper doing it
        self.rebinds: list[str] = []  # statements run in the module between calls of the gradient
        self.rebind_globals = False  # the module defines ACT, KW and cfg.W
        self.trailer: list[str] = []  # module-level statements after f
        self.rebind_options: list[str] = []  # candidates for `rebinds`
        self.module_names: set[str] = set()  # functions defined at module level
        self.twice: tuple[str, str] | None = None  # two parameters the caller passes one array for

    # --- choices ---------------------------------------------------------------------------------------------

    def pick(self, items: list) -> Any:
        return self.draw(st.sampled_from(items))

    def chance(self, percent: int) -> bool:
        return self.draw(st.integers(0, 99)) < percent

    def between(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def on(self, feature: str, percent: int = 100) -> bool:
        """Is ``feature`` enabled, and (with ``percent``) does this draw use it? Marks it used when true."""
        if feature not in self.features or not (percent >= 100 or self.chance(percent)):
            return False
        self.used.add(feature)
        return True

    def choose(self, forms: list[str]) -> str | None:
        """One of ``forms`` that reads no shadowed builtin; None when every form does."""
        allowed = [f for f in forms if not names_used(f, self.banned)]
        return self.pick(allowed) if allowed else None

    def fresh(self, pool: list[str]) -> str:
        free = [n for n in pool if n not in self.taken]
        name = self.pick(free) if free else f"v{len(self.taken)}"
        self.taken.add(name)
        if name in TEMPORARY_NAMES and "temporary-names" in self.features:
            self.used.add("temporary-names")
        return name

    # --- expressions -----------------------------------------------------------------------------------------

    def expr(self, t: str, scope: Scope, depth: int) -> Expr:
        if depth <= 0 or self.chance(25):
            return self.leaf(t, scope)
        found = {S: self.scalar, V: self.vector, W: self.short_vector, M: self.matrix, INT: self.integer}[t](
            scope, depth - 1)
        return found if found is not None else self.leaf(t, scope)

    def leaf(self, t: str, scope: Scope) -> Expr:
        names = scope.of(t)
        if t == INT:
            return lit(self.pick(names + ["1", "2"]))
        if t == S:
            ints = scope.of(INT)
            options = names * 3 + [":const", ":global"] + ([":int"] if ints else [])
            if "lists" in self.features and scope.of("L"):
                options += [":list"]  # ':...' is never a name (a parameter may be called `int`)
            if "nested-functions" in self.features and scope.of("FN"):
                options += [":nested"]
            choice = self.pick(options)
            if choice == ":const":
                if self.on("negative-power-base", 15):
                    return lit(self.pick(["(-0.5)", "(-2.0)", "-(-0.75)", "(-(1.5))"]))
                return lit(self.pick(CONSTANTS))
            if choice == ":global":
                return lit(self.pick(["C1", "C2"]))
            if choice == ":int":
                i = self.pick(ints)
                form = self.choose([f"({i} * 0.5)", f"float({i})", f"({i} - 1.5)"])
                return lit(form or f"({i} * 0.5)")
            if choice == ":list":
                return self.list_read(scope)
            if choice == ":nested":
                return tmpl(self.pick(scope.of("FN")) + "({})", self.leaf(S, scope))
            return self.signed(lit(choice))
        return self.signed(lit(self.pick(names * 2 + [GLOBAL_DATA[t]])))

    def signed(self, name: Expr) -> Expr:
        """``name``, sometimes under unary operators that Python's precedence makes part of the operand."""
        if not self.on("unary-operands", 15):
            return name
        return tmpl(self.pick(["-{}", "(-{})", "+{}", "- -{}", "-(-{})", "(+{})", "-+{}"]), name)

    def integer(self, scope: Scope, depth: int) -> Expr:
        return self.leaf(INT, scope)

    def any_array(self, scope: Scope, depth: int) -> tuple[str, Expr]:
        t = self.pick([V, V, W, M])
        return t, self.expr(t, scope, depth)

    def scalar(self, scope: Scope, depth: int) -> Expr | None:
        e = lambda: self.expr(S, scope, depth)  # noqa: E731 - a fresh sub-expression per use
        kind = self.pick(["arith"] * 6 + ["math"] * 4 + ["numpy", "kink", "ifexp", "reduce", "reduce", "call",
                                                          "pow", "keywords", "constructors"])
        if kind == "arith":
            form = self.pick(["({} + {})", "({} - {})", "({} * {})", "({} / ({} * {} + 1.0))", "({} / 2.5)",
                              "(-{})", "({} ** 2)", "({} ** 3)"])
            a, b = e(), e()
            if form == "({} / ({} * {} + 1.0))":
                return tmpl(form, a, b, b)
            return tmpl(form, *([a, b][:form.count("{}")]))
        if kind == "pow":
            return self.power(scope, e)
        if kind == "math":
            form = self.choose([
                "math.sin({0})", "math.cos({0})", "math.tanh({0})", "math.atan({0})", "math.asinh({0})",
                "math.erf({0})", "math.exp(math.sin({0}))", "math.exp(-{0} * {0})", "math.exp({0})",
                "math.log({0} * {0} + 1.0)", "math.log1p({0} * {0})", "math.sqrt({0} * {0} + 0.5)",
                "math.log2({0} * {0} + 2.0)", "math.log10({0} * {0} + 0.5)", "math.log({0} * {0} + 1.0, 3.0)",
                "math.expm1(math.sin({0}))", "math.asin(0.9 * math.tanh({0}))", "math.acos(0.9 * math.tanh({0}))",
                "math.atanh(0.9 * math.tanh({0}))", "math.acosh({0} * {0} + 1.5)", "math.sinh(math.sin({0}))",
                "math.cosh(math.sin({0}))", "math.tan(math.sin({0}))", "math.atan2({0}, {1} * {1} + 1.0)",
                "math.hypot({0}, {1} * {1} + 0.5)", "(math.pi * {0})",
            ])
            return tmpl(form, e(), e()) if form else None
        if kind == "numpy":
            forms = ["np.sin({0})", "np.tanh({0})", "np.exp(np.sin({0}))", "np.sqrt({0} * {0} + 0.5)",
                     "np.log({0} * {0} + 1.0)", "np.square({0})", "np.float64({0})", "float({0})",
                     "np.cos({0})", "np.log1p({0} * {0})", "np.multiply({0}, {1})"]
            if self.rebind_globals:
                forms += ["ACT({0})"] * 3
            form = self.choose(forms)
            if form == "ACT({0})":
                self.used.add("global-rebind")
            return tmpl(form, e(), e()) if form else None
        if kind == "kink":
            which = self.choose(["abs", "max", "min", "mod", "math.fabs"])
            a, b = e(), e()
            if which == "abs":
                return probed("abs({})", "_fz.abs({})", a)
            if which == "math.fabs":
                return probed("math.fabs({})", "_fz.fabs({})", a)
            if which == "mod" or which is None:
                return probed("({} % 1.5)", "_fz.mod({}, 1.5)", a)
            return probed(which + "({}, {})", "_fz." + which + "({}, {})", a, b)
        if kind == "ifexp":
            return tmpl("({} if {} else {})", e(), self.condition(scope, depth), e())
        if kind == "call":
            call = self.call(S, scope, depth)
            if call is not None:
                return call
        if kind == "keywords" and "keyword-arguments" in self.features:
            return self.scalar_keywords(scope, depth)
        if kind == "constructors" and self.on("std-single-element", 50):  # (before constructors: both get drawn)
            return tmpl(self.choose(["np.std({0})", "np.var({0})", "np.sum(np.std({1}[0:1], axis=0))",
                                     "np.std({1}[:1], axis=0)[1]"]) or "({0} * 0.0)", e(), self.expr(M, scope, depth))
        if kind == "constructors" and "constant-constructors" in self.features:
            return self.scalar_constructor(scope, depth)
        t, arr = self.any_array(scope, depth)
        if t == V:
            forms = ["np.sum({0})", "np.mean({0})", "{0}.sum()", "{0}.mean()", "{0}[0]", "{0}[2]",
                     "{0}[-1]", "np.dot({0}, {1})", "({0} @ {1})", "np.sum({0}[1:])", "{0}[::-1][0]"]
            if self.extended:
                forms += ["np.max({0})", "np.prod({0})", "np.sum({0}, keepdims=True)[0]"]
            form = self.choose(forms)
            other = self.expr(V, scope, depth)
            if form == "np.max({0})":
                return probed("np.max({})", "_fz.npmax({})", arr)
            return tmpl(form, arr, other) if form else None
        if t == W:
            form = self.choose(["np.sum({0})", "{0}[1]", "{0}[-2]", "np.dot({0}, {0})", "{0}.mean()"])
            return tmpl(form, arr) if form else None
        form = self.choose(["np.sum({0})", "{0}[1, 2]", "{0}[0][1]", "{0}[-1, 0]", "np.mean({0})", "{0}.sum()"])
        return tmpl(form, arr) if form else None

    def power(self, scope: Scope, e: Callable) -> Expr:
        ints = scope.of(INT)
        forms = ["(({0} * {0} + 0.5) ** 0.5)", "({0} ** 2.0)", "(({0} * {0} + 1.0) ** math.sin({1}))",
                 "math.pow({0} * {0} + 1.0, 1.5)"]
        if ints:  # an int exponent, which may be 0
            forms.append("({0} ** " + self.pick(ints) + ")")
        if self.on("unary-operands", 30):
            forms = ["(({0} * {0} + 1.0) ** -2)", "(2.0 ** -{0})", "((-{0}) ** 2)", "(-{0} ** 2)", "((-{0}) ** 3)",
                     "(-(-{0}) ** 2)", "((+{0}) ** 2)"]
        elif self.on("negative-power-base", 40):
            forms = ["((-2.0) ** 2 * {0})", "({0} * (-0.5) ** 3)", "(-(-0.5) ** 2 + {0})",
                     "({0} / (1.0 + (-1.0) ** 2))", "((-1.5) ** 2 - {0})", "((-2) ** 3 * {0})", "({0} * -2.0 ** 2)"]
            forms += [f"((-1) ** {i} * {{0}})" for i in ints] + [f"((-0.5) ** {i} + {{0}})" for i in ints]
            forms += [f"((-{{0}}) ** {i})" for i in ints]
        return tmpl(self.choose(forms) or "({0} ** 2.0)", e(), e())

    def scalar_keywords(self, scope: Scope, depth: int) -> Expr | None:
        """A scalar from a call with keyword arguments."""
        self.used.add("keyword-arguments")
        v, m = self.expr(V, scope, depth), self.expr(M, scope, depth)
        form = self.choose([
            "np.sum({0}, axis=0)", "np.sum({0}, keepdims=True)[0]", "np.mean({0}, axis=-1)", "np.std({0}, ddof=1)",
            "np.var({0}, ddof=0)", "np.sum({0}, initial=0.5)", "np.linalg.norm({0}, ord=2)",
            "np.mean({1}, axis=1, keepdims=True)[0, 0]", "np.sum({1}, axis=None)", "np.var({1}, axis=0)[1]",
            "np.sum(np.cumsum({0}, axis=0))", "np.roll({0}, shift=1)[0]", "np.flip({1}, axis=1)[0, 0]",
            "sum(k * e for k, e in enumerate({0}, start=1))", "np.sum(a={0})", "np.mean({0}, dtype=np.float64)",
            "math.log(({0}[0]) ** 2 + 1.0, 2.0)",
        ])
        return tmpl(form, v, m) if form else None

    def scalar_constructor(self, scope: Scope, depth: int) -> Expr | None:
        """A scalar through a constructor or index trick that a differentiated value enters."""
        self.used.add("constant-constructors")
        s1, s2 = self.expr(S, scope, depth), self.expr(S, scope, depth)
        v, m = self.expr(V, scope, depth), self.expr(M, scope, depth)
        form = self.choose([
            "np.sum(np.linspace({0}, {1}, 5))", "np.sum(np.linspace(0.0, {0}, 4) ** 2)",
            "np.sum(np.full(3, {0}) * VEC)",
            "np.sum(np.full_like(VEC, {0}) * VEC)", "np.sum(np.r_[{2}, {0}])", "np.sum(np.c_[{2}, {2}] * 0.5)",
            "np.einsum({3}, [0, 1], [1, 0])[2, 1]", "np.einsum({2}, [0], {2}, [0])", "np.sum(np.array([{0}, {1}]))",
            "np.r_[{2}][1]",
        ])
        return tmpl(form, s1, s2, v, m) if form else None

    def list_read(self, scope: Scope) -> Expr:
        lst = self.pick(scope.of("L"))
        forms = [f"sum({lst})", f"np.sum(np.array({lst}))", f"(len({lst}) * 0.5)"]
        if lst in scope.nonempty:
            forms += [f"{lst}[0]", f"{lst}[-1]"]
        return lit(self.choose(forms) or f"np.sum(np.array({lst}))")

    def elementwise(self, t: str, scope: Scope, depth: int) -> Expr | None:
        """An expression of array type ``t`` built elementwise (shared by every array shape)."""
        e = lambda: self.expr(t, scope, depth)  # noqa: E731
        s = lambda: self.expr(S, scope, depth)  # noqa: E731
        kind = self.pick(["arith", "arith", "arith", "func", "func", "kink", "ifexp", "call"])
        if kind == "arith":
            forms = ["({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} * {2})", "({2} * {0})",
                     "({0} + {2})", "({2} - {0})", "({0} / ({1} * {1} + 1.0))", "({0} / ({2} * {2} + 1.0))",
                     "(-{0})", "({0} ** 2)"]
            if self.on("negative-power-base", 10):
                forms = ["((-1.0) ** 2 * {0})", "({0} * (-0.5) ** 2)", "((-{0}) ** 2)", "({0} / (1.0 + (-1.0) ** 2))"]
            elif self.on("unary-operands", 10):
                forms = ["(-{0} ** 2)", "((-{0}) ** 3)", "(-{0} * -{1})", "({0} - -{1})", "(+{0} / (-{2} * {2} - 1.0))"]
            return tmpl(self.pick(forms), e(), e(), s())
        if kind == "func":
            forms = ["np.sin({0})", "np.cos({0})", "np.tanh({0})", "np.exp(np.sin({0}))",
                     "np.log({0} * {0} + 1.0)", "np.sqrt({0} * {0} + 0.5)", "np.log1p({0} * {0})",
                     "np.expm1(np.sin({0}))", "np.square({0})", "np.power({0} * {0} + 1.0, 1.5)",
                     "np.add({0}, {1})", "np.subtract({0}, {1})", "np.multiply({0}, {1})",
                     "np.divide({0}, {1} * {1} + 1.0)", "np.negative({0})", "np.multiply({0}, {2})"]
            if self.rebind_globals:  # globals whose value, function or kind changes between calls
                forms += ["ACT({0})", "ACT({0})"] + (["({0} * KW)", "({0} * cfg.W)"] if t != W else [])
            form = self.choose(forms)
            if form is not None and ("ACT" in form or "KW" in form or "cfg" in form):
                self.used.add("global-rebind")
            return tmpl(form, e(), e(), s()) if form else None
        if kind == "kink":
            which = self.choose(["np.abs", "np.maximum", "np.minimum", "np.where"])
            a, b = e(), e()
            if which is None:
                return None
            if which == "np.abs":
                return probed("np.abs({})", "_fz.npabs({})", a)
            if which == "np.where":
                return probed("np.where({0} > {1}, {2}, {3})", "np.where(_fz.gt({0}, {1}), {2}, {3})",
                              a, b, e(), e())
            return probed(which + "({}, {})", "_fz." + which[3:] + "({}, {})", a, b)
        if kind == "ifexp":
            return tmpl("({} if {} else {})", e(), self.condition(scope, depth), e())
        return self.call(t, scope, depth)

    def vector(self, scope: Scope, depth: int) -> Expr | None:
        if self.chance(70):
            found = self.elementwise(V, scope, depth)
            if found is not None:
                return found
        m, w, v = self.expr(M, scope, depth), self.expr(W, scope, depth), self.expr(V, scope, depth)
        s1, s2 = self.expr(S, scope, depth), self.expr(S, scope, depth)
        forms = ["{2}[::-1]", "{0}[0]", "{0}[1, :]", "({1} @ {0})", "np.dot({1}, {0})", "({0}.T @ {1})",
                 "np.sum({0}, axis=0)", "np.mean({0}, axis=0)", "(np.transpose({0}) @ {1})", "{2}[:]"]
        if self.on("keyword-arguments", 15):
            forms = ["np.cumsum({2}, axis=0)", "np.flip({2}, axis=0)", "np.roll({2}, shift=1)",
                     "np.mean({0}, axis=0, keepdims=True)[0]", "np.sum({0}, axis=0, keepdims=False)",
                     "np.concatenate([{1}, {2}[:1]], axis=0)", "np.stack([{2}, {2}], axis=0)[1]",
                     "np.sum({0}, axis=-2)"]
        elif self.on("constant-constructors", 15):
            forms = ["np.linspace({3}, {4}, 3)", "np.full(3, {3})", "np.full_like({2}, {3})", "np.r_[{1}, {3}]",
                     "np.c_[{2}, {2}][:, 1]", "np.array([{3}, {4}, {3}])"]
        form = self.choose(forms)
        return tmpl(form, m, w, v, s1, s2) if form else None

    def short_vector(self, scope: Scope, depth: int) -> Expr | None:
        if self.chance(50):
            found = self.elementwise(W, scope, depth)
            if found is not None:
                return found
        m, v = self.expr(M, scope, depth), self.expr(V, scope, depth)
        forms = ["({0} @ {1})", "np.dot({0}, {1})", "np.sum({0}, axis=1)", "np.mean({0}, axis=1)",
                 "{0}[:, 1]", "{1}[0:2]", "{1}[1:]", "np.matmul({0}, {1})"]
        if self.on("keyword-arguments", 15):
            forms = ["np.sum({0}, axis=1, keepdims=True)[:, 0]", "np.mean({0}, axis=-1)", "np.var({0}, axis=1, ddof=1)"]
        form = self.choose(forms)
        return tmpl(form, m, v) if form else None

    def matrix(self, scope: Scope, depth: int) -> Expr | None:
        if self.chance(60):
            found = self.elementwise(M, scope, depth)
            if found is not None:
                return found
        m, w, v = self.expr(M, scope, depth), self.expr(W, scope, depth), self.expr(V, scope, depth)
        forms = ["({0} + {2})", "({0} * {2})", "({1}[:, None] * {2})", "{0}.T.T", "{0}[::-1]",
                 "{0}[:, ::-1]", "np.transpose(np.transpose({0}))", "({2} - {0})"]
        if self.on("keyword-arguments", 15):
            forms = ["np.stack([{2}, {2}], axis=0)", "np.flip({0}, axis=1)", "np.roll({0}, shift=1, axis=1)",
                     "np.transpose({0}, axes=(0, 1))", "np.cumsum({0}, axis=1)"]
        form = self.choose(forms)
        return tmpl(form, m, w, v) if form else None

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
            kinds += ["jump", "jump", "jump"]
        if ctx.depth < 3:
            kinds += ["return"]
        optional = {"item-assignment": ["setitem", "setitem"], "lists": ["list", "append", "append"],
                    "aliasing": ["alias", "alias"], "helper-mutation": ["mutate", "mutate"],
                    "emitted-module": ["comment"]}
        if ctx.depth == 0 and ctx.function == "f":
            optional["nested-functions"] = ["nested"]
        for feature, extra in optional.items():
            if feature in self.features:
                kinds += extra
        kind = self.pick(kinds)
        return getattr(self, "stmt_" + kind)(scope, ctx)

    def value_type(self, scope: Scope) -> str:
        return self.pick([S, S, S, S, V, V, W, M])

    def stmt_pass(self, scope: Scope, ctx: Context) -> list:
        return [line(lit(self.pick(["pass", "assert n >= 0" if "n" in scope.types else "pass"])))]

    def stmt_assign(self, scope: Scope, ctx: Context) -> list:
        t = self.value_type(scope)
        value = self.expr(t, scope, 3)
        name = self.fresh(self.local_names())
        if t != S and self.chance(50):
            value = tmpl("({}) * 1.0", value)  # a new array, which `+=` may then update in place
            scope.fresh_arrays.add(name)
        scope.types[name] = t
        scope.mutable.add(name)
        return [line(tmpl(name + " = {}", value))]

    def local_names(self) -> list[str]:
        if "temporary-names" in self.features:
            return LOCAL_NAMES + TEMPORARY_NAMES
        return LOCAL_NAMES

    def rebindable(self, scope: Scope, t: str | None = None) -> list[str]:
        return sorted(n for n in scope.mutable if t is None or scope.types[n] == t)

    def writable(self, scope: Scope, types: tuple = (V, W, M)) -> list[str]:
        """Arrays that may be written in place: new in this function, or arguments (copied for every call)."""
        return sorted(n for n in scope.fresh_arrays if scope.types.get(n) in types)

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
        # In-place updates of arrays: only of names bound to arrays the function may write (see `writable`).
        names = [n for n in self.rebindable(scope) if scope.types[n] == S or (
            n in scope.fresh_arrays and not ctx.loops)]
        if not names:
            return self.stmt_assign(scope, ctx)
        name = self.pick(names)
        t = scope.types[name]
        op = self.pick(["+=", "-=", "*=", "/="])
        if op == "*=":
            form = self.choose(["math.tanh({})", "np.tanh({})"]) or "0.5"
            return [line(tmpl(name + " *= " + form, self.expr(S, scope, 2)))]
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
        a, b = self.fresh(self.local_names()), self.fresh(self.local_names())
        ta, tb = self.value_type(scope), S
        ea, eb = self.expr(ta, scope, 2), self.expr(tb, scope, 2)
        scope.types.update({a: ta, b: tb})
        scope.mutable |= {a, b}
        return [line(tmpl(f"{a}, {b} = {{}}, {{}}", ea, eb))]

    def stmt_ann(self, scope: Scope, ctx: Context) -> list:
        name = self.fresh(self.local_names())
        value = self.expr(S, scope, 2)
        scope.types[name] = S
        scope.mutable.add(name)
        if "float" in self.banned:
            return [line(tmpl(name + " = {}", value))]
        return [line(tmpl(name + ": float = {}", value))]

    def stmt_return(self, scope: Scope, ctx: Context) -> list:
        cond = self.condition(scope, 2)
        if ctx.function == "f" and self.on("non-number-return", 8):
            return [compound(tmpl("if {}", cond), [line(lit(self.pick(["return None", "return 'stopped'",
                                                                       "return"])))])]
        value = self.expr(ctx.returns, scope, 2)
        return [compound(tmpl("if {}", cond), [line(tmpl("return {}", value))])]

    def stmt_jump(self, scope: Scope, ctx: Context) -> list:
        cond = self.condition(scope, 2)
        return [compound(tmpl("if {}", cond), [line(lit(self.pick(["break", "continue"])))])]

    def stmt_if(self, scope: Scope, ctx: Context) -> list:
        """if / elif / else; a name assigned on every path (``joined``) is visible after the statement."""
        inner = Context(ctx.returns, ctx.loops, ctx.depth + 1, ctx.function)
        joined = self.fresh(self.local_names()) if self.chance(40) else None
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
            ints = scope.of(INT)
            if ints and self.on("negative-power-base", 25):  # the alternating series of issue 12.1
                i = self.pick(ints)
                body.append(line(tmpl(f"{name} = {name} + (-1) ** {i} * {{}} ** {i}", self.expr(S, scope, 1))))
            else:
                body.append(line(tmpl(name + " = " + name + self.pick([" * 0.5 + {}", " + {}", " - 0.25 * {}"]),
                                      self.expr(S, scope, 2))))
        body += self.block(scope, inner, self.between(1, 3))
        return body

    def stmt_for(self, scope: Scope, ctx: Context) -> list:
        sub = scope.child()
        kinds = ["range", "range", "range", "items", "enumerate", "zip", "rows"]
        if "keyword-arguments" in self.features:
            kinds += ["enumerate", "enumerate"]
        kind = self.choose(kinds) or self.pick(["items", "rows"])
        prefix = []
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
                start = self.pick([", start=1", ", start=2", ", 1"]) if self.on("keyword-arguments", 60) else ""
                head = tmpl(f"for {i}, {e} in enumerate({{}}{start})", seq)
                acc = self.rebindable(scope, S)
                if acc and self.chance(60):  # a sum that the start of the count changes
                    total = self.pick(acc)
                    prefix.append(line(lit(f"{total} = {total} * 0.5 + {i} * {e}")))
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
        return [compound(head, self.loop_body(sub, ctx, prefix))]

    def stmt_while(self, scope: Scope, ctx: Context) -> list:
        sub = scope.child()
        squash = self.choose(["math.tanh", "np.tanh"])
        if self.chance(60) or squash is None:
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
            init = line(tmpl(f"{k} = {squash}({{}})", start))
            step = line(lit(f"{k} = {k} + 0.75"))
        return [init, compound(tmpl("while {}", test), self.loop_body(sub, ctx, [step]))]

    # --- statements of the features of issue 12 --------------------------------------------------------------

    def stmt_setitem(self, scope: Scope, ctx: Context) -> list:
        """``y[i] = v`` / ``y[i] += v`` on an array the function may write."""
        names = self.writable(scope)
        if not names:
            return self.stmt_assign(scope, ctx)
        self.used.add("item-assignment")
        name = self.pick(names)
        t = scope.types[name]
        op = self.pick(["=", "=", "+="])
        if t == M:
            target, vt = self.pick([("[0, 1]", S), ("[-1, 2]", S), ("[1]", V), ("[:, 0]", W)])
        else:
            target, vt = self.pick([("[0]", S), ("[-1]", S), ("[1:]", W if t == V else S)])
        return [line(tmpl(f"{name}{target} {op} {{}}", self.expr(vt, scope, 2)))]

    def stmt_list(self, scope: Scope, ctx: Context) -> list:
        name = self.fresh(LIST_NAMES)
        self.used.add("lists")
        items = [] if self.chance(40) else [self.expr(S, scope, 2) for _ in range(self.between(1, 2))]
        scope.types[name] = "L"
        if items:
            scope.nonempty.add(name)
        return [line(tmpl(name + " = [" + ", ".join("{}" for _ in items) + "]", *items))]

    def stmt_append(self, scope: Scope, ctx: Context) -> list:
        lists = scope.of("L")
        if not lists:
            return self.stmt_list(scope, ctx)
        return [line(tmpl(self.pick(lists) + ".append({})", self.expr(S, scope, 2)))]

    def stmt_nested(self, scope: Scope, ctx: Context) -> list:
        """A nested def or a lambda reading the caller's variables, callable afterwards (``inner(e)``)."""
        name = self.fresh(NESTED_NAMES)
        self.used.add("nested-functions")
        inner = scope.child()
        inner.types["p"] = S
        body = self.expr(S, inner, 2)
        scope.types[name] = "FN"
        if self.chance(50):
            return [line(tmpl(f"{name} = lambda p: {{}}", body))]
        return [compound(lit(f"def {name}(p)"), [line(tmpl("return {}", body))])]

    def stmt_alias(self, scope: Scope, ctx: Context) -> list:
        """A second name for an array or a list, then a write through one of them (12.3)."""
        lists, arrays = scope.of("L"), self.writable(scope, (V, M))
        if not lists and not arrays:
            return self.stmt_assign(scope, ctx)
        self.used.add("aliasing")
        if lists and (not arrays or self.chance(30)):
            lst, other = self.pick(lists), self.fresh(LIST_NAMES)
            scope.types[other] = "L"
            if lst in scope.nonempty:
                scope.nonempty.add(other)
            return [line(lit(f"{other} = {lst}")), line(tmpl(f"{other}.append({{}})", self.expr(S, scope, 2)))]
        y = self.pick(arrays)
        t = scope.types[y]
        a, b = self.fresh(self.local_names()), self.fresh(self.local_names())
        index = "[0]" if t == V else "[0, 1]"
        form = self.pick(["tuple", "ifexp", "view", "plain"])
        if form == "tuple":
            head = [line(lit(f"{a}, {b} = {y}, {y}"))]
            scope.types.update({a: t, b: t})
            scope.fresh_arrays.update({a, b})
        elif form == "ifexp":
            head = [line(tmpl(f"{a} = {y} if {{}} else {y}.copy()", self.condition(scope, 1)))]
            scope.types[a] = t
            scope.fresh_arrays.add(a)
        elif form == "view":
            head = [line(lit(f"{a} = {y}[1:]" if t == V else f"{a} = {y}[:, 1:]"))]
            index = "[0]" if t == V else "[0, 0]"
        else:
            head = [line(lit(f"{a} = {y}"))]
            scope.types[a] = t
            scope.fresh_arrays.add(a)
        write = line(tmpl(f"{a}{index} {self.pick(['=', '+=', '*='])} {{}}", self.expr(S, scope, 2)))
        return head + [write]

    def stmt_mutate(self, scope: Scope, ctx: Context) -> list:
        """A module helper, a nested def or a lambda that appends to a list or writes into an array (12.3)."""
        lists, arrays = scope.of("L"), self.writable(scope)
        kinds = (["append"] if lists else []) + (["setitem", "scale"] if arrays else [])
        if not kinds:
            return self.stmt_list(scope, ctx)
        self.used.add("helper-mutation")
        kind = self.pick(kinds)
        target = self.pick(lists if kind == "append" else arrays)
        value = self.expr(S, scope, 2)
        where = self.pick(["module", "module", "nested", "lambda"] if ctx.function == "f" else ["module"])
        if where == "module" and kind in self.mutators:
            args = "" if kind == "scale" else ", {}"
            return [line(tmpl(f"{self.mutators[kind]}({target}{args})", value))]
        name = self.fresh(NESTED_NAMES)
        # the parameter `new` is no name of the caller's (`v` may be the array written)
        action = {"append": f"{target}.append(new)", "setitem": f"{target}[0] = new",
                  "scale": f"{target}[0] = new * 3.0"}
        if where == "lambda" and kind == "append":
            define = [line(lit(f"{name} = lambda new: {action[kind]}"))]
        else:
            define = [compound(lit(f"def {name}(new)"), [line(lit(action[kind]))])]
        return define + [line(tmpl(f"{name}({{}})", value))]

    def stmt_comment(self, scope: Scope, ctx: Context) -> list:
        """A comment with a character str.splitlines() takes for a line end (and Python does not), then code."""
        self.used.add("emitted-module")
        return [line(lit(self.pick(ODD_COMMENTS)))] + self.statement(scope, ctx)

    # --- functions -------------------------------------------------------------------------------------------

    def function(self, name: str, params: list[Param], returns: str, size: int, doc: bool,
                 shadows: tuple[str, ...] = ()) -> list:
        """``def name(params)``: a body of ``size`` statements and a return. ``shadows``: builtins that are
        parameters or locals of this function (it must not call them)."""
        self.module_names.add(name)
        self.taken = {p.name for p in params} | self.module_names
        self.banned = self.banned_module | {p.name for p in params if p.name in SHADOWABLE} | set(shadows)
        scope = Scope({p.name: p.type for p in params}, {p.name for p in params if p.type != INT})
        if name == "f" and "item-assignment" in self.features:
            # f's array arguments are copied for every call. (A helper never writes its parameters: its caller
            # may pass module data; the mutating helpers are generated apart, see `mutator_helpers`.)
            scope.fresh_arrays.update(p.name for p in params if p.type in (V, W, M))
        ctx = Context(returns, function=name)
        body = [line(lit('"""A generated function."""'))] if doc else []
        for local in shadows:  # a local named like a builtin, assigned first
            self.taken.add(local)
            body.append(line(tmpl(local + " = {}", self.expr(S, scope, 2))))
            scope.types[local] = S
            scope.mutable.add(local)
        body += self.block(scope, ctx, size)
        body.append(line(tmpl("return {}", self.expr(returns, scope, 3))))
        sig = []
        star = False
        for p in params:
            if p.kwonly and not star:
                sig.append("*")
                star = True
            sig.append(p.name if p.default is None else f"{p.name}={p.default}")
        self.banned = set(self.banned_module)
        return [compound(lit(f"def {name}({', '.join(sig)})"), body)]

    def helper(self, index: int) -> list:
        name = self.fresh(HELPER_NAMES)
        self.module_names.add(name)
        if self.chance(10):
            h = Helper(name, [Param("p", S), Param("depth", INT)], S, recursive=True)
            squash = self.choose(["math.sin", "np.sin"]) or ""
            body = [
                compound(lit("if depth <= 0"), [line(lit("return p"))]),
                line(tmpl(f"return {name}(p * 0.5 + {squash}(p), depth - 1) * 0.5 + {{}}",
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
        if "global-rebind" in self.features and self.chance(30):  # a twin to rebind the helper's name to
            twin = self.pick([n for n in TWIN_NAMES if n not in self.module_names])
            text += self.function(twin, params, returns, self.between(0, 2), doc=False)
            self.rebind_options.append(f"{name} = {twin}")
        if params[-1].default is not None:
            attr = "__kwdefaults__" if params[-1].kwonly else "__defaults__"
            value = "{'k': 0.25}" if params[-1].kwonly else "(0.25,)"
            self.rebind_options.append(f"{name}.{attr} = {value}")
        return text

    def mutator_helpers(self) -> list:
        """Module helpers that change their argument: ``push(lst, v)``, ``put(y, v)``, ``scale(y)`` (12.3)."""
        parts = []
        for kind, pool in MUTATOR_NAMES.items():
            if not self.chance(50):
                continue
            name = self.pick(pool)
            self.mutators[kind] = name
            self.module_names.add(name)
            ending = self.pick([[], ["return v"] if kind != "scale" else ["return y"], ["return None"]])
            head, action = {"append": ("push(lst, v)", "lst.append(v)"), "setitem": ("put(y, v)", "y[0] = v"),
                            "scale": ("scale(y)", "y *= 3.0")}[kind]
            parts.append(compound(lit("def " + head.replace(head.split("(")[0], name, 1)),
                                  [line(lit(action))] + [line(lit(t)) for t in ending]))
        return parts

    def shadowing_functions(self) -> list:
        """Module-level functions named like builtins; the program itself never calls them (12.5)."""
        names = sorted({self.pick([n for n in SHADOWABLE if n not in MODULES]) for _ in range(self.between(1, 2))})
        self.banned_module |= set(names)
        self.module_names |= set(names)
        return [compound(lit(f"def {n}(*args, **kwargs)"),
                         [line(lit(f"raise RuntimeError('srcgrad called the module\\'s own {n}()')"))])
                for n in names]

    def module(self) -> tuple[list, list[Param], list[Param]]:
        """The module's parts, ``f``'s parameters (all), and those the caller passes."""
        self.extended = self.chance(30)
        parts = []
        if self.on("shadowed-builtins", 25):
            parts += self.shadowing_functions()
        if self.on("global-rebind", 40):
            self.rebind_globals = True
            parts.append(lambda p, ind: ["import types", "", "ACT = np.tanh", "KW = 2.0",
                                         "cfg = types.ModuleType('cfg')", "cfg.W = 0.5"])
            self.rebind_options += ["C1 = 1.5", "C2 = 0.5", "ACT = np.sin", "ACT = np.arctan",
                                    "KW = np.array([1.5, -0.5, 0.25])", "KW = -0.75",
                                    "cfg.W = np.array([2.0, 1.0, -1.0])", "cfg.W = 1.25"]
        for i in range(self.pick([0, 0, 1, 1, 2, 3])):
            parts += self.helper(i)
        if "helper-mutation" in self.features:
            parts += self.mutator_helpers()
        params = []
        taken = set(self.module_names)
        shadows: list[str] = []
        if self.on("shadowed-builtins", 30):
            shadows = sorted({self.pick(SHADOWABLE) for _ in range(self.between(1, 2))} - self.banned_module)
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
        arrays = [p for p in params if p.type in (V, M)]
        if arrays and self.on("same-array-twice", 20):  # the caller passes one array for both
            first = self.pick(arrays)
            second = self.pick([n for n in ARRAY_PARAMS[first.type] if n not in taken])
            taken.add(second)
            params.append(Param(second, first.type))
            self.twice = (first.name, second)
        if self.chance(50):
            params.append(Param("n", INT))
        local_shadows = ()
        if shadows and self.chance(50):  # builtins shadowed by parameters, else by locals
            params += [Param(n, S) for n in shadows]
        else:
            local_shadows = tuple(shadows)
        order = self.draw(st.permutations(range(len(params))))
        params = [params[i] for i in order]
        passed = list(params)
        if self.on("emitted-module", 30) or (self.rebind_globals and self.chance(40)):
            default = self.pick(["0.5", "C2", "C1 * 2.0"])
            params.append(Param("c", S, default=default))
            self.rebind_options.append("f.__defaults__ = (-0.25,)")
            if default != "0.5":  # the module rebinds the global after def f: the default keeps the old value
                self.used.add("emitted-module")
                self.trailer.append(f"{default.split()[0]} = {self.pick(['3.0', '-0.5'])}")
        parts += self.function("f", params, S, self.between(1, 6), doc=self.chance(20), shadows=local_shadows)
        if self.trailer:
            parts.append(lambda p, ind: list(self.trailer))
        if self.rebind_options and "global-rebind" in self.features:
            self.used.add("global-rebind")
            count = self.between(1, 2)
            self.rebinds = [self.pick(self.rebind_options) for _ in range(count)]
        return parts, params, passed


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
    params: list[Param]  # the parameters the caller passes (f may have more, with defaults)
    args: tuple  # aliased positions hold the same object
    wrt: tuple  # names or positions, as passed to srcgrad
    wrt_names: tuple[str, ...]
    mode: str  # grad, value_and_grad, vjp, jvp
    as_tuple: bool  # wrt given as a tuple
    features: frozenset = frozenset()  # the grammar features the program uses
    rebinds: tuple[str, ...] = ()  # module statements run before the second, third ... call
    tangents: tuple = ()  # jvp: one per wrt parameter

    def fresh_args(self) -> list:
        """A copy of the arguments for one call (f may write into them); arguments passed twice stay one object."""
        return list(copy.deepcopy(self.args))

    def call_text(self) -> str:
        wrt = repr(self.wrt) if self.as_tuple else repr(self.wrt[0])
        extra = ""
        if self.mode == "vjp":
            extra = ", 1.0"
        elif self.mode == "jvp":
            extra = ", " + _literal(self.tangents if self.as_tuple else self.tangents[0])
        return f"srcgrad.{self.mode}(f, wrt={wrt})", f"(*args{extra})"

    def reproducer(self) -> str:
        """A standalone script that differentiates the case and compares with finite differences."""
        shared = {}
        items = []
        for a in self.args:  # an argument passed twice is one object in the script too
            if id(a) in shared and isinstance(a, np.ndarray):
                items.append(f"args[{shared[id(a)]}]")
            else:
                shared[id(a)] = len(items)
                items.append(_literal(a))
        if any(i.startswith("args[") for i in items):
            first = [i if not i.startswith("args[") else "None" for i in items]
            setup = f"    args = [{', '.join(first)}]\n" + "".join(
                f"    args[{k}] = {i}\n" for k, i in enumerate(items) if i.startswith("args["))
        else:
            setup = f"    args = ({', '.join(items)},)\n"
        make, call = self.call_text()
        text = (self.source + "\n\nif __name__ == '__main__':\n    import srcgrad\n"
                "    from srcgrad.testing import check_grad\n\n" + setup
                + f"    df = {make}\n    print(df{call})\n")
        for stmt in self.rebinds:
            text += f"    {stmt}\n    print(df{call})\n"
        if not self.rebinds and self.mode != "jvp" and not any(i.startswith("args[") for i in items):
            text += f"    check_grad(f, *args, wrt={tuple(self.wrt)!r})\n"
        return text


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + "".join(_literal(v) + ", " for v in value) + ")"
    if isinstance(value, np.ma.MaskedArray):
        return f"np.ma.array({value.data.tolist()!r}, mask={np.ma.getmaskarray(value).tolist()!r})"
    if isinstance(value, np.matrix):
        return f"np.matrix({value.tolist()!r})"
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


def _argument(draw: Callable, p: Param, exotic: bool) -> Any:
    if p.type == INT:
        return draw(st.integers(0, 4))
    if p.type == S:
        x = draw(FLOATS)
        return np.float64(x) if draw(st.integers(0, 4)) == 0 else x
    size = int(np.prod(SHAPES[p.type]))
    value = np.array(draw(st.lists(FLOATS, min_size=size, max_size=size))).reshape(SHAPES[p.type])
    if exotic and draw(st.integers(0, 3)) == 0:  # feature "exotic-arguments"
        if p.type == M and draw(st.booleans()):
            return np.matrix(value)
        mask = np.zeros(size, dtype=bool)
        mask[draw(st.integers(0, size - 1))] = True
        return np.ma.array(value, mask=mask.reshape(value.shape))
    return value


@st.composite
def cases(draw: Callable, avoid: frozenset | None = None, features: frozenset | None = None) -> Case:
    """A random program from the supported subset, with arguments and what to differentiate.

    ``avoid``: the entries of :data:`KNOWN_BUGS` whose constructs are left out (default: all with ``avoid=True``).
    ``features``: the grammar features to use (default: all of :data:`FEATURES`).
    """
    if avoid is None:
        avoid = frozenset(name for name, bug in KNOWN_BUGS.items() if bug.avoid)
    gen = Generator(draw, avoid, features)
    parts, _, params = gen.module()
    exotic = "exotic-arguments" in gen.features
    args = [_argument(draw, p, exotic) for p in params]
    if any(isinstance(a, (np.matrix, np.ma.MaskedArray)) for a in args):
        gen.used.add("exotic-arguments")
    names = [p.name for p in params]
    if gen.twice is not None:  # one array for both parameters
        args[names.index(gen.twice[1])] = args[names.index(gen.twice[0])]
    floats = [i for i, p in enumerate(params) if p.type != INT]
    chosen = set(draw(st.sets(st.sampled_from(floats), min_size=1, max_size=len(floats))))
    if gen.twice is not None and {names.index(n) for n in gen.twice} & chosen:
        chosen |= {names.index(n) for n in gen.twice}  # the gradient of an argument passed twice is their sum
    chosen = sorted(chosen)
    wrt = tuple(draw(st.sampled_from([i, params[i].name])) for i in chosen)
    as_tuple = len(wrt) > 1 or draw(st.booleans())
    modes = ["grad", "grad", "value_and_grad", "vjp"]
    if gen.twice is None and gen.on("jvp", 20):
        modes = ["jvp"]
    mode = draw(st.sampled_from(modes))
    tangents = tuple(_argument(draw, params[i], False) for i in chosen) if mode == "jvp" else ()
    return Case(_render(parts, False), _render(parts, True), params, tuple(args), wrt,
                tuple(params[i].name for i in chosen), mode, as_tuple, frozenset(gen.used), tuple(gen.rebinds),
                tangents)


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
        with open(path, "w", encoding="utf-8") as fh:
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


class NotANumber(Exception):
    """The plain function returned something that is not a number (None, a string) at the point."""


@dataclass
class Outcome:
    kind: str  # ok, refused, known, mismatch, crash, unsupported, round-trip, emitted
    detail: str = ""


FAILURES = ("mismatch", "crash", "unsupported", "round-trip", "emitted")
H_SMALL, H_LARGE = 1e-6, 1e-3
# Errors srcgrad raises by design on programs the generator may produce (not failures): `y += x` on an array that
# another name also refers to (srcgrad computes a new array, so it refuses rather than be silently wrong).
REFUSALS = re.compile(r"an array in place, and another name refers to the same array")

# A direction of perturbation: (argument position, element index or None for a float, weight) for each part.
Direction = list[tuple[int, Any, float]]


class _Evaluator:
    """Evaluates the plain and the probe function at perturbed arguments, checking that the probe trace holds.

    Every call gets a copy of the arguments (the program may write into them); an array passed for two parameters
    stays one object, so perturbing it perturbs both.
    """

    def __init__(self, case: Case, plain: Callable, probe_ns: dict):
        self.case, self.plain, self.probe_ns = case, plain, probe_ns
        self.base_trace = self.trace(case.fresh_args())

    def trace(self, args: list) -> list:
        probe = Probe()
        self.probe_ns["_fz"] = probe
        try:
            self.probe_ns["f"](*copy.deepcopy(args))
        except Exception as exc:  # noqa: BLE001 - any failure of the plain program makes the point invalid
            raise Rejected(f"f raised {type(exc).__name__}") from None
        return probe.trace

    def value(self, args: list) -> float:
        try:
            y = self.plain(*copy.deepcopy(args))
        except Exception as exc:  # noqa: BLE001
            raise Rejected(f"f raised {type(exc).__name__}") from None
        if y is None or isinstance(y, str):
            raise NotANumber(repr(y))
        if np.ndim(y) != 0:  # (an item of an array of arrays: not a point of a function with a gradient)
            raise Rejected("value is not a scalar")
        y = float(y)
        if not math.isfinite(y) or abs(y) > 1e8:
            raise Rejected("value not finite or too large")
        return y

    def at(self, direction: Direction, delta: float) -> float:
        args = self.case.fresh_args()
        for position, index, weight in direction:
            x = args[position]
            if index is None:
                args[position] = type(x)(float(x) + delta * weight)
            else:
                np.asarray(x)[index] += delta * weight  # in place: the copy is ours, and an alias sees it too
        if self.trace(args) != self.base_trace:
            raise Rejected("a branch or kink is within the finite-difference step")
        try:
            return self.value(args)
        except NotANumber:
            raise Rejected("f returns no number near the point") from None

    def central(self, direction: Direction, h: float) -> float:
        return (self.at(direction, h) - self.at(direction, -h)) / (2 * h)

    def stencil(self, direction: Direction, h: float) -> float:
        f = lambda d: self.at(direction, d)  # noqa: E731
        return (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)


def _close(got: float, expected: float, value_scale: float, h: float) -> bool:
    roundoff = 1e-13 * (1.0 + value_scale) / h
    return abs(got - expected) <= 1e-5 * max(1.0, abs(got), abs(expected)) + roundoff


def _make_srcgrad(case: Case, func: Callable) -> Callable:
    wrt = case.wrt if case.as_tuple else case.wrt[0]
    if BACKEND != "python":
        return getattr(srcgrad, case.mode)(func, wrt=wrt, backend=BACKEND)
    return getattr(srcgrad, case.mode)(func, wrt=wrt)


def _call_srcgrad(case: Case, df: Callable) -> tuple[Any, tuple]:
    """(value or None, one derivative per wrt parameter) from the srcgrad function ``df``."""
    args = case.fresh_args()
    if case.mode == "value_and_grad":
        value, grads = df(*args)
    elif case.mode == "vjp":
        value, grads = None, df(*args, 1.0)
    elif case.mode == "jvp":
        value, grads = df(*args, case.tangents if case.as_tuple else case.tangents[0])
        return value, (grads,)  # one directional derivative
    else:
        value, grads = None, df(*args)
    if not case.as_tuple:
        grads = (grads,)
    return value, tuple(grads)


def round_trip_problem(text: str) -> str | None:
    """Why ``text`` is not a fixed point of parsing and printing (None when it is): it must parse, and printing the
    parsed tree again (ast.unparse) must parse to the same tree."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        return f"the generated text does not parse: {exc}"
    again = ast.unparse(tree)
    try:
        same = ast.dump(ast.parse(again)) == ast.dump(tree)
    except SyntaxError as exc:
        return f"ast.unparse of the generated text does not parse: {exc}"
    return None if same else "printing the parsed generated text again gives another tree"


def check_case(case: Case, loader: Loader, known_bugs: bool = True, cache_round_trip: bool = False,
               emitted: bool = True) -> Outcome:
    """Differentiate ``case`` with srcgrad and compare with the plain function; raises :class:`Rejected`.

    With ``known_bugs``, a failure that matches a :data:`KNOWN_BUGS` pattern is reported as kind "known". With
    ``cache_round_trip`` (the on-disk cache must be on), the case is differentiated a second time by a fresh
    transform, which loads the code the first one stored; both must give identical results. With ``emitted``, the
    module ``srcgrad.emit`` writes is run too and must give what the in-process gradient gives.
    """
    outcome = _check(case, loader, cache_round_trip, emitted)
    if known_bugs and outcome.kind not in ("ok", "known", "refused"):
        for name, bug in KNOWN_BUGS.items():
            if (bug.pattern and re.search(bug.pattern, outcome.detail)) or (
                    bug.source_pattern and re.search(bug.source_pattern, case.source)):
                return Outcome("known", f"{name} ({bug.test}): {bug.description}\n{outcome.detail}")
    return outcome


def _check(case: Case, loader: Loader, cache_round_trip: bool = False, emitted: bool = True) -> Outcome:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        module = loader.load(case.source)
        probe_ns = probe_namespace(case.probe_source)
        try:
            df = _make_srcgrad(case, module.f)
        except srcgrad.SrcgradError as exc:
            return _refusal(case, module, exc, False)
        outcome, result = _check_call(case, module, df, probe_ns)
        if outcome.kind != "ok":
            return outcome
        if emitted and case.mode != "jvp":
            outcome = _check_emitted(case, module, df, result)
            if outcome.kind != "ok":
                return outcome
        for stmt in case.rebinds:  # the same gradient function, called again after the module changed
            exec(stmt, module.__dict__)
            exec(stmt, probe_ns)
            outcome, result = _check_call(case, module, df, probe_ns)
            if outcome.kind != "ok":
                return Outcome(outcome.kind, f"after `{stmt}`: {outcome.detail}")
        if cache_round_trip and not case.rebinds and case.mode != "jvp":  # (forward mode is not cached by design)
            return _cache_round_trip(case, module.f, *result)
        return Outcome("ok")


def _check_call(case: Case, module: Any, df: Callable, probe_ns: dict) -> tuple[Outcome, tuple]:
    """Call ``df`` once and compare with finite differences of the module's f as it is now."""
    ev = _Evaluator(case, module.f, probe_ns)
    try:
        expected_value = ev.value(case.fresh_args())
    except NotANumber as returned:
        expected_value = returned
    try:
        value, grads = _call_srcgrad(case, df)
    except srcgrad.InternalError:
        return Outcome("crash", traceback.format_exc(limit=-6)), ()
    except srcgrad.SrcgradError as exc:
        return _refusal(case, module, exc, isinstance(expected_value, NotANumber)), ()
    except Exception:  # noqa: BLE001 - a raw exception reaching the user is what we look for
        return Outcome("crash", traceback.format_exc(limit=-6)), ()
    if isinstance(expected_value, NotANumber):
        return Outcome("mismatch", f"value: f returned {expected_value}, and srcgrad gave {value!r}, {grads!r} "
                                   "instead of an error"), ()
    try:
        text = srcgrad.source(df)
    except Exception:  # noqa: BLE001
        return Outcome("crash", "srcgrad.source: " + traceback.format_exc(limit=-6)), ()
    problem = round_trip_problem(text)
    if problem:
        return Outcome("round-trip", problem + "\n" + text), ()
    if case.mode == "jvp":
        return _compare_jvp(case, ev, value, grads[0], expected_value), (value, grads)
    problems = []
    if value is not None and not abs(float(value) - expected_value) <= 1e-12 * max(1.0, abs(expected_value)):
        problems.append(f"value {value!r} != f(*args) {expected_value!r}")
    if len(grads) != len(case.wrt_names):
        return Outcome("mismatch", f"{len(grads)} gradients for wrt={case.wrt!r}"), ()
    positions = [p.name for p in case.params]
    compared: set[int] = set()
    for name, g in zip(case.wrt_names, grads):
        position = positions.index(name)
        together = [i for i, a in enumerate(case.args) if a is case.args[position] and isinstance(a, np.ndarray)]
        if together[:1] and together[0] in compared:
            continue  # an argument passed twice: compared once, as the sum of both gradients
        if len(together) > 1:
            compared.add(together[0])
            name = "+".join(case.params[i].name for i in together)
            try:
                g = sum(grads[case.wrt_names.index(case.params[i].name)] for i in together)
            except Exception as exc:  # noqa: BLE001 - gradients of mismatched types
                problems.append(f"gradients of {name} cannot be added: {exc!r}")
                continue
        problems += _compare_gradient(ev, position, name, case.args[position], g, expected_value)
    if problems:
        return Outcome("mismatch", "\n".join(problems)), ()
    return Outcome("ok"), (value, grads)


def _refusal(case: Case, module: Any, exc: srcgrad.SrcgradError, expected: bool) -> Outcome:
    """A SrcgradError is acceptable where the program may be refused, and only with a location in the module."""
    location = getattr(exc, "location", None)
    located = location is not None and os.path.abspath(location.filename) == os.path.abspath(module.__file__)
    if REFUSALS.search(str(exc)) or (located and (expected or case.features & REFUSABLE)):
        return Outcome("refused", str(exc))
    if located and BACKEND != "python" and BACKEND in str(exc):  # what the backend cannot compile, said so
        return Outcome("refused", str(exc))
    if isinstance(exc, srcgrad.InvalidArgument) and case.features & {"exotic-arguments", "same-array-twice"}:
        return Outcome("refused", str(exc))  # about an argument of the call (a masked array), not a line
    why = "refused" if located else "refused without a location in the generated module"
    return Outcome("unsupported", f"{why}: " + traceback.format_exc(limit=-3))


def _compare_jvp(case: Case, ev: _Evaluator, value: Any, derivative: Any, fx: float) -> Outcome:
    problems = []
    if not abs(float(value) - fx) <= 1e-12 * max(1.0, abs(fx)):
        problems.append(f"value {value!r} != f(*args) {fx!r}")
    positions = [p.name for p in case.params]
    direction = []
    for name, t in zip(case.wrt_names, case.tangents):
        position = positions.index(name)
        if isinstance(t, np.ndarray):
            direction += [(position, index, float(t[index])) for index in np.ndindex(t.shape)]
        else:
            direction.append((position, None, float(t)))
    if not isinstance(derivative, float):
        problems.append(f"directional derivative: expected a float, got {type(derivative).__name__} {derivative!r}")
    else:
        problems += _compare_number(ev, direction, "the tangent direction", derivative, fx)
    return Outcome("mismatch", "\n".join(problems)) if problems else Outcome("ok")


def _check_emitted(case: Case, module: Any, df: Callable, result: tuple) -> Outcome:
    """The module ``srcgrad.emit`` writes for ``df`` must print back to itself and compute what ``df`` computes."""
    try:
        text = srcgrad.emit(df)
    except srcgrad.InternalError:
        return Outcome("emitted", "srcgrad.emit: " + traceback.format_exc(limit=-6))
    except srcgrad.SrcgradError:
        return Outcome("ok")  # the function cannot be written as a module (the refusal is srcgrad.emit's to make)
    except Exception:  # noqa: BLE001
        return Outcome("emitted", "srcgrad.emit: " + traceback.format_exc(limit=-6))
    problem = round_trip_problem(text)
    if problem:
        return Outcome("round-trip", "emitted module: " + problem + "\n" + text)
    sys.modules[module.__name__] = module  # the emitted module imports the user's globals from it
    try:
        namespace: dict = {"__name__": module.__name__ + "_emitted"}
        exec(compile(text, module.__file__[:-3] + "_emitted.py", "exec"), namespace)
        function = namespace[namespace["__all__"][0]]
        seed = {}
        if case.mode == "vjp":  # the seed is the last parameter (keyword-only after parameters with defaults)
            seed = {list(inspect.signature(function).parameters)[-1]: 1.0}
        out = function(*case.fresh_args(), **seed)
    except Exception:  # noqa: BLE001
        return Outcome("emitted", text + "\nrunning the emitted module above: " + traceback.format_exc(limit=-4))
    finally:
        sys.modules.pop(module.__name__, None)
    value, grads = (out[0], out[1]) if case.mode == "value_and_grad" else (None, out)
    grads = tuple(grads) if case.as_tuple else (grads,)
    expected_value, expected_grads = result
    same = len(grads) == len(expected_grads) and all(
        np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-9, atol=1e-12)
        for a, b in zip((value,) + grads if value is not None else grads,
                        (expected_value,) + expected_grads if value is not None else expected_grads))
    if not same:
        return Outcome("emitted", f"{text}\nthe emitted module above gives {out!r}; in process: {result!r}")
    return Outcome("ok")


def _cache_round_trip(case: Case, func: Callable, value: Any, grads: tuple) -> Outcome:
    cache = disk_cache
    before = cache.stats()
    try:
        df = _make_srcgrad(case, func)
        again = _call_srcgrad(case, df)
    except Exception:  # noqa: BLE001
        return Outcome("crash", "from the cache: " + traceback.format_exc(limit=-6))
    after = cache.stats()
    if BACKEND != "python":  # (srcgrad's entries hold Python code: numba's cache holds the compiled code instead)
        compiled = getattr(getattr(df.__srcgrad_transform__.last, "function", None), "__srcgrad_compiled__", None)
        stats = getattr(compiled, "stats", None)
        if stats is not None and stats.cache_path is not None and not stats.cache_hits:
            return Outcome("mismatch", f"cache: the second compilation was not loaded from numba's cache ({stats})")
    elif after["hits"] == before["hits"] and after["uncacheable"] == before["uncacheable"]:
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
        where = name if index is None else f"{name}{list(index)}"
        got = float(g if index is None else np.asarray(g)[index])
        problems += _compare_number(ev, [(position, index, 1.0)], where, got, fx)
    return problems


def _compare_number(ev: _Evaluator, direction: Direction, where: str, got: float, fx: float) -> list[str]:
    """Compare one derivative along ``direction`` with finite differences (several, before calling it wrong)."""
    fd = ev.central(direction, H_SMALL)
    if not math.isfinite(fd):
        raise Rejected("finite difference not finite")
    if _close(got, fd, abs(fx), H_SMALL):
        return []
    # Disagreement: try estimates with other truncation and rounding errors before calling it a mismatch.
    estimates = [("central", H_SMALL, fd)]
    for method, h in ((ev.stencil, H_LARGE), (ev.stencil, 1e-4), (ev.central, 1e-5), (ev.central, 1e-8)):
        try:
            other = method(direction, h)
        except Rejected:
            continue  # a kink within this step: no estimate from it
        estimates.append((method.__name__, h, other))
        if _close(got, other, abs(fx), h):
            return []
    # A mismatch needs finite differences that agree with each other: when no two estimates (with different steps)
    # agree, the function changes too fast here for differences to say anything (e.g. sin(y ** 3) with y ~ 80).
    if not any(_close(a, b, abs(fx), max(ha, hb)) for i, (_, ha, a) in enumerate(estimates)
               for _, hb, b in estimates[i + 1:]):
        raise Rejected("finite differences do not converge (ill-conditioned point)")
    return [f"d/d{where}: srcgrad {got!r}; " + ", ".join(f"{m} {v!r} (h={h})" for m, h, v in estimates)]


def describe(case: Case, outcome: Outcome) -> str:
    features = ", ".join(sorted(case.features)) or "base grammar only"
    return (f"--- {outcome.kind} (features: {features}) ---\n{outcome.detail}\n--- reproducer ---\n"
            f"{case.reproducer()}")


__all__ = ["FEATURES", "FAILURES", "KNOWN_BUGS", "REFUSABLE", "Case", "Generator", "Loader", "Outcome", "Probe",
           "Rejected", "cases", "check_case", "describe", "round_trip_problem"]

if __name__ == "__main__":  # pragma: no cover - print one example program
    print(cases().example().source, file=sys.stdout)
