"""Rows read in a loop (srcgrad/layouts.py ``_row_reads``): ``xs[t]`` with ``t`` the int of an enclosing
``for t in range(...)`` is a row of ``xs``, so a recurrent loop over a sequence keeps plain numpy adjoints (no
``unbroadcast``); an index that is not certainly such an int leaves the layout unknown. Gradients checked against
central differences in every case."""

import numpy as np
import pytest

import srcgrad
from benchmarks.cases import rnn
from srcgrad.testing import check_grad

RNG = np.random.default_rng(5)


def n(*shape):
    return RNG.standard_normal(shape)


# the benchmarks' RNN: h <- tanh(W h + U xs[t]) for t in range(xs.shape[0]), loss sum(h^2); with xs of rank 3,
# xs[t] is a matrix and h is a matrix too
recurrent = recurrent_matrix_steps = rnn


# In each of these, a wrong row layout for ``xs[t]`` would keep ``h``'s layout known (a vector), while ``xs[True]`` is
# ``xs`` with a new first axis: the plain numpy adjoints would then have the wrong shapes.


def rebound_index(xs, w):
    h = w
    for t in range(2):
        t = t > 0  # a bool index adds an axis: xs[True] is not a row
        h = np.tanh(xs[t] * h)
    return np.sum(h**2)


def list_index(xs, w):
    h = w
    for t in [0, True]:
        h = np.tanh(xs[t] * h)
    return np.sum(h**2)


def _with_own_range():
    def range(count):  # noqa: A001 - the point: a name `range` that is not the builtin
        return [False, True][:count]

    def shadowed(xs, w):
        h = w
        for t in range(2):
            h = np.tanh(xs[t] * h)
        return np.sum(h**2)

    return shadowed


@pytest.mark.parametrize("hidden,n_in", [(4, 3), (1, 3), (4, 1)])
def test_recurrent_loop_over_rows_matches_central_differences(hidden, n_in):
    args = (0.5 * n(hidden, hidden), n(hidden, n_in), n(5, n_in), n(hidden))
    check_grad(recurrent, *args, wrt=(0, 1, 2, 3))


def test_recurrent_loop_over_rows_keeps_plain_numpy():
    args = (0.5 * n(4, 4), n(4, 3), n(5, 3), n(4))
    grad = srcgrad.grad(recurrent, wrt=("W", "U"))
    grad(*args)
    text = srcgrad.source(grad)
    assert "unbroadcast" not in text and "matmul_grad" not in text, text


def test_rows_that_are_matrices_match_central_differences():
    args = (0.5 * n(4, 4), n(4, 3), n(5, 3, 2), n(4, 2))
    check_grad(recurrent_matrix_steps, *args, wrt=(0, 1, 2, 3))


def test_a_loop_that_runs_no_iteration():
    args = (0.5 * n(4, 4), n(4, 3), n(0, 3), n(4))
    check_grad(recurrent, *args, wrt=(1, 3))


@pytest.mark.parametrize("func", [rebound_index, list_index, _with_own_range()])
def test_an_index_that_may_not_be_an_int_matches_central_differences(func):
    check_grad(func, n(3, 4), n(4), wrt=(0, 1))
