"""Compute graphs: the linear IR in; text, Graphviz DOT and rendered pictures (SVG, PNG, PDF) out.

In: a user function (``srcgrad.graph(f)``), optionally with its reverse sweep (``adjoint=True``) and an
:class:`~srcgrad.explain.Explanation` whose values and adjoints annotate the nodes.
Out: :class:`Graph` — ``str()`` is the linear IR exactly as the IR printer writes it; ``to_dot()`` the DOT text;
``render(path)`` a file (``.dot`` always; other formats through Graphviz's ``dot`` program); ``_repr_svg_`` for
Jupyter.
What holds:
- one node per input (ellipse), per operation (box: the operation, then the variable it defines — the user's names
  are kept, temporaries are ``tN``) and per use of a constant (plain text); an edge from each definition of a name to
  each operation that reads it (dashed when it flows back around a loop); the output has a double border;
  ``if``/``for``/``while`` regions are drawn as boxes (clusters);
- the reverse sweep (``adjoint=True``) is read from the generated gradient code (the step-by-step variant that
  ``srcgrad.explain`` runs, every adjoint in a variable): one red node per statement that computes an adjoint,
  placed under the node whose adjoint it is, red arrows for the flow of adjoints (from the output back to the
  inputs) and dotted arrows from the forward values it reads;
- the DOT text is deterministic (nodes numbered in program order, no set order, no ids): golden tests compare it.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from srcgrad import ir, pipeline, sourcetext
from srcgrad.errors import reading

INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: `apt-get install graphviz`; Fedora: `dnf install graphviz`; macOS: "
    "`brew install graphviz`; conda: `conda install graphviz`; Windows: `winget install graphviz`; "
    "https://graphviz.org/download/), or write a .dot file, which needs no Graphviz"
)
FORMATS = ("dot", "gv", "svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps", "webp", "json")

# colours
_INPUT_FILL = "#dbe9fb"
_OP_FILL = "#f4f4f4"
_REVERSE = "#c01c28"
_REVERSE_FILL = "#fdeaea"
_VALUE = "#1a5fb4"
_MUTED = "#777777"


class GraphvizNotFound(RuntimeError):
    """A picture format other than .dot was asked for, and Graphviz's ``dot`` program is not on PATH."""


class Graph:
    """The compute graph of a function: its linear IR. ``str(graph)`` prints it; ``to_dot``/``render`` draw it."""

    def __init__(self, function: ir.Function, func: Callable | None = None, adjoint: bool = False,
                 wrt: int | str | tuple = 0):
        self.function = function
        self.func = func
        self.adjoint = adjoint
        self.wrt = wrt

    def __str__(self) -> str:
        return str(self.function)

    def __repr__(self) -> str:
        return f"<srcgrad.Graph of {self.function.name}>\n{self}"

    # --- drawing ---------------------------------------------------------------------------------------------------

    def adjoint_source(self, explain: Any = None) -> str | None:
        """The generated gradient code whose reverse sweep is drawn (None without ``adjoint``): srcgrad's
        step-by-step variant, which keeps every adjoint in a variable (the optimised code folds constant ones into
        their uses), specialised to the explained arguments or else general."""
        if not self.adjoint:
            return None
        if explain is not None:
            return explain.source
        from srcgrad import api

        return api.Transform(self.func, self.wrt, "explain").generic().source

    def to_dot(self, explain: Any = None) -> str:
        """The graph as Graphviz DOT text; with ``explain``, nodes show their values and adjoints."""
        return _DotWriter(self.function, explain, self.adjoint_source(explain)).write()

    def render(self, path: str | os.PathLike, explain: Any = None, format: str | None = None) -> Path:
        """Write the picture to ``path``; the format is ``format`` or the file's suffix (``.dot``, ``.svg``, ``.png``,
        ``.pdf``...). Formats other than DOT need Graphviz's ``dot`` program. Returns the path."""
        path = Path(path)
        fmt = (format or path.suffix.lstrip(".")).lower()
        if not fmt:
            raise ValueError(f"cannot tell the picture format of {str(path)!r}: use a suffix such as .dot, .svg, .png "
                             "or .pdf, or pass format=")
        if fmt not in FORMATS:
            raise ValueError(f"unknown picture format {fmt!r}; use one of {', '.join(FORMATS)}")
        text = self.to_dot(explain)
        if fmt in ("dot", "gv"):
            path.write_bytes(text.encode("utf-8"))
        else:
            path.write_bytes(run_dot(text, fmt, path.name))
        return path

    def svg(self, explain: Any = None) -> str:
        """The picture as SVG text (needs Graphviz)."""
        return run_dot(self.to_dot(explain), "svg", "an SVG picture").decode("utf-8")

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the picture; without Graphviz it falls back to the text (``__repr__``)."""
        try:
            return self.svg()
        except GraphvizNotFound:
            return None


def graph(func: Callable, *, adjoint: bool = False, wrt: int | str | tuple | None = None) -> Graph:
    """The compute graph of ``func``: its linear IR as lowered from the source (``str()``), drawable with
    ``to_dot()``/``render(path)``. ``adjoint=True`` adds the reverse sweep of the gradient with respect to ``wrt``
    (default: that of a function made by ``srcgrad.grad``, else the first parameter)."""
    transform = getattr(func, "__srcgrad_transform__", None)
    if transform is not None:
        pf = transform.pf
        if wrt is None:
            wrt = tuple(transform.wrt) if transform.as_tuple else transform.wrt[0]
        func = transform.func
    with reading(func):
        if transform is None:
            pf = pipeline.parse_and_fence(func)
        function = pipeline.lower_function(pf)
    return Graph(function, func, adjoint, 0 if wrt is None else wrt)


def dot_program() -> str | None:
    """The path of Graphviz's ``dot`` program, or None."""
    return shutil.which("dot")


def run_dot(text: str, fmt: str, what: str = "the picture") -> bytes:
    """Render DOT ``text`` to ``fmt`` with Graphviz."""
    program = dot_program()
    if program is None:
        raise GraphvizNotFound(f"cannot render {what}: Graphviz's `dot` program is not on PATH; {INSTALL_HINT}")
    done = subprocess.run([program, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz `dot -T{fmt}` failed: {done.stderr.decode('utf-8', 'replace').strip()}")
    return done.stdout


# --- DOT ---------------------------------------------------------------------------------------------------------


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(text: str) -> str:
    """Text inside an HTML-like label."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


class _DotWriter:
    def __init__(self, fn: ir.Function, explain: Any, reverse_source: str | None):
        self.fn = fn
        self.explain = explain
        self.reverse_source = reverse_source
        self.lines: list[str] = []
        self.edges: list[str] = []
        self.ranks: list[str] = []
        self.defs: dict[str, list[str]] = {}  # name -> node ids defining it, in program order
        self.position: dict[str, int] = {}  # node id -> program order
        self.clustered: set[str] = set()  # node ids inside a cluster
        self.uses: list[tuple[str, str, str]] = []  # (name read, reading node id, edge style)
        self.outputs = {s.value.name for s in _walk(fn.body) if isinstance(s, ir.Return)
                        and isinstance(s.value, ir.Var)}
        self.counter = 0
        self.depth = 0
        self.ran = {(r.node, r.operation, r.line) for r in explain.rows} if explain is not None else set()

    # --- helpers ---------------------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        node_id = f"{prefix}{self.counter}"
        self.position[node_id] = self.counter
        if self.depth:
            self.clustered.add(node_id)
        return node_id

    def emit(self, text: str) -> None:
        self.lines.append("  " * (self.depth + 1) + text)

    def node(self, node_id: str, pairs: list[tuple[str, str]]) -> None:
        self.emit(f"{node_id} {_attrs(pairs)};")

    def annotations(self, name: str, op: ir.Op | None = None) -> str:
        if self.explain is None:
            return ""
        from srcgrad.explain import operation_text, summarize

        if op is not None and (op.target, operation_text(op), op.line) not in self.ran:
            return ""  # removed as dead code, or on the branch not taken

        out = ""
        if name in self.explain.values:
            out += f'<br/><font color="{_VALUE}">value {_h(summarize(self.explain.values[name]))}</font>'
        if name in self.explain.adjoints:
            out += f'<br/><font color="{_REVERSE}">grad {_h(summarize(self.explain.adjoints[name]))}</font>'
        return out

    def define(self, name: str, node_id: str) -> None:
        self.defs.setdefault(name, []).append(node_id)

    def read(self, operand: Any, node_id: str) -> None:
        if isinstance(operand, ir.Var):
            self.uses.append((operand.name, node_id, ""))
        elif isinstance(operand, ir.Const):
            const_id = self.new_id("c")
            self.node(const_id, [("label", _q(str(operand))), ("shape", "plaintext"), ("fontcolor", _q(_MUTED))])
            self.edges.append(f"{const_id} -> {node_id};")

    # --- the forward graph -----------------------------------------------------------------------------------

    def write(self) -> str:
        fn = self.fn
        title = f"{fn.name}({', '.join(fn.params)})  {pipeline._short(fn.filename)}:{fn.first_line}"
        if self.explain is not None:
            from srcgrad.explain import summarize

            title += "  at " + ", ".join(f"{p}={summarize(v)}" for p, v in zip(self.explain.params,
                                                                              self.explain.args))
        if self.reverse_source is not None:
            title += "  (red: reverse sweep)"
        graph_attrs = [("rankdir", "LR"), ("compound", "true"), ("fontname", _q("Helvetica")), ("fontsize", "12"),
                       ("labelloc", "t"), ("label", _q(title)), ("nodesep", "0.3"), ("ranksep", "0.35")]
        head = [
            f"digraph {_q(fn.name)} {{",
            f"  graph {_attrs(graph_attrs)};",
            f"  node {_attrs([('fontname', _q('Helvetica')), ('fontsize', '11')])};",
            f"  edge {_attrs([('color', _q('#444444')), ('arrowsize', '0.7')])};",
        ]
        for p in fn.params:
            node_id = self.new_id("in_")
            pairs = [("label", f"<<b>{_h(p)}</b>{self.annotations(p)}>"), ("shape", "ellipse"), ("style", "filled"),
                     ("fillcolor", _q(_INPUT_FILL)), ("tooltip", _q(f"input {p}"))]
            if p in self.outputs:
                pairs.append(("peripheries", "2"))
            self.node(node_id, pairs)
            self.define(p, node_id)
        self.block(fn.body)
        if self.reverse_source is not None:
            self.reverse()
        self.resolve_uses()
        return "\n".join(head + self.lines + ["  " + e for e in self.edges] + ["  " + r for r in self.ranks]
                         + ["}"]) + "\n"

    def block(self, body: list) -> None:
        for stmt in body:
            if isinstance(stmt, ir.Op):
                self.op(stmt)
            elif isinstance(stmt, ir.If):
                self.if_(stmt)
            elif isinstance(stmt, ir.For):
                self.for_(stmt)
            elif isinstance(stmt, ir.While):
                self.while_(stmt)
            elif isinstance(stmt, ir.Return) and isinstance(stmt.value, ir.Const):
                node_id = self.new_id("ret")
                self.node(node_id, [("label", _q(f"return {stmt.value}")), ("shape", "box"), ("peripheries", "2")])

    def op(self, op: ir.Op) -> None:
        node_id = self.new_id("n")
        source = self.fn.source_lines.get(op.line, "").strip()
        pairs = [
            ("label", f"<<b>{_h(op.opname)}</b><br/>{_h(op.target)}{self.annotations(op.target, op)}>"),
            ("shape", "box"), ("style", _q("rounded,filled")), ("fillcolor", _q(_OP_FILL)),
            ("tooltip", _q(f"{ir.format_op(op)}    (line {op.line}: {source})")),
        ]
        if op.target in self.outputs:
            pairs.append(("peripheries", "2"))
        self.node(node_id, pairs)
        for operand in op.operands():
            self.read(operand, node_id)
        self.define(op.target, node_id)

    def cluster(self, label: str, body: Callable[[], None]) -> tuple[str, str | None]:
        """Draw ``body`` inside a box; returns the cluster's name and its first node."""
        self.counter += 1
        name, start = f"cluster_{self.counter}", self.counter
        self.emit(f"subgraph {name} {{")
        self.depth += 1
        style = [("label", _q(label)), ("style", _q("rounded,dashed")), ("color", _q("#999999")),
                 ("fontcolor", _q("#555555"))]
        self.emit(f"graph {_attrs(style)};")
        body()
        self.depth -= 1
        self.emit("}")
        first = next((nid for nid, pos in self.position.items() if pos > start), None)
        return name, first

    def control(self, label: str, shape: str, tooltip: str) -> str:
        node_id = self.new_id("ctl")
        self.node(node_id, [("label", _q(label)), ("shape", shape), ("style", "filled"), ("fillcolor", _q("#fff6d5")),
                            ("fontsize", "10"), ("tooltip", _q(tooltip))])
        return node_id

    def if_(self, stmt: ir.If) -> None:
        test = self.control(f"if {stmt.cond}", "diamond", f"line {stmt.line}: "
                            f"{self.fn.source_lines.get(stmt.line, '').strip()}")
        self.read(stmt.cond, test)
        for label, body in (("then", stmt.body), ("else", stmt.orelse)):
            if not body:
                continue
            name, first = self.cluster(f"{label} (if {stmt.cond}, line {stmt.line})", lambda b=body: self.block(b))
            if first is not None:
                pairs = [("lhead", name), ("style", "dotted"), ("label", _q(label)), ("fontsize", "9")]
                self.edges.append(f"{test} -> {first} {_attrs(pairs)};")

    def for_(self, stmt: ir.For) -> None:
        def body() -> None:
            head = self.control(f"for {stmt.target} in {stmt.iterable}", "hexagon",
                                f"line {stmt.line}: {self.fn.source_lines.get(stmt.line, '').strip()}")
            self.read(stmt.iterable, head)
            self.define(stmt.target, head)
            self.block(stmt.body)

        self.cluster(f"for loop, line {stmt.line}", body)

    def while_(self, stmt: ir.While) -> None:
        def body() -> None:
            self.block(stmt.test)
            head = self.control(f"while {stmt.cond}", "diamond",
                                f"line {stmt.line}: {self.fn.source_lines.get(stmt.line, '').strip()}")
            self.read(stmt.cond, head)
            self.block(stmt.body)

        self.cluster(f"while loop, line {stmt.line}", body)

    def resolve_uses(self) -> None:
        for name, reader, style in self.uses:
            for source in self.defs.get(name, []):
                pairs: list[tuple[str, str]] = []
                if style == "forward-read":
                    pairs = [("style", "dotted"), ("color", _q("#9a9a9a")), ("constraint", "false"),
                             ("arrowhead", "none")]
                elif self.position[source] >= self.position[reader]:
                    pairs = [("style", "dashed"), ("constraint", "false")]  # around a loop
                self.edges.append(f"{source} -> {reader}" + (f" {_attrs(pairs)}" if pairs else "") + ";")

    # --- the reverse sweep -----------------------------------------------------------------------------------

    def reverse(self) -> None:
        fn = self.fn
        forward = set(fn.used_names) | set(fn.params) | {op.target for op in ir.walk_ops(fn.body)}
        tree = ast.parse(self.reverse_source)
        fdef = tree.body[0]
        stored = {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        adjoint_of: dict[str, str] = {}
        for v in sorted(forward):
            candidate, k = f"{v}_bar", 0
            while candidate in forward:
                k += 1
                candidate = f"{v}_bar_{k}"
            if candidate in stored:
                adjoint_of[candidate] = v
        comments = _comment_lines(self.reverse_source)
        body = fdef.body
        start = next((i for i, s in enumerate(body) if isinstance(s, ast.Return) or (
            isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id in adjoint_of for t in s.targets))),
            len(body))
        nodes: list[tuple[str, str | None, ast.stmt, tuple]] = []  # (node id, name defined, statement, path)
        for stmt, path in _flatten(body[start:], ()):
            if isinstance(stmt, ast.Return):
                nodes.append((self.new_id("r"), None, stmt, path))
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                    and stmt.targets[0].id not in forward:
                nodes.append((self.new_id("r"), stmt.targets[0].id, stmt, path))
        defs: dict[str, list[tuple[str, tuple]]] = {}
        for node_id, target, _, path in nodes:
            if target is not None:
                defs.setdefault(target, []).append((node_id, path))
        back = [("dir", "back"), ("color", _q(_REVERSE))]
        for node_id, target, stmt, path in nodes:
            self.reverse_node(node_id, target, stmt, path, defs, comments.get(stmt.lineno, ""))
            reads: list[str] = []
            for n in ast.walk(stmt.value) if stmt.value is not None else []:
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in reads:
                    reads.append(n.id)
            here = self.position[node_id]
            for name in reads:
                if name not in defs:
                    if name in self.defs:
                        self.uses.append((name, node_id, "forward-read"))
                    continue
                reachable = [(d, p) for d, p in defs[name] if not _exclusive(p, path)]
                earlier = _latest([(d, p) for d, p in reachable if self.position[d] < here])
                around = [d for d, p in reachable if self.position[d] >= here
                          and any(step[0] == "loop" and step in p for step in path)]
                for d in earlier:
                    self.edges.append(f"{node_id} -> {d} {_attrs(back)};")
                for d in around if earlier else around or [d for d, _ in defs[name]]:
                    self.edges.append(f"{node_id} -> {d} {_attrs(back + [('style', 'dashed')])};")
            anchors = self.defs.get(adjoint_of.get(target or "", ""), [])
            if len(anchors) == 1 and anchors[0] not in self.clustered:
                self.ranks.append(f"{{rank=same; {anchors[0]}; {node_id};}}")

    def reverse_node(self, node_id: str, target: str | None, stmt: ast.stmt, path: tuple,
                     defs: dict[str, list[tuple[str, tuple]]], comment: str) -> None:
        text = ast.unparse(stmt)
        note = ""
        # The value a name holds at the end belongs to its only definition, or to its last one outside branches/loops.
        final = target is not None and (len(defs[target]) == 1 or (defs[target][-1][0] == node_id and not path))
        if final and self.explain is not None and target in self.explain.namespace:
            from srcgrad.explain import summarize

            note = f'<br/><font color="{_REVERSE}">= {_h(summarize(self.explain.namespace[target]))}</font>'
        pairs = [("label", f"<{_h(text)}{note}>"), ("shape", "box"), ("style", _q("rounded,filled")),
                 ("color", _q(_REVERSE)), ("fillcolor", _q(_REVERSE_FILL)), ("fontcolor", _q("#5c0a10")),
                 ("tooltip", _q(comment or text))]
        if target is None:
            pairs.append(("peripheries", "2"))
        self.node(node_id, pairs)


def _flatten(statements: list, path: tuple):
    """The simple statements, each with its path: the branches (``("if", n, side)``) and loops it sits in."""
    for stmt in statements:
        if isinstance(stmt, ast.If):
            yield from _flatten(stmt.body, path + (("if", id(stmt), "then"),))
            yield from _flatten(stmt.orelse, path + (("if", id(stmt), "else"),))
        elif isinstance(stmt, (ast.For, ast.While)):
            yield from _flatten(stmt.body, path + (("loop", id(stmt)),))
            yield from _flatten(stmt.orelse, path)
        else:
            yield stmt, path


def _latest(defs: list[tuple[str, tuple]]) -> list[str]:
    """The definitions a read can see: the last one, and the ones before it on other sides of the same branches."""
    seen: list[tuple[str, tuple]] = []
    for d, p in reversed(defs):
        if all(_exclusive(p, q) for _, q in seen):
            seen.append((d, p))
        else:
            break
    return [d for d, _ in reversed(seen)]


def _exclusive(a: tuple, b: tuple) -> bool:
    """Whether two paths sit on different sides of the same branch (they never both run in one pass)."""
    sides = {step[1]: step[2] for step in a if step[0] == "if"}
    return any(step[0] == "if" and sides.get(step[1], step[2]) != step[2] for step in b)


def _comment_lines(source: str) -> dict[int, str]:
    """For each line of the generated code, the ``# grad of line N: ...`` comment it falls under (a comment holds
    until the code leaves its block)."""
    out: dict[int, str] = {}
    current, depth = "", 0
    for number, line in enumerate(sourcetext.lines(source), start=1):
        line = line.rstrip("\r\n")
        text = line.strip()
        indent = len(line) - len(line.lstrip())
        if text and indent < depth:
            current = ""
        if text.startswith("# grad of"):
            current, depth = text[2:], indent
        out[number] = current
    return out


def _walk(body: list):
    for stmt in body:
        yield stmt
        if isinstance(stmt, ir.If):
            yield from _walk(stmt.body)
            yield from _walk(stmt.orelse)
        elif isinstance(stmt, ir.For):
            yield from _walk(stmt.body)
        elif isinstance(stmt, ir.While):
            yield from _walk(stmt.test)
            yield from _walk(stmt.body)


__all__ = ["FORMATS", "Graph", "GraphvizNotFound", "INSTALL_HINT", "dot_program", "graph", "run_dot"]
