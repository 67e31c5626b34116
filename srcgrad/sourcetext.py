"""Source text in and out: user text that enters generated code, and source split into lines as Python splits it.

In: text — a file name, a function name, a line of the user's source, generated source. Out:
- :func:`comment`: the body of a ``#`` comment that is one line whatever the text holds;
- :func:`docstring`: a string literal (source text) that evaluates to the text;
- :func:`lines`: source split where Python's tokenizer ends lines.
What holds: user text enters generated code only through these (or as an AST node), so no file name, function
name or source line can end a comment, close a string or start a statement. ``str.splitlines`` is never used on
source: besides ``\\n``, ``\\r`` and ``\\r\\n`` it splits at ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``,
U+2028 and U+2029, which Python (and so every line number in its ast) reads as ordinary characters.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(r"\r\n|\r|\n")


def comment(text: str) -> str:
    """``text`` as the body of a ``#`` comment: every character that is not printable (line and paragraph
    separators, form feed, NUL, bidi controls...) is written as its Python escape, so the comment is one line and
    shows what is there. Tabs are kept."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\t" else _escape(c) for c in text)


def docstring(text: str, one_line: bool = True) -> str:
    """A string literal for ``text``: ``\"\"\"text\"\"\"`` when it reads as itself between triple quotes (printable,
    line breaks only if not ``one_line``, no backslash, no quote that would end it early), else its ``repr`` (which
    is one line)."""
    breaks = "" if one_line else "\n"
    plain = all(c.isprintable() or c in breaks for c in text) and "\\" not in text and '"""' not in text \
        and not text.endswith('"')
    return f'"""{text}"""' if plain else repr(text)


def string_literal(s, embedded=0, current_line="", uni_lit=False, **_options) -> str:
    """A string constant as generated code prints it: its ``repr``, always one line (astor's ``pretty_string``
    would print a string holding a newline as a triple-quoted literal spanning lines, which re-indenting the
    generated text would change)."""
    return repr(s)


def lines(text: str) -> list[str]:
    """``text`` split into lines, ends kept, where Python ends a line (``\\r\\n``, ``\\r``, ``\\n``): line k of the
    result is line k + 1 of an ast parsed from ``text``."""
    out, start = [], 0
    for end in _LINE_END.finditer(text):
        out.append(text[start:end.end()])
        start = end.end()
    if start < len(text):
        out.append(text[start:])
    return out


def _escape(c: str) -> str:
    return repr(c)[1:-1]


__all__ = ["comment", "docstring", "lines", "string_literal"]
