"""srcgrad.custom_root: a solver's root differentiated through the implicit function theorem (issue 21, item 3).

Gradients are checked against central finite differences of the functions themselves (which run the solvers), in
reverse mode (grad, value_and_grad, vjp) and forward mode (jvp); and what the theorem cannot answer is refused.
"""

import inspect
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.rules import registry
from srcgrad.testing import check_grad, numerical_grad

# --- a scalar root: Kepler's equation E - e sin E = M --------------------------------------------------------------


def kepler(E, M, e):
    return E - e * math.sin(E) - M


@srcgrad.custom_root(kepler)
def solve_kepler(M, e, iterations=60):
    E = M
    for _ in range(iterations):
        E = E - kepler(E, M, e) / (1.0 - e * math.cos(E))
    return E


def orbit_loss(M, e):
    E = solve_kepler(M, e)
    return math.cos(E) * M + E ** 2 * e


@pytest.mark.parametrize("M, e", [(0.7, 0.3), (2.5, 0.9), (-1.2, 0.05)])
def test_kepler_gradient_matches_finite_differences(M, e):
    check_grad(orbit_loss, M, e, wrt=("M", "e"))


def test_kepler_vjp_and_jvp():
    M, e = 0.7, 0.3
    expected = [numerical_grad(orbit_loss, (M, e), i) for i in range(2)]
    pulled = srcgrad.vjp(orbit_loss, wrt=("M", "e"))(M, e, 2.0)
    np.testing.assert_allclose(pulled, [2.0 * g for g in expected], rtol=1e-6)
    push = srcgrad.jvp(orbit_loss, wrt=("M", "e"))
    value, tangent = push(M, e, (0.5, -1.5))
    assert value == pytest.approx(orbit_loss(M, e), rel=1e-14)
    assert tangent == pytest.approx(0.5 * expected[0] - 1.5 * expected[1], rel=1e-6)


def test_the_solver_is_a_black_box_and_its_extra_parameters_are_discrete():
    rule = registry.lookup(solve_kepler)
    assert rule.wrt == ("M", "e") and rule.discrete == ("iterations",)
    # a differentiated value reaching the iteration count contributes nothing, and the gradient stays right
    check_grad(kepler_with_a_varied_start, 0.9, 0.4, wrt=("M", "e"))


@srcgrad.custom_root(kepler)
def solve_kepler_from(E0, M, e):
    E = E0
    for _ in range(60):
        E = E - kepler(E, M, e) / (1.0 - e * math.cos(E))
    return E


def kepler_with_a_varied_start(M, e):
    return solve_kepler_from(M + e, M, e) * M  # (the start depends on M and e: the root does not)


def test_generated_source_reads_well():
    grad = srcgrad.grad(orbit_loss, wrt=("M", "e"))
    grad(0.7, 0.3)
    text = srcgrad.source(grad)
    assert "E = solve_kepler(M, e)" in text
    assert "# grad of line" in text and "E_pullback = solve_kepler_implicit_rule(E_bar, E, M, e" in text
    rule = inspect.getsource(registry.lookup(solve_kepler).adjoint)
    assert rule.startswith("def solve_kepler_implicit(g, ans, M, e, iterations):")
    assert "value, (E_partial, M_partial, e_partial) = partials(ans, M, e)" in rule
    assert "scale = -g / E_partial" in rule and "return scale * M_partial, scale * e_partial" in rule


# --- a vector root: A x + c x^3 = b ---------------------------------------------------------------------------------


def cubic(x, A, b, c):
    return A @ x + c * x ** 3 - b


@srcgrad.custom_root(cubic)
def solve_cubic(A, b, c):
    x = np.linalg.solve(A, b)
    for _ in range(40):
        jac = A + np.diag(3.0 * c * x ** 2)
        x = x - np.linalg.solve(jac, cubic(x, A, b, c))
    return x


def cubic_loss(A, b, c):
    x = solve_cubic(A, b, c)
    return np.sum(x ** 2) + c * np.sum(np.sin(x))


def _cubic_args():
    rng = np.random.default_rng(3)
    A = 3.0 * np.eye(3) + 0.3 * rng.standard_normal((3, 3))
    return A, rng.standard_normal(3), 0.4


def test_vector_root_gradient_matches_finite_differences():
    check_grad(cubic_loss, *_cubic_args(), wrt=("A", "b", "c"))


def test_vector_root_jvp():
    A, b, c = _cubic_args()
    dA, db = np.ones((3, 3)) * 0.1, np.arange(3.0)
    _, tangent = srcgrad.jvp(cubic_loss, wrt=("A", "b", "c"))(A, b, c, (dA, db, 0.5))
    h = 1e-6
    ahead, behind = cubic_loss(A + h * dA, b + h * db, c + 0.5 * h), cubic_loss(A - h * dA, b - h * db, c - 0.5 * h)
    expected = (ahead - behind) / (2 * h)
    assert tangent == pytest.approx(expected, rel=1e-6)


# --- an elementwise root: Kepler for many mean anomalies at once (solve="diagonal") ------------------------------


def kepler_elementwise(E, M, e):
    return E - e * np.sin(E) - M


@srcgrad.custom_root(kepler_elementwise, solve="diagonal")
def solve_kepler_all(M, e):
    E = M.copy()
    for _ in range(60):
        E = E - kepler_elementwise(E, M, e) / (1.0 - e * np.cos(E))
    return E


def orbits_loss(M, e):
    return np.sum(np.sin(solve_kepler_all(M, e)) * M)


def test_elementwise_root_gradient_matches_finite_differences():
    check_grad(orbits_loss, np.linspace(-2.0, 3.0, 5), 0.6, wrt=("M", "e"))
    _, tangent = srcgrad.jvp(orbits_loss, wrt="e")(np.linspace(-2.0, 3.0, 5), 0.6, 1.0)
    assert tangent == pytest.approx(numerical_grad(orbits_loss, (np.linspace(-2.0, 3.0, 5), 0.6), 1), rel=1e-6)


# --- what the theorem cannot answer is refused ----------------------------------------------------------------------


@srcgrad.custom_root(kepler)
def stops_early(M, e):
    return M  # (not a root unless e sin M = 0)


def stops_early_loss(M, e):
    return stops_early(M, e) ** 2


def test_a_result_that_is_not_a_root_is_refused():
    with pytest.raises(srcgrad.UnsupportedValue, match="not a root of kepler"):
        srcgrad.grad(stops_early_loss)(0.7, 0.3)
    with pytest.raises(srcgrad.UnsupportedValue, match="not a root of kepler"):
        srcgrad.jvp(stops_early_loss)(0.7, 0.3, 1.0)


def double_root(x, a):
    return (x - a) ** 2


@srcgrad.custom_root(double_root)
def solve_double_root(a):
    return a


def double_root_loss(a):
    return solve_double_root(a) * 2.0


def test_a_singular_derivative_is_refused():
    with pytest.raises(srcgrad.UnsupportedValue, match="singular"):
        srcgrad.grad(double_root_loss)(1.5)


def test_declarations_that_cannot_hold_are_refused():
    def solver(M):
        return M

    with pytest.raises(srcgrad.InvalidArgument, match=r"\['e'\] are not parameters of"):
        srcgrad.custom_root(kepler)(solver)
    with pytest.raises(srcgrad.InvalidArgument, match="solve must be one of"):
        srcgrad.custom_root(kepler, solve="cg")

    def no_theta(x):
        return x

    with pytest.raises(srcgrad.InvalidArgument, match="depends on nothing"):
        srcgrad.custom_root(no_theta)(solver)


def test_second_derivatives_through_a_root_are_refused_not_wrong():
    with pytest.raises(srcgrad.NoRuleError, match="solve_kepler_implicit_jvp") as refused:
        srcgrad.hessian(orbit_loss)(0.7, 0.3)
    assert "test_implicit.py" in str(refused.value) and "E = solve_kepler(M, e)" in str(refused.value)
    with pytest.raises(srcgrad.NoRuleError, match="solve_kepler_implicit_jvp"):
        srcgrad.grad(srcgrad.grad(orbit_loss))(0.7, 0.3)


# --- a scalar root of array parameters --------------------------------------------------------------------------------


def cubic_of_norm(x, w):
    return x ** 3 + x - np.sum(w ** 2)


@srcgrad.custom_root(cubic_of_norm)
def solve_cubic_of_norm(w):
    x = 0.0
    for _ in range(60):
        x = x - cubic_of_norm(x, w) / (3.0 * x ** 2 + 1.0)
    return x


def norm_root_loss(w):
    return solve_cubic_of_norm(w) * w[0] + np.sum(w)


def test_scalar_root_of_an_array_parameter():
    check_grad(norm_root_loss, np.array([0.3, -1.2, 0.8]))


# --- the solver is a black box: its result may be an argument itself ------------------------------------------------


def shifted(x, a):
    return x - a


@srcgrad.custom_root(shifted)
def solve_shifted(a):
    return a  # (the root is the argument itself: the same array)


def updates_the_root(a):
    x = solve_shifted(a)
    x += 1.0  # (would change a too)
    return np.sum(x * a)


def test_an_in_place_update_of_a_root_that_may_be_an_argument_is_refused():
    with pytest.raises(srcgrad.SrcgradError, match="in place|in-place"):
        srcgrad.grad(updates_the_root)(np.array([1.0, 2.0]))
