"""Gradient implementations that are timed against the hand-written reference, one module per tool.

Every peer module exposes ``version()`` and one or more builders
``build(case, args) -> (fn, fn_args, to_numpy)``: ``fn(*fn_args)`` computes the gradient of ``case.fn`` at
``args`` with respect to ``case.wrt`` (that call is what is timed: inputs are converted to the tool's own
types once, beforehand), and ``to_numpy(fn(*fn_args))`` gives one numpy value per ``wrt`` name, in order,
for the correctness check.

Peers differentiate the very same primal source: ``rebind`` swaps the ``np`` and ``math`` globals of the
primal for the tool's numpy-like module, so the operations and their order are the same in every column.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One timed column of the table: ``builder`` is the attribute of ``module`` that builds its calls."""

    title: str
    module: str
    builder: str = "build"
    tool: str = ""  # the tool whose version the report names (default: the title's first word)

    @property
    def tool_name(self) -> str:
        return self.tool or self.title.split()[0]


COLUMNS: list[Column] = [
    Column("srcgrad", "benchmarks.peers.srcgrad_peer"),
    Column("srcgrad numba", "benchmarks.peers.srcgrad_numba_peer", tool="srcgrad numba"),
    Column("autograd", "benchmarks.peers.autograd_peer"),
    Column("jax (eager)", "benchmarks.peers.jax_peer", "build_eager"),
    Column("jax (jit)", "benchmarks.peers.jax_peer", "build_jit"),
    Column("torch (eager)", "benchmarks.peers.torch_peer"),
    Column("tangent", "benchmarks.peers.tangent_peer"),
]


def rebind(fn: Callable, **names) -> Callable:
    """A copy of the module-level function ``fn`` that sees ``names`` in place of its own globals."""
    namespace = dict(fn.__globals__)
    namespace.update(names)
    return types.FunctionType(fn.__code__, namespace, fn.__name__, fn.__defaults__, fn.__closure__)


def as_tuple(result, count: int) -> tuple:
    """A tool's gradient result as a tuple with one entry per differentiated argument."""
    return tuple(result) if count > 1 else (result,)
