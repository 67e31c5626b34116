"""srcgrad: the gradient function generated from the primal's source, called on the original inputs."""

import srcgrad
from benchmarks.peers import as_tuple


def version() -> str:
    return getattr(srcgrad, "__version__", "unknown")


def build(case, args):
    grad = srcgrad.grad(case.fn, wrt=case.wrt_spec)
    return grad, args, (lambda result: as_tuple(result, len(case.wrt)))
