"""Typed user code: every public name of srcgrad used as a user's editor and type checker see it.

mypy checks this file in strict mode (``[tool.mypy]`` in pyproject.toml lists it), so a public function or class
whose signature loses its annotations, or whose result type stops fitting how it is used, fails the type check
(``tests/test_typing.py``). ``main()`` runs the same calls, so the file cannot drift from what srcgrad does.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import srcgrad
import srcgrad.testing

Vector = npt.NDArray[np.float64]


def eq4(x: float) -> float:
    y = 5 * x**2 / (1 + math.exp(x))
    return y


def loss(w: Vector, a: Vector) -> float:
    return float(np.sum(np.tanh(a @ w) ** 2))


def layer(w: Vector, a: Vector) -> Vector:
    return np.tanh(a @ w)


def identity(x: float) -> float:
    return x


def softplus(x: Vector) -> Vector:
    return np.logaddexp(0.0, x)


@srcgrad.defgrad(softplus, broadcast=True)
def softplus_grad(g: Vector, ans: Vector, x: Vector) -> Vector:
    return g / (1.0 + np.exp(-x))


@srcgrad.defjvp(softplus)
def softplus_jvp(x_dot: Vector, ans: Vector, x: Vector) -> Vector:
    return x_dot / (1.0 + np.exp(-x))


@srcgrad.nondifferentiable
def count_positive(x: Vector) -> int:
    return int(np.sum(x > 0))


@srcgrad.grad
def deq4(x: float) -> float:
    return 5 * x**2 / (1 + math.exp(x))


@srcgrad.grad(wrt="w")
def dloss(w: Vector, a: Vector) -> float:
    return float(np.sum(softplus(a @ w)))


def reverse_mode(w: Vector, a: Vector) -> None:
    slope: float = deq4(1.5)
    dw: Vector = dloss(w, a)
    gradient: Callable[..., Any] = srcgrad.grad(loss, wrt=0)
    value, dw_too = srcgrad.value_and_grad(loss)(w, a)
    pull = srcgrad.vjp(layer, wrt=0)
    dw_seeded: Vector = pull(w, a, np.ones(a.shape[0]))
    text: str = srcgrad.source(gradient, w, a)
    assert slope == srcgrad.grad(eq4)(1.5) and dw.shape == dw_too.shape == dw_seeded.shape == w.shape
    assert isinstance(value, float) and "def " in text


def forward_and_second_order(w: Vector, a: Vector, v: Vector) -> None:
    value, derivative = srcgrad.jvp(loss)(w, a, v)
    hv: Vector = srcgrad.hvp(loss)(w, a, v)
    h: Vector = srcgrad.hessian(loss)(w, a)
    jac: Vector = srcgrad.jacobian(layer, mode="fwd")(w, a)
    second: float = srcgrad.grad(srcgrad.grad(eq4))(0.5)
    assert h.shape == (w.size, w.size) and hv.shape == w.shape and jac.shape == (a.shape[0], w.size)
    assert isinstance(value, float) and isinstance(derivative, float) and math.isfinite(second)


def pictures_and_tables(out: Path) -> None:
    explanation: srcgrad.Explanation = srcgrad.explain(eq4, 1.5)
    table: str = str(explanation)
    picture: srcgrad.Graph = srcgrad.graph(eq4, adjoint=True)
    written: Path = picture.render(out / "eq4.dot", explain=explanation)
    dot: str = picture.to_dot(explanation)
    also: srcgrad.Graph = explanation.graph()
    module_text: str = srcgrad.emit(eq4)
    assert "eq4" in table and written.exists() and dot.startswith("digraph") and "def " in module_text
    assert str(also) == str(srcgrad.graph(eq4))


def errors() -> str:
    try:
        srcgrad.grad(identity, wrt=3)
    except srcgrad.InvalidArgument as exc:
        message: str = exc.message
        hint: str | None = exc.hint
        base: srcgrad.SrcgradError = exc
        return f"{base}: {message} ({hint})"
    raise AssertionError("wrt=3 of a one-parameter function must be refused")


def checks(w: Vector, a: Vector) -> None:
    srcgrad.testing.check_grad(loss, w, a, wrt=("w", "a"))
    numeric: Any = srcgrad.testing.numerical_grad(eq4, (1.5,), 0)
    assert abs(numeric - deq4(1.5)) < 1e-6
    assert count_positive(w) >= 0
    version: str = srcgrad.__version__
    assert version


def main() -> None:
    rng = np.random.default_rng(0)
    w, a, v = rng.normal(size=3), rng.normal(size=(4, 3)), rng.normal(size=3)
    reverse_mode(w, a)
    forward_and_second_order(w, a, v)
    with tempfile.TemporaryDirectory() as tmp:
        pictures_and_tables(Path(tmp))
    assert "wrt=3" in errors()
    checks(w, a)
    error_types: tuple[type[srcgrad.SrcgradError], ...] = (
        srcgrad.UnsupportedSyntax, srcgrad.NoRuleError, srcgrad.NonScalarOutput, srcgrad.SourceUnavailable,
        srcgrad.InternalError)
    assert all(issubclass(t, srcgrad.SrcgradError) for t in error_types)
    assert issubclass(srcgrad.GraphvizNotFound, RuntimeError)


if __name__ == "__main__":
    main()
