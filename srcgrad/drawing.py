"""Compute graphs: the linear IR in; text, Graphviz DOT and rendered pictures (SVG, PNG, PDF) out.

In: a user function (``srcgrad.graph(f)``), optionally with its reverse sweep (``adjoint=True``) and an
:class:`~srcgrad.explanation.Explanation` whose values and adjoints annotate the nodes.
Out: :class:`Graph` — ``str()`` is the linear IR exactly as the IR printer writes it; ``model()`` the nodes, edges
and clusters of its picture (:class:`srcgrad.picture.GraphModel`), which ``to_dot()`` writes as DOT text and
srcgrad/svg.py draws as SVG; ``render(path)`` a file: ``.dot`` always, ``.svg`` through Graphviz's ``dot`` program
or, without it (or with ``engine="builtin"``), srcgrad's own layout (srcgrad/layout.py), other formats through
Graphviz only; ``_repr_svg_`` for Jupyter.
What holds:
- one node per input (ellipse), per operation (box: the operation, then the variable it defines — the user's names
  are kept, temporaries are ``tN``) and per use of a constant (plain text); an edge from each definition of a name to
  each operation that reads it (dashed when it flows back around a loop); the output has a double border;
  ``if``/``for``/``while`` regions are drawn as boxes (clusters);
- the reverse sweep (``adjoint=True``) is drawn from the generated gradient code (the step-by-step variant that
  ``srcgrad.explain`` runs, every adjoint in a variable): its statements, with what the core recorded about them
  (:class:`srcgrad.generated.Generated`: the line map says which statements are the reverse sweep and the comment
  each falls under, the adjoint map whose adjoint a name is — nothing is read from comments or guessed from a
  name's spelling): one red node per statement that computes an adjoint, placed under the node whose adjoint it is,
  red arrows for the flow of adjoints (from the output back to the inputs) and dotted arrows from the forward values
  it reads;
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

from srcgrad import api, ir, pipeline
from srcgrad.errors import reading
from srcgrad.generated import REVERSE, Generated
from srcgrad.picture import INSTALL_HINT, Cluster, Colours, Edge, GraphModel, Node
from srcgrad.summary import operation_text, summarize
from srcgrad.svg import to_svg

FORMATS = ("dot", "gv", "svg", "png", "pdf", "jpg", "jpeg", "gif", "ps", "eps", "webp", "json")


class GraphvizNotFound(RuntimeError):
    """A picture format other than .dot was asked for, and Graphviz's ``dot`` program is not on PATH."""


class Graph:
    """The compute graph of a function: its linear IR. ``str(graph)`` prints it; ``to_dot``/``render`` draw it."""

    def __init__(self, function: ir.Function, func: Callable[..., Any] | None = None, adjoint: bool = False,
                 wrt: int | str | tuple[int | str, ...] = 0, code: Generated | None = None) -> None:
        self.function = function
        self.func = func
        self.adjoint = adjoint
        self.wrt = wrt
        self.code = code  # (structured example arguments) the step-by-step code of the function of leaves

    def __str__(self) -> str:
        return str(self.function)

    def __repr__(self) -> str:
        return f"<srcgrad.Graph of {self.function.name}>\n{self}"

    # --- drawing ---------------------------------------------------------------------------------------------------

    def adjoint_code(self, explain: Any = None) -> Generated | None:
        """The generated gradient code whose reverse sweep is drawn (None without ``adjoint``): srcgrad's
        step-by-step variant, which keeps every adjoint in a variable (the optimised code folds constant ones into
        their uses), specialised to the explained arguments or else general."""
        if not self.adjoint:
            return None
        if explain is not None:
            generated = explain.generated
            return generated.inner if getattr(generated, "structured", False) else generated
        if self.code is not None:
            return self.code
        return api.Transform(self.func, self.wrt, "explain").generic()

    def to_dot(self, explain: Any = None) -> str:
        """The graph as Graphviz DOT text; with ``explain``, nodes show their values and adjoints."""
        return to_dot(self.model(explain))

    def model(self, explain: Any = None) -> GraphModel:
        """The nodes, edges and clusters the pictures draw; with ``explain``, nodes carry values and adjoints."""
        return build_model(self.function, explain, self.adjoint_code(explain))

    def render(self, path: str | os.PathLike[str], explain: Any = None, format: str | None = None,
               engine: str | None = None) -> Path:
        """Write the picture to ``path``; the format is ``format`` or the file's suffix (``.dot``, ``.svg``, ``.png``,
        ``.pdf``...). ``engine`` draws it: ``"graphviz"`` (its ``dot`` program), ``"builtin"`` (srcgrad's own
        layout, SVG only) or None: the environment variable ``SRCGRAD_GRAPH_ENGINE``, else Graphviz when ``dot`` is
        on PATH, else the built-in layout. Formats other than DOT and SVG need Graphviz. Returns the path."""
        path = Path(path)
        fmt = (format or path.suffix.lstrip(".")).lower()
        if not fmt:
            raise ValueError(f"cannot tell the picture format of {str(path)!r}: use a suffix such as .dot, .svg, .png "
                             "or .pdf, or pass format=")
        if fmt not in FORMATS:
            raise ValueError(f"unknown picture format {fmt!r}; use one of {', '.join(FORMATS)}")
        model = self.model(explain)
        if fmt in ("dot", "gv"):
            path.write_bytes(to_dot(model).encode("utf-8"))
        else:
            path.write_bytes(_draw(model, fmt, path.name, engine))
        return path

    def svg(self, explain: Any = None, engine: str | None = None) -> str:
        """The picture as SVG text (through Graphviz, or srcgrad's built-in layout without it: see ``render``)."""
        return _draw(self.model(explain), "svg", "an SVG picture", engine).decode("utf-8")

    def _repr_svg_(self) -> str | None:
        """Jupyter shows the picture (Graphviz's, or the built-in layout's); failing that, the text (``__repr__``)."""
        try:
            return self.svg()
        except GraphvizNotFound:  # SRCGRAD_GRAPH_ENGINE=graphviz without Graphviz
            return None


ENGINES = ("builtin", "graphviz")
ENGINE_VARIABLE = "SRCGRAD_GRAPH_ENGINE"


def choose_engine(engine: str | None = None) -> str:
    """Which renderer draws pictures: ``engine``, else ``$SRCGRAD_GRAPH_ENGINE``, else Graphviz when its ``dot``
    program is on PATH, else the built-in layout."""
    chosen = engine or os.environ.get(ENGINE_VARIABLE) or None
    if chosen is None:
        return "graphviz" if dot_program() is not None else "builtin"
    if chosen not in ENGINES:
        where = "engine=" if engine else f"${ENGINE_VARIABLE}="
        raise ValueError(f"unknown picture engine {where}{chosen!r}; use 'builtin' or 'graphviz' (or leave it unset: "
                         "Graphviz when installed, else built in)")
    return chosen


def _draw(model: GraphModel, fmt: str, what: str, engine: str | None) -> bytes:
    """The picture of ``model`` in format ``fmt`` (not DOT), by the chosen engine."""
    chosen = choose_engine(engine)
    if chosen == "builtin" and fmt == "svg":
        return to_svg(model, stacklevel=4).encode("utf-8")
    if chosen == "builtin" and (engine or os.environ.get(ENGINE_VARIABLE)) and dot_program() is not None:
        raise ValueError(f"cannot render {what} with the built-in engine: it draws .svg only; use engine='graphviz' "
                         "for other formats")
    if chosen == "builtin":
        raise GraphvizNotFound(f"cannot render {what}: .{fmt} pictures need Graphviz's `dot` program, which is not on "
                               f"PATH (srcgrad's built-in renderer writes .svg and .dot); {INSTALL_HINT}")
    return run_dot(to_dot(model), fmt, what)


def graph(func: Callable[..., Any], *, adjoint: bool = False, wrt: int | str | tuple[int | str, ...] | None = None,
          example: tuple[Any, ...] | None = None) -> Graph:
    """The compute graph of ``func``: its linear IR as lowered from the source (``str()``), drawable with
    ``to_dot()``/``render(path)``. ``adjoint=True`` adds the reverse sweep of the gradient with respect to ``wrt``
    (default: that of a function made by ``srcgrad.grad``, else the first parameter). ``example``: arguments whose
    structures (dicts, lists, dataclasses... of the parameters) the graph is drawn for: the graph of the function of
    their leaves (``p["W"]`` is the input ``p_W``), what the gradient of a structured parameter needs."""
    transform = getattr(func, "__srcgrad_transform__", None)
    if transform is not None:
        pf = transform.pf
        if wrt is None:
            wrt = tuple(transform.wrt) if transform.as_tuple else transform.wrt[0]
        func = transform.func
    wrt = 0 if wrt is None else wrt
    with reading(func):
        if transform is None:
            pf = pipeline.parse_and_fence(func)
        if example is not None:
            code = api.Transform(func, wrt, "explain").generic(tuple(example))
            if getattr(code, "structured", False):
                return Graph(pipeline.lower_function(code.leaves_pf), func, adjoint, wrt, code.inner)
        function = pipeline.lower_function(pf)
    return Graph(function, func, adjoint, wrt)


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


class _ModelBuilder:
    def __init__(self, fn: ir.Function, explain: Any, reverse_code: Generated | None):
        self.fn = fn
        self.explain = explain
        self.reverse_code = reverse_code
        self.model = GraphModel(fn.name, "")
        self.open: list[Cluster] = []  # the clusters being filled, innermost last
        self.defs: dict[str, list[str]] = {}  # name -> node ids defining it, in program order
        self.position: dict[str, int] = {}  # node id -> program order
        self.uses: list[tuple[str, str, str]] = []  # (name read, reading node id, edge kind)
        self.outputs = {s.value.name for s in _walk(fn.body) if isinstance(s, ir.Return)
                        and isinstance(s.value, ir.Var)}
        self.counter = 0
        self.ran = {(r.node, r.operation, r.line) for r in explain.rows} if explain is not None else set()

    # --- helpers ---------------------------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        node_id = f"{prefix}{self.counter}"
        self.position[node_id] = self.counter
        return node_id

    def node(self, node_id: str, kind: str, lines: list[tuple[str, str]], shape: str, tooltip: str | None = None,
             output: bool = False) -> None:
        cluster = self.open[-1] if self.open else None
        self.model.nodes[node_id] = Node(node_id, kind, lines, shape, tooltip, output,
                                         cluster.id if cluster else None)
        (cluster.items if cluster else self.model.items).append(node_id)

    def annotations(self, name: str, op: ir.Op | None = None) -> list[tuple[str, str]]:
        if self.explain is None:
            return []
        if op is not None and (op.target, operation_text(op), op.line) not in self.ran:
            return []  # removed as dead code, or on the branch not taken
        out = []
        if name in self.explain.values:
            out.append((f"value {summarize(self.explain.values[name])}", "value"))
        if name in self.explain.adjoints:
            out.append((f"grad {summarize(self.explain.adjoints[name])}", "grad"))
        return out

    def define(self, name: str, node_id: str) -> None:
        self.defs.setdefault(name, []).append(node_id)

    def read(self, operand: Any, node_id: str) -> None:
        if isinstance(operand, ir.Var):
            self.uses.append((operand.name, node_id, "data"))
        elif isinstance(operand, ir.Const):
            const_id = self.new_id("c")
            self.node(const_id, "const", [(str(operand), "plain")], "plaintext")
            self.model.edges.append(Edge(const_id, node_id, "data"))

    # --- the forward graph -----------------------------------------------------------------------------------

    def build(self) -> GraphModel:
        fn = self.fn
        title = f"{fn.name}({', '.join(fn.params)})  {pipeline._short(fn.filename)}:{fn.first_line}"
        if self.explain is not None:
            title += "  at " + ", ".join(f"{p}={summarize(v)}" for p, v in zip(self.explain.params,
                                                                              self.explain.args))
        if self.reverse_code is not None:
            title += "  (red: reverse sweep)"
        self.model.title = title
        for p in fn.params:
            node_id = self.new_id("in_")
            self.node(node_id, "input", [(p, "bold")] + self.annotations(p), "ellipse", f"input {p}",
                      p in self.outputs)
            self.define(p, node_id)
        self.block(fn.body)
        if self.reverse_code is not None:
            self.reverse()
        self.resolve_uses()
        return self.model

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
            elif isinstance(stmt, ir.With):
                self.cluster(f"with {stmt.manager}, line {stmt.line}", lambda s=stmt: self.block(s.body))
            elif isinstance(stmt, ir.Try):
                self.try_(stmt)
            elif isinstance(stmt, ir.Return) and isinstance(stmt.value, ir.Const):
                self.node(self.new_id("ret"), "return", [(f"return {stmt.value}", "plain")], "box", output=True)

    def op(self, op: ir.Op) -> None:
        node_id = self.new_id("n")
        source = self.fn.source_lines.get(op.line, "").strip()
        lines = [(op.opname, "bold"), (op.target, "plain")] + self.annotations(op.target, op)
        self.node(node_id, "op", lines, "box", f"{ir.format_op(op)}    (line {op.line}: {source})",
                  op.target in self.outputs)
        for operand in op.operands():
            self.read(operand, node_id)
        self.define(op.target, node_id)

    def cluster(self, label: str, body: Callable[[], None]) -> tuple[str, str | None]:
        """Draw ``body`` inside a box; returns the cluster's name and its first node."""
        self.counter += 1
        name, start = f"cluster_{self.counter}", self.counter
        parent = self.open[-1] if self.open else None
        self.model.clusters[name] = Cluster(name, label, parent.id if parent else None)
        (parent.items if parent else self.model.items).append(name)
        self.open.append(self.model.clusters[name])
        body()
        self.open.pop()
        first = next((nid for nid, pos in self.position.items() if pos > start), None)
        return name, first

    def control(self, label: str, shape: str, tooltip: str) -> str:
        node_id = self.new_id("ctl")
        self.node(node_id, "control", [(label, "plain")], shape, tooltip)
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
                self.model.edges.append(Edge(test, first, "branch", label, name))

    def for_(self, stmt: ir.For) -> None:
        def body() -> None:
            head = self.control(f"for {stmt.target} in {stmt.iterable}", "hexagon",
                                f"line {stmt.line}: {self.fn.source_lines.get(stmt.line, '').strip()}")
            self.read(stmt.iterable, head)
            self.define(stmt.target, head)
            self.block(stmt.body)

        self.cluster(f"for loop, line {stmt.line}", body)

    def try_(self, stmt: ir.Try) -> None:
        parts = [("try", stmt.body)] + [(f"except {h.types if h.types is not None else ''}".rstrip(), h.body)
                                        for h in stmt.handlers] + [("else", stmt.orelse), ("finally", stmt.final)]
        for label, body in parts:
            if body:
                self.cluster(f"{label} (line {stmt.line})", lambda b=body: self.block(b))

    def while_(self, stmt: ir.While) -> None:
        def body() -> None:
            self.block(stmt.test)
            head = self.control(f"while {stmt.cond}", "diamond",
                                f"line {stmt.line}: {self.fn.source_lines.get(stmt.line, '').strip()}")
            self.read(stmt.cond, head)
            self.block(stmt.body)

        self.cluster(f"while loop, line {stmt.line}", body)

    def resolve_uses(self) -> None:
        for name, reader, kind in self.uses:
            for source in self.defs.get(name, []):
                if kind == "data" and self.position[source] >= self.position[reader]:
                    kind_here = "loop"  # the value flows back around a loop
                else:
                    kind_here = kind
                self.model.edges.append(Edge(source, reader, kind_here))

    # --- the reverse sweep -----------------------------------------------------------------------------------

    def reverse(self) -> None:
        """One node per statement of the reverse sweep that assigns a name the forward code does not (or returns):
        the statements of the generated text, what each is from by the line map, adjoints by the generator's names."""
        code = self.reverse_code
        adjoint_of = {adj: name for name, adj in code.adjoints.items()}
        nodes = self.reverse_statements(code, adjoint_of)
        defs: dict[str, list[tuple[str, tuple]]] = {}
        for node_id, target, _, path in nodes:
            if target is not None:
                defs.setdefault(target, []).append((node_id, path))
        for node_id, target, stmt, path in nodes:
            self.reverse_node(node_id, target, stmt, path, defs, code.lines[stmt.lineno - 1].heading)
            for name in _reads(stmt):
                self.reverse_edges(name, node_id, path, defs)
            anchors = self.defs.get(adjoint_of.get(target or "", ""), [])
            if len(anchors) == 1 and self.model.nodes[anchors[0]].cluster is None:
                self.model.same_rank.append((anchors[0], node_id))

    def reverse_statements(self, code: Generated, adjoint_of: dict[str, str]
                           ) -> list[tuple[str, str | None, ast.stmt, tuple]]:
        """(node id, name defined, statement, path) for each statement drawn: from the first that assigns an adjoint
        (or returns) on, those the line map puts in the reverse sweep that return or assign a new name."""
        fn = self.fn
        forward = set(fn.used_names) | set(fn.params) | {op.target for op in ir.walk_ops(fn.body)}
        nodes: list[tuple[str, str | None, ast.stmt, tuple]] = []
        body = ast.parse(code.main).body[0].body
        start = next((i for i, s in enumerate(body) if isinstance(s, ast.Return) or _stored(s) & adjoint_of.keys()),
                     len(body))
        for stmt, path in _flatten(body[start:], ()):
            target = _assigned_name(stmt)
            if code.lines[stmt.lineno - 1].sweep != REVERSE:
                continue
            if isinstance(stmt, ast.Return):
                nodes.append((self.new_id("r"), None, stmt, path))
            elif target is not None and target not in forward:
                nodes.append((self.new_id("r"), target, stmt, path))
        return nodes

    def reverse_edges(self, name: str, node_id: str, path: tuple, defs: dict[str, list[tuple[str, tuple]]]) -> None:
        """The arrows into reverse node ``node_id`` for its read of ``name``: from the adjoint statements that may
        have set it last (around a loop: dashed), or a dotted one from the forward value it reads."""
        if name not in defs:
            if name in self.defs:
                self.uses.append((name, node_id, "read"))
            return
        here = self.position[node_id]
        reachable = [(d, p) for d, p in defs[name] if not _exclusive(p, path)]
        earlier = _latest([(d, p) for d, p in reachable if self.position[d] < here])
        around = [d for d, p in reachable if self.position[d] >= here
                  and any(step[0] == "loop" and step in p for step in path)]
        for d in earlier:
            self.model.edges.append(Edge(d, node_id, "reverse"))
        for d in around if earlier else around or [d for d, _ in defs[name]]:
            self.model.edges.append(Edge(d, node_id, "reverse-loop"))

    def reverse_node(self, node_id: str, target: str | None, stmt: ast.stmt, path: tuple,
                     defs: dict[str, list[tuple[str, tuple]]], comment: str) -> None:
        text = ast.unparse(stmt)
        lines = [(text, "plain")]
        # The value a name holds at the end belongs to its only definition, or to its last one outside branches/loops.
        final = target is not None and (len(defs[target]) == 1 or (defs[target][-1][0] == node_id and not path))
        if final and self.explain is not None and target in self.explain.namespace:
            lines.append((f"= {summarize(self.explain.namespace[target])}", "grad"))
        self.node(node_id, "reverse", lines, "box", comment or text, target is None)


def build_model(fn: ir.Function, explain: Any = None, reverse_code: Generated | None = None) -> GraphModel:
    """The nodes, edges and clusters of ``fn``'s picture (with the reverse sweep of the generated ``reverse_code``,
    annotated with ``explain``'s numbers)."""
    return _ModelBuilder(fn, explain, reverse_code).build()


# --- DOT ---------------------------------------------------------------------------------------------------------


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(text: str) -> str:
    """Text inside an HTML-like label."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _attrs(pairs: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in pairs) + "]"


_ROLE_COLOURS = {"value": Colours.VALUE, "grad": Colours.REVERSE}


def _html_label(lines: list[tuple[str, str]]) -> str:
    parts = []
    for text, role in lines:
        if role == "bold":
            parts.append(f"<b>{_h(text)}</b>")
        elif role in _ROLE_COLOURS:
            parts.append(f'<font color="{_ROLE_COLOURS[role]}">{_h(text)}</font>')
        else:
            parts.append(_h(text))
    return "<" + "<br/>".join(parts) + ">"


def _dot_node_attrs(node: Node) -> list[tuple[str, str]]:
    kind = node.kind
    if kind in ("const", "control", "return"):
        pairs = [("label", _q(node.lines[0][0])), ("shape", node.shape)]
    else:
        pairs = [("label", _html_label(node.lines)), ("shape", node.shape)]
    if kind == "input":
        pairs += [("style", "filled"), ("fillcolor", _q(Colours.INPUT_FILL))]
    elif kind == "op":
        pairs += [("style", _q("rounded,filled")), ("fillcolor", _q(Colours.OP_FILL))]
    elif kind == "const":
        pairs += [("fontcolor", _q(Colours.MUTED))]
    elif kind == "control":
        pairs += [("style", "filled"), ("fillcolor", _q(Colours.CONTROL_FILL)), ("fontsize", "10")]
    elif kind == "reverse":
        pairs += [("style", _q("rounded,filled")), ("color", _q(Colours.REVERSE)),
                  ("fillcolor", _q(Colours.REVERSE_FILL)), ("fontcolor", _q(Colours.REVERSE_TEXT))]
    if node.tooltip is not None:
        pairs.append(("tooltip", _q(node.tooltip)))
    if node.output:
        pairs.append(("peripheries", "2"))
    return pairs


def _dot_edge(edge: Edge) -> str:
    kind = edge.kind
    if kind in ("reverse", "reverse-loop"):  # drawn target -> source with the arrow turned: the sweep runs backwards
        dashed = [("style", "dashed")] if kind == "reverse-loop" else []
        pairs = [("dir", "back"), ("color", _q(Colours.REVERSE)), *dashed]
        return f"{edge.target} -> {edge.source} {_attrs(pairs)};"
    pairs = []
    if kind == "branch":
        pairs = [("lhead", edge.to_cluster or ""), ("style", "dotted"), ("label", _q(edge.label or "")),
                 ("fontsize", "9")]
    elif kind == "read":
        pairs = [("style", "dotted"), ("color", _q(Colours.READ)), ("constraint", "false"), ("arrowhead", "none")]
    elif kind == "loop":
        pairs = [("style", "dashed"), ("constraint", "false")]
    return f"{edge.source} -> {edge.target}" + (f" {_attrs(pairs)}" if pairs else "") + ";"


def to_dot(model: GraphModel) -> str:
    """The model as Graphviz DOT text."""
    graph_attrs = [("rankdir", "LR"), ("compound", "true"), ("fontname", _q("Helvetica")), ("fontsize", "12"),
                   ("labelloc", "t"), ("label", _q(model.title)), ("nodesep", "0.3"), ("ranksep", "0.35")]
    lines = [
        f"digraph {_q(model.name)} {{",
        f"  graph {_attrs(graph_attrs)};",
        f"  node {_attrs([('fontname', _q('Helvetica')), ('fontsize', '11')])};",
        f"  edge {_attrs([('color', _q('#444444')), ('arrowsize', '0.7')])};",
    ]

    def items(ids: list[str], depth: int) -> None:
        indent = "  " * (depth + 1)
        for item in ids:
            if item in model.nodes:
                lines.append(f"{indent}{item} {_attrs(_dot_node_attrs(model.nodes[item]))};")
                continue
            cluster = model.clusters[item]
            style = [("label", _q(cluster.label)), ("style", _q("rounded,dashed")), ("color", _q(Colours.CLUSTER_LINE)),
                     ("fontcolor", _q(Colours.CLUSTER_TEXT))]
            lines.append(f"{indent}subgraph {item} {{")
            lines.append(f"{indent}  graph {_attrs(style)};")
            items(cluster.items, depth + 1)
            lines.append(f"{indent}}}")

    items(model.items, 0)
    lines += ["  " + _dot_edge(e) for e in model.edges]
    lines += [f"  {{rank=same; {a}; {b};}}" for a, b in model.same_rank]
    return "\n".join(lines + ["}"]) + "\n"


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


def _assigned_name(stmt: ast.stmt) -> str | None:
    """The one name a statement ``name = ...`` assigns, or None."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    return None


def _stored(stmt: ast.stmt) -> set[str]:
    """The names an assignment statement binds directly (``a = b = ...``)."""
    if not isinstance(stmt, ast.Assign):
        return set()
    return {t.id for t in stmt.targets if isinstance(t, ast.Name)}


def _reads(stmt: ast.stmt) -> list[str]:
    """The names the value of a statement reads, in order, once each."""
    value = getattr(stmt, "value", None)
    reads: list[str] = []
    for n in ast.walk(value) if value is not None else []:
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in reads:
            reads.append(n.id)
    return reads


def _walk(body: list):
    for stmt in body:
        yield stmt
        for region in ir.regions(stmt):
            yield from _walk(region)


__all__ = ["ENGINES", "FORMATS", "Cluster", "Edge", "Graph", "GraphModel", "GraphvizNotFound", "INSTALL_HINT", "Node",
           "build_model", "choose_engine", "dot_program", "graph", "run_dot", "to_dot"]
