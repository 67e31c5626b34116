"""Implicit differentiation: ``srcgrad.custom_root`` declares that a solver returns a root of a residual function.

In: a residual ``F(x, *theta)`` (a module-level function srcgrad differentiates; its first parameter is the unknown)
and a solver whose parameters include every ``theta`` by name. Out: the solver itself, now a primitive of srcgrad
with a reverse rule and a forward (tangent) rule built on the implicit function theorem at the root ``x*``::

    dx*/dtheta = -(dF/dx)^-1 dF/dtheta

The solver's own iterations are run, never differentiated: it is a black box returning the root.
What holds:
- the derivatives of ``F`` are srcgrad's own (``value_and_grad`` / ``vjp`` / ``jvp`` of the residual, generated once
  per argument kinds and guarded like any ``srcgrad.grad``);
- a scalar unknown (a Python number or a 0-d value): ``dF/dx`` is a number, the rules divide by it (one sweep of the
  residual per gradient);
- an array unknown: ``solve="dense"`` (the default) builds the Jacobian ``dF/dx`` from one vector-Jacobian product per
  element and calls ``np.linalg.solve`` (for small systems: n + 1 sweeps and an n x n solve);
  ``solve="diagonal"`` is the user's declaration that ``F[i]`` depends on ``x`` through ``x[i]`` only (a vectorised
  scalar solve): ``dF/dx`` is then the vector-Jacobian product with ones, and two sweeps suffice;
- solver parameters that are not parameters of the residual (an initial guess, a tolerance, an iteration count) are
  declared discrete: the root does not depend on them; the solver is declared a view (``view=True``): a black box
  may return an argument itself (an initial guess that is already a root), so an in-place update of either is
  refused;
- the result must be a root: where one Newton step from it (``|F / F'|``) is larger than ``root_tol * sqrt(1 + x^2)``
  (the largest |x| for an array),
  the rule raises :class:`~srcgrad.errors.UnsupportedValue` rather than return the derivative of something else; a
  singular ``dF/dx`` raises it too;
- second derivatives through the root are refused (NoRuleError at the call of the solver): the tangent rule is an
  object with no source for a second sweep to read.
"""

from __future__ import annotations

import inspect
import linecache
from collections.abc import Callable
from typing import Any

import numpy as np

from srcgrad import api, higher
from srcgrad.errors import InvalidArgument, UnsupportedValue
from srcgrad.rules.registry import defgrad, defjvp

SOLVES = ("dense", "diagonal")
_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def custom_root(residual: Callable[..., Any], *, solve: str = "dense", root_tol: float = 1e-6
                ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare that the decorated solver returns a root ``x`` of ``residual(x, *theta) = 0``.

    srcgrad then differentiates a call of the solver through the implicit function theorem, using its own derivative
    of ``residual``, instead of through the solver's iterations::

        def kepler(E, M, e):
            return E - e * math.sin(E) - M

        @srcgrad.custom_root(kepler)
        def solve_kepler(M, e):
            E = M
            for _ in range(50):
                E = E - kepler(E, M, e) / (1.0 - e * math.cos(E))
            return E

    Every parameter of ``residual`` after the first must be a parameter of the solver (same name); the solver's
    other parameters (initial guess, tolerance) contribute no gradient. ``solve``: ``"dense"`` (an array unknown's
    Jacobian is formed and solved: small systems) or ``"diagonal"`` (the residual is elementwise in the unknown).
    ``root_tol``: how far from a root (one Newton step, relative to ``sqrt(1 + x^2)``) the result may be.
    """
    if solve not in SOLVES:
        raise InvalidArgument(f"custom_root: solve must be one of {SOLVES}, got {solve!r}")
    api.check_function(residual, "custom_root")

    def declare(solver: Callable[..., Any]) -> Callable[..., Any]:
        api.check_function(solver, "custom_root")
        root = _Root(residual, solver, solve, root_tol)
        defgrad(solver, wrt=root.theta, discrete=root.discrete, name=solver.__qualname__,
                out_kind="callee", view=True)(root.reverse_rule())  # (a black box: it may return an argument)
        defjvp(solver)(root.forward_rule())
        return solver

    return declare


class _Root:
    """One declared solver: which arguments are the residual's, and srcgrad's derivatives of the residual."""

    def __init__(self, residual: Callable[..., Any], solver: Callable[..., Any], solve: str, root_tol: float):
        self.residual, self.solver, self.solve, self.root_tol = residual, solver, solve, root_tol
        unknown, *theta = _plain_parameters(residual, "the residual")
        solver_params = _plain_parameters(solver, "the solver")
        missing = [name for name in theta if name not in solver_params]
        if missing:
            raise InvalidArgument(
                f"custom_root: the residual's parameters {missing} are not parameters of {solver.__qualname__}",
                hint="name the solver's parameters as the residual's (after its first, the unknown)")
        if not theta:
            raise InvalidArgument(f"custom_root: the residual {residual.__qualname__} has no parameter after the "
                                  "unknown, so its root depends on nothing")
        self.unknown, self.solver_params = unknown, solver_params
        self.theta = tuple(theta)
        self.discrete = tuple(p for p in solver_params if p not in theta)
        self.theta_positions = [solver_params.index(name) for name in theta]
        self.derivatives: dict[tuple[str, ...], Any] = {}  # (kind of derivative, wrt...) -> srcgrad function

    # --- srcgrad's derivatives of the residual, made at first use -----------------------------------------------

    def _made(self, kind: str, wrt: tuple[str, ...]) -> Any:
        key = (kind, *wrt)
        found = self.derivatives.get(key)
        if found is None:
            spec = wrt if len(wrt) > 1 else wrt[0]
            if kind == "value_and_grad":
                found = api.value_and_grad(self.residual, wrt=spec)
            elif kind == "vjp":
                found = api.vjp(self.residual, wrt=spec)
            else:
                found = higher.jvp(self.residual, wrt=spec)
            self.derivatives[key] = found
        return found

    def _theta(self, values: tuple[Any, ...]) -> list[Any]:
        return [values[i] for i in self.theta_positions]

    # --- the rules -----------------------------------------------------------------------------------------------

    def reverse_rule(self) -> Callable[..., Any]:
        """The reverse rule, as readable text: a scalar root is handled in place (one sweep of the residual, one
        division); anything else goes to :meth:`pull_back`."""
        name = f"{self.solver.__name__}_implicit"
        params = self.solver_params
        taken = set(params) | {"g", "ans"}
        fresh = _Fresh(taken)
        value, scale, local = fresh("value"), fresh("scale"), {n: fresh(f"{n}_partial") for n in (self.unknown,
                                                                                                  *self.theta)}
        calls = {n: fresh(n) for n in ("float", "type", "partials", "root_tol_squared", "pull_back")}
        theta = ", ".join(self.theta)
        slope = local[self.unknown]
        if len(self.theta) == 1:
            scaling = f"            return -g / {slope} * {local[self.theta[0]]}\n"
        else:
            scaled = ", ".join(f"{scale} * {local[n]}" for n in self.theta)
            scaling = f"            {scale} = -g / {slope}\n            return {scaled}\n"
        text = (
            f"def {name}(g, ans, {', '.join(params)}):\n"
            f'    """Adjoint of the root of {self.residual.__qualname__} that {self.solver.__qualname__} returns: '
            f'-(dF/dx)^-1 dF/d({theta}) (srcgrad.custom_root)."""\n'
            f"    if {calls['type']}(ans) is {calls['float']}:  # dF/dx is a number: divide by it\n"
            f"        {value}, ({', '.join(local.values())}) = {calls['partials']}(ans, {theta})\n"
            f"        # an isolated root: one Newton step from it, {value} / {slope}, is small\n"
            f"        if {slope} != 0 and {value} * {value} <= {calls['root_tol_squared']} * (1.0 + ans * ans) * "
            f"({slope} * {slope}):\n"
            f"{scaling}"
            f"    return {calls['pull_back']}(g, ans, ({theta}{',' if len(self.theta) == 1 else ''}))\n"
        )
        namespace = {calls["float"]: float, calls["type"]: type, calls["root_tol_squared"]: self.root_tol ** 2,
                     calls["pull_back"]: self._pull_back_packed}
        rule = _defined(text, name, namespace, self.solver)
        # (the residual's derivative is made at the first call: the solver may be declared before the residual's
        # module is complete)
        rule.__globals__[calls["partials"]] = self._lazy_partials(rule.__globals__, calls["partials"])
        return rule

    def _lazy_partials(self, namespace: dict[str, Any], name: str) -> Callable[..., Any]:
        def partials(*args: Any) -> Any:
            made = namespace[name] = self._made("value_and_grad", (self.unknown, *self.theta))
            return made(*args)

        return partials

    def _pull_back_packed(self, g: Any, ans: Any, theta: tuple[Any, ...]) -> Any:
        contributions = self.pull_back(g, ans, list(theta))
        return contributions[0] if len(contributions) == 1 else contributions

    def forward_rule(self) -> Callable[..., Any]:
        return self._named(_TangentRule(self), ["ans"], [f"{name}_dot" for name in self.theta])

    def _named(self, rule: Callable[..., Any], first: list[str], last: list[str]) -> Callable[..., Any]:
        """``rule`` with the signature srcgrad reads: ``first``, the solver's parameters (defaults kept), ``last``."""
        sig = inspect.signature(self.solver)
        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in first]
        params += [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in sig.parameters.values()]
        params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in last]
        rule.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        rule.__name__ = rule.__qualname__ = f"{self.solver.__name__}_implicit" + ("_jvp" if last else "")
        rule.__module__ = self.solver.__module__  # (the user's declaration, not one of srcgrad's built-in rules)
        rule.__doc__ = (f"{'Tangent' if last else 'Adjoint'} of the root of {self.residual.__qualname__} that "
                        f"{self.solver.__qualname__} returns (implicit function theorem; srcgrad.custom_root).")
        return rule

    def pull_back(self, g: Any, x: Any, theta: list[Any]) -> tuple[Any, ...]:
        """The contribution of the root's adjoint ``g`` to each theta: ``-(dF/dtheta)^T (dF/dx)^-T g``."""
        _check_result(x, self.solver)
        if np.ndim(x) == 0:
            value, partials = self._made("value_and_grad", (self.unknown, *self.theta))(x, *theta)
            scale = -g / self._checked_slope(value, partials[0], x)
            return tuple(scale * p for p in partials[1:])
        pull = self._made("vjp", (self.unknown, *self.theta))
        if self.solve == "diagonal":
            diagonal = pull(x, *theta, seed=np.ones(np.shape(x)))[0]
            self._check_diagonal_root(self.residual(x, *theta), diagonal, x)
            return tuple(pull(x, *theta, seed=-g / diagonal)[1:])
        jac = self._jacobian(pull, x, theta)
        self._check_dense_root(jac, self.residual(x, *theta), x)
        lam = self._solved(jac.T, -np.reshape(g, -1), x)
        return tuple(pull(x, *theta, seed=lam.reshape(np.shape(x)))[1:])

    def push_forward(self, x: Any, theta: list[Any], theta_dots: list[Any]) -> Any:
        """The root's tangent for the tangents of theta: ``-(dF/dx)^-1 (dF/dtheta . theta_dot)``."""
        _check_result(x, self.solver)
        dots = theta_dots if len(theta_dots) > 1 else theta_dots[0]
        value, along = self._made("jvp", self.theta)(x, *theta, dots)
        if np.ndim(x) == 0:
            _, slope = self._made("value_and_grad", (self.unknown,))(x, *theta)
            return -along / self._checked_slope(value, slope, x)
        pull = self._made("vjp", (self.unknown,))
        if self.solve == "diagonal":
            diagonal = pull(x, *theta, seed=np.ones(np.shape(x)))
            self._check_diagonal_root(value, diagonal, x)
            return -along / diagonal
        jac = self._jacobian(pull, x, theta, only_unknown=True)
        self._check_dense_root(jac, value, x)
        return -self._solved(jac, np.reshape(along, -1), x).reshape(np.shape(x))

    def _jacobian(self, pull: Any, x: Any, theta: list[Any], only_unknown: bool = False) -> np.ndarray:
        """``dF/dx`` as an n x n matrix (row i: the vector-Jacobian product with the i-th unit seed)."""
        shape, n = np.shape(x), int(np.size(x))
        rows = np.empty((n, n))
        for i in range(n):
            seed = np.zeros(n)
            seed[i] = 1.0
            row = pull(x, *theta, seed=seed.reshape(shape))
            rows[i] = np.reshape(row if only_unknown else row[0], -1)
        return rows

    # --- is it a root, and is the theorem applicable? ------------------------------------------------------------

    def _not_a_root(self, x: Any, step: Any) -> UnsupportedValue:
        return UnsupportedValue(
            f"{self.solver.__qualname__} returned a value that is not a root of {self.residual.__qualname__}: one "
            f"Newton step from it moves it by {float(np.max(np.abs(step))):.3g} (root_tol={self.root_tol:g})",
            hint="let the solver converge (more iterations, a tighter tolerance), or raise custom_root's root_tol")

    def _singular(self) -> UnsupportedValue:
        return UnsupportedValue(
            f"the derivative of {self.residual.__qualname__} with respect to {self.unknown} is singular at the root "
            f"{self.solver.__qualname__} returned: the implicit function theorem does not apply there",
            hint="the root is not isolated (a double root or a flat residual); differentiate another way")

    def _checked_slope(self, value: Any, slope: Any, x: Any) -> Any:
        """``slope`` (dF/dx at ``x``), once ``x`` is known to be an isolated root."""
        if slope == 0:
            raise self._singular()
        if not abs(value) <= self.root_tol * np.hypot(1.0, x) * abs(slope):  # one Newton step (NaN is no root)
            raise self._not_a_root(x, value / slope)
        return slope

    def _check_diagonal_root(self, value: Any, diagonal: Any, x: Any) -> None:
        if np.any(diagonal == 0):
            raise self._singular()
        self._check_step(np.asarray(value) / diagonal, x)

    def _check_dense_root(self, jac: np.ndarray, value: Any, x: Any) -> None:
        self._check_step(self._solved(jac, np.reshape(value, -1), x), x)

    def _check_step(self, step: np.ndarray, x: Any) -> None:
        if not np.max(np.abs(step), initial=0.0) <= self.root_tol * np.hypot(1.0, np.max(np.abs(x), initial=0.0)):
            raise self._not_a_root(x, step)

    def _solved(self, matrix: np.ndarray, rhs: np.ndarray, x: Any) -> np.ndarray:
        try:
            return np.linalg.solve(matrix, rhs)
        except np.linalg.LinAlgError:
            raise self._singular() from None


class _TangentRule:
    """The forward (tangent) rule of a declared solver: an object, not a function, so that a second derivative
    (reverse mode over the generated forward mode) finds no source to read and refuses it at the user's line."""

    def __init__(self, root: _Root):
        self.root = root
        self.n_params = len(root.solver_params)

    def __call__(self, ans: Any, *values: Any) -> Any:
        n = self.n_params
        return self.root.push_forward(ans, self.root._theta(values[:n]), list(values[n:]))


class _Fresh:
    """Names for a generated rule's locals and globals that no parameter of the solver takes."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)

    def __call__(self, name: str) -> str:
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


def _defined(text: str, name: str, namespace: dict[str, Any], solver: Callable[..., Any]) -> Callable[..., Any]:
    """The function ``text`` defines, its source served by :mod:`linecache` (tracebacks, ``inspect``), with the
    solver's defaults."""
    filename = f"<srcgrad custom_root {solver.__module__}.{solver.__qualname__}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(compile(text, filename, "exec"), namespace)
    rule: Callable[..., Any] = namespace[name]
    rule.__defaults__ = solver.__defaults__
    rule.__module__ = solver.__module__  # (the user's declaration, not one of srcgrad's built-in rules)
    return rule


def _plain_parameters(func: Callable[..., Any], what: str) -> list[str]:
    params = list(inspect.signature(func).parameters.values())
    other = [p.name for p in params if p.kind not in _PLAIN]
    if other:
        raise InvalidArgument(f"custom_root: {what} {func.__qualname__} takes {other} (keyword-only or variable "
                              "parameters)", hint="give it plain positional parameters")
    if not params:
        raise InvalidArgument(f"custom_root: {what} {func.__qualname__} takes no parameters")
    return [p.name for p in params]


def _check_result(x: Any, solver: Callable[..., Any]) -> None:
    if not (isinstance(x, (float, int, np.ndarray, np.floating))) or np.iscomplexobj(x):
        raise UnsupportedValue(f"custom_root: {solver.__qualname__} returned a {type(x).__name__}, not a real number "
                               "or a real array", hint="return the root itself (one number or one array)")
