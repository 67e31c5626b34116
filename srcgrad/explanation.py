"""Explain: a function and example arguments in, the backprop lesson out — every node of the compute graph with its
forward value and its adjoint, in the order the reverse sweep visits them.

In: a user function (or a function made by ``srcgrad.grad``), example arguments, ``wrt``. Out: :class:`Explanation`
— ``str()`` is a table (node, operation, source line, value, adjoint; arrays summarised by shape and a few numbers;
``_repr_html_`` the same as an HTML table for notebooks),
``values``/``adjoints`` map IR names to numbers, and ``Graph.render(path, explain=...)`` uses them to annotate the
picture.
What holds:
- the numbers come from generated code: srcgrad's step-by-step value-and-gradient variant (mode ``explain``: the
  same operations as ``grad``, but every forward value and adjoint kept in a variable instead of folded away),
  specialised to the arguments' kinds; its local variables are read from its frame as it returns (a profile hook
  for the length of the call), and each node's adjoint by the name the generator gave it (``Generated.adjoints``).
  Nothing is recompiled or recomputed a second way; the gradient shown is what that code returns (the tests check
  it equals ``grad``'s);
- a node's adjoint is the derivative of the output with respect to that node's value (the total, once the reverse
  sweep has passed it);
- only what ran is shown: ops removed as dead code and the branch not taken have no row. Inside loops a name is
  reused from one iteration to the next, so a row there shows the value the name holds at the end (rows are marked
  ``loop``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import field
from typing import Any

import numpy as np

from srcgrad import api, ir, pipeline
from srcgrad.drawing import Graph, graph
from srcgrad.errors import NonScalarOutput
from srcgrad.records import record
from srcgrad.summary import NO_VALUE, operation_text, summarize


@record
class Row:
    """One node of the compute graph: an op's target, or an input."""

    node: str  # the IR name (user variable, version or temporary)
    operation: str  # ``mul(3, t2)``, ``input``
    line: int  # line in the user's file
    value: Any
    adjoint: Any  # the adjoint's value, or NO_VALUE when no gradient reaches the node
    in_loop: bool = False


@record
class Explanation:
    """The forward values and adjoints of every node of ``function``'s compute graph at ``args``.

    ``value`` is the function's value and ``gradient`` what ``srcgrad.grad`` returns (a tuple for several ``wrt``);
    ``rows`` has one :class:`Row` per node in backprop order, the output first (``node``, ``operation``, ``line``,
    ``value``, ``adjoint``); ``values`` and ``adjoints`` map each IR name to its number; ``source`` is the generated
    code the numbers come from. ``str()`` is the table, which notebooks show as HTML.
    """

    name: str
    params: list[str]
    args: tuple[Any, ...]
    wrt: list[str]
    value: Any  # the function's value
    gradient: Any  # what srcgrad.grad returns (a tuple for several wrt)
    rows: list[Row]  # backprop order: the output first, the inputs last
    source: str  # the generated code the numbers come from (value and gradient, every step in a variable)
    source_lines: dict[int, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # IR name -> forward value
    adjoints: dict[str, Any] = field(default_factory=dict)  # IR name -> adjoint value
    namespace: dict[str, Any] = field(default_factory=dict)  # every local of the generated code at its end
    func: Any = None
    generated: Any = None  # the generated code (srcgrad.generated.Generated): its text, line map and names

    def __str__(self) -> str:
        return format_table(self)

    def __repr__(self) -> str:
        return f"<srcgrad.Explanation of {self.name}>\n{self}"

    def _repr_html_(self) -> str:
        """Jupyter shows the table as HTML."""
        from srcgrad.notebook import explanation_html

        return explanation_html(self)

    def graph(self, adjoint: bool = False) -> Graph:
        """The compute graph of the function; ``.render(path, explain=self)`` draws these values on it."""
        example = self.args if getattr(self.generated, "structured", False) else None
        return graph(self.func, adjoint=adjoint, wrt=tuple(self.wrt), example=example)


def explain(func: Callable[..., Any], *args: Any, wrt: int | str | tuple[int | str, ...] | None = None) -> Explanation:
    """Run ``func``'s gradient at ``args`` and return every node's value and adjoint (``str()``: a table).

    ``wrt`` defaults to that of a function made by ``srcgrad.grad``, else to the first parameter.
    """
    transform = getattr(func, "__srcgrad_transform__", None)
    if transform is not None:
        func = transform.func
        if wrt is None:
            wrt = tuple(transform.wrt) if transform.as_tuple else transform.wrt[0]
    wrt = 0 if wrt is None else wrt
    vg = api.Transform(func, wrt, "explain")  # value_and_grad that keeps every value and adjoint in a variable
    values = vg.bind(args, {})
    generated = vg.specialise(values)
    # structured arguments: the nodes are those of the function of their leaves (srcgrad/structures.py), whose
    # generated code runs behind the front that reads the leaves and rebuilds the gradients
    structured = getattr(generated, "structured", False)
    steps = generated.inner if structured else generated
    try:
        (value, gradient), namespace = _run_keeping_locals(generated.function, vg, values, steps.function.__code__)
    except Exception:
        _check_scalar(vg, _call(vg.func, vg, values))  # a non-scalar output makes the reverse sweep fail: say so
        raise
    _check_scalar(vg, value)
    fn = pipeline.lower_function(generated.leaves_pf if structured else vg.pf)
    grads = gradient if vg.as_tuple else (gradient,)
    rows, seen_values, adjoints = _rows(fn, namespace, steps.adjoints)
    inputs = [namespace.get(p, NO_VALUE) for p in fn.params] if structured else values
    by_param = dict(zip(generated.leaves_wrt, namespace[_RESULT][1])) if structured else dict(zip(vg.wrt, grads))
    for p, v in zip(fn.params, inputs):
        adj = by_param.get(p, NO_VALUE)
        rows.append(Row(p, "input", fn.first_line, v, adj))
        seen_values[p] = v
        if adj is not NO_VALUE:
            adjoints[p] = adj
    return Explanation(
        name=vg.pf.name if structured else fn.name, params=list(vg.params if structured else fn.params),
        args=tuple(values), wrt=list(vg.wrt), value=value, gradient=gradient,
        rows=rows, source=generated.main, source_lines=dict(fn.source_lines), values=seen_values, adjoints=adjoints,
        namespace=namespace, func=func, generated=generated,
    )


def _rows(fn: ir.Function, namespace: dict, adjoint_names: dict[str, str]
          ) -> tuple[list[Row], dict[str, Any], dict[str, Any]]:
    """A row per op that ran, in backprop order, with the values and the adjoints (by the names the generator gave
    them) of their nodes."""
    rows: list[Row] = []
    values: dict[str, Any] = {}
    adjoints: dict[str, Any] = {}
    reused = _loop_names(fn.body)
    for op, in_loop in _backprop_order(fn.body, namespace):
        if op.target not in namespace:
            continue  # removed as dead code
        adj = namespace.get(adjoint_names.get(op.target, ""), NO_VALUE)
        rows.append(Row(op.target, operation_text(op), op.line, namespace[op.target], adj,
                        in_loop or op.target in reused))
        values[op.target] = namespace[op.target]
        if adj is not NO_VALUE:
            adjoints[op.target] = adj
    return rows, values, adjoints


# --- running the generated code -----------------------------------------------------------------------------------


def _run_keeping_locals(function: Callable, transform: api.Transform, values: list, code: Any
                        ) -> tuple[Any, dict[str, Any]]:
    """Call the generated ``function``; its result and the local variables of the call of ``code`` (the function
    itself, or the function of leaves it calls) as it returns (read from its frame by a profile hook of this thread,
    which is restored after the call)."""
    kept: dict[str, Any] = {}
    previous = sys.getprofile()

    def keep(frame: Any, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            kept.clear()
            kept.update(frame.f_locals)
            kept[_RESULT] = arg

    sys.setprofile(keep)
    try:
        result = _call(function, transform, values)
    finally:
        sys.setprofile(previous)
    return result, kept


_RESULT = " result"  # (what the function of leaves returned: not a name of the generated code)


def _check_scalar(transform: api.Transform, value: Any) -> None:
    if np.ndim(value) != 0:
        raise NonScalarOutput(
            f"explain needs a scalar output, but {transform.func.__name__} returned an array of shape "
            f"{np.shape(value)}", hint="reduce the output (e.g. np.sum) to explain its gradient",
        )


def _call(run: Callable, transform: api.Transform, values: list) -> Any:
    params = transform.signature.parameters.values()
    kwonly = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    n_pos = len(values) - len(kwonly)
    return run(*values[:n_pos], **dict(zip(kwonly, values[n_pos:])))


def _backprop_order(body: list, namespace: dict, in_loop: bool = False):
    """The ops of ``body`` that ran, last first (the order of the reverse sweep), with whether they are in a loop."""
    for stmt in reversed(body):
        if isinstance(stmt, ir.Op):
            yield stmt, in_loop
        elif isinstance(stmt, ir.If):
            taken = None if in_loop else _branch_taken(stmt, namespace)  # in a loop: both may have run
            if taken is not False:
                yield from _backprop_order(stmt.body, namespace, in_loop)
            if taken is not True:
                yield from _backprop_order(stmt.orelse, namespace, in_loop)
        elif isinstance(stmt, ir.For):
            yield from _backprop_order(stmt.body, namespace, True)
        elif isinstance(stmt, ir.While):
            yield from _backprop_order(stmt.body, namespace, True)
            yield from _backprop_order(stmt.test, namespace, True)
        elif isinstance(stmt, ir.With):
            yield from _backprop_order(stmt.body, namespace, in_loop)
        elif isinstance(stmt, ir.Try):
            yield from _backprop_order(stmt.final, namespace, in_loop)
            path = None if in_loop else namespace.get(stmt.path)
            ways = [stmt.body + stmt.orelse] + [h.body for h in stmt.handlers]
            for k, way in enumerate(ways):
                if path is None or path == k:
                    yield from _backprop_order(way, namespace, in_loop)


def _loop_names(body: list, inside: bool = False) -> set[str]:
    """Names assigned inside a loop (their final value is that of some iteration, wherever else they are set)."""
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, ir.Op) and inside:
            names.add(stmt.target)
        elif isinstance(stmt, ir.If):
            names |= _loop_names(stmt.body, inside) | _loop_names(stmt.orelse, inside)
        elif isinstance(stmt, ir.For):
            names |= {stmt.target} | _loop_names(stmt.body, True)
        elif isinstance(stmt, ir.While):
            names |= _loop_names(stmt.test, True) | _loop_names(stmt.body, True)
        elif isinstance(stmt, (ir.With, ir.Try)):
            for region in ir.regions(stmt):
                names |= _loop_names(region, inside)
    return names


def _branch_taken(stmt: ir.If, namespace: dict) -> bool | None:
    cond = stmt.cond
    try:
        if isinstance(cond, ir.Var):
            if cond.name not in namespace:
                return None
            return bool(namespace[cond.name])
        if isinstance(cond, ir.Const):
            return bool(cond.value)
    except (TypeError, ValueError):
        return None
    return None


# --- the table -----------------------------------------------------------------------------------------------------


def format_table(ex: Explanation) -> str:
    args = ", ".join(f"{p}={summarize(v)}" for p, v in zip(ex.params, ex.args))
    grads = ex.gradient if len(ex.wrt) > 1 or isinstance(ex.gradient, tuple) else (ex.gradient,)
    grad_text = ", ".join(f"d/d{w} = {summarize(g)}" for w, g in zip(ex.wrt, grads))
    lines = [f"{ex.name}({args}) = {summarize(ex.value)};  {grad_text}", ""]
    used = sorted({r.line for r in ex.rows if r.operation != "input"})
    for n in used:
        lines.append(f"  {n:>4} | {ex.source_lines.get(n, '').strip()}")
    lines.append("")
    lines.append(f"backprop order; adjoint = d({ex.name})/d(node), \"loop\": the value at the end of the loop")
    if not any(r.in_loop for r in ex.rows):
        lines[-1] = f"backprop order; adjoint = d({ex.name})/d(node)"
    header = ("node", "operation", "line", "value", "adjoint")
    table = [header] + [
        (r.node, r.operation, f"{r.line}" + (" loop" if r.in_loop else ""), summarize(r.value), summarize(r.adjoint))
        for r in ex.rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


__all__ = ["Explanation", "Row", "explain", "format_table"]
