"""The adjoint of np.logaddexp reads its inputs, not its value (issue 21, item 3): a loss whose value is not needed
(``grad`` of a logistic loss) never computes np.logaddexp, and nothing overflows for large differences."""

import warnings

import numpy as np

import srcgrad
from srcgrad.testing import check_grad


def logistic_loss(w, X, y):
    return np.mean(np.logaddexp(0.0, -y * (X @ w)))


def both_sides(a, b):
    return np.sum(np.logaddexp(a, b) * np.cos(a))


def _data(n=12, d=4):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    return 0.3 * rng.standard_normal(d), X, np.where(rng.standard_normal(n) > 0, 1.0, -1.0)


def test_gradient_of_the_logistic_loss_does_not_compute_the_loss():
    grad = srcgrad.grad(logistic_loss)
    grad(*_data())
    text = srcgrad.source(grad)
    assert "= np.logaddexp(" not in text  # (the loss is dead: only the source comments name it)
    assert "np.tanh(0.5 * " in text
    check_grad(logistic_loss, *_data())
    value, _ = srcgrad.value_and_grad(logistic_loss)(*_data())  # (its value, where asked for, is still computed)
    assert value == logistic_loss(*_data())


def test_both_arguments_and_their_sides_match_finite_differences():
    a = np.array([-3.0, -0.2, 0.0, 0.7, 4.0])
    b = np.array([2.0, -0.2, 1.5, -0.3, -1.0])
    check_grad(both_sides, a, b, wrt=(0, 1))
    check_grad(both_sides, b, a, wrt=(0, 1))


def test_large_differences_neither_overflow_nor_lose_the_gradient():
    a = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (an overflow would warn)
        ga, gb = srcgrad.grad(lambda_free_sum, wrt=(0, 1))(a, -a)
    expected = 1.0 / (1.0 + np.exp(np.clip(-2.0 * a, -700, 700)))  # d/da logaddexp(a, -a) = sigmoid(2a)
    np.testing.assert_allclose(ga, expected, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(gb, 1.0 - expected, rtol=1e-12, atol=1e-16)


def lambda_free_sum(a, b):
    return np.sum(np.logaddexp(a, b))


def test_a_float_multiple_of_a_difference_with_zero_is_folded_and_nothing_else():
    import ast

    from srcgrad import codegen

    def folded(text):
        return ast.unparse(codegen.simplify(ast.parse(text, mode="eval").body))

    assert folded("0.5 * (t - 0.0)") == "0.5 * t"
    assert folded("0.5 * (t - 0)") == "0.5 * t"
    assert folded("t - 0.0") == "t - 0.0"  # (an integer t would become float: kept)
    assert folded("2 * (t - 0.0)") == "2 * (t - 0.0)"  # (an integer factor keeps an integer t integer)
    assert folded("0.5 * (t + 0.0)") == "0.5 * (t + 0.0)"  # (-0.0 + 0.0 is 0.0: kept)
