"""The pipeline's entry points: a gradient (reverse mode) or a forward-mode function of a user function.

In: a user function, which parameters to differentiate, a mode (``grad``, ``value_and_grad``, ``value_and_grad_aux``,
``vjp``, ``explain``) or a forward style (``jvp``, ``direction``, ``unit``), and the kinds of the arguments (Python
number "S" or possibly-array "A"). Out: :class:`srcgrad.generated.Generated` — the source text, the compiled
function, the line map and the names given to adjoints, tangents and seeds. The stages
(lower, passes, build, fuse, emit, compile) are run by :mod:`srcgrad.driver`; this module says what the functions
are (:class:`Reverse`, :class:`Forward`): their programs, names, signatures, returned values and docstrings.
"""

from __future__ import annotations

import ast
import contextlib
import gc
from typing import Any

from srcgrad import (
    adjoint,
    cache,
    calls,
    codegen,
    driver,
    frontend,
    ir,
    locks,
    lower,
    naming,
    outputs,
    runtime,
    sourcetext,
)
from srcgrad.errors import InternalError, SrcgradError
from srcgrad.generated import Generated
from srcgrad.version import __version__


def parse_and_fence(func: Any) -> frontend.ParsedFunction:
    pf = frontend.parse(func)
    frontend.fence(pf)
    return pf


def lower_function(pf: frontend.ParsedFunction) -> ir.Function:
    """The IR of ``pf`` as lowered (a copy of the one lowering the generations share: srcgrad.lower.lowered)."""
    return lower.lowered(pf)


def generate(pf: frontend.ParsedFunction, wrt: list[str], mode: str, kinds: dict[str, str],
             as_tuple: bool = False, backend: str = "python") -> Generated:
    """Run every stage for one specialisation; unexpected failures become an InternalError with a location.

    ``as_tuple``: return the gradients as a tuple even for one parameter (``wrt`` was given as a tuple).
    The on-disk cache (srcgrad/cache.py) is looked up first and written after a generation (Python backend only:
    the numba backend compiles at the first call, in-process).
    """
    try:
        with collector_paused():
            if backend != "python":
                return _generate(pf, wrt, mode, kinds, as_tuple, backend)
            return cache.cached(_generate, pf, wrt, mode, kinds, as_tuple)
    except SrcgradError:
        raise
    except Exception as exc:  # noqa: BLE001 - an internal failure must still name the user's code
        raise InternalError(
            f"internal error while differentiating {pf.name}: {type(exc).__name__}: {exc}",
            pf.location(pf.node),
            hint="this is a bug in srcgrad; please report it with this function",
        ) from exc


def _generate(pf: frontend.ParsedFunction, wrt: list[str], mode: str, kinds: dict[str, str],
              as_tuple: bool, backend: str = "python") -> Generated:
    product = Reverse(wrt, kinds, mode, as_tuple)
    made = driver.run(pf, product, backend_named(backend))
    return _generated(made, kinds, adjoints=made.program.derivatives, seeds=(product.seed,) if product.seed else ())


def _generated(made: driver.Made, kinds: dict[str, str], **names: Any) -> Generated:
    """The one function ``made`` holds: its text (then the texts of the generated helpers it calls, each under a
    comment naming it), what the emitter recorded, and ``names`` (the name maps and parameters of Generated)."""
    bound = made.scope.bound
    helpers = [(sourcetext.comment(f"helper {v.func.__qualname__} ({', '.join(v.varied)})"), v.source)
               for v in calls.helpers_of(bound)]
    emitted = made.emitted[0]
    source = made.source + "".join(f"\n\n# {title}\n{text}" for title, text in helpers)
    return Generated(source, made.functions[0], tuple(kinds[p] for p in made.fn.params), dict(bound),
                     main=emitted.source, helpers=tuple(text for _, text in helpers), lines=emitted.lines, **names)


class Reverse(driver.Product):
    """A gradient: ``f_grad(params) -> gradient(s)`` (``value_and_grad``: ``(value, gradients)``; ``vjp``: a keyword
    ``seed``; ``value_and_grad_aux``: ``((value, aux), gradients)``; ``explain``: every step kept in a variable)."""

    call_kind = staticmethod(calls.return_kind)

    def __init__(self, wrt: list[str], kinds: dict[str, str], mode: str, as_tuple: bool):
        self.wrt, self.kinds, self.mode, self.as_tuple = wrt, kinds, mode, as_tuple
        self.fused = mode != "explain"  # (explain shows every adjoint in a variable of its own)
        self.aux: str | None = None
        self.seed: str | None = None

    def prepare(self, fn: ir.Function) -> ir.Function:
        if self.mode == "value_and_grad_aux":  # f returns (loss, aux): loss is differentiated, aux passed through
            fn, self.aux = outputs.split_aux(fn)
        return fn

    def build(self, fn: ir.Function, facts: Any, scope: codegen.Scope) -> adjoint.Program:
        self.seed = scope.local(naming.SEED) if self.mode == "vjp" else None
        mode = "value_and_grad" if self.aux else self.mode
        return adjoint.build_program(fn, facts, self.wrt, scope, mode, self.seed, calls.variant)

    def units(self, made: driver.Made) -> list[driver.Unit]:
        program, fn, mode = made.program, made.fn, self.mode
        returns = list(program.results)
        if len(returns) > 1 or self.as_tuple:
            returns = [ast.Tuple(elts=returns, ctx=ast.Load())]
        if mode in ("value_and_grad", "explain"):
            returns = [program.value] + returns
        elif self.aux is not None:
            pair = ast.Tuple(elts=[program.value, ast.Name(id=self.aux, ctx=ast.Load())], ctx=ast.Load())
            returns = [pair] + returns
        signature = codegen.with_keywords(fn.signature, [self.seed]) if self.seed else fn.signature
        name = made.scope.local(naming.function(fn.name, mode))
        doc = (f"{naming.title(mode)} of {fn.name} ({_short(fn.filename)}:{fn.first_line}) with respect to "
               f"{', '.join(self.wrt)}; generated by srcgrad {__version__}.")
        return [driver.Unit(program, name, signature, returns, doc, f"{fn.name}:{mode}")]


_collector = {"pausing": 0, "paused": False}  # threads generating now; whether srcgrad turned the collector off
_collector_lock = locks.lock()


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off while any thread generates (and back on after, when srcgrad turned it
    off). Generation makes many small trees and no reference cycles, so the collector's passes over a heap that
    grows with the function find nothing and cost a fifth of the time of a long function."""
    with _collector_lock:
        _collector["pausing"] += 1
        if _collector["pausing"] == 1 and gc.isenabled():
            gc.disable()
            _collector["paused"] = True
    try:
        yield
    finally:
        with _collector_lock:
            _collector["pausing"] -= 1
            if not _collector["pausing"] and _collector["paused"]:
                _collector["paused"] = False
                gc.enable()


def _short(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def generate_forward(pf: frontend.ParsedFunction, wrt: list[str], kinds: dict[str, str], style: str,
                     backend: str = "python") -> Generated:
    """Forward mode. ``jvp``: ``f_jvp(params, *, x_dot...) -> (value, tangent)``. ``direction``:
    ``f_dir(params, *, x_dir...) -> tangent`` (a plain function reverse mode can differentiate again: Hessian-vector
    products). ``unit``: ``f_dd(params) -> tangent`` along 1.0 for scalar parameters (second derivatives)."""
    try:
        return _generate_forward(pf, wrt, kinds, style, backend)
    except SrcgradError:
        raise
    except Exception as exc:  # noqa: BLE001 - an internal failure must still name the user's code
        raise InternalError(
            f"internal error while differentiating {pf.name} in forward mode: {type(exc).__name__}: {exc}",
            pf.location(pf.node), hint="this is a bug in srcgrad; please report it with this function",
        ) from exc


def _generate_forward(pf: frontend.ParsedFunction, wrt: list[str], kinds: dict[str, str], style: str,
                      backend: str = "python") -> Generated:
    made = driver.run(pf, Forward(wrt, kinds, style), backend_named(backend))
    return _generated(made, kinds, tangents=made.program.derivatives, tangent_params=tuple(made.product.extra))


class Forward(driver.Product):
    """A forward-mode function of the style ``jvp``, ``direction`` or ``unit`` (see :func:`generate_forward`)."""

    call_kind = staticmethod(calls.return_kind)

    def __init__(self, wrt: list[str], kinds: dict[str, str], style: str):
        self.wrt, self.kinds, self.style = wrt, kinds, style
        self.extra: list[str] = []
        self.tangent: ast.expr | None = None
        self.check: str | None = None

    def build(self, fn: ir.Function, facts: Any, scope: codegen.Scope) -> adjoint.Program:
        from srcgrad import forward

        self.extra = [scope.local(naming.forward_parameter(p, self.style)) for p in self.wrt] \
            if self.style != "unit" else []
        if self.style == "unit":
            self.check = scope.bind("check_scalar_argument", runtime.check_scalar_argument)
            inputs: dict = {p: ast.Constant(value=1.0) for p in self.wrt}
        else:
            inputs = {p: codegen.name(t) for p, t in zip(self.wrt, self.extra)}
        program, self.tangent = forward.build_tangent_program(fn, facts, self.wrt, scope, inputs, calls.jvp_variant)
        if self.check is not None:
            program.forward[:0] = [codegen.call_statement(self.check, [codegen.name(p)]) for p in self.wrt]
        return program

    def units(self, made: driver.Made) -> list[driver.Unit]:
        program, fn = made.program, made.fn
        returns = [ast.Tuple(elts=[program.value, self.tangent], ctx=ast.Load())] if self.style == "jvp" \
            else [self.tangent]
        name = made.scope.local(naming.function(fn.name, self.style))
        doc = (f"Forward mode of {fn.name} ({_short(fn.filename)}:{fn.first_line}) along {', '.join(self.wrt)}; "
               f"generated by srcgrad {__version__}.")
        signature = codegen.with_keywords(fn.signature, self.extra)
        return [driver.Unit(program, name, signature, returns, doc, f"{fn.name}:{self.style}")]


def backend_named(name: str) -> driver.Backend:
    """The backend called ``name`` (one of ``driver.BACKENDS``; numba's is loaded only when asked for: it sits above
    the driver and the helpers it compiles)."""
    if name == "python":
        return driver.PYTHON
    from srcgrad import numba_backend

    numba_backend.require()
    return numba_backend.NUMBA
