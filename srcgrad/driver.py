"""The driver: one generation, from a parsed function to compiled generated functions, as a table of stages.

In: a :class:`~srcgrad.frontend.ParsedFunction`, a :class:`Product` (what to make: a gradient or a forward-mode
function, :mod:`srcgrad.pipeline`; a helper's forward/backward pair or tangent function, :mod:`srcgrad.calls`) and a
:class:`Backend` (how functions are written and compiled). Out: :class:`Made` — the IR after the passes, the facts,
the program, the scope of bound names, and each unit's emitted text and compiled function.

The stages (:data:`STAGES`), in order::

    lower     the function's IR (srcgrad/lower.py), lowered once per parsed function (:func:`srcgrad.lower.lowered`)
    prepare   the product's rewrite of the IR (has_aux: the returned pair is split; srcgrad/outputs.py)
    passes    kinds, inplace, dce, activity, shapes (srcgrad/pass_table.py: PASSES; SRCGRAD_DUMP prints their facts)
    build     the product's program: a reverse sweep (srcgrad/adjoint.py) or tangents (srcgrad/forward.py)
    fuse      single-use temporaries written into their use (srcgrad/fuse.py), when the product asks for it
    units     the functions the product makes of the program (names, signatures, returned values, docstrings)
    emit      the backend writes each unit (PythonBackend: Python text, read back and checked)
    compile   the backend makes each a callable

What holds: every product runs these stages and no others; a stage reads what earlier stages made and adds its own
part; the IR a pass is given is the driver's own copy (the shared lowering is never changed).
"""

from __future__ import annotations

import ast
from dataclasses import field
from typing import Any

from srcgrad import codegen, emitter, fuse, ir, lower, pass_table, passes
from srcgrad.adjoint import Program
from srcgrad.frontend import ParsedFunction
from srcgrad.records import record


@record
class Unit:
    """One function to emit: its program (forward items, then reverse items), name, parameter list (text), returned
    expressions, docstring, and a label naming its compiled code (``f:grad``)."""

    program: Program
    name: str
    signature: str
    returns: list[ast.expr]
    doc: str
    label: str


class Product:
    """What a generation makes. ``wrt``, ``kinds`` and ``call_kind`` are what the passes are asked; ``fused``: run the
    fuse stage on the program."""

    wrt: list[str]
    kinds: dict[str, str]
    call_kind: Any = None
    fused: bool = False

    def prepare(self, fn: ir.Function) -> ir.Function:
        return fn

    def build(self, fn: ir.Function, facts: passes.Facts, scope: codegen.Scope) -> Program:
        raise NotImplementedError

    def units(self, made: Made) -> list[Unit]:
        raise NotImplementedError


class Backend:
    """The seam between the program and an output language: ``emit`` writes a unit, ``compile`` makes it callable
    (in the user's globals and closure, with srcgrad's ``bound`` names). Another output (numba) is another class."""

    def emit(self, unit: Unit, bound: dict[str, Any]) -> emitter.Emitted:
        raise NotImplementedError

    def compile(self, emitted: emitter.Emitted, user_func: Any, label: str) -> Any:
        raise NotImplementedError


class PythonBackend(Backend):
    """Python source text (srcgrad/emitter.py: printed, read back and compared), compiled to a closure over srcgrad's
    names that runs in the user's module globals."""

    def emit(self, unit: Unit, bound: dict[str, Any]) -> emitter.Emitted:
        return emitter.emit_text(unit.program, unit.name, unit.signature, unit.returns, unit.doc, bound)

    def compile(self, emitted: emitter.Emitted, user_func: Any, label: str) -> Any:
        return emitter.compile_function(emitted, user_func, label)


PYTHON = PythonBackend()
BACKENDS = ("python", "numba")  # (srcgrad.pipeline.backend finds one by name: numba's is loaded when asked for)


@record
class Made:
    """What the stages made, each filling its part."""

    pf: ParsedFunction
    product: Product
    backend: Backend
    fn: ir.Function | None = None
    facts: passes.Facts | None = None
    scope: codegen.Scope | None = None
    program: Program | None = None
    units: list[Unit] = field(default_factory=list)
    emitted: list[emitter.Emitted] = field(default_factory=list)
    functions: list[Any] = field(default_factory=list)

    @property
    def source(self) -> str:
        """The units' texts, one after the other."""
        return "\n\n".join(e.source for e in self.emitted)


def _lower(made: Made) -> None:
    made.fn = lower.lowered(made.pf)


def _prepare(made: Made) -> None:
    made.fn = made.product.prepare(made.fn)


def _passes(made: Made) -> None:
    product = made.product
    made.fn, made.facts = pass_table.run_passes(made.fn, list(product.wrt), product.kinds, product.call_kind)


def _build(made: Made) -> None:
    made.scope = codegen.scope_for(made.fn, made.pf.resolve)
    made.program = made.product.build(made.fn, made.facts, made.scope)


def _fuse(made: Made) -> None:
    if made.product.fused:
        fuse.fuse(made.program)


def _units(made: Made) -> None:
    made.units = made.product.units(made)


def _emit(made: Made) -> None:
    made.emitted = [made.backend.emit(unit, made.scope.bound) for unit in made.units]


def _compile(made: Made) -> None:
    made.functions = [made.backend.compile(e, made.pf.func, unit.label) for e, unit in zip(made.emitted, made.units)]


STAGES = (
    ("lower", _lower),
    ("prepare", _prepare),
    ("passes", _passes),
    ("build", _build),
    ("fuse", _fuse),
    ("units", _units),
    ("emit", _emit),
    ("compile", _compile),
)


def run(pf: ParsedFunction, product: Product, backend: Backend = PYTHON) -> Made:
    """Run every stage of :data:`STAGES` for ``product``."""
    made = Made(pf, product, backend)
    for _, stage in STAGES:
        stage(made)
    return made
