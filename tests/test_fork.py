"""Processes (issue 13 item 5): forking while another thread is generating a gradient must not leave the child hung
on srcgrad's locks. The child gets every lock a vanished thread held unlocked (srcgrad/locks.py), and what that
thread was in the middle of is forgotten, so the child generates it again and gets the right numbers.

Each case runs in a subprocess with a timeout (a hang fails the test instead of the suite); inside it, the parent
waits for the forked child with a timeout too and reports a hang as such."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from srcgrad import locks

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")

MODEL = """
import math

def helper(v):
    return v * v * 0.5

def slow_target(x):
    return math.sin(x) * x + helper(x)

def other(x):
    return helper(x) * 3.0 + math.exp(x)
"""

SCRIPT = """
import json, math, os, sys, threading, time, warnings
sys.path.insert(0, {here!r})
warnings.simplefilter("ignore")  # (3.12+: forking a process with threads is deprecated)
import srcgrad
from srcgrad import calls, pipeline
import fork_model as model

inside = threading.Event()
which = {which!r}
original = calls._generate if which == "helper" else pipeline._generate

def slow(*args, **kwargs):
    inside.set()
    time.sleep(3.0)  # the fork happens now, while this thread holds srcgrad's locks
    return original(*args, **kwargs)

if which == "helper":
    calls._generate = slow
else:
    pipeline._generate = slow

shared = srcgrad.grad(model.slow_target)
worker = threading.Thread(target=lambda: shared(0.7))
worker.start()
inside.wait(30)
pid = os.fork()
if pid == 0:
    calls._generate = calls._generate if which != "helper" else original
    pipeline._generate = original if which != "helper" else pipeline._generate
    result = {{"same": shared(0.7), "other": srcgrad.grad(model.other)(0.4)}}
    os.write(1, (json.dumps(result) + "\\n").encode())
    os._exit(0)
deadline = time.time() + {timeout}
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print(json.dumps({{"hung": True}}))
    sys.exit(0)
worker.join()
print(json.dumps({{"parent": shared(0.7), "status": status}}))
"""


def run_case(tmp_path: Path, which: str) -> list[dict]:
    (tmp_path / "fork_model.py").write_text(MODEL)
    script = tmp_path / "fork_case.py"
    script.write_text(SCRIPT.format(here=str(tmp_path), which=which, timeout=60))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRCGRAD_")}
    env.update(PYTHONPATH=str(ROOT), SRCGRAD_CACHE="0")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def expected_same(x: float) -> float:
    import math
    return math.cos(x) * x + math.sin(x) + x


def expected_other(x: float) -> float:
    import math
    return 3.0 * x + math.exp(x)


@pytest.mark.parametrize("which", ["function", "helper"])
def test_a_child_forked_during_generation_generates_its_own(tmp_path, which):
    """``function``: the thread holds the gradient function's lock (the child asks for the same gradient).
    ``helper``: it holds the helpers' lock too (any function calling a helper would wait for it)."""
    lines = run_case(tmp_path, which)
    assert not any(line.get("hung") for line in lines), "the forked child hung on a lock"
    child = next(line for line in lines if "same" in line)
    parent = next(line for line in lines if "parent" in line)
    assert child["same"] == pytest.approx(expected_same(0.7))
    assert child["other"] == pytest.approx(expected_other(0.4))
    assert parent["status"] == 0 and parent["parent"] == pytest.approx(expected_same(0.7))


CHILD_KEEPS_ITS_OWN = """
import json, os, sys
sys.path.insert(0, {root!r})
from srcgrad import locks
lock = locks.rlock()
with lock:
    with lock:
        pid = os.fork()
        if pid == 0:
            held = lock.locked()
    if pid == 0:
        still = lock.locked()
if pid == 0:
    os.write(1, json.dumps([held, still, lock.locked()]).encode())
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_a_lock_the_forking_thread_holds_stays_held_in_the_child(tmp_path):
    script = tmp_path / "own.py"
    script.write_text(CHILD_KEEPS_ITS_OWN.format(root=str(ROOT)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == [True, True, False]  # released by the child's own `with` blocks, no error


def test_fork_safe_lock_behaves_as_a_lock():
    lock = locks.lock()
    assert lock.acquire() and lock.locked()
    assert not lock.acquire(blocking=False)
    lock.release()
    assert not lock.locked()
    seen = []

    def hold():
        with lock:
            seen.append(lock.locked())

    thread = threading.Thread(target=hold)
    thread.start()
    thread.join(10)
    assert seen == [True] and not lock.locked()


def test_every_lock_in_srcgrad_is_fork_safe():
    """A lock made with threading directly would not be reset in a forked child."""
    offenders = []
    for path in sorted((ROOT / "srcgrad").rglob("*.py")):
        if path.name == "locks.py":
            continue
        text = path.read_text()
        for word in ("threading.Lock(", "threading.RLock(", "threading.Condition(", "threading.Semaphore(",
                     "threading.BoundedSemaphore(", "_thread.allocate_lock("):
            if word in text:
                offenders.append(f"{path.name}: {word}")
    assert offenders == [], textwrap.fill(", ".join(offenders))
