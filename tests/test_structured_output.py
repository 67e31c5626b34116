"""Structured output from the core (issue 14, item 2): ``Generated`` carries the main text, each helper's text, a line
map (generated line -> sweep, user line, IR op), the adjoint and tangent name maps and the seed and tangent
parameters; the tools read these instead of parsing comments or guessing names from their spelling."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad import api, cache, generated, naming
from srcgrad.testing import check_grad


def loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(x * i)
    y = s * x
    return y


def calls_helper(x):
    return helper(x) * 2.0


def helper(u):
    return u * u + math.exp(u)


def bar_names(x):
    y = x * x
    y_bar = 3.0 * y  # the user's own name where srcgrad would put y's adjoint
    return y_bar + x


def helper_with_dot(u):
    u_dot = u * 2.0  # the name srcgrad would give u's tangent
    return u_dot * u


def calls_helper_with_dot(x):
    return helper_with_dot(x) + x


def seeded(x, seed):
    return np.sin(x) * seed


def dotted(x, x_dot):
    return x * x * x_dot


LOOP_LINE = loop.__code__.co_firstlineno


def variant(func, args, mode="grad", wrt=0):
    transform = api.Transform(func, wrt, mode)
    return transform.specialise(transform.bind(args, {}))


def test_line_map_covers_every_line_and_names_each_sweep():
    code = variant(loop, (0.5, 3))
    lines = code.main.split("\n")[:-1]
    assert len(code.lines) == len(lines)
    sweeps = [o.sweep for o in code.lines]
    assert sweeps[:2] == ["", ""]  # the def line and the docstring
    first_reverse = sweeps.index(generated.REVERSE)
    assert set(sweeps[2:first_reverse]) == {generated.FORWARD}
    assert set(sweeps[first_reverse:]) == {generated.REVERSE}  # the return hands out the reverse sweep's results
    for text, origin in zip(lines, code.lines):
        if text.strip().startswith("# grad of line") or text.strip().startswith("# line"):
            number = int(text.split("line ", 1)[1].split(":")[0])
            assert origin.line == number, text  # a heading names the line it heads


def test_line_map_names_the_ir_op_of_each_statement():
    code = variant(loop, (0.5, 3))
    by_text = {text.strip(): origin for text, origin in zip(code.main.split("\n"), code.lines)}
    assert by_text["t1 = range(n)"].op == "t1" and by_text["t1 = range(n)"].line == LOOP_LINE + 2
    assert by_text["s = 0.0"].op == "s" and by_text["s = 0.0"].line == LOOP_LINE + 1
    reverse_of_sin = next(o for t, o in by_text.items() if t.startswith("x_bar = x_bar + "))
    assert reverse_of_sin.sweep == generated.REVERSE and reverse_of_sin.line == LOOP_LINE + 3
    assert reverse_of_sin.heading.startswith(f"grad of line {LOOP_LINE + 3}:")


def test_helpers_text_is_carried_apart_from_the_main_text():
    code = variant(calls_helper, (0.5,))
    assert code.main.startswith("def calls_helper_grad(")
    assert len(code.helpers) == 1 and "def helper_fwd(" in code.helpers[0] and "def helper_bwd(" in code.helpers[0]
    assert code.source.startswith(code.main) and code.helpers[0] in code.source


def test_adjoint_map_names_the_variables_the_code_assigns():
    code = variant(bar_names, (1.5,), "explain")
    assert code.adjoints["y"] != "y_bar"  # the user's y_bar is taken: the adjoint got another name
    assert all(f"{adjoint} =" in code.main for adjoint in code.adjoints.values())


def test_explain_reads_adjoints_by_their_recorded_names():
    explanation = srcgrad.explain(bar_names, 1.5)
    assert explanation.adjoints["y"] == pytest.approx(3.0)  # d(3y + x)/dy
    assert explanation.adjoints["y_bar"] == pytest.approx(1.0)
    assert explanation.adjoints["x"] == pytest.approx(6.0 * 1.5 + 1.0)
    assert explanation.gradient == pytest.approx(srcgrad.grad(bar_names)(1.5))


def test_seed_parameter_is_recorded_when_the_user_takes_its_name():
    code = variant(seeded, (np.ones(3), 2.0), "vjp")
    assert code.seeds == (naming.fresh(naming.SEED, {"x", "seed"}),) == ("seed_1",)
    x, s, v = np.array([0.1, 0.5, 2.0]), 2.0, np.array([1.0, -1.0, 0.5])
    assert srcgrad.vjp(seeded)(x, s, v) == pytest.approx(np.cos(x) * s * v)


def test_tangent_parameters_are_recorded_when_the_user_takes_their_names():
    transform = api.ForwardTransform(dotted, 0, "jvp")
    code = transform.specialise(transform.bind((1.5, 0.5), {}))
    assert code.tangent_params == ("x_dot_1",)
    value, tangent = srcgrad.jvp(dotted)(1.5, 0.5, 1.0)
    assert value == pytest.approx(1.125) and tangent == pytest.approx(2 * 1.5 * 0.5)
    assert srcgrad.hvp(dotted)(1.5, 0.5, 1.0) == pytest.approx(2 * 0.5)


def test_forward_mode_records_tangent_names():
    transform = api.ForwardTransform(loop, 0, "jvp")
    code = transform.specialise(transform.bind((0.5, 3), {}))
    assert code.tangent_params == ("x_dot",) and code.adjoints == {}
    assert code.tangents["x"] == "x_dot" and all(f"{t} = " in code.main for n, t in code.tangents.items() if n != "x")


def test_cached_code_keeps_its_line_map(tmp_path):
    cache.enable(tmp_path)
    try:
        made = variant(loop, (0.5, 3))
        loaded = variant(loop, (0.5, 3))  # a new transform: the entry is read from disk
        assert loaded.function is not made.function
        assert loaded.lines == made.lines and loaded.adjoints == made.adjoints and loaded.main == made.main
        file = loaded.function.__code__.co_filename
        assert generated.origin(file, 2 + made.lines.index(next(o for o in made.lines if o.op == "t1"))) \
            == next(o for o in made.lines if o.op == "t1")
        assert cache.stats()["hits"] >= 1
    finally:
        cache.reset()


def test_gradients_unchanged():
    check_grad(loop, 0.5, 3)
    check_grad(calls_helper, 0.3)
    check_grad(bar_names, 1.5)


def test_a_helpers_tangent_parameters_are_passed_by_the_names_it_gave_them():
    """Forward mode calls a helper's NAME_jvp with its tangents as keywords: by the names the helper's generation
    recorded (u_dot_1 here, the helper's own u_dot being taken), not by spelling u + '_dot' (a TypeError before)."""
    value, tangent = srcgrad.jvp(calls_helper_with_dot)(1.5, 1.0)
    assert value == pytest.approx(2 * 1.5**2 + 1.5) and tangent == pytest.approx(4 * 1.5 + 1.0)
    assert srcgrad.hessian(calls_helper_with_dot)(1.5) == pytest.approx(4.0)
