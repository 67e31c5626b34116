"""Ahead-of-time emit (issue 5): srcgrad.emit writes a module that never imports srcgrad and gives the same gradient
as srcgrad.grad, in a process where `import srcgrad` fails; the text is deterministic and carries a header."""

import ast
import hashlib
import importlib.util
import inspect
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from module_files import run_blocked

import srcgrad
from srcgrad.standalone import EmitError, build, is_current

MODEL = '''
import math

import numpy as np

W = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
SCALE = 0.1


def seed4(x):
    y = 5 * x**2 / (1 + math.exp(x))
    return y


def square(v):
    return v * v


def with_helper(x):
    return square(math.sin(x)) + square(x) * SCALE


def layer(w, x):
    h = np.tanh(x @ w)
    return np.sum(h * W[:, 0]) + np.max(w) + np.sum(w[1:] ** 2) + SCALE * np.mean(x)


def control(x, n):
    s = 0.0
    for i in range(n):
        if s < 2.0:
            s = s + x * i
        else:
            s = s * 0.5
    k = 0
    while k < 2:
        s = s * x
        k = k + 1
    return s


def two(a, b, *, c=2.0):
    return np.sum(a * b) * c + np.sum(a) ** 2


def array_out(x):
    return x * 2.0
'''

RULE_PRIMS = '''
import numpy as np


def softplus(x):
    return np.logaddexp(0.0, x)
'''

RULE_MODEL = '''
import numpy as np
from rule_prims import softplus

import srcgrad


@srcgrad.defgrad(softplus)
def softplus_grad(g, ans, x):
    s = 1.0 / (1.0 + np.exp(-x))
    return g * s


def uses_rule(x):
    return np.sum(softplus(x) * x)
'''


def load(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def imports_srcgrad(text: str) -> bool:
    for node in ast.walk(ast.parse(text)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(n == "srcgrad" or n.startswith("srcgrad.") for n in names):
            return True
    return False


def assert_same(got, expected):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same(a, b)
        return
    assert type(got) is type(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=0)
    assert np.shape(got) == np.shape(expected)


@pytest.fixture
def model(tmp_path, request):
    name = f"sa_model_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"
    yield load(tmp_path, name, MODEL)
    sys.modules.pop(name, None)


CASES = [
    ("seed4", 0, [(1.5,), (-0.3,), (np.float64(0.5),)]),
    ("with_helper", 0, [(0.7,), (-1.2,)]),
    ("layer", 0, [(np.array([0.3, -0.2]), np.arange(6.0).reshape(3, 2) / 5)]),
    ("layer", "x", [(np.array([0.3, -0.2]), np.arange(6.0).reshape(3, 2) / 5)]),
    ("control", 0, [(0.9, 4), (1.7, 0), (1.2, 6)]),
    ("two", ("a", "b"), [(np.array([1.0, 2.0]), 0.5), (1.5, -2.0)]),
]


@pytest.mark.parametrize("func_name,wrt,arg_sets", CASES)
def test_emitted_module_gives_grads_gradient_without_srcgrad(tmp_path, model, func_name, wrt, arg_sets):
    func = getattr(model, func_name)
    text = srcgrad.emit(func, wrt=wrt)
    assert not imports_srcgrad(text)
    (tmp_path / "grad_mod.py").write_text(text)
    name = f"{func_name}_grad"
    results = run_blocked(tmp_path, "grad_mod", [(name, args) for args in arg_sets])
    for args, result in zip(arg_sets, results):
        assert result[0] == "ok", result
        assert_same(result[1], srcgrad.grad(func, wrt=wrt)(*args))


def test_value_and_grad_and_vjp_modes(tmp_path, model):
    (tmp_path / "vg_mod.py").write_text(srcgrad.emit(model.seed4, mode="value_and_grad"))
    (tmp_path / "vjp_mod.py").write_text(srcgrad.emit(model.array_out, mode="vjp"))
    x = np.array([1.0, -2.0, 3.0])
    seed = np.array([0.5, 1.0, 2.0])
    (vg,) = run_blocked(tmp_path, "vg_mod", [("seed4_value_and_grad", (1.5,))])
    assert_same(vg[1], srcgrad.value_and_grad(model.seed4)(1.5))
    (vjp,) = run_blocked(tmp_path, "vjp_mod", [("array_out_vjp", (x,), {"seed": seed})])
    assert_same(vjp[1], srcgrad.vjp(model.array_out)(x, seed))


def test_non_scalar_output_raises_value_error_without_srcgrad(tmp_path, model):
    (tmp_path / "ao_mod.py").write_text(srcgrad.emit(model.array_out))
    (result,) = run_blocked(tmp_path, "ao_mod", [("array_out_grad", (np.ones(3),))])
    assert result[0] == "error" and result[1] == "ValueError" and "scalar output" in result[2]


def test_user_rule_is_copied_and_functions_come_from_their_own_module(tmp_path):
    load(tmp_path, "rule_prims", RULE_PRIMS)
    module = load(tmp_path, "rule_model", RULE_MODEL)
    try:
        text = srcgrad.emit(module.uses_rule)
        assert "from rule_model import" not in text  # the user module that imports srcgrad is not needed...
        assert "from rule_prims import softplus" in text  # ...the function comes from where it is defined
        assert "def softplus_grad_rule(g, ans, x):" in text  # the rule, copied under the name the code calls
        (tmp_path / "rule_grad.py").write_text(text)
        x = np.array([-1.0, 0.5, 2.0])
        (result,) = run_blocked(tmp_path, "rule_grad", [("uses_rule_grad", (x,))])
        assert_same(result[1], srcgrad.grad(module.uses_rule)(x))
    finally:
        sys.modules.pop("rule_model", None)
        sys.modules.pop("rule_prims", None)


def test_text_is_deterministic_and_has_a_header(model):
    first = srcgrad.emit(model.layer)
    assert first == srcgrad.emit(model.layer) == srcgrad.emit(srcgrad.grad(model.layer))
    header = first.split("__all__")[0]
    assert f"srcgrad {srcgrad.__version__}" in header
    assert f"# srcgrad-version: {srcgrad.__version__}" in header
    digest = hashlib.sha256(inspect.getsource(model.layer).encode()).hexdigest()
    assert f"sha256:{digest}" in header
    assert f"from {model.__name__} import SCALE, W" in header
    assert "import numpy as np" in header
    assert '__all__ = ["layer_grad"]' in first
    assert "0x" not in first and str(Path.cwd()) not in first  # no ids, no absolute paths


def test_helpers_hash_covers_called_functions(model):
    text = srcgrad.emit(model.with_helper)
    digest = hashlib.sha256((inspect.getsource(model.with_helper) + inspect.getsource(model.square)).encode())
    assert f"sha256:{digest.hexdigest()}" in text
    assert "def square_fwd" in text and "def square_bwd" in text


def test_wrt_of_a_grad_function_is_kept(model):
    assert srcgrad.emit(srcgrad.grad(model.layer, wrt="x")) == srcgrad.emit(model.layer, wrt="x")
    assert "with respect to x" in srcgrad.emit(model.layer, wrt=1)


def test_closure_variables_are_refused():
    k = 3.0

    def scaled(x):
        return k * x * x

    with pytest.raises(EmitError, match="enclosing function"):
        srcgrad.emit(scaled)


def test_is_current(tmp_path, model):
    module = build(model.seed4)
    out = tmp_path / "out.py"
    assert not is_current(out, module.text)
    out.write_bytes(module.text.encode())
    assert is_current(out, module.text)
    out.write_bytes(module.text.encode() + b"# edited\n")
    assert not is_current(out, module.text)
