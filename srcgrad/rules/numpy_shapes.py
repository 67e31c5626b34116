"""Derivative rules: shapes, copies, casts, joining and splitting, sorting, and indexing (``x[...]`` reads).

In: calls like ``np.reshape(x, (2, -1))``, ``x.reshape(2, 3)``, ``x.T``, ``np.stack(arrays)``, ``x[idx]``.
Out: the contribution of the output's adjoint to the input, with the input's shape.

What holds:
- these operations move, copy or select elements; their adjoints move ``g`` back (reshape, transpose, flip...),
  sum the copies (``broadcast_to``, ``tile``, ``repeat``) or scatter into zeros (indexing, ``take``, ``sort``);
- reading ``x[index]``: basic indices (ints, negative ints, slices with steps, ``None``, ``...``) and boolean masks
  select each element once; integer arrays may repeat an index and their contributions accumulate;
- functions taking a sequence of arrays (``concatenate``, ``stack``, ``hstack``, ``vstack``) return one adjoint
  per element (a :class:`srcgrad.runtime.SeqGrad`, which adds element by element); they also accept an array,
  whose first axis is the sequence;
- a tuple or list display (``[a, b]``) has the rule :func:`sequence_display` — one contribution per element — keyed
  ``("display", "tuple")``/``("display", "list")`` (not the builtins ``tuple``/``list``, whose call ``tuple(x)``
  iterates ``x``); it is variadic, and takes effect once the lowering looks it up for displays and the adjoint
  stage binds variadic rule parameters element by element;
- functions returning a tuple or list (``np.split``) are differentiated through indexing their result;
- casts: to a float type the gradient passes, to an integer or boolean type it is zero; ``astype``, ``flatten``
  and ``item`` are methods only and are keyed ``("method", name)``, the attribute ``x.T`` is ``("attribute", "T")``
  (the tables ``METHODS`` and ``ATTRIBUTES`` in :mod:`srcgrad.lower` map names to rule keys);
- array constructors (``zeros``, ``ones``, ``empty``, ``full``, ``*_like``, ``arange``, ``linspace``, ``eye``...)
  and shape queries carry no gradient.
"""

import operator

import numpy as np

from srcgrad.rules.registry import defgrad, nondifferentiable
from srcgrad.runtime import (
    cast_grad,
    concatenate_grad,
    diff_grad,
    fill_grad,
    getitem_grad,
    hstack_grad,
    inverse_axes,
    repeat_grad,
    sort_grad,
    split_grad,
    stack_grad,
    take_along_axis_grad,
    take_grad,
    tile_grad,
    unbroadcast,
    vstack_grad,
)

# --- reshaping ------------------------------------------------------------------------------------------------------


@defgrad(np.reshape, wrt=("a",))
def reshape(g, ans, a, shape):
    return np.reshape(g, np.shape(a))


@defgrad(np.ravel)
def ravel(g, ans, a):
    return np.reshape(g, np.shape(a))


@defgrad(("method", "flatten"), name="flatten")
def flatten(g, ans, a):
    return np.reshape(g, np.shape(a))


@defgrad(np.squeeze, wrt=("a",))
def squeeze(g, ans, a, axis=None):
    return np.reshape(g, np.shape(a))


@defgrad(np.expand_dims, wrt=("a",))
def expand_dims(g, ans, a, axis):
    return np.reshape(g, np.shape(a))


@defgrad(np.broadcast_to, wrt=("array",))
def broadcast_to(g, ans, array, shape):
    return unbroadcast(g, array)


# --- axes -----------------------------------------------------------------------------------------------------------


@defgrad(np.transpose, wrt=("a",))  # also x.transpose(...)
def transpose(g, ans, a, axes=None):
    return np.transpose(g, inverse_axes(axes))


@defgrad(("attribute", "T"), name="T")  # x.T
def transpose_attribute(g, ans, a):
    return np.transpose(g)


@defgrad(np.swapaxes, wrt=("a",))
def swapaxes(g, ans, a, axis1, axis2):
    return np.swapaxes(g, axis1, axis2)


@defgrad(np.moveaxis, wrt=("a",))
def moveaxis(g, ans, a, source, destination):
    return np.moveaxis(g, destination, source)


@defgrad(np.flip, wrt=("m",))
def flip(g, ans, m, axis=None):
    return np.flip(g, axis)


@defgrad(np.fliplr)
def fliplr(g, ans, m):
    return np.fliplr(g)


@defgrad(np.flipud)
def flipud(g, ans, m):
    return np.flipud(g)


@defgrad(np.roll, wrt=("a",))
def roll(g, ans, a, shift, axis=None):
    return np.roll(g, np.negative(shift), axis)


# --- copies ---------------------------------------------------------------------------------------------------------


@defgrad(np.tile, wrt=("A",))
def tile(g, ans, A, reps):
    return tile_grad(g, A, reps)


@defgrad(np.repeat, wrt=("a",))
def repeat(g, ans, a, repeats, axis=None):
    return repeat_grad(g, a, repeats, axis)


@defgrad(np.copy)
def copy(g, ans, a):
    return g


@defgrad(np.array, wrt=("object",))
def array(g, ans, object, dtype=None):
    return g if dtype is None else cast_grad(g, dtype)


@defgrad(np.asarray, wrt=("a",))
def asarray(g, ans, a, dtype=None):
    return g if dtype is None else cast_grad(g, dtype)


@defgrad(("method", "astype"), wrt=("a",), name="astype")
def astype(g, ans, a, dtype):
    return cast_grad(g, dtype)


@defgrad(np.float64)
def float64(g, ans, x):
    return g


@defgrad(np.float32)
def float32(g, ans, x):
    return g


@defgrad(("method", "item"), name="item")
def item(g, ans, a):
    return fill_grad(g, a)


# --- triangles and differences --------------------------------------------------------------------------------------


@defgrad(np.triu, wrt=("m",))
def triu(g, ans, m, k=0):
    return np.triu(g, k)


@defgrad(np.tril, wrt=("m",))
def tril(g, ans, m, k=0):
    return np.tril(g, k)


@defgrad(np.diff, wrt=("a",))
def diff(g, ans, a, n=1, axis=-1):
    return diff_grad(g, a, n, axis)


# --- joining and splitting ------------------------------------------------------------------------------------------


@defgrad(("display", "tuple"), wrt=("items",), name="tuple display")
def sequence_display(g, ans, *items):
    """``(a, b, ...)`` and ``[a, b, ...]``: element ``i`` gets ``g[i]`` (``g`` is a SeqGrad or an array)."""
    return g


defgrad(("display", "list"), wrt=("items",), name="list display")(sequence_display)


@defgrad(np.concatenate, wrt=("arrays",))
def concatenate(g, ans, arrays, axis=0):
    return concatenate_grad(g, arrays, axis)


@defgrad(np.stack, wrt=("arrays",))
def stack(g, ans, arrays, axis=0):
    return stack_grad(g, arrays, axis)


@defgrad(np.hstack)
def hstack(g, ans, tup):
    return hstack_grad(g, tup)


@defgrad(np.vstack)
def vstack(g, ans, tup):
    return vstack_grad(g, tup)


@defgrad(np.split, wrt=("ary",))  # a list out: index it (parts[0]); g is then one adjoint per part
def split(g, ans, ary, indices_or_sections, axis=0):
    return split_grad(g, ary, axis)


@defgrad(np.array_split, wrt=("ary",))
def array_split(g, ans, ary, indices_or_sections, axis=0):
    return split_grad(g, ary, axis)


# --- sorting and selecting ------------------------------------------------------------------------------------------


@defgrad(np.sort, wrt=("a",))  # through the sorting permutation
def sort(g, ans, a, axis=-1, kind=None):
    return sort_grad(g, a, axis)


@defgrad(np.take, wrt=("a",))
def take(g, ans, a, indices, axis=None):
    return take_grad(g, a, indices, axis)


@defgrad(np.take_along_axis, wrt=("arr",))
def take_along_axis(g, ans, arr, indices, axis):
    return take_along_axis_grad(g, arr, indices, axis)


@defgrad(operator.getitem, wrt=("x",), name="getitem")  # x[index]
def getitem(g, ans, x, index):
    return getitem_grad(g, x, index)


# --- no gradient ----------------------------------------------------------------------------------------------------

for _fn in (np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero, np.flatnonzero,
            np.count_nonzero, np.searchsorted, np.digitize, np.unique, np.all, np.any,
            np.zeros, np.ones, np.empty, np.full, np.zeros_like, np.ones_like, np.empty_like, np.full_like,
            np.arange, np.linspace, np.logspace, np.eye, np.identity, np.tri, np.indices, np.meshgrid):
    nondifferentiable(_fn)
