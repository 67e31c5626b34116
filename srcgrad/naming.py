"""Names in generated code: the one place that spells them.

In: a base name (a user's variable, a temporary's number, a generated function's name) and a test of which names are
taken. Out: the name generated code uses. What holds:
- a user's name is kept; a rebound name gets versions ``x``, ``x_1``, ``x_2``... (the lowering's SSA);
- the lowering's temporaries are ``t1``, ``t2``... in program order (the IR records which names are temporaries:
  ``ir.Function.temporaries``; nothing recognises one by its spelling);
- the adjoint of ``v`` is ``v_bar``, its tangent ``v_dot`` (forward mode), its direction ``v_dir`` (the
  directional-derivative function second order differentiates); a vjp's seed parameter is ``seed``;
- a name that is taken gets the first free suffix ``_1``, ``_2``... (:func:`fresh`).
Names are spelled here and recorded where they are made (``Generated.adjoints``, ``Generated.tangents``,
``Generated.seeds``...): tools read those records and never guess a name back from its spelling.
"""

from __future__ import annotations

from collections.abc import Callable, Container

SEED = "seed"  # a vjp's parameter: the adjoint of the output

_FORWARD_SUFFIXES = {"jvp": "_dot", "direction": "_dir", "unit": None}  # forward style -> its parameters' suffix
_FUNCTION_SUFFIXES = {"grad": "grad", "jvp": "jvp", "direction": "dir", "unit": "dd"}


def fresh(base: str, taken: Callable[[str], bool] | Container[str], first: int = 1) -> str:
    """``base`` when it is free, else ``base_<first>``, ``base_<first + 1>``... — the first name not ``taken`` (a
    container of names, or a test)."""
    is_taken = taken if callable(taken) else taken.__contains__
    name, k = base, first - 1
    while is_taken(name):
        k += 1
        name = f"{base}_{k}"
    return name


def version(name: str, k: int) -> str:
    """The ``k``-th rebinding of the user's ``name`` (``x_1``)."""
    return f"{name}_{k}"


def temporary(n: int) -> str:
    """The ``n``-th temporary of the lowering (``t3``)."""
    return f"t{n}"


def adjoint(name: str) -> str:
    """The preferred name of ``name``'s adjoint (``x_bar``)."""
    return f"{name}_bar"


def tangent(name: str) -> str:
    """The preferred name of ``name``'s tangent in forward mode (``x_dot``)."""
    return f"{name}_dot"


def forward_parameter(name: str, style: str) -> str | None:
    """The preferred name of the parameter a forward-mode function of ``style`` takes for parameter ``name``
    (``x_dot`` for ``jvp``, ``x_dir`` for ``direction``), or None (``unit`` takes none: its tangent is 1.0)."""
    suffix = _FORWARD_SUFFIXES[style]
    return None if suffix is None else f"{name}{suffix}"


def function(name: str, mode: str) -> str:
    """The preferred name of the function generated from ``name`` in ``mode`` (``f_grad``, ``f_vjp``, ``f_dir``)."""
    return f"{name}_{_FUNCTION_SUFFIXES.get(mode, mode)}"


__all__ = ["SEED", "adjoint", "forward_parameter", "fresh", "function", "tangent", "temporary", "version"]


_TITLES = {"grad": "Gradient", "value_and_grad": "Value and gradient", "vjp": "Vector-Jacobian product",
           "value_and_grad_aux": "Value (with auxiliary output) and gradient",
           "explain": "Value and gradient (every step kept)", "jvp": "Jacobian-vector product",
           "direction": "Directional derivative"}


def title(mode: str) -> str:
    """What a generated function of ``mode`` computes, as its docstring starts."""
    return _TITLES[mode]
