"""Which argument values are arrays: numpy's, and those of libraries that implement numpy's protocols.

In: a value or its type. Out: whether srcgrad treats it as an array kind (like ``np.ndarray``) rather than as a
structure or an object. What holds:
- an array of another library is one whose type implements ``__array_function__`` (NEP 18), so ``np.sum(x)``,
  ``np.exp(x)`` and ``x @ w`` in the generated code run the library's own functions (Dask builds a lazy graph, CuPy
  runs on the GPU), and whose library follows numpy's semantics: :data:`PROTOCOL_LIBRARIES` (Dask is tested, CuPy
  is not: there is no GPU here). Other ``__array_function__`` types (sparse matrices, labelled arrays) pass as data,
  as any other object does, but are not differentiated;
- nothing here imports those libraries: the type's module name is read, so the numpy path never loads Dask.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Libraries whose arrays follow numpy's semantics for operators, ufuncs and the functions srcgrad's rules call.
PROTOCOL_LIBRARIES = frozenset({"dask", "cupy"})

_KNOWN: dict[type, bool] = {}  # type -> is it a protocol array type (types are few: cache the answer)


def is_protocol_type(t: type) -> bool:
    """Is ``t`` the array type of a library in :data:`PROTOCOL_LIBRARIES` (not an ndarray subclass)?"""
    found = _KNOWN.get(t)
    if found is None:
        module = getattr(t, "__module__", None) or ""
        found = (module.split(".")[0] in PROTOCOL_LIBRARIES and not issubclass(t, np.ndarray)
                 and callable(getattr(t, "__array_function__", None)) and hasattr(t, "dtype") and hasattr(t, "shape"))
        _KNOWN[t] = found
    return found


def is_protocol_array(value: Any) -> bool:
    """Is ``value`` an array of a library that speaks numpy's protocols (a ``dask.array.Array``, a CuPy array)?"""
    return is_protocol_type(type(value))


def is_array_type(t: type) -> bool:
    """An array kind of argument: ``np.ndarray`` (and its subclasses) or a protocol array type."""
    return issubclass(t, np.ndarray) or is_protocol_type(t)
