"""A logistic-regression model whose gradient is written ahead of time into ``loss_grad.py`` (see README.md here).

Regenerate the gradient after changing this file (from the repository root)::

    srcgrad emit examples/aot/model.py:loss --wrt w,b -o examples/aot/loss_grad.py
"""

import numpy as np

L2 = 1e-3  # weight decay: a module global, which the emitted module imports from here


def log_sigmoid(z):
    """log(1 / (1 + exp(-z))), stable for large |z|."""
    return -np.logaddexp(0.0, -z)


def loss(w, b, x, y):
    """Mean negative log-likelihood of labels ``y`` (0 or 1) given features ``x``, plus weight decay."""
    z = x @ w + b
    nll = -np.mean(y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z))
    return nll + L2 * np.sum(w * w)


def accuracy(w, b, x, y):
    return float(np.mean((x @ w + b > 0) == (y > 0.5)))
