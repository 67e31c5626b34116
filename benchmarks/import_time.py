"""Cold start: what ``import srcgrad`` costs on top of numpy's own import; prints a markdown table (or JSON).

Usage: ``python benchmarks/import_time.py [--runs N] [--json]``

Two measures, each the median over ``N`` fresh processes run in alternation (a shared machine is noisy, so medians),
each as wall time and as CPU time (user + system: steadier when other processes share the cores):

- ``process``: the time of ``python -c "import srcgrad"`` minus that of ``python -c "import numpy"``
  (interpreter start-up cancels out);
- ``in process``: the clock around ``import srcgrad`` in a process that imported numpy just before.

Also listed: the heavy optional libraries (scipy, dask, numba, and srcgrad's modules of those backends) that
``import srcgrad`` loaded — there should be none. The ``.pyc`` files follow the environment: with
``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``, every module of srcgrad is compiled from source at each
import (and so are its records' methods, srcgrad/records.py); run ``python -m compileall -q srcgrad`` and
``python -c "import srcgrad"`` first (without that variable) to time the import users get. The report says which it
was.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "dask", "numba", "jax", "torch", "srcgrad.numba_backend", "srcgrad.numba_runtime",
         "srcgrad.scipy_runtime")
IN_PROCESS = ("import time, sys; import numpy; t, c = time.perf_counter(), time.process_time(); import srcgrad; "
              "print(time.perf_counter() - t, time.process_time() - c); "
              "print(','.join(sorted(m for m in {heavy!r} if m in sys.modules)))")


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # (BLAS threads' CPU time aside)
        env[name] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _process(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -c code``."""
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.perf_counter() - start, _children_cpu() - cpu


def _in_process(env: dict[str, str]) -> tuple[float, float, list[str]]:
    done = subprocess.run([sys.executable, "-c", IN_PROCESS.format(heavy=HEAVY)], env=env, check=True,
                          capture_output=True, text=True)
    times, loaded = (done.stdout + "\n").split("\n")[:2]
    wall, cpu = map(float, times.split())
    return wall, cpu, [name for name in loaded.split(",") if name]


def compiled_bytecode() -> bool:
    """Whether srcgrad's modules have up-to-date ``.pyc`` files and its records their stored methods (else each
    import compiles them)."""
    import importlib.util

    for source in sorted((ROOT / "srcgrad").rglob("*.py")):
        cached = Path(importlib.util.cache_from_source(str(source)))
        if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
            return False
    records = Path(importlib.util.cache_from_source(str(ROOT / "srcgrad" / "records.py")))
    return records.with_suffix(".methods").exists()


def _ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


def measure(runs: int) -> dict:
    env = _environment()
    _process("import srcgrad", env)  # (the file system's caches warm)
    numpy_times, srcgrad_times, inside, loaded = [], [], [], set()
    for _ in range(runs):
        numpy_times.append(_process("import numpy", env))
        srcgrad_times.append(_process("import srcgrad", env))
        wall, cpu, heavy = _in_process(env)
        inside.append((wall, cpu))
        loaded.update(heavy)
    result: dict = {"runs": runs, "pyc": compiled_bytecode()}
    for i, clock in enumerate(("wall", "cpu")):
        numpy_ms, srcgrad_ms = _ms([t[i] for t in numpy_times]), _ms([t[i] for t in srcgrad_times])
        result[clock] = {"numpy_process_ms": numpy_ms, "srcgrad_process_ms": srcgrad_ms,
                         "above_numpy_process_ms": srcgrad_ms - numpy_ms,
                         "above_numpy_in_process_ms": _ms([t[i] for t in inside])}
    result["heavy_modules_loaded"] = sorted(loaded)
    return result


def markdown(result: dict) -> str:
    pyc = "compiled .pyc files" if result["pyc"] else "no up-to-date .pyc files (compiled from source each time)"
    wall, cpu = result["wall"], result["cpu"]

    def row(label: str, key: str) -> str:
        return f"| {label} | {wall[key]:.1f} | {cpu[key]:.1f} |"

    return "\n".join([
        f"**import srcgrad** (median of {result['runs']} fresh processes, {pyc})",
        "",
        "| measure | wall ms | CPU ms |",
        "|---|---:|---:|",
        row("`python -c 'import numpy'`", "numpy_process_ms"),
        row("`python -c 'import srcgrad'`", "srcgrad_process_ms"),
        row("srcgrad above numpy (whole processes)", "above_numpy_process_ms"),
        row("srcgrad above numpy (in process, after `import numpy`)", "above_numpy_in_process_ms"),
        "",
        f"Heavy modules loaded by `import srcgrad`: {', '.join(result['heavy_modules_loaded']) or 'none'}.",
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    print(json.dumps(result) if args.json else markdown(result))


if __name__ == "__main__":
    main()
