"""Tangent (the maintained ``tangent-ad`` fork): source transformation of the unchanged primal.

Its on-disk cache of generated code is switched off so that nothing is written outside the project.
"""

import os

os.environ.setdefault("TANGENT_DISK_CACHE", "0")

import tangent  # noqa: E402

from benchmarks.peers import as_tuple  # noqa: E402


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("tangent-ad")


def build(case, args):
    grad = tangent.grad(case.fn, wrt=case.wrt_positions, verbose=0)
    return grad, args, (lambda result: as_tuple(result, len(case.wrt)))
