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
  srcgrad. ``check_scalar_output`` is replaced by a copy that raises ``ValueError`` (srcgrad's ``NonScalarOutput``
  lives in srcgrad);
- a copied helper keeps its text (comments included); only its name, and the names it refers to, change when two
  objects want the same module-level name;
- the text is deterministic: the same function, wrt, mode and srcgrad version give byte-identical output (no
  timestamps, no absolute paths). The header names the srcgrad version and the sha256 of the differentiated
  functions' source, and ``is_current`` (``srcgrad emit --check``) compares a file with a fresh emit.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import inspect
import os
import sys
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srcgrad import api, calls, freshness, runtime
from srcgrad.errors import InvalidArgument, SrcgradError
from srcgrad.runtime import in_place_update_text, shared_arguments_text, shares_memory
from srcgrad.version import __version__

_MISSING = object()


def _standalone_check_scalar_output(y, where):
    """``grad`` needs a scalar output: raise a clear error otherwise."""
    if np.ndim(y) != 0:
        raise ValueError(
            f"grad needs a scalar output, but {where} returned an array of shape {np.shape(y)}; "
            "reduce the output (e.g. np.sum), or emit a vjp instead"
        )
    return y


def _standalone_check_unshared(value, filename, line, col, helper=""):
    """An in-place update of an array another name may share: refused (srcgrad computes a new array)."""
    if isinstance(value, (np.ndarray, list)):
        message, hint = in_place_update_text(helper)
        raise ValueError(f"{filename}:{line}:{col + 1}: {message}\nhint: {hint}")


def _standalone_check_distinct(written, other, written_name, other_name, filename, line, col):
    """Arguments that share memory where one is written in place: refused (srcgrad computes a new array)."""
    if isinstance(written, (np.ndarray, list)) and shares_memory(written, other, 3):
        message, hint = shared_arguments_text(written_name, other_name)
        raise ValueError(f"{filename}:{line}:{col + 1}: {message}\nhint: {hint}")


# srcgrad objects replaced by another definition in a standalone module.
_SUBSTITUTES: dict[int, Any] = {id(runtime.check_scalar_output): _standalone_check_scalar_output,
                                id(runtime.check_unshared): _standalone_check_unshared,
                                id(runtime.check_distinct): _standalone_check_distinct}


class EmitError(SrcgradError):
    """The function cannot be written as a standalone module (e.g. it uses a closure variable)."""


def emit(func: Callable, wrt: int | str | tuple | None = None, *, mode: str | None = None,
         module: str | None = None) -> str:
    """The text of a standalone module with the gradient of ``func`` (it never imports srcgrad).

    ``wrt`` and ``mode`` (``"grad"``, ``"value_and_grad"`` or ``"vjp"``) default to those of a function made by
    ``srcgrad.grad``/``value_and_grad``/``vjp``, else to ``0`` and ``"grad"``. ``module`` is the import name of the
    module that defines ``func`` (default: ``func.__module__``, or the file's stem for a script run as
    ``__main__``); the emitted module imports the user's globals from it.
    """
    return build(func, wrt, mode=mode, module=module).text


@dataclass
class EmittedModule:
    """What :func:`build` returns: the module text and what the command line reports about it."""

    text: str  # the module source
    name: str  # the gradient function's name
    spec: str  # how to name the function to `srcgrad emit` (module.py:func or package.module:func)
    module: str  # the user module the emitted one imports from


def build(func: Callable, wrt: int | str | tuple | None = None, *, mode: str | None = None,
          module: str | None = None) -> EmittedModule:
    """Like :func:`emit`, with the gradient function's name and the user's module name."""
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
    transform = api.Transform(func, wrt, mode)
    generated = transform.generic()
    home = module or _module_name(func)
    writer = _ModuleWriter(home)
    main_name = writer.add_main(generated, transform.pf)
    text = _assemble(writer, main_name, transform, generated, home)
    return EmittedModule(text, main_name, _spec(func, home), home)


def is_current(path: str | os.PathLike, text: str) -> bool:
    """Whether the file at ``path`` holds exactly ``text`` (what ``emit --check`` tests)."""
    try:
        return Path(path).read_bytes() == text.encode("utf-8")
    except OSError:
        return False


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


@dataclass
class _Definition:
    name: str
    text: str
    origin: str  # where the copied text comes from, for a comment


@dataclass
class _ModuleWriter:
    """Gives every object the emitted code needs one module-level name and a definition (import or copied text)."""

    home: str  # the user's module
    names: dict[str, Any] = field(default_factory=dict)  # module-level name -> object
    by_id: dict[int, str] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)  # name -> "import x as y" (modules)
    from_imports: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # module -> [(attr, name)]
    definitions: list[_Definition] = field(default_factory=list)
    queue: list[tuple[str, Any, str]] = field(default_factory=list)  # (name, object to copy, origin)
    keep: list[Any] = field(default_factory=list)  # objects kept alive while their id() is a key

    def reserve(self, preferred: str, obj: Any) -> tuple[str, bool]:
        """The module-level name of ``obj`` and whether it is new."""
        if id(obj) in self.by_id:
            return self.by_id[id(obj)], False
        name, k = preferred, 0
        while name in self.names:
            k += 1
            name = f"{preferred}_{k}"
        self.names[name] = obj
        self.by_id[id(obj)] = name
        self.keep.append(obj)
        return name, True

    # --- entry points --------------------------------------------------------------------------------------------

    def add_main(self, generated: Any, pf: Any) -> str:
        text = _first_function(generated.source)
        tree = ast.parse(text)
        name = tree.body[0].name
        self.names[name] = generated.function
        self.by_id[id(generated.function)] = name

        def lookup(ref: str) -> tuple[Any, str]:
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

        body = self.rewrite(text, name, lookup, self.home)
        self.definitions.insert(0, _Definition(name, body, ""))
        self.drain()
        return name

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
        """Give ``text`` (one def or class) the module-level ``name``; define every free name it refers to."""
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
        return _rename(text, node, name, renames)

    def define(self, ref: str, obj: Any, origin: str, home: str) -> str | None:
        """Make ``obj`` available at module level (preferably as ``ref``); its module-level name (None: a builtin)."""
        if origin == "builtin":
            if ref in self.names and self.names[ref] is not obj:
                raise EmitError(f"cannot emit: `{ref}` is both the builtin and a copied name")
            return None
        substitute = _SUBSTITUTES.get(id(obj))
        if substitute is not None:
            obj = substitute
        cell = getattr(obj, "cell", None)
        if isinstance(cell, types.CellType):  # a generated helper pair, shared through a cell
            obj = cell.cell_contents
        if isinstance(obj, types.ModuleType):
            name, new = self.reserve(ref, obj)
            if new:
                self.imports[name] = _import_line(obj.__name__, name)
            return name
        copyable = isinstance(obj, (types.FunctionType, type)) and (
            origin == "srcgrad" or _is_generated(obj) or _is_srcgrad_module(getattr(obj, "__module__", "") or ""))
        if copyable:
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


# --- text surgery --------------------------------------------------------------------------------------------------


def _first_function(source: str) -> str:
    tree = ast.parse(source)
    node = tree.body[0]
    lines = source.splitlines(keepends=True)
    return "".join(lines[: node.end_lineno])


def _source_of(obj: Any) -> str:
    try:  # a function's text only if it is still the code it runs (its file may have changed since it was defined)
        text = freshness.source(obj) if inspect.isfunction(obj) else inspect.getsource(obj)
    except (OSError, TypeError) as exc:
        raise EmitError(f"cannot emit: the source of {getattr(obj, '__qualname__', obj)!r} is not available "
                        f"({exc})") from None
    text = textwrap.dedent(text)
    node = ast.parse(text).body[0]
    lines = text.splitlines(keepends=True)
    return "".join(lines[node.lineno - 1:])  # without decorators


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
        found = [n for r in roots for n in ast.walk(r)
                 if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in local]
    elif isinstance(node, ast.ClassDef):
        class_level = {n.id for stmt in node.body if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        class_level |= {stmt.name for stmt in node.body
                        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        for part in [*node.bases, *node.keywords]:
            found.extend(n for n in ast.walk(part) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.extend(_free_name_nodes(stmt))
            else:
                found.extend(n for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                             and n.id not in class_level)
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def _free_names(node: ast.AST) -> list[str]:
    out: list[str] = []
    for n in _free_name_nodes(node):
        if n.id not in out:
            out.append(n.id)
    return out


def _rename(text: str, node: ast.AST, name: str, renames: dict[str, str]) -> str:
    """``text`` with the definition named ``name`` and free names renamed (by position: comments are kept)."""
    lines = [ln.encode("utf-8") for ln in text.splitlines(keepends=True)]
    edits: list[tuple[int, int, int, str]] = []  # (line index, start byte, end byte, new text)
    for n in _free_name_nodes(node):
        if n.id in renames:
            edits.append((n.lineno - 1, n.col_offset, n.end_col_offset, renames[n.id]))
    keyword = b"class " if isinstance(node, ast.ClassDef) else b"def "
    head = node.lineno - 1
    start = lines[head].index(keyword) + len(keyword)
    end = start + len(node.name.encode("utf-8"))
    if node.name != name:
        edits.append((head, start, end, name))
    for line, start, end, new in sorted(edits, reverse=True):
        lines[line] = lines[line][:start] + new.encode("utf-8") + lines[line][end:]
    out = b"".join(lines).decode("utf-8")
    return out if out.endswith("\n") else out + "\n"


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


def _import_line(module: str, name: str) -> str:
    if module == name:
        return f"import {module}"
    return f"import {module} as {name}"


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


def _source_hash(transform: api.Transform, generated: Any) -> str:
    """sha256 of the source of every user function the gradient differentiates (the function, then its helpers)."""
    funcs = [transform.func]
    for variant in calls.helpers_of(generated.bound):
        if all(variant.func is not f for f in funcs):
            funcs.append(variant.func)
    digest = hashlib.sha256()
    for f in funcs:
        digest.update(freshness.source(f).encode("utf-8"))
    return digest.hexdigest()


def _assemble(writer: _ModuleWriter, main: str, transform: api.Transform, generated: Any, home: str) -> str:
    func = transform.func
    spec = _spec(func, home)
    mode_option = "" if transform.mode == "grad" else f" --mode {transform.mode}"
    what = {"grad": "Gradient", "value_and_grad": "Value and gradient", "vjp": "Vector-Jacobian product"}
    filename = Path(inspect.getsourcefile(func) or func.__code__.co_filename).name
    line = func.__code__.co_firstlineno
    modules = sorted({obj.__name__.split(".")[0] for obj in writer.names.values()
                      if isinstance(obj, types.ModuleType)})
    needs = modules + [f"the module `{m}`" for m in sorted(writer.from_imports)]
    needs_text = (" and ".join(needs) if len(needs) < 3 else ", ".join(needs[:-1]) + " and " + needs[-1])
    paragraphs = [
        f"{what[transform.mode]} of {func.__qualname__} ({filename}:{line}) with respect to "
        f"{', '.join(transform.wrt)}, written ahead of time by srcgrad {__version__}. Do not edit.",
        f"Regenerate it with `srcgrad emit {spec} --wrt {_wrt_option(transform)}{mode_option} -o <this file>`; "
        "with `--check`, the same command only tests that this file is current. This module does not import "
        "srcgrad" + (f"; it needs {needs_text}." if needs else "."),
    ]
    doc = "\n\n".join(textwrap.fill(p, width=110, break_on_hyphens=False, break_long_words=False)
                       for p in paragraphs)
    out = [f'"""{doc}\n"""', "", f"# srcgrad-version: {__version__}",
           f"# srcgrad-source: {spec} sha256:{_source_hash(transform, generated)}", ""]
    stdlib, third = [], []
    for name, text in sorted(writer.imports.items(), key=lambda item: item[1]):
        top = writer.names[name].__name__.split(".")[0]
        (stdlib if top in sys.stdlib_module_names else third).append(text)
    # isort's layout with its default settings: the standard library, then the rest (the user's module is unknown
    # to it, so it goes with numpy: `import` lines first, then `from` lines).
    for module in sorted(writer.from_imports):
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
    return text


__all__ = ["EmitError", "EmittedModule", "build", "emit", "is_current", "write"]
