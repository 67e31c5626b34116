"""What the core hands the tools: generated code together with what the core knew while making it.

In: filled by the pipeline (:class:`Generated`), by the emitter (the line map: one :class:`Origin` per line of
generated text) and by the code generators (:func:`mark` tags a statement with the IR op it was made for).
Out: read by the tools — errors (which user line a failing generated line computes, and whether it belongs to the
reverse sweep), ``srcgrad.graph`` and ``srcgrad.explain`` (the reverse sweep's statements, each adjoint's name),
``srcgrad.emit`` (the main function's text), forward mode and second order (the tangent and seed parameters).
What holds:
- nothing here is recovered from generated text or from the spelling of a name: the line map is written line by line
  as the text is printed, the name maps where the names are allocated;
- the line map of every compiled function is kept by its file name (:func:`register`), as ``linecache`` keeps its
  text, so a traceback's frame finds where its line came from (:func:`origin`);
- this module imports nothing from srcgrad: every layer may read it.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

from srcgrad.records import record

FORWARD = "forward"  # the forward sweep: the user's computation (and, in forward mode, its tangents)
REVERSE = "reverse"  # the reverse sweep: adjoints


@record(frozen=True)
class Origin:
    """Where one line of generated code comes from."""

    sweep: str = ""  # FORWARD, REVERSE, or "" (the ``def`` line, the docstring)
    line: int | None = None  # the user's source line it computes or differentiates (None: srcgrad's bookkeeping)
    op: str | None = None  # the IR name the op it was generated for defines (None: not made for one op)
    heading: str = ""  # the comment heading the group of lines it belongs to ("grad of line 9: y = 3 * x")
    col: int | None = None  # the column (in the parsed source) of the user's code the op was made for (None: unknown)


NO_ORIGIN = Origin()
LineMap = tuple  # tuple[Origin, ...]: the origin of line k + 1 of a text is item k


@record
class Generated:
    """One generated function, as the pipeline makes it for one specialisation."""

    source: str  # the text users read: the function, then the helper functions it calls
    function: Any  # the compiled function
    kinds: tuple[str, ...]  # argument kinds it is specialised to ("S" Python number, "A" maybe-array)
    bound: dict[str, Any]  # names the text uses that srcgrad provides (np, math, runtime helpers, rules)
    guards: Any = None  # what it assumed about the user's names (guards.Guards; set by the transform that asked)
    main: str = ""  # the function's own text (the first definition of ``source``)
    helpers: tuple[str, ...] = ()  # the texts of the generated helper functions it calls, in first-use order
    lines: LineMap = ()  # the origin of each line of ``main``
    adjoints: dict[str, str] = field(default_factory=dict)  # IR name -> the name of its adjoint (``x`` -> ``x_bar``)
    tangents: dict[str, str] = field(default_factory=dict)  # IR name -> the name of its tangent (``x`` -> ``x_dot``)
    seeds: tuple[str, ...] = ()  # parameters that take the output's adjoint (a vjp's ``seed``)
    tangent_params: tuple[str, ...] = ()  # parameters that take the tangents or directions, one per wrt parameter


def mark(statements: list, op: Any) -> list:
    """``statements`` (made for IR ``op``), each tagged with the op, for the line map; returns them."""
    for statement in statements:
        if getattr(statement, "srcgrad_origin", None) is None and hasattr(statement, "_fields"):
            statement.srcgrad_origin = (op.target, op.line, op.col)
    return statements


def marked(statement: Any) -> tuple[str, int, int] | None:
    """The (IR name, source line, column) :func:`mark` tagged ``statement`` with, or None."""
    return getattr(statement, "srcgrad_origin", None)


_LINE_MAPS: dict[str, LineMap] = {}  # compiled file name -> the origin of each line of its text


def register(filename: str, lines: LineMap) -> None:
    """Keep the line map of the text compiled under ``filename`` (as ``linecache`` keeps the text)."""
    _LINE_MAPS[filename] = lines


def origin(filename: str, lineno: int) -> Origin | None:
    """Where line ``lineno`` of the code compiled under ``filename`` comes from; None when srcgrad did not compile
    that file."""
    lines = _LINE_MAPS.get(filename)
    if lines is None:
        return None
    return lines[lineno - 1] if 0 < lineno <= len(lines) else NO_ORIGIN


__all__ = ["FORWARD", "NO_ORIGIN", "REVERSE", "Generated", "Origin", "mark", "marked", "origin", "register"]
