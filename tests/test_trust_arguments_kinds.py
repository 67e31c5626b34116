"""What cannot be represented is refused: ndarray subclasses whose operators differ from ndarray's (masked arrays,
np.matrix, a user's subclass) are InvalidArgument at the call; a function that returns something that is not a real
number or array (None, a string) is a NonNumericOutput naming the return line — never a gradient of 0."""

import numpy as np
import pytest
from module_files import load

import srcgrad
from srcgrad.testing import numerical_grad


def loss(x):
    return np.sum(x * x * 3.0)


def weighted(x, w):
    return np.sum(x * w)


class Doubled(np.ndarray):
    """A subclass whose * means something else."""

    def __mul__(self, other):
        return np.multiply(np.asarray(self), other) * 2.0


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix is deprecated: users still have them
@pytest.mark.parametrize("make", [
    lambda a: np.ma.masked_array(a, mask=[False, True, False]),
    lambda a: np.asmatrix(a),
    lambda a: a.view(Doubled),
], ids=["masked", "matrix", "own subclass"])
@pytest.mark.parametrize("mode", ["grad", "value_and_grad", "vjp"])
def test_array_subclasses_are_refused_at_the_call(make, mode):
    a = np.array([1.0, 2.0, 3.0])
    g = getattr(srcgrad, mode)(loss)
    call = (lambda v: g(v, 1.0)) if mode == "vjp" else g
    call(a)  # a plain array first: the entry's check is then the generated code's (it must refuse too)
    with pytest.raises(srcgrad.InvalidArgument, match="subclass"):
        call(make(a))


def test_a_subclass_as_an_argument_that_is_not_differentiated():
    g = srcgrad.grad(weighted)
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(g(a, a), a)
    with pytest.raises(srcgrad.InvalidArgument, match="MaskedArray"):
        g(a, np.ma.masked_array(a, mask=[False, True, False]))


def test_memmap_is_an_ndarray_and_is_accepted(tmp_path):
    m = np.memmap(tmp_path / "x.bin", dtype=float, mode="w+", shape=(3,))
    m[:] = [1.0, 2.0, 3.0]
    got = srcgrad.grad(loss)(m)
    np.testing.assert_allclose(got, 6.0 * np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(got, numerical_grad(loss, (np.array(m),), 0), rtol=1e-7)


def test_plain_arrays_and_numpy_scalars_still_work():
    a = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(srcgrad.grad(loss)(a), 6.0 * a)
    assert srcgrad.grad(lambda_free)(np.float64(1.5)) == pytest.approx(3.0)


def lambda_free(x):
    return x * x


RETURNS = '''
import numpy as np

MESSAGE = "done"


def returns_none(x):
    y = x * 2.0
    return None


def returns_string(x):
    return "abc"


def returns_global_string(x):
    return MESSAGE


def returns_none_on_one_path(x):
    if x > 0.0:
        return x * 2.0
    return None


def implicit_none_on_one_path(x):
    y = x * 3.0
    if x > 0.0:
        return y


def helper(v):
    if v > 0.0:
        return v * v
    return None


def through_a_helper(x):
    return helper(x)


def string_array(x):
    return np.array(["a", "b"])


def returns_bool(x):
    return x > 1.0
'''


@pytest.fixture(scope="module")
def returns(tmp_path_factory):
    return load(tmp_path_factory.mktemp("returns") / "returns.py", RETURNS)


def _line(module, function, text):
    """The file line of ``text`` in ``function``."""
    lines = open(module.__file__).read().split("\n")
    start = lines.index(f"def {function}(x):")
    return next(i + 1 for i, ln in enumerate(lines) if i > start and ln.strip() == text)


@pytest.mark.parametrize("mode", ["grad", "value_and_grad", "vjp"])
@pytest.mark.parametrize("name, x, line", [
    ("returns_none", 1.5, "return None"),
    ("returns_string", 1.5, 'return "abc"'),
    ("returns_global_string", 1.5, "return MESSAGE"),
    ("returns_none_on_one_path", -1.5, "return None"),
])
def test_a_return_that_is_not_a_number_is_an_error_naming_the_line(returns, mode, name, x, line):
    g = getattr(srcgrad, mode)(getattr(returns, name))
    with pytest.raises(srcgrad.NonNumericOutput) as info:
        g(x, 1.0) if mode == "vjp" else g(x)
    assert info.value.location is not None
    assert info.value.location.line == _line(returns, name, line)
    assert f"returns.py:{_line(returns, name, line)}:" in str(info.value)


def test_the_numeric_path_of_a_function_that_may_return_none(returns):
    g = srcgrad.value_and_grad(returns.returns_none_on_one_path)
    assert g(1.5) == pytest.approx((3.0, 2.0))
    with pytest.raises(srcgrad.NonNumericOutput):
        g(-1.5)
    assert g(0.5) == pytest.approx((1.0, 2.0))


def test_an_implicit_none_is_an_error(returns):
    g = srcgrad.grad(returns.implicit_none_on_one_path)
    assert g(1.5) == pytest.approx(3.0)
    with pytest.raises(srcgrad.NonNumericOutput, match="None"):
        g(-1.5)


def test_a_helper_returning_none(returns):
    g = srcgrad.grad(returns.through_a_helper)
    assert g(1.5) == pytest.approx(3.0)
    with pytest.raises(srcgrad.NonNumericOutput, match="None"):
        g(-1.5)


def test_an_array_of_strings(returns):
    with pytest.raises(srcgrad.NonNumericOutput, match="dtype"):
        srcgrad.vjp(returns.string_array)(1.5, np.ones(2))


def test_a_boolean_output_is_a_number_with_gradient_zero(returns):
    # a comparison is piecewise constant: its derivative is 0 wherever it exists
    assert srcgrad.value_and_grad(returns.returns_bool)(1.5) == (True, 0.0)
