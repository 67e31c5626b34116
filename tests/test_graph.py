"""Compute-graph pictures (issue 5): DOT text against golden files, rendering with and without Graphviz, the IR text
unchanged, annotations from explain.

Regenerate the golden DOT deliberately with ``SRCGRAD_UPDATE_GOLDEN=1 python -m pytest tests/test_graph.py`` and
review the diff.
"""

import os
import shutil
from pathlib import Path

import golden_cases as gc
import numpy as np
import pytest

import srcgrad
from srcgrad.drawing import Graph, GraphvizNotFound

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SRCGRAD_UPDATE_GOLDEN") == "1"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")

CASES = {"eq3": gc.eq3, "eq4": gc.eq4, "branch": gc.branch, "loop": gc.loop, "loss": gc.loss,
         "calls_helper": gc.calls_helper}


def _compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert path.exists(), f"missing golden file {path}; run with SRCGRAD_UPDATE_GOLDEN=1"
    assert text == path.read_bytes().decode("utf-8"), f"{name} drifted from its golden DOT (update deliberately)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_dot(name):
    _compare(f"{name}.dot", srcgrad.graph(CASES[name]).to_dot())


@pytest.mark.parametrize("name", ["eq3", "eq4", "branch", "loop"])
def test_golden_dot_adjoint(name):
    _compare(f"{name}.adjoint.dot", srcgrad.graph(CASES[name], adjoint=True).to_dot())


def test_golden_dot_explained():
    ex = srcgrad.explain(gc.eq3, 1.5)
    _compare("eq3.explain.dot", srcgrad.graph(gc.eq3).to_dot(explain=ex))
    _compare("eq3.adjoint.explain.dot", srcgrad.graph(gc.eq3, adjoint=True).to_dot(explain=ex))


def test_str_is_the_ir_printer():
    g = srcgrad.graph(gc.eq4)
    assert isinstance(g, Graph)
    assert str(g) == str(g.function)
    assert str(g) == (GOLDEN / "eq4.ir.txt").read_text()
    assert repr(g).startswith("<srcgrad.Graph of eq4>\n")


def test_dot_is_deterministic_and_labels_name_operations_and_variables():
    a = srcgrad.graph(gc.eq4, adjoint=True).to_dot()
    b = srcgrad.graph(gc.eq4, adjoint=True).to_dot()
    assert a == b
    assert "<b>div</b><br/>y" in a and "<b>math.exp</b><br/>t3" in a  # operation, then the variable it defines
    assert "peripheries=2" in a  # the output
    assert "<t4_bar = " in a  # a reverse-sweep statement


def test_graph_of_a_grad_function_uses_its_wrt():
    df = srcgrad.grad(gc.loss, wrt="x")
    text = srcgrad.graph(df, adjoint=True).to_dot()
    assert "x_bar" in text and "w_bar" not in text


def test_explain_annotations_show_values_and_gradients():
    ex = srcgrad.explain(gc.eq3, 1.5)
    text = srcgrad.graph(gc.eq3).to_dot(explain=ex)
    assert "value 36.75" in text and "grad 21" in text and "value 1.5" in text


def test_branch_not_taken_is_not_annotated():
    ex = srcgrad.explain(gc.branch, 1.5)  # takes the `then` side
    text = srcgrad.graph(gc.branch).to_dot(explain=ex)
    negation = next(line for line in text.splitlines() if "<b>neg</b>" in line)
    assert "value" not in negation


def test_render_dot_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    out = srcgrad.graph(gc.eq3).render(tmp_path / "eq3.dot")
    assert out.read_text() == srcgrad.graph(gc.eq3).to_dot()


def test_render_png_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    monkeypatch.delenv("SRCGRAD_GRAPH_ENGINE", raising=False)
    for suffix in ("png", "pdf"):
        with pytest.raises(GraphvizNotFound, match=r"need Graphviz.*built-in renderer writes \.svg.*apt-get install "
                                                   "graphviz"):
            srcgrad.graph(gc.eq3).render(tmp_path / f"eq3.{suffix}")
        assert not (tmp_path / f"eq3.{suffix}").exists()
    with pytest.raises(GraphvizNotFound, match="not on PATH.*apt-get install graphviz"):  # asked for by name
        srcgrad.graph(gc.eq3).render(tmp_path / "eq3.svg", engine="graphviz")
    monkeypatch.setenv("SRCGRAD_GRAPH_ENGINE", "graphviz")
    assert srcgrad.graph(gc.eq3)._repr_svg_() is None  # Jupyter falls back to the text


def test_render_rejects_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="unknown picture format"):
        srcgrad.graph(gc.eq3).render(tmp_path / "eq3.xyz")
    with pytest.raises(ValueError, match="suffix"):
        srcgrad.graph(gc.eq3).render(tmp_path / "eq3")


@needs_dot
@pytest.mark.parametrize("name", sorted(CASES))
def test_render_svg(name, tmp_path):
    out = srcgrad.graph(CASES[name], adjoint=True).render(tmp_path / f"{name}.svg")
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "</svg>" in svg


@needs_dot
def test_render_png_and_repr_svg(tmp_path):
    ex = srcgrad.explain(gc.loss, np.ones(3) * 0.1, np.ones((4, 3)), np.ones(4))
    png = srcgrad.graph(gc.loss, adjoint=True).render(tmp_path / "loss.png", explain=ex)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in srcgrad.graph(gc.eq3)._repr_svg_()
