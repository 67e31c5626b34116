"""Forward mode, second order, Jacobians (issue 7): jvp, grad of grad, hessian, hvp, jacobian — against finite
differences of values and of gradients, on scalar, vector, looping and branching functions."""

import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import numerical_grad


def scalar_branch_loop(x, y):
    s = 0.0
    for i in range(3):
        if x > 0.5:
            s = s + math.sin(x * y) * i
        else:
            s = s + x ** 2 * y
    return s * y + math.exp(-x)


def vector_fn(w, a):
    z = np.tanh(a @ w)
    return np.sum(z ** 2) + np.sum(w ** 3) * 0.1


def helper(v):
    return v * math.cos(v)


def with_helper(x):
    total = 0.0
    for k in range(4):
        total = total + helper(x * k)
    return total


def while_fn(a):
    x = 1.0
    while abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x * x * x


def vector_out(x):
    return np.sin(x) * np.sum(x ** 2)


def _fd_directional(f, args, position, t, eps=1e-6):
    plus = list(args)
    minus = list(args)
    plus[position] = args[position] + eps * t
    minus[position] = args[position] - eps * t
    return (np.asarray(f(*plus)) - np.asarray(f(*minus))) / (2 * eps)


@pytest.mark.parametrize("x,y", [(0.3, 1.2), (0.9, -0.7), (1.4, 0.4)])
def test_jvp_scalar_with_branches_and_loops(x, y):
    value, tangent = srcgrad.jvp(scalar_branch_loop)(x, y, 1.0)
    assert value == pytest.approx(scalar_branch_loop(x, y), rel=1e-12)
    assert tangent == pytest.approx(_fd_directional(scalar_branch_loop, (x, y), 0, 1.0), rel=1e-6)
    both = srcgrad.jvp(scalar_branch_loop, wrt=(0, 1))(x, y, (0.5, -2.0))
    expected = 0.5 * numerical_grad(scalar_branch_loop, (x, y), 0) - 2.0 * numerical_grad(scalar_branch_loop, (x, y), 1)
    assert both[1] == pytest.approx(expected, rel=1e-5)


def test_jvp_vectors_helpers_while(rng):
    w, a, t = rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=3)
    value, tangent = srcgrad.jvp(vector_fn)(w, a, t)
    assert value == pytest.approx(vector_fn(w, a))
    assert tangent == pytest.approx(_fd_directional(vector_fn, (w, a), 0, t), rel=1e-6)
    assert srcgrad.jvp(with_helper)(0.7, 1.0)[1] == pytest.approx(numerical_grad(with_helper, (0.7,), 0), rel=1e-6)
    assert srcgrad.jvp(while_fn)(2.0, 1.0)[1] == pytest.approx(numerical_grad(while_fn, (2.0,), 0), rel=1e-6)
    _, tv = srcgrad.jvp(vector_out)(w, t)
    np.testing.assert_allclose(tv, _fd_directional(vector_out, (w,), 0, t), rtol=1e-6)
    push = srcgrad.jvp(vector_fn)
    push(w, a, t)
    text = srcgrad.source(push)
    assert text.startswith("def vector_fn_jvp(w, a, *, w_dot):") and "z_dot =" in text


def _second_fd(f, x, eps=1e-4):
    g = srcgrad.grad(f)
    return (g(x + eps) - g(x - eps)) / (2 * eps)


@pytest.mark.parametrize("x", [0.2, 0.8, 1.6])
def test_grad_of_grad(x):
    for f in (lambda_free_cubic, with_helper):
        assert srcgrad.grad(srcgrad.grad(f))(x) == pytest.approx(_second_fd(f, x), rel=1e-5)
    assert srcgrad.grad(srcgrad.grad(scalar_branch_loop), wrt=1)(x, 0.6) == pytest.approx(
        (srcgrad.grad(scalar_branch_loop)(x, 0.6 + 1e-5) - srcgrad.grad(scalar_branch_loop)(x, 0.6 - 1e-5)) / 2e-5,
        rel=1e-5)
    assert srcgrad.grad(srcgrad.grad(while_fn))(x + 1.0) == pytest.approx(_second_fd(while_fn, x + 1.0), rel=1e-5)


def lambda_free_cubic(x):
    if x > 1.0:
        return x ** 3
    return math.sin(x) * x


def test_hessian_and_hvp(rng):
    w, a = rng.normal(size=3), rng.normal(size=(4, 3))
    h = srcgrad.hessian(vector_fn)(w, a)
    g = srcgrad.grad(vector_fn)
    eps = 1e-5
    fd = np.stack([(g(w + eps * e, a) - g(w - eps * e, a)) / (2 * eps) for e in np.eye(3)], axis=-1)
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-7)
    v = rng.normal(size=3)
    np.testing.assert_allclose(srcgrad.hvp(vector_fn)(w, a, v), h @ v, rtol=1e-8, atol=1e-10)
    assert srcgrad.hessian(lambda_free_cubic)(1.5) == pytest.approx(6 * 1.5, rel=1e-9)


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobian(rng, mode):
    x = rng.normal(size=4)
    jac = srcgrad.jacobian(vector_out, mode=mode)(x)
    assert jac.shape == (4, 4)
    fd = np.stack([_fd_directional(vector_out, (x,), 0, e) for e in np.eye(4)], axis=-1)
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-8)
