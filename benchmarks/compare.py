"""Compare srcgrad's gradient time in two checkouts, interleaved, against the hand-written gradients.

Usage: ``python benchmarks/compare.py --base /path/to/other/checkout [--rounds 5] [--only TEXT]``

Each round runs every case once in a fresh process per checkout, alternating (base, then this checkout), so load
on a shared machine falls on both alike; each cell is the median over the rounds of the per-process medians, and
``(×r)`` is the median of the per-round ratios to the hand-written gradient measured in the same process. The last
line is the geometric mean of the ratios. Cases the base checkout does not have show ``-``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in each checkout's own process: times the primal, the hand-written and srcgrad's gradient of the named cases.
MEASURE = """
import json, sys
sys.path.insert(0, '.')
import srcgrad
from benchmarks import cases
from benchmarks.timing import median_time
found = {}
for case in cases.CASES:
    if case.big or case.name not in sys.argv[1:]:
        continue
    args = case.args()
    grad = srcgrad.grad(case.fn, wrt=case.wrt_spec)
    grad(*args)
    found[case.name] = [median_time(f, args, 0.05, 5) for f in (case.fn, case.grad, grad)]
print(json.dumps(found))
"""


def measure(checkout: Path, names: list[str]) -> dict[str, list[float]]:
    env = dict(os.environ, PYTHONPATH=str(checkout), SRCGRAD_CACHE="0", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", MEASURE, *names], cwd=checkout, env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{checkout}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def cell(runs: list[list[float]]) -> str:
    if not runs:
        return "-"
    seconds = statistics.median(r[2] for r in runs)
    ratio = statistics.median(r[2] / r[1] for r in runs)
    return f"{seconds * 1e6:.3g} µs (×{ratio:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (e.g. the main branch)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", help="only the cases whose name contains this text")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.cases import CASES

    names = [c.name for c in CASES if not c.big and (options.only is None or options.only in c.name)]
    checkouts = {"base": options.base.resolve(), "this": ROOT}
    runs: dict[tuple[str, str], list[list[float]]] = {}
    for _ in range(options.rounds):
        for label, checkout in checkouts.items():
            for name, times in measure(checkout, names).items():
                runs.setdefault((label, name), []).append(times)
    print("| case | hand-written | srcgrad (base) | srcgrad (this) |\n|---|---|---|---|")
    for name in names:
        mine = runs.get(("this", name), [])
        hand = statistics.median(r[1] for r in mine) if mine else math.nan
        print(f"| {name} | {hand * 1e6:.3g} µs | {cell(runs.get(('base', name), []))} | {cell(mine)} |")
    for label in checkouts:
        ratios = [statistics.median(r[2] / r[1] for r in runs[(label, n)]) for n in names if (label, n) in runs]
        if ratios:
            mean = math.exp(statistics.fmean(math.log(r) for r in ratios))
            print(f"\n{label}: geometric mean ×{mean:.2f} over {len(ratios)} cases, largest ×{max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
