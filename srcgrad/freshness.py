"""Freshness: is the source text srcgrad is about to read the text of the code the function actually runs?

In: a function and the lines :func:`inspect.getsourcelines` gave for it (with the file name and first line).
Out: the lines of the function's live code — those same lines, or the function's block re-read at the position the
file now holds it (lines were added above it; or ``func`` is a ``functools.wraps`` wrapper, whose source inspect
replaces with the wrapped function's) — or :class:`~srcgrad.errors.SourceUnavailable` when the file no longer holds
that code (it was edited after the module was imported, as in a notebook that does not reload what it edits).

What holds: the whole current text of the file, as :mod:`linecache` serves it to inspect (so text registered only in
linecache, such as IPython cells, is checked too), is compiled as a module — the same scopes, closures and
``__future__`` flags as when it was imported — and the function's code object is looked up in it by name and
compared with the live one: bytecode, names, variables, flags and constants, nested code objects alike, line numbers
aside (an edit elsewhere in the file that moves the function is not a change of the function). The compiled module
is cached per file and text, so repeated transforms of functions of one file compile it once. Code that a known
rewriter produced (pytest's assertion rewriting, srcgrad's own generated functions) is not checked: its text does
not compile to it.
"""

from __future__ import annotations
import __future__

import ast
import functools
import inspect
import linecache
import operator
import os
import sys
import types
from collections import OrderedDict
from typing import Any

from srcgrad import locks
from srcgrad.errors import Location, SourceUnavailable

# The compile flags `from __future__` imports set; a function inherits them from where it was compiled (a module's
# own imports, or an earlier IPython cell), so the check compiles with the live code's. (nested_scopes is CO_NESTED.)
_FUTURE_FLAGS = functools.reduce(operator.or_, (getattr(__future__, name).compiler_flag
                                                for name in __future__.all_feature_names if name != "nested_scopes"))
_MAX_FILES = 128
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_MAX_BLOCKS = 4096

_lock = locks.lock()
_modules: OrderedDict[tuple[str, int], _Compiled] = OrderedDict()
_imports: OrderedDict[int, tuple[list[str], tuple[str, list]]] = OrderedDict()  # id(linecache's lines) -> (them,
# the imports: text, statements)
_trees: OrderedDict[tuple[str, str], ast.Module] = OrderedDict()  # blocks parsed by the check, for the frontend
_MAX_TREES = 16
_blocks: OrderedDict[tuple[str, int, str], types.CodeType] = OrderedDict()  # a function's block, compiled


class _Compiled:
    """One file's text compiled as a module: every code object in it, by ``co_name`` (None: it does not compile)."""

    __slots__ = ("lines", "by_name")

    def __init__(self, lines: list[str], by_name: dict[str, list[types.CodeType]] | None):
        self.lines = lines  # kept so the identity test below stays valid (and equality is the fallback)
        self.by_name = by_name


_LOOK_UP: Any = object()  # (an argument not given: look it up)


def source_lines(func: Any, source_file: Any = _LOOK_UP) -> tuple[list[str], int]:
    """``inspect.getsourcelines(func)``, checked with :func:`checked_source`: the lines of ``func``'s live code and the
    file line of the first one. Raises OSError or TypeError as inspect does when there is no source, and
    :class:`SourceUnavailable` when the file no longer holds the function's code. (``source_file``: what
    ``inspect.getsourcefile(func)`` gives, when the caller has it.)"""
    if source_file is _LOOK_UP:
        source_file = inspect.getsourcefile(func)
    filename = source_file or func.__code__.co_filename
    try:
        lines, start = _getsourcelines(func, source_file)
    except OSError:
        # inspect looks the function up at the line it was defined on: gone when the file got shorter since
        if _unchecked(func.__code__, filename) or not linecache.getlines(filename):
            raise
        lines, start = [], 0
    return checked_source(func, filename, lines, start)


def _getsourcelines(func: Any, source_file: Any = _LOOK_UP) -> tuple[list[str], int]:
    """What ``inspect.getsourcelines(func)`` gives, without running Python's tokenizer over the block where the code
    object says where the block ends (the tokenizer is most of the time of reading a long function's source)."""
    target = inspect.unwrap(func)
    lines, first = _findsource(target, source_file if target is func else _LOOK_UP)
    end = block_end(getattr(target, "__code__", None), lines, first)
    if end is None:
        return inspect.getblock(lines[first:]), first + 1
    return lines[first:end], first + 1


def _findsource(func: Any, source_file: Any = _LOOK_UP) -> tuple[list[str], int]:
    """``inspect.findsource(func)`` for a function whose code's first line is its ``def`` (or first decorator), as
    Python 3.8 and later record it; inspect's own search otherwise (its pattern, compiled at its first use, is most
    of the time of a first gradient's reading of the source). (``source_file``: ``inspect.getsourcefile(func)``,
    when the caller has it.)"""
    code = getattr(func, "__code__", None)
    if code is None:
        filename = None
    else:
        filename = inspect.getsourcefile(func) if source_file is _LOOK_UP else source_file
    if filename is None:
        return inspect.findsource(func)
    linecache.checkcache(filename)
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    lines = linecache.getlines(filename, module.__dict__ if module is not None else None)
    first = code.co_firstlineno - 1
    if 0 <= first < len(lines) and lines[first].lstrip().startswith(("def ", "async def ", "@")):
        return lines, first
    return inspect.findsource(func)


def block_end(code: Any, lines: list[str], first: int) -> int | None:
    """The index after the last line of the block starting at ``lines[first]``, from the positions of ``code``'s
    instructions (and its nested code's): the last line any of them spans, when the next line that holds code is
    indented no deeper than the block's first line and the last line is in the body (else None: code the compiler
    dropped, such as statements after a ``return``, or a line the positions do not reach, and the tokenizer
    decides)."""
    if not isinstance(code, types.CodeType) or not hasattr(code, "co_positions") or first >= len(lines):
        return None
    last = _last_line(code)
    if last is None or last <= first or last > len(lines):
        return None
    indent = _indent(lines[first])
    if _indent(lines[last - 1]) <= indent:
        return None  # (the last line reached is not in the body: a docstring-only body, a one-line def)
    for line in lines[last:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return last if _indent(line) <= indent else None
    return last


def _last_line(code: types.CodeType) -> int | None:
    ends = [end for _, end, _, _ in code.co_positions() if end is not None]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            nested = _last_line(const)
            if nested is not None:
                ends.append(nested)
    return max(ends, default=None)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def checked_source(func: Any, filename: str, lines: list[str], start: int) -> tuple[list[str], int]:
    """The source lines of ``func``'s live code and the file line of the first one.

    ``lines`` and ``start`` are what ``inspect.getsourcelines(func)`` returned and ``filename`` the file it read;
    they are returned unchanged when they are the function's text. Raises :class:`SourceUnavailable` when the file
    no longer holds the code the function runs.
    """
    code = func.__code__
    if _unchecked(code, filename) or _as_imported(filename):
        return lines, start
    text = linecache.getlines(filename)
    if not text:
        return lines, start  # inspect found the text elsewhere (a loader): nothing here to compare it with
    if _block_is_code(lines, filename, code, text) and inspect.unwrap(func) is func:
        return lines, start
    compiled = _compiled(filename, text, code.co_flags & _FUTURE_FLAGS)
    found = _find(code, compiled)
    if found is None:
        raise SourceUnavailable(
            f"{os.path.basename(filename)} changed since {func.__qualname__} was defined: the file no longer holds "
            "the code the function runs, so its source cannot be read",
            Location(filename, code.co_firstlineno, 0),
            hint="reload the module (importlib.reload(module), then take the function from it again) or restart "
                 "the kernel or interpreter (if the file did not change, an import hook rewrote the function's code: "
                 "import it without that hook)",
        )
    first = found.co_firstlineno
    if first == start and inspect.unwrap(func) is func:
        return lines, start
    return inspect.getblock(text[first - 1:]), first


def fresh_source(func: Any) -> str | None:
    """``inspect.getsource(func)`` when it is the text of ``func``'s live code; None when there is no source or the
    file changed since ``func`` was defined."""
    try:
        return source(func)
    except (OSError, TypeError, AttributeError, SourceUnavailable):
        return None


def is_stale(func: Any) -> bool:
    """Whether ``func`` has source text that is not its code's (its file changed since it was defined)."""
    try:
        source(func)
    except SourceUnavailable:
        return True
    except (OSError, TypeError, AttributeError):
        return False
    return False


def source(func: Any) -> str:
    """Like ``inspect.getsource(func)`` (raising OSError or TypeError when there is none), but the text of the code
    ``func`` runs, or :class:`SourceUnavailable` when its file no longer holds it."""
    return "".join(source_lines(func)[0])


def _package_files() -> dict[str, tuple[int, int]]:
    """Size and modification time of each of srcgrad's own files, taken as srcgrad is imported."""
    files = {}
    for folder in (_PACKAGE_DIR, os.path.join(_PACKAGE_DIR, "rules")):
        with os.scandir(folder) as found:
            for item in found:
                if item.name.endswith(".py"):
                    st = item.stat()
                    files[item.path] = (st.st_size, st.st_mtime_ns)
    return files


def _as_imported(filename: str) -> bool:
    """One of srcgrad's own files (rules, runtime helpers), unchanged since srcgrad was imported: its text is the
    code's, without compiling anything."""
    known = PACKAGE_FILES.get(filename)
    if known is None:
        return False
    try:
        st = os.stat(filename)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == known


def _unchecked(code: types.CodeType, filename: str) -> bool:
    """Code whose text is known not to compile to it (then it is trusted, as before this check existed)."""
    if code.co_filename != filename:
        return True  # inspect read another file (a .pyc's source, a loader's): this check cannot redo its lookup
    if filename.startswith("<srcgrad "):
        return True  # srcgrad's generated code: compiled inside a scope function, shown without it; never edited
    return _assert_rewritten(code)


def _assert_rewritten(code: types.CodeType) -> bool:
    """pytest rewrites the ``assert`` statements of test modules into code with ``@py_assert`` locals."""
    if any(name.startswith("@py_assert") for name in code.co_varnames):
        return True
    return any(isinstance(c, types.CodeType) and _assert_rewritten(c) for c in code.co_consts)


def _block_is_code(lines: list[str], filename: str, code: types.CodeType, text: list[str]) -> bool:
    """The quick test, for a function defined at the top level of its module (no indentation, no free variables):
    does its block alone, after the module's top-level imports, compile to ``code``? Then those lines are its text,
    whatever the rest of the file holds. (Anything else — nested functions, methods, a block that differs — goes to
    the whole file.) The imports come along because they change the code of calls: ``np.sum(x)`` reads ``sum`` as a
    plain attribute, not a method, when ``np`` is a module the file imports."""
    if code.co_freevars or not lines or not lines[0].startswith(("def ", "@", "async def ")):
        return False  # (inspect may also give other lines: comments above, a block at a line that moved)
    flags = code.co_flags & _FUTURE_FLAGS
    block = "".join(lines)
    imports = _top_level_imports(text)
    key = (filename, flags, imports[0] + block)
    with _lock:
        known = _blocks.get(key)
    if known is not None:
        return known is code or _same_code(known, code)
    try:
        tree = ast.parse(block, filename, feature_version=None)
        module = compile(ast.Module(body=[*imports[1], *tree.body], type_ignores=[]), filename, "exec", flags=flags,
                         dont_inherit=True, optimize=sys.flags.optimize)
    except (SyntaxError, ValueError, OverflowError, RecursionError, TypeError):
        return False
    found = next((c for c in module.co_consts if isinstance(c, types.CodeType) and c.co_name == code.co_name), None)
    if found is None:
        return False
    with _lock:
        _blocks[key] = found
        while len(_blocks) > _MAX_BLOCKS:
            _blocks.popitem(last=False)
        _trees[(filename, block)] = tree  # (the parse the frontend would do next: parsed_block hands it over)
        while len(_trees) > _MAX_TREES:
            _trees.popitem(last=False)
    return _same_code(found, code)


def parsed_block(filename: str, block: str) -> ast.Module | None:
    """The tree of ``block`` (a function's lines from ``filename``) as the freshness check just parsed it, once (it
    is handed over: the caller owns it), or None."""
    with _lock:
        return _trees.pop((filename, block), None)


def _top_level_imports(text: list[str]) -> tuple[str, list[ast.stmt]]:
    """The ``import``/``from`` statements at the left margin of a file's text (continuation lines included), as text
    and parsed (no statements when they do not parse on their own)."""
    with _lock:
        known = _imports.get(id(text))
    if known is not None and known[0] is text:
        return known[1]
    scanned = _scan_imports(text)
    try:
        statements = ast.parse(scanned).body
    except (SyntaxError, ValueError, RecursionError):
        statements = []
    found = (scanned, statements)
    with _lock:
        _imports[id(text)] = (text, found)
        while len(_imports) > _MAX_FILES:
            _imports.popitem(last=False)
    return found


def _scan_imports(text: list[str]) -> str:
    out: list[str] = []
    open_parens = 0
    continued = False
    for line in text:
        if open_parens or continued or line.startswith(("import ", "from ")):
            out.append(line if line.endswith("\n") else line + "\n")
            code = line.split("#", 1)[0]
            open_parens = max(0, open_parens + code.count("(") - code.count(")"))
            continued = code.rstrip().endswith("\\")
    return "".join(out)


def _compiled(filename: str, text: list[str], flags: int) -> _Compiled:
    key = (filename, flags)
    with _lock:
        entry = _modules.get(key)
        if entry is not None and (entry.lines is text or entry.lines == text):
            _modules.move_to_end(key)
            return entry
    try:
        module = compile("".join(text), filename, "exec", flags=flags, dont_inherit=True,
                         optimize=sys.flags.optimize)
    except (SyntaxError, ValueError, OverflowError, RecursionError):  # the edited file does not compile (any more)
        by_name = None
    else:
        by_name = {}
        _index(module, by_name)
    entry = _Compiled(text, by_name)
    with _lock:
        _modules[key] = entry
        _modules.move_to_end(key)
        while len(_modules) > _MAX_FILES:
            _modules.popitem(last=False)
    return entry


def _index(code: types.CodeType, by_name: dict[str, list[types.CodeType]]) -> None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            by_name.setdefault(const.co_name, []).append(const)
            _index(const, by_name)


def _find(code: types.CodeType, compiled: _Compiled) -> types.CodeType | None:
    """The code object of the compiled file that is ``code`` (line numbers aside), preferring the one with the same
    qualified name (3.11+) and then the nearest first line; None when there is none."""
    if compiled.by_name is None:
        return None
    same = [c for c in compiled.by_name.get(code.co_name, ()) if _same_code(c, code)]
    if not same:
        return None
    qualname = getattr(code, "co_qualname", None)
    return min(same, key=lambda c: (getattr(c, "co_qualname", None) != qualname,
                                    abs(c.co_firstlineno - code.co_firstlineno)))


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    # co_firstlineno and the line tables are not compared: moving a function is not changing it.
    return a is b or (
        a.co_code == b.co_code and a.co_names == b.co_names and a.co_varnames == b.co_varnames
        and a.co_freevars == b.co_freevars and a.co_cellvars == b.co_cellvars and a.co_flags == b.co_flags
        and a.co_argcount == b.co_argcount and a.co_posonlyargcount == b.co_posonlyargcount
        and a.co_kwonlyargcount == b.co_kwonlyargcount and a.co_name == b.co_name
        and getattr(a, "co_exceptiontable", b"") == getattr(b, "co_exceptiontable", b"")
        and _same_const(a.co_consts, b.co_consts)
    )


def _same_const(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, types.CodeType):
        return _same_code(a, b)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same_const(x, y) for x, y in zip(a, b))
    if isinstance(a, frozenset):
        return sorted(map(repr, a)) == sorted(map(repr, b))
    return repr(a) == repr(b)  # by repr: -0.0 is not 0.0, and a NaN is a NaN


def _clear() -> None:
    """Forget every compiled file (tests)."""
    with _lock:
        _modules.clear()
        _blocks.clear()
        _imports.clear()


# Taken as srcgrad is imported (srcgrad/__init__ imports every module, the rules included, before any is read).
PACKAGE_FILES = _package_files()

__all__ = ["checked_source", "fresh_source", "is_stale", "source", "source_lines"]
