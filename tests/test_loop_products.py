"""A loop-invariant matrix's adjoint summed once after the loop (issue 21, item 3): ``W @ h`` at the top of a loop's
body, ``W`` defined before the loop, records each step's adjoint and ``h``, and ``W``'s adjoint is one matrix product
of the stacked steps (srcgrad/loops.py, runtime.matmul_steps_grad).

Each case is checked against central finite differences, where the rewrite applies and where it must not (the matrix
rebound or defined inside the loop, the product inside a branch or an inner loop, a loop that never runs, steps
that do not stack).
"""

import numpy as np
import pytest

import srcgrad
from srcgrad import runtime
from srcgrad.testing import check_grad


def _rng():
    return np.random.default_rng(7)


def _rnn_args(steps=4, hidden=3, n_in=2):
    rng = _rng()
    return (0.8 * rng.standard_normal((hidden, hidden)) / np.sqrt(hidden), rng.standard_normal((hidden, n_in)),
            rng.standard_normal((steps, n_in)), 0.1 * rng.standard_normal(hidden))


def _source(func, *args, wrt=0):
    grad = srcgrad.grad(func, wrt=wrt)
    grad(*args)
    return srcgrad.source(grad)


# --- where the rewrite applies ---------------------------------------------------------------------------------------


def rnn(W, U, xs, h0):
    h = h0
    inputs = xs @ U.T  # (all steps' inputs in one product, as a hand-written RNN does)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + inputs[t])
    return np.sum(h ** 2)


def test_rnn_weights_are_summed_after_the_loop():
    args = _rnn_args()
    check_grad(rnn, *args, wrt=("W", "U", "h0"))
    text = _source(rnn, *args, wrt=("W", "U"))
    assert "t6_bar_steps.append(t6_bar)" in text and "h_1_steps.append(h_1)" in text
    assert "W_bar = matmul_steps_grad(t6_bar_steps, W, h_1_steps, True)" in text


def rnn_right(W, U, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(h @ W + U @ xs[t])
    return np.sum(np.sin(h))


def test_a_matrix_on_the_right_and_one_whose_steps_are_inputs():
    rng = _rng()
    args = (rng.standard_normal((3, 3)) / 2, rng.standard_normal((3, 2)), rng.standard_normal((5, 2)),
            rng.standard_normal(3))
    check_grad(rnn_right, *args, wrt=("W", "U", "xs", "h0"))
    text = _source(rnn_right, *args, wrt=("W", "U"))
    assert "W_bar = matmul_steps_grad(" in text and ", False)" in text
    assert "U_bar = matmul_steps_grad(" in text  # (U @ xs[t]: xs[t] changes too)


def batched_rnn(W, H0, steps):
    H = H0
    for _ in range(steps):
        H = np.tanh(W @ H) + 0.5 * H
    return np.sum(H * H)


def test_batched_steps_are_concatenated():
    rng = _rng()
    args = (rng.standard_normal((3, 3)) / 2, rng.standard_normal((3, 4)), 5)
    check_grad(batched_rnn, *args, wrt=("W", "H0"))
    assert "matmul_steps_grad(" in _source(batched_rnn, *args)


def matrix_also_read_elsewhere(W, h0, steps):
    h = h0
    for _ in range(steps):
        h = np.tanh(W @ h) + W[0] * h
    return np.sum(h)


def test_other_contributions_to_the_matrix_in_the_loop_still_count():
    rng = _rng()
    check_grad(matrix_also_read_elsewhere, rng.standard_normal((3, 3)) / 2, rng.standard_normal(3), 4,
               wrt=("W", "h0"))


def rnn_while(W, h0, n):
    h = h0
    k = 0
    while k < n:
        h = np.tanh(W @ h)
        k = k + 1
        if np.sum(h) > 100.0:
            break
    return np.sum(h ** 3)


def test_a_while_loop():
    rng = _rng()
    check_grad(rnn_while, rng.standard_normal((3, 3)), rng.standard_normal(3), 4, wrt=("W", "h0"))


def test_a_loop_that_never_runs_gives_zeros():
    W, U, xs, h0 = _rnn_args()
    gW = srcgrad.grad(rnn)(W, U, xs[:0], h0)
    assert np.array_equal(gW, np.zeros_like(W))
    check_grad(rnn, W, U, xs[:0], h0, wrt=("W", "h0"))


# --- where it must not apply: the gradient is still right ------------------------------------------------------------


def rebound_in_loop(W, h0, steps):
    h = h0
    for _ in range(steps):
        h = np.tanh(W @ h)
        W = 0.9 * W + np.outer(h, h)
    return np.sum(h) + np.sum(W)


def defined_in_loop(W, h0, steps):
    h = h0
    for _ in range(steps):
        M = 2.0 * W
        h = np.tanh(M @ h)
    return np.sum(h ** 2)


def in_a_branch(W, h0, steps):
    h = h0
    for i in range(steps):
        if i % 2 == 0:
            h = np.tanh(W @ h)
        else:
            h = np.sin(h)
    return np.sum(h ** 2)


def in_an_inner_loop(W, h0, steps):
    h = h0
    for _ in range(steps):
        for _ in range(2):
            h = np.tanh(W @ h)
    return np.sum(h ** 2)


@pytest.mark.parametrize("func", [rebound_in_loop, defined_in_loop, in_a_branch, in_an_inner_loop])
def test_where_the_rewrite_does_not_apply(func):
    rng = _rng()
    args = (rng.standard_normal((3, 3)) / 2, rng.standard_normal(3), 3)
    check_grad(func, *args, wrt=("W", "h0"))
    assert "matmul_steps_grad(" not in _source(func, *args)


# --- the runtime helper: every shape, summed step by step where the steps do not stack -------------------------------


@pytest.mark.parametrize("x_shape, y_shapes, left", [
    ((3, 4), [(4,)] * 3, True),  # matrix @ vector: outer products
    ((3, 4), [(4, 2)] * 3, True),  # matrix @ matrix
    ((3, 4), [(4,), (4, 2), (4,)], True),  # steps that do not stack: one by one
    ((2, 3, 4), [(4,)] * 2, True),  # a batch of matrices
    ((4,), [(4, 3)] * 2, True),  # vector @ matrix
    ((4, 3), [(4,)] * 3, False),  # vector @ matrix
    ((4, 3), [(2, 4)] * 3, False),  # matrix @ matrix
    ((4, 3), [(4,), (2, 4)], False),  # steps that do not stack
    ((2, 4, 3), [(4,)] * 2, False),  # vector @ a batch of matrices
])
def test_matmul_steps_grad_is_the_sum_of_the_steps(x_shape, y_shapes, left):
    rng = _rng()
    x = rng.standard_normal(x_shape)
    ys = [rng.standard_normal(s) for s in y_shapes]
    gs = [rng.standard_normal(np.shape(x @ y if left else y @ x)) for y in ys]
    expected = sum(runtime.matmul_grad_left(g, x, y) if left else runtime.matmul_grad_right(g, y, x)
                   for g, y in zip(gs, ys))
    np.testing.assert_allclose(runtime.matmul_steps_grad(gs, x, ys, left), expected, rtol=1e-12, atol=1e-12)
    assert np.array_equal(runtime.matmul_steps_grad([], x, [], left), np.zeros(x.shape))


@pytest.mark.parametrize("func, args, wrt", [
    (rnn, _rnn_args(), ("W", "h0")),
    (rnn_right, (np.eye(3) / 2, np.ones((3, 2)), np.ones((4, 2)), np.arange(3.0) / 3), ("W", "U")),
    (batched_rnn, (np.eye(3) / 2 + 0.1, np.ones((3, 2)), 3), ("W", "H0")),
])
def test_numba_backend_sums_the_same_steps(func, args, wrt):
    pytest.importorskip("numba")
    check_grad(func, *args, wrt=wrt, backend="numba")
