"""A layered (Sugiyama-style) layout of a compute graph, for the built-in SVG renderer used without Graphviz.

In: a :class:`srcgrad.picture.GraphModel` (nodes with their label lines, edges, if/for/while clusters, pairs of nodes
that share a column). Out: :class:`Layout` — each node's box, each cluster's rectangle, each edge as a smooth path
of cubic Bezier segments, and the picture's size; the SVG writer (srcgrad/svg.py) only draws what it says.
How, left to right like the Graphviz picture (``rankdir=LR``):
- columns (layers): nodes that must share a column are merged; cycles are broken by depth-first search; each node
  goes one column right of its furthest predecessor (longest path), and a node that only feeds others is pulled
  next to the first one it feeds (constants sit just left of their operation). Only edges that order Graphviz's
  ranks order the columns (not those around loops, nor the reverse sweep's reads of forward values);
- an edge spanning several columns passes through a dummy node in each column between;
- rows: the nodes of each column start in program order; a few sweeps move each node to the mean position of its
  neighbours in the previous column (barycenter), keeping the ordering with the fewest crossings; a cluster's nodes
  stay together in each column and sibling clusters keep one order in all columns, so boxes never overlap;
- coordinates: vertical positions satisfy separation constraints (node gaps, cluster padding and label); each round
  places every node at its neighbours' mean height as far as the constraints allow, once pushing down and once
  pushing up, and takes the mean of the two (both satisfy the constraints, so their mean does too);
- text is measured with a fixed-width estimate of Helvetica, so nodes are sized from their labels' lengths.
What holds: deterministic (lists and dicts in program order, no set iteration, ties broken by position); nodes and
clusters do not overlap; readable up to about 200 nodes (Graphviz routes edges around nodes, this layout does not).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field

from srcgrad.picture import Edge, GraphModel, Node
from srcgrad.records import record

FONT_SIZE = 11.0
SMALL_FONT_SIZE = 10.0  # control nodes and cluster labels
TITLE_FONT_SIZE = 12.0
LINE_HEIGHT = 14.0
CHAR_WIDTH = 0.6  # of the font size: a generous average for Helvetica (code has many wide symbols)
BOLD_FACTOR = 1.08
OUTER_BORDER = 4.0  # the second outline of an output node
ARROW = 7.0  # the length of an arrowhead

NODE_GAP = 14.0  # between nodes of one column
DUMMY_HEIGHT = 2.0
CLUSTER_PAD = 10.0
CLUSTER_LABEL = 14.0
COLUMN_GAP = 46.0  # between columns, before room for cluster borders
MARGIN = 12.0
TITLE_HEIGHT = 24.0
SWEEPS = 8
ROUNDS = 8


def text_width(text: str, size: float = FONT_SIZE, bold: bool = False) -> float:
    return len(text) * size * CHAR_WIDTH * (BOLD_FACTOR if bold else 1.0)


def font_size(node: Node) -> float:
    return SMALL_FONT_SIZE if node.kind == "control" else FONT_SIZE


def node_size(node: Node) -> tuple[float, float]:
    """The width and height of a node's shape, from its label (and a double border for an output)."""
    size = font_size(node)
    tw = max(text_width(text, size, role == "bold") for text, role in node.lines)
    th = len(node.lines) * LINE_HEIGHT
    if node.shape == "ellipse":
        w, h = tw * 1.3 + 18, th * 1.3 + 8
    elif node.shape == "diamond":
        w, h = tw * 2 + 16, th * 2 + 6
    elif node.shape == "hexagon":
        w, h = tw + th + 22, th + 10
    elif node.shape == "plaintext":
        w, h = tw + 6, th + 2
    else:
        w, h = max(tw + 16, 36), th + 10
    if node.output:
        w, h = w + 2 * OUTER_BORDER, h + 2 * OUTER_BORDER
    return w, h


@record
class Box:
    """A node's shape: centre and size."""

    x: float
    y: float
    w: float
    h: float


@record
class Rect:
    """A cluster's rectangle (corners)."""

    x0: float
    y0: float
    x1: float
    y1: float


@record
class Path:
    """One edge: ``start``, then cubic segments ``(control 1, control 2, end)``; the arrow (if any) at the end."""

    edge: Edge
    start: tuple[float, float]
    segments: list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]
    label_at: tuple[float, float] | None = None


@record
class Layout:
    width: float
    height: float
    title_at: tuple[float, float]
    nodes: dict[str, Box] = field(default_factory=dict)  # model order
    clusters: dict[str, Rect] = field(default_factory=dict)  # model order (a parent before its children)
    paths: list[Path] = field(default_factory=list)  # model order


# --- columns -------------------------------------------------------------------------------------------------------


def _layout_direction(edge: Edge) -> tuple[str, str]:
    """The edge as Graphviz ranks it: the reverse sweep's edges are written from reader to adjoint (``dir=back``)."""
    if edge.kind in ("reverse", "reverse-loop"):
        return edge.target, edge.source
    return edge.source, edge.target


def assign_layers(model: GraphModel) -> dict[str, int]:
    """Each node's column."""
    ids = list(model.nodes)
    find = _rank_groups(model, ids)
    groups = list(dict.fromkeys(find(n) for n in ids))
    succ = _group_successors(model, find, groups)
    _break_cycles(groups, succ)
    pred: dict[str, list[str]] = {g: [] for g in groups}
    for g in groups:
        for s in succ[g]:
            pred[s].append(g)
    layer = _group_layers(_topological(groups, succ, pred), succ, pred)
    low = min(layer.values(), default=0)
    return {n: layer[find(n)] - low for n in ids}


def _rank_groups(model: GraphModel, ids: list[str]) -> Callable[[str], str]:
    """The leader of each node's group of nodes that share a rank (a union-find; the earlier node leads)."""
    rank = {n: i for i, n in enumerate(ids)}
    group = {n: n for n in ids}

    def find(n: str) -> str:
        while group[n] != n:
            group[n] = group[group[n]]
            n = group[n]
        return n

    for a, b in model.same_rank:
        ra, rb = find(a), find(b)
        if ra != rb:
            group[max(ra, rb, key=rank.__getitem__)] = min(ra, rb, key=rank.__getitem__)  # the earlier leads
    return find


def _group_successors(model: GraphModel, find: Callable[[str], str], groups: list[str]) -> dict[str, list[str]]:
    """The constraining edges between groups, in order, without repeats or self-loops."""
    succ: dict[str, list[str]] = {g: [] for g in groups}
    for edge in model.edges:
        if not edge.constraint:
            continue
        u, v = (find(n) for n in _layout_direction(edge))
        if u != v and v not in succ[u]:
            succ[u].append(v)
    return succ


def _group_layers(order: list[str], succ: dict[str, list[str]], pred: dict[str, list[str]]) -> dict[str, int]:
    layer: dict[str, int] = {}
    for g in order:
        layer[g] = max((layer[p] + 1 for p in pred[g]), default=0)
    for g in reversed(order):  # a source sits just before the first node it feeds
        if not pred[g] and succ[g]:
            layer[g] = min(layer[s] for s in succ[g]) - 1
    return layer


def _break_cycles(nodes: list[str], succ: dict[str, list[str]]) -> None:
    """Remove the edges that close a cycle (found by depth-first search in program order), in place."""
    state = {n: 0 for n in nodes}  # 0 unseen, 1 on the stack, 2 done
    for root in nodes:
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, 0)]
        while stack:
            n, i = stack[-1]
            if i < len(succ[n]):
                stack[-1] = (n, i + 1)
                s = succ[n][i]
                if state[s] == 1:
                    succ[n].pop(i)
                    stack[-1] = (n, i)
                elif state[s] == 0:
                    state[s] = 1
                    stack.append((s, 0))
            else:
                state[n] = 2
                stack.pop()


def _topological(nodes: list[str], succ: dict[str, list[str]], pred: dict[str, list[str]]) -> list[str]:
    waiting = {n: len(pred[n]) for n in nodes}
    out = [n for n in nodes if not waiting[n]]
    for n in out:  # grows while it is walked
        for s in succ[n]:
            waiting[s] -= 1
            if not waiting[s]:
                out.append(s)
    return out


# --- the layered graph: real nodes, dummies, segments ----------------------------------------------------------------


class _Layered:
    """Nodes in columns (real ones, dummies of long edges, fillers that keep a cluster's columns contiguous), each
    with its cluster, size and neighbours in the columns either side."""

    def __init__(self, model: GraphModel, layer: dict[str, int]):
        self.model = model
        self.layer = dict(layer)
        self.cluster: dict[str, str | None] = {n: node.cluster for n, node in model.nodes.items()}
        self.size: dict[str, tuple[float, float]] = {n: node_size(node) for n, node in model.nodes.items()}
        self.key: dict[str, float] = {n: float(i) for i, n in enumerate(model.nodes)}  # initial order
        self.left: dict[str, list[str]] = {n: [] for n in model.nodes}  # neighbours one column left
        self.right: dict[str, list[str]] = {n: [] for n in model.nodes}
        self.rows: dict[str, float] = {}  # centre heights, once placed
        self.chains: list[list[str] | None] = []  # per model edge: its nodes left to right, or None (drawn apart)
        for index, edge in enumerate(model.edges):
            self.chains.append(self._chain(index, edge))
        self._fill_clusters()

    def add(self, node_id: str, layer: int, cluster: str | None, key: float, size: tuple[float, float]) -> None:
        self.layer[node_id] = layer
        self.cluster[node_id] = cluster
        self.key[node_id] = key
        self.size[node_id] = size
        self.left[node_id] = []
        self.right[node_id] = []

    def _chain(self, index: int, edge: Edge) -> list[str] | None:
        a, b = edge.source, edge.target
        if a == b or self.layer[a] == self.layer[b]:
            return None
        if self.layer[a] > self.layer[b]:
            a, b = b, a
        chain = [a]
        common = _common_cluster(self.model, self.cluster[a], self.cluster[b])
        for k, layer in enumerate(range(self.layer[a] + 1, self.layer[b])):
            dummy = f"~{index}_{k}"
            self.add(dummy, layer, common, self.key[a] + 0.5, (0.0, DUMMY_HEIGHT))
            chain.append(dummy)
        chain.append(b)
        for u, v in zip(chain, chain[1:]):
            self.right[u].append(v)
            self.left[v].append(u)
        return chain

    def _fill_clusters(self) -> None:
        """A cluster with no node in a column it spans gets an empty filler there, so it stays one box."""
        members: dict[str, list[str]] = {c: [] for c in self.model.clusters}
        for n in list(self.layer):
            c = self.cluster[n]
            while c is not None:
                members[c].append(n)
                c = self.model.clusters[c].parent
        for c, nodes in members.items():
            if not nodes:
                continue
            present = {self.layer[n] for n in nodes}
            first_key = min(self.key[n] for n in nodes)
            for layer in range(min(present), max(present) + 1):
                if layer not in present:
                    self.add(f"~fill_{c}_{layer}", layer, c, first_key, (0.0, 0.0))

    def columns(self) -> list[list[str]]:
        count = max(self.layer.values(), default=-1) + 1
        cols: list[list[str]] = [[] for _ in range(count)]
        for n in sorted(self.layer, key=lambda n: self.key[n]):
            cols[self.layer[n]].append(n)
        return cols


def _ancestors(model: GraphModel, cluster: str | None) -> list[str]:
    """The clusters around a node, outermost first."""
    out: list[str] = []
    while cluster is not None:
        out.insert(0, cluster)
        cluster = model.clusters[cluster].parent
    return out


def _common_cluster(model: GraphModel, a: str | None, b: str | None) -> str | None:
    common = None
    for x, y in zip(_ancestors(model, a), _ancestors(model, b)):
        if x != y:
            break
        common = x
    return common


# --- rows: ordering within columns ---------------------------------------------------------------------------------


def _arrange(graph: _Layered, column: list[str], key: dict[str, float]) -> list[str]:
    """``column`` sorted by ``key``, with each cluster's nodes together and sibling clusters in program order."""
    model = graph.model
    cluster_rank = {c: i for i, c in enumerate(model.clusters)}
    paths = {n: _ancestors(model, graph.cluster[n]) for n in column}
    position = {n: i for i, n in enumerate(column)}

    def level(nodes: list[str], depth: int) -> list[str]:
        elements: dict[str, list[str]] = {}  # a node, or a cluster one level down -> its nodes
        for n in nodes:
            elements.setdefault(paths[n][depth] if len(paths[n]) > depth else n, []).append(n)

        def element_key(e: str) -> tuple[float, int]:
            members = elements[e]
            return sum(key[n] for n in members) / len(members), min(position[n] for n in members)

        ordered = sorted(elements, key=element_key)
        slots = [i for i, e in enumerate(ordered) if e in cluster_rank]
        clusters = sorted((ordered[i] for i in slots), key=cluster_rank.__getitem__)
        for i, c in zip(slots, clusters):
            ordered[i] = c
        out: list[str] = []
        for e in ordered:
            out.extend(level(elements[e], depth + 1) if e in cluster_rank else [e])
        return out

    return level(column, 0)


def _crossings(graph: _Layered, cols: list[list[str]]) -> int:
    total = 0
    for upper, lower in zip(cols, cols[1:]):
        pos = {n: i for i, n in enumerate(lower)}
        pairs = sorted((i, pos[v]) for i, u in enumerate(upper) for v in graph.right[u])
        total += _inversions([b for _, b in pairs], len(lower))
    return total


def _inversions(values: list[int], size: int) -> int:
    """Pairs ``i < j`` with ``values[i] > values[j]`` (a Fenwick tree over positions)."""
    tree = [0] * (size + 1)
    count = 0
    for seen, v in enumerate(values):
        i, below = v + 1, 0
        while i > 0:
            below += tree[i]
            i -= i & -i
        count += seen - below
        i = v + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return count


def order_columns(graph: _Layered) -> list[list[str]]:
    cols = [_arrange(graph, col, graph.key) for col in graph.columns()]
    best, best_crossings = [list(c) for c in cols], _crossings(graph, cols)
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(cols)) if downward else range(len(cols) - 2, -1, -1)
        for i in indices:
            reference = cols[i - 1] if downward else cols[i + 1]
            pos = {n: p for p, n in enumerate(reference)}
            key: dict[str, float] = {}
            for p, n in enumerate(cols[i]):
                neighbours = graph.left[n] if downward else graph.right[n]
                key[n] = sum(pos[m] for m in neighbours) / len(neighbours) if neighbours else float(p)
            cols[i] = _arrange(graph, cols[i], key)
        crossings = _crossings(graph, cols)
        if crossings < best_crossings:
            best, best_crossings = [list(c) for c in cols], crossings
    return best


# --- coordinates ---------------------------------------------------------------------------------------------------


class _Constraints:
    """Vertical separation: ``y[b] >= y[a] + gap`` over node centres and cluster tops and bottoms."""

    def __init__(self) -> None:
        self.variables: list[str] = []
        self.index: dict[str, int] = {}
        self.after: list[list[tuple[int, float]]] = []
        self.before: list[list[tuple[int, float]]] = []
        self._order: list[int] | None = None

    def var(self, name: str) -> int:
        if name not in self.index:
            self.index[name] = len(self.variables)
            self.variables.append(name)
            self.after.append([])
            self.before.append([])
        return self.index[name]

    def add(self, a: str, b: str, gap: float) -> None:
        i, j = self.var(a), self.var(b)
        self.after[i].append((j, gap))
        self.before[j].append((i, gap))

    def order(self) -> list[int]:
        """The variables in an order that puts each after those it must follow (computed once)."""
        if self._order is None:
            waiting = [len(b) for b in self.before]
            out = [i for i, w in enumerate(waiting) if not w]
            for i in out:  # grows while it is walked
                for j, _ in self.after[i]:
                    waiting[j] -= 1
                    if not waiting[j]:
                        out.append(j)
            if len(out) != len(self.variables):
                raise AssertionError("srcgrad: the vertical constraints of a graph layout form a cycle")
            self._order = out
        return self._order


def _separations(graph: _Layered, cols: list[list[str]]) -> _Constraints:
    """The constraints of every column: consecutive elements apart, each cluster around its elements."""
    model = graph.model
    cons = _Constraints()
    half = {n: graph.size[n][1] / 2 for n in graph.layer}

    def top(e: str) -> tuple[str, float]:  # (variable, offset of the element's upper edge from it)
        return (f"top:{e}", 0.0) if e in model.clusters else (e, -half[e])

    def bottom(e: str) -> tuple[str, float]:
        return (f"bottom:{e}", 0.0) if e in model.clusters else (e, half[e])

    def sequence(nodes: list[str], depth: int, inside: str | None) -> None:
        elements: list[str] = []
        groups: dict[str, list[str]] = {}
        for n in nodes:
            path = _ancestors(model, graph.cluster[n])
            e = path[depth] if len(path) > depth else n
            if e not in groups:
                elements.append(e)
                groups[e] = []
            groups[e].append(n)
        for e in elements:
            cons.var(top(e)[0])
            cons.var(bottom(e)[0])
        for a, b in zip(elements, elements[1:]):
            (va, oa), (vb, ob) = bottom(a), top(b)
            cons.add(va, vb, oa - ob + NODE_GAP)
        if inside is not None:
            first, off_first = top(elements[0])
            last, off_last = bottom(elements[-1])
            cons.add(f"top:{inside}", first, CLUSTER_PAD + CLUSTER_LABEL - off_first)
            cons.add(last, f"bottom:{inside}", CLUSTER_PAD + off_last)
        for e in elements:
            if e in model.clusters:
                sequence(groups[e], depth + 1, e)

    for col in cols:
        if col:
            sequence(col, 0, None)
    return cons


def _solve(cons: _Constraints, desired: list[float | None], downward: bool, limit: float) -> list[float]:
    """Each variable as close to ``desired`` as the constraints allow, pushing only down (or only up)."""
    order = cons.order()
    y = [0.0] * len(cons.variables)
    if downward:
        for i in order:
            low = max((y[j] + gap for j, gap in cons.before[i]), default=0.0)
            y[i] = max(low, desired[i]) if desired[i] is not None else low
    else:
        for i in reversed(order):
            high = min((y[j] - gap for j, gap in cons.after[i]), default=limit)
            y[i] = min(high, desired[i]) if desired[i] is not None else high
    return y


def place_rows(graph: _Layered, cols: list[list[str]]) -> dict[str, float]:
    cons = _separations(graph, cols)
    for n in graph.layer:
        cons.var(n)
    count = len(cons.variables)
    desired: list[float | None] = [None] * count
    y: list[float] = []
    for _ in range(ROUNDS + 1):
        down = _solve(cons, desired, True, 0.0)
        limit = max(down, default=0.0)
        up = _solve(cons, desired, False, limit)
        y = [(a + b) / 2 for a, b in zip(down, up)]
        for n in graph.layer:
            neighbours = graph.left[n] + graph.right[n]
            i = cons.index[n]
            desired[i] = sum(y[cons.index[m]] for m in neighbours) / len(neighbours) if neighbours else y[i]
    return {n: y[cons.index[n]] for n in graph.layer}


def _cluster_heights(model: GraphModel) -> dict[str, int]:
    """How many levels of clusters each cluster holds inside (0: none)."""
    heights = {c: 0 for c in model.clusters}
    for c in reversed(list(model.clusters)):  # children come after their parents
        parent = model.clusters[c].parent
        if parent is not None:
            heights[parent] = max(heights[parent], heights[c] + 1)
    return heights


def place_columns(graph: _Layered, cols: list[list[str]], spans: dict[str, tuple[int, int]],
                  heights: dict[str, int]) -> tuple[list[float], list[float]]:
    """The centre and width of each column; between columns a gap with room for the borders of nested clusters."""
    widths = [max((graph.size[n][0] for n in col), default=0.0) for col in cols]
    depth = max((h + 1 for h in heights.values()), default=0)
    gap = COLUMN_GAP + 2 * CLUSTER_PAD * depth
    for c, (first, last) in spans.items():  # a cluster is at least as wide as its label
        border = CLUSTER_PAD * (1 + heights[c])
        have = sum(widths[first:last + 1]) + gap * (last - first) + 2 * border
        need = text_width(graph.model.clusters[c].label, SMALL_FONT_SIZE) + 2 * CLUSTER_PAD
        if need > have:
            widths[last] += need - have
    centres, x = [], MARGIN + CLUSTER_PAD * depth
    for w in widths:
        centres.append(x + w / 2)
        x += w + gap
    return centres, widths


# --- edges ---------------------------------------------------------------------------------------------------------


def _horizontal(points: list[tuple[float, float]]) -> list[tuple[tuple[float, float], tuple[float, float],
                                                                   tuple[float, float]]]:
    """Cubic segments through ``points`` leaving and entering each point horizontally."""
    segments = []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        dx = (x1 - x0) / 2
        segments.append(((x0 + dx, y0), (x1 - dx, y1), (x1, y1)))
    return segments


def _edge_path(graph: _Layered, index: int, edge: Edge, boxes: dict[str, Box], centres: list[float],
               widths: list[float], clusters: dict[str, Rect]) -> Path:
    src, dst = boxes[edge.source], boxes[edge.target]
    chain = graph.chains[index]
    if edge.source == edge.target:  # a loop on itself, on its right side
        x, y = src.x + src.w / 2, src.y
        reach = 26.0
        return Path(edge, (x, y - 5), [((x + reach, y - 5 - reach), (x + reach, y + 5 + reach), (x, y + 5))])
    if chain is None:  # the same column: an arc out to the right of the column
        layer = graph.layer[edge.source]
        right = centres[layer] + widths[layer] / 2 + 18
        sx, tx = src.x + src.w / 2, dst.x + dst.w / 2
        k = (right - min(sx, tx)) / 0.75
        return Path(edge, (sx, src.y), [((sx + k, src.y), (tx + k, dst.y), (tx, dst.y))])
    shift = 6.0 if edge.kind == "loop" else 0.0  # beside the forward edge it often parallels
    points: list[tuple[float, float]] = []
    for n in chain:
        if n in boxes:
            box = boxes[n]
            x0, x1 = box.x - box.w / 2, box.x + box.w / 2
        else:
            layer = graph.layer[n]
            x0, x1 = centres[layer] - widths[layer] / 2, centres[layer] + widths[layer] / 2
        y = graph.rows[n]
        if n == chain[0]:
            points.append((x1, y + shift))
        elif n == chain[-1]:
            points.append((x0, y + shift))
        else:
            points += [(x0, y), (x1, y)]
    if edge.to_cluster is not None and edge.to_cluster in clusters and chain[-1] == edge.target:
        border = clusters[edge.to_cluster].x0  # end at the cluster's border (Graphviz's lhead) when it is on the way
        if border > points[-2][0] + 2 * ARROW:
            points[-1] = (border, points[-1][1])
    forward = chain[0] == edge.source
    if not forward:
        points.reverse()
    segments = _horizontal(points)
    label_at = None
    if edge.label:  # above where the edge arrives, which it does horizontally
        label_at = (points[-1][0] - 4, points[-1][1] - 6)
    return Path(edge, points[0], segments, label_at)


# --- all together --------------------------------------------------------------------------------------------------


def layout(model: GraphModel) -> Layout:
    """Place every node, cluster and edge of ``model``."""
    graph = _Layered(model, assign_layers(model))
    cols = order_columns(graph)
    rows = place_rows(graph, cols)
    heights = _cluster_heights(model)
    spans: dict[str, tuple[int, int]] = {}
    for n, layer in graph.layer.items():
        for c in _ancestors(model, graph.cluster[n]):
            first, last = spans.get(c, (layer, layer))
            spans[c] = (min(first, layer), max(last, layer))
    centres, widths = place_columns(graph, cols, spans, heights)
    top = MARGIN + TITLE_HEIGHT
    clusters = _cluster_rects(graph, rows, spans, heights, centres, widths)
    low = min([rows[n] - graph.size[n][1] / 2 for n in graph.layer] + [r.y0 for r in clusters.values()], default=0.0)
    graph.rows = {n: y + top - low for n, y in rows.items()}  # the highest node or cluster just under the title
    boxes = {n: Box(centres[graph.layer[n]], graph.rows[n], *node_size(node)) for n, node in model.nodes.items()}
    clusters = _cluster_rects(graph, graph.rows, spans, heights, centres, widths)
    paths = [_edge_path(graph, i, e, boxes, centres, widths, clusters) for i, e in enumerate(model.edges)]
    right = max([b.x + b.w / 2 for b in boxes.values()] + [r.x1 for r in clusters.values()] + [0.0])
    bottom = max([b.y + b.h / 2 for b in boxes.values()] + [r.y1 for r in clusters.values()] + [top])
    for p in paths:  # arcs and self-loops reach out past the nodes
        for _, _, (x, y) in p.segments:
            right, bottom = max(right, x), max(bottom, y)
        for (cx, cy), (dx, dy), _ in p.segments:
            right, bottom = max(right, cx * 0.75 + dx * 0.25), max(bottom, cy, dy)
    width = max(right + MARGIN, text_width(model.title, TITLE_FONT_SIZE) + 2 * MARGIN)
    return Layout(width, bottom + MARGIN, (width / 2, MARGIN + TITLE_FONT_SIZE), boxes, clusters, paths)


def _cluster_rects(graph: _Layered, rows: dict[str, float], spans: dict[str, tuple[int, int]],
                   heights: dict[str, int], centres: list[float], widths: list[float]) -> dict[str, Rect]:
    """Each cluster's rectangle: its columns (widened by a border per level of clusters inside), and the rows of
    its nodes and inner clusters, with room for its label."""
    model = graph.model
    rects: dict[str, Rect] = {}
    for c in reversed(list(model.clusters)):  # inner clusters first
        if c not in spans:
            continue
        first, last = spans[c]
        border = CLUSTER_PAD * (1 + heights[c])
        tops, bottoms = [], []
        for n in graph.layer:
            if graph.cluster[n] == c:
                h = graph.size[n][1] / 2
                tops.append(rows[n] - h)
                bottoms.append(rows[n] + h)
        for inner in model.clusters.values():
            if inner.parent == c and inner.id in rects:
                tops.append(rects[inner.id].y0)
                bottoms.append(rects[inner.id].y1)
        rects[c] = Rect(centres[first] - widths[first] / 2 - border, min(tops) - CLUSTER_PAD - CLUSTER_LABEL,
                        centres[last] + widths[last] / 2 + border, max(bottoms) + CLUSTER_PAD)
    return {c: rects[c] for c in model.clusters if c in rects}


__all__ = ["Box", "Layout", "Path", "Rect", "layout", "node_size", "text_width"]
