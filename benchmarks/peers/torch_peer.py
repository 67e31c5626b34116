"""PyTorch (CPU build), eager: the primal run on float64 tensors, then ``torch.autograd.grad``.

``np`` and ``math`` in the primal are replaced by small tables of the equivalent torch functions. Inputs are
made tensors once (``torch.from_numpy`` shares the numpy buffers); differentiated ones are leaf tensors
with ``requires_grad``, reused by every call (``autograd.grad`` does not accumulate into ``.grad``).
"""

import types

import numpy as np
import torch

from benchmarks.peers import rebind

_F64 = torch.float64


def _tensor(value):
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=_F64)


def _logaddexp(a, b):
    return torch.logaddexp(_tensor(a), _tensor(b))


TORCH_NP = types.SimpleNamespace(
    sum=torch.sum,
    mean=torch.mean,
    tanh=torch.tanh,
    exp=torch.exp,
    sin=torch.sin,
    cos=torch.cos,
    log1p=torch.log1p,
    logaddexp=_logaddexp,
)
TORCH_MATH = types.SimpleNamespace(sin=torch.sin, cos=torch.cos, exp=torch.exp, log1p=torch.log1p)


def version() -> str:
    return f"{torch.__version__} (intra-op threads: {torch.get_num_threads()})"


def _to_torch(value, requires_grad):
    if isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value)
    elif isinstance(value, float):
        tensor = torch.tensor(value, dtype=_F64)
    else:
        return value
    return tensor.requires_grad_(requires_grad)


def build(case, args):
    fn = rebind(case.fn, np=TORCH_NP, math=TORCH_MATH)
    positions = case.wrt_positions
    torch_args = tuple(_to_torch(a, i in positions) for i, a in enumerate(args))
    leaves = [torch_args[i] for i in positions]

    def grad(*targs):
        return torch.autograd.grad(fn(*targs), leaves)

    def to_numpy(result):
        return tuple(g.detach().numpy() for g in result)

    return grad, torch_args, to_numpy
