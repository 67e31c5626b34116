"""numba's on-disk cache for the numba backend: compiled code a later process loads instead of compiling it again.

In: a generated text and the values of the names it reads (the user's globals and closure values, srcgrad's bound
names). Out: :func:`source_file` — the file to compile the text under, ``<srcgrad's cache dir>/numba/<key>.py``,
which holds exactly that text, so that ``numba.njit(cache=True)`` keeps the compiled code next to it (numba's
``__pycache__`` there) — or None: the text is compiled in memory, once per process.
What holds:
- the key is the text and everything numba freezes into compiled code besides it: each number, string or None the
  text reads by value (numba compiles globals as constants), each module and function it reads by module and
  qualified name, numba's version and srcgrad's environment (its version and module files, Python, numpy: as
  srcgrad/cache.py keys its entries);
- what cannot be described exactly is not cached: a name bound to anything else — a module of the user's (numba
  would freeze its attributes), a numba-compiled function of the user's (numba's cache would not see its code
  change), a generated helper pair, an object of another type (arrays are refused before this) — and nothing is
  cached when srcgrad's cache is off (``SRCGRAD_CACHE=0``);
- the directory is private (made with mode 0700 and checked as srcgrad/cache.py checks its own: the user's, not
  writable by others), and a file whose text is not the text is never used; a failure only costs the cache, it
  never raises.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

import numpy as np

from srcgrad import cache, digests

_VALUES = (bool, int, float, complex, str, type(None))
_LIBRARIES = frozenset({"math", "cmath", "numpy", "operator", "builtins", "_operator"})  # fixed by their versions


def source_file(source: str, values: dict[str, Any]) -> str | None:
    """The path of a file holding ``source``, keyed by it and ``values`` (name -> the object it denotes), or None
    when the text is not to be cached on disk."""
    where = cache.directory()
    if where is None:
        return None
    described = [_describe(value) for _, value in sorted(values.items())]
    if any(d is None for d in described):
        return None
    import numba

    lines = [source, numba.__version__, cache._environment()]
    lines += [f"{name}={d}" for name, d in zip(sorted(values), described)]
    key = digests.hex_digest("\n".join(lines))
    try:
        return _written(Path(where) / "numba", f"{key}.py", source)
    except (OSError, cache.Untrusted):
        return None


def _describe(value: Any) -> str | None:
    """What identifies ``value`` across processes, or None when nothing does exactly."""
    if type(value) in _VALUES or (isinstance(value, np.generic) and type(value).__module__ == "numpy"):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}" if value.__name__.split(".")[0] in _LIBRARIES else None
    module = getattr(value, "__module__", None) or ""
    name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if not callable(value) or not name:
        return None
    if module.split(".")[0] in _LIBRARIES or (isinstance(value, np.ufunc) and module.startswith("numpy")):
        return f"{module}.{name}"
    if module.startswith("srcgrad.") and isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return f"srcgrad:{module}.{name}"  # (srcgrad's files are in its environment)
    return None


def _written(folder: Path, name: str, source: str) -> str | None:
    """``folder/name`` holding ``source`` (written now if missing), in a private directory; None when a file of
    that name holds something else or is not the user's own."""
    cache._make_private(folder)
    cache._check_owner(folder, os.lstat(folder), "directory")
    path = folder / name
    data = source.encode("utf-8")
    if not os.path.lexists(path):
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        cache._check_owner(path, os.fstat(f.fileno()), "file")
        same = f.read(len(data) + 1) == data
    return str(path) if same else None
