"""Emit: the forward IR and its reverse sweep in, Python source text, its line map and a compiled function out.

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
- each line's origin (:class:`srcgrad.generated.Origin`: forward or reverse sweep, the user's line, the IR op, the
  comment heading its group) is recorded as the line is printed: a comment holds until its block ends, a statement
  tagged by the code generators (:func:`srcgrad.generated.mark`) names its own op and line;
- the text is registered with ``linecache`` so tracebacks, ``inspect.getsource`` and pdb show the generated code,
  and its line map with :func:`srcgrad.generated.register`, so errors find the user's line of a generated one.
"""

from __future__ import annotations

import ast
import linecache
import types
from dataclasses import field
from typing import Any

from srcgrad import digests, printer, sourcetext
from srcgrad.generated import FORWARD, NO_ORIGIN, REVERSE, Origin, marked, register
from srcgrad.program import Block, Comment, Program
from srcgrad.records import record

INDENT = "    "


@record
class Emitted:
    name: str
    source: str  # the function's text, as users read it
    bound: dict[str, Any]  # names the text uses that srcgrad provides
    lines: tuple = ()  # the origin of each line of ``source`` (srcgrad.generated.Origin)
    # (text, its tree): the text as read back by srcgrad.printer.check_function, compiled instead of the text while
    # ``source`` is that very text
    read: tuple[str, ast.Module] | None = field(default=None, repr=False, compare=False)

    @property
    def tree(self) -> ast.Module | None:
        """``source`` parsed (line ``k`` at ``k + 1``, see compile_in_scope), or None: compile the text."""
        return self.read[1] if self.read is not None and self.read[0] is self.source else None


def emit_text(program: Program, name: str, signature: str, returns: list[ast.expr], doc: str,
              bound: dict[str, Any]) -> Emitted:
    """The text of the function and where each of its lines comes from; raises
    :class:`srcgrad.printer.Misprinted` when it does not read back as the statements that were printed."""
    writer = _Writer([f"def {name}({signature}):", INDENT + sourcetext.docstring(doc)])
    printed: list[ast.stmt] = []  # the statements as trees, in the order the text holds them
    writer.items(program.forward, 1, printed, _Group(FORWARD))
    writer.items(program.reverse, 1, printed, _Group(REVERSE))
    value = returns[0] if len(returns) == 1 else ast.Tuple(elts=returns, ctx=ast.Load())
    ret = ast.Return(value=value)
    # the return belongs to the last sweep (it hands out what that sweep computed) and to the user's return
    line = program.return_line if program.return_line is not None else writer.last_line
    for text in printer.stmt_lines(ret, INDENT):
        writer.add(text, Origin(REVERSE if program.reverse else FORWARD, line))
    printed.append(ret)
    source = "\n".join(writer.lines) + "\n"
    tree = printer.check_function(source, printed, name)
    return Emitted(name, source, bound, tuple(writer.origins), (source, tree))


@record(frozen=True)
class _Group:
    """The sweep a run of items belongs to, and the comment heading it (a comment holds until its block ends)."""

    sweep: str
    heading: Comment | None = None

    def origin(self, item: Any = None) -> Origin:
        tag = marked(item)
        line = tag[1] if tag is not None else self.heading.line if self.heading is not None else None
        return Origin(self.sweep, line, tag[0] if tag is not None else None,
                      self.heading.text if self.heading is not None else "", tag[2] if tag is not None else None)


class _Writer:
    """The lines of a function's text, and the origin of each."""

    def __init__(self, head: list[str]) -> None:
        self.lines = list(head)
        self.origins = [NO_ORIGIN] * len(head)
        self.last_line: int | None = None  # the user's line of the last line written that has one

    def add(self, text: str, origin: Origin) -> None:
        self.lines.append(text)
        self.origins.append(origin)
        if origin.line is not None:
            self.last_line = origin.line

    def statement(self, item: ast.stmt, depth: int, group: _Group) -> None:
        origin = group.origin(item)
        for line in printer.stmt_lines(item, INDENT * depth):
            self.add(line, origin)

    def items(self, items: list, depth: int, printed: list[ast.stmt], group: _Group) -> None:
        pad = INDENT * depth
        for item in items:
            if isinstance(item, Comment):
                if not item.aside:
                    group = _Group(group.sweep, item)
                self.add(f"{pad}# {sourcetext.comment(item.text)}", group.origin())
            elif isinstance(item, Block):
                self.block(item, depth, printed, group)
            else:
                self.statement(item, depth, group)
                printed.append(item)

    def block(self, block: Block, depth: int, printed: list[ast.stmt], group: _Group) -> None:
        pad = INDENT * depth
        if block.kind == "for":
            head = f"for {block.target} in {printer.expr_text(block.iter)}:"
        elif block.kind == "try":
            head = "try:"
        else:
            head = f"{block.kind} {printer.expr_text(block.test)}" + (f" as {block.target}:" if block.target else ":")
        self.add(pad + head, group.origin())
        tree = _block_tree(block)
        printed.append(tree)
        self.items(_with_statement(block.body), depth + 1, tree.body, group)
        for (caught, name, handler), handler_tree in zip(block.handlers, getattr(tree, "handlers", [])):
            clause = "except" + (f" {printer.expr_text(caught)}" if caught is not None else "")
            self.add(pad + clause + (f" as {name}:" if name else ":"), group.origin())
            self.items(_with_statement(handler), depth + 1, handler_tree.body, group)
        for word, part, filled in (("else", block.orelse, getattr(tree, "orelse", [])),
                                   ("finally", block.final, getattr(tree, "finalbody", []))):
            if part:
                self.add(pad + word + ":", group.origin())
                self.items(_with_statement(part), depth + 1, filled, group)


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
    digest = digests.hex_digest(emitted.source, 10)
    filename = f"<srcgrad {label} {digest}>"
    note = f"# generated by srcgrad; provided names: {', '.join(emitted.bound) or '-'}"
    inner = compile_in_scope(emitted.source, emitted.name, outer_params, filename, note, emitted.tree)
    register(filename, (NO_ORIGIN, *emitted.lines))  # (linecache shows the note on the first line)
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


def compile_in_scope(source: str, name: str, scope_names: list[str], filename: str, note: str,
                     tree: ast.Module | None = None) -> types.CodeType:
    """The code of function ``name`` defined by ``source``, compiled as a closure over ``scope_names`` (they become
    its free variables where it reads them). ``linecache`` shows ``source`` under ``filename`` with ``note`` (a
    comment) on the first line, where the scope function's own line was, so line numbers agree. ``tree``: ``source``
    already parsed, its line ``k`` at line ``k + 1`` (srcgrad.printer.check_function): compiled as it is, without
    reading the text again."""
    lines = source.rstrip("\n").split("\n")
    if tree is not None:
        module = compile(_in_scope(tree, scope_names), filename, "exec")
    else:
        header = f"def __srcgrad_scope__({', '.join(scope_names)}):"
        text = "".join([header + "\n", *(INDENT + ln + "\n" if ln else "\n" for ln in lines)])
        module = compile(text, filename, "exec")
    shown = "".join(ln + "\n" for ln in [note, *lines])
    linecache.cache[filename] = (len(shown), None, sourcetext.lines(shown), filename)
    outer = next(c for c in module.co_consts if isinstance(c, types.CodeType))
    return next(c for c in outer.co_consts if isinstance(c, types.CodeType) and c.co_name == name)


def _in_scope(tree: ast.Module, scope_names: list[str]) -> ast.Module:
    """``tree``'s function inside ``def __srcgrad_scope__(scope_names):`` on line 1 (a new module; ``tree`` is
    not changed)."""
    at = {"lineno": 1, "col_offset": 0, "end_lineno": 1, "end_col_offset": 0}
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=n, **at) for n in scope_names], vararg=None,
                         kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[])
    function = tree.body[0]
    scope = ast.FunctionDef(name="__srcgrad_scope__", args=args, body=[function], decorator_list=[], returns=None,
                            type_comment=None, lineno=1, col_offset=0, end_lineno=function.end_lineno,
                            end_col_offset=function.end_col_offset)
    if "type_params" in ast.FunctionDef._fields:
        scope.type_params = []
    return ast.Module(body=[scope], type_ignores=[])
