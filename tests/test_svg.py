"""Pictures without Graphviz and notebook displays (issue 19 items 1 and 5): the built-in layout and SVG writer
(srcgrad/layout.py, srcgrad/svg.py), the choice of renderer, the Jupyter reprs of graphs, explanations and source.

Every SVG is parsed as XML and must name every node's label lines (operation, variable, value, adjoint); the layout
is checked geometrically (no overlapping nodes, labels fit their boxes, clusters hold exactly their nodes, each edge
runs from its source to its target). ``docs/*_builtin.svg`` are compared like golden files: regenerate them with
``SRCGRAD_UPDATE_GOLDEN=1`` after a deliberate change of the layout.
"""

import html
import math
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from xml.etree import ElementTree

import golden_cases as gc
import numpy as np
import pytest

import srcgrad
from srcgrad import drawing as graph_module
from srcgrad.cli import load_function
from srcgrad.layout import LINE_HEIGHT, font_size, layout, text_width
from srcgrad.notebook import SourceText
from srcgrad.svg import READABLE_NODES, to_svg

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SVG = "{http://www.w3.org/2000/svg}"
UPDATE = os.environ.get("SRCGRAD_UPDATE_GOLDEN") == "1"
BUILTIN_MARK = "drawn by srcgrad's built-in layout"


def nested(x, n):
    s = 0.0
    k = 0
    while k < n:
        if s > 1.0:
            s = s * 0.5
        else:
            for i in range(2):
                s = s + math.sin(x * i)
        k = k + 1
    return s * x


def compares(x):
    if x < 1.0:
        y = x * x
    else:
        y = 2.0 * x
    return y


CASES = {  # name -> (function, arguments to explain at)
    "eq3": (gc.eq3, (1.5,)),
    "eq4": (gc.eq4, (1.5,)),
    "branch": (gc.branch, (1.5,)),
    "loop": (gc.loop, (1.5, 3)),
    "recurrence": (gc.recurrence, (0.7, 3)),
    "loss": (gc.loss, (np.full(3, 0.1), np.ones((4, 3)), np.ones(4))),
    "calls_helper": (gc.calls_helper, (0.5,)),
    "nested": (nested, (0.8, 3)),
}


@pytest.fixture
def no_dot(monkeypatch):
    """A machine without Graphviz: ``dot`` is not found, whatever is installed here."""
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.delenv("SRCGRAD_GRAPH_ENGINE", raising=False)


def texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def assert_labels_drawn(model, svg: str) -> None:
    drawn = texts(svg)
    assert model.title in drawn
    for node in model.nodes.values():
        for text, _ in node.lines:
            assert text in drawn, f"{node.id}: {text!r} is not in the picture"
    holding = {c for node in model.nodes.values() for c in _clusters_around(model, node.cluster)}
    for cluster in model.clusters.values():
        if cluster.id in holding:  # an empty region (`if c: pass`) is not drawn, as in Graphviz
            assert cluster.label in drawn


def _clusters_around(model, cluster):
    while cluster is not None:
        yield cluster
        cluster = model.clusters[cluster].parent


def _inside(point, box, slack=0.6):
    x, y = point
    return box.x - box.w / 2 - slack <= x <= box.x + box.w / 2 + slack and \
        box.y - box.h / 2 - slack <= y <= box.y + box.h / 2 + slack


def _overlap(a, b) -> bool:
    return abs(a.x - b.x) * 2 < a.w + b.w and abs(a.y - b.y) * 2 < a.h + b.h


def _in_rect(box, rect) -> bool:
    return rect.x0 <= box.x - box.w / 2 and box.x + box.w / 2 <= rect.x1 and \
        rect.y0 <= box.y - box.h / 2 and box.y + box.h / 2 <= rect.y1


def _meets_rect(box, rect) -> bool:
    return box.x + box.w / 2 > rect.x0 and box.x - box.w / 2 < rect.x1 and \
        box.y + box.h / 2 > rect.y0 and box.y - box.h / 2 < rect.y1


def assert_readable(model) -> None:
    """No overlapping nodes, labels inside their boxes, clusters around exactly their nodes, edges end to end."""
    placed = layout(model)
    boxes = placed.nodes
    ids = list(model.nodes)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            assert not _overlap(boxes[a], boxes[b]), f"{a} and {b} overlap"
    for node_id, node in model.nodes.items():
        box = boxes[node_id]
        size = font_size(node)
        assert all(text_width(t, size, r == "bold") <= box.w for t, r in node.lines), node_id
        assert len(node.lines) * LINE_HEIGHT <= box.h, node_id
        assert 0 <= box.x - box.w / 2 and box.x + box.w / 2 <= placed.width, node_id
        assert 0 <= box.y - box.h / 2 and box.y + box.h / 2 <= placed.height, node_id
    members = {c: [] for c in model.clusters}
    for node_id, node in model.nodes.items():
        c = node.cluster
        while c is not None:
            members[c].append(node_id)
            c = model.clusters[c].parent
    for c, rect in placed.clusters.items():
        for node_id in ids:
            if node_id in members[c]:
                assert _in_rect(boxes[node_id], rect), f"{node_id} sticks out of {c}"
            else:
                assert not _meets_rect(boxes[node_id], rect), f"{node_id} is drawn inside {c}"
    for path in placed.paths:
        edge = path.edge
        end = path.segments[-1][2]
        assert _inside(path.start, boxes[edge.source]), f"{edge} does not start at its source"
        if edge.to_cluster is not None and not _inside(end, boxes[edge.target]):
            rect = placed.clusters[edge.to_cluster]
            assert end[0] == rect.x0 and rect.y0 <= end[1] <= rect.y1, f"{edge} ends neither at node nor cluster"
        else:
            assert _inside(end, boxes[edge.target]), f"{edge} does not end at its target (the arrow's side)"


# --- the pictures --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_label_is_in_the_picture_and_the_layout_reads(name, adjoint):
    func, args = CASES[name]
    g = srcgrad.graph(func, adjoint=adjoint)
    for explanation in (None, srcgrad.explain(func, *args)):
        model = g.model(explanation)
        svg = to_svg(model)
        assert_labels_drawn(model, svg)
        assert_readable(model)
        if explanation is not None:  # the numbers themselves are drawn
            drawn = texts(svg)
            assert any(t.startswith("value ") for t in drawn) and any(t.startswith("grad ") for t in drawn)


def test_explained_numbers_are_the_explanations():
    ex = srcgrad.explain(gc.eq3, 1.5)
    drawn = texts(srcgrad.graph(gc.eq3, adjoint=True).svg(ex, engine="builtin"))
    for expected in ("value 1.5", "grad 21", "value 36.75", "grad 1", "value 12.25", "grad 3", "= 21", "x",
                     "add", "t1", "pow", "mul", "y", "y_bar = 1.0", "t2_bar = y_bar * 3.0", "return (y, x_bar)"):
        assert expected in drawn


def test_loops_and_branches_have_their_clusters_and_back_edges():
    g = srcgrad.graph(nested, adjoint=True)
    model = g.model(srcgrad.explain(nested, 0.8, 3))
    labels = [c.label for c in model.clusters.values()]
    assert any(label.startswith("while loop") for label in labels) and any(label.startswith("for loop")
                                                                           for label in labels)
    assert any(label.startswith("then (if") for label in labels) and any(label.startswith("else (if")
                                                                         for label in labels)
    nested_clusters = [c for c in model.clusters.values() if c.parent is not None]
    assert nested_clusters  # the if inside the while, the for inside the else
    svg = to_svg(model)
    root = ElementTree.fromstring(svg)
    classes = [e.get("class") for e in root.iter(f"{SVG}g")]
    assert "edge loop" in classes and "edge reverse" in classes and "edge branch" in classes
    dashed = [p for g_ in root.iter(f"{SVG}g") if g_.get("class") == "edge loop" for p in g_.iter(f"{SVG}path")]
    assert dashed and all(p.get("stroke-dasharray") for p in dashed)  # back edges of loops are dashed
    red = [p for g_ in root.iter(f"{SVG}g") if g_.get("class") == "edge reverse" for p in g_.iter(f"{SVG}path")]
    assert red and all(p.get("stroke") == "#c01c28" for p in red)  # the reverse sweep is red
    assert_readable(model)


def test_user_text_is_escaped():
    g = srcgrad.graph(compares, adjoint=True)
    svg = g.svg(srcgrad.explain(compares, 0.5), engine="builtin")
    assert "x < 1.0" not in svg and "x &lt; 1.0" in svg  # the source line in a tooltip
    root = ElementTree.fromstring(svg)
    tooltips = [t.text for t in root.iter(f"{SVG}title")]
    assert any("if x < 1.0:" in (t or "") for t in tooltips)


def test_output_is_deterministic():
    ex = srcgrad.explain(gc.branch, 1.5)
    first = srcgrad.graph(gc.branch, adjoint=True).svg(ex, engine="builtin")
    second = srcgrad.graph(gc.branch, adjoint=True).svg(ex, engine="builtin")
    assert first == second
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        import golden_cases as gc, srcgrad
        ex = srcgrad.explain(gc.loop, 1.5, 3)
        sys.stdout.write(srcgrad.graph(gc.loop, adjoint=True).svg(ex, engine="builtin"))
    """)
    outputs = []
    for seed in ("1", "2"):  # another hash seed: no set or dict-of-set order leaks into the picture
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and BUILTIN_MARK in outputs[0]


def _big_function(tmp_path, count):
    """A function of about ``8 * count`` nodes with branches and loops, in a file (srcgrad reads source)."""
    lines = ["import math", "", "", "def big(x, y):", "    s = 0.0"]
    for i in range(count):
        lines.append(f"    a{i} = math.sin(x * {i + 1}) + y * s")
        lines.append(f"    s = s + a{i} * a{i}")
        if i % 10 == 3:
            lines += [f"    if s > {i}:", "        s = s * 0.5", "    else:", "        s = s - 1.0"]
        if i % 15 == 7:
            lines += ["    for k in range(2):", "        s = s + math.cos(s * k)"]
    lines.append("    return s")
    name = f"svg_big_{count}"  # one module per size: srcgrad reads each function's own file
    sys.modules.pop(name, None)
    (tmp_path / f"{name}.py").write_text("\n".join(lines) + "\n")
    return load_function(f"{tmp_path / name}.py:big")


def test_a_big_graph_is_drawn_with_a_warning(tmp_path):
    big = _big_function(tmp_path, 26)
    model = srcgrad.graph(big, adjoint=True).model()
    assert len(model.nodes) > READABLE_NODES
    with pytest.warns(UserWarning, match=r"nodes; the built-in layout reads well up to about 200.*install Graphviz"):
        svg = to_svg(model)
    assert_labels_drawn(model, svg)
    small = srcgrad.graph(_big_function(tmp_path, 3)).model()
    assert len(small.nodes) < READABLE_NODES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_svg(small)


def test_about_two_hundred_nodes_lay_out_cleanly(tmp_path):
    model = srcgrad.graph(_big_function(tmp_path, 12), adjoint=True).model()
    assert 150 <= len(model.nodes) <= 260
    assert_readable(model)


# --- which renderer --------------------------------------------------------------------------------------------------


def test_builtin_renderer_without_dot(tmp_path, no_dot):
    ex = srcgrad.explain(gc.eq4, 1.5)
    out = srcgrad.graph(gc.eq4, adjoint=True).render(tmp_path / "eq4.svg", explain=ex)
    svg = out.read_text()
    assert BUILTIN_MARK in svg
    assert_labels_drawn(srcgrad.graph(gc.eq4, adjoint=True).model(ex), svg)
    assert graph_module.choose_engine() == "builtin"
    with pytest.raises(srcgrad.GraphvizNotFound, match=r"\.png pictures need Graphviz"):
        srcgrad.graph(gc.eq4).render(tmp_path / "eq4.png")
    assert (tmp_path / "eq4.dot").exists() is False
    srcgrad.graph(gc.eq4).render(tmp_path / "eq4.dot")  # DOT needs nothing
    assert (tmp_path / "eq4.dot").read_text() == srcgrad.graph(gc.eq4).to_dot()


def test_graphviz_is_used_when_present(tmp_path, monkeypatch):
    monkeypatch.delenv("SRCGRAD_GRAPH_ENGINE", raising=False)
    calls = []

    def fake_dot(text, fmt, what="the picture"):
        calls.append((text, fmt))
        return b"<svg>graphviz</svg>"

    monkeypatch.setattr(graph_module, "dot_program", lambda: "/usr/bin/dot")
    monkeypatch.setattr(graph_module, "run_dot", fake_dot)
    g = srcgrad.graph(gc.eq3)
    assert g.render(tmp_path / "eq3.svg").read_bytes() == b"<svg>graphviz</svg>"
    assert calls == [(g.to_dot(), "svg")]  # the same DOT as before: Graphviz draws it
    assert g._repr_svg_() == "<svg>graphviz</svg>"
    assert BUILTIN_MARK in g.svg(engine="builtin")  # asked for by name
    monkeypatch.setenv("SRCGRAD_GRAPH_ENGINE", "builtin")  # or by the environment
    assert BUILTIN_MARK in g.render(tmp_path / "b.svg").read_text()
    with pytest.raises(ValueError, match="draws .svg only"):
        g.render(tmp_path / "b.png")
    monkeypatch.setenv("SRCGRAD_GRAPH_ENGINE", "graphviz")
    assert g.svg() == "<svg>graphviz</svg>"
    with pytest.raises(ValueError, match="unknown picture engine engine='inkscape'"):
        g.svg(engine="inkscape")
    monkeypatch.setenv("SRCGRAD_GRAPH_ENGINE", "pencil")
    with pytest.raises(ValueError, match=r"\$SRCGRAD_GRAPH_ENGINE='pencil'"):
        g.svg()


def test_cli_writes_the_seed_picture_without_graphviz(tmp_path):
    env = {"PATH": str(tmp_path), "SYSTEMROOT": "", "PYTHONPATH": str(ROOT)}  # no `dot`; this checkout's srcgrad
    done = subprocess.run([sys.executable, "-m", "srcgrad", "graph", str(ROOT / "examples/seed.py") + ":eq4", "-o",
                           "eq4.svg", "--args", "1.5"], cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    svg = (tmp_path / "eq4.svg").read_text()
    eq4 = load_function(f"{ROOT / 'examples/seed.py'}:eq4")
    assert_labels_drawn(srcgrad.graph(eq4).model(srcgrad.explain(eq4, 1.5)), svg)
    forced = subprocess.run([sys.executable, "-m", "srcgrad", "graph", str(ROOT / "examples/seed.py") + ":eq4", "-o",
                             "b.svg", "--engine", "builtin", "--adjoint"], cwd=tmp_path, capture_output=True,
                            text=True, env={**env, "PATH": os.environ.get("PATH", "")}, timeout=120)
    assert forced.returncode == 0, forced.stderr
    assert BUILTIN_MARK in (tmp_path / "b.svg").read_text()


@pytest.mark.parametrize("adjoint", [False, True])
def test_docs_builtin_pictures_are_current(adjoint):
    """docs/ shows the built-in rendering of the seed equations next to Graphviz's."""
    for name in ("eq1", "eq2", "eq3", "eq4"):
        func = load_function(f"{ROOT / 'examples/seed.py'}:{name}")
        svg = srcgrad.graph(func, adjoint=adjoint).svg(srcgrad.explain(func, 1.5), engine="builtin")
        path = DOCS / f"{name}{'_adjoint' if adjoint else ''}_builtin.svg"
        if UPDATE:
            path.write_bytes(svg.encode("utf-8"))
        assert path.exists(), f"missing {path}; run with SRCGRAD_UPDATE_GOLDEN=1"
        assert svg == path.read_bytes().decode("utf-8"), f"{path.name} is stale (regenerate deliberately)"


# --- notebook displays ---------------------------------------------------------------------------------------------


def test_graph_repr_svg_without_graphviz(no_dot):
    svg = srcgrad.graph(gc.branch)._repr_svg_()
    assert svg is not None and BUILTIN_MARK in svg
    assert_labels_drawn(srcgrad.graph(gc.branch).model(), svg)


def test_explanation_repr_html_is_an_escaped_table():
    ex = srcgrad.explain(gc.eq3, 1.5)
    page = ElementTree.fromstring(ex._repr_html_())  # well-formed
    cells = [[(td.text or "".join(td.itertext())) for td in tr] for tr in page.iter("tr")]
    assert cells[0] == ["node", "operation", "line", "value", "adjoint"]
    assert ["y", "mul(3, t2)", "9", "36.75", "1"] in cells
    assert ["x", "input", "8", "1.5", "21"] in cells
    assert len(cells) == len(ex.rows) + 1
    ex.rows[0].operation = "a < b & <script>"
    text = ex._repr_html_()
    assert "a &lt; b &amp; &lt;script&gt;" in text and "<script>" not in text
    assert ElementTree.fromstring(text) is not None


def test_source_is_a_str_that_notebooks_highlight(monkeypatch):
    df = srcgrad.grad(gc.branch)
    text = srcgrad.source(df, 1.5)
    assert isinstance(text, str) and isinstance(text, SourceText)
    assert text == str(text) and str(text).startswith("def branch_grad(x):")
    assert srcgrad.source(df) == str(srcgrad.source(df))
    pytest.importorskip("pygments")
    highlighted = text._repr_html_()
    assert "<span" in highlighted and "branch_grad" in highlighted
    monkeypatch.setitem(sys.modules, "pygments", None)  # not installed
    plain = text._repr_html_()
    assert plain.startswith('<pre class="srcgrad-source">') and "<span" not in plain
    assert html.unescape(plain[len('<pre class="srcgrad-source">'):-len("</pre>")]) == text
    assert "&gt;" in plain  # `x > 0.0` escaped

    class Printer:
        def __init__(self):
            self.out = []

        def text(self, value):
            self.out.append(value)

    printer = Printer()
    text._repr_pretty_(printer, False)
    assert printer.out == [str(text)]
