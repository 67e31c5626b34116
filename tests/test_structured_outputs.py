"""value_and_grad(f, has_aux=True) (issue 15 item 4): f returns (loss, aux); the result is ((loss, aux), gradient of
loss), aux any Python value passed through (JAX's convention); dict displays in the body hold what is not
differentiated; a gradient through a dict display whose keys are known only when the code runs is refused."""

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import numerical_grad


def with_aux(w, x):
    pred = np.tanh(x @ w)
    loss = np.mean(pred ** 2)
    return loss, {"pred": pred, "n": 3}


def early_return_aux(p, x):
    s = 0.0
    for i in range(3):
        s = s + p["a"] * x
        if s > 2:
            return s, i
    return s * 2, "done"


def helper_pair(w):
    return np.sum(w ** 2), w * 2.0


def aux_from_helper(w):
    result = helper_pair(w)
    return result


def not_a_pair(w):
    return np.sum(w)


def through_dict(w):
    d = {"a": w * 2.0}
    return d["a"]


def through_a_variable_key(w, k):
    d = {k: w * 2.0}  # (a key known only when the code runs: the display is a value passed through)
    return d[k]


def test_aux_passed_through(rng):
    w, x = rng.normal(size=3), rng.normal(size=(4, 3))
    vg = srcgrad.value_and_grad(with_aux, has_aux=True)
    for _ in range(2):  # first call, then the fused entry
        (loss, aux), g = vg(w, x)
        expected_loss, expected_aux = with_aux(w, x)
        assert loss == pytest.approx(expected_loss)
        assert list(aux) == ["pred", "n"] and aux["n"] == 3
        np.testing.assert_allclose(aux["pred"], expected_aux["pred"])
        np.testing.assert_allclose(g, numerical_grad(lambda v: with_aux(v, x)[0], (w,), 0), rtol=1e-6)


@pytest.mark.parametrize("x,expected", [(0.5, ((3.0, "done"), 3.0)), (2.0, ((4.0, 1), 4.0))])
def test_aux_on_every_path_and_structures(x, expected):
    (value, aux), g = srcgrad.value_and_grad(early_return_aux, has_aux=True)({"a": 1.0}, x)
    assert (value, aux) == expected[0] and g == {"a": expected[1]}


def test_aux_not_a_display(rng):
    w = rng.normal(size=3)
    (value, aux), g = srcgrad.value_and_grad(aux_from_helper, has_aux=True)(w)
    assert value == pytest.approx(np.sum(w ** 2))
    np.testing.assert_allclose(aux, w * 2.0)
    np.testing.assert_allclose(g, 2.0 * w)


def test_aux_needs_a_pair():
    with pytest.raises(TypeError):
        srcgrad.value_and_grad(not_a_pair, has_aux=True)(np.ones(3))
    with pytest.raises(srcgrad.InvalidArgument, match="has_aux"):
        srcgrad.value_and_grad(not_a_pair, has_aux=1)


def test_dict_display_refused_on_the_gradient_path():
    assert srcgrad.grad(through_dict)(1.0) == 2.0  # constant keys: the items are variables (tests/test_dicts.py)
    with pytest.raises(srcgrad.NoRuleError, match="differentiating through this dict"):
        srcgrad.grad(through_a_variable_key)(1.0, "a")
