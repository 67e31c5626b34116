"""Which functions are the user's own code: srcgrad differentiates those through their source, and nothing else.

In: a Python object that code calls. Out: whether srcgrad reads its source (:func:`is_user_function`).
What holds: a function is the user's when it is a plain Python function (``def`` or lambda) defined neither in
srcgrad, nor in numpy or scipy, nor in a file of the standard library or of an installed package (under
``site-packages``/``dist-packages`` or the interpreter's library directories). Everything else that has no
derivative rule is a primitive without one: it runs as called, and a gradient that would flow through it is a
``NoRuleError`` at the user's call, naming the function and how to declare its rule (``srcgrad.defgrad``). So
srcgrad never differentiates a library's own Python source (scipy.special.logsumexp, numpy's Python functions,
``statistics.mean``), whose constructs are the library's business, not the user's.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any

LIBRARY_PACKAGES = frozenset({"srcgrad", "numpy", "scipy"})  # by module name, wherever they are installed


def _standard_library_dirs() -> tuple[str, ...]:
    """Where the standard library is (sysconfig's ``stdlib`` and ``platstdlib``), each ending in a separator: the
    directory of ``os``'s own file, and ``<exec prefix>/<platlibdir>/pythonX.Y`` (a virtual environment's platform
    library). Found without sysconfig, whose import costs a millisecond at the first gradient of any function that
    calls a helper; tests/unit/test_usercode.py checks they cover sysconfig's directories."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    found = {os.path.dirname(os.path.abspath(os.__file__)),
             os.path.join(os.path.abspath(sys.exec_prefix), getattr(sys, "platlibdir", "lib"), version)}
    return tuple(sorted(path + os.sep for path in found))


STANDARD_LIBRARY_DIRS = _standard_library_dirs()
_PACKAGE_DIR_NAMES = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def is_user_function(obj: Any) -> bool:
    """A Python function of the user's own code (see the module docstring)."""
    if not isinstance(obj, types.FunctionType):
        return False
    module = getattr(obj, "__module__", None) or ""
    if module.split(".")[0] in LIBRARY_PACKAGES:
        return False
    return not is_library_file(obj.__code__.co_filename)


def is_library_file(filename: str) -> bool:
    """Is ``filename`` a file of the standard library or of an installed package?"""
    if filename.startswith("<"):  # an interactive prompt, a notebook cell, exec(): the user's
        return False
    path = os.path.abspath(filename)
    # (installed packages, sysconfig's ``purelib`` and ``platlib``, are the directories of these names)
    return path.startswith(STANDARD_LIBRARY_DIRS) or any(part in path for part in _PACKAGE_DIR_NAMES)


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a function or class, for messages."""
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{module}.{name}" if module else name
