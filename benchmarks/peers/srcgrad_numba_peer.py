"""srcgrad with ``backend="numba"``: the same generated gradient compiled by numba's nopython mode.

The builder calls the gradient once, so numba compiles it before the timing; that first call's seconds are kept in
:data:`COMPILE_SECONDS` (by case name) for the report's compile-time table.
"""

import time

import numba

import srcgrad
from benchmarks.peers import as_tuple

COMPILE_SECONDS: dict[str, float] = {}


def version() -> str:
    return f"{getattr(srcgrad, '__version__', 'unknown')} (numba {numba.__version__})"


def build(case, args):
    grad = srcgrad.grad(case.fn, wrt=case.wrt_spec, backend="numba")
    start = time.perf_counter()
    grad(*args)  # generation and numba's compilation
    COMPILE_SECONDS[case.name] = time.perf_counter() - start
    return grad, args, (lambda result: as_tuple(result, len(case.wrt)))
