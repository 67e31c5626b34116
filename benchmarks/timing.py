"""Timing and memory measurement: medians of repeated timeit runs, tracemalloc peaks, and a time limit.

Machines are shared and noisy, so every time reported is the median of ``repeat`` runs, each of which calls
the function ``number`` times (``number`` chosen so that one run lasts at least ``target`` seconds).
As in ``timeit``, the garbage collector is off during a run.
"""

from __future__ import annotations

import gc
import signal
import statistics
import timeit
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class CellTimeout(Exception):
    """A measurement took longer than its time limit."""


def _timer(fn: Callable, args: tuple) -> timeit.Timer:
    # A statement rather than a closure: the only call overhead timed is the call of ``fn`` itself.
    return timeit.Timer("fn(*args)", globals={"fn": fn, "args": args})


def calibrate(fn: Callable, args: tuple, target: float) -> int:
    """The smallest ``number`` in 1, 2, 5, 10, 20, 50, ... for which ``number`` calls take ``target`` s."""
    timer = _timer(fn, args)
    number = 1
    while True:
        for factor in (1, 2, 5):
            if timer.timeit(number * factor) >= target:
                return number * factor
        number *= 10


def median_time(fn: Callable, args: tuple, target: float, repeat: int) -> float:
    """Median seconds per call of ``fn(*args)`` over ``repeat`` runs."""
    number = calibrate(fn, args, target)
    runs = _timer(fn, args).repeat(repeat=repeat, number=number)
    return statistics.median(runs) / number


def peak_memory(fn: Callable, args: tuple) -> tuple[int, object]:
    """Bytes allocated at the peak of one ``fn(*args)`` above what was allocated before it (tracemalloc),
    and the call's result."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        result = fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, result


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``CellTimeout`` in the main thread if the block runs longer than ``seconds`` (POSIX only)."""

    def on_alarm(signum, frame):
        raise CellTimeout(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
