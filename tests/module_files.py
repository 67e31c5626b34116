"""Test helpers: write a module file and import it, edit it afterwards (as an editor or a notebook user would); run
functions of an emitted module in a process where srcgrad cannot be imported."""

import importlib.util
import itertools
import os
import pickle
import subprocess
import sys
from pathlib import Path

_names = itertools.count()
RUNNER = Path(__file__).parent / "standalone_runner.py"


def load(path: Path, text: str):
    """Write ``text`` to ``path`` and import it as a new module."""
    path.write_text(text)
    # A rewrite within the same second and of the same size would otherwise import the first text's bytecode.
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    name = f"srcgrad_test_module_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def edit(path: Path, text: str) -> None:
    """Change the file under an imported module (with a later modification time, as an editor would)."""
    before = path.stat().st_mtime
    path.write_text(text)
    os.utime(path, (before + 5, before + 5))


def run_blocked(directory: Path, module: str, calls: list) -> list:
    """Call functions of ``module`` (a file in ``directory``) in a fresh process, run in ``directory``, where srcgrad
    cannot be imported (tests/standalone_runner.py); their results or the exceptions they raised."""
    calls_path, results_path = directory / "calls.pkl", directory / "results.pkl"
    calls_path.write_bytes(pickle.dumps(calls))
    done = subprocess.run([sys.executable, str(RUNNER), str(directory), module, str(calls_path), str(results_path)],
                          capture_output=True, text=True, timeout=120, cwd=directory)
    assert done.returncode == 0, done.stderr
    return pickle.loads(results_path.read_bytes())
