"""Writes and run-time checks inside ``with`` and ``try`` blocks (session 6 probes, issue 12 item 3).

The alias analysis walked the statements of a function in program order, branches and loops included, but skipped
the bodies of ``with`` and ``try`` (and ``except``/``else``/``finally``): an update through another name there went
unnoticed, and srcgrad's new array left the other name's old value — ``z = y; z += 1.0`` inside ``with
np.errstate(...)`` or a ``try`` gave 0.34 where Python gives 1.14. Now they are walked like branches (a handler may
start after any statement of the body). And a check srcgrad's code runs refuses by raising: inside a ``try`` whose
``except`` may catch that (``except Exception``, ``except ValueError``, a bare ``except``), the handler would run
instead — a silently different path — so that is refused at generation.
"""

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import InternalError, SrcgradError, UnsupportedSyntax
from srcgrad.testing import check_grad

X = np.array([0.3, 0.5])
CONFIG = {0: 5.0, 1: 7.0}


def _refused(func, *args, line, match):
    with pytest.raises(SrcgradError, match=match) as info:
        srcgrad.value_and_grad(func)(*args)
    assert not isinstance(info.value, InternalError), str(info.value)
    assert f"test_trust_try_blocks.py:{func.__code__.co_firstlineno + line}:" in str(info.value), str(info.value)


def update_in_with(x):
    y = x * 1
    with np.errstate(all="ignore"):
        z = y
        z += 1.0
    return np.sum(y * x)


def update_in_try(x):
    y = x * 1
    try:
        z = y
        z += 1.0
    except ZeroDivisionError:
        pass
    return np.sum(y * x)


def write_in_finally(x):
    y = x * 1
    try:
        r = 1.0 / x[0]
    except ZeroDivisionError:
        r = 0.0
    finally:
        z = y
        z[0] = 4.0
    return np.sum(y * x) * r


@pytest.mark.parametrize("func, line", [(update_in_with, 4), (update_in_try, 4), (write_in_finally, 8)])
def test_an_update_through_another_name_in_a_block_is_refused(func, line):
    # (main gave Python's value without the update: 0.34 for 1.14, 1.13 for 4.83)
    _refused(func, X, line=line, match="another name refers to the same array")


def update_of_a_number_in_try(x):
    y = x * 1.0
    try:
        z = y
        z += 1.0  # (a number: rebound, as Python does)
        r = y * x + z
    except ZeroDivisionError:
        r = 0.0
    return r


def test_an_update_of_a_number_in_a_try_works():
    check_grad(update_of_a_number_in_try, 0.7)


def checked_update_caught(x, c=1.0):
    try:
        y = x * c
        z = y
        z += 1.0
        r = np.sum(y * x)
    except ValueError:
        r = np.sum(x) * 0.0
    return r


def checked_loop_caught(x):
    try:
        tot = 0.0
        for k in dict(CONFIG):
            tot = tot + k * x
    except Exception:
        tot = x * 100.0
    return tot


def checked_loop_bare(x):
    scale = 2.0
    try:
        for i, k in enumerate(CONFIG.values()):
            scale = scale * (k + i)
    except:  # noqa: E722
        scale = 0.0
    return scale * x


def test_a_check_whose_refusal_the_except_may_catch_is_refused():
    # (the dict loop's refusal was caught: 50.0 for Python's 0.5)
    _refused(checked_update_caught, X, line=4, match="the `except` at line")
    _refused(checked_loop_caught, 0.5, line=3, match="the `except` at line")
    _refused(checked_loop_bare, 0.5, line=3, match="the `except` at line")


def checked_loop_narrow(x):
    try:
        tot = 0.0
        for k in list(CONFIG):
            tot = tot + k * x / (k + 1.0)
    except ZeroDivisionError:
        tot = x * 100.0
    return tot


def test_a_try_without_checks_or_with_a_narrow_except_works():
    check_grad(checked_loop_narrow, 0.5)
    with pytest.raises(UnsupportedSyntax):  # (the check itself still refuses, outside a catching except)
        srcgrad.grad(update_in_try)(X)
