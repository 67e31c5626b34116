"""srcgrad.usercode finds the interpreter's library directories without sysconfig: every directory sysconfig names
for the standard library and installed packages holds library files, by srcgrad's test too."""

import os
import statistics
import sysconfig

import pytest

from srcgrad import usercode


@pytest.mark.parametrize("key", ["stdlib", "platstdlib", "purelib", "platlib"])
def test_sysconfig_directories_hold_library_files(key):
    directory = sysconfig.get_paths()[key]
    assert usercode.is_library_file(os.path.join(directory, "some_module.py"))
    assert usercode.is_library_file(os.path.join(directory, "package", "inner.py"))


def test_library_and_user_functions():
    def mine(x):
        return x

    assert usercode.is_user_function(mine)
    assert not usercode.is_user_function(statistics.mean)  # (the standard library's Python source)
    assert not usercode.is_user_function(pytest.approx)  # (an installed package's)
    assert not usercode.is_library_file("<stdin>")
