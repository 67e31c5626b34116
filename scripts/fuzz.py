"""Differential fuzzing of srcgrad: N random programs, gradients against finite differences; prints the counts.

    python scripts/fuzz.py --count 10000 --seed 0             # the reliability run: expect 0 mismatches, 0 crashes
    python scripts/fuzz.py --count 2000 --seed 3 --save out/  # also write a reproducer script per failure
    python scripts/fuzz.py --count 2000 --shrink 3            # minimise up to 3 distinct failures (Hypothesis)
    python scripts/fuzz.py --known-bugs                       # also generate constructs of known, unfixed bugs
    python scripts/fuzz.py --count 2000 --cache               # also load each program's code back from the cache
    python scripts/fuzz.py --features aliasing,lists          # only these grammar features (fuzzing.FEATURES)
    python scripts/fuzz.py --count 300 --backend numba        # gradients compiled by numba (a program numba
                                                              # refuses at its line counts as refused); the
                                                              # cache is on (--cache: compiled code loaded back)

The programs come from the Hypothesis strategy ``tests/fuzzing.py:cases`` (see its docstring for what they contain and
how points near kinks are avoided). "programs" counts checked programs; examples whose point is invalid (the plain
function fails or is not finite, or a branch or kink lies within the finite-difference step) are drawn again and
reported as "redrawn". Every program also checks that the generated text is a fixed point of parsing and printing,
and that the module `srcgrad.emit` writes computes what the in-process gradient computes (``--no-emit`` skips it).
The summary counts, per grammar feature, the programs that use it and the failures among them.
Exit status: 0 when there is no failure (mismatch, crash, unsupported, round-trip, emitted), else 1.
The same seed gives the same programs (for a given Hypothesis version). The on-disk cache is off (the programs are
used once), unless ``--cache``: then it is on, in a temporary directory, and every program is differentiated a
second time by a fresh transform that loads the stored code, which must give identical results.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import fuzzing  # noqa: E402
from hypothesis import HealthCheck, Phase, assume, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

FAILURES = fuzzing.FAILURES


def signature(outcome: fuzzing.Outcome) -> str:
    """What distinguishes one failure from another: the kind, and the last line of a traceback."""
    if outcome.kind == "mismatch":
        first = outcome.detail.split("\n")[0]
        after = " after rebinding a global" if first.startswith("after `") else ""
        return "mismatch: " + ("value" if "value" in first else "gradient") + after
    last = [ln for ln in outcome.detail.strip().splitlines() if ln.strip()][-1:]
    if outcome.kind == "emitted" and last and "the emitted module above gives" in last[0]:
        return "emitted: another result than the in-process gradient"
    return f"{outcome.kind}: {last[0][:160] if last else ''}"


def refusal_reason(detail: str) -> str:
    """A refusal's reason without the user's names and numbers (what numba said), to count refusals by kind."""
    text = detail.split("\n")[0]
    text = text.split(": ", 1)[-1] if text.startswith("/") else text  # (the location)
    text = re.sub(r"`[^`]*`", "`.`", text)
    text = re.sub(r"\(in the generated statement.*", "", text)
    return re.sub(r"\d+", "N", text)[:150]


def run(count: int, seed: int, avoid: frozenset, known: bool, save: str | None,
        progress: bool, round_trip: bool = False, features: frozenset | None = None,
        emitted: bool = True) -> tuple[collections.Counter, dict]:
    loader = fuzzing.Loader()
    stats: collections.Counter = collections.Counter()
    first: dict[str, tuple] = {}  # signature -> (case, outcome), the first of each kind of failure
    start = time.monotonic()

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(fuzzing.cases(avoid, features))
    def one(case: fuzzing.Case) -> None:
        try:
            outcome = fuzzing.check_case(case, loader, known, round_trip, emitted)
        except fuzzing.Rejected as why:
            stats["redrawn"] += 1
            stats["why:" + str(why)] += 1
            assume(False)
            return
        stats[outcome.kind] += 1
        stats["programs"] += 1
        for feature in case.features:
            stats["uses:" + feature] += 1
            stats[f"{outcome.kind}:{feature}"] += 1
        if outcome.kind not in ("ok", "refused"):
            sig = signature(outcome)
            first.setdefault(sig, (case, outcome))
            stats["sig:" + sig] += 1
            if save:
                os.makedirs(save, exist_ok=True)
                path = os.path.join(save, f"{outcome.kind}-{stats[outcome.kind]:04d}.py")
                with open(path, "w") as fh:
                    fh.write('"""' + outcome.detail.replace('"""', "'''") + '"""\n\n' + case.reproducer())
        elif outcome.kind == "refused" and fuzzing.BACKEND != "python":
            stats["refusal:" + refusal_reason(outcome.detail)] += 1
        if progress and stats["programs"] % (1000 if fuzzing.BACKEND == "python" else 50) == 0:
            print(f"  {stats['programs']} programs, {sum(stats[k] for k in FAILURES)} failures, "
                  f"{time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    try:
        one()
    finally:
        loader.close()
    stats["seconds"] = time.monotonic() - start
    return stats, first


def shrink(target: str, seed: int, count: int, avoid: frozenset, known: bool,
           features: frozenset | None = None) -> tuple | None:
    """Find a failure with signature ``target`` again, and let Hypothesis minimise it."""
    loader = fuzzing.Loader()
    found: list = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate, Phase.shrink], deadline=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(fuzzing.cases(avoid, features))
    def one(case: fuzzing.Case) -> None:
        try:
            outcome = fuzzing.check_case(case, loader, known)
        except fuzzing.Rejected:
            assume(False)
            return
        if outcome.kind != "ok" and signature(outcome) == target:
            found.append((case, outcome))
            raise AssertionError(target)

    try:
        one()
    except AssertionError:
        pass
    finally:
        loader.close()
    return found[-1] if found else None


def summarize(stats: collections.Counter, first: dict, args: argparse.Namespace, avoid: frozenset,
              known: bool) -> None:
    """Print the counts: programs, outcomes, per feature, known bugs, refusals by reason (another backend), and each
    kind of failure once."""
    rate = stats["programs"] / max(stats["seconds"], 1e-9)
    print(f"srcgrad fuzz: seed {args.seed}, {stats['programs']} programs in {stats['seconds']:.0f} s "
          f"({rate:.1f} programs/s; {stats['redrawn']} redrawn: point on a kink or outside the domain)")
    reasons = sorted((k[4:], v) for k, v in stats.items() if k.startswith("why:"))
    print("  redrawn: " + "; ".join(f"{why} {n}" for why, n in reasons))
    print(f"  ok {stats['ok']}, refused by design {stats['refused']}, mismatches {stats['mismatch']}, "
          f"crashes {stats['crash']}, unsupported {stats['unsupported']}, round-trip {stats['round-trip']}, "
          f"emitted {stats['emitted']}")
    print("  per feature: programs using it / refused / failures")
    for feature in sorted(fuzzing.FEATURES):
        if stats["uses:" + feature]:
            failed = sum(stats[f"{k}:{feature}"] for k in FAILURES)
            print(f"    {feature:24} {stats['uses:' + feature]:6} {stats['refused:' + feature]:6} {failed:6}")
    if known:
        print(f"  known bugs (fuzzing.KNOWN_BUGS, not counted above): {stats['known']} failures matched; "
              f"constructs left out: {', '.join(sorted(avoid)) or '-'}")
    if args.backend != "python":
        print(f"  refused, by reason (backend {args.backend}):")
        for reason, n in sorted(((k[8:], v) for k, v in stats.items() if k.startswith("refusal:")),
                                key=lambda item: -item[1]):
            print(f"    {n:5}  {reason}")
    for sig in sorted(first):
        print(f"\n[{stats['sig:' + sig]}x] {sig}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10000, help="programs to check (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--save", metavar="DIR", help="write a reproducer script per failure into DIR")
    parser.add_argument("--shrink", type=int, default=0, metavar="N", help="minimise up to N distinct failures")
    parser.add_argument("--known-bugs", action="store_true",
                        help="also generate the constructs of known bugs (fuzzing.KNOWN_BUGS)")
    parser.add_argument("--cache", action="store_true",
                        help="check that code loaded from the on-disk cache (a temporary directory) gives the same")
    parser.add_argument("--features", metavar="A,B",
                        help="only these grammar features (default all; 'none' for the base grammar): "
                             + ", ".join(fuzzing.FEATURES))
    parser.add_argument("--no-emit", action="store_true", help="do not run the modules srcgrad.emit writes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--backend", choices=("python", "numba"), default="python",
                        help="the backend of the gradients (numba: compiled, seconds per program)")
    args = parser.parse_args(argv)
    fuzzing.set_backend(args.backend)
    features = None
    if args.features:
        features = frozenset() if args.features == "none" else frozenset(args.features.split(","))
        unknown = features - set(fuzzing.FEATURES)
        if unknown:
            parser.error(f"--features: unknown {', '.join(sorted(unknown))}")
    if args.cache and not fuzzing.cache_in_use():
        parser.error("--cache: this srcgrad has no on-disk cache")
    # (numba: the cache is on, as for users, so code is compiled from its file there; --cache also loads it back)
    on_disk = args.cache or (args.backend != "python" and fuzzing.cache_in_use())
    cache_dir = tempfile.TemporaryDirectory(prefix="srcgrad-fuzz-cache-") if on_disk else None
    fuzzing.set_disk_cache(cache_dir.name if cache_dir is not None else None)
    known = not args.known_bugs
    avoid = frozenset(n for n, bug in fuzzing.KNOWN_BUGS.items() if bug.avoid and known)

    stats, first = run(args.count, args.seed, avoid, known, args.save, not args.quiet, args.cache, features,
                       not args.no_emit)
    summarize(stats, first, args, avoid, known)
    for sig in sorted(first)[:args.shrink]:
        print(f"\n=== shrinking: {sig}", flush=True)
        found = shrink(sig, args.seed, args.count, avoid, known, features) or first[sig]
        print(fuzzing.describe(*found))
    return 1 if sum(stats[k] for k in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
