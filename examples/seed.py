"""The four seed equations of a backprop lesson, differentiated by srcgrad.

For each: the compute graph (srcgrad's linear IR), the value and gradient at a point, a check against central
differences, and the generated gradient source. Run: ``python examples/seed.py``.
"""

import math

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


def main(x=1.5):
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
        print(f"at x = {x}: value = {value:.6f}, gradient = {gradient:.6f}, "
              f"central difference = {numeric:.6f} -> {'OK' if ok else 'MISMATCH'}")
        print("generated gradient source:")
        print(srcgrad.source(srcgrad.grad(f), x))
        if not ok:
            raise SystemExit(f"gradient of {f.__name__} does not match central differences")


if __name__ == "__main__":
    main()
