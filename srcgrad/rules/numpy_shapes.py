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
- array constructors carry no gradient through their shape, count and dtype (``zeros``, ``ones``, ``eye``...);
  ``full``/``full_like`` differentiate the fill value and ``linspace`` its ends (``logspace`` and ``geomspace``:
  :mod:`srcgrad.rules.numpy_more`); ``arange``, ``meshgrid`` and ``unique`` have no rule (a differentiated value
  reaching them is refused); shape queries carry no gradient;
- rules of functions whose result may share memory with an argument say so (``view=True``).
"""

import operator

import numpy as np

from srcgrad.rules.registry import defgrad, defjvp, nondifferentiable
from srcgrad.runtime import (
    cast_grad,
    concatenate_grad,
    diff_grad,
    fill_grad,
    getitem_grad,
    hstack_grad,
    inverse_axes,
    linspace_grad,
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


@defgrad(np.reshape, wrt=("a",), discrete=("shape",), view=True, forward="linear")
def reshape(g, ans, a, shape):
    return np.reshape(g, np.shape(a))


@defgrad(np.ravel, view=True, forward="linear")
def ravel(g, ans, a):
    return np.reshape(g, np.shape(a))


@defgrad(("method", "flatten"), name="flatten", forward="linear")
def flatten(g, ans, a):
    return np.reshape(g, np.shape(a))


@defgrad(np.squeeze, wrt=("a",), discrete=("axis",), view=True, forward="linear")
def squeeze(g, ans, a, axis=None):
    return np.reshape(g, np.shape(a))


@defgrad(np.expand_dims, wrt=("a",), discrete=("axis",), view=True, forward="linear")
def expand_dims(g, ans, a, axis):
    return np.reshape(g, np.shape(a))


@defgrad(np.broadcast_to, wrt=("array",), discrete=("shape",), view=True, forward="linear")
def broadcast_to(g, ans, array, shape):
    return unbroadcast(g, array)


# --- axes -----------------------------------------------------------------------------------------------------------


@defgrad(np.transpose, wrt=("a",), discrete=("axes",), view=True, forward="linear")  # also x.transpose(...)
def transpose(g, ans, a, axes=None):
    return np.transpose(g, inverse_axes(axes))


@defgrad(("attribute", "T"), name="T", forward="linear")  # x.T
def transpose_attribute(g, ans, a):
    return np.transpose(g)


@defgrad(np.swapaxes, wrt=("a",), discrete=("axis1", "axis2"), view=True, forward="linear")
def swapaxes(g, ans, a, axis1, axis2):
    return np.swapaxes(g, axis1, axis2)


@defgrad(np.moveaxis, wrt=("a",), discrete=("source", "destination"), view=True, forward="linear")
def moveaxis(g, ans, a, source, destination):
    return np.moveaxis(g, destination, source)


@defgrad(np.flip, wrt=("m",), discrete=("axis",), view=True, forward="linear")
def flip(g, ans, m, axis=None):
    return np.flip(g, axis)


@defgrad(np.fliplr, view=True, forward="linear")
def fliplr(g, ans, m):
    return np.fliplr(g)


@defgrad(np.flipud, view=True, forward="linear")
def flipud(g, ans, m):
    return np.flipud(g)


@defgrad(np.roll, wrt=("a",), discrete=("shift", "axis"), forward="linear")
def roll(g, ans, a, shift, axis=None):
    return np.roll(g, np.negative(shift), axis)


# --- copies ---------------------------------------------------------------------------------------------------------


@defgrad(np.tile, wrt=("A",), discrete=("reps",), forward="linear")
def tile(g, ans, A, reps):
    return tile_grad(g, A, reps)


@defgrad(np.repeat, wrt=("a",), discrete=("repeats", "axis"), forward="linear")
def repeat(g, ans, a, repeats, axis=None):
    return repeat_grad(g, a, repeats, axis)


@defgrad(np.copy, forward="linear")
def copy(g, ans, a):
    return g


# (copy=False or None may return the argument itself: the alias analysis takes any call with `copy=` as sharing)
@defgrad(np.array, wrt=("object",), discrete=("dtype", "copy"))
def array(g, ans, object, dtype=None, *, copy=True):
    return g if dtype is None else cast_grad(g, dtype)


@defjvp(np.array)
def array_jvp(object_dot, ans, object, dtype=None, *, copy=True):
    return cast_grad(np.array(object_dot, dtype=float), dtype)


@defgrad(np.asarray, wrt=("a",), discrete=("dtype",), view=True)
def asarray(g, ans, a, dtype=None):
    return g if dtype is None else cast_grad(g, dtype)


@defjvp(np.asarray)
def asarray_jvp(a_dot, ans, a, dtype=None):
    return cast_grad(np.asarray(a_dot, dtype=float), dtype)


@defgrad(("method", "astype"), wrt=("a",), discrete=("dtype",), name="astype", forward="elementwise")
def astype(g, ans, a, dtype):
    return cast_grad(g, dtype)


@defgrad(np.float64, forward="elementwise", view=True)  # np.float64(array): the array
def float64(g, ans, x):
    return g


@defgrad(np.float32, forward="elementwise")
def float32(g, ans, x):
    return g


@defgrad(("method", "item"), name="item", forward="linear")
def item(g, ans, a):
    return fill_grad(g, a)


# --- triangles and differences --------------------------------------------------------------------------------------


@defgrad(np.triu, wrt=("m",), discrete=("k",), forward="linear")
def triu(g, ans, m, k=0):
    return np.triu(g, k)


@defgrad(np.tril, wrt=("m",), discrete=("k",), forward="linear")
def tril(g, ans, m, k=0):
    return np.tril(g, k)


@defgrad(np.diff, wrt=("a",), discrete=("n", "axis"), forward="linear", view=True)
def diff(g, ans, a, n=1, axis=-1):
    return diff_grad(g, a, n, axis)


# --- joining and splitting ------------------------------------------------------------------------------------------


@defgrad(("display", "tuple"), wrt=("items",), name="tuple display", forward="linear")
def sequence_display(g, ans, *items):
    """``(a, b, ...)`` and ``[a, b, ...]``: element ``i`` gets ``g[i]`` (``g`` is a SeqGrad or an array)."""
    return g


defgrad(("display", "list"), wrt=("items",), name="list display", forward="linear")(sequence_display)


@defgrad(np.concatenate, wrt=("arrays",), discrete=("axis",), forward="linear")
def concatenate(g, ans, arrays, axis=0):
    return concatenate_grad(g, arrays, axis)


@defgrad(np.stack, wrt=("arrays",), discrete=("axis",), forward="linear")
def stack(g, ans, arrays, axis=0):
    return stack_grad(g, arrays, axis)


@defgrad(np.hstack, forward="linear")
def hstack(g, ans, tup):
    return hstack_grad(g, tup)


@defgrad(np.vstack, forward="linear")
def vstack(g, ans, tup):
    return vstack_grad(g, tup)


# a list out: index it (parts[0]); g is then one adjoint per part
@defgrad(np.split, wrt=("ary",), discrete=("indices_or_sections", "axis"), forward="linear", view=True)
def split(g, ans, ary, indices_or_sections, axis=0):
    return split_grad(g, ary, axis)


@defgrad(np.array_split, wrt=("ary",), discrete=("indices_or_sections", "axis"), forward="linear", view=True)
def array_split(g, ans, ary, indices_or_sections, axis=0):
    return split_grad(g, ary, axis)


# --- sorting and selecting ------------------------------------------------------------------------------------------


@defgrad(np.sort, wrt=("a",), discrete=("axis", "kind"))  # through the sorting permutation
def sort(g, ans, a, axis=-1, kind=None):
    return sort_grad(g, a, axis)


@defjvp(np.sort)
def sort_jvp(a_dot, ans, a, axis=-1, kind=None):
    return np.take_along_axis(a_dot, np.argsort(a, axis=axis), axis=axis)


# (mode follows `out`: keyword-only here)
@defgrad(np.take, wrt=("a",), discrete=("indices", "axis", "mode"), forward="linear")
def take(g, ans, a, indices, axis=None, *, mode="raise"):
    return take_grad(g, a, indices, axis, mode)


@defgrad(np.take_along_axis, wrt=("arr",), discrete=("indices", "axis"), forward="linear")
def take_along_axis(g, ans, arr, indices, axis=-1):
    return take_along_axis_grad(g, arr, indices, axis)


@defgrad(operator.getitem, wrt=("x",), discrete=("index",), name="getitem", forward="linear", view=True)  # x[index]
def getitem(g, ans, x, index):
    return getitem_grad(g, x, index)


# --- constructors from values -------------------------------------------------------------------------------------
# Their shape, count and dtype parameters are discrete; the values they are filled with carry the gradient (a cast to
# an integer dtype stops it).


@defgrad(np.full, wrt=("fill_value",), discrete=("shape", "dtype"), broadcast=True)
def full(g, ans, shape, fill_value, dtype=None):
    return cast_grad(g, ans.dtype)


@defjvp(np.full)
def full_jvp(fill_value_dot, ans, shape, fill_value, dtype=None):
    return cast_grad(np.full(np.shape(ans), fill_value_dot, dtype=float), ans.dtype)


@defgrad(np.full_like, wrt=("fill_value",), discrete=("a", "dtype", "shape"), broadcast=True)  # `a`: its shape only
def full_like(g, ans, a, fill_value, dtype=None, *, shape=None):
    return cast_grad(g, ans.dtype)


@defjvp(np.full_like)
def full_like_jvp(fill_value_dot, ans, a, fill_value, dtype=None, *, shape=None):
    return cast_grad(np.full(np.shape(ans), fill_value_dot, dtype=float), ans.dtype)


@defgrad(np.linspace, wrt=("start", "stop"), discrete=("num", "endpoint", "dtype", "axis"), broadcast=True)
def linspace(g, ans, start, stop, num=50, endpoint=True, *, dtype=None, axis=0):  # retstep: refused
    return linspace_grad(g, ans, 0, num, endpoint, axis), linspace_grad(g, ans, 1, num, endpoint, axis)


@defjvp(np.linspace)
def linspace_jvp(start_dot, stop_dot, ans, start, stop, num=50, endpoint=True, *, dtype=None, axis=0):
    return cast_grad(np.linspace(start_dot, stop_dot, num, endpoint, axis=axis), ans.dtype)


# --- no gradient ----------------------------------------------------------------------------------------------------

for _fn in (np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero, np.flatnonzero,
            np.count_nonzero, np.searchsorted, np.digitize, np.all, np.any,
            np.zeros, np.ones, np.empty, np.zeros_like, np.ones_like, np.empty_like, np.eye, np.identity, np.tri,
            np.indices):
    nondifferentiable(_fn)
# Not listed, so a differentiated value reaching them is refused: np.arange (its values move with start and step),
# np.meshgrid and np.unique (their values are the inputs').
