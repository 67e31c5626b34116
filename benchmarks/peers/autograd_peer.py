"""autograd (HIPS): the primal traced with ``autograd.numpy`` standing in for both ``np`` and ``math``."""

import autograd
import autograd.numpy as anp

from benchmarks.peers import as_tuple, rebind


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("autograd")


def build(case, args):
    fn = rebind(case.fn, np=anp, math=anp)
    positions = case.wrt_positions
    grad = autograd.grad(fn, positions[0] if len(positions) == 1 else positions)
    return grad, args, (lambda result: as_tuple(result, len(positions)))
