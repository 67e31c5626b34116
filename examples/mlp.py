"""A small multilayer perceptron trained by gradient descent, with gradients from srcgrad (numpy only).

Synthetic regression data: ``y = sin(3 x0) * x1 + noise`` for 256 points in the square [-1, 1]^2. The network is
2 -> 16 (tanh) -> 1; the loss is the mean squared error. The parameters are kept as people keep them: a list of
``(W, b)`` layers. ``srcgrad.value_and_grad`` differentiates the loss with respect to that list and returns the
gradient in the same structure (a list of ``(dW, db)`` tuples), so the update is one line; the helper ``dense`` the
loss calls is differentiated too. ``srcgrad.source(loss_and_grads)`` shows the code: the loop over the layers is
unrolled and each layer's arrays are named leaves (``params_0_0`` is ``params[0][0]``). Run: ``python
examples/mlp.py`` — the loss printed every 50 steps falls.
"""

import numpy as np

import srcgrad
from srcgrad.testing import check_grad


def dense(x, w, b):
    return x @ w + b


def loss(params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = dense(h, w, b)
        if i < len(params) - 1:
            h = np.tanh(h)
    return np.mean((h[:, 0] - y) ** 2)


loss_and_grads = srcgrad.value_and_grad(loss)


def make_data(rng, n=256):
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = np.sin(3.0 * x[:, 0]) * x[:, 1] + 0.05 * rng.normal(size=n)
    return x, y


def init(rng, sizes=(2, 16, 1)):
    return [(rng.normal(scale=1.0 / np.sqrt(n_in), size=(n_in, n_out)), np.zeros(n_out))
            for n_in, n_out in zip(sizes, sizes[1:])]


def main(steps=500, lr=0.3, seed=0):
    rng = np.random.default_rng(seed)
    x, y = make_data(rng)
    params = init(rng)
    check_grad(loss, params, x[:8], y[:8])  # srcgrad's gradient against central differences, leaf by leaf
    losses = []
    for step in range(steps + 1):
        value, grads = loss_and_grads(params, x, y)
        losses.append(value)
        if step % 50 == 0:
            print(f"step {step:4d}  loss {value:.5f}")
        params = [(w - lr * dw, b - lr * db) for (w, b), (dw, db) in zip(params, grads)]
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f} (the noise floor is {0.05 ** 2:.4f})")
    return losses


if __name__ == "__main__":
    main()
