"""The tools on structured parameters (issue 15 item 5): ``explain`` runs the function of leaves and reports the
gradient in the parameters' structure; ``graph`` and ``emit`` take example arguments (``example=``, ``--args``) whose
structures they are made for, and refuse without them, naming the structure read and what to pass; the emitted module
rebuilds the same structures in a process where srcgrad cannot be imported, checks its arguments' structures, and
gives srcgrad.grad's gradient."""

import ast
import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from module_files import load, run_blocked

import srcgrad
from srcgrad.errors import UnsupportedSyntax
from srcgrad.standalone import EmitError

MODEL = '''
import dataclasses
from collections import namedtuple

import numpy as np

Pair = namedtuple("Pair", ["w", "b"])


@dataclasses.dataclass
class Linear:
    """A dense layer (its name is a constant leaf)."""

    W: np.ndarray
    b: np.ndarray
    name: str = "dense"


class Layer:
    def __init__(self, W, act="tanh"):
        self.W, self.act = W, act


def flatten_layer(layer):
    return {"W": layer.W}, layer.act


def unflatten_layer(act, children):
    return Layer(children["W"], act)


def dict_loss(p, x):
    h = np.tanh(x * p["w"] + p["b"])
    return np.sum(h ** 2) * p["s"]


def model_loss(params, x):
    h = np.tanh(x @ params["lin"].W + params["lin"].b)
    for W, b in params["layers"]:
        h = np.sin(h @ W + b)
    return np.sum((h @ params["last"].W) ** 2) * params["pair"].w + params["pair"].b
'''


def load_as(path, name, text):
    """Write and import a module under ``name`` (the emitted module imports it by that name)."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def model(tmp_path):
    module = load_as(tmp_path / "structured_model.py", "structured_model", MODEL)
    srcgrad.register_structure(module.Layer, module.flatten_layer, module.unflatten_layer)
    yield module
    sys.modules.pop("structured_model", None)


def imports_srcgrad(text):
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) and "srcgrad" in ast.unparse(n)
               for n in ast.walk(ast.parse(text)))


def dict_args():
    return {"w": np.array([1.0, 2.0]), "b": 0.5, "s": 2.0}, np.array([0.3, -0.2])


def model_args(m, rng):
    params = {"lin": m.Linear(rng.normal(size=(3, 4)), rng.normal(size=4)),
              "layers": [(rng.normal(size=(4, 4)), rng.normal(size=4)), (rng.normal(size=(4, 4)), 0.3)],
              "last": m.Layer(rng.normal(size=(4, 2))), "pair": m.Pair(1.5, -0.25)}
    return params, rng.normal(size=(5, 3))


def assert_same_structure_values(got, expected):
    if isinstance(expected, dict):
        assert type(got) is dict and list(got) == list(expected)
        for k in expected:
            assert_same_structure_values(got[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert type(got) is type(expected) and len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same_structure_values(a, b)
    elif hasattr(expected, "__dict__") and not isinstance(expected, np.ndarray):
        assert type(got).__name__ == type(expected).__name__
        assert_same_structure_values(vars(got), vars(expected))
    elif expected is None or isinstance(expected, str):
        assert got == expected
    else:
        assert type(got) is type(expected)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_explain_structured_parameters(model):
    p, x = dict_args()
    ex = srcgrad.explain(model.dict_loss, p, x)
    g = srcgrad.grad(model.dict_loss)(p, x)
    assert ex.value == pytest.approx(model.dict_loss(p, x))
    assert list(ex.gradient) == ["w", "b", "s"]
    for k in p:
        np.testing.assert_allclose(ex.gradient[k], g[k], rtol=1e-12)
    inputs = {r.node: r for r in ex.rows if r.operation == "input"}
    assert set(inputs) == {"p_w", "p_b", "p_s", "x"}
    np.testing.assert_allclose(inputs["p_w"].adjoint, g["w"], rtol=1e-12)
    assert inputs["p_s"].value == 2.0 and inputs["p_s"].adjoint == pytest.approx(g["s"])
    text = str(ex)
    assert text.startswith("dict_loss(p=") and any(line.split()[:2] == ["p_w", "input"] for line in
                                                   text.splitlines() if line.strip())
    picture = ex.graph(adjoint=True).to_dot(ex)  # the graph of the function of leaves, with the explained numbers
    assert "p_w" in picture and "grad" in picture


def test_graph_takes_example_arguments(model):
    p, x = dict_args()
    assert "t1 = p['w']" in str(srcgrad.graph(model.dict_loss))  # the IR as written needs no example
    with pytest.raises(UnsupportedSyntax, match=r"`p\['w'\]` reads `p` as a structure") as info:
        srcgrad.graph(model.dict_loss, adjoint=True).to_dot()
    assert "example=args" in info.value.hint and "--args" in info.value.hint
    g = srcgrad.graph(model.dict_loss, adjoint=True, example=(p, x))
    assert str(g).startswith("def dict_loss_leaves(p_w, p_b, p_s, x):")
    assert "p_w" in g.to_dot()


def test_source_and_emit_without_example_name_what_to_pass(model):
    with pytest.raises(UnsupportedSyntax, match="needs example arguments") as info:
        srcgrad.source(srcgrad.grad(model.dict_loss))
    assert "srcgrad.source(df, *args)" in info.value.hint
    with pytest.raises(UnsupportedSyntax, match="needs example arguments") as info:
        srcgrad.emit(model.dict_loss)
    assert "srcgrad.emit(f, example=args)" in info.value.hint


def test_emitted_module_rebuilds_structures_without_srcgrad(model, tmp_path, rng):
    params, x = model_args(model, rng)
    text = srcgrad.emit(model.model_loss, "params", example=(params, x))
    assert not imports_srcgrad(text)
    assert "from structured_model import Layer, Linear, Pair, flatten_layer as Layer_flatten" in text
    assert "--args <arguments of the same structures>" in " ".join(text.split())
    (tmp_path / "model_grad.py").write_text(text)
    other, x2 = model_args(model, np.random.default_rng(5))
    wrong = {**params, "layers": params["layers"][:1]}
    results = run_blocked(tmp_path, "model_grad", [("model_loss_grad", (params, x)), ("model_loss_grad", (other, x2)),
                                                     ("model_loss_grad", (wrong, x))])
    assert results[0][0] == "ok" and results[1][0] == "ok", results
    assert_same_structure_values(results[0][1], srcgrad.grad(model.model_loss)(params, x))
    assert_same_structure_values(results[1][1], srcgrad.grad(model.model_loss)(other, x2))
    assert results[2][0] == "error" and results[2][1] == "ValueError"
    assert "must have the structure it was emitted for" in results[2][2]


def test_emitted_leaves_take_any_kind(model, tmp_path):
    """A leaf given as a float in the example takes an array in the emitted module (the general kind)."""
    p, x = dict_args()
    (tmp_path / "dict_grad.py").write_text(srcgrad.emit(model.dict_loss, example=(p, x)))
    other = {"w": np.array([0.5, -1.0]), "b": np.array([0.1, 0.2]), "s": 3.0}
    (got,) = run_blocked(tmp_path, "dict_grad", [("dict_loss_grad", (other, x))])
    assert got[0] == "ok", got
    assert_same_structure_values(got[1], srcgrad.grad(model.dict_loss)(other, x))


def test_emit_refuses_lambdas_it_cannot_import(tmp_path, rng):
    class Boxed:
        def __init__(self, w):
            self.w = w

    srcgrad.register_structure(Boxed, lambda b: ({"w": b.w}, None), lambda aux, c: Boxed(c["w"]))
    module = load_as(tmp_path / "boxed_model.py", "boxed_model",
                     "import numpy as np\n\n\ndef f(b):\n    return np.sum(b.w ** 2)\n")
    with pytest.raises(EmitError, match="a lambda"):
        srcgrad.emit(module.f, example=(Boxed(rng.normal(size=2)),))


CLI_MODEL = '''
import numpy as np


def loss(p, x):
    total = 0.0
    for W, b in p["layers"]:
        x = np.tanh(x @ W + b)
    return np.sum(x ** 2) * p["scale"]
'''


def srcgrad_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "srcgrad", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_command_line_takes_args_for_structures(tmp_path):
    (tmp_path / "mlp.py").write_text(textwrap.dedent(CLI_MODEL))
    args = ["{'layers': [(np.ones((3, 2)) / 3, np.zeros(2)), (np.ones((2, 2)), np.ones(2))], 'scale': 2.0}",
            "np.linspace(-1, 1, 3)"]
    refused = srcgrad_cli("emit", "mlp.py:loss", "--wrt", "p", cwd=tmp_path)
    assert refused.returncode != 0 and "needs example arguments" in refused.stderr and "--args" in refused.stderr
    done = srcgrad_cli("emit", "mlp.py:loss", "--wrt", "p", "-o", "mlp_grad.py", "--args", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "mlp_grad.py").read_text()
    assert "--args" in text and "'layers'" in text
    check = srcgrad_cli("emit", "mlp.py:loss", "--wrt", "p", "-o", "mlp_grad.py", "--check", "--args", *args,
                        cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    shown = srcgrad_cli("show", "mlp.py:loss", "--wrt", "p", "--args", *args, cwd=tmp_path)
    assert shown.returncode == 0 and "p_layers_0_0" in shown.stdout, shown.stderr
    drawn = srcgrad_cli("graph", "mlp.py:loss", "--wrt", "p", "--adjoint", "--args", *args, cwd=tmp_path)
    assert drawn.returncode == 0 and "p_layers_0_0" in drawn.stdout, drawn.stderr
    explained = srcgrad_cli("explain", "mlp.py:loss", "--wrt", "p", "--args", *args, cwd=tmp_path)
    assert explained.returncode == 0 and "p_scale" in explained.stdout, explained.stderr
    mlp = load(tmp_path / "mlp_copy.py", CLI_MODEL)
    p = {"layers": [(np.ones((3, 2)) / 3, np.zeros(2)), (np.ones((2, 2)), np.ones(2))], "scale": 2.0}
    x = np.linspace(-1, 1, 3)
    (got,) = run_blocked(tmp_path, "mlp_grad", [("loss_grad", (p, x))])
    assert got[0] == "ok", got
    assert_same_structure_values(got[1], srcgrad.grad(mlp.loss)(p, x))
