"""The linear IR: the compute graph of a function as three-address statements.

In: built by :mod:`srcgrad.lower` from the user's AST. Out: read by the passes, the adjoint stage and the emitter.
What holds:
- every :class:`Op` applies one primitive to atomic operands (:class:`Var` or :class:`Const`) and binds one target;
- every statement carries the source line (absolute, in the user's file) it came from;
- control flow stays structured (:class:`If`, :class:`For`, :class:`While`) — no gotos;
- straight-line code at the top level is in SSA form: a rebound user name gets a fresh version (``x``, ``x_1``...).

The printed grammar (``str(function)``)::

    def NAME(PARAMS):
      TARGET = OP(OPERAND, ..., KEY=OPERAND)      # line N
      if OPERAND:  ... else: ...
      for TARGET in OPERAND: ...
      return OPERAND
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from srcgrad.rules.registry import Rule


@dataclass(frozen=True)
class Var:
    """A local name: a parameter, a user variable version, or a temporary (listed in ``Function.temporaries``)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Const:
    """A constant operand. ``text`` is how generated code spells it (``math.pi``, ``W`` for a global array)."""

    value: Any
    text: str | None = None
    live: bool = False  # a global or closure variable: read at call time, so its kind is not assumed

    def __str__(self) -> str:
        return self.text if self.text is not None else repr(self.value)


@dataclass(frozen=True)
class Slice:
    """A slice inside an index: each bound is an operand or None."""

    lower: Var | Const | None
    upper: Var | Const | None
    step: Var | Const | None

    def __str__(self) -> str:
        text = f"{_opt(self.lower)}:{_opt(self.upper)}"
        return text + (f":{self.step}" if self.step is not None else "")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Form:
    """How the forward operation is spelled in generated code.

    kind: ``binop`` / ``unaryop`` (``symbol``), ``call`` (``callee`` text), ``method`` (``name``), ``attr`` (``name``),
    ``subscript``, ``copy``, ``tuple``, ``list``, ``compare``.
    """

    kind: str
    symbol: str = ""


@dataclass(eq=False)
class Op:
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

    @property
    def guarded(self) -> bool:
        """Does a run-time check (srcgrad.aliasing) come before it? Then it runs even when its value is unused."""
        return bool(self.guard_unshared or self.guard_distinct)

    def operands(self) -> list[Operand]:
        """The atomic operands (indices flattened) this op reads."""
        out: list = []
        for a in list(self.args) + [v for _, v in self.kwargs]:
            out.extend(a.operands() if isinstance(a, Index) else [a])
        return out

    @property
    def opname(self) -> str:
        if self.form.kind == "copy":
            return "copy"
        if self.rule is not None:
            return self.rule.name
        if self.form.kind in ("call", "method", "attr"):
            return self.form.symbol
        return self.form.kind


@dataclass(eq=False)
class Return:
    value: Operand
    line: int = 0
    col: int = 0


@dataclass(eq=False)
class If:
    cond: Operand
    body: list = field(default_factory=list)
    orelse: list = field(default_factory=list)
    line: int = 0
    col: int = 0


@dataclass(eq=False)
class For:
    """``for target in iterable``; ``iterable`` is an operand (a ``range`` object, an array, a list...)."""

    target: str
    iterable: Operand
    body: list = field(default_factory=list)
    line: int = 0
    col: int = 0
    carried: list = field(default_factory=list)  # header versions: values that flow from one iteration to the next


@dataclass(eq=False)
class While:
    """``while True`` around ``test`` (statements computing ``cond``), then ``if not cond: break``, then ``body``."""

    test: list
    cond: Operand
    body: list = field(default_factory=list)
    line: int = 0
    col: int = 0
    carried: list = field(default_factory=list)


@dataclass(eq=False)
class Break:
    line: int = 0
    col: int = 0


@dataclass(eq=False)
class Continue:
    line: int = 0
    col: int = 0


Stmt = Union[Op, Return, If, For, While, Break, Continue]


@dataclass(eq=False)
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

    def __str__(self) -> str:
        return format_function(self)


def format_op(op: Op) -> str:
    args = [str(a) for a in op.args] + [f"{k}={v}" for k, v in op.kwargs]
    if op.form.kind == "copy":
        return f"{op.target} = {op.args[0]}"
    if op.form.kind == "subscript":
        return f"{op.target} = {op.args[0]}{op.args[1]}"
    return f"{op.target} = {op.opname}({', '.join(args)})"


def format_function(fn: Function) -> str:
    lines = [f"def {fn.name}({', '.join(fn.params)}):"]
    _format_block(fn.body, lines, 1)
    return "\n".join(lines) + "\n"


def _format_block(body: list, out: list[str], depth: int) -> None:
    pad = "  " * depth
    if not body:
        out.append(pad + "pass")
    for stmt in body:
        if isinstance(stmt, Op):
            text = pad + format_op(stmt)
            out.append(f"{text:<44}# line {stmt.line}")
        elif isinstance(stmt, Return):
            out.append(f"{pad + 'return ' + str(stmt.value):<44}# line {stmt.line}")
        elif isinstance(stmt, If):
            out.append(f"{pad}if {stmt.cond}:")
            _format_block(stmt.body, out, depth + 1)
            if stmt.orelse:
                out.append(f"{pad}else:")
                _format_block(stmt.orelse, out, depth + 1)
        elif isinstance(stmt, For):
            out.append(f"{pad}for {stmt.target} in {stmt.iterable}:")
            _format_block(stmt.body, out, depth + 1)
        elif isinstance(stmt, While):
            out.append(f"{pad}while True:")
            _format_block(stmt.test, out, depth + 1)
            out.append(f"{pad}  if not {stmt.cond}: break")
            _format_block(stmt.body, out, depth + 1)
        elif isinstance(stmt, Break):
            out.append(pad + "break")
        elif isinstance(stmt, Continue):
            out.append(pad + "continue")


def walk_ops(body: list):
    """Every :class:`Op` in ``body``, nested regions included, in program order."""
    for stmt in body:
        if isinstance(stmt, Op):
            yield stmt
        elif isinstance(stmt, If):
            yield from walk_ops(stmt.body)
            yield from walk_ops(stmt.orelse)
        elif isinstance(stmt, For):
            yield from walk_ops(stmt.body)
        elif isinstance(stmt, While):
            yield from walk_ops(stmt.test)
            yield from walk_ops(stmt.body)
