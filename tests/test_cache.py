"""The on-disk cache (srcgrad/cache.py): hits give the function a fresh generation gives; every change that can
change the generated text is a miss; corrupt, truncated and tampered entries are regenerated, never executed;
concurrent processes writing one entry leave a complete one. Timing lives in benchmarks/run.py."""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad import cache

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count()
# Subprocesses here import numpy and srcgrad and generate code: on a machine shared by many busy processes that can
# take minutes. The limit only turns a hang into a failure; no test depends on how long anything takes.
SUBPROCESS_TIMEOUT = 900


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("SRCGRAD_CACHE_DIR", str(where))
    monkeypatch.delenv("SRCGRAD_CACHE", raising=False)
    monkeypatch.delenv("SRCGRAD_DUMP", raising=False)
    cache.reset()
    yield where
    cache.reset()


def load_module(path: Path, text: str, name: str | None = None):
    """Write ``text`` to ``path`` and import it under a fresh module name (kept in sys.modules, as imports are)."""
    path.write_text(textwrap.dedent(text))
    # A rewrite within the same second and of the same size would otherwise import the first text's bytecode.
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    name = name or f"cache_case_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def counts_since(before: dict) -> dict:
    now = cache.stats()
    return {k: now[k] - before[k] for k in now if now[k] != before[k]}


def entries(where: Path) -> list[Path]:
    return sorted(where.glob(f"*{cache.SUFFIX}")) if where.is_dir() else []


MODEL = """
import math
import numpy as np

def scalar(x):
    y = 5 * x**2 / (1 + math.exp(x))
    return y

def loop(x):
    s = 0.0
    for i in range(20):
        s = s + math.sin(x * s + i) * math.cos(x)
    return s

def mlp(W1, W2, X, Y):
    H = np.tanh(X @ W1)
    return np.mean((H @ W2 - Y) ** 2)

def newton(a):
    w = 1.0
    while abs(w * np.exp(w) - a) > 1e-12:
        w = w - (w * np.exp(w) - a) / (np.exp(w) * (1 + w))
    return w

def reduce(x, k):
    return np.sum(np.sort(x, axis=-1)[..., :k] ** 2, axis=0).mean()
"""


def model_cases(rng):
    W1, W2 = rng.normal(size=(4, 5)), rng.normal(size=(5, 2))
    X, Y = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    return [
        ("scalar", {}, (1.5,)),
        ("scalar", {}, (np.float64(0.5),)),  # another kind: another entry
        ("loop", {}, (0.7,)),
        ("mlp", {"wrt": ("W1", "W2")}, (W1, W2, X, Y)),
        ("newton", {}, (2.0,)),
        ("reduce", {}, (rng.normal(size=(3, 4)), 2)),
    ]


def assert_same_values(got, expected):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            assert_same_values(g, e)
    else:
        assert type(got) is type(expected)
        np.testing.assert_array_equal(got, expected)


def assert_same_function(a, b):
    """Two compiled gradient functions are the same code with the same closure."""
    ca, cb = a.__code__, b.__code__
    for field in ("co_code", "co_consts", "co_names", "co_varnames", "co_freevars", "co_filename", "co_name",
                  "co_firstlineno"):
        assert getattr(ca, field) == getattr(cb, field), field
    assert [c.cell_contents for c in a.__closure__ or ()] == [c.cell_contents for c in b.__closure__ or ()]
    assert a.__globals__ is b.__globals__


@pytest.mark.parametrize("mode", ["grad", "value_and_grad", "vjp"])
def test_a_hit_is_the_function_a_fresh_generation_makes(cache_dir, tmp_path, rng, mode):
    model = load_module(tmp_path / "model.py", MODEL)
    make = getattr(srcgrad, mode)
    for name, options, args in model_cases(rng):
        call_args = args + (1.0,) if mode == "vjp" else args
        before = cache.stats()
        fresh = make(getattr(model, name), **options)
        expected = fresh(*call_args)
        assert counts_since(before) == {"misses": 1, "stores": 1}, name
        before = cache.stats()
        loaded = make(getattr(model, name), **options)
        got = loaded(*call_args)
        assert counts_since(before) == {"hits": 1}, name
        assert_same_values(got, expected)
        assert srcgrad.source(loaded) == srcgrad.source(fresh)
        assert inspect.getsource(loaded) == srcgrad.source(loaded)  # linecache registration
        assert_same_function(loaded.__wrapped__, fresh.__wrapped__)
    assert len(entries(cache_dir)) == 6


def test_disabled_cache_writes_nothing(cache_dir, tmp_path, monkeypatch):
    model = load_module(tmp_path / "model.py", MODEL)
    monkeypatch.setenv("SRCGRAD_CACHE", "0")
    assert srcgrad.grad(model.scalar)(1.5) == pytest.approx(1.0584852713041004)
    assert cache.directory() is None and not cache_dir.exists()
    monkeypatch.delenv("SRCGRAD_CACHE")
    cache.disable()  # the Python switch wins over the environment
    srcgrad.grad(model.loop)(0.7)
    assert not cache_dir.exists()
    elsewhere = tmp_path / "elsewhere"
    cache.enable(elsewhere)
    srcgrad.grad(model.loop)(0.7)
    assert len(entries(elsewhere)) == 1 and not cache_dir.exists()
    cache.reset()
    srcgrad.grad(model.loop)(0.7)
    assert len(entries(cache_dir)) == 1
    assert cache.clear() == 1 and entries(cache_dir) == []


def test_source_change_is_a_miss(cache_dir, tmp_path):
    path = tmp_path / "model.py"
    first = load_module(path, "def f(x):\n    return x ** 3\n")
    assert srcgrad.grad(first.f)(2.0) == 12.0
    second = load_module(path, "def f(x):\n    return x ** 4\n")  # same file, same line, same name
    before = cache.stats()
    assert srcgrad.grad(second.f)(2.0) == 32.0
    assert counts_since(before) == {"misses": 1, "stores": 1}
    assert len(entries(cache_dir)) == 2


def test_srcgrad_version_change_is_a_miss(cache_dir, tmp_path, monkeypatch):
    model = load_module(tmp_path / "model.py", MODEL)
    srcgrad.grad(model.scalar)(1.5)
    monkeypatch.setattr(srcgrad.version, "__version__", "99.0.0")
    monkeypatch.setattr(cache, "_environment_key", None)
    before = cache.stats()
    assert srcgrad.grad(model.scalar)(1.5) == pytest.approx(1.0584852713041004)
    assert counts_since(before) == {"misses": 1, "stores": 1}
    monkeypatch.setattr(srcgrad.version, "__version__", srcgrad.__version__)
    monkeypatch.setattr(cache, "_environment_key", None)
    before = cache.stats()
    srcgrad.grad(model.scalar)(1.5)
    assert counts_since(before) == {"hits": 1}


RULES = """
import numpy as np
import srcgrad

def soft(x):
    return np.logaddexp(0.0, x)

@srcgrad.defgrad(soft)
def soft_grad(g, ans, x):
    return g / (1.0 + np.exp(-x))

def sharp(x):
    return np.maximum(x, 0.0)

@srcgrad.defgrad(sharp)
def sharp_grad(g, ans, x):
    mask = x > 0                       # two statements: called by the generated code, not inlined
    return g * mask
"""

USER = """
import numpy as np
from {rules} import sharp, soft

def f(x):
    return np.sum(soft(x) + 3.0 * sharp(x))
"""


def test_rule_change_is_stale(cache_dir, tmp_path):
    rules = load_module(tmp_path / "rules_a.py", RULES)
    user = load_module(tmp_path / "user_a.py", USER.format(rules=rules.__name__))
    x = np.array([-1.0, 0.5, 2.0])
    right = 1 / (1 + np.exp(-x)) + 3.0 * (x > 0)
    np.testing.assert_allclose(srcgrad.grad(user.f)(x), right)
    before = cache.stats()
    np.testing.assert_allclose(srcgrad.grad(user.f)(x), right)
    assert counts_since(before) == {"hits": 1}  # the called rule (sharp_grad) is rebound by module and name

    @srcgrad.defgrad(rules.soft)
    def soft_grad(g, ans, x):  # a different rule for the same primitive
        return 2.0 * g / (1.0 + np.exp(-x))

    before = cache.stats()
    np.testing.assert_allclose(srcgrad.grad(user.f)(x), right + 1 / (1 + np.exp(-x)))
    assert counts_since(before) == {"stale": 1, "stores": 1}
    srcgrad.defgrad(rules.soft)(rules.soft_grad)  # the first rule again
    before = cache.stats()
    np.testing.assert_allclose(srcgrad.grad(user.f)(x), right)
    assert counts_since(before) == {"stale": 1, "stores": 1}


def test_rebinding_a_global_is_stale(cache_dir, tmp_path):
    model = load_module(tmp_path / "model.py", """
        import numpy as np
        act = np.tanh
        AXIS = None

        def f(x):
            return np.sum(act(x) ** 2, axis=AXIS).sum()
    """)
    x = np.array([[0.1, -0.4], [0.3, 0.9]])
    np.testing.assert_allclose(srcgrad.grad(model.f)(x), 2 * np.tanh(x) / np.cosh(x) ** 2)
    model.act = np.sin
    before = cache.stats()
    np.testing.assert_allclose(srcgrad.grad(model.f)(x), 2 * np.sin(x) * np.cos(x))
    assert counts_since(before) == {"stale": 1, "stores": 1}
    model.AXIS = 0
    before = cache.stats()
    np.testing.assert_allclose(srcgrad.grad(model.f)(x), 2 * np.sin(x) * np.cos(x))
    assert counts_since(before) == {"stale": 1, "stores": 1}


def test_helpers_and_dumps_are_not_cached(cache_dir, tmp_path, monkeypatch, capsys):
    model = load_module(tmp_path / "model.py", """
        import math

        def helper(x):
            return math.sin(x) * x

        def f(x):
            return helper(x) ** 2
    """)
    before = cache.stats()
    expected = 2 * (math.sin(1.3) * 1.3) * (math.cos(1.3) * 1.3 + math.sin(1.3))
    assert srcgrad.grad(model.f)(1.3) == pytest.approx(expected)
    assert counts_since(before) == {"misses": 1, "uncacheable": 1}
    assert entries(cache_dir) == []
    scalar = load_module(tmp_path / "scalar.py", MODEL)
    srcgrad.grad(scalar.scalar)(1.5)
    monkeypatch.setenv("SRCGRAD_DUMP", "lower")
    srcgrad.grad(scalar.scalar)(1.5)
    assert "def scalar(x):" in capsys.readouterr().err  # the pipeline ran and printed its IR


def _rewrite(path: Path, body: bytes, rehash: bool) -> None:
    header = path.read_bytes().split(b"\n", 1)[0]
    if rehash:
        header = f"{cache._MAGIC} {cache.FORMAT} {hashlib.sha256(body).hexdigest()}".encode()
    path.write_bytes(header + b"\n" + body)


def _corrupt(path: Path, how: str, other: Path) -> None:
    data = path.read_bytes()
    header, body = data.split(b"\n", 1)
    entry = json.loads(body)
    payload = "import builtins\nbuiltins.srcgrad_cache_pwned = True\n"
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header only":
        path.write_bytes(header)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(os.urandom(300))
    elif how == "flipped byte":
        i = len(header) + 1 + len(body) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    elif how == "tampered source":  # new text, old hash
        entry["source"] = payload + entry["source"]
        _rewrite(path, json.dumps(entry).encode(), rehash=False)
    elif how == "another function's entry":  # a valid entry, but of another key
        path.write_bytes(other.read_bytes())
    elif how == "unknown bound module":  # rehashed: well formed, but a name cannot be rebound (never imported)
        entry["bound"] = [["np", ["module", "srcgrad_cache_no_such_module"]]]
        _rewrite(path, json.dumps(entry).encode(), rehash=True)
    elif how == "bad identifier":  # rehashed: a bound name that would inject code into the scope header
        entry["bound"] = [["np=__import__('os')", ["module", "numpy"]]]
        _rewrite(path, json.dumps(entry).encode(), rehash=True)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["truncated", "header only", "empty", "garbage", "flipped byte", "tampered source",
                                 "another function's entry", "unknown bound module", "bad identifier"])
def test_corrupt_entries_are_regenerated_never_executed(cache_dir, tmp_path, how):
    model = load_module(tmp_path / "model.py", MODEL)
    x = np.float64(0.5)
    expected = srcgrad.grad(model.scalar)(x)
    srcgrad.grad(model.loop)(0.7)
    marker = f'"function":"{model.__name__}.scalar"'
    (target,) = [p for p in entries(cache_dir) if marker in p.read_text("latin-1")]
    (other,) = [p for p in entries(cache_dir) if p != target]
    _corrupt(target, how, other)
    before = cache.stats()
    np.testing.assert_array_equal(srcgrad.grad(model.scalar)(x), expected)
    stale = how == "unknown bound module"
    assert counts_since(before) == {"stale" if stale else "corrupt": 1, "stores": 1}
    assert not hasattr(builtins, "srcgrad_cache_pwned")
    before = cache.stats()
    np.testing.assert_array_equal(srcgrad.grad(model.scalar)(x), expected)  # the rewritten entry verifies
    assert counts_since(before) == {"hits": 1}


def test_an_unusable_directory_only_costs_the_regeneration(cache_dir, tmp_path, monkeypatch):
    model = load_module(tmp_path / "model.py", MODEL)
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SRCGRAD_CACHE_DIR", str(blocker / "cache"))
    before = cache.stats()
    assert srcgrad.grad(model.scalar)(1.5) == pytest.approx(1.0584852713041004)
    assert counts_since(before) == {"errors": 2}  # reading, then writing


def _run(script: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                          timeout=SUBPROCESS_TIMEOUT, check=True)


COLD = """
import inspect, json, sys, time
sys.path.insert(0, {here!r})
import numpy as np
import srcgrad
start = time.perf_counter()
import cold_model as model
rng = np.random.default_rng(0)
W1, W2 = rng.normal(size=(4, 5)), rng.normal(size=(5, 2))
X, Y = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
grads = [srcgrad.grad(model.scalar), srcgrad.grad(model.loop), srcgrad.grad(model.mlp, wrt=("W1", "W2")),
         srcgrad.value_and_grad(model.newton)]
results = [grads[0](1.5), grads[1](0.7), [w.tolist() for w in grads[2](W1, W2, X, Y)], list(grads[3](2.0))]
elapsed = time.perf_counter() - start
print(json.dumps({{
    "results": results,
    "sources": [srcgrad.source(g) for g in grads],
    "getsource": [inspect.getsource(g) == srcgrad.source(g) for g in grads],
    "code": [g.__wrapped__.__code__.co_code.hex() for g in grads],
    "stats": srcgrad.cache.stats(),
    "seconds": elapsed,
}}))
"""


def test_a_cold_process_loads_what_another_generated(tmp_path):
    """Correctness only (timing: benchmarks/run.py): a second process gets every gradient from the cache, the same
    numbers, text and bytecode as the process that generated them and as a process without the cache; the entries
    are byte-identical across processes and hash seeds."""
    (tmp_path / "cold_model.py").write_text(MODEL)
    script = tmp_path / "cold.py"
    script.write_text(COLD.format(here=str(tmp_path)))
    base = {k: v for k, v in os.environ.items() if not k.startswith("SRCGRAD_")}
    base["PYTHONPATH"] = str(ROOT)
    runs = {}
    for name, seed, where in [("first", "1", "a"), ("second", "2", "a"), ("other seed", "3", "b"),
                              ("off", "4", "a")]:
        env = dict(base, PYTHONHASHSEED=seed, SRCGRAD_CACHE_DIR=str(tmp_path / where))
        if name == "off":
            env["SRCGRAD_CACHE"] = "0"
        runs[name] = json.loads(_run(script, env).stdout)
    assert runs["first"]["stats"]["stores"] == 4 and runs["first"]["stats"]["hits"] == 0
    assert runs["second"]["stats"]["hits"] == 4 and runs["second"]["stats"]["misses"] == 0
    assert runs["off"]["stats"]["hits"] == runs["off"]["stats"]["stores"] == 0
    for name in ("second", "other seed", "off"):
        for key in ("results", "sources", "code", "getsource"):
            assert runs[name][key] == runs["first"][key], (name, key)
    assert all(runs["second"]["getsource"])
    made_a = {p.name: p.read_bytes() for p in entries(tmp_path / "a")}
    made_b = {p.name: p.read_bytes() for p in entries(tmp_path / "b")}
    assert len(made_a) == 4 and made_a == made_b


RULE_FILE_A = """
import numpy as np
import srcgrad

def soft(x):
    return np.logaddexp(0.0, x)

@srcgrad.defgrad(soft)
def soft_grad(g, ans, x):
    return g / (1.0 + np.exp(-x))
"""

RULE_USER = """
import sys
sys.path.insert(0, {here!r})
import json
import numpy as np
import srcgrad
from rule_lib import soft

def f(x):
    return np.sum(soft(x) * x)

print(json.dumps({{"grad": srcgrad.grad(f)(np.array([-1.0, 0.5, 2.0])).tolist(), "stats": srcgrad.cache.stats()}}))
"""


def test_a_rule_edited_between_runs_is_stale(tmp_path):
    lib = tmp_path / "rule_lib.py"
    lib.write_text(RULE_FILE_A)
    script = tmp_path / "rule_user.py"
    script.write_text(RULE_USER.format(here=str(tmp_path)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRCGRAD_")}
    env.update(PYTHONPATH=str(ROOT), SRCGRAD_CACHE_DIR=str(tmp_path / "cache"), PYTHONDONTWRITEBYTECODE="1")
    x = np.array([-1.0, 0.5, 2.0])
    sig = 1 / (1 + np.exp(-x))
    first = json.loads(_run(script, env).stdout)
    np.testing.assert_allclose(first["grad"], sig * x + np.logaddexp(0.0, x))
    again = json.loads(_run(script, env).stdout)
    assert again["stats"]["hits"] == 1 and again["grad"] == first["grad"]
    lib.write_text(RULE_FILE_A.replace("return g / (1.0 + np.exp(-x))", "return 0.5 * g / (1.0 + np.exp(-x))"))
    edited = json.loads(_run(script, env).stdout)
    assert edited["stats"]["stale"] == 1 and edited["stats"]["stores"] == 1
    np.testing.assert_allclose(edited["grad"], 0.5 * sig * x + np.logaddexp(0.0, x))


WRITER = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
import srcgrad
from srcgrad import cache, pipeline
import race_model as model

transform = srcgrad.grad(model.loop).__srcgrad_transform__
kinds = {{"x": "S"}}
slot = cache.Slot.open(transform.pf, transform.wrt, transform.mode, kinds, transform.as_tuple)
generated = pipeline._generate(transform.pf, transform.wrt, transform.mode, kinds, transform.as_tuple)
expected = generated.function(0.7)
# Start together, however long each took to import and generate: the rounds below must overlap to race.
here = Path({here!r})
(here / f"ready-{{os.getpid()}}").touch()
while not (here / "go").exists():  # made by the test once every writer is ready
    time.sleep(0.01)
for _ in range(int(sys.argv[1])):
    slot.store(generated)
    loaded = slot.load()
    assert loaded is not None and loaded.source == generated.source and loaded.function(0.7) == expected
print(json.dumps(cache.stats()))
"""


def _start_together(procs: list, where: Path) -> None:
    """Let the writers go once each has said it is ready (a file ``ready-<pid>``); one that exits before that
    fails the test with what it printed."""
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not all((where / f"ready-{p.pid}").exists() for p in procs):
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"a writer exited before the start: {p.communicate()[1]}")
        assert time.monotonic() < deadline, "the writers never got ready"
        time.sleep(0.01)
    (where / "go").touch()


def test_two_processes_writing_one_entry(tmp_path):
    (tmp_path / "race_model.py").write_text(MODEL)
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(here=str(tmp_path)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRCGRAD_")}
    env.update(PYTHONPATH=str(ROOT), SRCGRAD_CACHE_DIR=str(tmp_path / "cache"))
    rounds = 150
    procs = [subprocess.Popen([sys.executable, str(script), str(rounds)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        _start_together(procs, tmp_path)
        outputs = [p.communicate(timeout=SUBPROCESS_TIMEOUT) for p in procs]
    finally:
        for p in procs:  # (writers left waiting when the test failed)
            if p.poll() is None:
                p.kill()
                p.communicate()
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        counts = json.loads(out)
        assert counts["stores"] == rounds and counts["hits"] == rounds
        assert counts["corrupt"] == counts["errors"] == counts["stale"] == 0
    assert len(entries(tmp_path / "cache")) == 1
    assert list((tmp_path / "cache").glob("*.tmp")) == []
    try:
        cache.enable(tmp_path / "cache")
        model = load_module(tmp_path / "race_model.py", MODEL, name="race_model")
        before = cache.stats()
        srcgrad.grad(model.loop)(0.7)
        assert counts_since(before) == {"hits": 1}
    finally:
        cache.reset()
        sys.modules.pop("race_model", None)
