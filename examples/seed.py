"""The four seed equations of a backprop lesson, differentiated by srcgrad: for each, the compute graph (as text and as
a picture), the explain table (every node's value and gradient), the gradient checked against central differences,
and the generated gradient source. Run: ``python examples/seed.py [--out DIR] [--x 1.5]``."""

import argparse
import math
import tempfile

import srcgrad


def eq1(x):
    y = x + 2
    return y


def eq2(x):
    y = (x + 2) ** 2
    return y


def eq3(x):
    y = 3 * (x + 2) ** 2
    return y


def eq4(x):
    y = 5 * x**2 / (1 + math.exp(x))
    return y


def central_difference(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


def pictures(f, x, out):
    """The compute graph of ``f`` annotated with values and gradients at ``x``: a .dot file, and .svg files with and
    without the reverse sweep (drawn by Graphviz when it is installed, else by srcgrad's built-in layout)."""
    import os

    os.makedirs(out, exist_ok=True)
    explanation = srcgrad.explain(f, x)
    base = os.path.join(out, f.__name__)
    written = [srcgrad.graph(f).render(base + ".dot", explain=explanation),
               srcgrad.graph(f).render(base + ".svg", explain=explanation),
               srcgrad.graph(f, adjoint=True).render(base + "_adjoint.svg", explain=explanation)]
    print("pictures: " + ", ".join(str(p) for p in written))
    return explanation


def main(x=1.5, out=None):
    out = out or tempfile.mkdtemp(prefix="srcgrad-seed-")
    from srcgrad.drawing import choose_engine

    if choose_engine() == "builtin":
        print("(Graphviz is not installed: srcgrad draws the .svg pictures with its own layout; install Graphviz for "
              "its layout)")
    for f in (eq1, eq2, eq3, eq4):
        value_and_grad = srcgrad.value_and_grad(f)
        value, gradient = value_and_grad(x)
        numeric = central_difference(f, x)
        ok = abs(gradient - numeric) <= 1e-6 * max(1.0, abs(numeric))
        print("=" * 78)
        print(f"{f.__name__}: {srcgrad.graph(f).function.source_lines[f.__code__.co_firstlineno + 1].strip()}")
        print("-" * 78)
        print("compute graph (linear IR):")
        print(srcgrad.graph(f))
        explanation = pictures(f, x, out)
        print()
        print(explanation)
        print(f"at x = {x}: value = {value:.6f}, gradient = {gradient:.6f}, "
              f"central difference = {numeric:.6f} -> {'OK' if ok else 'MISMATCH'}")
        print("generated gradient source:")
        print(srcgrad.source(srcgrad.grad(f), x))
        if not ok or explanation.gradient != gradient:
            raise SystemExit(f"gradient of {f.__name__} does not match central differences")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The four seed equations, differentiated by srcgrad.")
    parser.add_argument("--x", type=float, default=1.5, help="the point (default 1.5)")
    parser.add_argument("--out", help="directory for the pictures (default: a new temporary directory)")
    options = parser.parse_args()
    main(options.x, options.out)
