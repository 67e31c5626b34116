"""Everyday Python (issue 16 items 1-5, 7): validation, messages, logging, `with`, `try`, walrus, *args, n-ary
max/min, and no descent into libraries.

Every function is checked against central differences on each side of its branches, and where it raises, the
gradient raises the same exception type with the same message; printed and logged lines are counted and ordered.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import warnings

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grad

logger = logging.getLogger("srcgrad.tests.everyday")


def same_failure(f, *args, **kwargs):
    """The gradient of ``f`` fails as ``f`` does: the same exception type and message."""
    with pytest.raises(Exception) as expected:
        f(*args, **kwargs)
    with pytest.raises(expected.type) as got:
        srcgrad.grad(f)(*args, **kwargs)
    assert str(got.value) == str(expected.value)
    assert not isinstance(got.value, srcgrad.SrcgradError)
    return got.value


# --- 1. statements that carry no derivative -------------------------------------------------------------------------


def validated_sqrt(x):
    if x < 0:
        raise ValueError(f"x must be >= 0, got {x}")
    return math.sqrt(x) * x


def test_raise_under_if_both_sides():
    check_grad(validated_sqrt, 2.0)
    same_failure(validated_sqrt, -2.0)


def validated_array(w, x):
    if w.shape != x.shape:
        raise ValueError("shapes differ: %s vs %s" % (w.shape, x.shape))  # noqa: UP031 (what people write)
    if np.any(x < 0):
        raise ValueError("x must be non-negative, got {}".format(x.min()))  # noqa: UP032
    return np.sum(w * np.sqrt(x))


def test_raise_with_percent_and_format_messages():
    w, x = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 3.0])
    check_grad(validated_array, w, x, wrt=(0, 1))
    same_failure(validated_array, w, np.array([1.0, 2.0]))
    same_failure(validated_array, w, np.array([1.0, -2.0, 3.0]))


def raise_from(x):
    if x > 1.0:
        cause = ValueError("the inner reason")
        raise RuntimeError(f"bad config for {x:.2f}") from cause
    return x * x


def test_raise_from_keeps_the_cause():
    check_grad(raise_from, 0.5)
    err = same_failure(raise_from, 1.5)
    assert isinstance(err.__cause__, ValueError)


def every_path_raises_but_one(x, mode):
    if mode == "square":
        y = x * x
    elif mode == "cube":
        y = x * x * x
    else:
        raise NotImplementedError(mode)
    return y


def test_raise_in_elif_chain_joins_only_the_paths_that_return():
    check_grad(every_path_raises_but_one, 1.3, "square")
    check_grad(every_path_raises_but_one, 1.3, "cube")
    same_failure(every_path_raises_but_one, 1.3, "quartic")


def raises_in_loop(x, n):
    s = 0.0
    for i in range(n):
        print("iteration", i)
        if i == 2:
            raise ArithmeticError(f"stopped at {i}")
        s = s + x * i
    return s


def test_raise_in_loop_runs_the_iterations_before_once(capsys):
    check_grad(raises_in_loop, 0.5, 2)
    capsys.readouterr()
    same_failure(raises_in_loop, 0.5, 4)
    assert capsys.readouterr().out == "iteration 0\niteration 1\niteration 2\n" * 2  # f, then its gradient


def asserted(x, lo):
    assert x > lo, f"x must be above {lo!r}, got {x:.3f}"
    assert x < 100
    return x ** 3


def test_assert_with_message_both_sides():
    check_grad(asserted, 2.0, 1.0)
    # (pytest rewrites the asserts of this module, so the messages are Python's own, written out)
    with pytest.raises(AssertionError) as info:
        srcgrad.grad(asserted)(0.5, 1.0)
    assert str(info.value) == "x must be above 1.0, got 0.500"
    with pytest.raises(AssertionError) as info:
        srcgrad.grad(asserted)(200.0, 1.0)
    assert info.value.args == ()


def fstrings(x, width):
    print(f"{x!r:>{width}} {x:.3e} {'%5.2f' % x} {x!s}{x!a} {{x}}", "{0:>{1}}|{0!r}".format(x, width))  # noqa: UP031
    return x * x


def test_fstring_conversions_and_nested_specs(capsys):
    fstrings(1.25, 12)
    expected = capsys.readouterr().out
    check_grad(fstrings, 1.25, 12)
    capsys.readouterr()
    srcgrad.grad(fstrings)(1.25, 12)
    assert capsys.readouterr().out == expected == "        1.25 1.250e+00  1.25 1.251.25 {x}         1.25|1.25\n"


def through_a_string(x):
    return float(f"{x}")


def test_no_derivative_through_a_string():
    with pytest.raises(srcgrad.NoRuleError, match="formatted into a string"):
        srcgrad.grad(through_a_string)(1.0)


def bad_format(x):
    msg = f"{x:d}"  # noqa: F841 (unused, but it raises: the gradient raises too)
    return x * 2.0


def test_unused_format_that_raises_still_raises():
    same_failure(bad_format, 1.5)


def noisy(x, n, verbose=True):
    y = x
    for i in range(n):
        y = np.sin(y) * x
        if verbose:
            print(f"step {i}: y={y:.4f}")
        logger.debug("step %d: %s", i, y)
    logger.info("done after %d steps", n)
    warnings.warn(f"noisy ran {n} steps", stacklevel=1)
    return y * y


def test_print_log_and_warn_run_once_in_program_order(capsys, caplog):
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        with pytest.warns(UserWarning) as expected:
            noisy(0.7, 3)
        want_out, want_log = capsys.readouterr().out, [r.getMessage() for r in caplog.records]
        caplog.clear()
        with pytest.warns(UserWarning) as got:
            srcgrad.grad(noisy)(0.7, 3)
        assert capsys.readouterr().out == want_out
        assert [r.getMessage() for r in caplog.records] == want_log
        assert [str(w.message) for w in got] == [str(w.message) for w in expected] == ["noisy ran 3 steps"]
    assert want_out.count("\n") == 3 and len(want_log) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_grad(noisy, 0.7, 3, False)


@pytest.mark.filterwarnings("ignore:noisy ran")
def test_print_is_not_repeated_by_value_and_grad_or_vjp(capsys):
    srcgrad.value_and_grad(noisy)(0.7, 2)
    assert capsys.readouterr().out.count("step") == 2
    srcgrad.vjp(noisy)(0.7, 2, True, 1.0)
    assert capsys.readouterr().out.count("step") == 2


def effect_between(x):
    t = 1.0 / x  # raises first on 0.0: nothing is printed
    print("after the division")
    return t + x


def test_nothing_moves_past_an_effect(capsys):
    same_failure(effect_between, 0.0)
    assert capsys.readouterr().out == ""
    check_grad(effect_between, 2.0)


def sorts_its_argument(x):
    x.sort()
    return np.sum(x * np.arange(3.0))


def keeps_a_differentiated_value(x):
    xs = []
    xs.extend([x])
    return sum(xs)


def changes_what_the_gradient_reads(x):
    w = np.arange(3.0)
    y = np.sum(x * w)
    w.fill(2.0)
    return y


@pytest.mark.parametrize("f,arg,what", [
    # (the alias analysis of writes, srcgrad/aliasing.py, runs first and refuses these two in its words)
    (sorts_its_argument, np.array([3.0, 1.0, 2.0]), "on a differentiated value|changes its arguments in place"),
    (keeps_a_differentiated_value, 2.0, "keeps it in `xs`|changes its arguments in place"),
    (changes_what_the_gradient_reads, np.ones(3), "may change `w`"),
])
def test_methods_without_rules_that_could_change_values_are_refused(f, arg, what):
    with pytest.raises(srcgrad.NoRuleError, match=what) as info:
        srcgrad.grad(f)(arg)
    assert info.value.location.filename == __file__


def string_methods(x):
    name = "loss"
    tag = name.upper().replace("L", "l")
    logging.getLogger("srcgrad.tests.other").debug("%s=%s", tag, x)
    return x * len(tag)


def test_methods_on_strings_and_loggers_run():
    check_grad(string_methods, 0.3)


# --- 4. walrus ----------------------------------------------------------------------------------------------------


def walrus_condition(x):
    if (y := x * 2.0) > 1.0:
        return y * y
    return y + x


def walrus_while(x, n):
    s = x
    while (n := n - 1) >= 0:
        s = s * x + n
    return s


def walrus_comprehension(xs):
    total = sum([(z := v * v) + z for v in xs if (w := v * 0.5) > -10.0])
    return total + z * w


def walrus_expression(x):
    return (a := math.sin(x)) * a + (b := x * 3.0) / b * x


@pytest.mark.parametrize("f,args", [
    (walrus_condition, (0.8,)), (walrus_condition, (0.2,)), (walrus_while, (0.7, 3)), (walrus_while, (0.7, 0)),
    (walrus_comprehension, (np.array([0.5, -1.5, 2.0]),)), (walrus_expression, (0.4,)),
])
def test_walrus(f, args):
    check_grad(f, *args)


def walrus_after_and(x):
    if x > 0.0 and (y := x * 2.0) > 1.0:
        return y
    return x


def test_walrus_after_and_is_refused():
    with pytest.raises(srcgrad.UnsupportedSyntax, match="after `and`"):
        srcgrad.grad(walrus_after_and)(1.0)


# --- 5. calls: max/min of n arguments and of an iterable, sum with a start ---------------------------------------


def max3(a, b, c):
    return max(a, b * 2.0, c) * min(a, b, c)


def max_of_list(xs):
    return max([xs[0], xs[1] * 2.0, xs[2]]) + min(xs) * 3.0


def max_of_array(x):
    return max(x) * min(x)


def max_of_generator_list(x):
    return max(list(v * v for v in x)) + min(v * 3.0 for v in x if v > -5.0)


@pytest.mark.parametrize("f,args,wrt", [
    (max3, (1.0, 0.2, -0.5), (0, 1, 2)), (max3, (0.1, 0.7, 0.4), (0, 1, 2)), (max3, (0.1, 0.2, 0.9), (0, 1, 2)),
    (max_of_list, (np.array([0.3, 0.9, -0.1]),), (0,)), (max_of_list, (np.array([2.0, 0.2, -0.1]),), (0,)),
    (max_of_array, (np.array([0.3, -0.9, 0.5]),), (0,)), (max_of_generator_list, (np.array([0.3, -0.9, 0.5]),), (0,)),
])
def test_max_min_of_n_and_iterables(f, args, wrt):
    check_grad(f, *args, wrt=wrt)


def test_max_ties_share_equally():
    def three(a, b, c):
        return max(a, b, c)

    assert srcgrad.grad(three, wrt=(0, 1, 2))(1.0, 1.0, 0.5) == (0.5, 0.5, 0.0)
    assert srcgrad.grad(three, wrt=(0, 1, 2))(1.0, 1.0, 1.0) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    np.testing.assert_allclose(srcgrad.grad(max_of_array)(np.array([2.0, 2.0, 1.0])), [0.5, 0.5, 2.0])
    assert srcgrad.grad(three, wrt=(0, 1, 2))(math.nan, 1.0, 2.0) == (1.0, 0.0, 0.0)  # the item returned


def with_key(xs):
    return max(xs, key=abs)


def test_max_with_key_is_refused():
    with pytest.raises(srcgrad.UnsupportedSyntax, match="key=\\.\\.\\.") as info:
        srcgrad.grad(with_key)(np.array([1.0, -2.0]))
    assert info.value.location.filename == __file__


def sum_with_start(xs, s):
    return sum([x * x for x in xs], s * 2.0) + sum((x for x in xs), 1.0)


def test_sum_with_start():
    check_grad(sum_with_start, np.array([0.3, -0.7]), 0.4, wrt=(0, 1))


# --- 5. *args and **kwargs ------------------------------------------------------------------------------------------


def loss_with_extras(w, *data, scale=1.0, **options):
    total = 0.0
    for x in data:
        total = total + np.sum((w * x - 1.0) ** 2)
    if options.get("l2", 0.0):
        total = total + options["l2"] * np.sum(w * w)
    return scale * total / len(data)


def helper_with_varargs(x, *powers, **weights):
    out = 0.0
    for p in powers:
        out = out + x ** p
    return out * weights.get("w", 1.0)


def calls_helper_with_varargs(x):
    return helper_with_varargs(x, 2, 3, w=0.5) + helper_with_varargs(x * 2.0)


def test_differentiated_function_with_args_and_kwargs():
    w = np.array([0.5, -0.2])
    xs = (np.array([1.0, 2.0]), np.array([0.5, -1.0]))
    check_grad(loss_with_extras, w, *xs)
    g = srcgrad.grad(loss_with_extras)(w, *xs, scale=2.0, l2=0.1)
    eps, expected = 1e-6, np.zeros(2)
    for i in range(2):
        e = np.eye(2)[i] * eps
        expected[i] = (loss_with_extras(w + e, *xs, scale=2.0, l2=0.1)
                       - loss_with_extras(w - e, *xs, scale=2.0, l2=0.1)) / (2 * eps)
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    assert "*data" in srcgrad.source(srcgrad.grad(loss_with_extras), w, *xs)


def test_helpers_with_args_and_kwargs():
    check_grad(calls_helper_with_varargs, 0.7)


def test_wrt_into_args_is_refused():
    with pytest.raises(srcgrad.InvalidArgument, match=r"\*data"):
        srcgrad.grad(loss_with_extras, wrt=1)
    with pytest.raises(srcgrad.InvalidArgument, match=r"\*\*options"):
        srcgrad.grad(loss_with_extras, wrt="options")


def passes_differentiated_into_varargs(x):
    return helper_with_varargs(2.0, x)


def test_differentiated_value_into_a_helpers_args_is_refused():
    with pytest.raises(srcgrad.NoRuleError, match=r"\*powers") as info:
        srcgrad.grad(passes_differentiated_into_varargs)(2.0)
    assert info.value.location.filename == __file__


def defaults_before_varargs(x, y=2.0, *rest, z=3.0):
    return x * y * z + sum(rest) * x


def test_defaults_before_varargs():
    check_grad(defaults_before_varargs, 0.5)
    check_grad(defaults_before_varargs, 0.5, 1.5, 2.0, 3.0)
    assert srcgrad.grad(defaults_before_varargs)(0.5) == 6.0
    assert srcgrad.grad(defaults_before_varargs)(0.5, 1.5, 2.0, 3.0, z=0.5) == 1.5 * 0.5 + 5.0


def returns_an_argument_as_gradient(w, *data):
    return np.vdot(w, data[0])


def test_gradient_is_never_an_argument_gathered_by_args():
    x = np.array([3.0, 4.0])
    g = srcgrad.grad(returns_an_argument_as_gradient)(np.ones(2), x)
    np.testing.assert_array_equal(g, x)
    assert g is not x


def test_args_in_forward_mode_and_second_order():
    w, x = np.array([0.5, -0.2]), np.array([1.0, 2.0])
    value, tangent = srcgrad.jvp(loss_with_extras)(w, x, np.array([1.0, 0.0]))
    assert value == loss_with_extras(w, x)
    np.testing.assert_allclose(srcgrad.hvp(loss_with_extras)(w, x, np.array([1.0, 0.0])), [2.0, 0.0])
    np.testing.assert_allclose(srcgrad.hessian(loss_with_extras)(w, x, l2=1.0), np.diag([4.0, 10.0]))
    assert "def loss_with_extras_grad(w, *data, scale=1.0, **options):" in srcgrad.emit(loss_with_extras)


# --- 7. no descent into libraries ----------------------------------------------------------------------------------


def through_stdlib(x):
    import_free = statistics.fmean([x, 2.0])
    return x * import_free


def through_numpy_python(x):
    return np.sum(np.corrcoef(x, x * x))


def library_on_constants(x):
    return x * statistics.fmean([1.0, 2.0, 4.0])


@pytest.mark.parametrize("f,arg,name", [
    (through_stdlib, 1.5, "statistics.fmean"), (through_numpy_python, np.array([1.0, 2.0, 4.0]), "np.corrcoef"),
])
def test_library_function_without_rule_is_refused_at_the_users_line(f, arg, name):
    with pytest.raises(srcgrad.NoRuleError) as info:
        srcgrad.grad(f)(arg)
    err = info.value
    assert err.location.filename == __file__ and err.location.line == f.__code__.co_firstlineno + 1
    assert f"`{name}`" in str(err) and "library function" in str(err)
    assert f"@srcgrad.defgrad({name})" in err.hint


def test_scipy_function_without_rule_is_refused_at_the_users_line():
    stats = pytest.importorskip("scipy.stats")

    def standardised(x):
        return np.sum(stats.zscore(x) * x)

    with pytest.raises(srcgrad.NoRuleError, match="stats.zscore") as info:
        srcgrad.grad(standardised)(np.array([1.0, 2.0, 4.0]))
    assert info.value.location.filename == __file__ and "site-packages" not in str(info.value.location)


def test_library_function_on_constants_runs():
    assert srcgrad.grad(library_on_constants)(3.0) == statistics.fmean([1.0, 2.0, 4.0])


def test_what_is_user_code():
    from srcgrad import usercode

    assert usercode.is_user_function(through_stdlib)
    assert not usercode.is_user_function(statistics.fmean)
    assert not usercode.is_user_function(np.corrcoef)
    assert not usercode.is_user_function(srcgrad.testing.check_grad)
    assert usercode.is_library_file("/opt/venv/lib/python3.11/site-packages/mylib/core.py")
    assert not usercode.is_library_file("<ipython-input-3-abc>")


# --- 2. with ---------------------------------------------------------------------------------------------------


class Timer:
    """A user's context manager: says when it is entered and left."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        print("enter", self.name)
        return self

    def __exit__(self, *exc):
        print("exit", self.name)


def log_or_zero(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(x > 0.0, np.log(np.abs(x) + (x == 0.0)), 0.0) + np.sqrt(np.abs(x)) * 0.0
        z = x / (x * x + 1.0)
    return np.sum(y + z)


def test_errstate_is_entered_around_the_reverse_sweep_too():
    x = np.array([0.5, 2.0, 1.5])
    check_grad(log_or_zero, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a division by zero outside the errstate would raise here
        g = srcgrad.grad(log_or_zero)(np.array([0.0, 2.0, -1.0]))
    assert np.all(np.isfinite(g[1:]))
    text = srcgrad.source(srcgrad.grad(log_or_zero), x)
    assert text.count("np.errstate(divide='ignore', invalid='ignore')") == 2  # forward, and again for the reverse


def timed(x):
    with Timer("forward") as t, contextlib.nullcontext():
        y = np.sin(x) * x
        print("inside", t.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = np.log(y * y + 1.0)
    return np.sum(z)


def test_other_managers_are_entered_once(capsys):
    x = np.array([0.3, -1.2])
    timed(x)
    expected = capsys.readouterr().out
    srcgrad.grad(timed)(x)
    assert capsys.readouterr().out == expected == "enter forward\ninside forward\nexit forward\n"
    check_grad(timed, x)


def errstate_in_loop(x, n):
    s = 0.0
    modes = ("ignore", "warn")
    for i in range(n):
        with np.errstate(divide=modes[i % 2]):
            s = s + x / (i + 1.0)
        if s > 100.0:
            return s
    return s * s


def test_with_in_a_loop_and_return_inside_with():
    check_grad(errstate_in_loop, 0.7, 3)
    check_grad(errstate_in_loop, 400.0, 3)
    check_grad(timed_return, 0.5)
    check_grad(timed_return, -0.5)


def timed_return(x):
    with Timer("t"):
        if x > 0:
            return x * x
        y = x * 3.0
    return y * x


def manager_value(x):
    with contextlib.nullcontext(3.0) as c:
        return x * c


class Scaled:
    def __init__(self, v):
        self.v = v

    def __enter__(self):
        return self.v * 2.0

    def __exit__(self, *exc):
        return None


def manager_of_differentiated(x):
    with Scaled(x) as s:
        return s * x


def test_as_target():
    assert srcgrad.grad(manager_value)(2.0) == 3.0
    with pytest.raises(srcgrad.NoRuleError, match="rule for `Scaled`"):
        srcgrad.grad(manager_of_differentiated)(2.0)


def suppressed(x):
    y = x * 2.0
    with contextlib.suppress(ZeroDivisionError):
        y = 1.0 / (x - 1.0)
    return y * x


def test_a_block_that_ran_in_part_is_refused_when_it_runs():
    check_grad(suppressed, 3.0)
    with pytest.raises(srcgrad.UnsupportedSyntax, match="ended early") as info:
        srcgrad.grad(suppressed)(1.0)
    assert info.value.location.line == suppressed.__code__.co_firstlineno + 2


# --- 3. try / except / else / finally ------------------------------------------------------------------------------


def jittered_cholesky(K):
    try:
        L = np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        L = np.linalg.cholesky(K + 1e-3 * np.eye(K.shape[0]))
    return np.sum(L * L) + np.sum(L)


SPD = np.array([[2.0, 0.5], [0.5, 1.0]])
INDEFINITE = np.array([[1.0, 1.0], [1.0, 0.9995]])  # not positive definite; K + 1e-3 I is


def symmetric_fd(f, K, eps=1e-6):
    """Central differences of f along symmetric perturbations (cholesky reads the lower triangle)."""
    out = np.zeros_like(K)
    for i in range(K.shape[0]):
        for j in range(i + 1):
            e = np.zeros_like(K)
            e[i, j] = e[j, i] = eps
            out[i, j] = (f(K + e) - f(K - e)) / (2 * eps)
    return out


def test_try_except_follows_the_path_taken_both_sides():
    for K in (SPD, INDEFINITE):
        g = srcgrad.grad(jittered_cholesky)(K)
        sym = np.tril(g + g.T - np.diag(np.diag(g)))  # the gradient along symmetric perturbations
        np.testing.assert_allclose(sym, symmetric_fd(jittered_cholesky, K), rtol=1e-5, atol=1e-6)


def fallback_return(x):
    try:
        return math.log(x) * x
    except ValueError as err:
        print("fallback:", err)
    return -x * x


def try_else_finally(x, events):
    try:
        y = math.sqrt(x)
    except ValueError:
        events.append("except")
        y = -x
    else:
        events.append("else")
        y = y * 3.0
    finally:
        print("finally", x)
    return y * x


def test_return_in_try_and_else_finally_both_sides(capsys):
    check_grad(fallback_return, 2.0)
    check_grad(fallback_return, -2.0)
    assert capsys.readouterr().out.count("fallback: math domain error") >= 1
    for x, path in ((2.0, ["else"]), (-2.0, ["except"])):
        events = []
        capsys.readouterr()
        srcgrad.grad(try_else_finally)(x, events)
        assert events == path and capsys.readouterr().out == f"finally {x}\n"
        check_grad(try_else_finally, x, [])


def try_in_loop(x, n):
    s = 0.0
    for i in range(n):
        try:
            s = s + math.log(x - i) * x
        except ValueError:
            s = s + x * x
    return s


def test_try_in_a_loop_records_its_path():
    check_grad(try_in_loop, 2.5, 4)
    check_grad(try_in_loop, 2.5, 1)


def reverse_error_is_not_caught(x):
    try:
        y = x ** 0.5
    except ZeroDivisionError:
        y = 0.0
    return y


def test_an_exception_of_the_reverse_sweep_is_not_caught_by_the_users_except():
    # d/dx x**0.5 at 0 divides by zero in the reverse sweep (a Python float): the user's except must not swallow it
    with pytest.raises(ZeroDivisionError):
        srcgrad.grad(reverse_error_is_not_caught)(0.0)
    check_grad(reverse_error_is_not_caught, 4.0)


def reads_what_the_body_assigned(x):
    try:
        a = x * 2.0
        b = math.log(a)
    except ValueError:
        b = a * 3.0
    return b


def reads_after_the_try(x):
    try:
        a = x * 2.0
        b = math.log(a)
    except ValueError:
        b = 0.0
    return a * b


def return_in_try_in_loop(x):
    for i in range(3):
        try:
            return math.log(x - i)
        except ValueError:
            pass
    return x


def reads_in_finally(x):
    try:
        y = x * 2.0
    finally:
        print(y)
    return y


def unknown_through_a_branch_and_a_loop(x):
    try:
        a = x * 2.0
        b = math.log(a)
    except ValueError:
        b = 0.0
    if b > 100.0:
        a = x
    for _ in range(2):
        a = a + x
    return a * b


@pytest.mark.parametrize("f,what", [
    (reads_what_the_body_assigned, "`a` is assigned in the try block"),
    (unknown_through_a_branch_and_a_loop, "`a` is assigned in the try block"),
    (reads_after_the_try, "`a` is assigned in the try block"),
    (return_in_try_in_loop, "inside a try statement inside a loop"),
    (reads_in_finally, "read in its finally block"),
])
def test_try_restrictions_are_refused_clearly(f, what):
    with pytest.raises(srcgrad.UnsupportedSyntax, match=what) as info:
        srcgrad.grad(f)(2.0)
    assert info.value.location.filename == __file__


# --- everything together, as people write it -----------------------------------------------------------------------


def fit_loss(w, x, y, verbose=False, name="model"):
    log = logging.getLogger("srcgrad.tests.fit")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be an array, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError("shape mismatch: x %s, w %s" % (x.shape, w.shape))  # noqa: UP031
    pred = x @ w
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: pred=%s", name, pred)
    resid = pred - y
    if (loss := np.mean(resid ** 2)) > 1e6:
        warnings.warn(f"{name}: loss {loss:.3g} is large", RuntimeWarning, stacklevel=2)
    if verbose:
        print(f"{name}: n={len(y)} loss={loss:.4f}")
    with np.errstate(over="ignore"):
        worst = max(abs(r) for r in resid)
    return loss + 0.1 * worst


def test_an_everyday_function(capsys, caplog):
    rng = np.random.default_rng(0)
    w, x, y = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    with caplog.at_level(logging.DEBUG, logger="srcgrad.tests.fit"):
        check_grad(fit_loss, w, x, y, True)
        capsys.readouterr()
        caplog.clear()
        srcgrad.grad(fit_loss)(w, x, y, True)
        assert capsys.readouterr().out.count("model: n=5") == 1 and len(caplog.records) == 1
    same_failure(fit_loss, w, x[:, :2], y)
    same_failure(fit_loss, w, list(x), y)
