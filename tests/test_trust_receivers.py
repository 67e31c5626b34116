"""The receiver of a method decides what the method is (session 6 probes, issue 12).

``v.sum(...)``, ``v.dot(...)``... are differentiated by numpy's rules only when ``v`` is an array. Before, any
receiver was taken for one, so a module or an object with methods of those names got numpy's rule with itself as the
array and the real argument as ``axis``: ``xp.sum(x ** 2)`` with ``xp=np`` (the array-namespace pattern), a global
object's ``AGG.sum(x ** 2)`` and ``cfg.xp.sum(...)`` all returned Python's value with a zero gradient. Now:
- a global or constant that is not an array gets its own method, called as written (a gradient through it is refused
  at the call, naming the object);
- a module reached through a global object's attribute (``H.mod.sum``) is that module's function, with its rule;
- a module passed as an argument, or held by an argument's attribute, whose attributes the function reads is refused
  at the first read (which module it is is known only at call time).
"""

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InternalError, SrcgradError, UnsupportedValue
from srcgrad.testing import check_grad

X = np.array([0.3, -0.7, 1.2])


class Aggregator:
    def __init__(self):
        self.w = 2.0

    def sum(self, v):
        return np.sum(v) * self.w

    def dot(self, a, b):
        return np.dot(a, b) * 3.0


class Holder:
    def __init__(self):
        self.agg = Aggregator()
        self.mod = np
        self.W = np.eye(3) * 2.0


AGG = Aggregator()
HOLDER = Holder()


def _refused(func, *args, line, match=None):
    with pytest.raises(SrcgradError, match=match) as info:
        srcgrad.value_and_grad(func)(*args)
    assert not isinstance(info.value, InternalError), str(info.value)
    assert f"test_trust_receivers.py:{line}:" in str(info.value), str(info.value)


def global_object_sum(x):
    return AGG.sum(x ** 2)


def global_object_dot(x):
    return AGG.dot(x, x)


def global_attribute_object(x):
    return HOLDER.agg.sum(x ** 2)


def test_a_global_objects_method_is_its_own_not_numpys():
    # (numpy's rule read AGG as the array and x ** 2 as the axis: Python's value, gradient 0)
    _refused(global_object_sum, X, line=global_object_sum.__code__.co_firstlineno + 1, match="`AGG` is not an array")
    _refused(global_object_dot, X, line=global_object_dot.__code__.co_firstlineno + 1, match="not an array")
    _refused(global_attribute_object, X, line=global_attribute_object.__code__.co_firstlineno + 1,
             match="`HOLDER.agg` is not an array")


def global_module_attribute(x):
    return HOLDER.mod.sum(x ** 2) + np.sum(HOLDER.W @ x)


def test_a_module_held_by_a_global_is_that_module():
    check_grad(global_module_attribute, X)
    np.testing.assert_allclose(srcgrad.grad(global_module_attribute)(X), 2 * X + 2.0)


def namespace_argument(x, xp=np):
    return xp.sum(x ** 2)


def namespace_argument_dot(x, xp=np):
    return xp.dot(x, x) + np.sum(x)


def module_in_an_attribute(x, h):
    return h.mod.sum(x ** 2)


def test_a_module_argument_is_refused_where_it_is_read():
    _refused(namespace_argument, X, line=namespace_argument.__code__.co_firstlineno + 1, match="`xp` is a module")
    _refused(namespace_argument_dot, X, line=namespace_argument_dot.__code__.co_firstlineno + 1,
             match="`xp` is a module")
    _refused(module_in_an_attribute, X, Holder(), line=module_in_an_attribute.__code__.co_firstlineno + 1,
             match="`h.mod` is a module")


def object_argument(x, h):
    return h.agg.sum(x ** 2) + np.sum(h.W.dot(x))


def test_an_argument_objects_methods_are_still_inlined():
    check_grad(object_argument, X, Holder())
    np.testing.assert_allclose(srcgrad.grad(object_argument)(X, Holder()), 4 * X + 2.0)


class Slotted:
    __slots__ = ("W", "agg", "xp")

    def __init__(self):
        self.W = np.eye(3) * 2.0
        self.agg = Aggregator()
        self.xp = np

    def loss(self, x):
        return np.sum(self.W.dot(x)) + self.agg.sum(x ** 2)

    def namespace_loss(self, x):
        return self.xp.sum(x ** 2)

    def array_loss(self, x):
        return np.sum(self.W.dot(x) ** 2)


def test_a_method_on_an_attribute_read_as_written_is_checked_to_be_an_arrays():
    # (an object with __slots__ is read attribute by attribute, as written: its type is known when the code runs;
    # self.agg.sum(x ** 2) and self.xp.sum(x ** 2) gave gradient 0)
    model = Slotted()
    for method, line in ((model.loss, 1), (model.namespace_loss, 1)):
        with pytest.raises(UnsupportedValue, match="not an array") as info:
            srcgrad.grad(method)(X)
        assert f"test_trust_receivers.py:{method.__code__.co_firstlineno + line}:" in str(info.value), str(info.value)
    check_grad(model.array_loss, X)
    np.testing.assert_allclose(srcgrad.grad(model.array_loss)(X), 8 * X)
