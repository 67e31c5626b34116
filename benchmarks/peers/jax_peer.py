"""JAX on the CPU in float64: ``jax.grad`` run eagerly, and ``jax.jit(jax.grad(...))`` after one warm-up call.

Array inputs are moved to JAX arrays once; Python floats stay floats; Python ints (loop counts) are static
arguments of the jitted function. Every call waits for its result (``block_until_ready``).
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.peers import as_tuple, rebind  # noqa: E402

jax.config.update("jax_enable_x64", True)


def version() -> str:
    return jax.__version__


def _prepare(case, args):
    fn = rebind(case.fn, np=jnp, math=jnp)
    positions = case.wrt_positions
    argnums = positions[0] if len(positions) == 1 else positions
    jax_args = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)

    def to_numpy(result):
        return tuple(np.asarray(g) for g in as_tuple(result, len(positions)))

    return jax.grad(fn, argnums=argnums), jax_args, to_numpy


def build_eager(case, args):
    grad, jax_args, to_numpy = _prepare(case, args)
    return (lambda *a: jax.block_until_ready(grad(*a))), jax_args, to_numpy


def build_jit(case, args):
    grad, jax_args, to_numpy = _prepare(case, args)
    static = tuple(i for i, a in enumerate(args) if isinstance(a, int) and not isinstance(a, bool))
    compiled = jax.jit(grad, static_argnums=static)
    jax.block_until_ready(compiled(*jax_args))  # compile outside the timed calls
    return (lambda *a: jax.block_until_ready(compiled(*a))), jax_args, to_numpy
