"""A module written by `srcgrad emit` checks its arguments as an in-process call does (session 6 probes, issue 12).

In-process, api.Transform.kinds checks the arguments at the call (structures.check_iterated: a loop over a dict, a
set or an iterator argument is refused). The emitted module skipped that: ``for k in d: total += d[k] * x`` gave 12.0
where Python gives 1.0, and an object whose ``.sum`` the function calls was taken for an array (gradient 0 where it
is 6x). Now the emitted function starts with the same checks (runtime.check_walked_argument, check_array_argument).
The run-time checks in generated code (runtime.array_receiver, the vjp seed's shape per leaf) are copied into the
module with it; jvp and hvp (higher.check_tangent) are not written by emit.
"""

import sys

import numpy as np
import pytest
from module_files import load, run_blocked

import srcgrad
from srcgrad.errors import InvalidArgument, UnsupportedValue
from srcgrad.testing import check_grad

X = np.array([0.3, -0.7, 1.2])

EMITTED_USER = '''
import numpy as np


def over_dict_values(x, d):
    total = 0.0
    for k in d:
        total = total + d[k] * x
    return total


def over_items_of(x, d):
    total = 0.0
    for v in d:
        total = total + v * x
    return total


class Aggregator:
    def sum(self, v):
        return 3.0 * np.sum(v)


def method_of_argument(x, h):
    return h.sum(x ** 2)

class Slotted:
    __slots__ = ("agg", "W")

    def __init__(self):
        self.agg = Aggregator()
        self.W = np.eye(3) * 2.0


def slotted_weights(x, h):
    return np.sum(h.W.dot(x ** 2))


def method_of_an_attribute(x, h):
    return 1.0 + h.agg.sum(x ** 2)


def structured_output(x):
    return x ** 2, np.sum(x)
'''


def _emitted(tmp_path, name, mode=None):
    module = load(tmp_path / "walked_user.py", EMITTED_USER)
    sys.modules["walked_user"] = module  # the emitted module imports from the user's module by this name
    module.__name__ = "walked_user"
    for obj in vars(module).values():
        if getattr(obj, "__module__", None) == module.__spec__.name:
            obj.__module__ = "walked_user"
    func = getattr(module, name)
    (tmp_path / f"{name}_emitted.py").write_text(srcgrad.emit(func, mode=mode), encoding="utf-8")
    return module, func


def test_an_emitted_module_refuses_a_loop_over_a_dict_argument_as_in_process(tmp_path):
    # (the emitted module skipped the in-process check: 12.0 for 1.0 with {0: 5.0, 1: 7.0})
    for name, line in (("over_dict_values", 7), ("over_items_of", 14)):
        module, func = _emitted(tmp_path, name)
        d = {0: 5.0, 1: 7.0}
        with pytest.raises(InvalidArgument, match="`d` is a dict"):
            srcgrad.grad(func)(0.5, d)
        calls = [(f"{name}_grad", (0.5, value)) for value in (d, {1.0, 2.0}, [1, 0], np.array([1, 0]))]
        refused_dict, refused_set, listed, array = run_blocked(tmp_path, f"{name}_emitted", calls)
        assert refused_dict[:2] == ("error", "ValueError") and f"walked_user.py:{line}:14: `d` is a dict" in \
            refused_dict[2], refused_dict
        assert refused_set[:2] == ("error", "ValueError") and "`d` is a set" in refused_set[2], refused_set
        for result, value in ((listed, [1, 0]), (array, np.array([1, 0]))):
            assert result[0] == "ok", result
            np.testing.assert_allclose(result[1], srcgrad.grad(func)(0.5, value), rtol=1e-13)
            check_grad(func, 0.5, value)


def test_an_emitted_module_refuses_an_object_whose_methods_it_reads_as_an_arrays(tmp_path):
    # (in-process, the object's own .sum is read: gradient 6x; the emitted module took it for ndarray.sum: 0)
    module, func = _emitted(tmp_path, "method_of_argument")
    np.testing.assert_allclose(srcgrad.grad(func)(X, module.Aggregator()), 6 * X, rtol=1e-13)
    check_grad(func, X, module.Aggregator())
    (refused,) = run_blocked(tmp_path, "method_of_argument_emitted",
                             [("method_of_argument_grad", (X, module.Aggregator()))])
    assert refused[:2] == ("error", "ValueError") and "walked_user.py:25:12: `h` is a Aggregator" in refused[2]
    # with an example of the object, the module reads its methods as in-process
    text = srcgrad.emit(func, example=(X, module.Aggregator()))
    (tmp_path / "method_example_emitted.py").write_text(text, encoding="utf-8")
    (result,) = run_blocked(tmp_path, "method_example_emitted", [("method_of_argument_grad", (X, module.Aggregator()))])
    assert result[0] == "ok", result
    np.testing.assert_allclose(result[1], 6 * X, rtol=1e-13)


def test_the_run_time_checks_of_generated_code_are_in_the_emitted_module(tmp_path):
    # a method on what an attribute holds, checked to be an array's where it runs
    module, func = _emitted(tmp_path, "method_of_an_attribute")
    with pytest.raises(UnsupportedValue, match="not an array"):
        srcgrad.grad(func)(X, module.Slotted())
    (refused,) = run_blocked(tmp_path, "method_of_an_attribute_emitted",
                             [("method_of_an_attribute_grad", (X, module.Slotted()))])
    assert refused[:2] == ("error", "ValueError") and "not an array" in refused[2], refused
    # each leaf of a structured output's seed has the leaf's shape
    module, func = _emitted(tmp_path, "structured_output", mode="vjp")
    good, bad = (np.array([1.0, 2.0, 0.5]), 2.0), (np.ones((3, 1)), 2.0)
    with pytest.raises(InvalidArgument, match=r"a leaf of the seed of the vjp of structured_output has shape"):
        srcgrad.vjp(func)(X, bad)
    fits, misfit = run_blocked(tmp_path, "structured_output_emitted", [
        ("structured_output_vjp", (X,), {"seed": good}), ("structured_output_vjp", (X,), {"seed": bad})])
    assert fits[0] == "ok", fits
    np.testing.assert_allclose(fits[1], 2 * X * good[0] + 2.0, rtol=1e-13)
    np.testing.assert_allclose(fits[1], srcgrad.vjp(func)(X, good), rtol=1e-13)
    assert misfit[:2] == ("error", "ValueError") and "a leaf of the seed of the vjp of structured_output has shape " \
        "(3, 1)" in misfit[2], misfit
    # an object without __dict__ is read attribute by attribute, as written, in-process and in the module alike
    module, func = _emitted(tmp_path, "slotted_weights")
    check_grad(func, X, module.Slotted())
    (result,) = run_blocked(tmp_path, "slotted_weights_emitted", [("slotted_weights_grad", (X, module.Slotted()))])
    assert result[0] == "ok", result
    np.testing.assert_allclose(result[1], 4 * X, rtol=1e-13)
