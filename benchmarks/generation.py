"""How generation time grows with the length of the function: one command, one markdown table.

Usage: ``python benchmarks/generation.py [--sizes 100,1000,10000]``. For each size N it writes two functions of N
straight-line statements to a module file in a temporary directory (srcgrad reads source, so they must be real
files), imports it, and times the first call of ``srcgrad.grad`` of each (generation plus one call; the on-disk
cache is off, so every run generates):

- scalar chain: ``s = s + math.sin(s * c) * 0.001`` (Python floats and ``math``);
- array chain: ``s = np.tanh(s) * 1.0001`` then ``np.sum(s)`` (a 5-element array).

The gradient is checked against central differences at every size. The table gives seconds per size (wall clock and
the process's CPU time) and the slope of log(seconds) against log(N) fitted over all sizes (1.0 is linear growth,
2.0 quadratic).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import srcgrad  # noqa: E402

CHAINS = {
    "scalar chain": ("import math", "def f(s, c):", "    s = s + math.sin(s * c) * 0.001", "    return s"),
    "array chain": ("import numpy as np", "def f(s):", "    s = np.tanh(s) * 1.0001", "    return np.sum(s)"),
}


def chain_module(kind: str, n: int, where: Path):
    """The module holding the N-statement function ``f`` of chain ``kind``."""
    header, signature, statement, result = CHAINS[kind]
    name = f"chain_{kind.split()[0]}_{n}"
    path = where / f"{name}.py"
    path.write_text("\n".join([header, "", "", signature, *[statement] * n, result]) + "\n")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def arguments(kind: str) -> tuple:
    return (0.5, 1.3) if kind == "scalar chain" else (np.linspace(0.0, 1.0, 5),)


def central_difference(f, args: tuple, eps: float = 1e-6):
    x = args[0]
    if isinstance(x, float):
        return (f(x + eps, *args[1:]) - f(x - eps, *args[1:])) / (2 * eps)
    out = np.zeros_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = eps
        out[i] = (f(x + step, *args[1:]) - f(x - step, *args[1:])) / (2 * eps)
    return out


def measure(kind: str, n: int, where: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds of the first gradient call (the gradient is checked after)."""
    f = chain_module(kind, n, where).f
    args = arguments(kind)
    start, cpu = time.perf_counter(), time.process_time()
    gradient = srcgrad.grad(f)(*args)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    np.testing.assert_allclose(gradient, central_difference(f, args), rtol=1e-5, atol=1e-8)
    return seconds, cpu


def slope(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) against log(N)."""
    xs, ys = np.log(sizes), np.log(seconds)
    return float(np.polyfit(xs, ys, 1)[0])


def table(results: dict[str, list[tuple[float, float]]], sizes: list[int]) -> str:
    lines = ["| chain | clock | " + " | ".join(f"N = {n:,}" for n in sizes) + " | log-log slope |",
             "|---|---|" + "---:|" * (len(sizes) + 1)]
    for kind, measured in results.items():
        for clock, column in (("wall", 0), ("CPU", 1)):
            seconds = [m[column] for m in measured]
            cells = " | ".join(f"{s:.3f} s" for s in seconds)
            lines.append(f"| {kind} | {clock} | {cells} | {slope(sizes, seconds):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated statement counts")
    options = parser.parse_args(argv)
    sizes = [int(n) for n in options.sizes.split(",")]
    srcgrad.cache.disable()
    limit = sys.getrecursionlimit()
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="srcgrad-generation-") as tmp:
        for kind in CHAINS:
            results[kind] = []
            for n in sizes:
                results[kind].append(measure(kind, n, Path(tmp)))
                wall, cpu = results[kind][-1]
                print(f"{kind}, N = {n}: {wall:.3f} s ({cpu:.3f} s CPU)", file=sys.stderr)
    assert sys.getrecursionlimit() == limit
    print(table(results, sizes))
    print(f"\nPython {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the end; seconds of the first call of srcgrad.grad (generation and one "
          f"call), on-disk cache off; wall clock and this process's CPU time (on a shared machine the CPU time "
          f"is srcgrad's own work); slope fitted over N = {', '.join(map(str, sizes))}.")


if __name__ == "__main__":
    main()
