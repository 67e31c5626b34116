"""Train the logistic regression of ``model.py`` with the gradient emitted ahead of time into ``loss_grad.py``.

This script, and ``loss_grad.py``, never import srcgrad: only numpy and ``model``. Run it from anywhere::

    python examples/aot/train.py
"""

import sys

import numpy as np
from loss_grad import loss_grad
from model import accuracy, loss


def make_data(rng, n=400):
    """Two overlapping Gaussian clouds in 3-D, labelled 0 and 1."""
    y = (rng.uniform(size=n) < 0.5).astype(float)
    centres = np.where(y[:, None] > 0.5, np.array([1.0, -0.5, 0.5]), np.array([-1.0, 0.5, -0.5]))
    return centres + rng.normal(size=(n, 3)), y


def main(steps=200, lr=0.5):
    rng = np.random.default_rng(0)
    x, y = make_data(rng)
    w, b = np.zeros(3), 0.0
    for step in range(steps + 1):
        if step % 40 == 0:
            print(f"step {step:3d}  loss {loss(w, b, x, y):.4f}  accuracy {accuracy(w, b, x, y):.3f}")
        gw, gb = loss_grad(w, b, x, y)
        w, b = w - lr * gw, b - lr * gb
    assert "srcgrad" not in sys.modules, "the emitted gradient must not import srcgrad"
    print("trained without importing srcgrad")
    return w, b


if __name__ == "__main__":
    main()
