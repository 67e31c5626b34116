"""srcgrad: source-transformation automatic differentiation for Python and numpy.

``@srcgrad.grad`` reads a function's source, lowers it to a linear IR (the compute graph), generates the reverse
sweep, and compiles readable Python: ``srcgrad.source(df)`` shows it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from srcgrad import rules as _rules  # noqa: F401  (declares the built-in derivative rules, loaded at first use)
from srcgrad.api import grad, source, value_and_grad, vjp
from srcgrad.errors import (
    InternalError,
    InvalidArgument,
    NonNumericOutput,
    NonScalarOutput,
    NoRuleError,
    SourceUnavailable,
    SrcgradError,
    UnsupportedSyntax,
    UnsupportedValue,
)
from srcgrad.higher import hessian, hvp, jacobian, jvp
from srcgrad.rules.registry import defgrad, defjvp, nondifferentiable
from srcgrad.structures import register_structure
from srcgrad.version import __version__

if TYPE_CHECKING:
    from srcgrad.drawing import Graph, GraphvizNotFound, graph
    from srcgrad.explanation import Explanation, explain
    from srcgrad.standalone import emit

# The tools for pictures, explanations and emitted modules load at first use (PEP 562): with what they import
# (xml, subprocess) they would be a third of ``import srcgrad``'s time (benchmarks/import_time.py measures it).
_LAZY = {"Graph": "drawing", "GraphvizNotFound": "drawing", "graph": "drawing", "Explanation": "explanation",
         "explain": "explanation", "emit": "standalone"}
_LAZY_MODULES = frozenset({"drawing", "svg", "layout", "picture", "summary", "explanation", "standalone"})


def __getattr__(name: str) -> Any:
    """A public name of a tool module, or that module itself (``srcgrad.drawing``), imported now."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f"srcgrad.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return importlib.import_module(f"srcgrad.{name}")
    raise AttributeError(f"module 'srcgrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Explanation", "Graph", "GraphvizNotFound", "InternalError", "InvalidArgument", "NoRuleError", "NonNumericOutput",
    "NonScalarOutput", "SourceUnavailable", "SrcgradError", "UnsupportedSyntax", "UnsupportedValue", "__version__",
    "defgrad", "emit", "explain", "grad",
    "graph", "hessian", "hvp", "jacobian", "jvp", "nondifferentiable", "register_structure", "source", "value_and_grad",
    "vjp", "defjvp",
]
