"""srcgrad's gradient over Dask arrays against a hand-written Dask gradient (dask-glm's formula), issue 20 item 5.

A logistic-regression loss over ``rows`` x 10 float64 data held by a LocalCluster (persisted: the time is the
gradient's, not the data's generation), for 1 and 2 worker processes. srcgrad's gradient and the hand-written one
are timed in turn (interleaved, ``--repeat`` times each: the machine may be shared) and the medians reported, with
the graphs' task counts (before and after Dask's optimisation: noise-free). Graph building is included: srcgrad's
generated code builds it at each call, as the hand-written function does.

    python benchmarks/dask_logreg.py [--rows 1000000 10000000] [--workers 1 2] [--repeat 5]
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


def tasks(x) -> str:
    """The task count of ``x``'s graph, and after Dask's optimisation (which fuses elementwise steps per block)."""
    graph = x.__dask_graph__()
    return f"{len(graph)}/{len(dict(x.__dask_optimize__(graph, x.__dask_keys__())))}"


def interleaved_medians(client: Client, makers, repeat: int) -> tuple[list[float], list]:
    times: list[list[float]] = [[] for _ in makers]
    results: list = [None for _ in makers]
    for _ in range(repeat):
        for i, make in enumerate(makers):
            start = time.perf_counter()
            results[i] = client.compute(make()).result()
            times[i].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times], results


def run(rows: int, workers: int, repeat: int) -> tuple[float, float, str, str]:
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        X = da.random.default_rng(0).normal(size=(rows, 10), chunks=(250_000, 10))
        y = (da.random.default_rng(1).random(size=rows, chunks=250_000) < 0.5).astype(float)
        X, y = client.persist([X, y])
        wait([X, y])
        w = np.linspace(-0.5, 0.5, 10)
        grad = srcgrad.grad(loss)
        (t_src, t_hand), (g_src, g_hand) = interleaved_medians(
            client, [lambda: grad(w, X, y), lambda: handwritten(w, X, y)], repeat)
        np.testing.assert_allclose(g_src, g_hand, rtol=1e-9, atol=1e-15)
        return t_src, t_hand, tasks(grad(w, X, y)), tasks(handwritten(w, X, y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| rows | workers | srcgrad (s, median) | hand-written (s, median) | ratio | tasks srcgrad | tasks hand |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for rows in args.rows:
        for workers in args.workers:
            t_src, t_hand, n_src, n_hand = run(rows, workers, args.repeat)
            ratio = t_src / t_hand
            print(f"| {rows:.0e} | {workers} | {t_src:.3f} | {t_hand:.3f} | {ratio:.2f} | {n_src} | {n_hand} |",
                  flush=True)


if __name__ == "__main__":
    main()
