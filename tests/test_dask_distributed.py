"""Gradients over Dask arrays on a real cluster (issue 20, item 2): a ``dask.distributed.LocalCluster`` of two worker
processes computes srcgrad's gradient of a logistic-regression loss over data generated in chunks — against numpy on
the same data, and over data larger than the memory the workers are given (they must not be restarted)."""

import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

import srcgrad  # noqa: E402

WORKER_MEMORY = 160 * 2**20  # per worker; a worker process itself takes about 100 MiB


def logistic_loss(w, X, y):
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z) / X.shape[0]


def handwritten_gradient(w, X, y):
    """dask-glm's gradient of the same loss, written by hand."""
    p = 1.0 / (1.0 + da.exp(-(X @ w)))
    return X.T @ (p - y) / X.shape[0]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=WORKER_MEMORY,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    with cluster, distributed.Client(cluster) as client:
        yield client


def generated(n, d, rows_per_chunk, seed=0):
    X = da.random.default_rng(seed).normal(size=(n, d), chunks=(rows_per_chunk, d))
    w_true = np.linspace(-1.0, 1.0, d)
    y = (da.random.default_rng(seed + 1).random(size=n, chunks=rows_per_chunk) < 1 / (1 + da.exp(-(X @ w_true))))
    return X, y.astype(float)


def test_logistic_gradient_on_a_cluster_matches_numpy(client):
    X, y = generated(20_000, 6, 2_500)
    w = np.linspace(0.3, -0.3, 6)
    value, g = srcgrad.value_and_grad(logistic_loss)(w, X, y)
    assert isinstance(g, da.Array)
    value, g = client.compute([value, g], sync=True)
    X_np, y_np = dask.compute(X, y)
    value_np, g_np = srcgrad.value_and_grad(logistic_loss)(w, X_np, y_np)
    assert value == pytest.approx(value_np, rel=1e-12)
    np.testing.assert_allclose(g, g_np, rtol=1e-10)
    p = 1 / (1 + np.exp(-(X_np @ w)))
    np.testing.assert_allclose(g, X_np.T @ (p - y_np) / len(y_np), rtol=1e-10)


def test_data_larger_than_the_workers_memory(client):
    workers = sorted(client.scheduler_info()["workers"])
    X, y = generated(4_400_000, 10, 110_000)
    assert X.nbytes > len(workers) * WORKER_MEMORY  # (352 MB of data, 2 x 160 MiB of workers)
    w = np.linspace(0.2, -0.2, 10)
    value, g = srcgrad.value_and_grad(logistic_loss)(w, X, y)
    z = X @ w
    by_hand = (da.mean(da.logaddexp(0.0, z) - y * z), handwritten_gradient(w, X, y))
    value, g, expected_value, expected = client.gather(client.compute([value, g, *by_hand]))
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-15)
    assert sorted(client.scheduler_info()["workers"]) == workers  # no worker ran out of memory and was restarted


def test_the_example_fits_with_a_falling_loss():
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "examples" / "dask_logreg.py"), "--rows", "200000", "--steps",
                           "4"], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", done.stdout)]
    assert len(losses) == 4 and all(b < a for a, b in zip(losses, losses[1:])), losses
