"""Jupyter displays: HTML for generated source and for explain tables (pictures: ``Graph._repr_svg_``).

In: generated source text (``srcgrad.source``), an :class:`srcgrad.explanation.Explanation`. Out: :class:`SourceText`
— a ``str`` equal to the source, which a notebook shows highlighted (Pygments when installed, else a plain
``<pre>``); ``explanation_html`` — the explain table as an HTML table.
What holds: every piece of text is HTML-escaped (Pygments escapes what it highlights); nothing here changes the
text a program reads: ``SourceText`` is the very string, only its notebook display differs.
"""

from __future__ import annotations

from typing import Any


class SourceText(str):
    """Generated Python source: a plain ``str`` that notebooks display highlighted."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return highlight_python(str(self))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's plain-text display: the code, not repr
        printer.text(str(self))


def highlight_python(text: str) -> str:
    """``text`` as HTML: highlighted by Pygments when it is installed, else an escaped ``<pre>`` block."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        import html  # (here, not at import: its table of entities costs `import srcgrad` a millisecond)

        return f'<pre class="srcgrad-source">{html.escape(text)}</pre>'
    return highlight(text, PythonLexer(), HtmlFormatter(noclasses=True, cssclass="srcgrad-source"))


def explanation_html(ex: Any) -> str:
    """The explain table (node, operation, line, value, adjoint in backprop order) as HTML."""
    import html

    from srcgrad.summary import summarize

    e = html.escape
    args = ", ".join(f"{p}={summarize(v)}" for p, v in zip(ex.params, ex.args))
    grads = ex.gradient if len(ex.wrt) > 1 or isinstance(ex.gradient, tuple) else (ex.gradient,)
    grad_text = ", ".join(f"d/d{w} = {summarize(g)}" for w, g in zip(ex.wrt, grads))
    rows = []
    for r in ex.rows:
        line = f"{r.line}" + (" loop" if r.in_loop else "")
        source = ex.source_lines.get(r.line, "").strip() if r.operation != "input" else ""
        rows.append(
            f"<tr><td><code>{e(r.node)}</code></td><td><code>{e(r.operation)}</code></td>"
            f'<td title="{e(source)}">{e(line)}</td><td style="color:#1a5fb4">{e(summarize(r.value))}</td>'
            f'<td style="color:#c01c28">{e(summarize(r.adjoint))}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("node", "operation", "line", "value", "adjoint"))
    return (
        f'<div class="srcgrad-explanation"><p><code>{e(ex.name)}({e(args)}) = {e(summarize(ex.value))}</code>; '
        f"<code>{e(grad_text)}</code></p>"
        f"<p>backprop order; adjoint = d({e(ex.name)})/d(node)</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


__all__ = ["SourceText", "explanation_html", "highlight_python"]
