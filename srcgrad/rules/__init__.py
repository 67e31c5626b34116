"""The derivative-rule table, in sections: arithmetic and builtins, ``math``, numpy (elementwise, reductions,
linear algebra, decompositions, shapes and indexing, and more of numpy in :mod:`srcgrad.rules.numpy_more`), and
scipy (special, stats, linalg, signal) once the user's code imports it.

Importing this package imports every built-in rule module (registering its rules: cheap, their signatures and texts
are read at first use); :func:`lookup` finds the rule for a primitive. Forward-mode (tangent) rules are in
:mod:`srcgrad.rules.forward`.
"""

# Registered at import, not at the first lookup: the first gradient a process makes should cost what generating it
# costs (issue 12's cold generation time), and registering is cheap — a rule's signature is made at its first read
# and its text parsed at its first inlining (srcgrad/rules/registry.py). Imported before any rule of the user's, so
# a user's rule for a built-in primitive replaces the built-in one.
from srcgrad.rules import (  # noqa: F401  (each module registers its rules)
    arithmetic,
    numpy_calculus,
    numpy_decompositions,
    numpy_elementwise,
    numpy_linalg,
    numpy_more,
    numpy_reductions,
    numpy_shapes,
    pymath,
    runtime_rules,
)
from srcgrad.rules.registry import (
    Rule,
    all_rules,
    defgrad,
    lookup,
    nondifferentiable,
    optional_rules,
)

# scipy is optional, and importing it takes a second: each module's rules register once the user's code imported it.
for _library in ("special", "stats", "linalg", "signal"):
    optional_rules(f"scipy.{_library}", f"srcgrad.rules.scipy_{_library}")

__all__ = ["Rule", "all_rules", "defgrad", "lookup", "nondifferentiable"]
