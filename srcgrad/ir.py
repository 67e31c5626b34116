"""The linear IR: the compute graph of a function as three-address statements.

In: built by :mod:`srcgrad.lower` from the user's AST. Out: read by the passes, the adjoint stage and the emitter.
What holds:
- every :class:`Op` applies one primitive to atomic operands (:class:`Var` or :class:`Const`) and binds one target;
- every statement carries the source line (absolute, in the user's file) it came from;
- control flow stays structured (:class:`If`, :class:`For`, :class:`While`, :class:`With`, :class:`Try`) — no gotos;
- an op with ``effect`` (a call of a function without a rule, ``print``, ``raise``) runs for what it does: it is
  kept, runs once in the forward sweep in program order, and is never recomputed, moved or repeated;
- straight-line code at the top level is in SSA form: a rebound user name gets a fresh version (``x``, ``x_1``...).

The printed grammar (``str(function)``)::

    def NAME(PARAMS):
      TARGET = OP(OPERAND, ..., KEY=OPERAND)      # line N
      if OPERAND:  ... else: ...
      for TARGET in OPERAND: ...
      with OPERAND [as NAME]: ...
      try: ... except OPERAND [as NAME]: ... else: ... finally: ...      # path NAME
      return OPERAND
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any, Union

from srcgrad import naming
from srcgrad.records import record

if TYPE_CHECKING:  # (the IR names the rule an op calls; it does not import the rule tables)
    from srcgrad.rules.registry import Rule


@record(frozen=True)
class Var:
    """A local name: a parameter, a user variable version, or a temporary (listed in ``Function.temporaries``)."""

    name: str

    def __str__(self) -> str:
        return self.name


@record(frozen=True)
class Const:
    """A constant operand. ``text`` is how generated code spells it (``math.pi``, ``W`` for a global array)."""

    value: Any
    text: str | None = None
    live: bool = False  # a global or closure variable: read at call time, so its kind is not assumed

    def __str__(self) -> str:
        return self.text if self.text is not None else repr(self.value)


@record(frozen=True)
class Slice:
    """A slice inside an index: each bound is an operand or None."""

    lower: Var | Const | None
    upper: Var | Const | None
    step: Var | Const | None

    def __str__(self) -> str:
        text = f"{_opt(self.lower)}:{_opt(self.upper)}"
        return text + (f":{self.step}" if self.step is not None else "")


@record(frozen=True)
class Index:
    """The index of a subscript ``x[...]``: a tuple of operands, :class:`Slice`, ``None`` and ``Ellipsis``."""

    parts: tuple
    is_tuple: bool

    def __str__(self) -> str:
        if not self.is_tuple:
            return "[" + _part(self.parts[0]) + "]"
        return "[" + ", ".join(_part(p) for p in self.parts) + ("," if len(self.parts) == 1 else "") + "]"

    def operands(self) -> list:
        out = []
        for p in self.parts:
            if isinstance(p, Slice):
                out.extend(b for b in (p.lower, p.upper, p.step) if b is not None)
            elif isinstance(p, (Var, Const)):
                out.append(p)
        return out


def _opt(x) -> str:
    return "" if x is None else str(x)


def _part(p) -> str:
    if p is None:
        return "None"
    if p is Ellipsis:
        return "..."
    return str(p)


Operand = Union[Var, Const, Index]


@record(frozen=True)
class Form:
    """How the forward operation is spelled in generated code.

    kind: ``binop`` / ``unaryop`` / ``compare`` / ``boolop`` (``symbol``: the operator), ``call`` (``symbol``: the
    callee as written), ``method`` / ``attr`` (``symbol``: its name), ``subscript``, ``copy``, ``tuple``, ``list``,
    ``dict``, ``append``; ``fstring`` (``symbol``: one code per part, ``L`` a
    literal, else the conversion ``n``/``s``/``r``/``a`` followed by ``:`` when a format spec operand follows);
    ``raise`` (``symbol`` ``from`` when a cause follows the exception); ``bound`` (the value a ``with ... as NAME`` or
    ``except ... as NAME`` binds: the compound statement binds it, the op only records what it depends on).
    """

    kind: str
    symbol: str = ""


class Statement:
    """What every statement offers the passes (the one traversal protocol: :func:`walk`, :func:`walk_ops`,
    :func:`map_body`, :class:`Visitor`): the statement lists nested in it, in program order, and the operands its
    header reads. An op or a jump nests nothing; a compound statement overrides both and :meth:`with_blocks`."""

    def blocks(self) -> list[list]:
        return []

    def header_reads(self) -> list[Operand]:
        """The operands the statement itself reads (a branch's condition, a loop's iterable), not its blocks'."""
        return []

    def with_blocks(self, blocks: list[list]) -> Statement:
        """A copy holding ``blocks`` (as :meth:`blocks` lists them) in place of its own."""
        return self


@record(eq=False)
class Op(Statement):
    """``target = prim(args..., **kwargs)``."""

    target: str
    rule: Rule | None
    form: Form
    args: tuple[Operand, ...]
    kwargs: tuple[tuple[str, Operand], ...] = ()
    line: int = 0
    col: int = 0
    callee: Any = None  # the resolved Python object that is called (functions only)
    inplace: bool = False  # from `x op= v`: in place when x is an array
    alias: bool = False  # a user's `y = x`: both names refer to one object
    guard_unshared: tuple = ()  # values an in-place update may change that another name sees: no arrays or lists
    guard_distinct: tuple = ()  # (written, other) arguments or globals that must not share memory where it runs
    keep: bool = False  # computed even when unused: it reads a name that may be unbound (it raises as Python would)
    own: bool = False  # a call srcgrad introduced (``len`` of a list it loops over): its callee is srcgrad's name
    effect: bool = False  # run for what it does (print, a call without a rule, raise): kept, once, in program order

    @property
    def guarded(self) -> bool:
        """Does a run-time check (srcgrad.aliasing) come before it? Then it runs even when its value is unused."""
        return bool(self.guard_unshared or self.guard_distinct)

    def operands(self) -> list[Operand]:
        """The atomic operands (indices flattened) this op reads. (Kept on the op while its argument tuples are the
        very ones they were made of: every pass asks, several times.)"""
        held = self.__dict__.get("_operands")
        if held is not None and held[0] is self.args and held[1] is self.kwargs:
            return list(held[2])
        out: list = []
        for a in list(self.args) + [v for _, v in self.kwargs]:
            out.extend(a.operands() if isinstance(a, Index) else [a])
        self.__dict__["_operands"] = (self.args, self.kwargs, out)
        return list(out)

    @property
    def opname(self) -> str:
        if self.form.kind == "copy":
            return "copy"
        if self.rule is not None:
            return self.rule.name
        if self.form.kind in ("call", "method", "attr"):
            return self.form.symbol
        return self.form.kind


@record(eq=False)
class Return(Statement):
    value: Operand
    line: int = 0
    col: int = 0

    def header_reads(self) -> list[Operand]:
        return [self.value]


@record(eq=False)
class If(Statement):
    cond: Operand
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)
    line: int = 0
    col: int = 0

    def blocks(self) -> list[list]:
        return [self.body, self.orelse]

    def header_reads(self) -> list[Operand]:
        return [self.cond]

    def with_blocks(self, blocks: list[list]) -> If:
        return replace(self, body=blocks[0], orelse=blocks[1])


@record(eq=False)
class For(Statement):
    """``for target in iterable``; ``iterable`` is an operand (a ``range`` object, an array, a list...)."""

    target: str
    iterable: Operand
    body: list = field(default_factory=list)
    line: int = 0
    col: int = 0
    carried: list = field(default_factory=list)  # header versions: values that flow from one iteration to the next

    def blocks(self) -> list[list]:
        return [self.body]

    def header_reads(self) -> list[Operand]:
        return [self.iterable]

    def with_blocks(self, blocks: list[list]) -> For:
        return replace(self, body=blocks[0])


@record(eq=False)
class While(Statement):
    """``while True`` around ``test`` (statements computing ``cond``), then ``if not cond: break``, then ``body``."""

    test: list
    cond: Operand
    body: list = field(default_factory=list)
    line: int = 0
    col: int = 0
    carried: list = field(default_factory=list)

    def blocks(self) -> list[list]:
        return [self.test, self.body]

    def header_reads(self) -> list[Operand]:
        return [self.cond]

    def with_blocks(self, blocks: list[list]) -> While:
        return replace(self, test=blocks[0], body=blocks[1])


@record(eq=False)
class With(Statement):
    """``with manager [as target]: body``; ``manager`` is computed before the statement by ``context`` (the ops of the
    context expression, run again around the reverse sweep of ``body`` when ``reenter``)."""

    manager: Operand
    target: str | None
    body: list = field(default_factory=list)
    context: list = field(default_factory=list)
    reenter: bool = False
    checked: bool = True  # the manager may suppress an exception: the gradient checks that the body ran to its end
    line: int = 0
    col: int = 0

    def blocks(self) -> list[list]:
        return [self.body]

    def header_reads(self) -> list[Operand]:
        return [self.manager]  # (entered for what it does, whatever the body computes)

    def with_blocks(self, blocks: list[list]) -> With:
        return replace(self, body=blocks[0])


@record(eq=False)
class Handler:
    """``except types [as name]: body`` (``types`` None: a bare ``except``)."""

    types: Operand | None
    name: str | None
    body: list = field(default_factory=list)
    line: int = 0


@record(eq=False)
class Try(Statement):
    """``try: body / except ...: handler.body / else: orelse / finally: final``. ``path`` is bound to 0 when the body
    completes (then ``orelse`` runs) and to ``k`` when handler ``k`` (1-based) runs: the reverse sweep follows it."""

    body: list
    handlers: list
    orelse: list
    final: list
    path: str
    line: int = 0
    col: int = 0

    def blocks(self) -> list[list]:
        return [self.body] + [h.body for h in self.handlers] + [self.orelse, self.final]

    def header_reads(self) -> list[Operand]:
        # (the reverse sweep follows the path)
        return [Var(self.path)] + [h.types for h in self.handlers if h.types is not None]

    def with_blocks(self, blocks: list[list]) -> Try:
        n = len(self.handlers)
        handlers = [replace(h, body=b) for h, b in zip(self.handlers, blocks[1:1 + n])]
        return replace(self, body=blocks[0], handlers=handlers, orelse=blocks[1 + n], final=blocks[2 + n])


@record(eq=False)
class Break(Statement):
    line: int = 0
    col: int = 0


@record(eq=False)
class Continue(Statement):
    line: int = 0
    col: int = 0


def regions(stmt: Statement) -> list[list]:
    """The statement lists nested in ``stmt``, in program order (``[]`` for an op or a jump): ``stmt.blocks()``."""
    return stmt.blocks()


# --- traversal: the one way passes and builders walk the IR ------------------------------------------------------


def walk(body: list) -> list[Statement]:
    """Every statement in ``body``, nested blocks included, in program order (a compound statement before its
    blocks). (A list, made in one go: every pass walks the whole function, some several times.)"""
    out: list[Statement] = []
    _walk_into(body, out)
    return out


def _walk_into(body: list, out: list) -> None:
    for stmt in body:
        out.append(stmt)
        if stmt.__class__ is not Op:
            for block in stmt.blocks():
                _walk_into(block, out)


def walk_ops(body: list) -> list[Op]:
    """Every :class:`Op` in ``body``, nested blocks included, in program order."""
    return [stmt for stmt in walk(body) if isinstance(stmt, Op)]


def map_body(body: list, rewrite: Callable[[Statement], list]) -> list:
    """A new statement list: each statement, its blocks mapped first (a compound statement is copied with the new
    blocks; ``body`` is left as it is), replaced by the statements ``rewrite`` returns for it."""
    out: list = []
    for stmt in body:
        blocks = stmt.blocks()
        if blocks:
            stmt = stmt.with_blocks([map_body(block, rewrite) for block in blocks])
        out.extend(rewrite(stmt))
    return out


def copy_body(body: list) -> list:
    """A copy of ``body`` whose statements (ops included) are new objects: annotating the copy (the alias pass's
    run-time checks) leaves ``body`` as it was. Operands are immutable and shared."""
    return map_body(body, lambda stmt: [copy.copy(stmt) if isinstance(stmt, Op) else stmt])


def dispatch(obj: Any, prefix: str, stmt: Statement, *args: Any, default: Any = None) -> Any:
    """``obj.<prefix><class of stmt>(stmt, *args)`` (``reverse_If`` for an :class:`If`), or ``default`` when ``obj``
    has no such method: one object can hold several visits (a forward and a reverse sweep)."""
    method = getattr(obj, prefix + stmt.__class__.__name__, None)
    return default if method is None else method(stmt, *args)


class Visitor:
    """Dispatch on a statement's class: ``visit(stmt, ...)`` calls ``self.visit_If(stmt, ...)`` for an :class:`If`
    (``visit_Op``, ``visit_For``...); a statement without its method is skipped (None)."""

    def visit(self, stmt: Statement, *args: Any) -> Any:
        return dispatch(self, "visit_", stmt, *args)


@record(eq=False)
class Function:
    """A lowered function: parameters, body, and where it came from."""

    name: str
    params: list[str]
    body: list
    filename: str
    first_line: int
    source_lines: dict[int, str] = field(default_factory=dict)  # absolute line -> text, for comments and errors
    signature: str = ""  # the parameter list as the user wrote it (defaults included)
    used_names: frozenset = frozenset()  # every identifier the user's source mentions (never reused)
    local_names: frozenset = frozenset()  # the user's local variables and parameters (names bound in the function)
    # a path may return what is not a number: a constant such as None or a string, or nothing (an implicit None)
    may_return_non_number: bool = False
    temporaries: frozenset = frozenset()  # the names the lowering made for intermediate values (never a user's name)
    versions: dict = field(default_factory=dict)  # a rebound name's versions (x_1) -> the name they version (x)
    # the name messages give the function: the user's (the function of the leaves of structured arguments is f_leaves)
    user_name: str = ""
    col_offset: int = 0  # the file's column of the source's column 0 (a method's text is dedented to be parsed)

    def __str__(self) -> str:
        return format_function(self)


def format_op(op: Op) -> str:
    args = [str(a) for a in op.args] + [f"{k}={v}" for k, v in op.kwargs]
    if op.form.kind == "copy":
        return f"{op.target} = {op.args[0]}"
    if op.form.kind == "subscript":
        return f"{op.target} = {op.args[0]}{op.args[1]}"
    return f"{op.target} = {op.opname}({', '.join(args)})"


def format_function(fn: Function, notes: Callable[[str], str] | None = None) -> str:
    """The IR as text (the grammar in the module docstring). ``notes(name)``: what is known about a bound name (the
    passes' facts, ``t1:A active``), printed after the line of the statement that binds it and after the parameters."""
    head = f"def {fn.name}({', '.join(fn.params)}):"
    if notes is not None:
        facts = "  ".join(filter(None, (notes(p) for p in fn.params)))
        head = f"{head:<44}# {facts}" if facts else head
    lines = [head]
    _Formatter(lines, notes).block(fn.body, 1)
    return "\n".join(lines) + "\n"


class _Formatter(Visitor):
    def __init__(self, out: list[str], notes: Callable[[str], str] | None):
        self.out, self.notes = out, notes

    def block(self, body: list, depth: int) -> None:
        if not body:
            self.out.append("  " * depth + "pass")
        for stmt in body:
            self.visit(stmt, "  " * depth, depth)

    def line(self, text: str, stmt: Any, bound: str | None = None) -> None:
        note = self.notes(bound) if self.notes is not None and bound else ""
        self.out.append(f"{text:<44}# line {stmt.line}" + (f"  {note}" if note else ""))

    def visit_Op(self, stmt: Op, pad: str, depth: int) -> None:
        self.line(pad + format_op(stmt), stmt, stmt.target)

    def visit_Return(self, stmt: Return, pad: str, depth: int) -> None:
        self.line(f"{pad}return {stmt.value}", stmt)

    def visit_If(self, stmt: If, pad: str, depth: int) -> None:
        self.out.append(f"{pad}if {stmt.cond}:")
        self.block(stmt.body, depth + 1)
        if stmt.orelse:
            self.out.append(f"{pad}else:")
            self.block(stmt.orelse, depth + 1)

    def visit_For(self, stmt: For, pad: str, depth: int) -> None:
        self.out.append(f"{pad}for {stmt.target} in {stmt.iterable}:")
        self.block(stmt.body, depth + 1)

    def visit_While(self, stmt: While, pad: str, depth: int) -> None:
        self.out.append(f"{pad}while True:")
        self.block(stmt.test, depth + 1)
        self.out.append(f"{pad}  if not {stmt.cond}: break")
        self.block(stmt.body, depth + 1)

    def visit_With(self, stmt: With, pad: str, depth: int) -> None:
        self.out.append(f"{pad}with {stmt.manager}" + (f" as {stmt.target}:" if stmt.target else ":"))
        self.block(stmt.body, depth + 1)

    def visit_Try(self, stmt: Try, pad: str, depth: int) -> None:
        self.out.append(f"{pad}try:  # path {stmt.path}")
        self.block(stmt.body, depth + 1)
        for h in stmt.handlers:
            head = "except" + (f" {h.types}" if h.types is not None else "") + (f" as {h.name}" if h.name else "")
            self.out.append(f"{pad}{head}:")
            self.block(h.body, depth + 1)
        for word, part in (("else", stmt.orelse), ("finally", stmt.final)):
            if part:
                self.out.append(f"{pad}{word}:")
                self.block(part, depth + 1)

    def visit_Break(self, stmt: Break, pad: str, depth: int) -> None:
        self.out.append(pad + "break")

    def visit_Continue(self, stmt: Continue, pad: str, depth: int) -> None:
        self.out.append(pad + "continue")


def fresh_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... — the first not in ``taken`` (which then holds it)."""
    name = naming.fresh(base, taken, first=2)
    taken.add(name)
    return name
