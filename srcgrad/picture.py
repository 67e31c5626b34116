"""The picture of a compute graph, as data: nodes, edges and clusters (what the DOT writer in srcgrad/drawing.py and
the built-in SVG writer in srcgrad/svg.py both draw), and the colours both use.

In: built by :mod:`srcgrad.drawing` from the IR (and the generated reverse sweep). Out: read by :mod:`srcgrad.drawing`
(DOT), :mod:`srcgrad.layout` and :mod:`srcgrad.svg`. Holds only data: it imports nothing from srcgrad.
"""

from __future__ import annotations

from dataclasses import field

from srcgrad.records import record

INSTALL_HINT = (
    "install Graphviz (Debian/Ubuntu: `apt-get install graphviz`; Fedora: `dnf install graphviz`; macOS: "
    "`brew install graphviz`; conda: `conda install graphviz`; Windows: `winget install graphviz`; "
    "https://graphviz.org/download/), or write a .dot file, which needs no Graphviz"
)

class Colours:
    """The colours of the pictures (DOT and the built-in SVG alike)."""

    INPUT_FILL = "#dbe9fb"
    OP_FILL = "#f4f4f4"
    REVERSE = "#c01c28"
    REVERSE_FILL = "#fdeaea"
    VALUE = "#1a5fb4"
    MUTED = "#777777"
    CONTROL_FILL = "#fff6d5"
    REVERSE_TEXT = "#5c0a10"
    READ = "#9a9a9a"
    CLUSTER_LINE = "#999999"
    CLUSTER_TEXT = "#555555"


@record
class Node:
    """One box of the picture. ``lines`` is its label, each ``(text, role)`` with role ``bold``, ``plain``,
    ``value`` (a forward value, blue) or ``grad`` (an adjoint, red)."""

    id: str
    kind: str  # input, op, const, control, return (of a constant), reverse (a statement of the reverse sweep)
    lines: list[tuple[str, str]]
    shape: str  # ellipse, box, plaintext, diamond, hexagon
    tooltip: str | None = None
    output: bool = False  # drawn with a double border
    cluster: str | None = None  # the innermost if/for/while box it sits in


@record
class Edge:
    """Data flows from ``source`` to ``target`` (the arrow points at ``target``)."""

    source: str
    target: str
    kind: str  # data, loop (around a loop), branch (if -> its side), read (a forward value the reverse sweep
    #            reads), reverse (the flow of adjoints), reverse-loop (adjoints around a loop)
    label: str | None = None
    to_cluster: str | None = None  # a branch edge ends at the border of this cluster

    @property
    def constraint(self) -> bool:
        """Whether the edge orders the layers (Graphviz's ``constraint``): edges around loops and reads of
        forward values do not."""
        return self.kind not in ("loop", "read")


@record
class Cluster:
    """An if/for/while region: ``items`` are its node and cluster ids in program order."""

    id: str
    label: str
    parent: str | None
    items: list[str] = field(default_factory=list)


@record
class GraphModel:
    """Everything a picture shows, in program order: what the DOT and the built-in SVG writers both draw."""

    name: str
    title: str
    nodes: dict[str, Node] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)  # the top level's node and cluster ids
    edges: list[Edge] = field(default_factory=list)
    same_rank: list[tuple[str, str]] = field(default_factory=list)  # (forward node, reverse node): one column


__all__ = ["INSTALL_HINT", "Cluster", "Colours", "Edge", "GraphModel", "Node"]
