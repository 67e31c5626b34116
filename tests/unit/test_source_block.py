"""freshness._getsourcelines reads a function's block from its code's positions instead of tokenizing: it must give
what ``inspect.getsourcelines`` gives (up to comment and blank lines), for tricky layouts and for every function of
the modules a user has loaded."""

import functools
import inspect
import sys
import types

import pytest

from srcgrad import freshness


def dead_after_return(x):
    return x
    print("dead")  # the compiler drops this line: the tokenizer must decide where the block ends


def docstring_only(x):
    """Only a docstring,
spelled over lines at the margin."""


def one_line(x): return x * 2.0  # noqa: E704


def multiline_string(x):
    s = """
a line at the margin
"""
    return x * len(s)


def parenthesised_return(x):
    return (
        x
        + 1.0
    )


def nested(x):
    def inner(y):
        return [z * 2 for z in (y,)]
    return inner(x)


@functools.cache
def decorated(x):
    if x > 0:
        return x
    else:
        pass
    # a comment at the end of the body


def trailing_else_pass(x):
    if x > 0:
        y = x
    else:
        pass
    return y


CASES = [dead_after_return, docstring_only, one_line, multiline_string, parenthesised_return, nested, decorated,
         trailing_else_pass]


def _significant(lines):
    return [ln for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _same(func):
    expected, start = inspect.getsourcelines(func)
    got, got_start = freshness._getsourcelines(func)
    return got_start == start and _significant(got) == _significant(expected)


@pytest.mark.parametrize("func", CASES, ids=[f.__name__ for f in CASES])
def test_tricky_layouts_read_as_inspect_reads_them(func):
    assert _same(func)


def test_every_function_of_numpy_and_srcgrad_reads_as_inspect_reads_it():
    checked = 0
    for name, module in sorted(sys.modules.items()):
        if not (name.startswith(("numpy", "srcgrad")) and isinstance(module, types.ModuleType)):
            continue
        for obj in list(vars(module).values()):
            funcs = list(vars(obj).values()) if isinstance(obj, type) else [obj]
            for func in funcs:
                if not isinstance(func, types.FunctionType):
                    continue
                try:
                    inspect.getsourcelines(func)
                except (OSError, TypeError):
                    continue
                assert _same(func), func.__qualname__
                checked += 1
    assert checked > 1000
