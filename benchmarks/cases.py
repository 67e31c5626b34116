"""Benchmark cases: primal functions, their inputs, and hand-written reference gradients.

Each primal is written in the style srcgrad differentiates (module-level function, ``math`` and ``numpy``,
``for _ in range(n)`` and ``while`` loops). Next to it sits its hand-written gradient: plain numpy, written
for speed (fused in-place updates, loop-invariant work hoisted, batched matmuls), returning a tuple with one
gradient per name in ``wrt``. Those hand-written gradients are the reference every other column is timed
and checked against; ``benchmarks/test_cases.py`` checks them against central finite differences.

Inputs are deterministic: every argument factory seeds its own ``np.random.default_rng(0)``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# Seed equations on Python floats
# ---------------------------------------------------------------------------------------------------------


def seed_add(x):
    y = x + 2
    return y


def seed_add_grad(x):
    return (1.0,)


def seed_square(x):
    y = (x + 2) ** 2
    return y


def seed_square_grad(x):
    return (2.0 * (x + 2.0),)


def seed_scaled_square(x):
    y = 3 * (x + 2) ** 2
    return y


def seed_scaled_square_grad(x):
    return (6.0 * (x + 2.0),)


def seed_exp_ratio(x):
    y = 5 * x**2 / (1 + math.exp(x))
    return y


def seed_exp_ratio_grad(x):
    # d/dx 5x^2 / d  with d = 1 + e^x:  (10x d - 5x^2 e^x) / d^2 = 5x (2d - x e^x) / d^2
    e = math.exp(x)
    d = 1.0 + e
    return (5.0 * x * (2.0 * d - x * e) / (d * d),)


# ---------------------------------------------------------------------------------------------------------
# Scalar loop: s <- s + sin(x s) cos(x), n steps (converges to pi / x, so it stays well-conditioned)
# ---------------------------------------------------------------------------------------------------------


def scalar_loop(x, n):
    s = 1.0
    for _ in range(n):
        s = s + math.sin(x * s) * math.cos(x)
    return s


def scalar_loop_grad(x, n):
    # Reverse sweep over a tape of the overwritten values of s (the same algorithm a reverse-mode tool
    # runs). cos(x) and sin(x) are hoisted; d s'/d s = 1 + x cos(x s) cos(x),
    # d s'/d x = s cos(x s) cos(x) - sin(x s) sin(x).
    cx = math.cos(x)
    tape = []
    push = tape.append
    s = 1.0
    for _ in range(n):
        push(s)
        s = s + math.sin(x * s) * cx
    s_bar = 1.0
    acc_cos = 0.0  # sum of s_bar * cos(x s) * s      (times cos(x) at the end)
    acc_sin = 0.0  # sum of s_bar * sin(x s)          (times -sin(x) at the end)
    xcx = x * cx
    for s in reversed(tape):
        u = x * s
        c = math.cos(u) * s_bar
        acc_cos += c * s
        acc_sin += math.sin(u) * s_bar
        s_bar += c * xcx
    return (acc_cos * cx - acc_sin * math.sin(x),)


# ---------------------------------------------------------------------------------------------------------
# Vector elementwise chain
# ---------------------------------------------------------------------------------------------------------


def vec_chain(x):
    return np.sum(np.tanh(x) ** 2 * np.exp(-x) + np.sin(x))


def vec_chain_grad(x):
    # d/dx tanh^2 e^-x + sin = e^-x t (2 (1 - t^2) - t) + cos x, with t = tanh x; in place, few temporaries.
    t = np.tanh(x)
    g = np.multiply(t, t)
    g *= -2.0
    g -= t
    g += 2.0
    g *= t
    tmp = np.negative(x)
    np.exp(tmp, out=tmp)
    g *= tmp
    np.cos(x, out=tmp)
    g += tmp
    return (g,)


# ---------------------------------------------------------------------------------------------------------
# MLP: tanh hidden layer, linear output, mean squared error
# ---------------------------------------------------------------------------------------------------------


def mlp(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - Y) ** 2)


def mlp_grad(W1, b1, W2, b2, X, Y):
    h = X @ W1
    h += b1
    np.tanh(h, out=h)
    r = h @ W2
    r += b2
    r -= Y
    r *= 2.0 / r.size  # d loss / d out
    gW2 = h.T @ r
    dz = r @ W2.T
    np.multiply(h, h, out=h)  # h is not needed any more: reuse it for 1 - h^2
    np.subtract(1.0, h, out=h)
    dz *= h
    gW1 = X.T @ dz
    return gW1, gW2


# ---------------------------------------------------------------------------------------------------------
# Logistic regression: mean log-loss with labels in {-1, +1}
# ---------------------------------------------------------------------------------------------------------


def logreg(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, -y * z))


def logreg_grad(w, X, y):
    # d/dz log(1 + e^{-y z}) = -y sigmoid(-y z), and sigmoid(m) = (1 + tanh(m / 2)) / 2 (no overflow).
    r = X @ w
    r *= y
    r *= -0.5
    np.tanh(r, out=r)
    r += 1.0
    r *= -0.5 / y.shape[0]
    r *= y
    return (r @ X,)


# ---------------------------------------------------------------------------------------------------------
# RNN: h <- tanh(W h + U x_t), loss = sum(h_T^2)
# ---------------------------------------------------------------------------------------------------------


def rnn(W, U, xs, h0):
    h = h0
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h**2)


def rnn_grad(W, U, xs, h0):
    # Input projections for all steps in one matmul; states kept in one array; the weight gradient is one
    # matmul over all steps at the end: sum_t outer(dz_t, h_t) = dz.T @ hs[:-1].
    steps = xs.shape[0]
    inputs = xs @ U.T
    hs = np.empty((steps + 1, h0.shape[0]))
    hs[0] = h0
    for t in range(steps):
        z = W @ hs[t]
        z += inputs[t]
        np.tanh(z, out=hs[t + 1])
    dz = np.empty((steps, h0.shape[0]))
    h_bar = 2.0 * hs[steps]
    for t in range(steps - 1, -1, -1):
        h = hs[t + 1]
        d = dz[t]
        np.multiply(h, h, out=d)
        np.subtract(1.0, d, out=d)
        d *= h_bar
        h_bar = d @ W
    return (dz.T @ hs[:steps],)


# ---------------------------------------------------------------------------------------------------------
# Data-dependent while loop: Newton's method for w e^w = a (Lambert W), a > 0
# ---------------------------------------------------------------------------------------------------------


def lambert_w(a):
    w = math.log1p(a)
    step = 1.0
    while abs(step) > 1e-12:
        ew = math.exp(w)
        step = (w * ew - a) / (ew * (w + 1.0))
        w = w - step
    return w


def lambert_w_grad(a):
    # Implicit function theorem on w e^w = a: dw/da = 1 / (e^w (1 + w)) = w / (a (1 + w)).
    w = lambert_w(a)
    return (w / (a * (1.0 + w)),)


# The same solve declared with srcgrad.custom_root: srcgrad differentiates the root through the implicit function
# theorem (its own derivative of the residual) instead of through the iterations. Other tools differentiate
# ``lambert_w_implicit`` through ``lambert_root``'s loop, as they do ``lambert_w``.


def lambert_residual(w, a):
    return w * math.exp(w) - a


def lambert_root(a):
    return lambert_w(a)  # (the same Newton iteration: here a black box whose result is a root)


def _implicit_args():
    """The case's inputs; ``lambert_root`` is declared with srcgrad.custom_root here, when the case is first run,
    not when this module is imported (benchmarks/cold.py times ``import srcgrad`` on its own)."""
    global lambert_root
    if not hasattr(lambert_root, "__srcgrad_root__"):
        import srcgrad

        lambert_root = srcgrad.custom_root(lambert_residual)(lambert_root)
        lambert_root.__srcgrad_root__ = True
    return (3.0,)


def lambert_w_implicit(a):
    return lambert_root(a)


def lambert_w_implicit_grad(a):
    w = lambert_root(a)
    return (w / (a * (1.0 + w)),)


# ---------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------


def _rng():
    return np.random.default_rng(0)


def vec_args(n):
    return (_rng().standard_normal(n),)


def mlp_args(batch=64, n_in=100, n_hidden=200, n_out=10):
    rng = _rng()
    W1 = rng.standard_normal((n_in, n_hidden)) / math.sqrt(n_in)
    b1 = 0.1 * rng.standard_normal(n_hidden)
    W2 = rng.standard_normal((n_hidden, n_out)) / math.sqrt(n_hidden)
    b2 = 0.1 * rng.standard_normal(n_out)
    X = rng.standard_normal((batch, n_in))
    Y = rng.standard_normal((batch, n_out))
    return W1, b1, W2, b2, X, Y


def logreg_args(n_samples=1000, n_features=100):
    rng = _rng()
    X = rng.standard_normal((n_samples, n_features))
    w_true = rng.standard_normal(n_features) / math.sqrt(n_features)
    y = np.where(X @ w_true + 0.5 * rng.standard_normal(n_samples) >= 0.0, 1.0, -1.0)
    w = 0.1 * rng.standard_normal(n_features)
    return w, X, y


def rnn_args(steps=20, hidden=32, n_in=8):
    rng = _rng()
    W = 0.9 * rng.standard_normal((hidden, hidden)) / math.sqrt(hidden)
    U = rng.standard_normal((hidden, n_in)) / math.sqrt(n_in)
    xs = rng.standard_normal((steps, n_in))
    h0 = 0.1 * rng.standard_normal(hidden)
    return W, U, xs, h0


# ---------------------------------------------------------------------------------------------------------
# The case table
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One benchmark: ``fn(*args())`` is a scalar; ``grad(*args())`` is a tuple, one entry per ``wrt`` name.

    ``small_args`` are cheap inputs for element-by-element finite-difference checks; ``big`` cases are
    skipped by ``run.py --quick``.
    """

    name: str
    fn: Callable
    grad: Callable
    wrt: tuple[str, ...]
    args: Callable[[], tuple]
    small_args: Callable[[], tuple]
    big: bool = False

    @property
    def wrt_spec(self):
        """What to pass as ``wrt=``: a parameter name for one input, a tuple of names for several."""
        return self.wrt[0] if len(self.wrt) == 1 else self.wrt

    @property
    def wrt_positions(self) -> tuple[int, ...]:
        params = list(inspect.signature(self.fn).parameters)
        return tuple(params.index(name) for name in self.wrt)


def _const(*values):
    return lambda: values


CASES: list[Case] = [
    Case("y = x + 2", seed_add, seed_add_grad, ("x",), _const(0.7), _const(0.7)),
    Case("y = (x+2)**2", seed_square, seed_square_grad, ("x",), _const(0.7), _const(0.7)),
    Case("y = 3*(x+2)**2", seed_scaled_square, seed_scaled_square_grad, ("x",), _const(0.7), _const(0.7)),
    Case("y = 5*x**2/(1+exp(x))", seed_exp_ratio, seed_exp_ratio_grad, ("x",), _const(0.7), _const(0.7)),
    Case("scalar loop x100", scalar_loop, scalar_loop_grad, ("x",), _const(0.3, 100), _const(0.3, 100)),
    Case("vec chain n=1e3", vec_chain, vec_chain_grad, ("x",), lambda: vec_args(1_000), lambda: vec_args(7)),
    Case(
        "vec chain n=1e6",
        vec_chain,
        vec_chain_grad,
        ("x",),
        lambda: vec_args(1_000_000),
        lambda: vec_args(7),
        big=True,
    ),
    Case("MLP 64x100->200->10", mlp, mlp_grad, ("W1", "W2"), mlp_args, lambda: mlp_args(3, 4, 5, 2)),
    Case("logreg 1000x100", logreg, logreg_grad, ("w",), logreg_args, lambda: logreg_args(12, 5)),
    Case("RNN 20 steps, h=32", rnn, rnn_grad, ("W",), rnn_args, lambda: rnn_args(4, 3, 2)),
    Case("Newton w*exp(w)=a", lambert_w, lambert_w_grad, ("a",), _const(3.0), _const(0.5)),
    Case("Newton, custom_root", lambert_w_implicit, lambert_w_implicit_grad, ("a",), _implicit_args, _const(0.5)),
]


# Long loops whose reverse sweep must remember every step: peak memory is the interesting number. Memory grows
# linearly with the steps; the 1e6-step loop is ``big`` (``--quick`` skips it: tracemalloc makes it slow).
MEMORY_CASES: list[Case] = [
    Case("scalar loop x1e5", scalar_loop, scalar_loop_grad, ("x",), _const(0.3, 100_000), _const(0.3, 50)),
    Case(
        "scalar loop x1e6",
        scalar_loop,
        scalar_loop_grad,
        ("x",),
        _const(0.3, 1_000_000),
        _const(0.3, 50),
        big=True,
    ),
    Case(
        "RNN 1000 steps, h=32",
        rnn,
        rnn_grad,
        ("W",),
        lambda: rnn_args(steps=1000),
        lambda: rnn_args(30, 3, 2),
    ),
]
