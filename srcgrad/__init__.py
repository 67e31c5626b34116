"""srcgrad: source-transformation automatic differentiation for Python and numpy.

``@srcgrad.grad`` reads a function's source, lowers it to a linear IR (the compute graph), generates the reverse
sweep, and compiles readable Python: ``srcgrad.source(df)`` shows it.
"""

from srcgrad import rules as _rules  # noqa: F401  (registers the built-in derivative rules)
from srcgrad.api import grad, source, value_and_grad, vjp
from srcgrad.drawing import Graph, GraphvizNotFound, graph
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
from srcgrad.explanation import Explanation, explain
from srcgrad.higher import hessian, hvp, jacobian, jvp
from srcgrad.implicit import custom_root
from srcgrad.rules.registry import defgrad, defjvp, nondifferentiable
from srcgrad.standalone import emit
from srcgrad.version import __version__

__all__ = [
    "Explanation", "Graph", "GraphvizNotFound", "InternalError", "InvalidArgument", "NoRuleError", "NonNumericOutput",
    "NonScalarOutput", "SourceUnavailable", "SrcgradError", "UnsupportedSyntax", "UnsupportedValue", "__version__",
    "custom_root", "defgrad", "emit", "explain", "grad",
    "graph", "hessian", "hvp", "jacobian", "jvp", "nondifferentiable", "source", "value_and_grad", "vjp", "defjvp",
]
