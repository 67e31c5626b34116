"""The derivative-rule table, in sections: arithmetic and builtins, ``math``, numpy (elementwise, reductions,
linear algebra, decompositions, shapes and indexing, and more of numpy in :mod:`srcgrad.rules.numpy_more`), and
scipy (special, stats, linalg, signal) once the user's code imports it.

Importing this package declares every built-in rule module, imported (registering its rules) at the first use of
the table; :func:`lookup` finds the rule for a primitive. Forward-mode (tangent) rules are in
:mod:`srcgrad.rules.forward`.
"""

from srcgrad.rules.registry import Rule, all_rules, builtin_rules, defgrad, lookup, nondifferentiable, optional_rules

builtin_rules([f"srcgrad.rules.{name}" for name in (
    "arithmetic", "numpy_calculus", "numpy_decompositions", "numpy_elementwise", "numpy_linalg", "numpy_more",
    "numpy_reductions", "numpy_shapes", "pymath", "runtime_rules",
)])

# scipy is optional, and importing it takes a second: each module's rules register once the user's code imported it.
for _library in ("special", "stats", "linalg", "signal"):
    optional_rules(f"scipy.{_library}", f"srcgrad.rules.scipy_{_library}")

__all__ = ["Rule", "all_rules", "defgrad", "lookup", "nondifferentiable"]
