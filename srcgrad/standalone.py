"""Ahead-of-time emit: a function in, the text of a standalone Python module holding its gradient out.

In: a user function defined at module level (or a function made by ``srcgrad.grad``), ``wrt`` and a mode. Out: the
source of a module that defines ``<name>_grad`` (listed in ``__all__``) and never imports srcgrad.
What holds:
- the gradient is the generic variant (valid for Python numbers and arrays alike), the same code ``srcgrad.source``
  shows for a function that has not been called yet;
- every name the code uses is defined by the module: ``import`` for modules (``math``, ``numpy as np``...);
  ``from <user module> import NAME`` for the user's own globals, bound when the emitted module is imported
  (rebinding the global later is not seen, unlike with ``srcgrad.grad``) — a function or class is imported from the
  module that defines it, so a module of helpers without srcgrad suffices even when the model's own module uses
  ``srcgrad.defgrad``; a copy of the source of every srcgrad helper the code calls (runtime helpers, rule functions,
  the generated forward/backward pairs of the user's helper functions), transitively, so nothing refers back to
  srcgrad. The checks of :mod:`srcgrad.checks` are replaced by their twins in :mod:`srcgrad.runtime`, which raise
  ``ValueError`` (srcgrad's own errors live in srcgrad);
- the module's function checks at its start what an in-process call checks about the arguments and the generic
  code assumes (:func:`_argument_checks`: a loop walks a sequence or an array, not a dict or a set; a parameter whose
  attributes are read holds no value in-process reads as a structure, unless the example gave it one), a ValueError
  otherwise;
- defaults are the values the function has (``__defaults__``, ``__kwdefaults__``), written as literals that evaluate
  back to them exactly, as the module attribute the source names (``np.tanh``), or imported as the very module-level
  object; anything else is refused;
- a copied helper keeps its text (comments included); only its name, and the names it refers to, change when two
  objects want the same module-level name;
- the text is deterministic: the same function, wrt, mode and srcgrad version give byte-identical output (no
  timestamps, no absolute paths). The header names the srcgrad version and the sha256 of the differentiated
  functions' source, and ``is_current`` (``srcgrad emit --check``) compares a file with a fresh emit.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import keyword
import math
import os
import sys
import textwrap
import types
from collections import abc
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

import gast
import numpy as np

from srcgrad import api, calls, checks, digests, freshness, naming, printer, runtime, sourcetext, structures
from srcgrad.errors import InternalError, InvalidArgument, SrcgradError
from srcgrad.records import record
from srcgrad.version import __version__

_MISSING = object()


# srcgrad objects replaced by another definition in a standalone module: the in-process checks by their twins in
# srcgrad.runtime, which raise ValueError (srcgrad's own errors live in srcgrad).
_SUBSTITUTES: dict[int, Any] = {id(check): twin for check, twin in checks.STANDALONE_TWINS.items()}


class EmitError(SrcgradError):
    """The function cannot be written as a standalone module (e.g. it uses a closure variable)."""


def emit(func: Callable[..., Any], wrt: int | str | tuple[int | str, ...] | None = None, *, mode: str | None = None,
         module: str | None = None, example: tuple[Any, ...] | None = None, backend: str = "python") -> str:
    """The text of a standalone module with the gradient of ``func`` (it never imports srcgrad).

    ``wrt`` and ``mode`` (``"grad"``, ``"value_and_grad"`` or ``"vjp"``) default to those of a function made by
    ``srcgrad.grad``/``value_and_grad``/``vjp``, else to ``0`` and ``"grad"``. ``module`` is the import name of the
    module that defines ``func`` (default: ``func.__module__``, or the file's stem for a script run as
    ``__main__``); the emitted module imports the user's globals from it. ``example``: arguments (a tuple, in
    parameter order) whose structures the gradient is written for when parameters are dicts, lists, tuples,
    namedtuples, dataclasses or registered classes: the module reads their leaves and rebuilds the gradient in the
    same structure (it imports the classes from their modules), checks that its arguments have those structures
    (ValueError otherwise), and takes every leaf as a number or an array of any shape. ``backend="numba"``: the
    module imports numba and compiles the same text with ``numba.njit(cache=True)`` (what numba cannot compile is
    refused here; structured parameters too, as in-process).
    """
    return build(func, wrt, mode=mode, module=module, example=example, backend=backend).text


@record
class EmittedModule:
    """What :func:`build` returns: the module text and what the command line reports about it."""

    text: str  # the module source
    name: str  # the gradient function's name
    spec: str  # how to name the function to `srcgrad emit` (module.py:func or package.module:func)
    module: str  # the user module the emitted one imports from


def build(func: Callable, wrt: int | str | tuple | None = None, *, mode: str | None = None,
          module: str | None = None, example: tuple[Any, ...] | None = None,
          example_text: str | None = None, backend: str = "python") -> EmittedModule:
    """Like :func:`emit`, with the gradient function's name and the user's module name; ``example_text``: how the
    command line wrote ``example`` (its ``--args``, repeated in the header's command)."""
    transform = getattr(func, "__srcgrad_transform__", None)
    if transform is not None:
        func = transform.func
        if wrt is None:
            wrt = tuple(transform.wrt) if transform.as_tuple else transform.wrt[0]
        mode = mode or transform.mode
    wrt = 0 if wrt is None else wrt
    mode = mode or "grad"
    if mode not in ("grad", "value_and_grad", "vjp"):
        raise InvalidArgument(f"mode must be 'grad', 'value_and_grad' or 'vjp', got {mode!r}")
    if backend not in ("python", "numba"):
        raise InvalidArgument(f"backend must be 'python' or 'numba', got {backend!r}")
    transform = api.Transform(func, wrt, mode)
    generated = transform.generic(None if example is None else tuple(example))
    home = module or _module_name(func)
    writer = _ModuleWriter(home, _user_files(transform, generated))
    # (numba refuses a dict, a set or an iterator argument itself: its compiled code cannot take the check)
    argument_checks = [] if backend == "numba" else _argument_checks(transform, example)
    main_name = writer.add_main(generated, transform.pf, argument_checks)
    args_option = "" if not getattr(generated, "structured", False) else \
        f" --args {example_text}" if example_text else " --args <arguments of the same structures>"
    if backend == "numba":
        if getattr(generated, "structured", False):
            raise EmitError("the numba backend does not take structured parameters (dicts, lists, tuples, "
                            "namedtuples, dataclasses, registered classes)", transform.pf.location(transform.pf.node),
                            hint="emit without --backend numba, or pass the leaves as separate arguments")
        _add_numba(writer, main_name, transform, generated)
    text = _assemble(writer, main_name, transform, generated, home, args_option)
    _check_module(text, writer.meant, transform.pf)
    return EmittedModule(text, main_name, _spec(func, home), home)


def is_current(path: str | os.PathLike, text: str) -> bool:
    """Whether the file at ``path`` holds exactly ``text`` (what ``emit --check`` tests)."""
    try:
        return Path(path).read_bytes() == text.encode("utf-8")
    except OSError:
        return False


def is_emitted(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` is a module ``emit`` wrote: its header comments (``# srcgrad-version:`` and
    ``# srcgrad-source:``) come before its first import."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", errors="replace")
    except OSError:
        return False
    found = set()
    for line in sourcetext.lines(head):
        if line.startswith(("import ", "from ", "__all__")):
            break
        found.update(tag for tag in ("# srcgrad-version: ", "# srcgrad-source: ") if line.startswith(tag))
    return len(found) == 2


def write(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` with ``\\n`` line ends whatever the platform, so the bytes are the same everywhere."""
    Path(path).write_bytes(text.encode("utf-8"))


# --- names ---------------------------------------------------------------------------------------------------------


def _module_name(func: Callable) -> str:
    name = getattr(func, "__module__", None) or "__main__"
    if name == "__main__":
        filename = inspect.getsourcefile(func) or func.__code__.co_filename
        return Path(filename).stem
    return name


def _spec(func: Callable, home: str) -> str:
    qualname = func.__qualname__
    filename = inspect.getsourcefile(func) or func.__code__.co_filename
    if "." not in home and Path(filename).stem == home:
        return f"{Path(filename).name}:{qualname}"
    return f"{home}:{qualname}"


def _wrt_option(transform: api.Transform) -> str:
    return ",".join(transform.wrt)


# --- the writer ----------------------------------------------------------------------------------------------------


@record
class _Definition:
    name: str
    text: str
    origin: str  # where the copied text comes from, for a comment


@record
class _ModuleWriter:
    """Gives every object the emitted code needs one module-level name and a definition (import or copied text)."""

    home: str  # the user's module
    user_files: dict[str, str] = field(default_factory=dict)  # path of a differentiated function's file -> base name
    names: dict[str, Any] = field(default_factory=dict)  # module-level name -> object
    by_id: dict[int, str] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # name -> "import x as y" (modules)
    from_imports: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # module -> [(attr, name)]
    definitions: list[_Definition] = field(default_factory=list)
    queue: list[tuple[str, Any, str]] = field(default_factory=list)  # (name, object to copy, origin)
    keep: list[Any] = field(default_factory=list)  # objects kept alive while their id() is a key
    meant: dict[str, ast.AST] = field(default_factory=dict)  # module-level name -> the definition it must read as
    tail: str = ""  # module-level statements after the definitions (numba's compilation of them)

    def reserve(self, preferred: str, obj: Any) -> tuple[str, bool]:
        """The module-level name of ``obj`` and whether it is new."""
        if id(obj) in self.by_id:
            return self.by_id[id(obj)], False
        name = naming.fresh(preferred, self.names)
        self.names[name] = obj
        self.by_id[id(obj)] = name
        self.keep.append(obj)
        return name, True

    # --- entry points --------------------------------------------------------------------------------------------

    def add_main(self, generated: Any, pf: Any, checks: list[tuple[Any, str, Any]]) -> str:
        """The gradient function (``generated.main``), with the ``checks`` of its arguments at its start (see
        :func:`_argument_checks`), and everything it needs; its module-level name."""
        text = generated.main  # the function as printed and checked (its helpers are copied as they are needed)
        tree = ast.parse(text)
        name = tree.body[0].name
        text, checks_named = _with_argument_checks(text, tree.body[0], checks, pf)
        self.names[name] = generated.function
        self.by_id[id(generated.function)] = name

        cells = getattr(generated, "front_cells", {})  # (what the front of structured parameters reads)

        def lookup(ref: str) -> tuple[Any, str]:
            if ref in checks_named:
                return checks_named[ref]
            if ref in cells:
                return cells[ref], _front_origin(cells[ref])
            if ref in generated.bound:
                return generated.bound[ref], "srcgrad"
            if pf.is_closure_name(ref):
                raise EmitError(
                    f"cannot emit {pf.name} as a standalone module: it uses `{ref}`, a variable of an enclosing "
                    "function", pf.location(pf.node),
                    hint="define the function at module level (pass such values as arguments or module globals)",
                )
            scope = pf.func.__globals__
            if ref in scope:
                return scope[ref], "global"
            if hasattr(builtins, ref):
                return getattr(builtins, ref), "builtin"
            if ref in ("np", "math"):  # spelled by srcgrad's code generator itself
                return (np if ref == "np" else __import__("math")), "srcgrad"
            raise EmitError(f"cannot emit {pf.name}: the generated code uses `{ref}`, which is not defined",
                            pf.location(pf.node))

        # The edits below (defaults written as values, file paths as base names) are deliberate, and the module is
        # checked against them.
        text = self.with_default_values(text, pf)
        body = self.rewrite(text, name, lookup, self.home)
        self.definitions.insert(0, _Definition(name, body, ""))
        self.drain()
        return name

    def with_default_values(self, text: str, pf: Any) -> str:
        """``text`` (the gradient's ``def``) with each default written as the value the user's function has
        (``__defaults__``, ``__kwdefaults__``), not as the expression that computed it: a literal when one gives the
        value back exactly, else the module-level name that holds that very object, imported."""
        node = ast.parse(text).body[0]
        args = node.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        parameters = inspect.signature(pf.func).parameters
        edits = []
        for arg, default in pairs:
            value = parameters[arg.arg].default
            new = self.default_text(value, default, arg.arg, pf)
            edits.append((default.lineno, default.col_offset, default.end_lineno, default.end_col_offset, new))
        return _edit(text, edits)

    def default_text(self, value: Any, written: ast.expr, param: str, pf: Any) -> str:
        """The text of one default: a literal, the module attribute the source wrote (``np.tanh``), or the name of
        the module-level object that is the value."""
        np_name = self.define("np", np, "srcgrad", self.home) if _is_plain_numpy(value) else "np"
        literal = _literal(value, np_name)
        if literal is not None and _evaluates_to(literal, value, np_name):
            return literal
        if _module_attribute(written, pf.func.__globals__) is value:
            return ast.unparse(written)  # its root module is imported like every module the code names
        module = sys.modules.get(getattr(pf.func, "__module__", "") or "")
        names = sorted(n for n, v in vars(module).items() if v is value) if module is not None else []
        if names:  # the module-level object itself (by the name the source wrote, when it is one of them)
            ref = written.id if isinstance(written, ast.Name) and written.id in names else names[0]
            return self.define(ref, value, "global", self.home)
        raise EmitError(
            f"cannot emit {pf.name}: the default value of `{param}` ({type(value).__name__}) can be neither written "
            "as a literal nor imported from a module", pf.location(_user_default(pf, param)),
            hint="give the default as a literal or a module-level constant, or make the parameter required",
        )

    def drain(self) -> None:
        while self.queue:
            name, obj, origin = self.queue.pop(0)
            self.copy(name, obj, origin)

    # --- one definition ------------------------------------------------------------------------------------------

    def copy(self, name: str, obj: Any, origin: str) -> None:
        text = _source_of(obj)
        closure = {}
        code = getattr(obj, "__code__", None)
        if code is not None and obj.__closure__:
            closure = dict(zip(code.co_freevars, obj.__closure__))
        if isinstance(obj, type):
            namespace = vars(sys.modules[obj.__module__])
        else:
            namespace = getattr(obj, "__globals__", {})
        generated = _is_generated(obj)

        def lookup(ref: str) -> tuple[Any, str]:
            if ref in closure:
                try:
                    value = closure[ref].cell_contents
                except ValueError:
                    raise EmitError(f"cannot emit: `{ref}` in {origin} is not bound yet") from None
                return value, "srcgrad"  # closures of srcgrad code hold what srcgrad provides
            if ref in namespace:
                value = namespace[ref]
                if generated:
                    return value, "global"  # generated code runs in the user's module globals
                return value, "srcgrad" if _is_srcgrad_module(namespace.get("__name__", "")) else "global"
            if hasattr(builtins, ref):
                return getattr(builtins, ref), "builtin"
            raise EmitError(f"cannot emit: {origin} uses `{ref}`, which is not defined")

        home = namespace.get("__name__", self.home)
        if home == "__main__":
            home = self.home
        body = self.rewrite(text, name, lookup, home)
        self.definitions.append(_Definition(name, body, origin))

    def rewrite(self, text: str, name: str, lookup: Callable[[str], tuple[Any, str]], home: str) -> str:
        """Give ``text`` (one def or class) the module-level ``name``; define every free name it refers to.
        Records in ``self.meant`` the tree the result must read back as: ``text``'s own with the same renames."""
        text = self.without_paths(text)
        tree = ast.parse(text)
        node = tree.body[0]
        renames: dict[str, str] = {}
        for ref in _free_names(node):
            obj, origin = lookup(ref)
            target = self.define(ref, obj, origin, home)
            if target is not None and target != ref:
                if target in _local_names(node):
                    raise EmitError(f"cannot emit: the name `{target}` means two things in the copy of {name}")
                renames[ref] = target
        out = _rename(text, node, name, renames)
        self.meant[name] = _renamed(node, name, renames)
        return out

    def without_paths(self, text: str) -> str:
        """``text`` with the user's file paths (generated checks name the file of the line they check) written as
        base names: the module is the same bytes on every machine."""
        edits = [(n.lineno, n.col_offset, n.end_lineno, n.end_col_offset, repr(self.user_files[n.value]))
                 for n in ast.walk(ast.parse(text))
                 if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in self.user_files]
        return _edit(text, edits) if edits else text

    def define(self, ref: str, obj: Any, origin: str, home: str) -> str | None:
        """Make ``obj`` available at module level (preferably as ``ref``); its module-level name (None: a builtin)."""
        if origin == "srcgrad" and _is_builtin(obj):  # a builtin srcgrad's code calls: the builtin, whatever else
            return self.define_builtin(ref, obj)        # the module defines under that name
        if origin == "builtin":
            if ref in self.names and self.names[ref] is not obj:
                raise EmitError(f"cannot emit: `{ref}` is both the builtin and a copied name")
            return None
        obj = _unwrapped(obj)
        if _importable_module(obj):
            name, new = self.reserve(ref, obj)
            if new:
                self.imports[name] = _import_line(obj.__name__, name)
            return name
        if isinstance(obj, types.ModuleType) and origin != "global":  # srcgrad's code names only real modules
            raise EmitError(f"cannot emit: the code uses `{ref}`, a module object that no import gives back")
        if _copyable(obj, origin):
            name, new = self.reserve(ref, obj)
            if new:
                self.queue.append((name, obj, _origin(obj)))
            return name
        if origin == "srcgrad":
            return self.literal(ref, obj)
        source_module, attr = _defining_module(obj) or (home, ref)
        name, new = self.reserve(ref, obj)
        if new:
            self.from_imports.setdefault(source_module, []).append((attr, name))
        return name

    def define_builtin(self, ref: str, obj: Any) -> str:
        """A builtin srcgrad's code calls, as ``builtins.<name>`` when ``ref`` is taken."""
        name, new = self.reserve(ref, obj)
        if new and name != obj.__name__:
            if self.names.setdefault("builtins", builtins) is not builtins:
                raise EmitError("cannot emit: `builtins` names something else in the copied code")
            self.imports["builtins"] = "import builtins"
            self.definitions.append(_Definition(name, f"{name} = builtins.{obj.__name__}\n", "constant"))
        return name

    def literal(self, ref: str, obj: Any) -> str:
        text = repr(obj)
        try:
            ok = ast.literal_eval(text) == obj
        except (ValueError, SyntaxError):
            ok = False
        if not ok:
            raise EmitError(f"cannot emit: the generated code uses `{ref}` ({type(obj).__name__}), which cannot be "
                            "written into a module")
        name, new = self.reserve(ref, obj)
        if new:
            self.definitions.append(_Definition(name, f"{name} = {text}\n", "constant"))
        return name


def _front_origin(obj: Any) -> str:
    """How the module defines what the front of structured parameters reads: the generated function of leaves is
    copied, the user's classes and flatten/unflatten functions imported, aux data written as a literal."""
    if _is_generated(obj):
        return "srcgrad"
    if isinstance(obj, (type, types.FunctionType)):
        if obj.__name__ == "<lambda>":
            raise EmitError(f"cannot emit: the module would import {obj.__qualname__}, a lambda, which has no name to "
                            "import", hint="register the structure with functions defined with def at module level")
        return "global"
    return "srcgrad"


def _unwrapped(obj: Any) -> Any:
    """The object to define for ``obj``: its substitute, or the helper pair a generated wrapper shares in a cell."""
    substitute = _SUBSTITUTES.get(id(obj))
    if substitute is not None:
        obj = substitute
    cell = getattr(obj, "cell", None)
    if isinstance(cell, types.CellType):  # a generated helper pair, shared through a cell
        obj = cell.cell_contents
    return obj


def _importable_module(obj: Any) -> bool:
    """Is ``obj`` a module that ``import <its name>`` gives back? A module object made at run time
    (``types.ModuleType("cfg")``) is not: it is imported from the user's module like any other global."""
    return isinstance(obj, types.ModuleType) and sys.modules.get(obj.__name__) is obj


def _copyable(obj: Any, origin: str) -> bool:
    """Is ``obj`` a function or class whose text is copied into the module?"""
    return isinstance(obj, (types.FunctionType, type)) and (
        origin == "srcgrad" or _is_generated(obj) or _is_srcgrad_module(getattr(obj, "__module__", "") or ""))


# --- text surgery --------------------------------------------------------------------------------------------------


def _source_of(obj: Any) -> str:
    try:  # a function's text only if it is still the code it runs (its file may have changed since it was defined)
        text = freshness.source(obj) if inspect.isfunction(obj) else inspect.getsource(obj)
    except (OSError, TypeError) as exc:
        raise EmitError(f"cannot emit: the source of {getattr(obj, '__qualname__', obj)!r} is not available "
                        f"({exc})") from None
    text = textwrap.dedent(text)
    node = ast.parse(text).body[0]
    return "".join(sourcetext.lines(text)[node.lineno - 1:])  # without decorators


def _local_names(node: ast.AST) -> set[str]:
    names = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
        for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
            if a is not None:
                names.add(a.arg)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            names.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub is not node:
            names.add(sub.name)
            for a in sub.args.posonlyargs + sub.args.args + sub.args.kwonlyargs:
                names.add(a.arg)
        elif isinstance(sub, ast.Lambda):
            for a in sub.args.posonlyargs + sub.args.args + sub.args.kwonlyargs:
                names.add(a.arg)
        elif isinstance(sub, ast.ExceptHandler) and sub.name:
            names.add(sub.name)
    return names


def _free_name_nodes(node: ast.AST) -> list[ast.Name]:
    """The names ``node`` (a def or class, decorators excluded) reads from outside itself, in source order."""
    found: list[ast.Name] = []
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local = _local_names(node)
        roots = [node.args, *node.body] + ([node.returns] if node.returns else [])
        found = [n for r in roots for n in _loaded_names(r) if n.id not in local]
    elif isinstance(node, ast.ClassDef):
        found = _class_free_name_nodes(node)
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def _loaded_names(root: ast.AST) -> list[ast.Name]:
    return [n for n in ast.walk(root) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]


def _class_free_name_nodes(node: ast.ClassDef) -> list[ast.Name]:
    """``_free_name_nodes`` of a class (not yet in source order)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    class_level = {n.id for stmt in node.body if not isinstance(stmt, functions)
                   for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    class_level |= {stmt.name for stmt in node.body if isinstance(stmt, (*functions, ast.ClassDef))}
    found: list[ast.Name] = []
    for part in [*node.bases, *node.keywords]:
        found.extend(_loaded_names(part))
    for stmt in node.body:
        if isinstance(stmt, functions):
            found.extend(_free_name_nodes(stmt))
        else:
            found.extend(n for n in _loaded_names(stmt) if n.id not in class_level)
    return found


def _free_names(node: ast.AST) -> list[str]:
    out: list[str] = []
    for n in _free_name_nodes(node):
        if n.id not in out:
            out.append(n.id)
    return out


def _rename(text: str, node: ast.AST, name: str, renames: dict[str, str]) -> str:
    """``text`` with the definition named ``name`` and free names renamed (by position: comments are kept)."""
    edits: list[tuple[int, int, int, int, str]] = []
    for n in _free_name_nodes(node):
        if n.id in renames:
            edits.append((n.lineno, n.col_offset, n.end_lineno, n.end_col_offset, renames[n.id]))
    keyword = b"class " if isinstance(node, ast.ClassDef) else b"def "
    head = sourcetext.lines(text)[node.lineno - 1].encode("utf-8")
    start = head.index(keyword) + len(keyword)
    if node.name != name:
        edits.append((node.lineno, start, node.lineno, start + len(node.name.encode("utf-8")), name))
    out = _edit(text, edits)
    return out if out.endswith("\n") else out + "\n"


def _edit(text: str, edits: list[tuple[int, int, int, int, str]]) -> str:
    """``text`` with each span (line, byte column, end line, end byte column — as the ast gives positions) replaced
    by its new text; spans do not overlap."""
    lines = [ln.encode("utf-8") for ln in sourcetext.lines(text)]
    for line, col, end_line, end_col, new in sorted(edits, reverse=True):
        first, last = lines[line - 1], lines[end_line - 1]
        lines[line - 1:end_line] = [first[:col] + new.encode("utf-8") + last[end_col:]]
    return b"".join(lines).decode("utf-8")


def _literal(value: Any, np_name: str) -> str | None:
    """Source text that evaluates to ``value`` exactly (same type, same value) — numbers, strings, bytes, None,
    tuples and lists of them, numpy scalars and arrays of real numbers — or None. ``np_name``: numpy's name."""
    kind = type(value)
    if value is None or kind in (bool, int, str, bytes):
        return repr(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
    if kind in (tuple, list):
        items = [_literal(v, np_name) for v in value]
        if any(item is None for item in items):
            return None
        inner = ", ".join(items) + ("," if kind is tuple and len(items) == 1 else "")
        return f"({inner})" if kind is tuple else f"[{inner}]"
    if _is_plain_numpy(value):  # .tolist() gives Python numbers that hold these dtypes' values exactly
        items = _literal(value.tolist(), np_name)
        if kind is not np.ndarray:
            return f"{np_name}.dtype({value.dtype.name!r}).type({items})"
        text = f"{np_name}.array({items}, dtype={value.dtype.name!r})"
        return text if value.size else f"{text}.reshape({value.shape!r})"
    return None


def _module_attribute(node: ast.expr, scope: dict) -> Any:
    """The object ``node`` — an attribute chain rooted at a module, such as ``np.tanh`` — denotes in ``scope``
    now; ``_MISSING`` for any other expression."""
    if isinstance(node, ast.Attribute):
        base = _module_attribute(node.value, scope)
        return _MISSING if base is _MISSING else getattr(base, node.attr, _MISSING)
    if isinstance(node, ast.Name) and isinstance(scope.get(node.id), types.ModuleType):
        return scope[node.id]
    return _MISSING


def _user_default(pf: Any, param: str) -> Any:
    """The default expression of parameter ``param`` in the user's source (its ``def`` when there is none)."""
    args = pf.node.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
    pairs += list(zip(args.kwonlyargs, args.kw_defaults))
    return next((d for a, d in pairs if a.id == param and d is not None), pf.node)


def _is_plain_numpy(value: Any) -> bool:
    """A numpy array (not a subclass) or scalar of booleans, integers or floats of at most 64 bits."""
    if type(value) is not np.ndarray and not (isinstance(value, np.generic) and type(value) is value.dtype.type):
        return False
    return value.dtype.kind in "biuf" and value.dtype.isnative and value.dtype.itemsize <= 8


def _evaluates_to(text: str, value: Any, np_name: str) -> bool:
    """Whether ``text`` (made by :func:`_literal` from numbers) evaluates to ``value`` exactly."""
    return _same(eval(text, {"__builtins__": {"float": float}, np_name: np}), value)


def _same(got: Any, value: Any) -> bool:
    """Same type and value (NaNs alike; arrays of the same dtype and shape)."""
    if type(got) is not type(value):
        return False
    if isinstance(value, (np.ndarray, np.generic)):
        return got.dtype == value.dtype and got.shape == value.shape and np.array_equal(got, value, equal_nan=True)
    if isinstance(value, (tuple, list)):
        return len(got) == len(value) and all(_same(g, v) for g, v in zip(got, value))
    if isinstance(value, float) and math.isnan(value):
        return math.isnan(got)
    return got == value
def _renamed(node: ast.AST, name: str, renames: dict[str, str]) -> ast.AST:
    """``node`` (changed in place) with the name ``name`` and its free names renamed, as :func:`_rename` does."""
    for n in _free_name_nodes(node):
        n.id = renames.get(n.id, n.id)
    node.name = name
    return node


def _check_module(text: str, meant: dict[str, ast.AST], pf: Any) -> None:
    """The module text must parse, and each definition in it read back as the tree it was meant to be (the generated
    code as printed, helpers as written, with their renames): else an InternalError, and nothing is written."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise _emit_bug(pf, f"is not valid Python ({exc})") from exc
    found = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for name, node in meant.items():
        if name not in found:
            raise _emit_bug(pf, f"has no definition of {name}")
        if not printer.same_tree(node, found[name]):
            raise _emit_bug(pf, f"does not read back as the code srcgrad meant, in {name}")


def _emit_bug(pf: Any, problem: str) -> InternalError:
    return InternalError(f"internal error while emitting {pf.name}: the module text {problem}", pf.location(pf.node),
                         hint="this is a bug in srcgrad; please report it with this function")


def _defining_module(obj: Any) -> tuple[str, str] | None:
    """Where a function or class is defined, when it can be imported from there by its name (so that a helper
    defined in a module without srcgrad is imported from that module, not from one that re-exports it)."""
    if not isinstance(obj, (types.FunctionType, type)):
        return None
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__name__", "")
    if not module or module == "__main__" or getattr(obj, "__qualname__", "") != name:
        return None
    if getattr(sys.modules.get(module), name, None) is not obj:
        return None
    return module, name


def _check_module_name(module: str) -> None:
    """An import statement can name only a dotted name of identifiers: anything else (a file name with quotes,
    spaces or line breaks) is refused rather than written into the module."""
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in module.split(".")):
        raise EmitError(f"cannot emit: the emitted module would import from {module!r}, which is not a module name "
                        "Python can import", hint="rename the file to a Python identifier (letters, digits, _)")


def _import_line(module: str, name: str) -> str:
    _check_module_name(module)
    if module == name:
        return f"import {module}"
    return f"import {module} as {name}"


def _is_builtin(obj: Any) -> bool:
    name = getattr(obj, "__name__", None)
    return isinstance(name, str) and getattr(builtins, name, None) is obj


def _is_srcgrad_module(name: str) -> bool:
    return name == "srcgrad" or name.startswith("srcgrad.")


def _is_generated(obj: Any) -> bool:
    code = getattr(obj, "__code__", None)
    return code is not None and code.co_filename.startswith("<srcgrad")


def _origin(obj: Any) -> str:
    if _is_generated(obj):
        return "generated by srcgrad"
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', '?')}"


# --- the module ----------------------------------------------------------------------------------------------------


def _argument_checks(transform: api.Transform, example: tuple[Any, ...] | None) -> list[tuple[Any, str, Any]]:
    """What an in-process call checks about the arguments it is given (api.Transform.kinds) and the generic code
    an emitted module holds assumes, as calls of runtime checks at the start of the module's function: (check, the
    text of its arguments before the location, the node it refuses at). Of the parameters that are not
    differentiated: what a loop walks is a sequence or an array (a dict's items by index are its values, not its
    keys: structures.check_iterated); a parameter whose attributes are read holds no value in-process reads as a
    structure (an object with ``__dict__``, a dataclass, a module...), unless the example gave it one (an object's
    own ``.sum`` was taken for ndarray's: gradient 0)."""
    bound = transform.bind(example, {}) if example is not None else [None] * len(transform.params)
    found = []
    for param, value in zip(transform.params, bound):
        if param in transform.wrt:
            continue
        for attrs, node in transform.iterated_params.get(param, []):
            found.append((runtime.check_walked_argument, f"{param}, {attrs!r}, SEQUENCE, {'.'.join((param, *attrs))!r}",
                          node))
        if param in transform.attribute_params and not structures.is_constant_structure(value):
            read = min((n for n in transform.pf.nodes if isinstance(n, gast.Attribute) and
                        isinstance(n.value, gast.Name) and n.value.id == param), key=lambda n: (n.lineno, n.col_offset))
            found.append((runtime.check_array_argument, f"{param}, {param!r}", read))
    return found


def _with_argument_checks(text: str, node: ast.FunctionDef, checks: list[tuple[Any, str, Any]], pf: Any
                          ) -> tuple[str, dict[str, tuple[Any, str]]]:
    """``text`` (the def ``node``) with the ``checks`` (:func:`_argument_checks`) called after its docstring, and
    the objects the calls name, by the names they use (none of the function's own)."""
    if not checks:
        return text, {}
    taken = _local_names(node)
    sequence = naming.fresh("Sequence", taken)
    named = {sequence: (abc.Sequence, "global")}
    first = node.body[0]
    docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
        isinstance(first.value.value, str)
    after = first.end_lineno if docstring else first.lineno - 1
    lines = []
    for check, arguments, where in checks:
        name = naming.fresh(check.__name__, taken)
        named[name] = (check, "srcgrad")
        at = pf.location(where)
        lines.append(f"{' ' * first.col_offset}{name}({arguments.replace('SEQUENCE', sequence)}, {at.filename!r}, "
                     f"{at.line}, {at.col})\n")
    source = sourcetext.lines(text)
    return "".join(source[:after] + lines + source[after:]), named


def _differentiated(transform: api.Transform, generated: Any) -> list[Any]:
    """Every user function the gradient differentiates: the function, then the helpers it calls (first use)."""
    funcs = [transform.func]
    for variant in calls.helpers_of(generated.bound):
        if all(variant.func is not f for f in funcs):
            funcs.append(variant.func)
    return funcs


def _user_files(transform: api.Transform, generated: Any) -> dict[str, str]:
    files = {}
    for func in _differentiated(transform, generated):
        path = inspect.getsourcefile(func) or func.__code__.co_filename
        files[path] = path.replace("\\", "/").rsplit("/", 1)[-1]
    return files


def _source_hash(transform: api.Transform, generated: Any) -> str:
    """sha256 of the source of every user function the gradient differentiates (the function, then its helpers)."""
    digest = digests.sha256()
    for f in _differentiated(transform, generated):
        digest.update(freshness.source(f).encode("utf-8"))
    return digest.hexdigest()


def _called_from(writer: _ModuleWriter, main: str, taught: Callable[[Any], bool]) -> list[str]:
    """The module's functions the gradient ``main`` calls, directly or through each other, in definition order;
    but not those numba is ``taught`` (numba compiles its own twin of them, not what they call)."""
    reached, todo = {main}, [main]
    while todo:
        for ref in _free_names(writer.meant[todo.pop()]):
            obj = writer.names.get(ref)
            if ref in writer.meant and ref not in reached and isinstance(obj, types.FunctionType) and not taught(obj):
                reached.add(ref)
                todo.append(ref)
    return [d.name for d in writer.definitions if d.name in reached]


def _add_numba(writer: _ModuleWriter, main: str, transform: api.Transform, generated: Any) -> None:
    """The module compiled by numba (srcgrad/numba_backend.py: what it refuses, the statements at its end)."""
    from srcgrad import numba_backend

    imported = {name: writer.names[name] for pairs in writer.from_imports.values() for _, name in pairs}
    numba_backend.check_emittable(generated, transform.pf.func, calls.helpers_of(generated.bound), imported)
    writer.tail = numba_backend.emitted_section(
        _called_from(writer, main, numba_backend.taught), dict(writer.names),
        lambda ref, obj, origin: writer.define(ref, obj, origin, writer.home))
    writer.drain()


def _assemble(writer: _ModuleWriter, main: str, transform: api.Transform, generated: Any, home: str,
              args_option: str = "") -> str:
    func = transform.func
    spec = _spec(func, home)
    mode_option = "" if transform.mode == "grad" else f" --mode {transform.mode}"
    mode_option += " --backend numba" if writer.tail else ""
    what = {"grad": "Gradient", "value_and_grad": "Value and gradient", "vjp": "Vector-Jacobian product"}
    filename = Path(inspect.getsourcefile(func) or func.__code__.co_filename).name
    line = func.__code__.co_firstlineno
    modules = sorted({obj.__name__.split(".")[0] for obj in writer.names.values() if _importable_module(obj)})
    needs = modules + [f"the module `{m}`" for m in sorted(writer.from_imports)]
    needs_text = (" and ".join(needs) if len(needs) < 3 else ", ".join(needs[:-1]) + " and " + needs[-1])
    filename, spec = sourcetext.comment(filename), sourcetext.comment(spec)  # shown escaped, as in comments
    paragraphs = [
        f"{what[transform.mode]} of {func.__qualname__} ({filename}:{line}) with respect to "
        f"{', '.join(transform.wrt)}, written ahead of time by srcgrad {__version__}. Do not edit.",
        f"Regenerate it with `srcgrad emit {spec} --wrt {_wrt_option(transform)}{mode_option} -o <this file>"
        f"{args_option}`; "
        "with `--check`, the same command only tests that this file is current. This module does not import "
        "srcgrad" + (f"; it needs {needs_text}." if needs else "."),
    ]
    doc = "\n\n".join(textwrap.fill(p, width=110, break_on_hyphens=False, break_long_words=False)
                       for p in paragraphs)
    out = [sourcetext.docstring(doc + "\n", one_line=False), "", f"# srcgrad-version: {__version__}",
           f"# srcgrad-source: {spec} sha256:{_source_hash(transform, generated)}", ""]
    stdlib, third = [], []
    for name, text in sorted(writer.imports.items(), key=lambda item: item[1]):
        top = writer.names[name].__name__.split(".")[0]
        (stdlib if top in sys.stdlib_module_names else third).append(text)
    # isort's layout with its default settings: the standard library, then the rest (the user's module is unknown
    # to it, so it goes with numpy: `import` lines first, then `from` lines).
    for module in sorted(writer.from_imports):
        _check_module_name(module)
        items = sorted(attr if attr == name else f"{attr} as {name}" for attr, name in writer.from_imports[module])
        third.append(f"from {module} import {', '.join(items)}")
    for group in (stdlib, third):
        if group:
            out.extend(group + [""])
    out.append(f'__all__ = ["{main}"]')
    text = "\n".join(out) + "\n\n\n" + writer.definitions[0].text
    if len(writer.definitions) > 1:
        text += ("\n\n# --- helpers: srcgrad's runtime, and the gradients of the functions it calls; written out\n"
                 "# here so that this module does not import srcgrad\n")
        for d in writer.definitions[1:]:
            text += "\n\n" + d.text
    return text + ("\n\n" + writer.tail if writer.tail else "")


__all__ = ["EmitError", "EmittedModule", "build", "emit", "is_current", "is_emitted", "write"]
