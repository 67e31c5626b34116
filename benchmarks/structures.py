"""Structured parameters cost what flat ones cost, plus O(number of leaves) per call: one markdown table.

Usage: ``python benchmarks/structures.py [--quick] [--threads N]``. The MLP of ``cases.py`` (tanh hidden layer,
linear output, mean squared error), differentiated by ``srcgrad.value_and_grad`` with respect to its four parameter
arrays, three ways: flat arguments (``wrt=("W1", "b1", "W2", "b2")``), a dict of parameters, and a list of ``(W,
b)`` layers (a loop over them, which srcgrad unrolls). Two sizes: the benchmark MLP (64x100->200->10), and a tiny
one (4x3->5->1) where the per-call overhead of structures is as visible as it can be. Gradients are checked against
the flat ones. The machine is shared and noisy, so the three are timed in interleaved rounds (flat, dict, list,
flat, ...): the table gives the median microseconds per call over the rounds, and the median over the rounds of the
ratio to flat within the round (the target for the benchmark MLP: <= 1.05). ``--threads 1`` is advised (see
benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import srcgrad  # noqa: E402
from benchmarks.cases import mlp, mlp_args  # noqa: E402
from benchmarks.timing import calibrate  # noqa: E402


def mlp_dict(params, X, Y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - Y) ** 2)


def mlp_layers(layers, X, Y):
    h = X
    for i, (W, b) in enumerate(layers):
        h = h @ W + b
        if i < len(layers) - 1:
            h = np.tanh(h)
    return np.mean((h - Y) ** 2)


def variants(args: tuple) -> list[tuple[str, object, tuple]]:
    W1, b1, W2, b2, X, Y = args
    return [
        ("flat arguments", srcgrad.value_and_grad(mlp, wrt=("W1", "b1", "W2", "b2")), args),
        ("dict of parameters", srcgrad.value_and_grad(mlp_dict), ({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, X, Y)),
        ("list of (W, b) layers", srcgrad.value_and_grad(mlp_layers), ([(W1, b1), (W2, b2)], X, Y)),
    ]


def flat_gradients(name: str, grads: object) -> list[np.ndarray]:
    if name == "flat arguments":
        return list(grads)
    if name == "dict of parameters":
        return [grads[k] for k in ("W1", "b1", "W2", "b2")]
    return [g for layer in grads for g in layer]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds of at least 0.05 s (default: 15 of 0.1 s)")
    parser.add_argument("--threads", type=int, help="limit BLAS/OpenMP threads, e.g. 1 on a shared machine")
    options = parser.parse_args(argv)
    if options.threads is not None:
        from benchmarks.run import limit_threads

        limit_threads(options.threads)  # (restarts this script with the thread variables set)
    target, rounds = (0.05, 5) if options.quick else (0.1, 15)
    lines = ["| MLP | parameters | µs per call | ratio to flat |", "|---|---|---:|---:|"]
    worst = 0.0
    for label, args in (("64x100->200->10", mlp_args()), ("4x3->5->1", mlp_args(4, 3, 5, 1))):
        cases = variants(args)
        reference = None
        for name, fn, call_args in cases:
            got = flat_gradients(name, fn(*call_args)[1])
            reference = reference or got
            for a, b in zip(got, reference):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        number = calibrate(cases[0][1], cases[0][2], target)
        times: list[list[float]] = [[] for _ in cases]
        for _ in range(rounds):
            for i, (_, fn, call_args) in enumerate(cases):
                timer = timeit.Timer("fn(*args)", globals={"fn": fn, "args": call_args})
                times[i].append(timer.timeit(number) / number)
        for i, (name, _, _) in enumerate(cases):
            ratio = statistics.median(t / f for t, f in zip(times[i], times[0]))
            if label.startswith("64"):
                worst = max(worst, ratio)
            lines.append(f"| {label} | {name} | {statistics.median(times[i]) * 1e6:.1f} | {ratio:.3f} |")
    print("\n".join(lines))
    print(f"\nworst ratio on the benchmark MLP: {worst:.3f} (target <= 1.05)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
