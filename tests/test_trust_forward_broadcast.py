"""Forward mode: the tangent of a value an operation broadcasts has the result's shape (fuzzing.KNOWN_BUGS
"forward-broadcast (jvp)", fixed).

The tangent of ``y - MAT`` was ``y_dot`` — a number where the primal is a 2x3 array — so every later operation that
depends on the shape went wrong: ``np.mean(..., axis=0)`` raised AxisError, indexing raised, and a (3,) vector spread
over the rows of a matrix gave a tangent of the wrong shape, hence a wrong number after a reduction. Each function
below spreads a number (or a row) over an array with a broadcasting operation whose tangent term is the operand's own
tangent, then uses the shape. Checked against central differences: jvp, jacobian(mode="fwd"), hvp, hessian and
grad of grad (the three second-order paths differentiate the generated forward mode again).
"""

import numpy as np
import pytest

import srcgrad

MAT = np.array([[0.5, -1.0, 0.25], [1.0, 0.75, -0.5]])
VEC = np.array([0.3, -0.2, 0.6])


def mean_over_rows(y):
    return np.sum(np.mean(y - MAT, axis=0) ** 2)


def sum_over_columns(y):
    return np.sum(np.sum(MAT + y, axis=1) ** 3)


def indexed(y):
    t = np.add(y, MAT)
    return t[1, 2] * t[0, 0] * y


def reshaped(y):
    return np.sum(np.reshape(MAT - y, (3, 2))[:, 0] ** 2)


def transposed(y):
    return np.sum((np.subtract(MAT, y)).T[0] ** 2) + np.sum(np.transpose(y * y + MAT)[2])


def through_matmul(y):
    m = (MAT - y) @ VEC
    return np.sum(m * m)


def zeros_then_cumsum(y):
    z = np.zeros((2, 3)) + y * y
    return np.sum(np.cumsum(z, axis=1) * MAT)


def where_then_rows(y):
    w = np.where(MAT > 0.0, y, 0.0)
    return np.sum(np.mean(w, axis=1) ** 2)


def clipped_rows(y):
    # (first order only: the second order of np.clip is refused — its rule calls runtime.clip_grad, which has none)
    return np.sum(np.clip(y, MAT, 2.0)[0] ** 2)


def loop_spreads(y):
    s = y
    for row in MAT:
        s = s + row
    return np.sum(s[1] * s)


def shifted(a):
    return a - MAT


def helper_spreads(y):
    return np.sum(np.mean(shifted(y), axis=1) ** 2)


def written_after_spread(y):
    t = y + MAT
    t[0, 1] = 3.0 * y * y
    return np.sum(t * t)


def nested_list_spread(y):
    # a (2, 1) list spread over the columns: its tangent was the list of tangents, of shape (2, 1)
    t = np.add([[y], [2.0 * y]], MAT)
    return t[0, 2] * t[1, 1] + np.sum(t[:, 1:] ** 2)


SCALAR_FUNCTIONS = [mean_over_rows, sum_over_columns, indexed, reshaped, transposed, through_matmul,
                    zeros_then_cumsum, where_then_rows, loop_spreads, helper_spreads, written_after_spread,
                    nested_list_spread]


def row_over_matrix(v):
    # a (3,) vector spread over the rows: its tangent had shape (3,), the mean over axis 0 a number: a wrong value
    return np.sum(np.mean(v + MAT, axis=0) ** 2)


def row_then_index(v):
    t = MAT - v
    return np.sum(t[1] * t[:, 0].sum()) + np.sum((t @ VEC) ** 2)


VECTOR_FUNCTIONS = [row_over_matrix, row_then_index]


def _directional(f, x, t, eps=1e-6):
    return (f(x + eps * t) - f(x - eps * t)) / (2 * eps)


def _hessian_fd(f, x, h=1e-4):
    """Central differences of f alone (not of srcgrad's gradient): (f(+,+) - f(+,-) - f(-,+) + f(-,-)) / 4h^2."""
    x = np.asarray(x, dtype=float)
    steps = [h * e.reshape(x.shape) for e in np.eye(x.size)]
    hessian = np.array([[(f(x + a + b) - f(x + a - b) - f(x - a + b) + f(x - a - b)) / (4 * h * h) for b in steps]
                        for a in steps])
    return hessian.reshape(x.shape + x.shape)


@pytest.mark.parametrize("f", SCALAR_FUNCTIONS + [clipped_rows], ids=lambda f: f.__name__)
@pytest.mark.parametrize("y", [0.7, -1.3])
def test_jvp_of_a_number_spread_over_an_array(f, y):
    value, tangent = srcgrad.jvp(f)(y, 1.0)
    assert value == pytest.approx(f(y), rel=1e-12)
    assert tangent == pytest.approx(_directional(f, y, 1.0), rel=1e-6, abs=1e-8)
    assert srcgrad.jacobian(f, mode="fwd")(y) == pytest.approx(_directional(f, y, 1.0), rel=1e-6, abs=1e-8)


# (not nested_list_spread: reverse mode does not sum a list's adjoint back over what np.add spread it to — reported)
@pytest.mark.parametrize("f", [f for f in SCALAR_FUNCTIONS if f is not nested_list_spread], ids=lambda f: f.__name__)
def test_second_order_of_a_number_spread_over_an_array(f):
    y = 0.7
    expected = float(_hessian_fd(lambda x: f(float(x)), y))
    assert srcgrad.hessian(f)(y) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert srcgrad.hvp(f)(y, 2.0) == pytest.approx(2.0 * expected, rel=1e-5, abs=1e-6)
    assert srcgrad.grad(srcgrad.grad(f))(y) == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("f", VECTOR_FUNCTIONS, ids=lambda f: f.__name__)
def test_a_row_spread_over_a_matrix(f):
    v, t = np.array([0.4, -0.9, 1.1]), np.array([1.0, -0.5, 2.0])
    value, tangent = srcgrad.jvp(f)(v, t)
    assert value == pytest.approx(f(v), rel=1e-12)
    assert np.shape(tangent) == () and tangent == pytest.approx(_directional(f, v, t), rel=1e-6)
    np.testing.assert_allclose(srcgrad.jacobian(f, mode="fwd")(v), srcgrad.grad(f)(v), rtol=1e-10)
    hessian = srcgrad.hessian(f)(v)
    np.testing.assert_allclose(hessian, _hessian_fd(f, v), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(srcgrad.hvp(f)(v, t), hessian @ t, rtol=1e-8, atol=1e-10)


def test_a_spread_tangent_is_an_array_of_the_result_shape():
    # the tangent of the intermediate itself, not only what the reductions make of it
    def spread(y):
        return y - MAT

    value, tangent = srcgrad.jvp(spread)(1.5, 2.0)
    np.testing.assert_array_equal(value, 1.5 - MAT)
    assert isinstance(tangent, np.ndarray) and tangent.shape == (2, 3)
    np.testing.assert_array_equal(tangent, np.full((2, 3), 2.0))
    tangent[0, 0] = 5.0  # a writable array of its own (not a read-only broadcast view)


def test_same_shape_operands_need_no_spreading():
    # arrays of one shape and scalar-only code keep their plain tangent expressions
    def same(x):
        return np.sum(np.mean(x * x + x, axis=0))

    def numbers(y):
        return (y - 2.0) * y

    push = srcgrad.jvp(same)
    push(MAT, MAT)
    assert "broadcast_tangent" not in srcgrad.source(push)
    push = srcgrad.jvp(numbers)
    assert push(1.5, 1.0)[1] == pytest.approx(2 * 1.5 - 2.0)
    assert "broadcast_tangent" not in srcgrad.source(push)
