"""Small user functions lowered for the unit tests of the passes (each test reads the facts a pass returns)."""

import math

import numpy as np

from srcgrad import lower, pipeline


def lowered(func):
    """The IR of ``func`` as the driver's first stage gives it (a copy of its own)."""
    return lower.lowered(pipeline.parse_and_fence(func))


def straight(x, y):
    a = np.sin(x) * y
    unused = np.cos(x)  # noqa: F841 - a pure op nobody reads: dead
    k = 2.0 * y
    return np.sum(a) + k


def scalar_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + x * i
    return s


def branches(x, flag):
    if flag > 0:
        y = x * 2.0
    else:
        y = x + 1.0
    return y


def with_effects(x):
    print("x is", x)  # an effect: kept although its value is unused
    r = math.log(x)  # noqa: F841 - may raise on bad input: kept although unused
    return x * 3.0


def tuple_out(x):
    return x, x * 2.0


def every_statement(x, n):
    total = 0.0
    for i in range(n):
        if i > 1:
            break
        total = total + x
    k = 0
    while k < 2:
        k = k + 1
    with np.errstate(all="ignore"):
        total = total * 2.0
    try:
        total = total + 1.0
    except (ValueError, TypeError):
        total = x
    return total


def writes_argument(a, b):
    a[0] = 2.0 * b[0]  # a and b may share memory: checked where it runs
    return np.sum(a * b)


def shapes(x, w):
    a = np.tanh(x)  # elementwise: x's shape
    b = a * 2.0  # a number does not change it
    c = a * w  # arrays of (maybe) other shapes: a shape of its own
    return np.sum(b) + np.sum(c)
