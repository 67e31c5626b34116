"""Markdown output: the machine description, tables, numbered footnotes, and number formatting."""

from __future__ import annotations

import datetime
import os
import platform
import sys

import numpy as np


class Notes:
    """Numbered footnotes; the same text gets the same number."""

    def __init__(self) -> None:
        self._texts: list[str] = []

    def ref(self, text: str) -> str:
        text = " ".join(text.split())
        if text not in self._texts:
            self._texts.append(text)
        return f"[{self._texts.index(text) + 1}]"

    def markdown(self) -> list[str]:
        return [f"{number}. {text}" for number, text in enumerate(self._texts, 1)]


def error_text(error: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, shortened, for a footnote."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_bytes(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def format_ratio(value: float, reference: float) -> str:
    ratio = value / reference
    return f"×{ratio:.0f}" if ratio >= 100 else f"×{ratio:.3g}"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(headers), "|" + "|".join("---" for _ in headers) + "|", *(line(row) for row in rows)]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for entry in info:
                if entry.startswith("model name"):
                    return entry.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # older numpy: no dict mode
        return "unknown"


def load_average() -> str:
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def machine(versions: dict[str, str], mode: str) -> list[str]:
    """Bullet lines describing where and how the numbers were taken."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"- date: {now}",
        f"- platform: {platform.platform()}",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} CPUs ({usable} usable by this process)",
        f"- Python: {sys.version.split()[0]} ({platform.python_implementation()})",
        f"- numpy: {np.__version__}, BLAS: {_blas()}",
    ]
    lines += [f"- {name}: {version}" for name, version in versions.items()]
    variables = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")
    for variable in variables:
        if variable in os.environ:
            lines.append(f"- {variable}={os.environ[variable]}")
    lines.append(f"- mode: {mode}")
    return lines
