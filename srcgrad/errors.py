"""Errors about the user's code.

In: a message, optionally a source location (file, line, column, the source line itself) and a hint.
Out: exceptions whose text names ``file:line:col``, shows the offending line with a caret under the column,
and says what to do instead. Every error srcgrad raises about user code derives from :class:`SrcgradError`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in the user's source: absolute file line (1-based) and column (0-based)."""

    filename: str
    line: int
    col: int
    source_line: str = ""

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col + 1}"


class SrcgradError(Exception):
    """Base of every error srcgrad raises about the user's code."""

    def __init__(self, message: str, location: Location | None = None, hint: str | None = None):
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
                caret_col = max(self.location.col - indent, 0)
                parts.append("    " + stripped)
                parts.append("    " + " " * caret_col + "^")
        else:
            parts.append(self.message)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class UnsupportedSyntax(SrcgradError):
    """A construct outside the language fence (the subset srcgrad differentiates)."""


class NoRuleError(SrcgradError):
    """A differentiated value flows into a call that has no derivative rule."""


class SourceUnavailable(SrcgradError):
    """The function's source text cannot be retrieved (builtins, lambdas typed at a REPL, exec'd code)."""


class NonScalarOutput(SrcgradError):
    """``grad`` was asked for the gradient of a function whose output is not a scalar."""


class InvalidArgument(SrcgradError, TypeError):
    """Bad ``wrt`` or a call-time argument that cannot be differentiated (also a ``TypeError``)."""


class InternalError(SrcgradError):
    """An unexpected failure inside srcgrad, re-raised with the user's location; please report it."""
