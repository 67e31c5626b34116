"""The entry: the function ``grad``/``value_and_grad`` return, with the user's own signature.

In: a transform, the general dispatcher (binds arguments, picks or generates the variant for their kinds and checks
its guards) and the failure handler. Out: a function object whose code is swapped at the call after the one that
generated a variant (that call runs the variant through the dispatcher: compiling a version is not worth it for a
function called once):
- *fused*: the generated code itself, behind a check of the argument types (``type(x) is float``) and of the
  variant's guards (srcgrad/guards.py: ``act is <np.tanh>``, ``type(cfg.W) is float``), inside a ``try`` that lets
  srcgrad's own failures become an InternalError — so a call is one Python call, as for a hand-written gradient;
- *trampoline* (when the generated code needs cells the entry cannot hold: the user's closure variables, generated
  helper functions, or more names than the entry has cells): the same check, then a call to the variant;
- a *structured* variant (srcgrad/structures.py) is always a trampoline to its front function, and its check also
  tests the arguments' structures (structures.structure_tests: containers, dict keys in order, classes, leaf types,
  dtypes and layouts — what the dispatcher's key tells apart), so a call costs the check, O(number of leaves), and
  no dispatcher.
Anything the check refuses (other argument types, a non-float array for a differentiated argument, a name that now
denotes another object) goes through the dispatcher, which generates the variant again when a guard failed; the
entry is then swapped to a trampoline to the new variant. (A guarded global that was deleted raises NameError from
the check, as the function itself would.)

What holds:
- the entry runs in the user's module globals (globals stay live, as in the user's function) but reads none of the
  user's names except those its guards check: ``type``, the argument types, ``Exception``, the dispatcher, the
  failure handler and the variant are srcgrad's constants ``k[i]`` (one cell holding a tuple, read once per call, so a
  call that started with one version never mixes in another's);
- a parameter with a default gets ``OMITTED`` as the entry's default: a call that leaves it out reads the function's
  default as it is now (``f.__defaults__`` may have been reassigned since);
- the entry keeps a fixed number of closure cells, ``ENTRY_CELLS``: a code object can only be swapped for one with
  as many free variables, so every version is padded to that count;
- the dispatcher's cell ``__srcgrad_0slow__`` is the first free variable of every version and the constants' cell
  ``__srcgrad_1k__`` the second (names sort, and no other name sorts before them); the dispatcher's cell never
  changes, and a later swap changes only the constants' cell, so a call already running the previous code, in
  another thread, still reads what it was made with.
"""

from __future__ import annotations

import inspect
import linecache
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import arrays, digests, layouts, lazy, locks, structures
from srcgrad.emitter import INDENT, compile_in_scope
from srcgrad.generated import NO_ORIGIN, register
from srcgrad.guards import Consts
from srcgrad.records import record

ENTRY_CELLS = 4  # each free variable costs every call about a nanosecond: enough for small functions, no more
SLOW = "__srcgrad_0slow__"
K = "__srcgrad_1k__"  # the constants of the current version: a tuple (guards.Consts)
_K = "__srcgrad_k"  # ... read once into this local
_EXC = "__srcgrad_exc"


class _Omitted:
    """The entry's default for a parameter that has one: the call left it out."""

    def __repr__(self) -> str:
        return "<the function's default>"


OMITTED = _Omitted()


def simple_signature(sig: inspect.Signature) -> bool:
    """Positional-or-keyword and keyword-only parameters only (no ``*args``/``**kwargs``/positional-only)."""
    return all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in sig.parameters.values())


def make_entry(transform: Any, name: str, dispatch: Callable, failed: Callable) -> Callable:
    """The entry function; ``dispatch.__srcgrad_on_variant__(generated, arg_types)`` swaps its code: to the first
    variant generated, then to a trampoline to each variant generated again for those argument types (a guard
    failed)."""
    params = list(transform.signature.parameters.values())
    header, args = _header_and_call(params)
    cells = [types.CellType() for _ in range(ENTRY_CELLS)]
    code = _first_version(name, params) or \
        _compile_version(name, header, [f"return {SLOW}({args})"], [], f"<srcgrad entry {name}>")
    for cell, free in zip(cells, code.co_freevars):
        cell.cell_contents = dispatch if free == SLOW else None
    func = transform.func
    defaults = tuple(OMITTED for _ in func.__defaults__ or ())
    entry = types.FunctionType(code, func.__globals__, name, defaults or None, tuple(cells))
    entry.__kwdefaults__ = {k: OMITTED for k in func.__kwdefaults__ or {}} or None
    lock = locks.lock()
    current: dict[str, Any] = {}  # "types": the argument types the entry checks for; "generated": their variant
    label = f"{transform.pf.name}:{transform.mode}:entry"

    def on_variant(generated: Any, key: tuple) -> None:
        # (a structured variant's key: the argument types and the arguments' descriptions, srcgrad/structures.py)
        structured = getattr(generated, "structured", False)
        arg_types, kinds = key if structured else (key, None)
        if lazy.needs_guard(arg_types):
            return  # (a Dask array among the arguments: the dispatcher runs the call without computing, srcgrad.lazy)
        with lock:
            first = not current
            if not first and (current["types"] != key or current["generated"] is generated):
                return  # other argument types keep going through the dispatcher
            current.update(types=key, generated=generated)
            consts = Consts(_K)
            check = _check(params, arg_types, transform, generated, consts, kinds)
            fuse = first and not structured  # (a structured variant: the check, then a call to its front function)
            version = _fused(name, label, header, args, check, generated, func, consts, failed) if fuse else None
            if version is None:
                consts = Consts(_K)  # (what the fused version referred to is not needed)
                check = _check(params, arg_types, transform, generated, consts, kinds)
                impl = consts.ref(getattr(generated.function, "__srcgrad_direct__", generated.function))
                version = _compile_version(name, header, _checked(check, args, [f"return {impl}({args})"], consts,
                                                                  failed), [], f"<srcgrad entry {name} (checked)>")
            # The contents of the version's cells: the dispatcher's (unchanged), the constants, and on the first swap
            # the generated code's names. A later swap writes only the constants (see the module docstring).
            values = {**generated.bound, K: tuple(consts.objects)}
            for cell, free in zip(cells, version.co_freevars):
                if free == K or (first and free != SLOW):
                    cell.cell_contents = values.get(free)
            entry.__code__ = version

    dispatch.__srcgrad_on_variant__ = on_variant
    return entry


def _first_version(name: str, params: list[inspect.Parameter]) -> types.CodeType | None:
    """The entry's first version, ``def NAME(a, b, ...): return <dispatcher>(a, b, ...)``, for up to 8 parameters
    that can all be given by position or name: one of :data:`_TRAMPOLINES` renamed, not compiled (a function's
    first gradient should cost what generating it costs); None for other signatures."""
    if len(params) >= len(_TRAMPOLINES) or ENTRY_CELLS != len(_TRAMPOLINES[0].co_freevars) \
            or any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in params):
        return None
    filename = f"<srcgrad entry {name}>"
    listed = ", ".join(p.name for p in params)
    lines = [f"# srcgrad entry {name}: calls the dispatcher\n", f"def {name}({listed}):\n",
             f"{INDENT}return {SLOW}({listed})\n"]  # (the template's lines: its def, then its return)
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)
    names = {"co_name": name, "co_varnames": tuple(p.name for p in params), "co_filename": filename,
             "co_firstlineno": 2}
    if hasattr(types.CodeType, "co_qualname"):
        names["co_qualname"] = name
    return _TRAMPOLINES[len(params)].replace(**names)


def _trampolines() -> tuple[types.CodeType, ...]:
    """``def f(a0, ..., ak): return __srcgrad_0slow__(a0, ..., ak)`` for k < 8, each with the entry's
    ``ENTRY_CELLS`` free variables: the dispatcher's cell, then padding (read in dead code)."""
    __srcgrad_0slow__ = __srcgrad_pad0__ = __srcgrad_pad1__ = __srcgrad_pad2__ = None  # (the cells)

    def t0():
        return __srcgrad_0slow__()
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t1(a0):
        return __srcgrad_0slow__(a0)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t2(a0, a1):
        return __srcgrad_0slow__(a0, a1)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t3(a0, a1, a2):
        return __srcgrad_0slow__(a0, a1, a2)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t4(a0, a1, a2, a3):
        return __srcgrad_0slow__(a0, a1, a2, a3)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t5(a0, a1, a2, a3, a4):
        return __srcgrad_0slow__(a0, a1, a2, a3, a4)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t6(a0, a1, a2, a3, a4, a5):
        return __srcgrad_0slow__(a0, a1, a2, a3, a4, a5)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    def t7(a0, a1, a2, a3, a4, a5, a6):
        return __srcgrad_0slow__(a0, a1, a2, a3, a4, a5, a6)
        (__srcgrad_pad0__, __srcgrad_pad1__, __srcgrad_pad2__)  # noqa: B018 - unreachable: the padding cells

    return tuple(f.__code__ for f in (t0, t1, t2, t3, t4, t5, t6, t7))


def _header_and_call(params: list[inspect.Parameter]) -> tuple[str, str]:
    """The parameter list (defaults are placeholders: the entry's ``__defaults__`` hold ``OMITTED``) and the
    argument list that passes every parameter on."""
    header, call = [], []
    star = False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star:
            header.append("*")
            star = True
        header.append(p.name if p.default is p.empty else f"{p.name}=None")
        call.append(p.name if p.kind is not p.KEYWORD_ONLY else f"{p.name}={p.name}")
    return ", ".join(header), ", ".join(call)


@record
class _Check:
    """What a version checks before it runs the generated code: the omitted arguments are read from the function's
    defaults (``prologue``), then the arguments have the types the variant was generated for (differentiated arrays
    are real) and its guards hold."""

    prologue: list[str]
    types: list[str]
    guards: list[str]
    exception: str  # how the version spells Exception

    def statements(self, args: str) -> list[str]:
        """Return through the dispatcher when the check fails. (Reading a guarded name raises where the function
        itself would: a global that was deleted is a NameError, as in the function.)"""
        test = " and ".join(self.types + self.guards) or "True"
        fallback = f"{INDENT}return {SLOW}({args})"
        prologue = ["try:", *(INDENT + ln for ln in self.prologue), f"except {self.exception}:", fallback] \
            if self.prologue else []  # (defaults that are gone: the dispatcher says which argument is missing)
        return [*prologue, f"if not ({test}):", fallback]


def _check(params: list[inspect.Parameter], arg_types: tuple, transform: Any, generated: Any,
           consts: Consts, kinds: tuple | None = None) -> _Check:
    """``kinds``: the arguments' descriptions of a structured variant, whose structures are checked too (the same
    tests as the dispatcher's, structures.matcher)."""
    func = transform.func
    n_positional = sum(1 for p in params if p.kind is not p.KEYWORD_ONLY)
    prologue, checks = [], []
    for i, (p, t) in enumerate(zip(params, arg_types)):
        if p.default is not p.empty:
            where = f"__kwdefaults__[{p.name!r}]" if p.kind is p.KEYWORD_ONLY else f"__defaults__[{i - n_positional}]"
            prologue += [f"if {p.name} is {consts.ref(OMITTED)}:", f"{INDENT}{p.name} = {consts.ref(func)}.{where}"]
        t, layout = (t.type, t.layout) if isinstance(t, layouts.Keyed) else (t, None)  # (srcgrad/layouts.py)
        checks.append(f"{consts.type_of(p.name)} is {consts.ref(t)}")
        if layout is not None:
            checks += layouts.check(p.name, layout, consts.ref(layouts.FLOAT64))
        elif (t is np.ndarray or arrays.is_protocol_type(t)) and p.name in transform.wrt:
            checks.append(f"{p.name}.dtype.kind in 'fiub'")
    if kinds is not None:
        checks += structures.structure_tests(dict(zip([p.name for p in params], kinds)), consts.ref)
    guards = [generated.guards.expression(consts)] if generated.guards is not None and generated.guards.items else []
    return _Check(prologue, checks, guards, consts.ref(Exception))


def _checked(check: _Check, args: str, body: list[str], consts: Consts, failed: Callable) -> list[str]:
    """A version's statements: the constants read once, the check, ``body`` inside the handler that turns srcgrad's
    own failures into InternalErrors."""
    return [f"{_K} = {K}", *check.statements(args), "try:", *(INDENT + ln for ln in body),
            f"except {consts.ref(Exception)} as {_EXC}:", f"{INDENT}{consts.ref(failed)}({_EXC})", f"{INDENT}raise"]


def _fused(name: str, label: str, header: str, args: str, check: _Check, generated: Any, user_func: Any,
           consts: Consts, failed: Callable) -> types.CodeType | None:
    """The generated code behind the check, compiled as the entry's next version; None when it cannot be.

    The generated code's names become the entry's cells, also those it shares with the user's function (``np`` when
    the user's ``np`` is numpy: a cell is read faster than a global in a loop); the guards read the user's own name
    from the module's dict then."""
    if getattr(generated.function, "__srcgrad_compiled__", None) is not None:
        return None  # compiled by another backend (numba): the entry calls it
    if user_func.__code__.co_freevars:
        return None  # the user's closure cells cannot move into the entry (and a rebinding must be seen)
    for value in generated.bound.values():
        if isinstance(getattr(value, "cell", None), types.CellType):
            return None  # a generated helper shares a cell with its callers: only the variant itself can hold it
    used = generated.function.__code__.co_freevars  # (a rule's name folded away is bound but not used)
    names = [n for n in generated.bound if n in used]
    if len(names) + 2 > ENTRY_CELLS:
        return None  # more names than cells (the check below would say so after compiling)
    lines = generated.source.split("\n")
    if not lines[1].strip().startswith(('"""', "'", '"')):
        return None
    if check.guards:  # (a guard on a name the version binds reads the module's dict)
        check = _Check(check.prologue, check.types, [generated.guards.expression(consts, frozenset(names))],
                       check.exception)
    # The generated text is ``def NAME(...):``, its docstring (one line: emitter.emit_text writes it with
    # sourcetext.docstring, user text escaped), then the body one level in: it goes in the ``try``.
    kept = [k for k in range(2, len(lines)) if lines[k].strip()]
    body = [lines[k][len(INDENT):] if lines[k].startswith(INDENT) else lines[k] for k in kept]
    statements = _checked(check, args, body, consts, failed)
    digest = digests.hex_digest("\n".join(statements), 10)
    filename = f"<srcgrad {label} {digest}>"  # errors.call_failure reads generated code by this prefix
    try:
        code = _compile_version(name, header, statements, names, filename)
    except _TooManyNames:
        return None
    # the line map: the body's lines keep the origins of the generated lines they are (after the note, the def
    # line and the statements before the ``try``'s body)
    before = 2 + sum(s.count("\n") + 1 for s in statements[:len(statements) - len(body) - 3])
    origins = list(generated.lines) + [NO_ORIGIN] * len(lines)
    register(filename, (NO_ORIGIN,) * before + tuple(origins[k] for k in kept))
    return code

class _TooManyNames(Exception):
    pass


def _compile_version(name: str, header: str, statements: list[str], names: list[str],
                     filename: str) -> types.CodeType:
    """Compile ``def NAME(header): statements`` as a closure over ``names``, the dispatcher, the constants and
    padding, so that it has exactly ``ENTRY_CELLS`` free variables."""
    base = [SLOW, K, *names]
    text = "\n".join(statements)
    # The free variables it will have: those of base the statements mention (a guess; checked below).
    guess = sum(1 for n in base if n in text)
    for _ in range(2):
        missing = ENTRY_CELLS - guess
        if missing < 0:
            raise _TooManyNames(name)
        pads = [f"__srcgrad_pad{i}__" for i in range(missing)]
        code = _compile(name, header, statements, base, pads, filename)
        guess = len(code.co_freevars) - len(pads)
        if len(code.co_freevars) == ENTRY_CELLS:
            break
    else:
        raise _TooManyNames(name)
    if code.co_freevars[0] != SLOW or (K in code.co_freevars and code.co_freevars[1] != K):
        raise _TooManyNames(name)  # a name sorts before the dispatcher's: the cell order cannot be kept
    return code


def _compile(name: str, header: str, statements: list[str], names: list[str], pads: list[str],
             filename: str) -> types.CodeType:
    lines = [f"def {name}({header}):", *(INDENT + ln for ln in statements)]
    if pads:  # referenced in dead code: free variables all the same
        lines += [f"{INDENT}if False:", f"{INDENT * 2}({', '.join(pads)},)"]
    note = f"# srcgrad entry {name}: the argument types are checked, then the generated code runs"
    return compile_in_scope("\n".join(lines), name, names + pads, filename, note)


_TRAMPOLINES = _trampolines()
