"""The built-in SVG writer: a :class:`srcgrad.picture.GraphModel` in, SVG text out, without Graphviz.

In: the model (what to draw) and its :class:`srcgrad.layout.Layout` (where). Out: one SVG document: the title,
clusters as dashed rounded rectangles with their labels, edges as cubic Bezier paths with arrowheads, nodes as the
Graphviz picture draws them (inputs blue ellipses, operations grey rounded boxes, constants grey text, control
nodes yellow diamonds and hexagons, the reverse sweep red, outputs with a double border); each node's tooltip is its
``<title>``.
What holds: every piece of user text is XML-escaped; the output is deterministic (the model's order, numbers with
one decimal); the colours are those of the DOT writer.
"""

from __future__ import annotations

import math
import warnings
from xml.sax.saxutils import escape, quoteattr

from srcgrad.layout import (
    ARROW,
    LINE_HEIGHT,
    OUTER_BORDER,
    SMALL_FONT_SIZE,
    TITLE_FONT_SIZE,
    Box,
    Layout,
    Path,
    font_size,
    layout,
)
from srcgrad.picture import INSTALL_HINT, Colours, GraphModel, Node

READABLE_NODES = 200  # beyond this the built-in layout gets hard to read: say so
FONT = "Helvetica, Arial, sans-serif"
_EDGE = "#444444"
_TEXT = "#000000"


def _n(value: float) -> str:
    """A coordinate: one decimal, never ``-0.0``."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _point(p: tuple[float, float]) -> str:
    return f"{_n(p[0])},{_n(p[1])}"


def _text(x: float, y: float, text: str, size: float, colour: str, bold: bool = False,
          anchor: str = "middle") -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{_n(size)}" fill="{colour}"'
            f"{weight}>{escape(text)}</text>")


def to_svg(model: GraphModel, warn: bool = True, stacklevel: int = 2) -> str:
    """The picture of ``model`` as SVG text; warns (``warn``) when it has more nodes than the layout reads well."""
    if warn and len(model.nodes) > READABLE_NODES:
        warnings.warn(f"srcgrad: the compute graph of {model.name} has {len(model.nodes)} nodes; the built-in "
                      f"layout reads well up to about {READABLE_NODES}; for a better picture, {INSTALL_HINT}",
                      stacklevel=stacklevel)
    placed = layout(model)
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(placed.width)}pt" height="{_n(placed.height)}pt" '
        f'viewBox="0 0 {_n(placed.width)} {_n(placed.height)}" font-family="{FONT}" xml:space="preserve">',
        f"<title>{escape(model.name)}</title>",
        "<!-- drawn by srcgrad's built-in layout (Graphviz was not used) -->",
        f'<rect x="0" y="0" width="{_n(placed.width)}" height="{_n(placed.height)}" fill="#ffffff"/>',
        _text(placed.title_at[0], placed.title_at[1], model.title, TITLE_FONT_SIZE, _TEXT),
    ]
    out += _clusters(model, placed)
    out.append('<g class="edges">')
    for path in placed.paths:
        out += _edge(path)
    out.append("</g>")
    out.append('<g class="nodes">')
    for node_id, node in model.nodes.items():
        out += _node(node, placed.nodes[node_id])
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _clusters(model: GraphModel, placed: Layout) -> list[str]:
    out = ['<g class="clusters">']
    for cluster_id, rect in placed.clusters.items():
        label = model.clusters[cluster_id].label
        out += [
            f'<g class="cluster" id={quoteattr(cluster_id)}>',
            f"<title>{escape(label)}</title>",
            f'<rect x="{_n(rect.x0)}" y="{_n(rect.y0)}" width="{_n(rect.x1 - rect.x0)}" '
            f'height="{_n(rect.y1 - rect.y0)}" rx="8" ry="8" fill="none" stroke="{Colours.CLUSTER_LINE}" '
            f'stroke-dasharray="5,3"/>',
            _text(rect.x0 + 8, rect.y0 + 14, label, SMALL_FONT_SIZE, Colours.CLUSTER_TEXT, anchor="start"),
            "</g>",
        ]
    out.append("</g>")
    return out


_EDGE_STYLE = {  # kind -> (colour, dash pattern, arrowhead)
    "data": (_EDGE, None, True),
    "loop": (_EDGE, "6,4", True),
    "branch": (_EDGE, "2,3", True),
    "read": (Colours.READ, "2,3", False),
    "reverse": (Colours.REVERSE, None, True),
    "reverse-loop": (Colours.REVERSE, "6,4", True),
}


def _edge(path: Path) -> list[str]:
    edge = path.edge
    colour, dash, arrow = _EDGE_STYLE[edge.kind]
    d = "M" + _point(path.start) + "".join(f" C{_point(a)} {_point(b)} {_point(c)}" for a, b, c in path.segments)
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<g class="edge {edge.kind}"><title>{escape(f"{edge.source} -> {edge.target}")}</title>',
           f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.2"{dashes}/>']
    if arrow and path.segments:
        out.append(_arrowhead(path, colour))
    if path.label_at is not None and edge.label:
        out.append(_text(path.label_at[0], path.label_at[1], edge.label, 9.0, _EDGE, anchor="end"))
    out.append("</g>")
    return out


def _arrowhead(path: Path, colour: str) -> str:
    """A filled triangle with its tip at the path's end, along the direction the path arrives from."""
    (_, control, tip) = path.segments[-1]
    start = path.segments[-2][2] if len(path.segments) > 1 else path.start
    dx, dy = tip[0] - control[0], tip[1] - control[1]
    if math.hypot(dx, dy) < 1e-6:
        dx, dy = tip[0] - start[0], tip[1] - start[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    base = (tip[0] - ux * ARROW, tip[1] - uy * ARROW)
    half = ARROW * 0.45
    left = (base[0] - uy * half, base[1] + ux * half)
    right = (base[0] + uy * half, base[1] - ux * half)
    return f'<polygon points="{_point(tip)} {_point(left)} {_point(right)}" fill="{colour}" stroke="{colour}"/>'


_NODE_STYLE = {  # kind -> (fill, outline, text colour)
    "input": (Colours.INPUT_FILL, "#000000", _TEXT),
    "op": (Colours.OP_FILL, "#000000", _TEXT),
    "const": ("none", "none", Colours.MUTED),
    "control": (Colours.CONTROL_FILL, "#000000", _TEXT),
    "return": ("#ffffff", "#000000", _TEXT),
    "reverse": (Colours.REVERSE_FILL, Colours.REVERSE, Colours.REVERSE_TEXT),
}
_ROLE_COLOUR = {"value": Colours.VALUE, "grad": Colours.REVERSE}


def _node(node: Node, box: Box) -> list[str]:
    fill, outline, text_colour = _NODE_STYLE[node.kind]
    out = [f'<g class="node {node.kind}" id={quoteattr(node.id)}>']
    if node.tooltip is not None:
        out.append(f"<title>{escape(node.tooltip)}</title>")
    w, h = box.w, box.h
    rounded = node.kind in ("op", "reverse")  # as the DOT writer's style="rounded,filled"
    if node.output:
        out.append(_shape(node.shape, box.x, box.y, w, h, "none", outline, rounded))
        w, h = w - 2 * OUTER_BORDER, h - 2 * OUTER_BORDER
    if node.shape != "plaintext":
        out.append(_shape(node.shape, box.x, box.y, w, h, fill, outline, rounded))
    size = font_size(node)
    y = box.y - (len(node.lines) - 1) * LINE_HEIGHT / 2 + size * 0.35
    for text, role in node.lines:
        out.append(_text(box.x, y, text, size, _ROLE_COLOUR.get(role, text_colour), bold=role == "bold"))
        y += LINE_HEIGHT
    out.append("</g>")
    return out


def _shape(shape: str, x: float, y: float, w: float, h: float, fill: str, outline: str, rounded: bool) -> str:
    paint = f'fill="{fill}" stroke="{outline}"'
    if shape == "ellipse":
        return f'<ellipse cx="{_n(x)}" cy="{_n(y)}" rx="{_n(w / 2)}" ry="{_n(h / 2)}" {paint}/>'
    if shape == "diamond":
        points = [(x, y - h / 2), (x + w / 2, y), (x, y + h / 2), (x - w / 2, y)]
        return f'<polygon points="{" ".join(_point(p) for p in points)}" {paint}/>'
    if shape == "hexagon":
        cut = h / 2
        points = [(x - w / 2, y), (x - w / 2 + cut, y - h / 2), (x + w / 2 - cut, y - h / 2), (x + w / 2, y),
                  (x + w / 2 - cut, y + h / 2), (x - w / 2 + cut, y + h / 2)]
        return f'<polygon points="{" ".join(_point(p) for p in points)}" {paint}/>'
    radius = 6 if rounded else 0
    return (f'<rect x="{_n(x - w / 2)}" y="{_n(y - h / 2)}" width="{_n(w)}" height="{_n(h)}" rx="{radius}" '
            f'ry="{radius}" {paint}/>')


__all__ = ["READABLE_NODES", "to_svg"]
