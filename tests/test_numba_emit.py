"""``srcgrad emit --backend numba`` (issue 21, item 1): the emitted module imports numba, never srcgrad, and compiles
the same readable text with ``numba.njit(cache=True)``.

Checked in fresh processes where srcgrad cannot be imported (tests/standalone_runner.py's finder): the gradients of
the functions tests/test_numba_backend.py checks in process (a scalar loop, a Newton iteration, a helper function
with a break on both branches, an MLP, an RNN) equal the Python backend's and central differences; a second process
loads the compiled code from numba's cache instead of compiling it again. What numba cannot compile is refused as
the module is emitted (a global array, a plain Python function of the user's the compiled code would call).
Skipped without numba.
"""

import inspect
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad import cli
from srcgrad.testing import numerical_grad

pytest.importorskip("numba")

from module_files import load as load_module  # noqa: E402
from test_numba_backend import (  # noqa: E402
    _scaled_sin,
    cube_root,
    loop_with_helper_and_break,
    mlp_loss,
    rnn,
    scalar_loop,
)

from srcgrad.numba_backend import NumbaUnsupported  # noqa: E402
from srcgrad.rules import registry  # noqa: E402

TESTS = Path(__file__).resolve().parent

MODEL = "import math\n\nimport numpy as np\n\n\n" + "\n\n".join(  # (the functions test_numba_backend checks)
    inspect.getsource(f) for f in (scalar_loop, cube_root, _scaled_sin, loop_with_helper_and_break, mlp_loss, rnn))

REFUSED = '''
import numpy as np

import srcgrad

WEIGHTS = np.array([1.0, 2.0])


def reads_global_array(x):
    return np.sum(WEIGHTS * x)


@srcgrad.nondifferentiable
def count(x):
    return float(len(x))


def calls_plain_function(x):
    return np.sum(x * x) * count(x)
'''

RUNNER = '''
import importlib, pickle, sys
sys.path.insert(0, {tests!r})
from standalone_runner import BlockSrcgrad
sys.meta_path.insert(0, BlockSrcgrad())
sys.path.insert(0, {directory!r})
calls = pickle.loads(open({calls!r}, "rb").read())
results, stats = [], {{}}
for module_name, name, args in calls:
    function = getattr(importlib.import_module(module_name), name)
    results.append(function(*args))
    stats[name] = (sum(function.stats.cache_hits.values()), sum(function.stats.cache_misses.values()))
assert not [m for m in sys.modules if m.split(".")[0] == "srcgrad"]
open({out!r}, "wb").write(pickle.dumps((results, stats)))
'''


def load(directory: Path, name: str, text: str):
    return load_module(directory / f"{name}.py", text)


def run_without_srcgrad(directory: Path, calls: list) -> tuple[list, dict]:
    """Call ``(module, function, args)`` in a fresh process where srcgrad cannot be imported: the results, and per
    function numba's cache (hits, misses)."""
    calls_path, out = directory / "calls.pkl", directory / "out.pkl"
    calls_path.write_bytes(pickle.dumps(calls))
    script = RUNNER.format(tests=str(TESTS), directory=str(directory), calls=str(calls_path), out=str(out))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=directory)
    assert done.returncode == 0, done.stderr
    return pickle.loads(out.read_bytes())


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    directory = tmp_path_factory.mktemp("numba_emit")
    model = load(directory, "nb_model", MODEL)
    rng = np.random.default_rng(0)
    W1, W2, X, y = rng.normal(size=(4, 5)), rng.normal(size=(5, 2)), rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    W, U, xs, h0 = 0.5 * rng.normal(size=(3, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=3)
    cases = [  # (function, wrt, args)
        (model.scalar_loop, 0, (0.7, 20)), (model.scalar_loop, 0, (0.7, 0)), (model.cube_root, 0, (0.5,)),
        (model.loop_with_helper_and_break, 0, (0.9, 2)), (model.loop_with_helper_and_break, 0, (0.9, 40)),
        (model.mlp_loss, (0, 1), (W1, W2, X, y)), (model.rnn, (0, 3), (W, U, xs, h0)),
    ]
    calls, texts = [], {}
    for func, wrt, args in cases:
        name = f"{func.__name__}_nb"
        if name not in texts:
            texts[name] = srcgrad.emit(func, wrt, backend="numba")
            (directory / f"{name}.py").write_text(texts[name])
        calls.append((name, f"{func.__name__}_grad", args))
    first = run_without_srcgrad(directory, calls)
    second = run_without_srcgrad(directory, calls)
    return model, cases, texts, first, second


def test_gradients_match_python_backend_and_differences(emitted):
    model, cases, _, (results, _), _ = emitted
    for (func, wrt, args), got in zip(cases, results):
        expected = srcgrad.grad(func, wrt)(*args)
        pairs = zip(got, expected, wrt) if isinstance(wrt, tuple) else [(got, expected, wrt)]
        for one, reference, position in pairs:
            np.testing.assert_allclose(one, reference, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(one, numerical_grad(func, args, position), rtol=1e-6, atol=1e-8)


def test_the_text_is_the_readable_gradient_compiled_by_numba(emitted):
    model, _, texts, _, _ = emitted
    text = texts["scalar_loop_nb"]
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert "import numba" in imports and not [line for line in imports if "srcgrad" in line]
    assert "scalar_loop_grad = numba.njit(cache=True)(scalar_loop_grad)" in text
    assert "numba.extending.overload(reversed)" in text and "--backend numba" in text
    plain = srcgrad.emit(model.scalar_loop)
    python_def = plain.split("def scalar_loop_grad")[1].split("\n\n\n")[0]
    assert python_def in text  # the same readable function
    assert srcgrad.emit(model.scalar_loop, backend="numba") == text  # deterministic
    helper_text = texts["loop_with_helper_and_break_nb"]
    helpers = [line.split(" = ")[0] for line in helper_text.splitlines() if "numba.njit(cache=True)" in line]
    assert len(helpers) >= 2  # the gradient and its generated helper pair are compiled


def test_second_process_loads_compiled_code_from_numbas_cache(emitted):
    _, _, _, (_, first), (results, second) = emitted
    assert all(misses > 0 for _, misses in first.values()), first
    assert all(hits > 0 and misses == 0 for hits, misses in second.values()), second
    assert len(results) == len(emitted[1])


@pytest.fixture
def refused(tmp_path):
    model = load(tmp_path, "nb_refused", REFUSED)
    yield model
    registry._RULES.pop(registry._key(model.count), None)  # (its nondifferentiable declaration)


def test_global_array_refused_at_emit(refused):
    model = refused
    with pytest.raises(NumbaUnsupported, match="WEIGHTS"):
        srcgrad.emit(model.reads_global_array, backend="numba")
    assert "WEIGHTS" in srcgrad.emit(model.reads_global_array)  # (the Python backend imports it)


def test_plain_python_function_refused_at_emit(refused):
    model = refused
    with pytest.raises(NumbaUnsupported, match="`count`, a Python function") as info:
        srcgrad.emit(model.calls_plain_function, backend="numba")
    assert info.value.location.filename.endswith("nb_refused.py")


def test_unknown_backend_refused():
    with pytest.raises(srcgrad.InvalidArgument, match="backend"):
        srcgrad.emit(lambda x: x, backend="cython")


def test_cli_flag_writes_and_checks_the_numba_module(emitted, tmp_path, capsys, monkeypatch):
    model = emitted[0]
    model_dir = Path(model.__file__).parent
    monkeypatch.chdir(model_dir)
    out = tmp_path / "sl_grad.py"
    assert cli.main(["emit", "nb_model.py:scalar_loop", "--backend", "numba", "-o", str(out)]) == 0
    assert "numba.njit(cache=True)" in out.read_text()
    assert cli.main(["emit", "nb_model.py:scalar_loop", "--backend", "numba", "-o", str(out), "--check"]) == 0
    capsys.readouterr()
    assert cli.main(["emit", "nb_model.py:scalar_loop", "-o", str(out), "--check"]) == 1
    stale = capsys.readouterr().err.splitlines()[0]
    assert "stale" in stale and "--backend" not in stale
    out.write_text(srcgrad.emit(model.scalar_loop))
    assert cli.main(["emit", "nb_model.py:scalar_loop", "--backend", "numba", "-o", str(out), "--check"]) == 1
    assert "--backend numba -o" in capsys.readouterr().err.splitlines()[0]
