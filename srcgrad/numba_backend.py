"""The numba backend: generated functions compiled by numba's nopython mode (``backend="numba"``).

In: a unit's emitted text (the same text the Python backend writes: ``srcgrad.source`` shows it), the names srcgrad
binds for it (``scope.bound``) and the user's function (its globals and closure). Out: a Python function with the
generated function's signature that calls the numba-compiled code.
What holds:
- the compiled text is the text users read: each bound name is given its compiled twin (srcgrad/numba_runtime.py:
  ``reversed`` of a range, the adjoint helpers), each generated helper pair (calls.HelperVariant) is compiled the same
  way, once per variant;
- numba compiles at the first call, for the argument types of that call (and again for other types); a failure to
  compile is a :class:`NumbaUnsupported` naming the user's line the failing statement came from (the text's
  ``# line N`` comments) and numba's reason — never a silent fallback to Python;
- numba freezes the globals a compiled function reads: a name of the user's bound to an array (or to anything numba
  would copy) is refused, since changing it in place would not be seen; other names are guarded as in Python
  (srcgrad/guards.py regenerates when a name is rebound);
- compiled code is cached in-process with its generated variant (api.Transform: per argument kinds, while the
  guards hold), and on disk by numba's own cache where srcgrad/numba_cache.py can key it exactly (the text is then
  compiled from a file in srcgrad's cache directory, so a later process loads the compiled code).
"""

from __future__ import annotations

import ast
import linecache
import os
import re
import symtable
import types
import weakref
from typing import Any

import numpy as np

from srcgrad import digests, driver, locks, numba_cache, sourcetext
from srcgrad.emitter import Emitted
from srcgrad.emitter import compile_function as compile_python
from srcgrad.errors import Location, SrcgradError


class NumbaUnsupported(SrcgradError):
    """numba cannot compile the gradient of this code (the line and numba's reason are named)."""


def require() -> Any:
    """The numba module, or a SrcgradError saying how to install it."""
    try:
        import numba
    except ImportError:
        raise SrcgradError("backend='numba' needs numba, which is not installed",
                           hint="pip install 'srcgrad[numba]' (or use the default backend='python')") from None
    from srcgrad import numba_runtime  # noqa: F401 - the overloads numba needs (ranges, adjoint helpers)

    return numba


class NumbaBackend(driver.Backend):
    """Python text (as the Python backend writes it), compiled by ``numba.njit`` at the first call."""

    def emit(self, unit: driver.Unit, bound: dict[str, Any]) -> Emitted:
        return driver.PYTHON.emit(unit, bound)

    def compile(self, emitted: Emitted, user_func: Any, label: str) -> Any:
        return compile_function(emitted.source, emitted.name, emitted.bound, user_func, label)


NUMBA = NumbaBackend()


def compile_function(source: str, name: str, bound: dict[str, Any], user_func: Any, label: str) -> Any:
    """The function ``name`` of ``source`` compiled by numba, behind a Python function of the same signature."""
    numba = require()
    python = compile_python(Emitted(name, source, bound), user_func, label)  # its signature, defaults
    space = _user_names(source, bound, user_func)
    on_disk = numba_cache.source_file(source, _read_values(source, space, bound))
    filename = on_disk or _filename(source, label)
    dispatcher = numba.njit(cache=on_disk is not None)(_exec(source, space, filename)[name])
    _bind(space, bound)
    _SOURCES[filename] = _Source(source, user_func)
    return _wrapper(python, dispatcher)


def _read_values(source: str, space: dict[str, Any], bound: dict[str, Any]) -> dict[str, Any]:
    """The objects the names of ``source`` denote where numba compiles it (srcgrad's bound names, then the user's
    globals and closure values; builtins aside), by name: what numba's on-disk cache is keyed by besides the text."""
    values = {}
    for key in sorted({n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}):
        if key in bound:
            values[key] = bound[key]
        elif key in space and key != "__builtins__":
            values[key] = space[key]
    return values


def _user_names(source: str, bound: dict[str, Any], user_func: Any) -> dict[str, Any]:
    """The user's globals and closure values, the globals numba compiles the text in (srcgrad's names are added by
    :func:`_bind`). A user name bound to an array or a container is refused (numba would freeze a copy of it)."""
    space = dict(user_func.__globals__)
    code = user_func.__code__
    for free, cell in zip(code.co_freevars, user_func.__closure__ or ()):
        try:
            space[free] = cell.cell_contents
        except ValueError:
            continue
    for key in sorted(_global_reads(source) - set(bound)):
        if isinstance(space.get(key), (np.ndarray, list, dict)):
            raise NumbaUnsupported(
                f"the gradient reads the global `{key}` (a {type(space[key]).__name__}): numba compiles a copy of "
                f"it into the code, so a later change to it would not be seen",
                _definition(user_func), hint=f"pass `{key}` as an argument, or use backend='python'")
    return space


def _global_reads(source: str) -> set[str]:
    """The names the text reads as globals: what its functions do not bind themselves (a parameter or a local of the
    same name as a global of the user's is not the global), and what its top level reads without binding."""
    found: set[str] = set()
    tables = [symtable.symtable(source, "<srcgrad numba>", "exec")]
    while tables:
        table = tables.pop()
        if table.get_type() == "function":
            found.update(table.get_globals())
        else:
            found.update(s.get_name() for s in table.get_symbols() if s.is_referenced() and not s.is_assigned()
                         and not s.is_imported())
        tables.extend(table.get_children())
    return found


def _bind(space: dict[str, Any], bound: dict[str, Any]) -> None:
    """srcgrad's names in ``space``: their compiled twins, and the compiled functions of generated helpers. (After
    the text's own functions exist: numba reads the globals when it compiles, at the first call, so a helper that
    calls itself finds its own compiled function.)"""
    from srcgrad import numba_runtime

    for key, value in bound.items():
        space[key] = _helper_dispatcher(value) if _is_cell_ref(value) else numba_runtime.twin(value)


def _definition(user_func: Any) -> Location | None:
    from srcgrad.errors import definition_location

    return definition_location(user_func)


def _is_cell_ref(value: Any) -> bool:
    from srcgrad import calls

    return isinstance(value, calls.CellRef)


def _filename(source: str, label: str) -> str:
    """The file name the text is compiled under: numba's messages name it (and :func:`compile_failure` reads it)."""
    return f"<srcgrad numba {label} {digests.hex_digest(source, 10)}>"


def _exec(source: str, space: dict[str, Any], filename: str) -> dict[str, Any]:
    """Define the functions of ``source`` in ``space`` (under a file name linecache knows: numba's messages quote
    the lines); returns ``space``."""
    linecache.cache[filename] = (len(source), None, sourcetext.lines(source), filename)
    exec(compile(source, filename, "exec"), space)  # noqa: S102 - srcgrad's own generated text, checked by emit
    return space


# --- generated helper pairs ----------------------------------------------------------------------------------------

_HELPERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # HelperVariant -> {name: dispatcher}
_HELPERS_LOCK = locks.rlock()  # (re-entered: compiling a helper binds the helpers it calls)


def _helper_dispatcher(ref: Any) -> Any:
    """The compiled function behind a helper's cell (its forward, backward or tangent function)."""
    from srcgrad import calls

    for v in [*calls._VARIANTS.values(), *calls._JVP_VARIANTS.values()]:
        if v.fwd is ref or v.bwd is ref:
            compiled = _compiled_helper(v)
            return compiled[v.fwd_name if v.fwd is ref else v.bwd_name]
    raise SrcgradError("internal error: a generated helper of the numba backend was not found")


def _compiled_helper(v: Any) -> dict[str, Any]:
    """Both functions of a helper variant compiled (lazily: names resolve at their first call, so recursion works)."""
    with _HELPERS_LOCK:
        found = _HELPERS.get(v)
        return found if found is not None else _compile_helper(v)


def _compile_helper(v: Any) -> dict[str, Any]:
    numba = require()
    compiled: dict[str, Any] = {}
    _HELPERS[v] = compiled
    names = [n for n in (v.fwd_name, v.bwd_name) if n]
    try:
        filename = _filename(v.source, f"{v.func.__qualname__}:helper")
        space = _exec(v.source, _user_names(v.source, v.bound, v.func), filename)
        _SOURCES[filename] = _Source(v.source, v.func)
        for n in names:
            compiled[n] = numba.njit(space[n])
        _bind(space, v.bound)
    except BaseException:
        _HELPERS.pop(v, None)
        raise
    return compiled


# --- the wrapper and its errors ------------------------------------------------------------------------------------


class _Source:
    """The generated text and the user's function: maps a line of the text to the user's line it came from."""

    def __init__(self, source: str, user_func: Any):
        self.lines = source.split("\n")
        self.user_func = user_func

    def user_location(self, text_line: int) -> Location | None:
        """The user's line named by the nearest ``# line N:`` / ``# grad of line N:`` comment above ``text_line``."""
        filename = self.user_func.__code__.co_filename
        for i in range(min(text_line, len(self.lines)) - 1, -1, -1):
            found = re.match(r"\s*# (?:grad of )?(?:the loop at )?line (\d+)", self.lines[i])
            if found:
                line = int(found.group(1))
                return Location(filename, line, _indent(linecache.getline(filename, line)),
                                linecache.getline(filename, line))
        return _definition(self.user_func)


def _indent(text: str) -> int:
    return len(text.encode("utf-8")) - len(text.lstrip().encode("utf-8"))


_SOURCES: dict[str, _Source] = {}  # by the file name the text was compiled under


def compile_failure(exc: BaseException) -> NumbaUnsupported | None:
    """numba's compile error (raised at a call) as a NumbaUnsupported at the user's line; None for other errors."""
    from numba.core.errors import NumbaError

    return refusal(exc) if isinstance(exc, NumbaError) else None


def refusal(exc: BaseException) -> NumbaUnsupported:
    """numba's compile error as a NumbaUnsupported at the user's line, with numba's reason (its first lines)."""
    text = _plain(str(exc))
    found = [(known, n) for f, n in re.findall(r'File "([^"]*)", line (\d+)', text)  # (numba writes paths relative
             for known in {f, os.path.abspath(f)} & set(_SOURCES)]                     # to the working directory)
    where = _SOURCES.get(found[-1][0]) if found else None
    if where is None:
        return NumbaUnsupported(f"numba cannot compile the gradient: {text.strip().splitlines()[0] if text else exc}",
                                hint="use backend='python'")
    lines = [int(found[-1][1])]
    location = where.user_location(lines[-1])
    said = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Failed in")]
    reason = " ".join(said[:2]) if said and said[0].endswith(":") else (said[0] if said else text)
    statement = f" (in the generated statement `{where.lines[lines[-1] - 1].strip()}`)"
    return NumbaUnsupported(
        f"numba cannot compile the gradient of this line: {reason}{statement}", location,
        hint="use numpy and math functions numba supports (see numba's documentation), or backend='python'")


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _wrapper(python: types.FunctionType, dispatcher: Any) -> types.FunctionType:
    """A function with ``python``'s signature and defaults that calls ``dispatcher`` with every argument by position
    (numba takes no keyword-only parameters), and turns numba's compile errors into NumbaUnsupported. Its
    ``__srcgrad_compiled__`` is the dispatcher; ``__srcgrad_direct__`` too when a call may skip this function (the
    parameters are positional: the entry calls it so, and its failure handler reads :func:`compile_failure`)."""
    from numba.core.errors import NumbaError

    code = python.__code__
    params = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    positional = ", ".join(params[:code.co_argcount])
    keywords = ", ".join(params[code.co_argcount:])
    header = positional + (f", *, {keywords}" if keywords else "")
    text = (f"def {python.__name__}({header}):\n"
            f"    try:\n        return __compiled({', '.join(params)})\n"
            f"    except __numba_error as exc:\n        raise __refusal(exc) from None\n")
    space = {"__compiled": dispatcher, "__numba_error": NumbaError, "__refusal": refusal}
    exec(compile(text, f"<srcgrad numba call {python.__name__}>", "exec"), space)  # noqa: S102
    wrapper = space[python.__name__]
    wrapper.__defaults__ = python.__defaults__
    wrapper.__kwdefaults__ = python.__kwdefaults__
    wrapper.__doc__ = python.__doc__
    wrapper.__srcgrad_compiled__ = dispatcher  # (srcgrad/entry.py: never fused into the entry)
    if not keywords and python.__defaults__ is None:
        wrapper.__srcgrad_direct__ = dispatcher
    return wrapper


# --- emitted modules (``srcgrad emit --backend numba``) ------------------------------------------------------------


def check_emittable(generated: Any, user_func: Any, helpers: list[Any], imported: dict[str, Any]) -> None:
    """What numba cannot compile, refused as the module is emitted: a user global bound to an array or a container
    (numba would freeze a copy of it, as in-process), and a plain Python function of the user's the compiled code
    would call or take (``imported``: the module's names imported from the user's modules, by name)."""
    require()
    _user_names(generated.main, generated.bound, user_func)
    for variant in helpers:
        _user_names(variant.source, variant.bound, variant.func)
    for name, obj in sorted(imported.items()):
        if isinstance(obj, types.FunctionType):
            raise NumbaUnsupported(
                f"the gradient uses `{name}`, a Python function: numba's compiled code can call (or take) only "
                f"functions numba compiles", _definition(user_func),
                hint=f"decorate `{name}` with numba.njit (or register a derivative rule that numba can compile), "
                     "or emit without --backend numba")


def emitted_section(compiled: list[str], names: dict[str, Any], define: Any) -> str:
    """The end of a module emitted for numba: numba taught the helpers' copies and ranges (the typing functions of
    srcgrad/numba_runtime.py, copied), then each function of ``compiled`` (the gradient, the generated helpers, the
    runtime helpers numba compiles as written) replaced by ``numba.njit(cache=True)`` of itself. ``names``: the
    module's names so far (name -> the object it holds); ``define(ref, obj, origin)`` makes ``obj`` available at
    module level (imported or copied) and returns its name."""
    import operator

    from srcgrad import numba_runtime

    numba = require()
    numba_name = define("numba", numba, "global")
    registered = []
    for func, typing in numba_runtime.RANGES:
        target = (f"{define('operator', operator, 'global')}.getitem" if func is operator.getitem
                  else define(func.__name__, func, "srcgrad"))
        registered.append((target, typing))
    for name, obj in names.items():
        typing = numba_runtime.typing_of(obj)
        if typing is not None:
            registered.append((name, typing))
    lines = ["# --- numba: the code above compiled by numba's nopython mode at its first call, for the argument",
             "# types of that call (cache=True: kept on disk next to this file); numba is taught srcgrad's helpers",
             "# and ranges first"]
    lines += [f"{numba_name}.extending.overload({target})({define(typing.__name__, typing, 'srcgrad')})"
              for target, typing in registered]
    lines += [f"{name} = {numba_name}.njit(cache=True)({name})" for name in compiled]
    return "\n".join(lines) + "\n"


def taught(obj: Any) -> bool:
    """Whether numba is taught ``obj`` (a runtime helper with a twin in srcgrad/numba_runtime.py)."""
    from srcgrad import numba_runtime

    return numba_runtime.typing_of(obj) is not None
