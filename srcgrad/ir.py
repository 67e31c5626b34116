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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from srcgrad import naming

if TYPE_CHECKING:  # (the IR names the rule an op calls; it does not import the rule tables)
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
    ``subscript``, ``copy``, ``tuple``, ``list``, ``compare``; ``fstring`` (``symbol``: one code per part, ``L`` a
    literal, else the conversion ``n``/``s``/``r``/``a`` followed by ``:`` when a format spec operand follows);
    ``raise`` (``symbol`` ``from`` when a cause follows the exception); ``bound`` (the value a ``with ... as NAME`` or
    ``except ... as NAME`` binds: the compound statement binds it, the op only records what it depends on).
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
    effect: bool = False  # run for what it does (print, a call without a rule, raise): kept, once, in program order

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
class With:
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


@dataclass(eq=False)
class Handler:
    """``except types [as name]: body`` (``types`` None: a bare ``except``)."""

    types: Operand | None
    name: str | None
    body: list = field(default_factory=list)
    line: int = 0


@dataclass(eq=False)
class Try:
    """``try: body / except ...: handler.body / else: orelse / finally: final``. ``path`` is bound to 0 when the body
    completes (then ``orelse`` runs) and to ``k`` when handler ``k`` (1-based) runs: the reverse sweep follows it."""

    body: list
    handlers: list
    orelse: list
    final: list
    path: str
    line: int = 0
    col: int = 0


@dataclass(eq=False)
class Break:
    line: int = 0
    col: int = 0


@dataclass(eq=False)
class Continue:
    line: int = 0
    col: int = 0


Stmt = Union[Op, Return, If, For, While, With, Try, Break, Continue]


def regions(stmt) -> list[list]:
    """The statement lists nested in a compound statement, in program order (``[]`` for an op or a jump)."""
    if isinstance(stmt, If):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, For):
        return [stmt.body]
    if isinstance(stmt, While):
        return [stmt.test, stmt.body]
    if isinstance(stmt, With):
        return [stmt.body]
    if isinstance(stmt, Try):
        return [stmt.body] + [h.body for h in stmt.handlers] + [stmt.orelse, stmt.final]
    return []


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
    versions: dict = field(default_factory=dict)  # a rebound name's versions (x_1) -> the name they version (x)

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
        elif isinstance(stmt, With):
            out.append(f"{pad}with {stmt.manager}" + (f" as {stmt.target}:" if stmt.target else ":"))
            _format_block(stmt.body, out, depth + 1)
        elif isinstance(stmt, Try):
            out.append(f"{pad}try:  # path {stmt.path}")
            _format_block(stmt.body, out, depth + 1)
            for h in stmt.handlers:
                head = "except" + (f" {h.types}" if h.types is not None else "") + (f" as {h.name}" if h.name else "")
                out.append(f"{pad}{head}:")
                _format_block(h.body, out, depth + 1)
            for word, part in (("else", stmt.orelse), ("finally", stmt.final)):
                if part:
                    out.append(f"{pad}{word}:")
                    _format_block(part, out, depth + 1)
        elif isinstance(stmt, Break):
            out.append(pad + "break")
        elif isinstance(stmt, Continue):
            out.append(pad + "continue")


def walk_ops(body: list):
    """Every :class:`Op` in ``body``, nested regions included, in program order."""
    for stmt in body:
        if isinstance(stmt, Op):
            yield stmt
        else:
            for region in regions(stmt):
                yield from walk_ops(region)


def fresh_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... — the first not in ``taken`` (which then holds it)."""
    name = naming.fresh(base, taken, first=2)
    taken.add(name)
    return name
