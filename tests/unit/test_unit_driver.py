"""The driver (srcgrad/driver.py): one table of stages for every product, one lowering per parsed function, and a
backend seam (another output is another Backend class)."""

import math

import numpy as np
import pytest
from irsamples import lowered, scalar_loop, straight

import srcgrad
from srcgrad import calls, driver, frontend, lower, pipeline
from srcgrad.binding import ARRAY, SCALAR


def helper(v):
    return v * v + math.sin(v)


def calls_helper(x):
    return helper(x) * 2.0 + helper(x * 3.0)


def test_stages_read_as_a_table_of_contents():
    assert [name for name, _ in driver.STAGES] == ["lower", "prepare", "passes", "build", "fuse", "units", "emit",
                                                   "compile"]


def test_every_product_is_made_by_the_same_driver(monkeypatch):
    made = []
    run = driver.run

    def recording(pf, product, backend=driver.PYTHON):
        made.append(type(product).__name__)
        return run(pf, product, backend)

    monkeypatch.setattr(driver, "run", recording)
    calls._VARIANTS.clear()
    calls._JVP_VARIANTS.clear()
    pf = pipeline.parse_and_fence(calls_helper)
    g = pipeline._generate(pf, ["x"], "grad", {"x": SCALAR}, False)
    f = pipeline._generate_forward(pf, ["x"], {"x": SCALAR}, "jvp")
    assert g.function(0.3) == pytest.approx(2 * (2 * 0.3 + math.cos(0.3)) + 3 * (2 * 0.9 + math.cos(0.9)))
    assert f.function(0.3, x_dot=1.0)[1] == pytest.approx(g.function(0.3))
    assert {"Reverse", "HelperPair", "Forward", "HelperJvp"} <= set(made)


def test_a_function_is_lowered_once(monkeypatch):
    count = {}
    real = lower.lower

    def counting(pf):
        count[pf.name] = count.get(pf.name, 0) + 1
        return real(pf)

    monkeypatch.setattr(lower, "lower", counting)
    calls._VARIANTS.clear()
    calls._KINDS.clear()
    frontend._PARSED.pop(helper, None)  # (parsed, and lowered, by an earlier test)
    pf = pipeline.parse_and_fence(calls_helper)
    for mode in ("grad", "value_and_grad", "vjp"):
        pipeline._generate(pf, ["x"], mode, {"x": ARRAY}, False)
    pipeline.lower_function(pf)
    assert count == {"calls_helper": 1, "helper": 1}


def test_a_lowering_is_redone_when_a_name_it_read_changes(monkeypatch):
    original, other = helper, (lambda v: v)
    pf = pipeline.parse_and_fence(calls_helper)
    first = lower.lowered(pf)
    monkeypatch.setitem(calls_helper.__globals__, "helper", other)  # (this module's globals)
    second = lower.lowered(pf)
    assert {op.callee for op in first.body if getattr(op, "callee", None) in (original, other)} == {original}
    assert {op.callee for op in second.body if getattr(op, "callee", None) in (original, other)} == {other}


def test_each_caller_gets_a_copy_of_its_own():
    pf = pipeline.parse_and_fence(straight)
    a, b = lower.lowered(pf), lower.lowered(pf)
    assert a is not b and a.body[0] is not b.body[0] and str(a) == str(b)


class Recording(driver.PythonBackend):
    """A backend of its own: Python, with every unit it was given recorded."""

    def __init__(self):
        self.units = []

    def emit(self, unit, bound):
        self.units.append(unit.name)
        return super().emit(unit, bound)


def test_the_backend_is_one_seam():
    backend = Recording()
    pf = pipeline.parse_and_fence(scalar_loop)
    made = driver.run(pf, pipeline.Reverse(["x"], {"x": SCALAR, "n": SCALAR}, "grad", False), backend)
    assert backend.units == ["scalar_loop_grad"]
    assert made.functions[0](0.5, 4) == pytest.approx(0 + 1 + 2 + 3)


def test_generated_matches_the_public_api():
    x = np.array([0.3, -0.2])
    expected = srcgrad.grad(straight)(x, 1.5)
    pf = pipeline.parse_and_fence(straight)
    made = driver.run(pf, pipeline.Reverse(["x"], {"x": ARRAY, "y": SCALAR}, "grad", False))
    np.testing.assert_allclose(made.functions[0](x, 1.5), expected)
    assert lowered(straight).name == "straight"
