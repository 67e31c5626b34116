"""Small functions whose printed IR and generated source are kept as golden text (tests/golden/)."""

import math

import numpy as np


def eq3(x):
    y = 3 * (x + 2) ** 2
    return y


def eq4(x):
    y = 5 * x**2 / (1 + math.exp(x))
    return y


def branch(x):
    if x > 0.0:
        y = x * x
    else:
        y = -x
    return y * 2.0


def loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(x * i)
    return s


def loss(w, x, y):
    return np.mean((np.tanh(x @ w) - y) ** 2)


def square(v):
    return v * v


def calls_helper(x):
    return square(x) + square(math.cos(x))


def recurrence(x, n):
    s = 1.0
    for _ in range(n):
        s = s + math.sin(x * s) * math.cos(x)
    return s


def mlp(w1, b1, w2, x, y):
    h = np.tanh(x @ w1 + b1)
    return np.mean((h @ w2 - y) ** 2)
