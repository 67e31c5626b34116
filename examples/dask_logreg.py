"""Logistic regression fitted by gradient descent on an out-of-core dataset, with srcgrad gradients, on a Dask cluster.

The loss is plain numpy code; called with Dask arrays, srcgrad's generated gradient builds a Dask graph (nothing is
computed during the call), and one ``client.compute`` pass over the data gives the loss and the gradient together.
The data are generated in chunks on the workers and never held in memory at once: with the defaults they are larger
than the memory the two worker processes are given.

    pip install -e '.[dask]' && python examples/dask_logreg.py [--rows 4000000] [--steps 6] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import time

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, progress

import srcgrad


def loss(w, X, y):
    """The mean logistic loss of the weights ``w`` on rows ``X`` with labels ``y`` in {0, 1}."""
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z) / X.shape[0]


def dataset(rows: int, features: int, rows_per_chunk: int, seed: int = 0) -> tuple[da.Array, da.Array, np.ndarray]:
    """Rows drawn in chunks (on the workers, when a computation needs them) and labels from known weights."""
    w_true = np.linspace(-2.0, 2.0, features)
    X = da.random.default_rng(seed).normal(size=(rows, features), chunks=(rows_per_chunk, features))
    p = 1.0 / (1.0 + da.exp(-(X @ w_true)))
    y = (da.random.default_rng(seed + 1).random(size=rows, chunks=rows_per_chunk) < p).astype(float)
    return X, y, w_true


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="160MiB", help="memory limit of each worker process")
    parser.add_argument("--rate", type=float, default=4.0, help="the gradient descent step")
    args = parser.parse_args()

    grad = srcgrad.value_and_grad(loss)
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           memory_limit=args.worker_memory, silence_logs=logging.ERROR)
    with cluster, Client(cluster) as client:
        X, y, w_true = dataset(args.rows, args.features, 100_000)
        limit = sum(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
        print(f"data: {X.nbytes / 2**20:.0f} MiB in {X.numblocks[0]} chunks; the {args.workers} workers are given "
              f"{limit / 2**20:.0f} MiB; dashboard: {client.dashboard_link}")
        w = np.zeros(args.features)
        start = time.perf_counter()
        for step in range(args.steps):
            value, g = grad(w, X, y)  # a Dask graph: nothing computed yet
            futures = client.compute([value, g])
            progress(futures, notebook=False)  # a text progress bar while the workers go through the chunks
            value, g = client.gather(futures)
            print(f"\nstep {step}: loss {value:.6f}  |grad| {np.linalg.norm(g):.2e}")
            w = w - args.rate * g
        elapsed = time.perf_counter() - start
        print(f"{args.steps} passes over the data in {elapsed:.1f} s; weights {np.round(w, 2)}")
        print(f"(the data were drawn with weights {np.round(w_true, 2)})")


if __name__ == "__main__":
    main()
