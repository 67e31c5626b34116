"""No stale code: after a call, every object whose identity or kind decided the generated code is checked again at
each call (srcgrad/guards.py); when one changed, the gradient is generated again. Each test rebinds something between
calls and compares with central finite differences of the function as it is now."""

import math
import threading

import numpy as np
import pytest
from module_files import load

import srcgrad
from srcgrad.testing import numerical_grad

X = np.array([0.1, 0.5, 1.0])

MODULE = '''
import math
import numpy as np
import {cfg} as cfg

act = np.tanh
W = 2.0


def helper(v):
    return v * 2.0


def uses_act(v):
    return act(v) * 1.0


def with_default(v, c=2.0):
    return c * v


def f_act(x):
    return np.sum(act(x))


def f_act_scalar(x):
    return math.exp(act(x))


def f_helper(x):
    return helper(x) * x


def f_helper_act(x):
    return np.sum(uses_act(x))


def f_cfg(x):
    return np.sum(cfg.W * x)


def f_cfg_scalar(x):
    return cfg.W * x * x


def f_global(x):
    return np.sum(W * x * x)


def f_defaults(x, c=2.0, *, k=1.0):
    return c * x * x + k * x


def f_helper_default(x):
    return with_default(x) * x
'''


@pytest.fixture()
def mod(tmp_path, request):
    cfg = load(tmp_path / f"guard_cfg_{request.node.name[:20]}.py", "W = 2.0\n")
    return load(tmp_path / "guarded.py", MODULE.format(cfg=cfg.__name__))


def fd(f, *args, wrt=0):
    return numerical_grad(f, tuple(args), wrt)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_a_rebound_global_function_gives_the_gradient_of_the_new_one(mod):
    g = srcgrad.grad(mod.f_act)
    close(g(X), 1 - np.tanh(X) ** 2)
    mod.act = np.sin
    close(g(X), np.cos(X))
    close(g(X), fd(mod.f_act, X))
    mod.act = np.tanh  # and back: each change is seen
    close(g(X), 1 - np.tanh(X) ** 2)
    mod.act = np.sin
    close(g(X), np.cos(X))


def test_a_rebound_global_on_python_floats(mod):
    g = srcgrad.value_and_grad(mod.f_act_scalar)
    value, grad = g(0.3)
    assert value == pytest.approx(math.exp(math.tanh(0.3)))
    mod.act = math.sin
    value, grad = g(0.3)
    assert value == pytest.approx(math.exp(math.sin(0.3)))
    assert grad == pytest.approx(fd(mod.f_act_scalar, 0.3), rel=1e-7)


def test_a_redefined_helper(mod, tmp_path):
    g = srcgrad.grad(mod.f_helper)
    assert g(1.5) == pytest.approx(6.0)
    mod.helper = load(tmp_path / "helper_b.py", "def helper(v):\n    return v * 3.0\n").helper
    assert g(1.5) == pytest.approx(9.0)
    mod.helper = load(tmp_path / "helper_c.py", "def helper(v):\n    return v ** 3\n").helper
    assert g(1.5) == pytest.approx(4 * 1.5 ** 3)


def test_a_global_a_helper_reads(mod):
    g = srcgrad.grad(mod.f_helper_act)
    close(g(X), 1 - np.tanh(X) ** 2)
    mod.act = np.sin
    close(g(X), np.cos(X))
    g2 = srcgrad.grad(mod.f_helper_act)  # a new transform finds a fresh helper variant too
    close(g2(X), np.cos(X))


def test_a_module_attribute_whose_kind_changes(mod):
    g = srcgrad.grad(mod.f_cfg)
    close(g(X), [2.0, 2.0, 2.0])
    mod.cfg.W = np.array([3.0, 3.0, 3.0])
    close(g(X), [3.0, 3.0, 3.0])
    close(g(X), fd(mod.f_cfg, X))
    mod.cfg.W = np.array([1.0, 2.0, 4.0])  # the same kind: the code reads the value at the call
    close(g(X), [1.0, 2.0, 4.0])


def test_a_module_attribute_float_to_array_on_a_scalar_argument(mod):
    g = srcgrad.grad(mod.f_cfg_scalar)
    assert g(1.5) == pytest.approx(6.0)
    mod.cfg.W = 3.0
    assert g(1.5) == pytest.approx(9.0)
    mod.cfg.W = np.array(3.0)  # a 0-d array: array code
    assert g(1.5) == pytest.approx(9.0)


def test_a_global_value_whose_kind_changes(mod):
    g = srcgrad.grad(mod.f_global)
    close(g(X), 4.0 * X)
    mod.W = np.array([1.0, 2.0, 3.0])
    close(g(X), 2.0 * np.array([1.0, 2.0, 3.0]) * X)


def test_reassigned_defaults(mod):
    g = srcgrad.grad(mod.f_defaults)
    assert g(1.5) == pytest.approx(2 * 2.0 * 1.5 + 1.0)
    mod.f_defaults.__defaults__ = (3.0,)
    assert g(1.5) == pytest.approx(2 * 3.0 * 1.5 + 1.0)
    mod.f_defaults.__kwdefaults__ = {"k": 5.0}
    assert g(1.5) == pytest.approx(2 * 3.0 * 1.5 + 5.0)
    assert g(1.5, 1.0) == pytest.approx(2 * 1.0 * 1.5 + 5.0)
    mod.f_defaults.__defaults__ = (np.array(4.0),)  # a default whose kind changes (a 0-d array)
    close(g(1.5), 2 * 4.0 * 1.5 + 5.0)
    value, _ = srcgrad.value_and_grad(mod.f_defaults)(1.5, k=0.0)
    close(value, 4.0 * 2.25)


def test_defaults_removed_is_an_error_not_a_stale_value(mod):
    g = srcgrad.grad(mod.f_defaults)
    g(1.5)
    mod.f_defaults.__defaults__ = None
    with pytest.raises(srcgrad.InvalidArgument, match="no default"):
        g(1.5)
    assert g(1.5, 2.0) == pytest.approx(2 * 2.0 * 1.5 + 1.0)


def test_reassigned_defaults_of_a_helper(mod):
    g = srcgrad.grad(mod.f_helper_default)
    assert g(1.5) == pytest.approx(2 * 2.0 * 1.5)
    mod.with_default.__defaults__ = (5.0,)
    assert g(1.5) == pytest.approx(2 * 5.0 * 1.5)


def test_a_rebound_closure_variable():
    def make():
        act = np.tanh

        def f(x):
            return np.sum(act(x))

        def rebind(new):
            nonlocal act
            act = new

        return f, rebind

    f, rebind = make()
    g = srcgrad.grad(f)
    close(g(X), 1 - np.tanh(X) ** 2)
    rebind(np.sin)
    close(g(X), np.cos(X))


def test_the_dispatcher_and_the_other_transforms_see_a_rebinding(mod):
    vjp = srcgrad.vjp(mod.f_act)
    jvp = srcgrad.jvp(mod.f_act_scalar)
    hess = srcgrad.hessian(mod.f_act)
    close(vjp(X, 1.0), 1 - np.tanh(X) ** 2)
    jvp(0.3, 1.0)
    hess(X)
    mod.act = np.sin
    close(vjp(X, 1.0), np.cos(X))
    assert jvp(0.3, 1.0)[1] == pytest.approx(math.cos(0.3) * math.exp(math.sin(0.3)))
    close(hess(X), np.diag(-np.sin(X)))


def test_source_shows_the_current_code(mod):
    g = srcgrad.grad(mod.f_act)
    g(X)
    assert "np.cos" not in srcgrad.source(g)
    mod.act = np.sin
    g(X)
    assert "np.cos" in srcgrad.source(g)


def test_rebinding_while_other_threads_call(mod):
    g = srcgrad.grad(mod.f_act)
    g(X)
    errors = []

    def work():
        for _ in range(200):
            got = g(X)
            if not (np.allclose(got, 1 - np.tanh(X) ** 2) or np.allclose(got, np.cos(X))):
                errors.append(got)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(20):
        mod.act = np.sin if mod.act is np.tanh else np.tanh
    for t in threads:
        t.join()
    assert not errors
    close(g(X), np.cos(X) if mod.act is np.sin else 1 - np.tanh(X) ** 2)
