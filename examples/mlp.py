"""A small multilayer perceptron trained by gradient descent, with gradients from srcgrad (numpy only).

Synthetic regression data: ``y = sin(3 x0) * x1 + noise`` for 256 points in the square [-1, 1]^2. The network is
2 -> 16 (tanh) -> 1; the loss is the mean squared error. ``srcgrad.value_and_grad`` differentiates the loss with
respect to the four parameter arrays (a tuple of gradients), and the helper ``dense`` it calls is differentiated
too. Run: ``python examples/mlp.py`` — the loss printed every 50 steps falls.
"""

import numpy as np

import srcgrad
from srcgrad.testing import check_grad


def dense(x, w, b):
    return x @ w + b


def loss(w1, b1, w2, b2, x, y):
    hidden = np.tanh(dense(x, w1, b1))
    prediction = dense(hidden, w2, b2)
    return np.mean((prediction - y) ** 2)


loss_and_grads = srcgrad.value_and_grad(loss, wrt=("w1", "b1", "w2", "b2"))


def make_data(rng, n=256):
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = np.sin(3.0 * x[:, 0]) * x[:, 1] + 0.05 * rng.normal(size=n)
    return x, y


def init(rng, hidden=16):
    w1 = rng.normal(scale=1.0, size=(2, hidden))
    b1 = np.zeros(hidden)
    w2 = rng.normal(scale=1.0 / np.sqrt(hidden), size=hidden)
    return [w1, b1, w2, 0.0]


def main(steps=500, lr=0.3, seed=0):
    rng = np.random.default_rng(seed)
    x, y = make_data(rng)
    params = init(rng)
    check_grad(loss, *params, x[:8], y[:8], wrt=(0, 1, 2, 3))  # srcgrad's gradient against central differences
    losses = []
    for step in range(steps + 1):
        value, grads = loss_and_grads(*params, x, y)
        losses.append(value)
        if step % 50 == 0:
            print(f"step {step:4d}  loss {value:.5f}")
        params = [p - lr * g for p, g in zip(params, grads)]
    print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f} (the noise floor is {0.05 ** 2:.4f})")
    return losses


if __name__ == "__main__":
    main()
