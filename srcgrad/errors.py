"""Errors about the user's code.

In: a message, optionally a source location (file, line, column, the source line itself) and a hint.
Out: exceptions whose text names ``file:line:col``, shows the offending line with a caret under the column,
and says what to do instead. Every error srcgrad raises about user code derives from :class:`SrcgradError`.
:func:`call_failure` decides whether an exception raised by generated code is srcgrad's fault (then it becomes an
:class:`InternalError` located at the user's line) or the user's (then it passes through unchanged); :func:`refusal`
locates what srcgrad's runtime helpers refuse on purpose.
"""

from __future__ import annotations

import linecache
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from srcgrad import generated, usercode
from srcgrad.records import record

if TYPE_CHECKING:
    from srcgrad.frontend import ParsedFunction


@record(frozen=True)
class Location:
    """A place in the user's source: absolute file line (1-based) and column (0-based) in UTF-8 bytes of
    ``source_line``, as Python's ast counts them; shown (``file:line:col`` and the caret) in characters."""

    filename: str
    line: int
    col: int
    source_line: str = ""

    @property
    def char_col(self) -> int:
        """The column in characters: the characters of ``source_line`` that its first ``col`` bytes hold."""
        return len(self.source_line.encode("utf-8")[: self.col].decode("utf-8", errors="ignore"))

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.char_col + 1}"


class SrcgradError(Exception):
    """Base of every error srcgrad raises about the user's code."""

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None) -> None:
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(f"{self.location}: {self.message}")
            text = self.location.source_line.rstrip("\n")
            if text.strip():
                stripped = text.lstrip()
                indent = len(text) - len(stripped)
                before = stripped[: max(self.location.char_col - indent, 0)]
                parts.append("    " + stripped)
                parts.append("    " + "".join(_caret_pad(c) for c in before) + "^")
        else:
            parts.append(self.message)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


def _caret_pad(c: str) -> str:
    """What goes under character ``c`` so the caret lines up: a tab for a tab, two spaces under a wide (East Asian)
    character, nothing under a combining mark, else a space."""
    if c == "\t":
        return c
    if c.isascii():
        return " "
    import unicodedata  # (only for text beyond ASCII: its import is not paid by every `import srcgrad`)

    if unicodedata.combining(c):
        return ""
    return "  " if unicodedata.east_asian_width(c) in "WF" else " "


class UnsupportedSyntax(SrcgradError):
    """A construct outside the language fence (the subset srcgrad differentiates)."""


class NoRuleError(SrcgradError):
    """A differentiated value flows into a call that has no derivative rule."""


class SourceUnavailable(SrcgradError):
    """The function's source text cannot be retrieved (builtins, lambdas typed at a REPL, exec'd code)."""


class NonScalarOutput(SrcgradError):
    """``grad`` was asked for the gradient of a function whose output is not a scalar."""


class NonNumericOutput(SrcgradError, TypeError):
    """The differentiated function returned something that is not a real number or array (None, a string...)."""


class InvalidArgument(SrcgradError, TypeError):
    """Bad ``wrt`` or a call-time argument that cannot be differentiated (also a ``TypeError``)."""


class UnsupportedValue(SrcgradError, ValueError):
    """The function has no gradient (or tangent) srcgrad can follow at these argument values, found when the
    generated code ran: a complex number reaching ``np.real``, an ``np.pad`` mode without a rule, the eigenvectors of
    a repeated eigenvalue. A runtime helper raises ``ValueError("srcgrad: ...")`` (runtime imports only numpy);
    :func:`refusal` re-raises it as this, at the user's line of the call (also a ``ValueError``)."""


class InternalError(SrcgradError):
    """An unexpected failure inside srcgrad, re-raised with the user's location; please report it."""


# --- failures while running generated code ------------------------------------------------------------------------
#
# The generated code mixes the user's forward computation (whose errors are the user's: math.log(-1) raises as it
# would in their function) with srcgrad's reverse sweep and runtime helpers (whose AttributeError, KeyError,
# NameError ... are srcgrad's bugs). `call_failure` tells them apart from the traceback alone, without running
# anything again. Arithmetic errors are never srcgrad's: on Python floats a derivative that is infinite at the point
# (sqrt at 0) raises ZeroDivisionError as float division does.

INTERNAL_TYPES = (AssertionError, AttributeError, LookupError, NameError, TypeError, ValueError)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def call_failure(exc: BaseException, pf: ParsedFunction) -> SrcgradError | None:
    """The error to raise instead of ``exc``, raised while running generated code for the parsed function ``pf``:
    an :class:`InternalError` when the failure is srcgrad's, an :class:`UnsupportedValue` when srcgrad's own code
    refused on purpose (``ValueError("srcgrad: no gradient ...")``), both at the user's line; None when it is the
    user's (re-raise ``exc`` unchanged)."""
    refused = refusal(exc, pf)
    if refused is not None:
        return refused
    frames = [(tb.tb_frame, tb.tb_lineno) for tb in _walk(exc.__traceback__)]
    if not isinstance(exc, INTERNAL_TYPES) or isinstance(exc, SrcgradError) or _math_domain(exc) \
            or str(exc).startswith("srcgrad:"):
        return None  # not a bug: the user's error, or one srcgrad raises on purpose ("srcgrad: no gradient for ...")
    for frame, lineno in reversed(frames):
        filename = frame.f_code.co_filename
        if _is_library(frame) or _is_user_check(frame):
            continue  # numpy's or the standard library's code called by the culprit: look further out
        if filename.startswith("<srcgrad entry"):
            return None
        if filename.startswith("<srcgrad "):
            if not _in_reverse_sweep(filename, lineno) and not _unknown_name(exc, pf):
                return None  # the user's own forward computation failed, as it does in their function
            break
        if os.path.abspath(filename).startswith(_PACKAGE_DIR):
            break  # a runtime helper or built-in rule
        return None  # the user's code (their module, a rule of their own)
    else:
        return None
    return InternalError(
        f"internal error in the generated code for {pf.name}: {type(exc).__name__}: {exc}",
        _generated_location(frames, pf),
        hint="this is a bug in srcgrad; please report it with this function and the arguments of the call",
    )


def _is_refusal(exc: BaseException, frames: list[Any]) -> bool:
    """A ``ValueError("srcgrad: ...")`` raised by srcgrad's own code (a runtime helper, a rule)."""
    if type(exc) is not ValueError or not str(exc).startswith("srcgrad: "):
        return False
    inner = [frame for frame, _ in frames if not _is_library(frame)]
    return bool(inner) and os.path.abspath(inner[-1].f_code.co_filename).startswith(_PACKAGE_DIR)


def refusal(exc: BaseException, pf: Any) -> UnsupportedValue | None:
    """A deliberate refusal by srcgrad's own code (a ``ValueError`` whose text starts ``"srcgrad: "``, the only words
    an emitted module can carry) as an :class:`UnsupportedValue` at the user's line whose code raised it; None for
    any other exception. The text after the first ``"; "`` is the hint."""
    frames = [(tb.tb_frame, tb.tb_lineno) for tb in _walk(exc.__traceback__)]
    if not _is_refusal(exc, frames):
        return None
    message, _, hint = str(exc).removeprefix("srcgrad: ").partition("; ")  # "what; what to do instead"
    return UnsupportedValue(message, _generated_location(frames, pf), hint or None)


def _is_user_check(frame: Any) -> bool:
    """A runtime helper that raises, for the user's code, the error Python raises (``zip(..., strict=True)``)."""
    from srcgrad import runtime

    return any(frame.f_code is check.__code__ for check in runtime.LOOP_CHECKS)


@contextmanager
def reading(func: Any) -> Iterator[None]:
    """Around parsing/fencing/lowering ``func``: an unexpected failure becomes an InternalError at its ``def``."""
    try:
        yield
    except SrcgradError:
        raise
    except Exception as exc:  # noqa: BLE001 - an internal failure must still name the user's code
        raise InternalError(
            f"internal error while reading {getattr(func, '__qualname__', func)}: {type(exc).__name__}: {exc}",
            definition_location(func), hint="this is a bug in srcgrad; please report it with this function",
        ) from exc


def at_user_line(exc: SrcgradError, pf: ParsedFunction) -> SrcgradError:
    """``exc`` as raised about generated code that srcgrad differentiates again (second derivatives read the
    generated forward mode of ``pf``'s function): the same error at the user's line that the generated line came
    from (its line map). Any other error is returned unchanged."""
    where = exc.location
    if where is None or not where.filename.startswith("<srcgrad "):
        return exc
    found = generated.origin(where.filename, where.line)
    if found is None or found.line is None:
        return type(exc)(exc.message, pf.location(pf.node), exc.hint)
    return type(exc)(exc.message, _user_location(pf, found), exc.hint)


def _user_location(pf: ParsedFunction, found: Any) -> Location:
    """The place in ``pf``'s source a line of generated code comes from (a :class:`srcgrad.generated.Origin`): the
    column of the code its op was made for, else where the line's text starts."""
    text = pf.file_lines.get(found.line, "")
    indent = len(text.encode("utf-8")) - len(text.lstrip().encode("utf-8"))
    col = found.col + pf.col_offset if found.col is not None else indent  # (the op's column is the dedented text's)
    return Location(pf.filename, found.line, col, text)


def definition_location(func: Any) -> Location | None:
    """The ``def`` line of a function (for errors raised before its source is parsed)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    return Location(code.co_filename, code.co_firstlineno, 0, linecache.getline(code.co_filename,
                                                                                  code.co_firstlineno))


def _walk(tb: Any) -> Iterator[Any]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _math_domain(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and str(exc) == "math domain error"


def _is_library(frame: Any) -> bool:
    module = str(frame.f_globals.get("__name__", ""))
    if module.split(".")[0] in ("numpy", "math", "operator", "builtins"):
        return True
    filename = frame.f_code.co_filename
    return os.path.abspath(filename).startswith(usercode.STANDARD_LIBRARY_DIRS) and \
        "site-packages" not in filename


def _in_reverse_sweep(filename: str, lineno: int) -> bool:
    """Is line ``lineno`` of generated code part of a reverse sweep (its line map says so)?"""
    found = generated.origin(filename, lineno)
    return found is not None and found.sweep == generated.REVERSE


def _unknown_name(exc: BaseException, pf: ParsedFunction) -> bool:
    """A NameError for a name the user's function never mentions is a name srcgrad generated."""
    if not isinstance(exc, NameError) or not getattr(exc, "name", None):
        return False
    return exc.name not in _code_names(pf.func.__code__)


def _code_names(code: Any) -> set[str]:
    names = set(code.co_names) | set(code.co_varnames) | set(code.co_freevars) | set(code.co_cellvars)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names(const)
    return names


def generated_from(filename: str, pf: ParsedFunction) -> bool:
    """Is ``filename`` the code generated from ``pf``: its own variants', or (a structured argument) those of its
    function of leaves (``f_leaves``, structures.py), whose lines are ``pf``'s?"""
    return filename.startswith((f"<srcgrad {pf.name}:", f"<srcgrad {pf.name}_leaves:"))


def _generated_location(frames: list[tuple[Any, int]], pf: ParsedFunction) -> Location | None:
    """The user's line whose (forward or gradient) code the outermost generated frame of ``pf`` was running."""
    for frame, lineno in frames:
        filename = frame.f_code.co_filename
        if generated_from(filename, pf):
            found = generated.origin(filename, lineno)
            if found is not None and found.line is not None:
                return _user_location(pf, found)
            break
    return pf.location(pf.node)
