"""Every argument is understood or refused (issue 12 item 2, issue 13 item 7 in part).

- the builtins the lowering turns into loops or sums itself (enumerate, zip, sum over a generator) bind their
  arguments as Python does: each is implemented (value and gradient checked) or refused at its line;
- a differentiated value may enter only parameters its rule differentiates or declares discrete (a count, a shape,
  an axis, a dtype, an index, a condition); anything else is refused at the call (np.var's ddof, np.einsum's subscripts,
  np.arange, the index tricks np.r_/np.c_). Every function srcgrad calls non-differentiable is checked here to be
  piecewise constant in every argument;
- np.std where std is 0 has gradient 0; a complex literal is UnsupportedSyntax at its column; loop targets unpack
  nested tuples. The table-driven check of every rule's real signature is tests/test_rule_signatures.py.
"""

import importlib.util
import math
import operator

import numpy as np
import pytest

import srcgrad
from srcgrad import checks, runtime
from srcgrad.errors import InternalError, NoRuleError, SrcgradError, UnsupportedSyntax
from srcgrad.rules import all_rules
from srcgrad.testing import check_grad

X = np.array([0.5, 1.0])


def _refused(func, *args, error=SrcgradError, match=None, line=None):
    """Generating func's gradient raises ``error`` (never an internal error), naming this file and ``line``."""
    with pytest.raises(error, match=match) as info:
        srcgrad.value_and_grad(func)(*args)
    assert not isinstance(info.value, InternalError), str(info.value)
    location = f"test_trust_arguments.py:{line or func.__code__.co_firstlineno + 1}:"
    assert location in str(info.value), str(info.value)
    return info.value


def _same_error(func, *args, error):
    """srcgrad raises the error Python raises for the function itself."""
    with pytest.raises(error) as python:
        func(*args)
    with pytest.raises(error) as ours:
        srcgrad.value_and_grad(func)(*args)
    assert str(ours.value) == str(python.value)


# --- enumerate ---------------------------------------------------------------------------------------------------


def enumerate_start_keyword(x):
    total = 0.0
    for k, v in enumerate(x, start=1):
        total = total + k * v
    return total


def enumerate_start_positional(x):
    total = 0.0
    for k, v in enumerate(x, 1):
        total = total + k * v
    return total


def enumerate_start_in_comprehension(x):
    return sum([k * v for k, v in enumerate(x, start=1)])


def enumerate_start_in_generator(x):
    return sum(k * v for k, v in enumerate(iterable=x, start=-2))


def enumerate_start_variable(x, s):
    total = 0.0
    for k, v in enumerate(x, start=s):
        total = total + k * v
    return total


@pytest.mark.parametrize("f", [enumerate_start_keyword, enumerate_start_positional, enumerate_start_in_comprehension])
def test_enumerate_start_is_used(f):
    value, grad = srcgrad.value_and_grad(f)(X)
    assert value == 2.5 and f(X) == 2.5  # 1 * 0.5 + 2 * 1.0; ignoring start gave 1.0
    np.testing.assert_array_equal(grad, [1.0, 2.0])  # ignoring start gave [0, 1]
    check_grad(f, np.array([0.3, -1.2, 2.0]))


def test_enumerate_start_by_keyword_iterable_and_from_a_variable():
    check_grad(enumerate_start_in_generator, np.array([0.3, -1.2, 2.0]))
    check_grad(enumerate_start_variable, np.array([0.3, -1.2, 2.0]), 3)
    assert srcgrad.grad(enumerate_start_variable)(X, 3) == pytest.approx([3.0, 4.0])


def test_enumerate_start_must_be_an_integer_as_in_python():
    _same_error(enumerate_start_variable, X, 1.5, error=TypeError)


def enumerate_unknown_keyword(x):
    t = 0.0
    for k, v in enumerate(x, begin=1):
        t = t + k * v
    return t


def enumerate_too_many(x):
    t = 0.0
    for k, v in enumerate(x, 1, 2):
        t = t + k * v
    return t


@pytest.mark.parametrize("f", [enumerate_unknown_keyword, enumerate_too_many])
def test_enumerate_arguments_python_does_not_take_are_refused(f):
    error = _refused(f, X, error=UnsupportedSyntax, match="enumerate", line=f.__code__.co_firstlineno + 2)
    assert "does not take these arguments" in str(error)


# --- zip ---------------------------------------------------------------------------------------------------------


def zip_strict(x, y):
    t = 0.0
    for a, b in zip(x, y, strict=True):
        t = t + a * b
    return t


def zip_not_strict(x, y):
    t = 0.0
    for a, b in zip(x, y, strict=False):
        t = t + a * b
    return t


def zip_three(x, y):
    t = 0.0
    for a, b, c in zip(x, y, x):
        t = t + a * b * c
    return t


def zip_strict_variable(x, y):
    s = True
    t = 0.0
    for a, b in zip(x, y, strict=s):
        t = t + a * b
    return t


def test_zip_strict_checks_lengths_as_python():
    check_grad(zip_strict, np.array([0.5, 1.0, -2.0]), np.array([1.5, 2.0, 0.3]), wrt=(0, 1))
    _same_error(zip_strict, np.ones(2), np.ones(3), error=ValueError)
    _same_error(zip_strict, np.ones(3), np.ones(2), error=ValueError)
    check_grad(zip_not_strict, np.array([0.5, 1.0, -2.0]), np.array([1.5, 2.0]), wrt=(0, 1))


def test_zip_of_three_sequences():
    check_grad(zip_three, np.array([0.5, 1.0, -2.0]), np.array([1.5, 2.0]), wrt=(0, 1))


def test_zip_strict_that_is_not_a_constant_is_refused():
    _refused(zip_strict_variable, X, X, error=UnsupportedSyntax, match="strict", line=zip_strict_variable.__code__.
             co_firstlineno + 3)


# --- nested loop targets -------------------------------------------------------------------------------------------


def enumerate_zip(x, y):
    t = 0.0
    for i, (a, b) in enumerate(zip(x, y)):
        t = t + i * a * b
    return t


def zip_enumerate(x, y):
    t = 0.0
    for (i, a), b in zip(enumerate(x, start=1), y):
        t = t + i * a * b
    return t


def enumerate_zip_comprehension(x, y):
    return sum([i * a * b + a for i, (a, b) in enumerate(zip(x, y))])


def unpack_rows(m):
    t = 0.0
    for a, b in m:
        t = t + a * b * b
    return t


def unpack_pairs(x):
    t = 0.0
    for a, (b, c) in [(x[0], (x[1], x[2])), (x[2], (x[0], x[0]))]:
        t = t + a * b - c
    return t


def test_nested_targets_in_loops_and_comprehensions():
    x, y = np.array([0.5, 1.0, -2.0]), np.array([1.5, 2.0, 0.7])
    assert srcgrad.value_and_grad(enumerate_zip)(X, X + 1.0)[0] == enumerate_zip(X, X + 1.0) == 2.0
    for f in (enumerate_zip, zip_enumerate, enumerate_zip_comprehension):
        check_grad(f, x, y, wrt=(0, 1))
    check_grad(unpack_rows, np.arange(6.0).reshape(3, 2) - 2.5)
    check_grad(unpack_pairs, x)


def test_unpacking_the_wrong_number_of_values_raises_as_python():
    _same_error(unpack_rows, np.ones((2, 3)), error=ValueError)
    _same_error(unpack_rows, np.ones((2, 1)), error=ValueError)


D = {0: 1.0, 1: 2.0}


def loop_over_dict(x):
    t = 0.0
    for k in D:
        t = t + x * k
    return t


def test_loop_over_a_dict_is_refused():
    _refused(loop_over_dict, 1.0, error=UnsupportedSyntax, match="dict",
             line=loop_over_dict.__code__.co_firstlineno + 2)


# --- sum -----------------------------------------------------------------------------------------------------------


def sum_generator_start(x):
    return sum((v * v for v in x), x[0])


def sum_generator_start_keyword(x):
    return sum((v * v for v in x), start=2.0 * x[1])


def sum_list_start(x):
    return sum([x[0], x[1] * x[0]], x[1])


def sum_generator_bad_keyword(x):
    return sum((v for v in x), begin=1.0)


def test_sum_start():
    for f in (sum_generator_start, sum_generator_start_keyword, sum_list_start):
        check_grad(f, np.array([0.5, -1.5, 2.0]))
    _refused(sum_generator_bad_keyword, X, error=UnsupportedSyntax, match="sum")


# --- max, min, sorted, reversed, round, range... ---------------------------------------------------------------------


def max_of_iterable(x):
    return max([x[0], x[1]])


def max_of_three(x):
    return max(x[0], x[1], x[0] * 2.0)


def min_with_default(x):
    return min(x[0], x[1], default=0.0)


def max_with_key(x):
    return max(x[0], x[1], key=abs)


def sorted_values(x):
    t = 0.0
    for v in sorted(x):
        t = t * 2.0 + v
    return t


def reversed_values(x):
    t = 0.0
    for v in reversed(x):
        t = t * 2.0 + v
    return t


@pytest.mark.parametrize("f", [max_of_iterable, max_of_three])
def test_max_of_an_iterable_and_of_three_arguments(f):  # (issue 16: supported, ties 1/k as np.max)
    check_grad(f, X)


@pytest.mark.parametrize("f", [min_with_default, max_with_key, sorted_values])
def test_builtin_arguments_srcgrad_does_not_differentiate_are_refused(f):
    line = f.__code__.co_firstlineno + (2 if f is sorted_values else 1)
    _refused(f, X, line=line)


def builtins_on_constants(x, n):
    t = 0.0
    for i in reversed(range(0, n, 2)):  # range with three arguments, reversed on a constant
        t = t + x[i] * (i + 1)
    return t + round(x[0], 1) * x[1] + float(x[1]) * abs(x[2]) + len(x) * int(x[0]) * x[0] + max(x[0], x[1])


def test_builtins_that_are_supported():
    x = np.array([1.37, -0.4, 2.2, 0.9])
    check_grad(reversed_values, x)
    assert srcgrad.grad(reversed_values)(x) == pytest.approx([1.0, 2.0, 4.0, 8.0])  # the last item first
    check_grad(builtins_on_constants, x, 4)
    _, g = srcgrad.value_and_grad(builtins_on_constants)(x, 4)
    assert g[0] == pytest.approx(1.0 + len(x) * 1 + 0.0 + 1.0 * 1)  # round() and int() are piecewise constant


def through_str(x):
    return float(str(x)) * 2.0


def test_str_of_a_differentiated_value_is_refused():
    """float(str(x)) is x: str carries the value, so treating it as constant would give 0 instead of 2."""
    _refused(through_str, 1.5, error=NoRuleError, match="str")


# --- a differentiated value entering an argument its rule does not differentiate -------------------------------------


def linspace_start(x, y):
    return np.sum(np.linspace(x, y, 5) ** 2 * np.array([1.0, 2.0, 3.0, 4.0, 5.0]))


def test_linspace_is_differentiated_in_its_ends():
    check_grad(linspace_start, 0.5, 2.0, wrt=(0, 1))
    grad = srcgrad.grad(linspace_start)(0.5, 2.0)
    assert grad != 0.0  # it was 0: linspace was declared constant


def index_trick_r(x):
    return np.sum(np.r_[x] ** 2)


def index_trick_c(x):
    c = np.ones(2)
    return np.sum(np.c_[x, c, x] ** 2)


def index_trick_on_constants(x):
    return np.sum(np.r_[np.ones(2), 0.5] * x[0])


def test_index_tricks_with_differentiated_values_are_refused():
    for f in (index_trick_r, index_trick_c):
        _refused(f, X, error=NoRuleError, match=r"np\.[rc]_", line=f.__code__.co_firstlineno + (1 if f is
                                                                                                 index_trick_r else 2))
    check_grad(index_trick_on_constants, X)


def einsum_sublist_one(x):
    return np.sum(np.einsum(x, (0, 1), (1, 0)) * np.arange(6.0).reshape(3, 2))


def einsum_sublist_two(x, y):
    return np.sum(np.einsum(x, [0, 1], y, [1, 2], [0, 2]) ** 2)


def einsum_sublist_implicit(x, y):
    return np.sum(np.einsum(x, [1, 0], y, [1, 2]) * np.arange(6.0).reshape(3, 2))  # output: indices 0, 2


def einsum_sublist_variable(x):
    s = (0, 1)
    return np.sum(np.einsum(x, s, (1, 0)))


def test_einsum_sublist_form():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(3, 2))
    assert srcgrad.grad(einsum_sublist_one)(x) == pytest.approx(np.arange(6.0).reshape(3, 2).T)  # was zeros
    check_grad(einsum_sublist_one, x)
    check_grad(einsum_sublist_two, x, y, wrt=(0, 1))  # was an InternalError
    check_grad(einsum_sublist_implicit, rng.normal(size=(2, 3)), rng.normal(size=(2, 2)), wrt=(0, 1))
    # sublists held in variables: the first operand takes the place of the subscripts, and is refused there
    _refused(einsum_sublist_variable, x, error=NoRuleError, match="subscripts",
             line=einsum_sublist_variable.__code__.co_firstlineno + 2)


def var_ddof_differentiated(x):
    return np.var(np.array([1.0, 2.0, 4.0]), ddof=x * 0.5)


def norm_ord_differentiated(x):
    return np.linalg.norm(np.array([1.0, 2.0, 4.0]), ord=x)


def var_ddof_nested(x):
    return np.var(np.array([1.0, 2.0, 4.0]), ddof=np.floor(x) + np.var(np.ones(3), ddof=x))


def arange_from_value(x):
    return np.sum(np.arange(x, 3.0))


def unique_values(x):
    return np.sum(np.unique(x))


def meshgrid_values(x):
    a, b = np.meshgrid(x, x)
    return np.sum(a * b)


@pytest.mark.parametrize("f", [var_ddof_differentiated, norm_ord_differentiated, var_ddof_nested, arange_from_value,
                               unique_values, meshgrid_values])
def test_differentiated_value_where_the_rule_takes_none_is_refused(f):
    _refused(f, 1.3 if f in (var_ddof_differentiated, norm_ord_differentiated, var_ddof_nested, arange_from_value)
             else X, error=NoRuleError)


def floor_of_arange(x):
    return np.sum(np.floor(np.arange(x, 3.0))) * 0.0 + x  # piecewise constant after floor: no gradient lost


def integer_index_from_value(x):
    idx = (x * 0.0).astype(int)  # a differentiated value cast to integers: an index, carries no gradient
    return np.sum(x[idx] * 2.0) + np.sum(np.take(x, idx)) + np.sum(np.where(x, x, 0.0))


def test_discrete_parameters_accept_differentiated_values():
    check_grad(integer_index_from_value, np.array([0.5, 1.5, -2.0]))
    check_grad(floor_of_arange, 0.5)


def scaled(x, scale):
    return x * scale


def shifted(x, shift):
    return x + shift


@srcgrad.defgrad(scaled, wrt=("x",))
def scaled_grad(g, ans, x, scale):
    return g * scale


@srcgrad.defgrad(shifted, wrt=("x",), discrete=("shift",))  # (a false declaration: only to test the mechanism)
def shifted_grad(g, ans, x, shift):
    return g


def user_rule_undifferentiated(x):
    return scaled(2.0, x)


def user_rule_discrete(x):
    return shifted(2.0, x) * x


def test_a_user_rule_refuses_a_differentiated_value_outside_wrt_unless_declared_discrete():
    error = _refused(user_rule_undifferentiated, 1.5, error=NoRuleError, match="`scale`")
    assert "discrete=" in str(error) and "wrt=" in str(error)
    assert srcgrad.grad(user_rule_discrete)(1.5) == pytest.approx(3.5)  # shift contributes nothing, as declared


def test_defgrad_checks_its_declarations():
    def f(x, k):
        return x * k

    with pytest.raises(TypeError, match="not parameters"):
        srcgrad.defgrad(f, discrete=("axis",))(lambda g, ans, x, k: g)
    with pytest.raises(TypeError, match="both"):
        srcgrad.defgrad(f, wrt=("x", "k"), discrete=("k",))(lambda g, ans, x, k: (g, g))


def test_every_differentiable_rules_parameters_are_differentiated_or_declared():
    """The built-in rules' parameters outside wrt are declared discrete, except the few whose value the result
    depends on smoothly (refused when differentiated, above)."""
    smooth = {("np.var", "ddof"), ("np.std", "ddof"), ("np.linalg.norm", "ord"), ("np.einsum", "subscripts"),
              ("np.gradient", "varargs")}  # the spacing divides the differences
    if importlib.util.find_spec("scipy") is not None:  # (importing the cases imports scipy: its rules register)
        from rule_cases_scipy import SMOOTH_UNDIFFERENTIATED

        smooth |= SMOOTH_UNDIFFERENTIATED
    undeclared = {(r.name, p) for r in all_rules() if not r.nondiff and r.adjoint.__module__.startswith("srcgrad.")
                  for p in r.signature.parameters if p not in r.wrt and p not in r.discrete}
    assert undeclared == smooth


# --- every non-differentiable function is piecewise constant in every argument ---------------------------------------

_A = np.array([[0.31, -1.27, 2.43], [1.71, 0.13, -0.58]])
_V = np.array([0.37, -1.41, 2.26])
# One call per function srcgrad registers as non-differentiable, at a generic point (away from jumps). Functions
# whose value is not numeric, or is uninitialised memory, compare by shape.
PIECEWISE_CONSTANT = {
    operator.lt: (0.3, 0.7), operator.le: (0.3, 0.7), operator.gt: (0.3, 0.7), operator.ge: (0.3, 0.7),
    operator.eq: (0.3, 0.7), operator.ne: (0.3, 0.7), operator.not_: (0.3,), operator.is_: (0.3, 0.7),
    operator.is_not: (0.3, 0.7), operator.contains: (_V, 0.5), operator.truth: (0.3,),
    operator.and_: (_V > 0, _V < 1), operator.or_: (6, 3), operator.xor: (6, 3), operator.lshift: (3, 2),
    operator.rshift: (12, 2), operator.invert: (3,),
    len: (_V,), int: (2.7,), bool: (0.3,), round: (2.71, 1), range: (3,), isinstance: (0.3, float), print: ("",),
    type: (0.3,),
    np.sign: (_A,), np.floor: (_A,), np.ceil: (_A,), np.round: (_A, 1), np.around: (_A,), np.rint: (_A,),
    np.trunc: (_A,), np.fix: (_A,), np.floor_divide: (_A, 0.7), np.isnan: (_A,), np.isinf: (_A,),
    np.isfinite: (_A,), np.signbit: (_A,), np.greater: (_A, 0.2), np.less: (_A, 0.2), np.equal: (_A, 0.2),
    np.greater_equal: (_A, 0.2), np.less_equal: (_A, 0.2), np.not_equal: (_A, 0.2), np.logical_and: (_A, _A),
    np.logical_or: (_A, _A), np.logical_not: (_A,), np.logical_xor: (_A, _A), np.isclose: (_A, 0.31),
    np.allclose: (_A, _A), np.array_equal: (_A, _A + 1.0), np.shape: (_A,), np.ndim: (_A,), np.size: (_A,),
    np.argmax: (_A,), np.argmin: (_A,), np.argsort: (_A,), np.argwhere: (_A,), np.nonzero: (_A,),
    np.flatnonzero: (_A,), np.count_nonzero: (_A,), np.searchsorted: (np.sort(_V), 0.5),
    np.digitize: (_V, np.array([0.0, 1.0])),
    np.all: (_A,), np.any: (_A,), np.zeros: (3,), np.ones: (3,), np.empty: (3,), np.zeros_like: (_A,),
    np.ones_like: (_A,), np.empty_like: (_A,), np.eye: (3,), np.identity: (3,), np.tri: (3,), np.indices: ((2, 3),),
    math.floor: (2.7,), math.ceil: (2.7,), math.trunc: (2.7,), math.isnan: (2.7,), math.isinf: (2.7,),
    math.isfinite: (2.7,),
    runtime.zeros_like: (_A,), runtime.zero_list: ([0.3, 0.7],), runtime.check_scalar_argument: (0.3,),
    runtime.check_equal_lengths: (2, 2), runtime.check_unpacks: (_V, 3), runtime.integer_start: (3,),
    runtime.items_length: ([0.3, 0.7],), runtime.array_receiver: (_A,),
    runtime.check_unshared: (0.3, "f.py", 1, 0), checks.check_unshared: (0.3, "f.py", 1, 0),
    runtime.partition_source: (_V, np.partition(_V, 1), -1),
    checks.check_scalar_output: (0.3, "f"), runtime.check_distinct: (0.3, 0.7, "x", "y", "f.py", 1, 0),
    checks.check_distinct: (0.3, 0.7, "x", "y", "f.py", 1, 0), checks.check_numeric_output: (0.3, "f"),
}
BY_SHAPE = {np.empty, np.empty_like}


def _same_result(a, b, by_shape: bool) -> bool:
    if isinstance(a, (tuple, list)) and not isinstance(a, range):
        return type(a) is type(b) and len(a) == len(b) and all(_same_result(x, y, by_shape) for x, y in zip(a, b))
    if by_shape:
        return np.shape(a) == np.shape(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def test_every_non_differentiable_function_is_in_the_table():
    builtin = [r for r in all_rules()
               if r.nondiff and not (getattr(r.func, "__module__", None) or "").startswith("test")]
    missing = [r.name for r in builtin if r.func not in PIECEWISE_CONSTANT]
    assert not missing, f"declared without gradient, but not shown piecewise constant here: {missing}"


@pytest.mark.parametrize("func", list(PIECEWISE_CONSTANT), ids=lambda f: getattr(f, "__name__", repr(f)))
def test_non_differentiable_function_is_piecewise_constant(func):
    """Moving any float argument by a little changes nothing: a zero gradient is the truth."""
    args = PIECEWISE_CONSTANT[func]
    base = func(*args)
    for i, a in enumerate(args):
        if isinstance(a, float) or (isinstance(a, np.ndarray) and a.dtype.kind == "f"):
            for eps in (1e-6, -1e-6):
                moved = list(args)
                moved[i] = a + eps
                assert _same_result(func(*moved), base, func in BY_SHAPE), f"{func} moves with argument {i}"


# --- np.std where it is 0 ------------------------------------------------------------------------------------------


def std_of_one(x):
    return np.std(x)


def std_of_rows(x):
    return np.sum(np.std(x, axis=0) * np.array([1.0, 2.0, 3.0]))


def std_keepdims_ddof(x):
    return np.sum(np.std(x, axis=1, ddof=1, keepdims=True) ** 2)


def test_std_of_a_single_element_has_gradient_zero():
    assert srcgrad.value_and_grad(std_of_one)(3.5) == (0.0, 0.0)  # was nan
    value, grad = srcgrad.value_and_grad(std_of_rows)(np.ones((1, 3)))
    assert value == 0.0 and np.array_equal(grad, np.zeros((1, 3)))  # was [[nan, nan, nan]]
    assert srcgrad.jvp(std_of_rows)(np.ones((1, 3)), np.ones((1, 3)))[1] == 0.0
    assert srcgrad.jvp(std_of_one)(3.5, 1.0)[1] == 0.0
    check_grad(std_of_one, 3.5)
    check_grad(std_of_rows, np.array([[0.3, -1.2, 2.0]]))
    check_grad(std_keepdims_ddof, np.array([[0.3, -1.2, 2.0], [1.0, 0.5, 0.25]]))


# --- literals srcgrad cannot write -----------------------------------------------------------------------------------


def complex_literal(x):
    return x * 2j


def bytes_literal(x):
    return x * len(b"ab")


@pytest.mark.parametrize("f, col", [(complex_literal, 16), (bytes_literal, 20)])
def test_literal_srcgrad_cannot_write_is_unsupported_syntax_at_its_column(f, col):
    error = _refused(f, 1.0, error=UnsupportedSyntax)
    assert f"test_trust_arguments.py:{f.__code__.co_firstlineno + 1}:{col}:" in str(error)
