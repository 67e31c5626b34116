"""Modules written by ``srcgrad emit`` with Dask arrays (issue 20): run where srcgrad cannot be imported, the emitted
gradient keeps Dask arrays lazy (its copy of srcgrad's runtime helpers does what srcgrad's does with them) and gives
numpy's numbers. It carries no guard: a line of the function, or a gradient helper, that needs the values of a
Dask array computes them (as Dask does for any numpy code that asks), with the same numbers."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("dask.array")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL = '''
import numpy as np


def loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(w ** 2)


def products(x):
    return np.sum(np.cumprod(x))
'''

RUN = '''
import sys


class BlockSrcgrad:
    def find_spec(self, name, path=None, target=None):
        if name == "srcgrad" or name.startswith("srcgrad."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)


sys.meta_path.insert(0, BlockSrcgrad())
import dask
import dask.array as da
import numpy as np

from loss_vg import loss_value_and_grad
from products_grad import products_grad


def refuse(*args, **kwargs):
    raise RuntimeError("a Dask array was computed")


rng = np.random.default_rng(0)
X, w = rng.normal(size=(50, 4)), np.linspace(-1.0, 1.0, 4)
y = (rng.random(50) < 0.5).astype(float)
dX, dy = da.from_array(X, chunks=(20, 4)), da.from_array(y, chunks=20)
with dask.config.set(scheduler=refuse):
    value, g = loss_value_and_grad(w, dX, dy)
    _, g_of_dask_w = loss_value_and_grad(da.from_array(w, chunks=2), dX, dy)
assert isinstance(value, da.Array) and isinstance(g, da.Array) and g_of_dask_w.chunks == ((2, 2),)
value_np, g_np = loss_value_and_grad(w, X, y)
value, g, g_of_dask_w = dask.compute(value, g, g_of_dask_w)
assert abs(value - value_np) <= 1e-12 * abs(value_np)
np.testing.assert_allclose(g, g_np, rtol=1e-12)
np.testing.assert_allclose(g_of_dask_w, g_np, rtol=1e-12)
p = 1.0 / (1.0 + np.exp(-(X @ w)))
np.testing.assert_allclose(g_np, X.T @ (p - y) / len(y) + w, rtol=1e-12)
x = np.array([1.0, 0.0, 2.0])
# (no guard here: cumprod's gradient reads the values, so Dask computes them, as for any numpy code that asks)
np.testing.assert_allclose(np.asarray(products_grad(da.from_array(x, chunks=2))), products_grad(x), rtol=1e-15)
np.testing.assert_allclose(products_grad(x), [1.0 + 0.0 + 0.0, 1.0 + 1.0 * 2.0, 0.0], rtol=1e-15)
assert not any(m == "srcgrad" or m.startswith("srcgrad.") for m in sys.modules)
print("ok")
'''


def _emit(directory, spec, mode, out):
    done = subprocess.run([sys.executable, "-m", "srcgrad", "emit", spec, "--mode", mode, "-o", out],
                          capture_output=True, text=True, timeout=300, cwd=directory,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr


def test_an_emitted_module_keeps_dask_arrays_lazy_without_srcgrad(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL))
    _emit(tmp_path, "model.py:loss", "value_and_grad", "loss_vg.py")
    _emit(tmp_path, "model.py:products", "grad", "products_grad.py")
    (tmp_path / "run.py").write_text(RUN)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "run.py"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
