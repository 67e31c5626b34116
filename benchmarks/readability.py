"""How generated array gradients read, against hand-written ones: ``python benchmarks/readability.py``.

For four ordinary array functions (a two-layer MLP, a logistic regression, a softmax cross-entropy, a layer norm),
the gradient srcgrad generates for example arguments, counted three ways: calls of srcgrad's runtime helpers
(``unbroadcast``, ``owned_grad``...), statements against the hand-written gradient below, and statements broken over
several lines inside an expression. tests/golden keeps the four generated texts (``readability_*.grad.py.txt``).
Targets (issue 18): at most 3 helper calls over the four, statements at most 2.5 times the hand-written ones, no
broken lines.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def mlp(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    return np.mean((out - y) ** 2)


def mlp_grad(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    out_bar = 2.0 * (out - y) / out.size
    z_bar = out_bar @ w2.T * (1.0 - h * h)
    return x.T @ z_bar, np.sum(z_bar, axis=0), h.T @ out_bar, np.sum(out_bar, axis=0)


def logreg(w, b, x, y):
    z = x @ w + b
    return np.mean(np.logaddexp(0.0, -y * z))


def logreg_grad(w, b, x, y):
    z = x @ w + b
    z_bar = -y / (1.0 + np.exp(y * z)) / y.size
    return z_bar @ x, float(np.sum(z_bar))


def softmax_xent(w, x, labels):
    logits = x @ w
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(labels * logp, axis=1))


def softmax_xent_grad(w, x, labels):
    logits = x @ w
    p = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    p = p / np.sum(p, axis=1, keepdims=True)
    logits_bar = (p * np.sum(labels, axis=1, keepdims=True) - labels) / x.shape[0]
    return x.T @ logits_bar


def layer_norm(x, gamma, beta):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + 1e-5)
    return np.sum(gamma * xhat + beta)


def layer_norm_grad(x, gamma, beta):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mu) ** 2, axis=-1, keepdims=True)
    inv = 1.0 / np.sqrt(var + 1e-5)
    xhat = (x - mu) * inv
    xhat_bar = np.broadcast_to(gamma, x.shape)
    x_bar = inv * (xhat_bar - np.mean(xhat_bar, axis=-1, keepdims=True)
                   - xhat * np.mean(xhat_bar * xhat, axis=-1, keepdims=True))
    return x_bar, np.sum(xhat, axis=0), np.full(beta.shape, float(x.shape[0]))


def _arguments() -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 100))
    return {
        "mlp": (rng.standard_normal((100, 200)) / 10, 0.1 * rng.standard_normal(200),
                rng.standard_normal((200, 10)) / 14, 0.1 * rng.standard_normal(10), x,
                rng.standard_normal((64, 10))),
        "logreg": (0.1 * rng.standard_normal(100), 0.1, x, np.where(rng.standard_normal(64) > 0, 1.0, -1.0)),
        "softmax_xent": (0.1 * rng.standard_normal((100, 10)), x, np.eye(10)[rng.integers(0, 10, 64)]),
        "layer_norm": (x, rng.standard_normal(100), rng.standard_normal(100)),
    }


# name -> (function, hand-written gradient, differentiated parameters)
CASES = {
    "mlp": (mlp, mlp_grad, ("w1", "b1", "w2", "b2")),
    "logreg": (logreg, logreg_grad, ("w", "b")),
    "softmax_xent": (softmax_xent, softmax_xent_grad, ("w",)),
    "layer_norm": (layer_norm, layer_norm_grad, ("x", "gamma", "beta")),
}
ARGUMENTS = _arguments()
RUNTIME_MODULES = ("srcgrad.runtime", "srcgrad.checks")


def generated(name: str):
    """The gradient srcgrad makes for the case's example arguments, and its text."""
    import srcgrad

    func, _, wrt = CASES[name]
    df = srcgrad.grad(func, wrt=wrt)
    return df, srcgrad.source(df, *ARGUMENTS[name])


def _function_body(text: str) -> list[ast.stmt]:
    body = ast.parse(text).body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body


def statements(text: str) -> int:
    """Statements of the (first) function in ``text``, nested ones counted, the docstring not."""
    return sum(1 for stmt in _function_body(text) for node in ast.walk(stmt) if isinstance(node, ast.stmt))


def helper_calls(df, text: str) -> int:
    """Calls of srcgrad's runtime helpers in the generated function."""
    variant = df.__srcgrad_transform__.last
    helpers = {n for n, obj in variant.bound.items() if getattr(obj, "__module__", "") in RUNTIME_MODULES}
    return sum(1 for stmt in _function_body(text) for node in ast.walk(stmt)
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers)


def broken_lines(text: str) -> int:
    """Simple statements spread over more than one line (broken inside an expression)."""
    return sum(1 for stmt in _function_body(text) for node in ast.walk(stmt)
               if isinstance(node, ast.stmt) and not hasattr(node, "body") and node.end_lineno > node.lineno)


def hand_statements(grad) -> int:
    import inspect
    import textwrap

    return statements(textwrap.dedent(inspect.getsource(grad)))


def table() -> tuple[str, dict]:
    rows = ["| function | helper calls | statements (generated / hand-written) | ratio | broken lines |",
            "|---|---:|---:|---:|---:|"]
    totals = {"helpers": 0, "generated": 0, "hand": 0, "broken": 0}
    for name, (_, grad, _) in CASES.items():
        df, text = generated(name)
        h, s, w, b = helper_calls(df, text), statements(text), hand_statements(grad), broken_lines(text)
        rows.append(f"| {name} | {h} | {s} / {w} | {s / w:.1f} | {b} |")
        for key, value in zip(("helpers", "generated", "hand", "broken"), (h, s, w, b)):
            totals[key] += value
    rows.append(f"| **all four** | {totals['helpers']} | {totals['generated']} / {totals['hand']} | "
                f"{totals['generated'] / totals['hand']:.1f} | {totals['broken']} |")
    return "\n".join(rows), totals


if __name__ == "__main__":
    text, _ = table()
    print(text)
