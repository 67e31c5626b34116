"""The derivative-rule table, in sections: arithmetic and builtins, ``math``, numpy.

Importing this package registers every built-in rule; :func:`lookup` finds the rule for a primitive.
"""

from srcgrad.rules import arithmetic, numpy_core, pymath  # noqa: F401  (registration side effects)
from srcgrad.rules.registry import Rule, all_rules, defgrad, lookup, nondifferentiable

__all__ = ["Rule", "all_rules", "defgrad", "lookup", "nondifferentiable"]
