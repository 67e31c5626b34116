"""The entry: the function ``grad``/``value_and_grad`` return, with the user's own signature.

In: a transform, the general dispatcher (binds arguments, picks or generates the variant for their kinds) and the
failure handler. Out: a function object whose code is swapped once, after the first call has generated a variant:
- *fused*: the generated code itself, behind a type check of the arguments (``type(x) is float``), inside a
  ``try`` that lets srcgrad's own failures become an InternalError — so a call is one Python call, as for a
  hand-written gradient;
- *trampoline* (when the generated code needs cells the entry cannot hold: the user's closure variables, generated
  helper functions, or more names than the entry has cells): the same type check, then a call to the variant.
Anything the check refuses (other argument types, a non-float array for a differentiated argument) goes through the
dispatcher.

What holds:
- the entry runs in the user's module globals (globals stay live, as in the user's function; a module that
  rebinds ``type``, ``float``... keeps the dispatcher) and keeps a fixed number of closure cells, ``ENTRY_CELLS``:
  a code object can only be swapped for one with as many free variables, so every version is padded to that count;
- the dispatcher's cell ``__srcgrad_0slow__`` is the first free variable of every version (names sort, and no other
  name sorts before it), and its contents never change: a call already running the previous code, in another
  thread, still reads the dispatcher there.
"""

from __future__ import annotations

import hashlib
import inspect
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import locks
from srcgrad.emit import INDENT, compile_in_scope

ENTRY_CELLS = 4  # each free variable costs every call about a nanosecond: enough for small functions, no more
SLOW = "__srcgrad_0slow__"
FAILED = "__srcgrad_failed__"
IMPL = "__srcgrad_impl__"
TYPES = "__srcgrad_types__"
_GUARD_BUILTINS = ("type", "float", "int", "bool", "Exception")  # read by the entry from the module's globals


def simple_signature(sig: inspect.Signature) -> bool:
    """Positional-or-keyword and keyword-only parameters only (no ``*args``/``**kwargs``/positional-only)."""
    return all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in sig.parameters.values())


def make_entry(transform: Any, name: str, dispatch: Callable, failed: Callable) -> Callable:
    """The entry function; ``dispatch.__srcgrad_on_variant__(generated, arg_types)`` swaps its code once."""
    params = list(transform.signature.parameters.values())
    header, args = _header_and_call(params)
    cells = [types.CellType() for _ in range(ENTRY_CELLS)]
    code = _compile_version(name, header, [f"return {SLOW}({args})"], [], f"<srcgrad entry {name}>")
    for cell, free in zip(cells, code.co_freevars):
        cell.cell_contents = dispatch if free == SLOW else None
    globals_ = transform.func.__globals__
    entry = types.FunctionType(code, globals_, name, transform.func.__defaults__, tuple(cells))
    entry.__kwdefaults__ = dict(transform.func.__kwdefaults__ or {}) or None
    lock = locks.lock()
    swapped = []

    def first_variant(generated: Any, arg_types: tuple) -> None:
        with lock:
            if swapped:
                return
            swapped.append(True)
            if any(builtin in globals_ for builtin in _GUARD_BUILTINS):
                return  # the module rebinds a name the type check reads: every call goes through the dispatcher
            guard = _guard(params, arg_types, transform.wrt)
            # What each free variable a version may have holds: srcgrad's names, and the generated code's.
            values = {**generated.bound, SLOW: dispatch, FAILED: failed, TYPES: arg_types, IMPL: generated.function}
            label = f"{transform.pf.name}:{transform.mode}:entry"
            version = _fused(name, label, header, args, guard, generated, transform.func)
            if version is None:
                body = ["try:", f"{INDENT}return {IMPL}({args})", *_handler()]
                version = _compile_version(name, header, [f"if not ({guard}):", f"{INDENT}return {SLOW}({args})",
                                                          *body], [], f"<srcgrad entry {name} (checked)>")
            for cell, free in zip(cells, version.co_freevars):
                if free != SLOW:  # the dispatcher's cell keeps its contents (see the module docstring)
                    cell.cell_contents = values.get(free)
            entry.__code__ = version

    dispatch.__srcgrad_on_variant__ = first_variant
    return entry


def _header_and_call(params: list[inspect.Parameter]) -> tuple[str, str]:
    """The parameter list (defaults are placeholders: the function's ``__defaults__`` hold the real ones) and the
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


def _guard(params: list[inspect.Parameter], arg_types: tuple, wrt: list[str]) -> str:
    """True when the arguments have the types the variant was generated for (and differentiated arrays are real)."""
    checks = []
    for i, (p, t) in enumerate(zip(params, arg_types)):
        if t in (float, int, bool):
            checks.append(f"type({p.name}) is {t.__name__}")
        else:
            checks.append(f"type({p.name}) is {TYPES}[{i}]")
            if t is np.ndarray and p.name in wrt:
                checks.append(f"{p.name}.dtype.kind in 'fiub'")
    return " and ".join(checks) or "True"


def _handler() -> list[str]:
    return [f"except Exception as {FAILED}_exc:", f"{INDENT}{FAILED}({FAILED}_exc)", f"{INDENT}raise"]


def _fused(name: str, label: str, header: str, args: str, guard: str, generated: Any,
           user_func: Any) -> types.CodeType | None:
    """The generated code behind the type check, compiled as the entry's next version; None when it cannot be."""
    if user_func.__code__.co_freevars:
        return None  # the user's closure cells cannot move into the entry (and a rebinding must be seen)
    for value in generated.bound.values():
        if isinstance(getattr(value, "cell", None), types.CellType):
            return None  # a generated helper shares a cell with its callers: only the variant itself can hold it
    if len(generated.bound) + 2 > ENTRY_CELLS:
        return None  # more names than cells (the check below would say so after compiling)
    lines = generated.source.split("\n")
    if not lines[1].strip().startswith('"""'):
        return None
    # The generated text is ``def NAME(...):``, its docstring, then the body one level in: it goes in the ``try``.
    body = [ln for ln in lines[2:] if ln.strip()]
    statements = [f"if not ({guard}):", f"{INDENT}return {SLOW}({args})", "try:", *body, *_handler()]
    digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()[:10]
    filename = f"<srcgrad {label} {digest}>"  # errors.call_failure reads generated code by this prefix
    try:
        return _compile_version(name, header, statements, list(generated.bound), filename)
    except _TooManyNames:
        return None


class _TooManyNames(Exception):
    pass


def _compile_version(name: str, header: str, statements: list[str], names: list[str],
                     filename: str) -> types.CodeType:
    """Compile ``def NAME(header): statements`` as a closure over ``names``, the dispatcher, the failure handler,
    the argument types and padding, so that it has exactly ``ENTRY_CELLS`` free variables."""
    base = [SLOW, FAILED, IMPL, TYPES, *names]
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
    if code.co_freevars[0] != SLOW:
        raise _TooManyNames(name)  # a name sorts before the dispatcher's: the cell order cannot be kept
    return code


def _compile(name: str, header: str, statements: list[str], names: list[str], pads: list[str],
             filename: str) -> types.CodeType:
    lines = [f"def {name}({header}):", *(INDENT + ln for ln in statements)]
    if pads:  # referenced in dead code: free variables all the same
        lines += [f"{INDENT}if False:", f"{INDENT * 2}({', '.join(pads)},)"]
    note = f"# srcgrad entry {name}: the argument types are checked, then the generated code runs"
    return compile_in_scope("\n".join(lines), name, names + pads, filename, note)
