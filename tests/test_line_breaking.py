"""Generated lines (issue 18 item 3): no line broken inside an expression unless it is longer than 120 characters;
then broken the way black breaks it, and the text still reads back as the code meant (srcgrad/printer.py)."""

import ast

import numpy as np

import srcgrad
from srcgrad import printer


def many(a, b, c, d, e, ff, g, h, i, j, k, ll, mm, nn, oo, pp, qq, rr, ss, tt, uu, vv, ww, xx, yy, zz, aaa, bbb):
    return np.sum(a * b * c * d * e * ff * g * h * i * j * k * ll * mm * nn * oo * pp * qq * rr * ss * tt * uu * vv
                  * ww * xx * yy * zz * aaa * bbb)


def long_call(first_argument_with_a_long_name, second_argument_with_a_long_name, third_argument_with_a_long_name):
    return np.sum(np.hypot(first_argument_with_a_long_name * second_argument_with_a_long_name,
                           third_argument_with_a_long_name * first_argument_with_a_long_name))


def _code_lines(text):
    return [ln for ln in text.split("\n") if ln.strip() and not ln.strip().startswith("#")]


def test_long_statements_are_broken_as_black_breaks_them():
    for df, args in ((srcgrad.value_and_grad(many, wrt=tuple(range(28))), [np.ones(2)] * 28),
                     (srcgrad.grad(many, wrt=tuple(range(28))), ())):
        text = srcgrad.source(df, *args)
        ast.parse(text)
        assert all(len(ln) <= 120 for ln in _code_lines(text) if '"""' not in ln and not ln.startswith("def "))
        assert "    return (\n" in text and text.rstrip().endswith(")")
        np.testing.assert_allclose(srcgrad.grad(many, wrt=0)(*[np.full(2, 1.5)] * 28), 1.5 ** 27)


def test_a_short_call_stays_on_one_line():
    x = np.linspace(0.5, 1.5, 3)
    text = srcgrad.source(srcgrad.grad(long_call, wrt=(0, 1, 2)), x, x + 1.0, x + 2.0)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.stmt) and not hasattr(node, "body"):
            length = max(len(ln) for ln in ast.get_source_segment(text, node).split("\n"))
            assert node.end_lineno == node.lineno or length > 100, ast.get_source_segment(text, node)


def test_broken_items_one_per_line_with_a_trailing_comma():
    call = ast.parse("x = f(" + ", ".join(f"argument_number_{i}" for i in range(12)) + ")").body[0]
    lines = printer.stmt_lines(call, "    ")
    assert lines[0] == "    x = f(" and lines[-1] == "    )"
    assert all(ln.startswith("        argument_number_") and ln.endswith(",") for ln in lines[1:-1])
    names = ", ".join(f"arg{i}" for i in range(18))  # 114 characters: the call is too long, its arguments are not
    short = ast.parse(f"x = f({names})").body[0]
    assert printer.stmt_lines(short, "") == ["x = f(", "    " + names, ")"]
    nested = ast.parse("return (value, (" + ", ".join(f"gradient_{i}" for i in range(20)) + "))").body[0]
    text = "\n".join(printer.stmt_lines(nested, ""))
    assert ast.dump(ast.parse(text).body[0]) == ast.dump(nested)
