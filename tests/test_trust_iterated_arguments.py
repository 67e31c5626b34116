"""A loop over an argument that is not differentiated visits what Python visits, or is refused (session 6 probes).

srcgrad lowers ``for v in xs`` to ``for i in range(len(xs)): v = xs[i]``: Python's items for a sequence or an array.
A dict argument gave its values where Python gives its keys — with ``d = {0: 5.0, 1: 7.0}``, ``for k in d: tot += k *
x`` returned 6.0 with gradient 12.0 where Python returns 0.5 (gradient 1.0) — and other dicts, sets, generators and
``d.items()`` raised raw KeyError/TypeError from the generated code. Now such an argument is an InvalidArgument at the
loop, and so is an attribute of an argument (``for k in cfg.d``); a loop over what a call run as written returned
(``dict(CFG)``, ``CFG.keys()``) is refused where it runs (UnsupportedValue); ``list(d)`` and ``list(d.items())``
are sequences, and work.
"""

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InvalidArgument, UnsupportedValue
from srcgrad.testing import check_grad

X = np.array([0.3, -0.7, 1.2])
WEIGHTS = {"W0": np.ones(3), "b": np.ones(3) * 2.0}


def over_keys(x, d):
    tot = 0.0
    for k in d:
        tot = tot + k * x
    return tot


def over_keys_generator(x, d):
    return sum(k * x for k in d)


def over_items(x, d):
    tot = 0.0
    for i, (_k, v) in enumerate(d.items()):
        tot = tot + np.sum(v * x) * i
    return tot


def over_list_of_keys(x, d):
    tot = 0.0
    for k in list(d):
        tot = tot + np.sum(d[k] * x)
    return tot


def over_list_of_items(x, d):
    return sum(np.sum(v * x) for k, v in list(d.items()))


def zipped(x, names):
    tot = 0.0
    for a, b in zip(x, names):
        tot = tot + a * len(b)
    return tot


@pytest.mark.parametrize("func, line", [(over_keys, 2), (over_keys_generator, 1), (over_items, 2)])
def test_a_loop_over_a_dict_argument_is_refused(func, line):
    # (over_keys gave 6.0 and gradient 12.0 here: the values 5.0 and 7.0 taken for the keys 0 and 1)
    for d in ({0: 5.0, 1: 7.0}, WEIGHTS):
        with pytest.raises(InvalidArgument, match="`d` is a dict") as info:
            srcgrad.value_and_grad(func)(0.5 if d is not WEIGHTS else X, d)
        assert f"test_trust_iterated_arguments.py:{func.__code__.co_firstlineno + line}:" in str(info.value)


@pytest.mark.parametrize("value", [{1.0, 2.0}, frozenset({1.0}), (v for v in (1.0, 2.0)), {0: 1.0}.keys()])
def test_a_loop_over_a_set_or_an_iterator_argument_is_refused(value):
    with pytest.raises(InvalidArgument, match="srcgrad's loops visit the items of a sequence"):
        srcgrad.grad(over_keys)(0.5, value)


@pytest.mark.parametrize("value", [[1.0, 2.0], (3.0, 4.0), range(3), np.array([1.0, 2.0])])
def test_a_loop_over_a_sequence_argument_works(value):
    check_grad(over_keys, 0.5, value)


def test_a_list_of_a_dicts_keys_or_items_works():
    check_grad(over_list_of_keys, X, WEIGHTS)
    check_grad(over_list_of_items, X, WEIGHTS)
    np.testing.assert_allclose(srcgrad.grad(over_list_of_items)(X, WEIGHTS), [3.0, 3.0, 3.0])
    check_grad(zipped, X, ["a", "bb", "ccc"])


CONFIG = {0: 5.0, 1: 7.0}


class Settings:
    def __init__(self):
        self.d = {0: 5.0, 1: 7.0}
        self.names = ["a", "bb"]


def over_an_attribute(x, cfg):
    tot = 0.0
    for k in cfg.d:
        tot = tot + k * x
    return tot


def over_a_list_attribute(x, cfg):
    tot = 0.0
    for name in cfg.names:
        tot = tot + len(name) * x
    return tot


def over_a_copy(x):
    tot = 0.0
    for k in dict(CONFIG):
        tot = tot + k * x
    return tot


def over_keys_of_a_global(x):
    tot = 0.0
    for k in CONFIG.keys():
        tot = tot + k * x
    return tot


def test_a_loop_over_an_arguments_dict_attribute_is_refused():
    with pytest.raises(InvalidArgument, match="`cfg.d` is a dict") as info:
        srcgrad.grad(over_an_attribute)(0.5, Settings())  # (gave 12.0 for 1.0)
    assert f"test_trust_iterated_arguments.py:{over_an_attribute.__code__.co_firstlineno + 2}:" in str(info.value)
    check_grad(over_a_list_attribute, 0.5, Settings())


@pytest.mark.parametrize("func", [over_a_copy, over_keys_of_a_global])
def test_a_loop_over_what_an_opaque_call_returned_is_checked_where_it_runs(func):
    # (over_a_copy gave 6.0 with gradient 12.0, Python 0.5 and 1.0; dict_keys raised a raw TypeError)
    with pytest.raises(UnsupportedValue, match="this loop walks a dict") as info:
        srcgrad.value_and_grad(func)(0.5)
    assert f"test_trust_iterated_arguments.py:{func.__code__.co_firstlineno + 2}:" in str(info.value)

