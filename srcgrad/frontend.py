"""Frontend: a Python function in, its parsed source and a name resolver out; the language fence.

In: a function object. Out: :class:`ParsedFunction` — the gast ``FunctionDef`` (decorators stripped), the file name,
the mapping from AST lines to file lines, and :meth:`ParsedFunction.resolve` that maps a free name to the Python
object it denotes (closure cell, module global, builtin).
What holds: every construct outside the supported subset is rejected by :func:`fence` with a
:class:`~srcgrad.errors.UnsupportedSyntax` naming ``file:line:col``; only this module and :mod:`srcgrad.lower`
import gast.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from dataclasses import field
from typing import Any

import gast

from srcgrad import codereading, freshness, gast_tree, locks
from srcgrad.errors import Location, SourceUnavailable, UnsupportedSyntax
from srcgrad.records import record

_MISSING = object()


@record
class ParsedFunction:
    func: Any
    node: gast.FunctionDef
    filename: str
    line_offset: int  # file line = AST line + line_offset
    col_offset: int  # file column = AST column + col_offset (the dedent)
    file_lines: dict[int, str] = field(default_factory=dict)
    source: str = ""  # the dedented source the AST was parsed from
    # its IR, lowered once (srcgrad.lower.lowered); not copied by dataclasses.replace (a new node is lowered anew)
    lowered: Any = field(default=None, init=False, repr=False, compare=False)
    # guards (with the function's defaults) the entry collected just before generating: the lowering takes them
    # instead of collecting the same again (srcgrad.lower.lowered)
    fresh_guards: Any = field(default=None, init=False, repr=False, compare=False)
    _nodes: list | None = field(default=None, init=False, repr=False, compare=False)  # (replace() walks anew)

    @property
    def nodes(self) -> list:
        """Every node of the function's tree, parents first: one walk, shared by the passes that scan the whole tree
        (the tree is never changed after parsing; transformations work on copies)."""
        if self._nodes is None:
            self._nodes = walk(self.node)
        return self._nodes

    def segment(self, node: Any) -> str:
        """The source text of an AST node."""
        return ast.get_source_segment(self.source, node) or ""

    @property
    def name(self) -> str:
        return self.node.name

    def location(self, node: Any) -> Location:
        line = getattr(node, "lineno", None) or self.node.lineno
        col = getattr(node, "col_offset", 0) or 0
        file_line = line + self.line_offset
        return Location(self.filename, file_line, col + self.col_offset, self.file_lines.get(file_line, ""))

    def file_line(self, node: Any) -> int:
        return (getattr(node, "lineno", None) or self.node.lineno) + self.line_offset

    def resolve(self, name: str) -> Any:
        """The object a free name denotes right now, or ``_MISSING``."""
        code = self.func.__code__
        if name in code.co_freevars:
            cell = self.func.__closure__[code.co_freevars.index(name)]
            try:
                return cell.cell_contents
            except ValueError:
                return _MISSING
        scope = self.func.__globals__
        if name in scope:
            return scope[name]
        return getattr(builtins, name, _MISSING)

    def is_closure_name(self, name: str) -> bool:
        return name in self.func.__code__.co_freevars


def walk(tree: Any) -> list:
    """``list(gast.walk(tree))`` (the same nodes in the same order, markers included) without its generators."""
    out = [tree]
    append = out.append
    k = 0
    while k < len(out):
        node = out[k]
        k += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, gast.AST):
                        append(item)
            elif isinstance(value, gast.AST):
                append(value)
    return out


def parse(func: Any) -> ParsedFunction:
    """Read and parse ``func``'s source; raise :class:`SourceUnavailable` when there is none."""
    if inspect.ismethod(func):
        raise _method_error(func)
    if not inspect.isfunction(func):
        raise SourceUnavailable(
            f"srcgrad differentiates Python functions defined with `def`; got {type(func).__name__} {func!r}",
            hint="wrap the callable in a `def` function, or declare its derivative with srcgrad.defgrad",
        )
    if func.__name__ == "<lambda>":
        raise SourceUnavailable(
            "srcgrad cannot read the source of a lambda passed directly",
            hint="define the function with `def name(...):` (lambdas are fine inside it)",
        )
    try:  # inspect.getsourcelines, but the text of the code the function runs: its file may have changed since
        source_file = inspect.getsourcefile(func)
        lines, start = freshness.source_lines(func, source_file)
        filename = source_file or func.__code__.co_filename
    except (OSError, TypeError) as exc:
        raise SourceUnavailable(
            f"the source of {func.__qualname__} is not available ({exc})",
            hint="define the function in a file (not in an interactive prompt or exec()), "
            "or use `srcgrad emit` ahead of time",
        ) from None
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    first = next((ln for ln in lines if ln.strip()), "")
    col_offset = len(first) - len(first.lstrip()) if dedented != text else 0
    try:
        parsed = freshness.parsed_block(filename, text) if dedented == text else None  # (the check's own parse)
        module = gast_tree.to_gast(parsed if parsed is not None else ast.parse(dedented))
    except SyntaxError as exc:
        raise SourceUnavailable(f"cannot parse the source of {func.__qualname__}: {exc}") from None
    node = module.body[0]
    start = max(start, 1)
    file_lines = {start + i: ln for i, ln in enumerate(lines)}
    if not isinstance(node, gast.FunctionDef):
        if isinstance(node, gast.AsyncFunctionDef):
            where = ParsedFunction(func, node, filename, start - 1, col_offset, file_lines, dedented)
            raise UnsupportedSyntax(f"srcgrad cannot differentiate {describe('AsyncFunctionDef')}",
                                    where.location(node), hint=HINTS["AsyncFunctionDef"])
        raise SourceUnavailable(f"the source of {func.__qualname__} is not a `def` statement")
    node.decorator_list = []
    return ParsedFunction(func, node, filename, start - 1, col_offset, file_lines, dedented)


def _method_error(method: Any) -> SourceUnavailable:
    """A bound method: say how to differentiate the function the class defines, with the instance as an argument."""
    function = method.__func__
    owner = getattr(method.__self__, "__name__", None) if isinstance(method.__self__, type) else None
    cls = owner or type(method.__self__).__name__
    params = list(codereading.signature_of(function).parameters)
    wrt = params[1] if len(params) > 1 else None
    call = f"srcgrad.grad({cls}.{function.__name__}" + (f", wrt={wrt!r})(instance, ...)" if wrt else ")(instance)")
    return SourceUnavailable(
        f"srcgrad differentiates functions, and got the bound method {cls}.{function.__name__} (its `self` is an "
        "object srcgrad cannot read)",
        hint="write a module-level function that takes what the method reads from `self` as arguments, e.g. "
             "`def loss(w, x): ...` and srcgrad.grad(loss)(model.w, x); a method that reads no attribute of `self` "
             f"can be differentiated as the class's function, with the instance as an argument: {call}",
    )


# --- the language fence ------------------------------------------------------------------------------------------

# Node types the lowering understands. Everything else is rejected with the hint below (or a generic one).
SUPPORTED = {
    "FunctionDef", "arguments", "Name", "Constant", "Load", "Store", "Assign", "AugAssign", "AnnAssign",
    "Return", "Expr", "Pass", "BinOp", "UnaryOp", "Call", "keyword", "Attribute", "Subscript", "Slice",
    "Tuple", "List", "Compare", "BoolOp", "If", "For", "While", "Break", "Continue", "IfExp",
    "Add", "Sub", "Mult", "Div", "Pow", "MatMult", "Mod", "FloorDiv", "USub", "UAdd", "Not", "And", "Or",
    "BitAnd", "BitOr", "BitXor", "LShift", "RShift", "Invert",  # (of integers, booleans, masks: no derivative)
    "Eq", "NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot", "In", "NotIn", "Assert",
    "ListComp", "GeneratorExp", "comprehension", "Lambda", "Param", "Raise", "JoinedStr", "FormattedValue",
    "NamedExpr", "With", "withitem", "Try", "ExceptHandler",
    # dicts built in the body (structures.rewrite_locals: their items become variables; what it cannot rewrite it
    # refuses), and `del` of their items
    "Dict", "DictComp", "Delete", "Del",
}

# What to do instead, for the constructs outside SUPPORTED.
HINTS = {
    "TryStar": "use `except` instead of `except*` (exception groups are not supported)",
    "AsyncWith": "differentiated functions cannot be async",
    "AsyncFunctionDef": "differentiated functions cannot be async",
    "AsyncFor": "differentiated functions cannot be async",
    "Await": "differentiated functions cannot be async",
    "Yield": "generator functions are not differentiable; return a value (e.g. a list or array) instead",
    "YieldFrom": "generator functions are not differentiable; return a value instead",
    "Global": "pass the value as an argument instead of assigning a global",
    "Nonlocal": "return the value instead of assigning an enclosing variable",
    "ClassDef": "define the class outside the differentiated function",
    "Import": "import at module level, outside the differentiated function",
    "ImportFrom": "import at module level, outside the differentiated function",
    "Starred": "pass arguments explicitly instead of unpacking with *",
    "SetComp": "sets are not differentiable; use a list",
    "Set": "sets are not differentiable; use a list",
    "Match": "use if/elif/else instead of `match`",
    "TypeAlias": "define type aliases at module level",
}

_DESCRIPTIONS = {
    "Try": "a `try` statement", "With": "a `with` statement", "Yield": "`yield`", "YieldFrom": "`yield from`",
    "Global": "a `global` statement", "Nonlocal": "a `nonlocal` statement", "Lambda": "a lambda",
    "FunctionDef": "a nested function definition", "ListComp": "a list comprehension",
    "GeneratorExp": "a generator expression", "Raise": "a `raise` statement", "Import": "an import",
    "ImportFrom": "an import", "Delete": "a `del` statement", "ClassDef": "a class definition",
    "NamedExpr": "an assignment expression (:=)", "Starred": "star-unpacking", "Match": "a `match` statement",
    "JoinedStr": "an f-string", "Dict": "a dict display", "Set": "a set display",
}


def describe(node_type: str) -> str:
    return _DESCRIPTIONS.get(node_type, f"`{node_type}`")


# a helper function -> (the code object it was parsed for, its parsed, fenced source) (parse_helper)
_PARSED: dict[Any, tuple[Any, ParsedFunction]] = {}
_PARSED_LOCK = locks.rlock()


def parse_helper(func: Any) -> ParsedFunction:
    """A user function that differentiated code calls, parsed and fenced once (the generation of its variants,
    their guards and the alias analysis of its effects all read it)."""
    with _PARSED_LOCK:
        known = _PARSED.get(func)
        if known is None or known[0] is not func.__code__:  # (its code replaced: another source)
            code = func.__code__
            pf = parse(func)
            fence(pf)
            _PARSED[func] = known = (code, pf)
        return known[1]


def fence(pf: ParsedFunction) -> None:
    """Reject every construct outside the supported subset, naming file:line:col."""
    if all(type(node).__name__ in SUPPORTED for node in pf.nodes):
        return  # (every node of the tree, signature included: a superset of what the walk below checks)
    for node, positioned in _walk_body(pf.node):
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise UnsupportedSyntax(
                f"srcgrad cannot differentiate {describe(kind)}",
                pf.location(positioned),
                hint=HINTS.get(kind, "rewrite this with the supported subset (see the README, 'What srcgrad "
                               "differentiates')"),
            )


def _walk_body(fn: gast.FunctionDef):
    """Every node of the body with the nearest node that has a source position (operators have none: an error about
    ``a ^ b`` points at the expression). The function's own annotations and defaults are Python's business."""
    stack = [(n, n) for n in reversed(fn.body)]
    yield fn, fn
    while stack:
        node, positioned = stack.pop()
        if getattr(node, "lineno", None) is not None:
            positioned = node
        yield node, positioned
        if isinstance(node, gast.AnnAssign):
            children = [node.target] + ([node.value] if node.value is not None else [])
        elif isinstance(node, gast.Name):
            children = [node.ctx]
        else:
            children = list(gast.iter_child_nodes(node))
        stack.extend((c, positioned) for c in reversed(children))
