"""srcgrad's gradient over Dask arrays against a hand-written Dask gradient (dask-glm's formula), issue 20 item 5.

A logistic-regression loss over ``rows`` x 10 float64 data held by a LocalCluster (persisted: the time is the
gradient's, not the data's generation), for 1 and 2 worker processes; each time is the best of ``--repeat`` passes
(graph building included: srcgrad's generated code builds it at each call, as the hand-written function does).

    python benchmarks/dask_logreg.py [--rows 1000000 10000000] [--workers 1 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

import srcgrad


def loss(w, X, y):
    margins = X @ w
    return np.mean(np.logaddexp(0.0, margins) - y * margins)


def handwritten(w, X, y):
    """dask-glm's logistic gradient, X.T (sigmoid(X w) - y), divided by n (the loss is a mean)."""
    return X.T @ (1.0 / (1.0 + da.exp(-(X @ w))) - y) / X.shape[0]


def best_time(client: Client, make, repeat: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = client.compute(make()).result()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(rows: int, workers: int, repeat: int) -> tuple[float, float]:
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        X = da.random.default_rng(0).normal(size=(rows, 10), chunks=(250_000, 10))
        y = (da.random.default_rng(1).random(size=rows, chunks=250_000) < 0.5).astype(float)
        X, y = client.persist([X, y])
        wait([X, y])
        w = np.linspace(-0.5, 0.5, 10)
        grad = srcgrad.grad(loss)
        t_src, g_src = best_time(client, lambda: grad(w, X, y), repeat)
        t_hand, g_hand = best_time(client, lambda: handwritten(w, X, y), repeat)
        np.testing.assert_allclose(g_src, g_hand, rtol=1e-9, atol=1e-15)
        return t_src, t_hand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| rows | workers | srcgrad (s) | hand-written (s) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        for workers in args.workers:
            t_src, t_hand = run(rows, workers, args.repeat)
            print(f"| {rows:.0e} | {workers} | {t_src:.3f} | {t_hand:.3f} | {t_src / t_hand:.2f} |", flush=True)


if __name__ == "__main__":
    main()
