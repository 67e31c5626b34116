"""Short texts for what the tools show: a value (a number, an array by its shape and first numbers) and an IR
operation, as the explain table, the pictures and the notebook displays print them.

In: a value, or an IR op. Out: one line of text. What holds: a value's text is at most a few dozen characters
whatever its size; ``NO_VALUE`` stands for a node no gradient reaches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from srcgrad import ir

NO_VALUE = "-"


def operation_text(op: ir.Op) -> str:
    """How a row names an op's operation: ``mul(3, t2)``, ``copy(y)``."""
    if op.form.kind == "copy":
        return f"copy({op.args[0]})"
    return ir.format_op(op).split(" = ", 1)[1]


def summarize(value: Any, width: int = 3) -> str:
    """A short text for a value: numbers in 6 significant digits, arrays as shape and the first few numbers."""
    if value is NO_VALUE:
        return NO_VALUE
    if isinstance(value, (bool, np.bool_)) or value is None:
        return repr(bool(value)) if value is not None else "None"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return summarize(value[()])
        flat = value.ravel()
        numbers = ", ".join(summarize(v) for v in flat[:width])
        more = ", ..." if flat.size > width else ""
        return f"{tuple(value.shape)} [{numbers}{more}]"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(summarize(v) for v in value[:width])
        more = ", ..." if len(value) > width else ""
        return f"({inner}{more})" if isinstance(value, tuple) else f"[{inner}{more}]"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["NO_VALUE", "operation_text", "summarize"]
