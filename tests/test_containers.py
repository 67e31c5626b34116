"""Containers in reverse mode (issue 3): list displays, list.append in loops, indexing lists, np.stack/np.array of
lists, sum() of a list or a generator expression, list comprehensions (with if clauses), tuples from helpers."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad


def appended_then_stacked(x, n):
    xs = []
    for i in range(n):
        xs.append(x * (i + 1.0))
    return np.sum(np.stack(xs) ** 2)


def display_stack(x, y):
    v = np.stack([x, y * 2.0, x * y])
    return np.sum(v * v)


def array_of_scalars(x, y):
    v = np.array([x, x * y, math.sin(y)])
    return np.sum(v ** 3)


def sum_generator(x):
    return sum(x * i for i in range(5) if i != 2)


def comprehension(x):
    ys = [math.sin(x * k) for k in range(4) if k % 2 == 0]
    return ys[0] + ys[-1] * 2.0 + sum(ys)


def nested_comprehension(x):
    ys = [x * i * j for i in range(3) for j in range(2)]
    return sum(ys)


def pair(x):
    return x * 2.0, x * x


def unpack_helper_tuple(x):
    a, b = pair(x)
    return a * b + a


def history(w, n):
    hs = [1.0]
    for _ in range(n):
        hs.append(math.tanh(w * hs[-1] + 0.5))
    return sum(hs) + hs[-1]


def list_of_arrays(w, x):
    outs = []
    for row in x:
        outs.append(np.tanh(row * w))
    return np.sum(np.array(outs))


def tuple_indexing(x):
    t = (x, x * 2.0, 3.0)
    return t[0] * t[1] + t[2]


@pytest.mark.parametrize("x", [-0.6, 0.4, 1.3])
def test_scalar_containers(x):
    check_grad(display_stack, x, 0.7, wrt=(0, 1))
    check_grad(array_of_scalars, x, 0.7, wrt=(0, 1))
    check_grad(sum_generator, x)
    check_grad(comprehension, x)
    check_grad(nested_comprehension, x)
    check_grad(unpack_helper_tuple, x)
    check_grad(tuple_indexing, x)


@pytest.mark.parametrize("n", [1, 2, 6])
def test_append_in_loops(n):
    check_grad(appended_then_stacked, 0.7, n)
    check_grad(history, 0.8, n)


def test_history_zero_steps():
    check_grad(history, 0.8, 0)


def test_list_of_arrays(rng):
    check_grad(list_of_arrays, rng.normal(size=3), rng.normal(size=(4, 3)))


def test_comprehension_variable_does_not_leak():
    def f(x):
        i = 10.0
        ys = [x * i for i in range(3)]
        return sum(ys) + i * x

    assert srcgrad.grad(f)(2.0) == pytest.approx(3.0 + 10.0)


def generator_into_list(x):
    ys = list(x * k for k in range(4) if k != 1)
    zs = tuple(math.cos(y) for y in ys)
    return np.sum(np.array(ys)) + zs[2]


@pytest.mark.parametrize("x", [0.3, 1.1])
def test_generator_into_list_and_tuple(x):
    check_grad(generator_into_list, x)
