"""Every case of the rule table (tests/rule_cases.py) against central differences, plus the behaviours that a
gradient check alone does not pin down: tie rules, float32, non-differentiable calls, user rules, errors."""


import numpy as np
import pytest
from rule_cases import CASES

import srcgrad
from srcgrad.testing import check_grad


def _param(case):
    marks = []
    if case.pending is not None:
        exc, reason = case.pending
        marks.append(pytest.mark.xfail(raises=exc, strict=True, reason=reason))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_rule_case(case):
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    check_grad(case.fn, *args, wrt=case.wrt, rtol=case.rtol, atol=case.atol, eps=case.eps)


def _case(name):
    found = [c for c in CASES if c.id == name]
    assert found, f"no case named {name}"
    return found[0]


# --- ties: the documented rules -------------------------------------------------------------------------------------


def max_all(x):
    return np.max(x)


def min_rows(x):
    return np.sum(np.min(x, axis=1) * np.array([1.0, 2.0]))


def maximum_sum(x, y):
    return np.sum(np.maximum(x, y))


def abs_sum(x):
    return np.sum(np.abs(x)) + abs(x[0])


def clip_sum(x, lo):
    return np.sum(np.clip(x, lo, 1.0))


def inf_norm(x):
    return np.linalg.norm(x, np.inf)


def test_extremum_ties_split_equally():
    x = np.array([[1.0, 3.0, 3.0], [3.0, 0.0, 2.0]])  # three-way tie for the maximum: a third each
    np.testing.assert_allclose(srcgrad.grad(max_all)(x), [[0.0, 1 / 3, 1 / 3], [1 / 3, 0.0, 0.0]])
    y = np.array([[0.0, 2.0, 0.0], [5.0, 1.0, 1.0]])  # row minima tied: half each, times the row's weight
    np.testing.assert_allclose(srcgrad.grad(min_rows)(y), [[0.5, 0.0, 0.5], [0.0, 1.0, 1.0]])
    np.testing.assert_allclose(srcgrad.grad(inf_norm)(np.array([-2.0, 1.0, 2.0])), [-0.5, 0.0, 0.5])


def test_elementwise_ties():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 4.0])
    gx, gy = srcgrad.grad(maximum_sum, wrt=(0, 1))(x, y)
    np.testing.assert_allclose(gx, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(gy, [0.5, 0.0, 1.0])
    np.testing.assert_allclose(srcgrad.grad(abs_sum)(np.array([0.0, -2.0, 3.0])), [0.0, -1.0, 1.0])
    gx, glo = srcgrad.grad(clip_sum, wrt=(0, 1))(np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), 0.0)
    np.testing.assert_allclose(gx, [0.0, 0.5, 1.0, 0.5, 0.0])
    assert glo == pytest.approx(1.5)


# --- float32 in, float32 out ----------------------------------------------------------------------------------------

FLOAT32_CASES = [
    "exp-array", "log-array", "tanh-array", "sqrt-array", "arctan2-(3, 4)-(4,)", "power-(3, 1)-(1, 4)",
    "divide-(3, 4)-()", "maximum-ties", "clip-broadcast-bounds", "where-broadcast", "logaddexp-(3, 4)-(3, 4)",
    "sum-axis(0, 2)-keepdimsTrue", "mean-axis-1-keepdimsFalse", "prod-axis1-keepdimsFalse", "max-axis0-keepdimsTrue",
    "var-ddof1-axis1", "std-axisNone-keepdimsFalse", "norm-ordNone-axis1-keepdimsFalse-(3, 4)", "cumsum-axis0",
    "cumprod-axis1", "trace-0-0-1-(3, 4)", "diag-1-(3,)", "matmul-(5, 2, 3)-(3, 4)", "op_matmul-(3,)-(3, 4)",
    "dot-(2, 3)-(3,)", "tensordot-2-(2, 3, 4)-(3, 4, 5)", "einsum-ij,jk->ik", "inv-()", "solve-(3, 3)-(3, 2)",
    "det-()", "cholesky-()", "reshape-methods", "transpose-axes", "broadcast_to", "tile-(2, 1)-(2, 3)",
    "repeat-[1, 0, 3]-0", "stack-list", "concatenate-tuple", "getitem-fancy-repeated", "getitem-mask",
    "sort-axis-1", "take_along_axis",
]


def _to32(a):
    return a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32_gradients_stay_float32(name):
    case = _case(name)
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    args32 = tuple(_to32(a) for a in args)
    _, g64 = srcgrad.value_and_grad(case.fn, wrt=case.wrt)(*args)
    _, g32 = srcgrad.value_and_grad(case.fn, wrt=case.wrt)(*args32)
    for position, a, b in zip(case.wrt, g32, g64):
        if isinstance(args32[position], np.ndarray):
            assert a.dtype == np.float32, f"{name}: gradient of argument {position} is {a.dtype}"
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-4)


# --- non-differentiable calls pass through --------------------------------------------------------------------------


def passes_through(x):
    n = len(x)
    size = x.shape[0] + np.shape(x)[1] + x.ndim + np.ndim(x) + x.size + np.size(x)
    best = np.argmax(x, axis=1)
    worst = np.argmin(x[0])
    order = np.argsort(x[:, 0])
    keep = np.logical_and(x > 0.0, np.logical_not(np.isnan(x)))
    whole = x.astype("int64")
    return (np.sum(x[order] * size) + np.sum(x[np.arange(n), best]) + x[0, worst] + np.sum(np.where(keep, x, 0.0))
            + np.sum(whole * x) + np.sum(np.sign(x) * np.floor(x) * np.round(x)))


def constructors(x):
    n, m = x.shape
    base = np.zeros_like(x) + np.ones((n, m)) + np.full(x.shape, 2.0) + np.empty_like(x) * 0.0
    grid = np.arange(m) + np.linspace(0.0, 1.0, m) + np.eye(n, m)[0] + np.ones_like(x)[0] + np.full_like(x, 3.0)[1]
    return np.sum(x * base * grid) + np.sum(np.identity(n) @ x) + np.sum(np.tri(n) @ x)


def test_non_differentiable_calls_pass_through(rng):
    check_grad(passes_through, rng.uniform(-3.0, 3.0, size=(4, 3)))


def test_array_constructors_are_constants(rng):
    check_grad(constructors, rng.normal(size=(3, 4)))


def test_astype_to_int_has_zero_gradient():
    def cast_only(x):
        return np.sum(x.astype("int64") * 1.0)

    np.testing.assert_array_equal(srcgrad.grad(cast_only)(np.array([0.5, 1.5])), [0.0, 0.0])


def astype_float_type(x):
    return np.sum(x.astype(float) * x)


def test_astype_float_type_object(rng):
    check_grad(astype_float_type, rng.normal(size=3))


# --- user rules -----------------------------------------------------------------------------------------------------


def softplus(x):
    return np.logaddexp(0.0, x)


@srcgrad.defgrad(softplus)
def softplus_grad(g, ans, x):
    return g * 0.5 * (1.0 + np.tanh(0.5 * x))  # the logistic sigmoid, without overflow for any x


def softplus_loss(x):
    return np.sum(softplus(x) * np.arange(1.0, 1.0 + np.size(x)))


def test_user_rule_softplus(rng):
    check_grad(softplus_loss, rng.normal(size=5) * 3.0)
    assert "np.tanh" in srcgrad.source(srcgrad.grad(softplus_loss), np.zeros(2))  # the rule, inlined
    with np.errstate(over="raise", under="ignore"):
        g = srcgrad.grad(softplus_loss)(np.array([-800.0, 0.0, 800.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, 3.0])


@srcgrad.nondifferentiable
def quantize(x):
    return np.round(x * 4.0) / 4.0


def straight_through(x):
    return np.sum(x * quantize(x))


def test_user_function_marked_nondifferentiable(rng):
    x = rng.normal(size=4)
    np.testing.assert_allclose(srcgrad.grad(straight_through)(x), np.round(x * 4.0) / 4.0)


def distance(a, b):
    return np.sqrt(np.sum((a - b) ** 2))


@srcgrad.defgrad(distance)
def distance_grad(g, ans, a, b):
    return g * (a - b) / ans, -g * (a - b) / ans


def distance_loss(a, b):
    return distance(a, b) * 2.0 + distance(a, 2.0 * b)


def test_user_rule_two_arguments(rng):
    check_grad(distance_loss, rng.normal(size=3), rng.normal(size=3), wrt=(0, 1))


class Opaque:
    def __call__(self, x):
        return x * 2.0


opaque = Opaque()


def through_unknown(x):
    return np.sum(opaque(x))


def through_unknown_numpy(x):
    return np.sum(np.i0(x))


def test_unknown_function_is_an_error():
    for f in (through_unknown, through_unknown_numpy):
        with pytest.raises(srcgrad.NoRuleError, match="no derivative rule") as info:
            srcgrad.grad(f)(np.ones(3))
        assert "defgrad" in str(info.value) and ":" in str(info.value).splitlines()[0]


def test_unknown_function_on_constants_is_fine():
    def uses_opaque_on_data(x):
        return np.sum(x * opaque(np.ones(3)))

    np.testing.assert_allclose(srcgrad.grad(uses_opaque_on_data)(np.ones(3)), [2.0, 2.0, 2.0])


# --- errors ---------------------------------------------------------------------------------------------------------


def sum_initial(x):
    return np.sum(x, initial=1.0)


def sum_dtype_positional(x):
    return np.sum(x, 0, "float32")


def einsum_ellipsis(a):
    return np.sum(np.einsum("...i->...", a))


def test_unsupported_keywords_are_errors():
    with pytest.raises(srcgrad.SrcgradError, match="does not accept these arguments"):
        srcgrad.grad(sum_initial)(np.ones(3))
    with pytest.raises(srcgrad.SrcgradError, match="does not accept these arguments"):
        srcgrad.grad(sum_dtype_positional)(np.ones((2, 3)))


def test_einsum_ellipsis_is_differentiated():  # it was a ValueError naming no line (issue 17)
    np.testing.assert_array_equal(srcgrad.grad(einsum_ellipsis)(np.ones((2, 3))), np.ones((2, 3)))


def square_sum(x):
    return np.sum(x * x)


def test_complex_inputs_are_rejected():
    with pytest.raises(srcgrad.InvalidArgument, match="complex"):
        srcgrad.grad(square_sum)(np.ones(3, dtype=np.complex128))
    with pytest.raises(srcgrad.InvalidArgument, match="complex"):
        srcgrad.grad(square_sum)(1.0 + 2.0j)
    with pytest.raises(srcgrad.InvalidArgument, match="complex"):
        srcgrad.grad(square_sum)(np.complex64(1.0))
