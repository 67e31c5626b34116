"""Cold srcgrad generation time for one case, measured in this fresh process; prints one JSON object.

Usage: ``python benchmarks/cold.py CASE_NAME``. Inputs are built and the primal called once before the clock starts
(numpy's own first-call costs, BLAS buffers for instance, are the primal's, not srcgrad's); ``import srcgrad`` is
timed on its own; what is timed then is the first ``srcgrad.grad(f, wrt=...)`` and the first call of its result.
The on-disk cache follows the environment (``SRCGRAD_CACHE``, ``SRCGRAD_CACHE_DIR``; run.py sets both); its counts
(hits, misses...) are in the output.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cases import CASES  # noqa: E402
from benchmarks.report import error_text  # noqa: E402


def measure(name: str) -> dict:
    case = next(case for case in CASES if case.name == name)
    args = case.args()
    case.fn(*args)  # numpy's own first-call costs (BLAS buffers, ufunc loops) are the primal's, not srcgrad's
    start = time.perf_counter()
    try:
        import srcgrad
    except Exception as error:
        return {"stage": "import", "error": error_text(error), "error_type": type(error).__name__}
    imported = time.perf_counter()
    stage = "grad"
    try:
        grad = srcgrad.grad(case.fn, wrt=case.wrt_spec)
        generated = time.perf_counter()
        stage = "call"
        grad(*args)
        called = time.perf_counter()
    except Exception as error:
        return {"stage": stage, "error": error_text(error), "error_type": type(error).__name__}
    return {"import": imported - start, "grad": generated - imported, "first_call": called - generated,
            "cache": srcgrad.cache.stats()}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
