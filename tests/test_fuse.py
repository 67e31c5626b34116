"""The fusion pass: single-use temporaries go into their use, and nothing else moves (unit tests on small programs,
then gradients through it against central differences)."""

import ast
import math
import re

import astor
import numpy as np
import pytest

import srcgrad
from srcgrad import fuse as fuse_module
from srcgrad.adjoint import Block, Comment, Program
from srcgrad.fuse import fuse
from srcgrad.testing import check_grad


def stmts(text: str) -> list:
    return ast.parse(text).body


def shown(items: list) -> str:
    out = []
    for item in items:
        if isinstance(item, Comment):
            out.append(f"# {item.text}")
        elif isinstance(item, Block):
            out.append(f"{item.kind}: [{shown(item.body)}]")
        else:
            out.append(astor.to_source(item).strip())
    return "; ".join(out)


# The names these small programs use as srcgrad's own (the adjoint builder and the lowering record them; the pass
# reads only these records, never the spelling of a name).
ADJOINTS = frozenset({"a_bar", "b_bar", "g_bar", "s_1_bar", "s_2_bar", "t3_bar", "t5_bar", "x_bar", "y_bar"})
TEMPORARIES = frozenset({"t1", "t2"})


def fused(forward: str, reverse: str, results: str = "x_bar", adjoints: frozenset = ADJOINTS,
          temporaries: frozenset = TEMPORARIES) -> tuple[str, str]:
    program = Program(forward=stmts(forward), reverse=stmts(reverse), results=[ast.parse(results).body[0].value],
                      adjoints=adjoints, temporaries=temporaries)
    fuse(program)
    return shown(program.forward), shown(program.reverse)


def test_a_single_use_adjoint_goes_into_its_use_and_a_plus_minus_becomes_a_minus():
    _, rev = fused("", "t3_bar = g_bar * t4\nx_bar = x_bar + -t3_bar")
    assert rev == "x_bar = x_bar - g_bar * t4"


def test_values_read_twice_or_by_the_results_stay():
    _, rev = fused("", "t3_bar = g_bar * 2.0\nx_bar = t3_bar * t3_bar")
    assert rev.startswith("t3_bar = ")
    _, rev = fused("", "t3_bar = g_bar * 2.0\nx_bar = t3_bar", results="(x_bar, t3_bar)")
    assert rev.startswith("t3_bar = ")


def test_nothing_moves_past_an_assignment_of_what_it_reads_or_past_a_block():
    _, rev = fused("", "t3_bar = g_bar * 2.0\ng_bar = 1.0\nx_bar = t3_bar")
    assert rev.startswith("t3_bar = ")
    program = Program(reverse=[*stmts("t3_bar = g_bar * 2.0"), Block("if", test=ast.Name(id="c", ctx=ast.Load()),
                                                                     body=stmts("x_bar = t3_bar"))],
                      results=[ast.Name(id="x_bar", ctx=ast.Load())], adjoints=ADJOINTS)
    fuse(program)
    assert shown(program.reverse).startswith("t3_bar = ")


def test_tape_operations_and_user_names_never_move():
    fwd, rev = fused("t1 = tape.pop()\ny = t1 * 2.0\nt2 = y + 1.0\nz = t2 * 3.0", "t5_bar = tape.pop()\nx_bar = t5_bar",
                     results="(x_bar, z)")
    assert fwd == "t1 = tape.pop(); y = t1 * 2.0; z = (y + 1.0) * 3.0"
    assert rev == "t5_bar = tape.pop(); x_bar = t5_bar"


def test_names_spelled_like_srcgrads_are_the_users_unless_recorded():
    # the same text with nothing recorded as srcgrad's: every statement stays as written
    fwd, rev = fused("t1 = x * 2.0\ny = t1 + 1.0", "t3_bar = g_bar * 2.0\ns_1_bar = t3_bar\nx_bar = s_1_bar",
                     results="(x_bar, y)", adjoints=frozenset(), temporaries=frozenset())
    assert fwd == "t1 = x * 2.0; y = t1 + 1.0"
    assert rev == "t3_bar = g_bar * 2.0; s_1_bar = t3_bar; x_bar = s_1_bar"
    # recorded under any spelling, they fold away
    fwd, rev = fused("tmp = x * 2.0\ny = tmp + 1.0", "d = g_bar * 2.0\nx_bar = d", results="(x_bar, y)",
                     adjoints=frozenset({"d", "x_bar"}), temporaries=frozenset({"tmp"}))
    assert (fwd, rev) == ("y = x * 2.0 + 1.0", "x_bar = g_bar * 2.0")


def test_a_long_chain_is_fused_into_expressions_no_deeper_than_the_limit():
    names = [f"c{k}_bar" for k in range(200)]
    lines = [f"{names[0]} = g * 1.5"] + [f"{b} = {a} * w{k}" for k, (a, b) in enumerate(zip(names, names[1:]))]
    lines.append(f"x_bar = {names[-1]} * 2.0")
    _, rev = fused("", "\n".join(lines), adjoints=frozenset(names) | {"x_bar"})
    statements = rev.split("; ")
    heights = [fuse_module._height(ast.parse(s).body[0].value) for s in statements]
    assert max(heights) <= fuse_module.MAX_HEIGHT
    assert len(statements) < 20  # most of the chain was still fused
    assert statements[-1].startswith("x_bar = ") and sorted(re.findall(r"\bw\d+\b", rev)) == sorted(
        f"w{k}" for k in range(199))  # nothing lost


def test_comments_are_passed_over():
    reverse = [*stmts("t3_bar = g_bar * 2.0"), Comment("grad of line 3"), *stmts("x_bar = t3_bar + 1.0")]
    program = Program(reverse=reverse, results=[ast.Name(id="x_bar", ctx=ast.Load())], adjoints=ADJOINTS)
    fuse(program)
    assert shown(program.reverse) == "# grad of line 3; x_bar = g_bar * 2.0 + 1.0"


def chained(x, y):
    a = math.sin(x) * y
    b = a * a + math.exp(-x)
    c = b / (1.0 + y * y)
    return c * a - math.cos(c)


def arrays(w, x):
    z = np.tanh(x @ w) * 2.0 - np.exp(-w[0])
    return np.sum(z ** 2) + np.mean(np.sin(z))


@pytest.mark.parametrize("point", [(0.3, 1.2), (-1.1, 0.4), (2.0, -0.7)])
def test_fused_gradients_match_central_differences(point):
    check_grad(chained, *point, wrt=(0, 1))


def test_fused_array_gradients_match_central_differences():
    rng = np.random.default_rng(5)
    check_grad(arrays, rng.standard_normal(3), rng.standard_normal((4, 3)), wrt=(0, 1))
    text = srcgrad.source(srcgrad.grad(arrays, wrt=(0, 1)), np.ones(3), np.ones((4, 3)))
    assert text.count("_bar =") < 12  # temporaries went into their uses


def in_place(reverse: str, env: dict | None = None, numpy_arguments: bool = True) -> str:
    program = Program(reverse=stmts(reverse), results=[ast.Name(id="x_bar", ctx=ast.Load())],
                      float_valued={"np": np, **(env or {})}, adjoints=ADJOINTS, numpy_arguments=numpy_arguments)
    fuse(program)
    return shown(program.reverse)


def test_no_in_place_update_where_an_argument_may_be_an_array_of_another_library():
    # (a Dask contribution cannot be added into a numpy adjoint in place: Dask refuses numpy's out=)
    assert in_place("x_bar = np.cos(x)\nx_bar = x_bar + g * t", numpy_arguments=False) == \
        "x_bar = np.cos(x); x_bar = x_bar + g * t"


def test_an_adjoint_the_block_just_made_is_updated_in_place():
    assert in_place("x_bar = np.cos(x)\nx_bar = x_bar + g * t") == "x_bar = np.cos(x); x_bar += g * t"
    assert in_place("x_bar = 2.0 * t\nx_bar = x_bar - g * t") == "x_bar = 2.0 * t; x_bar -= g * t"


def test_no_in_place_update_of_a_shared_or_unknown_value():
    # shared: another name refers to the same array, which an in-place update would change too
    text = in_place("x_bar = np.cos(x)\ny_bar = x_bar\nx_bar = x_bar + g\nz = y_bar * 1.0")
    assert "+=" not in text
    # unknown: g * t may be an integer or bool array (or the argument itself, for a helper's result)
    assert "+=" not in in_place("x_bar = g * t\nx_bar = x_bar + g")
    assert "+=" not in in_place("x_bar = unbroadcast(g, x)\nx_bar = x_bar + g")
    # an update that reads the name on its right too is left as it is
    text = in_place("x_bar = np.exp(x)\nx_bar = x_bar + x_bar * 2.0")
    assert text == "x_bar = np.exp(x); x_bar = x_bar + x_bar * 2.0"


def test_copies_of_adjoints_are_read_through_and_dropped():
    _, rev = fused("", "s_2_bar = s_1_bar\ns_1_bar = s_2_bar\nt5_bar = s_2_bar\nx_bar = t5_bar * 2.0",
                   results="(x_bar, s_1_bar)")
    assert rev == "x_bar = s_1_bar * 2.0"


def test_a_copy_is_not_read_through_past_a_new_value_of_its_source():
    _, rev = fused("", "a_bar = b_bar\nb_bar = g * 2.0\nx_bar = a_bar + b_bar")
    assert rev == "a_bar = b_bar; b_bar = g * 2.0; x_bar = a_bar + b_bar"


def recurrence(x, n):
    s = 1.0
    for _ in range(n):
        s = s + math.sin(x * s) * math.cos(x)
    return s


@pytest.mark.parametrize("n", [0, 1, 6])
def test_loops_after_copy_propagation_match_central_differences(n):
    check_grad(recurrence, 0.4, n)
    assert "s_2_bar" not in srcgrad.source(srcgrad.grad(recurrence), 0.4, n)
