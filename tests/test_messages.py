"""Messages (issue 13, item 7): the caret counts characters, not UTF-8 bytes; grad of a bound method says how to
differentiate a method; grad(None) says it got None; a second derivative srcgrad cannot take names the user's line,
not srcgrad's runtime.py; the mean of an empty array behaves as numpy's (nan with its warnings, an empty gradient)."""

import warnings

import numpy as np
import pytest
from module_files import load

import srcgrad
from srcgrad.errors import Location

SOURCE = '''
import numpy as np


def accents(x):
    s = "éèà"; y = {"k", x}
    return x


def wide(x):
    s = "中文字"; y = {"k", x}
    return x


def product(x):
    return np.prod(x) * 2.0


def length(x):
    return np.linalg.norm(x) + 0.0


def mean_square(x):
    return np.mean(x ** 2)


def column_means(x):
    return np.sum(np.mean(x ** 2, axis=0))


class Model:
    def __init__(self):
        self.scale = 2.0

    def loss(self, x):
        return np.sum(x * x)
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory):
    return load(tmp_path_factory.mktemp("messages") / "messages_model.py", SOURCE)


def caret_line(message: str) -> tuple[str, str]:
    lines = message.split("\n")
    return lines[1], lines[2]


@pytest.mark.parametrize("name,before", [("accents", 's = "éèà"; y = '), ("wide", 's = "中文字"; y = ')])
def test_the_caret_counts_characters(mod, name, before):
    with pytest.raises(srcgrad.UnsupportedSyntax) as info:
        srcgrad.grad(getattr(mod, name))(1.0)
    message = str(info.value)
    line = SOURCE.split("\n").index(f"    {before}" + '{"k", x}') + 1
    assert f"messages_model.py:{line}:{4 + len(before) + 1}: " in message  # a character column, 1-based
    shown, caret = caret_line(message)
    assert shown == "    " + before + '{"k", x}'
    wide_chars = sum(1 for c in before if c in "中文字")
    assert caret == "    " + " " * (len(before) + wide_chars) + "^"  # under the `{` in a terminal


def test_location_columns_are_bytes_shown_as_characters():
    where = Location("f.py", 3, len("    s = 'é'; ".encode()), "    s = 'é'; y = 1\n")
    assert where.col == 14 and where.char_col == 13 and str(where) == "f.py:3:14"
    assert Location("f.py", 1, 7, "").char_col == 0  # no line text: nothing to count


def test_grad_of_a_bound_method(mod):
    """(A bound method is differentiated with its instance bound: tests/test_structures_objects.py.)"""
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(srcgrad.grad(mod.Model().loss)(x), 2.0 * x)
    np.testing.assert_allclose(srcgrad.grad(mod.Model.loss, wrt="x")(mod.Model(), x), 2.0 * x)


@pytest.mark.parametrize("transform", [srcgrad.grad, srcgrad.value_and_grad, srcgrad.vjp, srcgrad.jvp, srcgrad.hvp,
                                       srcgrad.hessian, srcgrad.jacobian])
def test_none_is_not_a_function(transform):
    with pytest.raises(srcgrad.InvalidArgument, match=f"srcgrad.{transform.__name__} got None instead of a "
                                                      "function"):
        transform(None)
    with pytest.raises(srcgrad.InvalidArgument, match="got None"):
        transform(None, wrt=0)


def test_decorators_still_work():
    @srcgrad.grad(wrt=1)
    def f(a, b):
        return a * b * b

    @srcgrad.hessian
    def h(x):
        return x ** 3

    assert f(2.0, 3.0) == 12.0 and h(2.0) == 12.0


@pytest.mark.parametrize("name,helper", [("product", "prod_grad"), ("length", "norm_grad")])
def test_a_second_derivative_srcgrad_cannot_take_names_the_users_line(mod, name, helper):
    x = np.array([1.0, 2.0, 3.0])
    line = SOURCE.split("\n").index(f"def {name}(x):") + 2
    for attempt in (lambda: srcgrad.hessian(getattr(mod, name))(x),
                    lambda: srcgrad.hvp(getattr(mod, name))(x, np.ones(3))):
        with pytest.raises(srcgrad.NoRuleError) as info:
            attempt()
        where = info.value.location
        assert (where.filename, where.line) == (mod.__file__, line)
        assert "runtime.py" not in str(info.value) and helper in str(info.value)


def _run(f, x):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = f(x)
    return result, sorted(str(w.message) for w in caught)


@pytest.mark.parametrize("name", ["mean_square", "column_means"])
@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0)])
def test_the_mean_of_an_empty_array_behaves_as_numpys(mod, name, shape):
    """np.mean(x ** 2) of an empty array raised ZeroDivisionError from the generated code; numpy gives nan and
    warns. The gradient of a function of no elements is an empty array."""
    f = getattr(mod, name)
    x = np.zeros(shape)
    expected, numpy_warnings = _run(f, x)
    (value, gradient), our_warnings = _run(srcgrad.value_and_grad(f), x)
    np.testing.assert_equal(value, expected)
    assert gradient.shape == shape and gradient.dtype == np.float64
    assert our_warnings == numpy_warnings
    assert _run(srcgrad.grad(f), x)[0].shape == shape
