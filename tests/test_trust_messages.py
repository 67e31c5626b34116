"""Refusals name the user's code: the user's function, variable and line:col (session 6 probes, issue 12).

Before: hvp of a loop that appends to a list in both branches was refused naming a generated variable (`out_3`) and a
generated line ("read at line 15"; the refusal itself was an over-refusal: the copy of an earlier iteration's name
where the branches join read nothing); a vjp seed of the wrong shape for a structured output named `f_leaves`;
run-time refusals (a method on what is not an array) said column 1; in a method (its text dedented to be parsed)
in-place update checks and compile-time refusals gave the column of the dedented text.
"""

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InvalidArgument, NonScalarOutput, UnsupportedSyntax, UnsupportedValue
from srcgrad.testing import check_grad

X = np.array([0.5, -1.0, 2.0])


def appends_in_both_branches(x):
    out = []
    for i in range(3):
        if x[i] > 0:
            out.append(x[i] ** 2)
        else:
            out.append(x[i] * 3.0)
    return np.sum(np.array(out) * x)


def aliases_in_both_branches(x):
    out = []
    for i in range(3):
        if x[i] > 0:
            out.append(x[i] ** 2)
            a = out  # noqa: F841 - names bound and never read again: no refusal
        else:
            out.append(x[i] * 3.0)
            b = out  # noqa: F841
    return np.sum(np.array(out) * x)


def alias_read_after_a_later_append(x):
    out = []
    a = out
    for i in range(3):
        if x[i] > 0:
            out.append(x[i] ** 2)
            a = out
        else:
            out.append(x[i] * 3.0)
    return np.sum(np.array(a) * x)


def _hessian_by_differences(func, x, eps=1e-6):
    """Central differences of srcgrad's gradient (itself checked against differences of ``func``)."""
    grad = srcgrad.grad(func)
    columns = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        columns.append((grad(x + e) - grad(x - e)) / (2 * eps))
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize("func", [appends_in_both_branches, aliases_in_both_branches])
@pytest.mark.parametrize("x", [X, -X])
def test_hvp_of_a_loop_appending_in_both_branches(func, x):
    # (refused naming `out_3` of the generated forward mode, "read at line 15")
    check_grad(func, x)
    v = np.array([1.0, -2.0, 0.5])
    expected = _hessian_by_differences(func, x) @ v
    np.testing.assert_allclose(srcgrad.hvp(func)(x, v), expected, rtol=1e-6, atol=1e-6)
    # f = sum of x_i ** 3 (x_i > 0) or 3 x_i ** 2: the Hessian is diagonal, 6 x_i or 6
    np.testing.assert_allclose(srcgrad.hvp(func)(x, v), np.where(x > 0, 6 * x, 6.0) * v, rtol=1e-12)


def test_an_alias_read_after_a_later_append_is_still_refused_at_the_users_names():
    for transform in (srcgrad.grad, lambda f: (lambda x: srcgrad.hvp(f)(x, np.ones(3)))):
        with pytest.raises(UnsupportedSyntax, match="`a`, read at line") as info:
            transform(alias_read_after_a_later_append)(X)
        first = alias_read_after_a_later_append.__code__.co_firstlineno
        assert f"test_trust_messages.py:{first + 8}:13:" in str(info.value)
        assert f"read at line {first + 9}," in str(info.value)


def structured_output(x):
    return {"a": x ** 2, "b": np.sum(x)}


def dict_argument_vector(p):
    return p["w"] * 2.0


def test_structured_messages_name_the_users_function():
    # (they named structured_output_leaves and dict_argument_vector_leaves)
    with pytest.raises(InvalidArgument, match=r"the seed of the vjp of structured_output has shape \(2,\), and the "
                                              r"leaf structured_output returned"):
        srcgrad.vjp(structured_output)(X, {"a": 1.0, "b": np.ones(2)})
    with pytest.raises(NonScalarOutput, match=r"but dict_argument_vector returned an array of shape \(3,\)"):
        srcgrad.grad(dict_argument_vector)({"w": X})


class Aggregator:
    def sum(self, v):
        return 3.0 * np.sum(v)


class Slotted:
    __slots__ = ("agg",)

    def __init__(self):
        self.agg = Aggregator()


def method_on_an_attribute(x, h):
    return 1.0 + h.agg.sum(x ** 2)


class Model:
    def shared_update(self, x, c):
        y = c
        z = y
        z += x
        return np.sum(z * y)

    def walks_an_iterator(self, x, names):
        return np.sum(x) + sum(len(k) for k in names)


def test_run_time_refusals_name_the_column():
    # (column 1 before: the line map of generated code knew lines only)
    with pytest.raises(UnsupportedValue, match="not an array") as info:
        srcgrad.grad(method_on_an_attribute)(X, Slotted())
    assert f"test_trust_messages.py:{method_on_an_attribute.__code__.co_firstlineno + 1}:18:" in str(info.value)


def test_refusals_in_a_method_name_the_files_column():
    # (the column of the method's dedented text: 4 less)
    first = Model.shared_update.__code__.co_firstlineno
    with pytest.raises(UnsupportedSyntax, match="changes an array in place") as info:
        srcgrad.grad(Model().shared_update)(np.ones(2), np.ones(2))
    assert f"test_trust_messages.py:{first + 3}:9:" in str(info.value)
    first = Model.walks_an_iterator.__code__.co_firstlineno
    with pytest.raises(InvalidArgument, match="`names` is a dict") as info:
        srcgrad.grad(Model().walks_an_iterator)(X, {"a": 1})
    assert f"test_trust_messages.py:{first + 1}:48:" in str(info.value)
