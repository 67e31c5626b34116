"""Time srcgrad and its peers against hand-written numpy gradients; print a markdown report.

Usage: ``python benchmarks/run.py [--quick] [--out benchmarks/results.md] [--only TEXT] [--threads N]``

For each case: the primal, the hand-written gradient, then every column of ``benchmarks.peers.COLUMNS``.
Each column's gradient is checked once against the hand-written one before it is timed; a column that is
not installed or fails shows ``n/a`` (srcgrad: ``unsupported: <ExceptionType>``) with the reason in a
footnote, and the run goes on. Then srcgrad's cold generation time (one fresh process per case) and the
peak memory of long reverse sweeps. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.cases import CASES, MEMORY_CASES, Case  # noqa: E402
from benchmarks.peers import COLUMNS, Column  # noqa: E402
from benchmarks.timing import median_time, peak_memory, time_limit  # noqa: E402

RTOL = 1e-6
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Settings:
    target: float  # seconds one timing run lasts at least
    repeat: int  # timing runs per cell; the median is reported
    timeout: float  # seconds allowed for one cell (build, check and timing)
    cold_repeat: int  # fresh processes per case for the generation time; the median is reported
    quick: bool


QUICK = Settings(target=0.02, repeat=3, timeout=30.0, cold_repeat=1, quick=True)
FULL = Settings(target=0.2, repeat=7, timeout=180.0, cold_repeat=3, quick=False)


@dataclass
class Loaded:
    """A column with its builder, or the reason it has none."""

    column: Column
    builder: object = None
    error: BaseException | None = None

    @property
    def is_srcgrad(self) -> bool:
        return self.column.title == "srcgrad"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_columns() -> tuple[list[Loaded], dict[str, str]]:
    loaded, versions = [], {}
    for column in COLUMNS:
        tool = column.tool_name
        try:
            module = importlib.import_module(column.module)
            loaded.append(Loaded(column, builder=getattr(module, column.builder)))
            versions[tool] = module.version()
        except Exception as error:
            loaded.append(Loaded(column, error=error))
            versions.setdefault(tool, f"not available ({report.error_text(error, 120)})")
    return loaded, versions


def compare(got: tuple, reference: tuple) -> str | None:
    """None if every gradient matches the reference (np.allclose, rtol 1e-6), else what is wrong."""
    if len(got) != len(reference):
        return f"{len(got)} gradients instead of {len(reference)}"
    for index, (value, expected) in enumerate(zip(got, reference, strict=True)):
        value = np.asarray(value, dtype=np.float64)
        expected = np.asarray(expected, dtype=np.float64)
        if value.shape != expected.shape:
            return f"gradient {index} has shape {value.shape}, expected {expected.shape}"
        scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
        if not np.allclose(value, expected, rtol=RTOL, atol=1e-12 * scale):
            error = np.max(np.abs(value - expected)) / scale
            return f"gradient {index} differs from the hand-written one (max error {error:.3g} × max|grad|)"
    return None


def inputs_changed(args: tuple, pristine: tuple) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(args, pristine, strict=True))


def failure_cell(loaded: Loaded, case_name: str, error: BaseException, notes: report.Notes) -> str:
    title = loaded.column.title
    if loaded.error is not None:
        tool = loaded.column.tool_name  # one note for both jax columns
        note = notes.ref(f"{tool}: could not be loaded: {report.error_text(loaded.error)}")
        return f"import failed {note}" if loaded.is_srcgrad else f"n/a {note}"
    note = notes.ref(f"{title} on {case_name}: {report.error_text(error)}")
    return f"unsupported: {type(error).__name__} {note}" if loaded.is_srcgrad else f"n/a {note}"


def measure_column(loaded, case, pristine, reference, hand_seconds, settings, notes) -> tuple[str, float | None]:
    """The table cell of one column on one case, and its median seconds (None when it failed)."""
    if loaded.error is not None:
        return failure_cell(loaded, case.name, loaded.error, notes), None
    args = copy.deepcopy(pristine)
    try:
        with time_limit(settings.timeout):
            fn, fn_args, to_numpy = loaded.builder(case, args)
            problem = compare(to_numpy(fn(*fn_args)), reference)
            seconds = median_time(fn, fn_args, settings.target, settings.repeat)
    except Exception as error:
        return failure_cell(loaded, case.name, error, notes), None
    if problem is None and inputs_changed(args, pristine):
        problem = "it changed its input arrays in place"
    cell = f"{report.format_time(seconds)} ({report.format_ratio(seconds, hand_seconds)})"
    if problem:
        cell += f" ⚠ mismatch {notes.ref(f'{loaded.column.title} on {case.name}: {problem}')}"
    return cell, seconds


def time_case(case: Case, columns: list[Loaded], settings: Settings, notes: report.Notes):
    pristine = case.args()
    args = copy.deepcopy(pristine)
    primal = median_time(case.fn, args, settings.target, settings.repeat)
    reference = case.grad(*args)
    hand = median_time(case.grad, args, settings.target, settings.repeat)
    row = [case.name, report.format_time(primal), report.format_time(hand)]
    srcgrad_seconds = None
    for loaded in columns:
        progress(f"  {loaded.column.title}")
        cell, seconds = measure_column(loaded, case, pristine, reference, hand, settings, notes)
        row.append(cell)
        if loaded.is_srcgrad:
            srcgrad_seconds = seconds
    return row, srcgrad_seconds


def cold_generation(case: Case, settings: Settings, warm: float | None, notes: report.Notes) -> list[str]:
    """One row of the generation-time table, from ``cold_repeat`` fresh processes without the on-disk cache, then
    (after one process that fills a fresh cache directory) ``cold_repeat`` fresh processes that load from it."""
    with tempfile.TemporaryDirectory(prefix="srcgrad-bench-cache-") as cache_dir:
        no_cache = {"SRCGRAD_CACHE": "0"}
        with_cache = {"SRCGRAD_CACHE": "1", "SRCGRAD_CACHE_DIR": cache_dir}
        plan = [no_cache] * settings.cold_repeat + [with_cache] * (1 + settings.cold_repeat)  # one fills the cache
        outcomes = []
        for extra_env in plan:
            outcome = cold_process(case, settings, extra_env)
            if "error" in outcome:
                note = notes.ref(f"srcgrad on {case.name}: {outcome['error']}")
                label = "import failed" if outcome["stage"] == "import" else f"unsupported: {outcome['error_type']}"
                return [case.name, f"{label} {note}", "n/a", "n/a", "n/a", "n/a", "n/a"]
            outcomes.append(outcome)
    runs, hits = outcomes[: settings.cold_repeat], outcomes[settings.cold_repeat + 1:]

    def median(key, outcomes=runs):
        return statistics.median(run[key] for run in outcomes)

    total = median("grad") + median("first_call")
    if all(run["cache"]["hits"] == 1 for run in hits):
        from_cache = report.format_time(median("first_call", hits))
    else:
        from_cache = f"not cached {notes.ref(f'srcgrad on {case.name}: the disk cache does not keep this function')}"
    return [
        case.name,
        report.format_time(median("grad")),
        report.format_time(median("first_call")),
        report.format_time(total),
        from_cache,
        report.format_time(warm) if warm is not None else "n/a",
        report.format_time(median("import")),
    ]


def cold_process(case: Case, settings: Settings, extra_env: dict) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks" / "cold.py"), case.name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRCGRAD_CACHE")} | extra_env
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=settings.timeout, check=True, env=env)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except Exception as error:
        return {"stage": "process", "error": report.error_text(error), "error_type": type(error).__name__}


def memory_row(case: Case, srcgrad_column: Loaded, settings: Settings, notes: report.Notes) -> list[str]:
    args = case.args()
    primal_bytes, _ = peak_memory(case.fn, args)
    hand_bytes, reference = peak_memory(case.grad, args)
    row = [case.name, report.format_bytes(primal_bytes), report.format_bytes(hand_bytes)]
    if srcgrad_column.error is not None:
        return row + [failure_cell(srcgrad_column, case.name, srcgrad_column.error, notes)]
    try:
        with time_limit(settings.timeout):
            fn, fn_args, to_numpy = srcgrad_column.builder(case, args)
            fn(*fn_args)  # generate and warm up outside the measurement
            srcgrad_bytes, result = peak_memory(fn, fn_args)
            problem = compare(to_numpy(result), reference)
    except Exception as error:
        return row + [failure_cell(srcgrad_column, case.name, error, notes)]
    cell = f"{report.format_bytes(srcgrad_bytes)} (×{srcgrad_bytes / max(hand_bytes, 1):.3g})"
    if problem:
        cell += f" ⚠ mismatch {notes.ref(f'srcgrad (memory) on {case.name}: {problem}')}"
    return row + [cell]


HVP_CASES = ("y = 5*x**2/(1+exp(x))", "scalar loop x100", "vec chain n=1e3", "MLP 64x100->200->10", "logreg 1000x100",
             "RNN 20 steps, h=32")


def hvp_row(case: Case, settings: Settings, notes: report.Notes) -> list[str]:
    """The cost of a Hessian-vector product relative to a gradient, both srcgrad (first differentiated parameter);
    the product is checked against a central difference of gradients along the vector first."""
    import srcgrad

    args = case.args()
    position = case.wrt_positions[0]
    param = case.wrt[0]
    x = args[position]
    v = np.random.default_rng(1).normal(size=np.shape(x)) if np.ndim(x) else 0.7
    try:
        with time_limit(settings.timeout):
            grad = srcgrad.grad(case.fn, wrt=param)
            hvp = srcgrad.hvp(case.fn, wrt=param)
            hv = hvp(*args, v)
            eps = 1e-6 * max(1.0, float(np.max(np.abs(x))))

            def shifted(sign: float) -> tuple:
                return args[:position] + (x + sign * eps * v,) + args[position + 1:]

            fd = (np.asarray(grad(*shifted(1.0))) - np.asarray(grad(*shifted(-1.0)))) / (2 * eps)
            ok = np.allclose(hv, fd, rtol=1e-4, atol=1e-6 * max(1.0, float(np.max(np.abs(fd)))))
            grad_seconds = median_time(grad, args, settings.target, settings.repeat)
            hvp_seconds = median_time(hvp, args + (v,), settings.target, settings.repeat)
    except Exception as error:  # noqa: BLE001 - a failure is reported in the table, never fatal
        return [case.name, f"{param}", "n/a", f"n/a {notes.ref(f'hvp on {case.name}: {report.error_text(error)}')}",
                ""]
    flag = "" if ok else f" ⚠ mismatch {notes.ref(f'hvp on {case.name}: differs from differences of gradients')}"
    return [case.name, param, report.format_time(grad_seconds), report.format_time(hvp_seconds) + flag,
            f"{hvp_seconds / grad_seconds:.2f}"]


def build_report(settings: Settings, only: str | None) -> list[str]:
    notes = report.Notes()
    load_before = report.load_average()
    columns, versions = load_columns()
    cases = [c for c in CASES if not (settings.quick and c.big) and (only is None or only in c.name)]
    memory_cases = [c for c in MEMORY_CASES if not (settings.quick and c.big) and (only is None or only in c.name)]
    srcgrad_column = next(loaded for loaded in columns if loaded.is_srcgrad)

    timing_rows, warm = [], {}
    with contextlib.redirect_stdout(sys.stderr):  # keep anything a tool prints out of the report
        for case in cases:
            progress(f"timing {case.name}")
            row, warm[case.name] = time_case(case, columns, settings, notes)
            timing_rows.append(row)
        generation_rows = []
        for case in cases:
            progress(f"cold generation {case.name}")
            generation_rows.append(cold_generation(case, settings, warm[case.name], notes))
        memory_rows = []
        for case in memory_cases:
            progress(f"memory {case.name}")
            memory_rows.append(memory_row(case, srcgrad_column, settings, notes))
        hvp_rows = []
        for case in cases:
            if case.name in HVP_CASES:
                progress(f"hvp {case.name}")
                hvp_rows.append(hvp_row(case, settings, notes))

    mode = (
        f"{'quick' if settings.quick else 'full'}: median of {settings.repeat} runs of >= {settings.target:g} s "
        f"each; cold generation: median of {settings.cold_repeat} fresh process(es)"
    )
    lines = ["# srcgrad benchmarks", "", *report.machine(versions, mode)]
    lines += [f"- load average (1, 5, 15 min) before: {load_before}, after: {report.load_average()}", ""]
    lines += ["## Gradient time", "", "Median time per call; `(×r)` = this column's time / hand-written time.", ""]
    headers = ["case", "primal", "hand-written"] + [loaded.column.title for loaded in columns]
    lines += report.table(headers, timing_rows)
    lines += numba_compile_table(columns, cases)
    lines += ["", "## srcgrad generation time (cold)", ""]
    lines += [
        "Each case in a fresh process, after one call of the primal (numpy's own first-call costs are not "
        "srcgrad's): the first `srcgrad.grad(f, wrt=...)`, then its first call. "
        "`import srcgrad` is timed separately and is not in the total. Without the on-disk cache "
        "(`SRCGRAD_CACHE=0`), except *first call, cache hit*: the first call in a fresh process that finds the "
        "generated code in the on-disk cache (filled by an earlier process).",
        "",
    ]
    headers = ["case", "srcgrad.grad()", "first call", "cold total", "first call, cache hit", "warm call",
               "import srcgrad"]
    lines += report.table(headers, generation_rows)
    lines += ["", "## Peak memory of the gradient (tracemalloc)", ""]
    lines += ["Peak bytes allocated during one call, above what was allocated before it.", ""]
    lines += report.table(["case", "primal", "hand-written reverse", "srcgrad"], memory_rows)
    if hvp_rows:
        lines += ["", "## Hessian-vector product vs gradient (srcgrad)", ""]
        lines += ["`srcgrad.hvp` (forward mode, then reverse mode over it) against `srcgrad.grad`, same parameter.", ""]
        lines += report.table(["case", "wrt", "gradient", "hvp", "hvp / gradient"], hvp_rows)
    footnotes = notes.markdown()
    if footnotes:
        lines += ["", "## Notes", "", *footnotes]
    return lines


def numba_compile_table(columns: list[Loaded], cases: list[Case]) -> list[str]:
    """The seconds of the numba column's first call per case (generation and numba's compilation, in this process:
    later cases reuse what numba compiled for earlier ones), not in its timings."""
    if not any(loaded.column.title == "srcgrad numba" and loaded.error is None for loaded in columns):
        return []
    from benchmarks.peers.srcgrad_numba_peer import COMPILE_SECONDS

    rows = [[case.name, report.format_time(COMPILE_SECONDS[case.name]) if case.name in COMPILE_SECONDS else "n/a"]
            for case in cases]
    return ["", "## srcgrad numba: first call (generation and compilation)", "",
            "Seconds of the first call of `srcgrad.grad(f, wrt=..., backend=\"numba\")` in the timing process "
            "(numba compiles at the first call; not in the timings above).", "",
            *report.table(["case", "first call"], rows)]


def limit_threads(count: int) -> None:
    """Restart this script with thread-count variables set: they only act before numpy/torch/jax load."""
    if os.environ.get("SRCGRAD_BENCH_THREADS") == str(count):
        return
    env = dict(os.environ, SRCGRAD_BENCH_THREADS=str(count))
    env.update({variable: str(count) for variable in THREAD_VARIABLES})
    if count == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip the 1e6-sized cases (< 1 minute)")
    parser.add_argument("--out", type=Path, help="also write the markdown report to this file")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument(
        "--threads", type=int, help="limit BLAS, OpenMP (torch) and XLA (jax) threads, e.g. 1 on a shared machine"
    )
    options = parser.parse_args(argv)
    if options.threads is not None:
        limit_threads(options.threads)
    lines = build_report(QUICK if options.quick else FULL, options.only)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if options.out:
        options.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
