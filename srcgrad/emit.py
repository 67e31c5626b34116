"""Emit: the forward IR and its reverse sweep in, Python source text and a compiled function out.

What holds:
- statements are printed one by one (:mod:`srcgrad.printer`; string constants as their one-line ``repr``), with
  comments that map each block to its source line; user text (names in the docstring, source lines in comments) goes
  through :mod:`srcgrad.sourcetext`, so it can neither end a line nor close a literal;
- the text is read back before it is compiled: it must parse to the statements that were printed, or
  :class:`srcgrad.printer.Misprinted` is raised (the pipelines make it an ``InternalError``) and nothing runs;
- the text depends only on the input function and the argument kinds: emitting twice gives byte-identical text;
- the compiled function runs in the user's module globals (globals stay live), sees the user's closure cells, and gets
  srcgrad's helpers (``np``, ``math``, runtime helpers) as closure cells of its own, so nothing is injected into the
  user's module;
- the text is registered with ``linecache`` so tracebacks, ``inspect.getsource`` and pdb show the generated code.
"""

from __future__ import annotations

import ast
import hashlib
import linecache
import types
from dataclasses import dataclass
from typing import Any

from srcgrad import printer, sourcetext
from srcgrad.program import Block, Comment, Program

INDENT = "    "


@dataclass
class Emitted:
    name: str
    source: str  # the function's text, as users read it
    bound: dict[str, Any]  # names the text uses that srcgrad provides


def emit_text(program: Program, name: str, signature: str, returns: list[ast.expr], doc: str,
              bound: dict[str, Any]) -> Emitted:
    """The text of the function; raises :class:`srcgrad.printer.Misprinted` when it does not read back as the
    statements that were printed."""
    lines = [f"def {name}({signature}):", INDENT + sourcetext.docstring(doc)]
    printed: list[ast.stmt] = []  # the statements as trees, in the order the text holds them
    _emit_items(program.forward, lines, 1, printed)
    _emit_items(program.reverse, lines, 1, printed)
    value = returns[0] if len(returns) == 1 else ast.Tuple(elts=returns, ctx=ast.Load())
    ret = ast.Return(value=value)
    lines.extend(printer.stmt_lines(ret, INDENT))
    printed.append(ret)
    source = "\n".join(lines) + "\n"
    printer.check_function(source, printed, name)
    return Emitted(name, source, bound)


def _emit_items(items: list, lines: list[str], depth: int, printed: list[ast.stmt]) -> None:
    pad = INDENT * depth
    for item in items:
        if isinstance(item, Comment):
            lines.append(f"{pad}# {sourcetext.comment(item.text)}")
        elif isinstance(item, Block):
            if item.kind == "for":
                head = f"for {item.target} in {printer.expr_text(item.iter)}:"
            elif item.kind == "try":
                head = "try:"
            else:
                head = f"{item.kind} {printer.expr_text(item.test)}" + (f" as {item.target}:" if item.target else ":")
            lines.append(pad + head)
            tree = _block_tree(item)
            printed.append(tree)
            _emit_items(_with_statement(item.body), lines, depth + 1, tree.body)
            for (types, name, handler), handler_tree in zip(item.handlers, getattr(tree, "handlers", [])):
                clause = "except" + (f" {printer.expr_text(types)}" if types is not None else "")
                lines.append(pad + clause + (f" as {name}:" if name else ":"))
                _emit_items(_with_statement(handler), lines, depth + 1, handler_tree.body)
            for word, part, filled in (("else", item.orelse, getattr(tree, "orelse", [])),
                                       ("finally", item.final, getattr(tree, "finalbody", []))):
                if part:
                    lines.append(pad + word + ":")
                    _emit_items(_with_statement(part), lines, depth + 1, filled)
        else:
            lines.extend(printer.stmt_lines(item, pad))
            printed.append(item)


def _block_tree(block: Block) -> ast.stmt:
    """The statement a block is printed as, its bodies left empty for the caller to fill (the loop target is text,
    not a printed tree, so it matches anything)."""
    if block.kind == "for":
        return ast.For(target=printer.Anything(), iter=block.iter, body=[], orelse=[])
    if block.kind == "with":
        target = ast.Name(id=block.target, ctx=ast.Store()) if block.target else None
        return ast.With(items=[ast.withitem(context_expr=block.test, optional_vars=target)], body=[])
    if block.kind == "try":
        handlers = [ast.ExceptHandler(type=types, name=name, body=[]) for types, name, _ in block.handlers]
        return ast.Try(body=[], handlers=handlers, orelse=[], finalbody=[])
    return (ast.If if block.kind == "if" else ast.While)(test=block.test, body=[], orelse=[])


def _with_statement(items: list) -> list:
    """A block's items with a ``pass`` when they hold no statement (only comments, or nothing)."""
    return items if any(not isinstance(item, Comment) for item in items) else [*items, ast.Pass()]


def compile_function(emitted: Emitted, user_func: Any, label: str) -> types.FunctionType:
    """Compile the emitted text into a function that shares the user's globals and closure cells."""
    user_code = user_func.__code__
    user_cells = dict(zip(user_code.co_freevars, user_func.__closure__ or ()))
    outer_params = list(emitted.bound) + [n for n in user_cells if n not in emitted.bound]
    digest = hashlib.sha256(emitted.source.encode()).hexdigest()[:10]
    filename = f"<srcgrad {label} {digest}>"
    note = f"# generated by srcgrad; provided names: {', '.join(emitted.bound) or '-'}"
    inner = compile_in_scope(emitted.source, emitted.name, outer_params, filename, note)
    cells = []
    for free in inner.co_freevars:
        if free in emitted.bound:
            value = emitted.bound[free]
            shared = getattr(value, "cell", None)  # a generated helper: share its cell (it may not exist yet)
            cells.append(shared if isinstance(shared, types.CellType) else types.CellType(value))
        else:
            cells.append(user_cells[free])
    func = types.FunctionType(inner, user_func.__globals__, emitted.name, user_func.__defaults__, tuple(cells))
    func.__kwdefaults__ = dict(user_func.__kwdefaults__) if user_func.__kwdefaults__ else None
    return func


def compile_in_scope(source: str, name: str, scope_names: list[str], filename: str, note: str) -> types.CodeType:
    """The code of function ``name`` defined by ``source``, compiled as a closure over ``scope_names`` (they become
    its free variables where it reads them). ``linecache`` shows ``source`` under ``filename`` with ``note`` (a
    comment) on the first line, where the scope function's own line was, so line numbers agree."""
    lines = source.rstrip("\n").split("\n")
    header = f"def __srcgrad_scope__({', '.join(scope_names)}):"
    module = compile("".join([header + "\n", *(INDENT + ln + "\n" if ln else "\n" for ln in lines)]), filename, "exec")
    shown = "".join(ln + "\n" for ln in [note, *lines])
    linecache.cache[filename] = (len(shown), None, sourcetext.lines(shown), filename)
    outer = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return next(c for c in outer.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
