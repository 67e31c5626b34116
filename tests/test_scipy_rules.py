"""scipy (issue 16 item 6): the rules register once the user's code imports scipy, find distributions' bound methods,
guard what they were made for, refuse what they do not differentiate at the user's line, and differentiate the
statistics functions people write (gradients against central differences, forward mode against reverse mode).

The gradient check of every rule on its own is the rule table (tests/rule_cases_scipy.py, run by
tests/test_numpy_rules.py and tests/test_forward_rules.py).
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")

import scipy.linalg  # noqa: E402
import scipy.signal  # noqa: E402
import scipy.special as special  # noqa: E402
from scipy import stats  # noqa: E402

import srcgrad  # noqa: E402
from srcgrad.errors import InternalError, NoRuleError, SrcgradError  # noqa: E402
from srcgrad.rules import lookup  # noqa: E402
from srcgrad.testing import check_grad  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(16)


def _refused(func, *args, error=SrcgradError, match=None):
    """Generating func's gradient raises ``error`` (never an internal error), naming this file and func's line."""
    with pytest.raises(error, match=match) as info:
        srcgrad.value_and_grad(func, wrt=tuple(range(len(args))))(*args)
    assert not isinstance(info.value, InternalError), str(info.value)
    assert f"test_scipy_rules.py:{func.__code__.co_firstlineno + 1}:" in str(info.value), str(info.value)
    return info.value


# --- registration --------------------------------------------------------------------------------------------------


def _run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_srcgrad_does_not_import_scipy_and_its_rules_load_once_the_user_does(tmp_path):
    out = _run("""
        import sys
        import srcgrad
        from srcgrad.rules import lookup
        print("scipy" in sys.modules)
        import scipy.special
        print(lookup(scipy.special.expit).name, "scipy.stats" in sys.modules)
        def f(x):
            return scipy.special.erf(x) * 2.0
        print(round(srcgrad.grad(f)(0.0), 12))
    """, tmp_path)
    assert out.split("\n") == ["False", "scipy.special.expit False", str(round(4 / np.sqrt(np.pi), 12))]


def test_a_distributions_methods_find_their_own_rules():
    first, second = stats.norm.logpdf, stats.norm.logpdf
    assert first is not second and lookup(first) is lookup(second) is not None  # a new bound method at every read
    assert lookup(stats.norm.logpdf) is not lookup(stats.t.logpdf)
    assert lookup(stats.norm.logpdf) is not lookup(stats.norm.pdf)
    assert lookup(stats.norm.logpdf).name == "scipy.stats.norm.logpdf"
    assert lookup(special.psi) is lookup(special.digamma) and lookup(special.jn) is lookup(special.jv)


DIST = stats.norm


def logpdf_of_dist(x):
    return np.sum(DIST.logpdf(x, 0.5, 2.0))


def test_the_guard_holds_the_distribution_a_method_is_bound_to():
    global DIST
    x = np.array([0.3, -1.2, 2.0])
    g = srcgrad.grad(logpdf_of_dist)
    np.testing.assert_allclose(g(x), -(x - 0.5) / 4.0)
    DIST = stats.logistic
    try:
        np.testing.assert_allclose(g(x), -np.tanh((x - 0.5) / 4.0) / 2.0)  # logistic's score, regenerated
        check_grad(logpdf_of_dist, x)
    finally:
        DIST = stats.norm


# --- what is refused, and where -------------------------------------------------------------------------------------


def gammainc_in_a(a, x):
    return special.gammainc(a, x)


def t_cdf_in_df(x, df):
    return stats.t.cdf(x, df)


def bessel_in_order(v, x):
    return special.iv(v, x)


def frozen_distribution(x, scale):
    return np.sum(stats.norm(0.0, scale).logpdf(x))


def ufunc_without_rule(x):
    return np.sum(special.log_expit(x))


def overwrite_b(a, b):
    return np.sum(scipy.linalg.solve_triangular(a, b, overwrite_b=True))


def test_parameters_without_a_closed_form_derivative_are_refused_at_the_users_line():
    error = _refused(gammainc_in_a, 1.5, 0.7, error=NoRuleError, match="`a` of scipy.special.gammainc")
    assert "discrete=" in str(error)  # (the hint says how a rule of one's own would declare it)
    _refused(t_cdf_in_df, 0.3, 4.0, error=NoRuleError, match="`df` of scipy.stats.t.cdf")
    _refused(bessel_in_order, 1.5, 0.7, error=NoRuleError, match="`v` of scipy.special.iv")
    # ... and the same calls differentiate in their other arguments
    check_grad(gammainc_in_a, 1.5, 0.7, wrt=1)
    check_grad(t_cdf_in_df, 0.3, 4.0, wrt=0)
    check_grad(bessel_in_order, 1.5, 0.7, wrt=1)


def test_scipy_calls_without_rules_are_refused_at_the_users_line():
    _refused(frozen_distribution, np.array([0.1, 0.2]), 1.5)
    _refused(ufunc_without_rule, np.array([0.1, 0.2]), error=NoRuleError, match="log_expit")
    _refused(overwrite_b, np.eye(2) * 2.0, np.ones(2), match="does not accept these arguments")


# --- statistics functions as people write them ----------------------------------------------------------------------


def logistic_regression_nll(w, X, y):
    z = X @ w
    return -np.sum(y * np.log(special.expit(z)) + (1 - y) * np.log1p(-special.expit(z)))


def probit_nll(w, X, y):
    z = X @ w
    return -np.sum(y * special.log_ndtr(z) + (1 - y) * special.log_ndtr(-z))


def mixture_nll(x, means, log_scales, logits):
    log_weights = special.log_softmax(logits)
    per_component = stats.norm.logpdf(x[:, None], means, np.exp(log_scales)) + log_weights
    return -np.sum(special.logsumexp(per_component, axis=1))


def gp_negative_log_likelihood(log_lengthscale, X, y):
    d = X[:, None, :] - X[None, :, :]
    K = np.exp(-0.5 * np.sum(d ** 2, axis=-1) / np.exp(2 * log_lengthscale)) + 0.1 * np.eye(len(y))
    factor = scipy.linalg.cho_factor(K, lower=True)
    alpha = scipy.linalg.cho_solve(factor, y)
    return 0.5 * y @ alpha + np.sum(np.log(np.diagonal(factor[0])))


def mvn_fit(mean, chol, x):
    cov = chol @ chol.T + 0.5 * np.eye(3)
    return -np.sum(stats.multivariate_normal.logpdf(x, mean, cov))


def student_t_regression(w, log_df, X, y):
    return -np.sum(stats.t.logpdf(y, np.exp(log_df), X @ w, 0.7))


def gamma_poisson(log_rate, shape, k):
    rate = np.exp(log_rate)
    return np.sum(stats.gamma.logpdf(rate, shape, scale=2.0)) + np.sum(stats.poisson.logpmf(k, rate))


def smoothed_signal(x, kernel):
    smooth = scipy.signal.convolve(x, special.softmax(kernel), mode="same")
    return np.sum((smooth - x) ** 2)


def matrix_functions(a):
    spd = a @ a.T + np.eye(3)
    return np.sum(scipy.linalg.expm(0.3 * a) ** 2) + np.trace(scipy.linalg.sqrtm(spd))


def entropy_terms(p, q):
    return np.sum(special.entr(p)) + np.sum(special.rel_entr(p, q)) + np.sum(special.xlogy(p, q))


X = RNG.normal(size=(6, 3))
EVERYDAY = [
    (logistic_regression_nll, (RNG.normal(size=3), X, (RNG.uniform(size=6) < 0.5) * 1.0), (0,)),
    (probit_nll, (RNG.normal(size=3), X, (RNG.uniform(size=6) < 0.5) * 1.0), (0,)),
    (mixture_nll, (RNG.normal(size=7), RNG.normal(size=3), RNG.normal(size=3) * 0.3, RNG.normal(size=3)), (0, 1, 2, 3)),
    (gp_negative_log_likelihood, (0.2, RNG.normal(size=(5, 2)), RNG.normal(size=5)), (0, 1, 2)),
    (mvn_fit, (RNG.normal(size=3), RNG.normal(size=(3, 3)), RNG.normal(size=(4, 3))), (0, 1, 2)),
    (student_t_regression, (RNG.normal(size=3), 1.2, X, RNG.normal(size=6)), (0, 1)),
    (gamma_poisson, (RNG.normal(size=4) * 0.3, 2.5, np.array([0, 2, 1, 5])), (0, 1)),
    (smoothed_signal, (RNG.normal(size=9), RNG.normal(size=3)), (0, 1)),
    (matrix_functions, (RNG.normal(size=(3, 3)),), (0,)),
    (entropy_terms, (RNG.uniform(0.1, 1.0, size=4), RNG.uniform(0.1, 1.0, size=4)), (0, 1)),
]


@pytest.mark.parametrize("func, args, wrt", EVERYDAY, ids=[f.__name__ for f, _, _ in EVERYDAY])
def test_statistics_functions_against_central_differences(func, args, wrt):
    check_grad(func, *args, wrt=wrt, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("func, args, wrt", EVERYDAY, ids=[f.__name__ for f, _, _ in EVERYDAY])
def test_forward_mode_agrees_with_reverse_mode(func, args, wrt):
    for position in wrt:
        direction = RNG.normal(size=np.shape(args[position]))
        direction = float(direction) if np.ndim(args[position]) == 0 else direction
        _, tangent = srcgrad.jvp(func, wrt=position)(*args, direction)
        gradient = srcgrad.grad(func, wrt=position)(*args)
        np.testing.assert_allclose(tangent, np.sum(gradient * direction), rtol=1e-8, atol=1e-10)


def test_emitted_module_carries_the_scipy_helpers(tmp_path):
    """``srcgrad emit`` of a function with scipy rules: the module imports scipy, copies srcgrad's helpers, and its
    gradient is srcgrad's."""
    text = srcgrad.emit(gp_negative_log_likelihood, wrt=(0, 2))
    imported = {alias.name for node in ast.walk(ast.parse(text)) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module for node in ast.walk(ast.parse(text))
                                            if isinstance(node, ast.ImportFrom)}
    assert "scipy" in imported and not any(name and name.startswith("srcgrad") for name in imported)
    namespace: dict = {}
    exec(compile(text, str(tmp_path / "emitted.py"), "exec"), namespace)
    args = EVERYDAY[3][1]
    emitted = namespace["gp_negative_log_likelihood_grad"](*args)
    expected = srcgrad.grad(gp_negative_log_likelihood, wrt=(0, 2))(*args)
    for got, want in zip(emitted, expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


# --- values at the edges of the rules ---------------------------------------------------------------------------------


def test_closed_forms_at_known_points():
    assert srcgrad.grad(lambda_erfinv)(0.0) == pytest.approx(np.sqrt(np.pi) / 2)
    assert srcgrad.grad(lambda_ndtri)(0.5) == pytest.approx(np.sqrt(2 * np.pi))
    assert srcgrad.grad(lambda_i1)(0.0) == pytest.approx(0.5)  # I1'(0) = 1/2: no division by x
    assert srcgrad.grad(lambda_log_ndtr)(-30.0) == pytest.approx(30.0, rel=2e-3)  # far tail: no 0/0


def lambda_erfinv(x):
    return special.erfinv(x)


def lambda_ndtri(x):
    return special.ndtri(x)


def lambda_i1(x):
    return special.i1(x)


def lambda_log_ndtr(x):
    return special.log_ndtr(x)


def logsumexp_issue(x):  # issue 16: refused with an error pointing inside scipy's source
    return special.logsumexp(x) - special.logsumexp(2.0 * x, b=0.5)


def test_logsumexp_from_the_issue():
    x = np.array([0.3, -1.2, 2.0])
    check_grad(logsumexp_issue, x)
    np.testing.assert_allclose(srcgrad.grad(logsumexp_issue)(x), special.softmax(x) - 2.0 * special.softmax(2 * x))
