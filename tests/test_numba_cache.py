"""numba's on-disk cache for backend="numba" (issue 21, item 1; srcgrad/numba_cache.py), in fresh processes.

- a second process loads the compiled gradient from numba's cache (a hit, no compilation) and gets the same numbers;
- a constant of the user's that numba compiles into the code is part of the key: changing it compiles anew, with
  the new value (never the stale code);
- what cannot be keyed exactly is compiled in memory only (a generated helper pair), and nothing is written when
  srcgrad's cache is off; the directory is private.
"""

import inspect
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("numba")

from test_numba_backend import _scaled_sin, loop_with_helper_and_break  # noqa: E402

from srcgrad import numba_cache  # noqa: E402
from srcgrad.testing import numerical_grad  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

MODEL = '''
import math

C = {c}


def scalar_loop(x, n):
    s = 1.0
    for _ in range(n):
        s = s + math.sin(x * s) * math.cos(x) * C
    return s


'''


def model_text(c: float) -> str:
    """The model with the constant ``c``, and a function calling a helper (test_numba_backend's)."""
    return MODEL.format(c=c) + "\n\n".join(inspect.getsource(f) for f in (_scaled_sin, loop_with_helper_and_break))


SCRIPT = '''
import json, sys
import srcgrad, cmodel
out = {}
for name in sys.argv[1:]:
    df = srcgrad.grad(getattr(cmodel, name), backend="numba")
    value = df(0.7, 30)
    compiled = df.__srcgrad_transform__.last.function.__srcgrad_compiled__
    out[name] = [value, sum(compiled.stats.cache_hits.values()), sum(compiled.stats.cache_misses.values())]
print(json.dumps(out))
'''


def run(directory: Path, cache_dir: Path, *names: str, enabled: bool = True) -> dict:
    env = dict(os.environ, SRCGRAD_CACHE_DIR=str(cache_dir), SRCGRAD_CACHE="1" if enabled else "0",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(directory)]))
    done = subprocess.run([sys.executable, "-c", SCRIPT, *names], capture_output=True, text=True, timeout=600,
                          env=env, cwd=directory)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected(c: float) -> float:
    import math

    namespace: dict = {"math": math}
    exec(model_text(c), namespace)
    return numerical_grad(namespace["scalar_loop"], (0.7, 30), 0)


def test_second_process_loads_compiled_code_and_constants_are_keyed(tmp_path):
    (tmp_path / "cmodel.py").write_text(model_text(0.5))
    cache_dir = tmp_path / "cache"
    first = run(tmp_path, cache_dir, "scalar_loop")["scalar_loop"]
    second = run(tmp_path, cache_dir, "scalar_loop")["scalar_loop"]
    assert first[1:] == [0, 1] and second[1:] == [1, 0]  # compiled, then loaded
    assert first[0] == second[0] == pytest.approx(expected(0.5), rel=1e-6)
    (tmp_path / "cmodel.py").write_text(model_text(0.25))
    changed = run(tmp_path, cache_dir, "scalar_loop")["scalar_loop"]
    assert changed[1:] == [0, 1] and changed[0] == pytest.approx(expected(0.25), rel=1e-6)
    folder = cache_dir / "numba"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert len(list(folder.glob("*.py"))) == 2


def test_helper_pairs_compile_in_memory_and_an_off_cache_writes_nothing(tmp_path):
    (tmp_path / "cmodel.py").write_text(model_text(0.5))
    cache_dir = tmp_path / "cache"
    for _ in range(2):
        result = run(tmp_path, cache_dir, "loop_with_helper_and_break")["loop_with_helper_and_break"]
        assert result[1:] == [0, 1]  # (not cacheable: compiled again by each process)
    off = tmp_path / "off"
    assert run(tmp_path, off, "scalar_loop", enabled=False)["scalar_loop"][1:] == [0, 1]
    assert not (off / "numba").exists()


def test_what_is_keyed_and_what_is_not():
    import math

    import numpy as np

    assert numba_cache._describe(0.5) == "float:0.5" and numba_cache._describe(0.5) != numba_cache._describe(0.25)
    assert numba_cache._describe(np.float64(2.0)).startswith("float64:")
    assert numba_cache._describe(np.float64(2.0)) != numba_cache._describe(np.float64(2.5))
    assert numba_cache._describe(math) == "module:math" and numba_cache._describe(np.sin) == "numpy.sin"
    assert numba_cache._describe(np.zeros(2)) is None and numba_cache._describe(textwrap) is None
    assert numba_cache._describe(lambda x: x) is None and numba_cache._describe([1.0]) is None


def test_a_file_holding_another_text_is_not_used(tmp_path, monkeypatch):
    from srcgrad import cache

    monkeypatch.setattr(cache, "_override", {"enabled": True, "directory": tmp_path / "cache"})
    path = numba_cache.source_file("def f(x):\n    return x\n", {})
    assert path is not None and Path(path).read_text() == "def f(x):\n    return x\n"
    Path(path).write_text("def f(x):\n    return 2 * x\n")
    assert numba_cache.source_file("def f(x):\n    return x\n", {}) is None
