"""Structured arguments: tuples, lists, dicts, namedtuples and dataclass instances of floats and arrays, nested to any
depth (and, as constants, objects whose attributes the function reads: ``self.W``, ``cfg.scale``).

In: the value of an argument. Out:
- :func:`spec_of`: the structure's description, a hashable tuple (containers, dict keys in order, classes, leaf
  types, and the layout of a float64 array leaf, srcgrad/layouts.py). It is part of the key of a generated variant:
  a different structure is a new variant, as a new argument kind is; a leaf's parameter of the function of leaves
  has the kind a flat argument of its value would have (the same code);
- :func:`structure_tests`: the call-time check of the arguments against descriptions (the dispatcher's
  :func:`matcher`, and the entry's check, srcgrad/entry.py);
- :func:`generate`: the variant for such descriptions. The function's parsed source is rewritten (:class:`_Rewriter`)
  so that the structure's reads become named leaves (``params["W1"]`` -> ``params_W1``, ``p.w`` -> ``p_w``,
  ``W, b = params[0]`` -> ``W = params_0_0; b = params_0_1``, ``for W, b in params:`` unrolled, ``len(params)`` a
  constant); the pipeline generates the derivative of that function of leaves; a small generated front function
  reads the leaves out of the arguments, calls it, and rebuilds the gradients in the arguments' structure (the same
  dict keys in the same order, the same namedtuple or dataclass class — through its constructor —, a list for a list).

What holds:
- a leaf is differentiated when it is a Python float, a float array or a numpy float scalar; other leaves (ints,
  bools, strings, integer arrays) are constants passed as arguments, and None is a constant of the structure; their
  place in the gradient holds None. Complex values, object arrays, functions and other objects are an
  InvalidArgument naming the leaf's path (``params["layers"][2].b: got complex``);
- reads with constant keys, indices and attribute names, unpacking, ``for`` loops over a structure (and over
  ``enumerate``/``zip`` of structures, ``.items()``/``.keys()``/``.values()``, ``range(len(...))`` indexing it),
  ``len``, ``in`` and ``.get`` are resolved when the code is generated; a list or tuple used in any other way
  becomes a display of its leaves; any other use of a structure is refused (UnsupportedSyntax at the user's line),
  as are writes into a structure and names that hold a part of a structure on some paths only;
- a missing key, index or attribute raises a SrcgradError that is also the KeyError/IndexError/AttributeError
  Python raises;
- a parameter that is not differentiated is rewritten the same way when the function reads attributes of it and
  it is a dataclass, a namedtuple or an object (``self``): its leaves are constants;
- classes registered with :func:`register_structure` are structures too: their children come from the user's
  ``flatten`` (the front calls it, or reads the attributes that hold the children), the gradient is rebuilt by
  ``unflatten``; an attribute read in the body is the child it holds, a constant when it holds no float, and is
  refused otherwise;
- a vjp seed that is a tuple, list, dict or namedtuple (:func:`seed_spec`) makes the function of leaves return the
  output's leaves in the seed's order (``_Rewriter.flat_return``); :func:`output_jacobian` lays a Jacobian out in the
  output's structure;
- ``generic`` variants (emit, graph with example arguments) give every leaf the general kind, and their front checks
  the arguments' structures (ValueError), since no dispatcher does where they run.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import keyword
import operator
import re
import types
import weakref
from collections import abc
from dataclasses import field
from typing import Any

import gast
import numpy as np

from srcgrad import arrays, digests, frontend, ir, layouts, naming
from srcgrad.errors import InvalidArgument, UnsupportedSyntax
from srcgrad.generated import Generated
from srcgrad.records import record
from srcgrad.runtime import walked_argument_text

LEAF, DICT, LIST, TUPLE, NAMEDTUPLE, DATACLASS, OBJECT = "leaf", "dict", "list", "tuple", "namedtuple", "dataclass", \
    "object"
REGISTERED = "registered"  # an instance of a class registered with srcgrad.register_structure
CLASS = "class"  # a class a constant parameter holds (``cls`` of a class method): read through, never passed
DIFF, CONST, NONE = "diff", "const", "none"  # what a leaf is: differentiated, a constant argument, None


# --- descriptions --------------------------------------------------------------------------------------------------

_CLASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # class -> (kind, field names) or None


def _class_kind(cls: type) -> tuple | None:
    """(NAMEDTUPLE, fields), (DATACLASS, init fields) or (REGISTERED, registration) for such classes, else None
    (cached per class)."""
    try:
        return _CLASSES[cls]
    except KeyError:
        pass
    except TypeError:
        return None
    found = None
    registration = _REGISTRY.get(cls)
    if registration is not None:
        found = (REGISTERED, registration)
    elif issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple):
        found = (NAMEDTUPLE, tuple(cls._fields))
    elif dataclasses.is_dataclass(cls):
        found = (DATACLASS, tuple(f.name for f in dataclasses.fields(cls) if f.init))
    _CLASSES[cls] = found
    return found


# --- classes the user registers as structures ----------------------------------------------------------------------


@record(frozen=True, eq=False)
class Registration:
    """How srcgrad takes apart and rebuilds instances of a registered class (srcgrad.register_structure)."""

    cls: type
    flatten: Any
    unflatten: Any


_REGISTRY: dict[type, Registration] = {}
_NOT_REGISTRABLE = (dict, list, tuple, float, int, bool, complex, str, bytes, type(None), np.ndarray, np.generic)


def register_structure(cls: type, flatten: Any, unflatten: Any) -> type:
    """Make instances of ``cls`` structures srcgrad differentiates with respect to (JAX's pytree registration, with
    named children): the gradient comes back as a ``cls`` instance rebuilt by ``unflatten``.

    ``flatten(obj) -> (children, aux)``: ``children`` is either a dict ``{name: value}`` — names are the attribute
    names of ``obj`` the values are read from (``{"W": obj.W, "b": obj.b}``), so ``obj.W`` in the differentiated code
    is that child — or a list or tuple of values (then srcgrad cannot tell which child an attribute is, and reading
    attributes of such an object in the differentiated code is refused). A child is a float, an array, a constant
    leaf (int, str, None...) or a structure itself (a dict, a list, a dataclass, another registered instance...).
    ``aux`` is whatever else rebuilding needs; it must be hashable and compare by value: it is part of the key of the
    generated code (another ``aux``, or other child names, is another variant, generated once).
    ``unflatten(aux, children) -> obj`` rebuilds an instance from ``aux`` and children in the container ``flatten``
    returned (the same dict keys in the same order, or a list or tuple of the same length): srcgrad calls it with
    the gradients of the children (None for constant leaves) and, for ``jvp``/``hvp`` tangents built by the user,
    reads tangents with ``flatten``. Methods, properties and ``super()`` of ``cls`` work as for dataclasses.
    Registering a class twice, or a builtin container or number type, is an InvalidArgument. Returns ``cls``."""
    if not isinstance(cls, type):
        raise InvalidArgument(f"register_structure takes a class, got {type(cls).__name__}")
    if issubclass(cls, _NOT_REGISTRABLE) and _class_kind(cls) is None:
        raise InvalidArgument(f"register_structure: {cls.__name__} is a builtin number, container or array type, "
                              "which srcgrad already knows", hint="register your own class")
    if not callable(flatten) or not callable(unflatten):
        raise InvalidArgument("register_structure(cls, flatten, unflatten) takes two functions: flatten(obj) -> "
                              "(children, aux) and unflatten(aux, children) -> obj")
    known = _REGISTRY.get(cls)
    if known is not None:
        if known.flatten is flatten and known.unflatten is unflatten:
            return cls
        raise InvalidArgument(f"{cls.__qualname__} is already registered as a structure, with other functions",
                              hint="register a class once (code generated for it assumes its functions)")
    _REGISTRY[cls] = Registration(cls, flatten, unflatten)
    _CLASSES.pop(cls, None)  # (its kind was cached as an object or a dataclass)
    return cls


def _flattened(registration: Registration, value: Any) -> tuple:
    """(child names, child values, aux, the children's container, attribute -> child number, the names and values
    of the other attributes that hold no float: constants the code may read); raises _Bad when ``flatten`` returns
    something else than the contract says. An attribute is a child when it holds that very object (a dict's child
    named like the attribute first)."""
    name = registration.cls.__qualname__
    out = registration.flatten(value)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise _Bad(f"flatten of {name} returned {type(out).__name__}, not a pair (children, aux)",
                   "return (children, aux): children a dict {name: value} or a list of values")
    children, aux = out
    try:
        hash(aux)
    except TypeError:
        raise _Bad(f"flatten of {name} returned aux data that is not hashable ({type(aux).__name__})",
                   "return hashable aux data (a tuple, a string, a number, None, a frozen dataclass): it is part of "
                   "the key of the generated code") from None
    if type(children) is dict:
        names = tuple(children)
        bad = next((k for k in names if not (type(k) is str and k.isidentifier())), _NO)
        if bad is not _NO:
            raise _Bad(f"flatten of {name} named a child {bad!r}", "name children by attribute names (strings)")
    elif type(children) in (list, tuple):
        names = tuple(range(len(children)))
    else:
        raise _Bad(f"flatten of {name} returned children of type {type(children).__name__}",
                   "return the children as a dict {name: value}, a list or a tuple")
    values = list(children.values()) if type(children) is dict else list(children)
    attr_map, extra_names, extra_values = _attributes(value, names, values)
    return names, values, aux, type(children), attr_map, extra_names, extra_values


def _attributes(value: Any, names: tuple, values: list) -> tuple[tuple, tuple, list]:
    """Which attributes of a registered instance are which children, and its other attributes that hold no float
    (constants, e.g. a configuration); an attribute holding floats that is no child is left out (not readable)."""
    found = {n: i for i, n in enumerate(names) if type(n) is str and getattr(value, n, _NO) is values[i]}
    by_id = {id(v): i for i, v in reversed(list(enumerate(values)))}
    extra_names, extra_values = [], []
    for attr, v in (vars(value).items() if hasattr(value, "__dict__") else ()):
        if attr in found:
            continue
        if id(v) in by_id:
            found[attr] = by_id[id(v)]
        elif not _holds_float(v, 0):
            extra_names.append(attr)
            extra_values.append(v)
    return tuple(found.items()), tuple(extra_names), extra_values


def _holds_float(value: Any, depth: int) -> bool:
    """Could ``value`` hold something srcgrad would differentiate (a float, a float array), looking into containers,
    dataclasses and namedtuples? (Deep or unknown objects count as holding one.)"""
    if depth > 8:
        return True
    t = type(value)
    if t in (int, bool, str, bytes, type(None)) or isinstance(value, (types.FunctionType, type)):
        return False
    if t is float or isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).dtype.kind in "fc"
    if t is dict:
        return any(_holds_float(v, depth + 1) for v in value.values())
    if t in (list, tuple, frozenset):
        return any(_holds_float(v, depth + 1) for v in value)
    kind = _class_kind(t)
    if kind is not None and kind[0] in (NAMEDTUPLE, DATACLASS):
        return any(_holds_float(getattr(value, f), depth + 1) for f in kind[1])
    return True


def _registered_spec(value: Any, registration: Registration, const: bool, depth: int) -> tuple:
    names, values, aux, container, attr_map, extra_names, extra_values = _flattened(registration, value)
    extras = _children(extra_values, extra_names, True, depth, "attr")  # (constants)
    return (REGISTERED, registration.cls, names, _children(values, names, const, depth, "child"), aux, container,
            attr_map, extra_names, extras)


def _registered_check(registration: Registration, spec: tuple, value: Any) -> tuple | None:
    """The call-time check of a registered instance against its description: (child values, values of the constant
    attributes) when flatten gives the same child names, container and aux data, and the attributes read as
    children still hold them; None otherwise (the full description is then made again, naming any problem). Leaner
    than :func:`_flattened`: what it does not look at, the generated code does not read."""
    out = registration.flatten(value)
    if type(out) is not tuple or len(out) != 2 or type(out[0]) is not spec[5]:
        return None
    children, aux = out
    if spec[5] is dict:
        if tuple(children) != spec[2]:
            return None
        values = list(children.values())
    elif len(children) != len(spec[2]):
        return None
    else:
        values = children
    if aux != spec[4] or any(getattr(value, a, _NO) is not values[i] for a, i in spec[6]):
        return None
    held = vars(value) if spec[7] else {}
    if any(a not in held for a in spec[7]):
        return None
    return values, [held[a] for a in spec[7]]


def is_structure(value: Any) -> bool:
    """A tuple, list, dict, namedtuple or dataclass instance (what a differentiated argument may be besides a number
    or an array)."""
    t = type(value)
    return t is dict or t is list or t is tuple or _class_kind(t) is not None


def is_callable_instance(value: Any) -> bool:
    """An instance of a user class whose ``__call__`` is a function (``grad(model)`` differentiates it)."""
    call = next((vars(k)["__call__"] for k in type(value).__mro__ if "__call__" in vars(k)), None)
    return is_object(value) and not isinstance(value, type) and isinstance(call, types.FunctionType)


def is_object(value: Any) -> bool:
    """An instance of a user class with attributes (what a constant structure may also be: ``self``)."""
    return hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType, types.FunctionType,
                                                                  types.BuiltinFunctionType, types.MethodType,
                                                                  np.ndarray, np.generic)) \
        and not arrays.is_protocol_array(value)


class _Bad(Exception):
    """A leaf that cannot be differentiated; ``path`` grows as the error leaves the containers."""

    def __init__(self, what: str, hint: str):
        super().__init__(what)
        self.what, self.hint, self.path = what, hint, []


def spec_of(name: str, value: Any, const: bool = False) -> tuple:
    """The description of the structure ``value`` of parameter ``name`` (``const``: nothing in it is
    differentiated). Raises InvalidArgument naming the path of a leaf that cannot be differentiated."""
    try:
        return _spec(value, const, 0)
    except _Bad as bad:
        path = name + "".join(reversed(bad.path))
        raise InvalidArgument(f"cannot differentiate with respect to `{name}`: {path}: {bad.what}",
                              hint=bad.hint) from None
    except RecursionError:
        raise InvalidArgument(f"`{name}` contains itself: srcgrad differentiates structures without cycles") from None


_FLOAT_LEAF = (LEAF, float, "")


def _spec(value: Any, const: bool, depth: int) -> tuple:
    t = type(value)
    if t is float:
        return _FLOAT_LEAF
    if t is dict:
        keys = tuple(value)
        for k in keys:
            if type(k) not in (str, int):
                raise _Bad(f"has the key {k!r} ({type(k).__name__})", "use dicts with string or integer keys")
        return DICT, keys, _children(value.values(), keys, const, depth, "key")
    if t is list or t is tuple:
        return (LIST if t is list else TUPLE), _children(value, range(len(value)), const, depth, "index")
    kind = _class_kind(t)
    if kind is not None and not (kind[0] == REGISTERED and const):  # (a constant one is read as an object)
        return _class_spec(value, kind, const, depth)
    if const and depth == 0 and isinstance(value, type):
        return CLASS, value
    if const and depth < 8 and is_object(value) and not isinstance(value, (list, tuple, dict)):
        attrs = tuple(vars(value))
        return OBJECT, t, attrs, _children([getattr(value, a) for a in attrs], attrs, const, depth, "attr")
    return _leaf(value, t, const)


def _class_spec(value: Any, kind: tuple, const: bool, depth: int) -> tuple:
    """A namedtuple, a dataclass instance or an instance of a registered class."""
    if kind[0] == REGISTERED:
        return _registered_spec(value, kind[1], const, depth)
    t = type(value)
    if kind[0] == NAMEDTUPLE:
        return NAMEDTUPLE, t, kind[1], _children(value, kind[1], const, depth, "attr")
    return DATACLASS, t, kind[1], _children([getattr(value, f) for f in kind[1]], kind[1], const, depth, "attr")


def _children(values: Any, names: Any, const: bool, depth: int, how: str) -> tuple:
    out = []
    for v, n in zip(values, names):
        try:
            # (a constant's containers are leaves: reading them costs nothing per item)
            out.append(_leaf(v, type(v), True) if const and type(v) in (list, tuple, dict) else _spec(v, const,
                                                                                                      depth + 1))
        except _Bad as bad:
            bad.path.append(f"[{n!r}]" if how == "key" else f"[{n}]" if how == "index" or type(n) is int else f".{n}")
            raise
    return tuple(out)


def _leaf(value: Any, t: type, const: bool) -> tuple:
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        if not const:
            if t not in (np.ndarray, np.memmap):
                raise _Bad(f"is a {t.__module__}.{t.__qualname__} (an ndarray subclass)", "pass a plain array")
            if kind in "cO" or kind not in "fiub":
                raise _Bad(f"has dtype {value.dtype}", "srcgrad differentiates real floating-point values")
        layout = layouts.of_value(value)  # (a leaf is specialised to its layout as a flat argument is)
        return (LEAF, t, kind) if layout is None else (LEAF, t, kind, layout)
    if isinstance(value, np.generic) or arrays.is_protocol_array(value):  # (a Dask array: a leaf, kept lazy)
        kind = value.dtype.kind
        if not const and kind not in "fiub":
            raise _Bad(f"has dtype {value.dtype}", "srcgrad differentiates real floating-point values")
        return LEAF, t, kind
    if const or value is None or t in (int, bool, str):
        return LEAF, t, ""
    if t is complex:
        raise _Bad("got complex", "split the value into real and imaginary parts")
    hint = ("make it a dataclass or a namedtuple (srcgrad rebuilds those), register its class with "
            "srcgrad.register_structure(cls, flatten, unflatten), or pass what the function reads as separate "
            "arguments") if is_object(value) else "use floats, arrays and containers of them"
    raise _Bad(f"got {t.__name__}", hint)


def seed_spec(name: str, seed: Any) -> tuple:
    """The description of a vjp seed that is a structure (the adjoint of a structured output): tuples, lists, dicts
    and namedtuples of real numbers and arrays. Raises InvalidArgument naming the seed's leaf otherwise."""
    spec = spec_of("seed", seed)
    bad = _bad_seed_part(spec, "seed")
    if bad is not None:
        raise InvalidArgument(f"{name}(*args, seed): {bad}",
                              hint="a seed has the output's structure: numbers and arrays in tuples, lists, dicts "
                                   "and namedtuples")
    return spec


def _bad_seed_part(spec: tuple, path: str) -> str | None:
    kind = spec[0]
    if kind == LEAF:
        t = spec[1]
        if t in (float, int, bool) or (issubclass(t, (np.ndarray, np.generic)) and spec[2] in "fiub"):
            return None
        return f"{path} is {'None' if t is type(None) else 'a ' + t.__name__}, not a number or an array"
    if kind == DICT:
        children = [(f"{path}[{k!r}]", c) for k, c in zip(spec[1], spec[2])]
    elif kind in (LIST, TUPLE, NAMEDTUPLE):
        children = [(f"{path}[{i}]", c) for i, c in enumerate(spec[-1])]
    else:
        return f"{path} is a {kind} instance ({spec[1].__name__}): srcgrad reads seeds through items, not attributes"
    return next((b for b in (_bad_seed_part(c, p) for p, c in children) if b is not None), None)


def role(spec: tuple, const: bool) -> str:
    """What a leaf is: differentiated, a constant argument, or None (a constant of the structure)."""
    t, kind = spec[1], spec[2]
    if t is type(None):
        return NONE
    if const:
        return CONST
    if t is float or (kind == "f" and (issubclass(t, (np.ndarray, np.generic)) or arrays.is_protocol_type(t))):
        return DIFF
    return CONST


def describe(spec: tuple) -> str:
    """A deterministic text for a description (the on-disk cache tells structures apart by it)."""
    if spec[0] == LEAF:
        return f"{_class_name(spec[1])}{':' + spec[2] if spec[2] else ''}{'@' + spec[3] if len(spec) > 3 else ''}"
    if spec[0] == CLASS:
        return f"class {_class_name(spec[1])}"
    if spec[0] == DICT:
        return "{" + ", ".join(f"{k!r}: {describe(c)}" for k, c in zip(spec[1], spec[2])) + "}"
    if spec[0] in (LIST, TUPLE):
        inner = ", ".join(describe(c) for c in spec[1])
        return f"[{inner}]" if spec[0] == LIST else f"({inner})"
    # (a registered class's aux data is left out: it is not in the function of leaves, only in the front)
    return f"{spec[0]} {_class_name(spec[1])}(" + ", ".join(f"{n}={describe(c)}" for n, c in zip(spec[2], spec[3])) \
        + ")"


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# --- the tree the rewriting reads: compile-time values --------------------------------------------------------------


@record(eq=False)
class SLeaf:
    """A leaf: ``name`` is the parameter of the function of leaves that holds it (None for a None leaf)."""

    spec: tuple
    role: str
    path: tuple  # accessors from the root: ("key", k) / ("index", i) / ("attr", a)
    order: int
    name: str | None = None


@record(eq=False)
class SNode:
    """A container: ``keys`` are dict keys, field/attribute names or indices; ``param`` names it when a constant
    structure's container is passed whole."""

    kind: str
    cls: Any
    keys: list
    children: list
    path: tuple
    order: int
    const: bool
    param: str | None = None
    local: str = ""  # a dict built in the body: the base of its items' variable names (``d`` -> ``d_a``)
    region: Any = None  # (a local dict) the region it was built in: its keys change only there
    escaped: str = ""  # (a local dict) where it was passed on as a whole value: no read or write after that
    attrs: Any = None  # (a registered class) attribute -> the number of the child it is (constant attributes too)


@record(eq=False)
class SSlot:
    """An item of a dict built in the body: the variable of the generated code that holds it (``d["a"]`` ->
    ``d_a``); ``scope`` is the function (or nested function) that owns the variable."""

    name: str
    scope: Any


@record(eq=False)
class SStatic:
    """A value known when the code is generated: a dict key, an index, a length."""

    value: Any


@record
class Root:
    """One structured parameter: its tree and the parameters of the function of leaves that read it."""

    name: str
    spec: tuple
    const: bool
    tree: Any
    params: list = field(default_factory=list)  # SLeaf / SNode, registered as they are read (constants) or all


def build_tree(spec: tuple, const: bool, path: tuple = (), counter: list | None = None) -> Any:
    counter = [0] if counter is None else counter
    counter[0] += 1
    order = counter[0]
    kind = spec[0]
    if kind == LEAF:
        return SLeaf(spec, role(spec, const), path, order)
    if kind == CLASS:
        return SStatic(spec[1])
    if kind == DICT:
        keys, children, how, cls = list(spec[1]), spec[2], "key", None
    elif kind in (LIST, TUPLE):
        keys, children, how, cls = list(range(len(spec[1]))), spec[1], "index", None
    elif kind == REGISTERED:  # (the front reads children that are not attributes through flatten: the step says how)
        registration = _class_kind(spec[1])[1]
        keys = list(spec[2])
        named = {a for a, i in spec[6] if a == spec[2][i]}  # (read as attributes by the front, as by hvp's)
        nodes = [build_tree(c, const, path + ((("attr", k) if k in named else ("child", k, registration)),),
                            counter) for k, c in zip(keys, spec[3])]
        nodes += [build_tree(c, True, path + (("attr", a),), counter) for a, c in zip(spec[7], spec[8])]
        attrs = dict(spec[6]) | {a: len(keys) + j for j, a in enumerate(spec[7])}
        return SNode(kind, spec[1], keys + list(spec[7]), nodes, path, order, const, attrs=attrs)
    else:
        keys, children, how, cls = list(spec[2]), spec[3], "attr", spec[1]
    nodes = [build_tree(c, const, path + ((how, k),), counter) for k, c in zip(keys, children)]
    return SNode(kind, cls, keys, nodes, path, order, const)


def _walk_tree(ct: Any):
    yield ct
    if isinstance(ct, SNode):
        for c in ct.children:
            yield from _walk_tree(c)


# --- errors that are also Python's ---------------------------------------------------------------------------------


class MissingKey(UnsupportedSyntax, KeyError):
    """A read of a key a dict parameter does not have (Python raises KeyError)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class MissingIndex(UnsupportedSyntax, IndexError):
    """A read past the end of a list or tuple parameter (Python raises IndexError)."""


class UnpackCount(UnsupportedSyntax, ValueError):
    """``a, b = value`` where ``value`` is known to have another number of items (Python raises ValueError)."""


class MissingAttribute(UnsupportedSyntax, AttributeError):
    """A read of an attribute a parameter does not have (Python raises AttributeError)."""


# --- the rewriting ---------------------------------------------------------------------------------------------------

_NO = object()  # not a value known when the code is generated
_CLASS_KINDS = (NAMEDTUPLE, DATACLASS, OBJECT, REGISTERED)  # structures whose class has methods and properties
_LITERALS = (str, int, float, bool, type(None))
_KEYS = (str, int, bool)  # the keys of dicts built in the body (constants)
_MUTATORS = ("pop", "popitem", "setdefault", "update", "clear")  # dict methods that change a dict built in the body


class _Region:
    """A stretch of statements that runs as a whole: the function, a branch, a loop body, a nested function."""

    def __init__(self, what: str, parent: Any = None, repeats: bool = False):
        self.what, self.parent, self.repeats = what, parent, repeats


def _name(ident: str, where: Any, ctx: Any = None) -> Any:
    node = gast.Name(ident, ctx or gast.Load(), None, None)
    return gast.copy_location(node, where) if hasattr(where, "lineno") else node


def _const(value: Any, where: Any) -> Any:
    node = gast.Constant(value, None)
    return gast.copy_location(node, where) if hasattr(where, "lineno") else node


def _assign(target: Any, value: Any, where: Any) -> Any:
    return gast.copy_location(gast.Assign(targets=[target], value=value, type_comment=None), where)


def _stored(nodes: list) -> set[str]:
    return {n.id for s in nodes for n in frontend.walk(s) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}


def _has_jump(stmts: list) -> bool:
    """A break or continue that belongs to the loop whose body ``stmts`` is."""
    def jump(node: Any) -> bool:
        if isinstance(node, (gast.Break, gast.Continue)):
            return True
        if isinstance(node, (gast.For, gast.While, gast.FunctionDef, gast.Lambda)):
            return False
        return any(jump(c) for c in gast.iter_child_nodes(node))
    return any(jump(s) for s in stmts)


class _Rewriter:
    """Rewrites statements so that reads of structured parameters become reads of leaf parameters."""

    def __init__(self, pf: Any, roots: dict[str, Root], names: Any):
        self.pf = pf
        self.roots = roots
        self.names = names  # fresh(base) -> a name nothing else uses
        self.bindings: dict[str, Any] = {r.name: r.tree for r in roots.values()}
        self.poisoned: dict[str, str] = {}
        self.owner: dict[int, Root] = {}  # id(tree item) -> its root
        for r in roots.values():
            for item in _walk_tree(r.tree):
                self.owner[id(item)] = r
        self.region: Any = _Region("the function")  # where statements run now (a branch, a loop body...)
        self.scope: Any = self.region  # the function whose variables an assignment binds
        self.returning = False  # rewriting the value of a return statement
        self.iterating: set[int] = set()  # dicts built in the body that an unrolled loop iterates over now
        # closures: a nested function or lambda was defined; writes_parameters: items of dict and list parameters
        # may be assigned (the differentiated function's own: a helper's would change its caller's dict)
        self.flags = {"closures": False, "writes_parameters": True}
        self.pending: list = []  # statements the statement being rewritten needs before it (inlined helpers)
        self.inlining: tuple = ()  # the helpers being inlined, outermost first
        self.returned: Any = None  # (an inlined helper) what its returns give: "value", or a dict's shape
        self.method: Any = None  # (an inlined method) (the instance's class, the class defining the method)
        self.guarded: list = []  # (class, attributes, object) the code assumed (methods, properties, constants)
        self.output: Any = None  # (a vjp with a structured seed) the seed's description: returns give its leaves

    # --- errors ---

    def reject(self, node: Any, message: str, hint: str | None = None, cls: type = UnsupportedSyntax) -> Exception:
        return cls(message, self.pf.location(node), hint)

    def text(self, node: Any) -> str:
        return self.pf.segment(node) or "this value"

    # --- leaves ---

    def use(self, item: Any) -> str:
        """The parameter name of a leaf or a constant container passed whole (registered on first use)."""
        root = self.owner[id(item)]
        if isinstance(item, SLeaf):
            if item.name is None:
                item.name = self.names(root.name + "".join(_piece(p) for p in item.path))
                root.params.append(item)
            return item.name
        if item.param is None:
            item.param = root.name if not item.path else self.names(root.name + "".join(_piece(p) for p in item.path))
            root.params.append(item)
        return item.param

    def ct_expr(self, ct: Any, where: Any) -> Any:
        if isinstance(ct, SLeaf):
            if ct.role == NONE:
                return _const(None, where)
            return _name(self.use(ct), where)
        if isinstance(ct, SSlot):
            return _name(ct.name, where)
        if isinstance(ct, SStatic):
            if type(ct.value) not in _LITERALS:
                raise self.reject(where, f"`{self.text(where)}` cannot be used as a value here")
            return _const(ct.value, where)
        return self.materialise(ct, where)

    def materialise(self, node: SNode, where: Any) -> Any:
        """A container used whole: a constant one is passed as an argument; a list or tuple becomes a display of its
        leaves; anything else is refused."""
        if node.const:
            return _name(self.use(node), where)
        if node.local:
            return self.display_of(node, where)
        if node.kind in (LIST, TUPLE):
            elts = [self.ct_expr(c, where) for c in node.children]
            display = gast.List(elts, gast.Load()) if node.kind == LIST else gast.Tuple(elts, gast.Load())
            return gast.copy_location(display, where)
        what = {DICT: "a dict", NAMEDTUPLE: "a namedtuple", DATACLASS: "a dataclass instance",
                REGISTERED: "a registered structure"}.get(node.kind, "an object")
        raise self.reject(
            where, f"`{self.text(where)}` is {what} of differentiated parameters, used here as a whole value: srcgrad "
                   "reads such a structure through constant keys and attributes, unpacking, `for` loops and len()",
            hint="read the items you need here (e.g. helper(params[\"W\"], params[\"b\"]) instead of helper(params))")

    # --- dicts built in the body: each item a variable of the generated code ---

    def display_of(self, node: SNode, where: Any) -> Any:
        """A dict built in the body, used as a whole value: a display of its items' variables. Python passes on the
        dict object itself, so nothing may read or write the dict through its name after that (what the object's
        new holder does to it is not followed) — except after ``return``, where nothing runs after."""
        if not self.returning:
            crossed = self.crossed(node.region)
            if crossed:
                raise self.reject(where, f"the dict `{self.text(where)}`, built outside this {crossed}, is passed on "
                                         "as a whole value here: srcgrad keeps a dict's items in variables, and the "
                                         "dict object would be shared by every pass",
                                  hint="build the dict inside the loop, or pass the items needed")
            node.escaped = f"line {self.pf.file_line(where)}"
        keys = [_const(k, where) for k in node.keys]
        values = [self.ct_expr(c, where) for c in node.children]
        return gast.copy_location(gast.Dict(keys, values), where)

    def crossed(self, region: Any) -> str:
        """The kind of the first loop or nested function between the current region and ``region`` ('' if none)."""
        current = self.region
        while current is not None and current is not region:
            if current.repeats:
                return current.what
            current = current.parent
        return "" if current is region else "function"

    def in_region(self, what: str, repeats: bool, rewrite: Any, *args: Any) -> Any:
        saved = self.region
        self.region = _Region(what, saved, repeats)
        try:
            return rewrite(*args)
        finally:
            self.region = saved

    def dict_value(self, value: Any, base: str) -> tuple[SNode, list] | None:
        """A new dict built by ``value`` (a display with constant keys, ``dict(...)``, ``.copy()``, a comprehension
        over a structure): the dict and the statements that assign its items' variables; None for any other value
        (a display with a key that is not a constant stays a display: a value passed through)."""
        t = type(value)
        if t is gast.Dict:
            pairs = []
            for k, v in zip(value.keys, value.values):
                if k is None:  # {**other, ...}: other's items
                    source = self.static(v)
                    if not (isinstance(source, SNode) and source.kind == DICT):
                        return None
                    pairs += list(zip(source.keys, source.children))
                    continue
                key = self.value_of(k)
                if key is _NO or type(key) not in _KEYS:
                    return None
                pairs.append((key, v))
            return self.filled(pairs, base, value)
        if t is gast.DictComp:
            return self.dict_comprehension(value, base)
        if t is gast.Call:
            return self.dict_call(value, base)
        return None

    def filled(self, pairs: list, base: str, where: Any) -> tuple[SNode, list]:
        node = SNode(DICT, None, [], [], (), 0, False, local=base, region=self.region)
        out: list = []
        for key, value in pairs:
            out += self.set_item(node, key, value, where)
        return node, out

    def dict_call(self, call: Any, base: str) -> tuple[SNode, list] | None:
        """``dict(other, k=v)``, ``dict(k=v)``, ``other.copy()``: a new dict (a shallow copy: containers shared)."""
        func, args = call.func, call.args
        if isinstance(func, gast.Attribute) and func.attr == "copy" and not args and not call.keywords:
            source = self.static(func.value)
            if isinstance(source, SNode) and source.kind == DICT:
                return self.filled(list(zip(source.keys, source.children)), base, call)
            return None
        if self.builtin(func) is not dict or len(args) > 1 or any(isinstance(a, gast.Starred) for a in args):
            return None
        pairs: list = []
        sources = ([args[0]] if args else []) + [k.value for k in call.keywords if k.arg is None]
        for s in sources:
            source = self.static(s)
            if not (isinstance(source, SNode) and source.kind == DICT):
                return None
            pairs += list(zip(source.keys, source.children))
        pairs += [(k.arg, k.value) for k in call.keywords if k.arg is not None]
        return self.filled(pairs, base, call)

    def dict_comprehension(self, comp: Any, base: str) -> tuple[SNode, list] | None:
        """``{k: f(v) for k, v in d.items()}`` over structures whose keys are known: unrolled."""
        node = SNode(DICT, None, [], [], (), 0, False, local=base, region=self.region)

        def item() -> list | None:
            key = self.value_of(comp.key)
            if key is _NO or type(key) not in _KEYS:
                return None
            return self.set_item(node, key, comp.value, comp)

        saved = self.bindings, self.poisoned
        try:
            out = self._unroll_generators(comp, list(comp.generators), item)
        finally:
            self.bindings, self.poisoned = saved
        return None if out is None else (node, out)

    def set_item(self, node: SNode, key: Any, value: Any, where: Any) -> list:
        """``node[key] = value`` for a dict built in the body (``value``: an expression, or an item being copied):
        an existing item's variable is assigned; a new key, or a dict in place of a value, changes the dict's
        keys, which only the region that built it may do."""
        new, out = self.item_of(value, node, key, where)
        index = node.keys.index(key) if key in node.keys else None
        old = node.children[index] if index is not None else None
        if isinstance(old, SSlot) and not isinstance(new, SNode):
            self.check_scope(old, where)
            return out + [_assign(_name(old.name, where, gast.Store()), new, where)]
        self.check_keys_change(node, key, where, replaces=index is not None)
        if isinstance(new, SNode):
            child: Any = new
        else:
            child = SSlot(self.names(node.local + _piece(("key", key))), self.scope)
            out.append(_assign(_name(child.name, where, gast.Store()), new, where))
        if index is None:
            node.keys.append(key)
            node.children.append(child)
        else:
            node.children[index] = child
        return out

    def item_of(self, value: Any, node: SNode, key: Any, where: Any) -> tuple[Any, list]:
        """What an item becomes: a container known now (shared, as Python shares it) or an expression."""
        if isinstance(value, SNode):
            return value, []
        if isinstance(value, (SLeaf, SSlot, SStatic)):
            return self.ct_expr(value, where), []
        built = self.dict_value(value, node.local + _piece(("key", key)))
        if built is not None:
            return built
        ct = self.static(value)
        if isinstance(ct, SNode):
            return ct, []
        return self.expr(value), []

    def check_scope(self, slot: SSlot, where: Any) -> None:
        if slot.scope is not self.scope and self.inlining:
            raise self.reject(where, f"`{self.text(where)}` runs a helper that writes into a dict it is passed: "
                                     "Python changes the caller's dict, which srcgrad keeps in variables of the "
                                     "caller, so it cannot follow the write",
                              hint="return the new values from the helper and assign them in the caller")
        if slot.scope is not self.scope:
            raise self.reject(where, f"`{self.text(where)}` writes into a dict of the enclosing function from a nested "
                                     "function: srcgrad keeps a dict's items in variables of the function that built "
                                     "it, and cannot follow the write",
                              hint="return the new value from the nested function and write it in the enclosing one")

    def check_keys_change(self, node: SNode, key: Any, where: Any, replaces: bool) -> None:
        what = f"replaces the dict at key {key!r}" if replaces else f"adds the key {key!r}"
        if node.region is not self.region:
            raise self.reject(where, f"`{self.text(where)}` {what} of a dict built outside this "
                                     f"{self.region.what}: srcgrad fixes a dict's keys when it generates code, so "
                                     "they change only in the straight-line code that built the dict",
                              hint="give the dict every key where it is built (e.g. d = {\"a\": 0.0}) and assign "
                                   "existing keys in branches and loops")
        if id(node) in self.iterating:
            raise self.reject(where, f"`{self.text(where)}` {what} of a dict while a loop iterates over it (Python "
                                     "raises RuntimeError: dictionary changed size during iteration)")
        if replaces and self.flags["closures"]:
            raise self.reject(where, f"`{self.text(where)}` {what} after a nested function or lambda was defined: "
                                     "srcgrad cannot tell which version it reads", hint="change the dict first")

    def key_of(self, target: Any) -> Any:
        """The key a subscript of a dict built in the body names (a constant), or a refusal."""
        key = self.value_of(target.slice)
        if key is _NO or type(key) not in _KEYS:
            raise self.reject(target.slice, f"`{self.text(target.slice)}` is a key known only when the code runs: "
                                            "srcgrad keeps a dict's items in variables, so it reads and writes dicts "
                                            "with constant keys (or the keys of a `for` loop over the dict)",
                              hint="use a constant key, iterate over the dict (for k in d), or use a list or an "
                                   "array indexed by an integer")
        return key

    def write_item(self, target: Any, value: Any, where: Any) -> list:
        """``d[k] = value`` where ``d`` is known now: a dict built in the body, or an item of a dict or list
        parameter (its variable is assigned; Python would also change the caller's dict, as it changes an array
        argument written in place, and srcgrad's gradient leaves its arguments as they are)."""
        base = self.static(target.value)
        if isinstance(target, gast.Subscript) and isinstance(base, SNode):
            if base.local:
                return self.set_item(base, self.key_of(target), value, where)
            leaf = self.static(target) if base.kind in (DICT, LIST) and not base.const else None
            if isinstance(leaf, SLeaf) and leaf.role != NONE and self.flags["writes_parameters"]:
                new, out = self.item_of(value, base, None, where)
                if not isinstance(new, SNode):
                    return out + [_assign(_name(self.use(leaf), target, gast.Store()), new, where)]
        raise self.write_error(target)

    def aug_write(self, s: Any) -> list | None:
        """``d[k] += v`` on an item known now: the item's variable updated (in place for an array, as in Python)."""
        target = s.target
        base = self.static(target.value) if isinstance(target, gast.Subscript) else None
        if not isinstance(base, SNode):
            return None
        if base.local:
            key = self.key_of(target)
        item = self.static(target)
        if isinstance(item, SSlot):
            self.check_scope(item, target)
            name = item.name
        elif isinstance(item, SLeaf) and item.role != NONE and not base.const and base.kind in (DICT, LIST) \
                and self.flags["writes_parameters"]:
            name = self.use(item)
        elif base.local and key not in base.keys:
            raise self.reject(target, f"`{self.text(target.value)}` has no key {key!r}", cls=MissingKey)
        else:
            raise self.write_error(target)
        return [gast.copy_location(gast.AugAssign(_name(name, target, gast.Store()), s.op, self.expr(s.value)), s)]

    def mutator(self, call: Any) -> tuple[Any, list] | None:
        """``d.pop(k)``, ``d.setdefault(k, v)``, ``d.update(...)``, ``d.clear()``, ``d.popitem()`` on a dict built
        in the body, as a statement or the value of an assignment: (what it returns, statements)."""
        func = call.func if isinstance(call, gast.Call) else None
        if not (isinstance(func, gast.Attribute) and func.attr in _MUTATORS):
            return None
        node = self.static(func.value)
        if not (isinstance(node, SNode) and node.local):
            return None
        if any(isinstance(a, gast.Starred) for a in call.args):
            raise self.reject(call, f"srcgrad cannot unpack arguments into `.{func.attr}()` of a dict")
        return getattr(self, "dict_" + func.attr)(node, call)

    def dict_pop(self, node: SNode, call: Any) -> tuple[Any, list]:
        if not 1 <= len(call.args) <= 2 or call.keywords:
            raise self.reject(call, "pop takes a key and an optional default")
        key = self.key_of(gast.copy_location(gast.Subscript(call.func.value, call.args[0], gast.Load()), call))
        if key not in node.keys:
            if len(call.args) == 2:
                return call.args[1], []  # (an expression: the default)
            raise self.reject(call, f"`{self.text(call.func.value)}` has no key {key!r}", cls=MissingKey)
        self.check_keys_change(node, key, call, replaces=True)
        index = node.keys.index(key)
        child = node.children.pop(index)
        del node.keys[index]
        return child, []

    def dict_popitem(self, node: SNode, call: Any) -> tuple[Any, list]:
        if call.args or call.keywords:
            raise self.reject(call, "popitem takes no arguments")
        if not node.keys:
            raise self.reject(call, "popitem(): the dict is empty", cls=MissingKey)
        key = node.keys[-1]
        self.check_keys_change(node, key, call, replaces=True)
        child = node.children.pop()
        node.keys.pop()
        return _pair(SStatic(key), child), []

    def dict_setdefault(self, node: SNode, call: Any) -> tuple[Any, list]:
        if not 1 <= len(call.args) <= 2 or call.keywords:
            raise self.reject(call, "setdefault takes a key and an optional default")
        key = self.key_of(gast.copy_location(gast.Subscript(call.func.value, call.args[0], gast.Load()), call))
        if key in node.keys:
            return node.children[node.keys.index(key)], []
        default = call.args[1] if len(call.args) == 2 else _const(None, call)
        out = self.set_item(node, key, default, call)
        return node.children[node.keys.index(key)], out

    def dict_update(self, node: SNode, call: Any) -> tuple[Any, list]:
        if len(call.args) > 1:
            raise self.reject(call, "update takes one positional argument")
        pairs: list = []
        for source in list(call.args) + [k.value for k in call.keywords if k.arg is None]:
            pairs += self.pairs_of(source)
        pairs += [(k.arg, k.value) for k in call.keywords if k.arg is not None]
        out: list = []
        for key, value in pairs:
            out += self.set_item(node, key, value, call)
        return SStatic(None), out

    def pairs_of(self, source: Any) -> list:
        """The (key, value) pairs of a display with constant keys or of a dict known now."""
        if isinstance(source, gast.Dict) and all(k is not None for k in source.keys):
            keys = [self.value_of(k) for k in source.keys]
            if all(k is not _NO and type(k) in _KEYS for k in keys):
                return list(zip(keys, source.values))
        found = self.static(source)
        if isinstance(found, SNode) and found.kind == DICT:
            return list(zip(found.keys, found.children))
        raise self.reject(source, f"srcgrad updates a dict from a dict whose keys it knows (`{self.text(source)}` is "
                                  "not one)", hint="assign the keys one by one")

    def dict_clear(self, node: SNode, call: Any) -> tuple[Any, list]:
        if call.args or call.keywords:
            raise self.reject(call, "clear takes no arguments")
        for key in list(node.keys):
            self.check_keys_change(node, key, call, replaces=True)
        node.keys.clear()
        node.children.clear()
        return SStatic(None), []

    # --- user helpers that take a dict or a structure, or return a dict: inlined as nested functions ---

    def inline_call(self, call: Any, result: str | None = None) -> Any:
        """``h(d, x)`` where ``d`` is a dict or structure known now (or ``r = h(x)`` where ``h`` returns a dict), ``h``
        a user function: ``h`` becomes a nested function of this one whose body reads the structure's items (the
        lowering inlines nested functions where they are called). Returns the new call, or (for ``result``) the
        statements and the dict the result is; None when ``call`` is not such a call."""
        method = self.method_callee(call.func)
        if method is not None:
            return self.inline(method[0], call, result, method[1], method[2])
        func = self.user_helper(call.func)
        if func is None:
            return None
        arguments = [self.static(a) for a in call.args] + [self.static(k.value) for k in call.keywords]
        if not any(isinstance(a, SNode) for a in arguments) and not (result and _returns_dict(func)):
            return None
        return self.inline(func, call, result)

    def method_callee(self, func: Any) -> tuple | None:
        """``self.m(...)`` on an object, dataclass or namedtuple known now, ``super().m(...)`` in an inlined method,
        ``cls.m(...)`` in an inlined class method: (the function, what its first parameter is, the method's
        context), found through the class's method resolution order; None for other calls."""
        if not isinstance(func, gast.Attribute):
            return None
        base = func.value
        if isinstance(base, gast.Call) and self.builtin(base.func) is super and not base.args and self.method:
            return self.super_callee(func)
        node = self.static(base)
        cls = node.cls if isinstance(node, SNode) and node.kind in _CLASS_KINDS else \
            node.value if isinstance(node, SStatic) and isinstance(node.value, type) else None
        if cls is None or (isinstance(node, SNode) and func.attr in node.keys and node.kind != REGISTERED):
            return None
        found = self.class_member(cls, func.attr, func)
        owner = next((k for k in cls.__mro__ if func.attr in vars(k)), cls)
        if isinstance(found, types.FunctionType) and isinstance(node, SNode):
            return found, node, (cls, owner)
        if isinstance(found, staticmethod):
            return found.__func__, None, None
        if isinstance(found, classmethod):
            return found.__func__, SStatic(cls), (cls, owner)
        return None

    def super_callee(self, func: Any) -> tuple:
        """``super().m(...)`` in a method inlined for an instance of ``cls``, defined in ``owner``: the next ``m``
        in ``cls``'s method resolution order after ``owner``."""
        cls, owner, first = self.method
        mro = cls.__mro__
        after = [k for k in mro[mro.index(owner) + 1:] if func.attr in vars(k)]
        found = vars(after[0])[func.attr] if after else _NO
        if not isinstance(found, types.FunctionType):
            raise self.reject(func, f"srcgrad follows super().{func.attr}(...) to a method defined with def in a "
                                    "base class")
        self.guarded.append((cls, ("__mro__",), cls.__mro__))  # (the bases: fixed unless __bases__ is assigned)
        self.guarded.append((after[0], (func.attr,), found))
        return found, first, (cls, after[0])

    def user_helper(self, node: Any) -> Any:
        from srcgrad import usercode
        from srcgrad.rules import lookup

        if not isinstance(node, gast.Name) or node.id in self.local_names or node.id in self.bindings:
            return None
        func = self.pf.resolve(node.id)
        if not usercode.is_user_function(func) or lookup(func) is not None:
            return None
        return func

    def inline(self, func: Any, call: Any, result: str | None, first: Any = None, method: Any = None) -> Any:
        from srcgrad import usercode

        if not usercode.is_user_function(func):
            raise self.reject(call, f"`{self.text(call.func)}` is {usercode.qualified_name(func)}, not a function of "
                                    "your code: srcgrad inlines methods and helpers from their source")
        if func in self.inlining:
            raise self.reject(call, f"`{func.__name__}` calls itself with a dict or a structure: srcgrad inlines such "
                                    "helpers, and cannot inline a recursive one", hint="pass the items it needs")
        fnode = _relocated(frontend.parse_helper(func).node, call)
        args = fnode.args
        if args.vararg is not None or args.kwarg is not None or set(func.__code__.co_freevars) - {"__class__"}:
            raise self.reject(call, f"srcgrad inlines `{func.__name__}` (it takes or returns a dict or a structure), "
                                    "and cannot inline a helper with *args, **kwargs or variables of an enclosing "
                                    "function", hint="list the parameters explicitly, at module level")
        self.check_free_names(func, fnode, call)
        bound = self.bind_arguments(func, fnode, call, first)
        name = self.names(f"{func.__name__}_inlined")
        self.names.taken.update(n.id for n in frontend.walk(fnode) if isinstance(n, gast.Name))
        inner = _Rewriter.__new__(_Rewriter)
        inner.__dict__.update(self.__dict__)
        inner.bindings = {p: v for p, v in bound.items() if isinstance(v, (SNode, SStatic))}
        inner.poisoned, inner.pending, inner.iterating, inner.returned = {}, [], set(), None
        inner.region = inner.scope = _Region("helper", self.region, True)
        inner.flags = {"closures": True, "writes_parameters": False}
        inner.inlining = self.inlining + (func,)
        inner.method = None if method is None else (method[0], method[1], first)
        inner.local_names = frozenset(_stored([fnode]) | set(bound))
        self.flags["closures"] = True
        runtime = [p for p, v in bound.items() if not isinstance(v, (SNode, SStatic))]
        new = copy.copy(fnode)
        new.name = name
        new.args = gast.arguments([_name(p, call, gast.Param()) for p in runtime], [], None, [], [], None, [])
        new.body = inner.block(list(fnode.body)) or [gast.Pass()]
        self.pending.append(new)
        value = gast.copy_location(gast.Call(_name(name, call), [bound[p] for p in runtime], []), call)
        return self.inlined_result(inner.returned, value, call, result)

    def inlined_result(self, returned: Any, value: Any, call: Any, result: str | None) -> Any:
        if returned is None or returned == "value":
            return value if result is None else None
        if result is None:
            raise self.reject(call, f"`{self.text(call)}` returns a dict: srcgrad reads a dict a helper returns "
                                    "when the call is the value of an assignment (r = helper(...))",
                              hint="assign the result to a name first")
        node = self.shaped(returned, result, call)
        names = [_name(s.name, call, gast.Store()) for s in _slots(node)]
        target = names[0] if len(names) == 1 else gast.Tuple(names, gast.Store())
        return node, [_assign(target, value, call)] if names else [gast.Expr(value)]

    def shaped(self, shape: tuple, base: str, where: Any) -> SNode:
        """A new dict with the structure ``shape`` (what an inlined helper returns), its items fresh variables."""
        node = SNode(DICT, None, list(shape[1]), [], (), 0, False, local=base, region=self.region)
        for key, child in zip(shape[1], shape[2]):
            sub = base + _piece(("key", key))
            node.children.append(self.shaped(child, sub, where) if child is not None else
                                 SSlot(self.names(sub), self.scope))
        return node

    def check_free_names(self, func: Any, fnode: Any, where: Any) -> None:
        from srcgrad import guards

        own = frontend.parse_helper(func)
        for name, _ in guards.free_paths(fnode):
            if name in self.local_names or own.resolve(name) is not self.pf.resolve(name):
                raise self.reject(where, f"srcgrad inlines `{func.__name__}` here (it takes or returns a dict or a "
                                         f"structure), and `{name}` means something else here than where "
                                         f"{func.__name__} is defined", hint=f"rename `{name}` in one of them")

    def bind_arguments(self, func: Any, fnode: Any, call: Any, first: Any = None) -> dict:
        """Each parameter of the inlined helper -> the caller's expression, or the structure known now (``first``:
        what a method's ``self`` or a class method's ``cls`` is)."""
        args = fnode.args
        positional = [a.id for a in args.posonlyargs + args.args]
        bound_first = {}
        if first is not None:
            if not positional:
                raise self.reject(call, f"`{func.__name__}` takes no `self` (or `cls`) parameter")
            bound_first, positional = {positional[0]: first}, positional[1:]
        kwonly = [a.id for a in args.kwonlyargs]
        if len(call.args) > len(positional) or any(isinstance(a, gast.Starred) for a in call.args):
            raise self.reject(call, f"`{func.__name__}` takes {len(positional)} positional arguments")
        given = dict(zip(positional, call.args))
        for k in call.keywords:
            if k.arg is None or k.arg not in positional + kwonly or k.arg in given:
                raise self.reject(k.value, f"`{func.__name__}` got an unexpected or repeated argument `{k.arg}`")
            given[k.arg] = k.value
        defaults = dict(zip(positional[len(positional) - len(func.__defaults__ or ()):], func.__defaults__ or ()))
        defaults.update(func.__kwdefaults__ or {})
        bound = dict(bound_first)
        for p in positional + kwonly:
            if p in given:
                ct = self.static(given[p])
                bound[p] = ct if isinstance(ct, SNode) else self.expr(given[p])
            elif p in defaults and type(defaults[p]) in _LITERALS:
                bound[p] = _const(defaults[p], call)
            else:
                raise self.reject(call, f"`{func.__name__}` is missing the argument `{p}` (or its default is not a "
                                        "number, a string or None)")
        return bound

    def returned_value(self, s: Any) -> list | None:
        """In an inlined helper: ``return d`` of a dict built in it, as the tuple of its items' variables (the
        caller rebuilds the dict); every return then gives a dict with the same keys."""
        if self.scope.what != "helper" or s.value is None:
            return None
        made = self.dict_value(s.value, "result")
        out = made[1] if made else []
        node = made[0] if made else self.static(s.value)
        shape = _shape(node) if isinstance(node, SNode) and node.local else None
        if node is not None and isinstance(node, SNode) and shape is None:
            raise self.reject(s, "srcgrad inlines this helper (it takes a structure), and reads the dicts it returns "
                                 "when they are built in it", hint="return a new dict ({**d}) or the items")
        if shape is None:
            if self.returned not in (None, "value"):
                raise self.reject(s, "this helper returns a dict on some paths only")
            self.returned = "value"
            return None
        if self.returned not in (None, shape):
            raise self.reject(s, "this helper returns dicts with different keys (or a dict on some paths only)")
        self.returned = shape
        items = [_name(slot.name, s) for slot in _slots(node)]
        value = items[0] if len(items) == 1 else gast.copy_location(gast.Tuple(items, gast.Load()), s)
        return out + [gast.copy_location(gast.Return(value), s)]

    # --- a structured output (vjp with a seed of the output's structure) ---

    def flat_return(self, s: Any) -> list:
        """``return value`` as ``return (leaf, ...)``: the leaves of what the function returns, in the order of the
        seed's leaves (srcgrad/api.py passes the seed's leaves as a tuple)."""
        if s.value is None:
            raise self.reject(s, "the function returns None: a vjp seed of a structure needs an output of that "
                                 "structure", cls=InvalidArgument)
        statements, leaves = self.output_leaves(s.value, self.output, s)
        value = gast.copy_location(gast.Tuple(leaves, gast.Load()), s)
        return statements + [gast.copy_location(gast.Return(value), s)]

    def output_leaves(self, value: Any, spec: tuple, where: Any) -> tuple[list, list]:
        """The statements and leaf expressions of ``value`` read in the structure ``spec``: a dict built in the body
        by its keys (which must be the seed's), a tuple or list display by its items, any other value unpacked
        (Python's ValueError when its length is not the seed's)."""
        if spec[0] == LEAF:
            return [], [self.expr(value)]
        made = self.dict_value(value, "output") if spec[0] == DICT else None
        ct = made[0] if made else self.static(value)
        if isinstance(ct, SNode):
            statements, leaves = self.tree_leaves(ct, spec, where)
            return (made[1] if made else []) + statements, leaves
        if type(value) in (gast.Tuple, gast.List) and spec[0] != DICT and not any(
                isinstance(e, gast.Starred) for e in value.elts):
            self.check_length(len(value.elts), spec, where)
            return self.items_leaves(value.elts, spec[-1], where)
        fields = self.namedtuple_fields(value) if spec[0] != DICT else None
        if fields is not None:  # Out(a, b=...): the items as a display's
            self.check_length(len(fields), spec, where)
            return self.items_leaves(fields, spec[-1], where)
        if spec[0] == DICT:
            raise self.reject(where, f"`{self.text(value)}` is not a dict srcgrad follows (built in the function with "
                                     "constant keys): the seed is a dict", cls=InvalidArgument,
                              hint="build the returned dict in the function, or pass a seed of the output's shape")
        holder = self.names("output")
        items = [self.names(f"{holder}_{i}") for i in range(len(spec[-1]))]
        target = gast.Tuple([_name(n, where, gast.Store()) for n in items], gast.Store())
        statements = [_assign(_name(holder, where, gast.Store()), self.expr(value), where),
                      self.length_check(holder, len(items), where),
                      gast.copy_location(gast.Assign([target], _name(holder, where), None), where)]
        more, leaves = self.items_leaves([_name(n, where) for n in items], spec[-1], where)
        return statements + more, leaves

    def namedtuple_fields(self, value: Any) -> list | None:
        """The field values of ``Cls(a, b=...)`` building a namedtuple (every field given), in field order."""
        if not (type(value) is gast.Call and isinstance(value.func, gast.Name)) or value.func.id in self.local_names:
            return None
        cls = self.pf.resolve(value.func.id)
        kind = _class_kind(cls) if isinstance(cls, type) else None
        if kind is None or kind[0] != NAMEDTUPLE or any(isinstance(a, gast.Starred) for a in value.args):
            return None
        given = dict(zip(kind[1], value.args)) | {k.arg: k.value for k in value.keywords}
        if set(given) != set(kind[1]):
            return None
        self.guarded.append((cls, ("_fields",), cls._fields))
        return [given[f] for f in kind[1]]

    def items_leaves(self, items: list, specs: tuple, where: Any) -> tuple[list, list]:
        """The leaves of items evaluated in order: a leaf computed before an item that needs statements is
        assigned to a variable first (Python evaluates a display's items left to right)."""
        statements: list = []
        leaves: list = []
        for item, child in zip(items, specs):
            more, found = self.output_leaves(item, child, where)
            if more:
                for i, leaf in enumerate(leaves):
                    if not isinstance(leaf, (gast.Name, gast.Constant)):
                        held = self.names("output")
                        statements.append(_assign(_name(held, where, gast.Store()), leaf, where))
                        leaves[i] = _name(held, where)
            statements += more
            leaves += found
        return statements, leaves

    def tree_leaves(self, ct: SNode, spec: tuple, where: Any) -> tuple[list, list]:
        """The leaves of a structure known now (a dict built in the body, a parameter's list...) in ``spec``'s
        order, after checking it has ``spec``'s containers."""
        if spec[0] == DICT:
            if ct.kind != DICT or set(ct.keys) != set(spec[1]):
                what = f"a dict with the keys {list(ct.keys)}" if ct.kind == DICT else f"a {ct.kind}"
                raise self.reject(where, f"the function returns {what}, the seed is a dict with the keys "
                                         f"{list(spec[1])}", cls=InvalidArgument,
                                  hint="pass a seed of the output's structure")
            children = [ct.children[ct.keys.index(k)] for k in spec[1]]
        else:
            if ct.kind not in (LIST, TUPLE, NAMEDTUPLE):
                raise self.reject(where, f"the function returns a {ct.kind}, the seed is a {spec[0]}",
                                  cls=InvalidArgument, hint="pass a seed of the output's structure")
            self.check_length(len(ct.children), spec, where)
            children = list(ct.children)
        statements: list = []
        leaves: list = []
        for child, sub in zip(children, spec[2] if spec[0] == DICT else spec[-1]):
            if isinstance(child, SNode):
                more, found = self.tree_leaves(child, sub, where)
            else:
                more, found = self.output_leaves(self.ct_expr(child, where), sub, where)
            statements += more
            leaves += found
        return statements, leaves

    def length_check(self, holder: str, n: int, where: Any) -> Any:
        """``if not isinstance(holder, (tuple, list)) or len(holder) != n: raise ValueError(...)``: an output computed
        at run time must be a sequence of as many items as the seed (the unpacking that follows reads them by
        index)."""
        for builtin in (len, isinstance, tuple, list, ValueError):
            name = builtin.__name__
            if self.pf.resolve(name) is not builtin or name in self.local_names:
                raise self.reject(where, f"srcgrad checks the output's structure with `{name}`, which names something "
                                         "else here", hint=f"do not rebind {name}")
        kind = gast.Call(_name("isinstance", where), [_name(holder, where), gast.Tuple(
            [_name("tuple", where), _name("list", where)], gast.Load())], [])
        size = gast.Call(_name("len", where), [_name(holder, where)], [])
        test = gast.BoolOp(gast.Or(), [gast.UnaryOp(gast.Not(), kind),
                                       gast.Compare(size, [gast.NotEq()], [_const(n, where)])])
        message = _const(f"the seed is a sequence of {n} items here, the function's output is not (a vjp seed has "
                         "the output's structure)", where)
        fail = gast.Raise(gast.Call(_name("ValueError", where), [message], []), None)
        return gast.copy_location(gast.If(test, [gast.copy_location(fail, where)], []), where)

    def check_length(self, n: int, spec: tuple, where: Any) -> None:
        if n != len(spec[-1]):
            raise self.reject(where, f"the function returns {n} items here, the seed has {len(spec[-1])}",
                              cls=InvalidArgument, hint="pass a seed of the output's structure")

    # --- values known when the code is generated ---

    def lookup(self, node: Any) -> Any:
        if node.id in self.poisoned:
            raise self.reject(node, f"`{node.id}` holds a dict or a part of a structured parameter on some paths only "
                                    f"({self.poisoned[node.id]}): srcgrad resolves such names when it generates code",
                              hint="read the structure directly where it is needed, or assign the name on every path "
                                   "(a dict: build it before the if or loop and write its keys inside)")
        found = self.bindings.get(node.id)
        if isinstance(found, SNode) and found.escaped:
            raise self.reject(node, f"the dict `{node.id}` is used after it was passed on as a whole value "
                                    f"({found.escaped}): srcgrad keeps a dict's items in variables, and cannot follow "
                                    "what happens to the dict object it passed on",
                              hint="pass on a copy made last (dict(d) after the last use), or pass the items needed")
        return found

    def static(self, node: Any) -> Any:
        """The compile-time value (SNode, SLeaf, SStatic) an expression denotes, or None."""
        t = type(node)
        if t is gast.Name:
            return self.lookup(node) if isinstance(node.ctx, gast.Load) else None
        if t is gast.Subscript:
            base = self.static(node.value)
            return self.child_by_index(base, node.slice, node) if isinstance(base, SNode) else None
        if t is gast.Attribute:
            base = self.static(node.value)
            if isinstance(base, SStatic) and isinstance(base.value, type):  # (cls in an inlined class method)
                found = self.class_member(base.value, node.attr, node)
                return found if isinstance(found, SStatic) else None
            return self.child_by_attr(base, node.attr, node) if isinstance(base, SNode) else None
        if t is gast.Call:
            return self.static_call(node)
        return None

    def static_call(self, node: Any) -> Any:
        func, args = node.func, node.args
        if node.keywords or any(isinstance(a, gast.Starred) for a in args):
            return None
        builtin = self.builtin(func)
        if builtin is not None:
            return self.static_builtin(builtin, node)
        if isinstance(func, gast.Attribute) and func.attr in ("keys", "values", "items", "get"):
            base = self.static(func.value)
            if isinstance(base, SNode) and base.kind == DICT:
                return self.static_dict_method(base, func.attr, args)
        return None

    def static_builtin(self, builtin: Any, node: Any) -> Any:
        """``len``, ``enumerate``, ``zip``, ``list`` and ``tuple`` of structures known now."""
        args = node.args
        if builtin is len and len(args) == 1:
            base = self.static(args[0])
            if isinstance(base, SNode):
                if base.kind in (DATACLASS, OBJECT, REGISTERED):
                    raise self.reject(node, f"`{self.text(args[0])}` has no len()", cls=UnsupportedSyntax)
                return SStatic(len(base.children))
            return None
        if builtin in (enumerate, zip) and args:
            seqs = [self.items(self.static(a), a) for a in args]
            if any(s is None for s in seqs) or (builtin is enumerate and len(args) != 1):
                return None
            if builtin is enumerate:
                rows = [_pair(SStatic(i), v) for i, v in enumerate(seqs[0])]
            else:
                rows = [_pair(*vs) for vs in zip(*seqs)]
            return SNode(LIST, None, list(range(len(rows))), rows, (), 0, False)
        return None

    def static_dict_method(self, base: SNode, method: str, args: list) -> Any:
        """``.keys()``, ``.values()``, ``.items()`` (lists of the items known now) and ``.get(k)`` of a dict."""
        if method != "get":
            if args:
                return None
            if method == "keys":
                rows = [SStatic(k) for k in base.keys]
            elif method == "values":
                rows = list(base.children)
            else:
                rows = [_pair(SStatic(k), v) for k, v in zip(base.keys, base.children)]
            return SNode(LIST, None, list(range(len(rows))), rows, (), 0, False)
        if not 1 <= len(args) <= 2:
            return None
        key = self.value_of(args[0])
        if key is not _NO and key in base.keys:
            return base.children[base.keys.index(key)]
        if key is not _NO:  # a missing key: the default, when it is a constant
            default = self.value_of(args[1]) if len(args) == 2 else None
            return None if default is _NO else SStatic(default)
        return None

    def builtin(self, func: Any) -> Any:
        """The builtin a call's function name denotes (not shadowed by a local or a bound name), or None."""
        if isinstance(func, gast.Name) and func.id not in self.bindings and func.id not in self.local_names:
            obj = self.pf.resolve(func.id)
            return obj if obj in (len, enumerate, zip, range, sum, list, tuple, dict, super) else None
        return None

    def items(self, ct: Any, where: Any) -> list | None:
        """What iterating a compile-time value gives, or None when it is not known (a leaf: iterated at run time)."""
        if not isinstance(ct, SNode):
            return None
        if ct.kind == DICT:
            return [SStatic(k) for k in ct.keys]
        if ct.kind in (DATACLASS, OBJECT, REGISTERED):
            raise self.reject(where, f"`{self.text(where)}` is not iterable (a {ct.cls.__name__} instance)",
                              cls=UnsupportedSyntax)
        return list(ct.children)

    def child_by_index(self, node: SNode, index: Any, where: Any) -> Any:
        if isinstance(index, gast.Slice):
            if node.kind not in (LIST, TUPLE, NAMEDTUPLE):
                return None
            bounds = [None if b is None else self.value_of(b) for b in (index.lower, index.upper, index.step)]
            if any(b is _NO or (b is not None and type(b) is not int) for b in bounds):
                return None
            picked = list(range(len(node.children)))[slice(*bounds)]
            kind = LIST if node.kind == LIST else TUPLE
            return SNode(kind, None, list(range(len(picked))), [node.children[i] for i in picked], (), 0, node.const
                         and False)
        key = self.value_of(index)
        if key is _NO:
            return None
        if node.kind == DICT:
            if key not in node.keys:
                raise self.reject(where, f"`{self.text(where.value)}` has no key {key!r} (its keys: "
                                         f"{', '.join(map(repr, node.keys)) or 'none'})", cls=MissingKey)
            return self.live(node.children[node.keys.index(key)], where)
        if node.kind in (LIST, TUPLE, NAMEDTUPLE):
            if type(key) is not int:
                return None
            if not -len(node.children) <= key < len(node.children):
                raise self.reject(where, f"index {key} is out of range: `{self.text(where.value)}` has "
                                         f"{len(node.children)} items", cls=MissingIndex)
            return node.children[key]
        raise self.reject(where, f"`{self.text(where.value)}` (a {node.cls.__name__} instance) is not subscriptable")

    def live(self, child: Any, where: Any) -> Any:
        """``child``, unless it is a dict that was passed on as a whole value before."""
        if isinstance(child, SNode) and child.escaped:
            raise self.reject(where, f"the dict `{self.text(where)}` is used after it was passed on as a whole "
                                     f"value ({child.escaped})", hint="pass on a copy made last")
        return child

    def not_module(self, child: Any, where: Any) -> Any:
        """``child``, unless it is a module (``cfg.xp``): its attributes would be read by a leaf of unknown kind,
        so ``cfg.xp.sum(v)`` would be taken for an array's method."""
        if isinstance(child, SLeaf) and isinstance(child.spec[1], type) and issubclass(child.spec[1],
                                                                                       types.ModuleType):
            raise self.reject(where, f"`{self.text(where)}` is a module: srcgrad finds the rule of each call from the "
                                     "function it names when it generates the code, and cannot know which module an "
                                     "attribute will hold",
                              hint="call the module by its global name in the function (np.sum(v))")
        return child

    def child_by_attr(self, node: SNode, attr: str, where: Any) -> Any:
        if node.kind == REGISTERED:
            return self.registered_child(node, attr, where)
        if node.kind in (NAMEDTUPLE, DATACLASS, OBJECT):
            found = self.class_member(node.cls, attr, where)
            if attr in node.keys and not isinstance(found, property):
                return self.not_module(node.children[node.keys.index(attr)], where)
            if found is not _NO:
                return found if isinstance(found, SStatic) else None  # (a method or property: the rewrite inlines it)
        if node.kind in (DICT, LIST, TUPLE) and attr in ("keys", "values", "items", "get"):
            return None  # a method: the call decides
        owner = node.cls if node.cls is not None else {DICT: dict, LIST: list, TUPLE: tuple}[node.kind]
        if node.kind == DATACLASS and attr in {f.name for f in dataclasses.fields(owner)}:
            raise self.reject(where, f"the field `{attr}` of {owner.__name__} has init=False: srcgrad rebuilds "
                                     "dataclasses through their constructor, so it reads only the fields __init__ "
                                     "takes",
                              hint="make it an init field, or compute it in the function")
        if hasattr(owner, attr):
            kind = "method" if callable(getattr(owner, attr)) else "class attribute"
            raise self.reject(where, f"`{self.text(where)}` is a {kind} of {owner.__name__}: srcgrad reads the "
                                     "fields and instance attributes of a structured parameter, not its methods, "
                                     "properties or class attributes (yet)",
                              hint="compute the value in the function, or pass it as an argument")
        raise self.reject(where, f"`{self.text(where.value)}` ({owner.__name__}) has no attribute `{attr}`",
                          cls=MissingAttribute)

    def registered_child(self, node: SNode, attr: str, where: Any) -> Any:
        """``m.W`` of an instance of a registered class: the child flatten names ``W`` when it is the attribute
        ``W``; a method, property or class constant as for other classes; anything else is refused (srcgrad reads
        a registered object only through its children)."""
        found = self.class_member(node.cls, attr, where)
        if isinstance(found, (types.FunctionType, staticmethod, classmethod, property)):
            return None  # (the rewrite inlines it)
        if attr in node.attrs:
            return node.children[node.attrs[attr]]
        if isinstance(found, SStatic):
            return found
        name = node.cls.__name__
        if attr in node.keys:
            raise self.reject(where, f"flatten of the registered {name} names a child `{attr}` that is not the "
                                     f"attribute `{attr}` of the object: srcgrad cannot read `{self.text(where)}` "
                                     "as that child", hint=f"return the attribute itself: {{{attr!r}: obj.{attr}}}")
        children = [k for k in node.keys if k not in node.attrs or type(k) is int]
        if children and type(children[0]) is int:
            raise self.reject(where, f"`{self.text(where)}`: flatten of the registered {name} returns its children "
                                     "as a sequence, and the attribute does not hold any of them, so srcgrad cannot "
                                     "tell which child it is", cls=MissingAttribute,
                              hint="make flatten return the attributes themselves, or a dict of named children, "
                                   "e.g. ({'W': obj.W, 'b': obj.b}, aux): attribute reads then resolve to them")
        raise self.reject(where, f"`{self.text(where)}` is not a child of the registered {name} (flatten names "
                                 f"{', '.join(map(str, children))}) and holds floats: srcgrad reads a registered "
                                 "object through its children, its attributes that hold no float (constants), "
                                 "methods, properties and class constants",
                          hint=f"return `{attr}` among the children, or pass it as an argument", cls=MissingAttribute)

    def class_member(self, cls: Any, attr: str, where: Any) -> Any:
        """What ``attr`` is on ``cls`` through its method resolution order: a function, static or class method or
        property (the rewrite inlines them), a class attribute that is a number, string or None (a constant:
        SStatic), or ``_NO``. What the code assumed is a guard: rebinding it on the class regenerates."""
        for klass in cls.__mro__:
            if attr in vars(klass):
                found = vars(klass)[attr]
                break
        else:
            return _NO
        if isinstance(found, (types.FunctionType, staticmethod, property)):
            self.guarded.append((cls, (attr,), getattr(cls, attr)))
            return found
        if isinstance(found, classmethod):
            self.guarded.append((cls, (attr, "__func__"), found.__func__))
            return found
        if type(found) in _LITERALS:
            self.guarded.append((cls, (attr,), found))
            return SStatic(found)
        return _NO

    def value_of(self, node: Any) -> Any:
        """The Python value of an expression known when the code is generated (constants, keys bound by unrolled
        loops, lengths, membership), or ``_NO``."""
        t = type(node)
        if t is gast.Constant:
            return node.value if type(node.value) in _LITERALS else _NO
        if t is gast.UnaryOp:
            return self.unary_value(node)
        if t is gast.BoolOp:
            return self.boolop_value(node)
        if t is gast.Compare:
            return self.compare(node)
        if t is gast.BinOp:
            return self.binop_value(node)
        if t in (gast.Name, gast.Subscript, gast.Attribute, gast.Call):
            ct = self.static(node)
            if isinstance(ct, SStatic):
                return ct.value
            if isinstance(ct, SLeaf) and ct.role == NONE:
                return None
        return _NO

    def binop_value(self, node: Any) -> Any:
        """``value_of`` integer arithmetic (``len(layers) - 1``, ``i + 1``): ``+``, ``-`` and ``*`` of ints."""
        a, b = self.value_of(node.left), self.value_of(node.right)
        if type(a) is not int or type(b) is not int:
            return _NO
        fold = {gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul}.get(type(node.op))
        return _NO if fold is None else fold(a, b)

    def unary_value(self, node: Any) -> Any:
        """``value_of`` a unary operation (``-`` of a number, ``not``)."""
        v = self.value_of(node.operand)
        if v is _NO:
            return _NO
        if isinstance(node.op, gast.USub) and type(v) in (int, float):
            return -v
        if isinstance(node.op, gast.Not):
            return not v
        return _NO

    def boolop_value(self, node: Any) -> Any:
        """``value_of`` an ``and``/``or`` whose operands are all known."""
        values = [self.value_of(v) for v in node.values]
        if any(v is _NO for v in values):
            return _NO
        result = values[0]
        for v in values[1:]:
            result = (result and v) if isinstance(node.op, gast.And) else (result or v)
        return result

    def compare(self, node: Any) -> Any:
        left = node.left
        result = True
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (gast.In, gast.NotIn)):
                container = self.static(right)
                key = self.value_of(left)
                if not isinstance(container, SNode) or key is _NO:
                    return _NO
                present = key in (container.keys if container.kind in (DICT,) else
                                  [c.value for c in container.children if isinstance(c, SStatic)])
                if container.kind not in (DICT,) and not all(isinstance(c, SStatic) for c in container.children):
                    return _NO
                ok = present if isinstance(op, gast.In) else not present
            elif isinstance(op, (gast.Is, gast.IsNot)):
                a, b = self.identity(left), self.identity(right)
                if a is _NO or b is _NO:
                    return _NO
                ok = (a is b) == isinstance(op, gast.Is)
            else:
                a, b = self.value_of(left), self.value_of(right)
                if a is _NO or b is _NO:
                    return _NO
                ok = {gast.Eq: a == b, gast.NotEq: a != b}.get(type(op), _NO) if not isinstance(
                    op, (gast.Lt, gast.LtE, gast.Gt, gast.GtE)) else _order(op, a, b)
                if ok is _NO:
                    return _NO
            result = result and ok
            left = right
        return result

    def identity(self, node: Any) -> Any:
        """For ``is``: None, or a container (never None), or _NO."""
        if isinstance(node, gast.Constant) and node.value is None:
            return None
        ct = self.static(node)
        if (isinstance(ct, SLeaf) and ct.role == NONE) or (isinstance(ct, SStatic) and ct.value is None):
            return None
        return ct if isinstance(ct, SNode) else _NO

    # --- statements ---

    def block(self, stmts: list) -> list:
        out = []
        for s in stmts:
            saved, self.pending = self.pending, []  # (nested functions its expressions need, defined before it)
            new = self.stmt(s)
            out += self.pending + new
            self.pending = saved
        return out

    def stmt(self, s: Any) -> list:
        method = getattr(self, "stmt_" + type(s).__name__, None)
        return method(s) if method is not None else [self.generic_stmt(s)]

    def stmt_Assign(self, s: Any) -> list:
        built = self.assign_dict(s)
        if built is not None:
            return built
        if not isinstance(s.value, gast.Lambda):
            ct = self.static(s.value)
            if ct is not None:
                out = []
                for target in s.targets:
                    out += self.bind(target, ct, s)
                return out
        value = self.expr(s.value)
        deferred: list = []
        targets = [self.store_target(t, deferred) for t in s.targets]
        return [gast.copy_location(gast.Assign(targets=targets, value=value, type_comment=None), s)] + deferred

    def assign_dict(self, s: Any) -> list | None:
        """``d = {...}`` (a display with constant keys, dict(...), a copy, a comprehension over a structure) and
        ``v = d.pop(k)``-like calls: the dict is known when the code is generated, its items are variables."""
        made = self.mutator(s.value)
        if made is None and all(isinstance(t, gast.Name) for t in s.targets):
            made = self.dict_value(s.value, s.targets[0].id)
            if made is None and isinstance(s.value, gast.Call):
                made = self.inline_call(s.value, s.targets[0].id)
        if made is None:
            return None
        ct, out = made
        if isinstance(ct, gast.AST):  # (an expression: pop's default)
            return out + self.stmt_Assign(gast.copy_location(gast.Assign(targets=s.targets, value=ct,
                                                                         type_comment=None), s))
        for target in s.targets:
            out += self.bind(target, ct, s)
        return out

    def stmt_Expr(self, s: Any) -> list:
        made = self.mutator(s.value)
        if made is not None:
            return made[1]
        return [self.generic_stmt(s)]

    def stmt_Return(self, s: Any) -> list:
        self.returning = True
        try:
            if self.output is not None and self.scope.what == "the function":
                return self.flat_return(s)
            returned = self.returned_value(s)
            return returned if returned is not None else [self.generic_stmt(s)]
        finally:
            self.returning = False

    def stmt_Delete(self, s: Any) -> list:
        for target in s.targets:
            node = self.static(target.value) if isinstance(target, gast.Subscript) else None
            if not (isinstance(node, SNode) and node.local):
                raise self.reject(target, "srcgrad cannot differentiate a `del` statement (except of a constant key "
                                          "of a dict built in the function)",
                                  hint="remove the `del` statement (rebind the name instead)")
            key = self.key_of(target)
            if key not in node.keys:
                raise self.reject(target, f"`{self.text(target.value)}` has no key {key!r}", cls=MissingKey)
            self.check_keys_change(node, key, target, replaces=True)
            index = node.keys.index(key)
            del node.keys[index]
            del node.children[index]
        return []

    def stmt_AnnAssign(self, s: Any) -> list:
        if s.value is None:
            return []
        return self.stmt_Assign(gast.copy_location(gast.Assign(targets=[s.target], value=s.value, type_comment=None),
                                                   s))

    def stmt_AugAssign(self, s: Any) -> list:
        target = s.target
        if isinstance(target, gast.Name) and isinstance(self.lookup(target), SStatic):
            ct = self.bindings.pop(target.id)
            value = gast.copy_location(gast.BinOp(self.ct_expr(ct, target), s.op, self.expr(s.value)), s)
            return [_assign(_name(target.id, target, gast.Store()), value, s)]
        if isinstance(target, gast.Name) and self.lookup(target) is not None:
            raise self.reject(target, f"`{target.id}` is a dict or a structured parameter (or a part of one): srcgrad "
                                      "cannot update it in place", hint="compute the new value into a fresh variable")
        written = self.aug_write(s)
        if written is not None:
            return written
        if isinstance(target, gast.Attribute) and isinstance(self.static(target.value), SNode):
            raise self.write_error(target)
        return [self.generic_stmt(s)]

    def write_error(self, target: Any) -> Exception:
        return self.reject(target, f"`{self.text(target)}` writes into a structured parameter: srcgrad reads "
                                   "structures and assigns existing items of dicts and lists, it does not update "
                                   "tuples, namedtuples, dataclasses or objects (Python refuses or the caller would "
                                   "see the change)",
                           hint="compute the new value into a local variable (e.g. W = params[\"W\"] + delta)")

    def bind(self, target: Any, ct: Any, where: Any) -> list:
        """Bind an assignment target to a compile-time value: a name holds a container or a constant without code;
        a name bound to a leaf or a dict's item is assigned it (so the generated code keeps the user's name)."""
        if isinstance(target, gast.Name):
            self.poisoned.pop(target.id, None)
            if isinstance(ct, (SLeaf, SSlot)):
                self.bindings.pop(target.id, None)
                return [_assign(_name(target.id, target, gast.Store()), self.ct_expr(ct, where), where)]
            self.bindings[target.id] = ct
            return []
        if isinstance(target, (gast.Tuple, gast.List)):
            items = self.items(ct, where)
            if items is None:
                return [_assign(self.store_target(target), self.ct_expr(ct, where), where)]
            if any(isinstance(e, gast.Starred) for e in target.elts):
                raise self.reject(target, "starred unpacking of a structured parameter is not supported",
                                  hint="index the structure instead")
            if len(items) != len(target.elts):
                raise self.reject(target, f"cannot unpack {len(items)} values into {len(target.elts)} names",
                                  hint="unpack into as many names as there are values", cls=UnpackCount)
            out = []
            for t, item in zip(target.elts, items):
                out += self.bind(t, item, where)
            return out
        if isinstance(target, (gast.Subscript, gast.Attribute)) and isinstance(self.static(target.value), SNode):
            return self.write_item(target, ct, where)
        return [_assign(self.store_target(target), self.ct_expr(ct, where), where)]

    def store_target(self, target: Any, deferred: list | None = None) -> Any:
        """A target of an assignment whose value is computed when the code runs. A write into a structure known now
        (``d["a"]``) is given a fresh variable, written into the structure after the assignment (``deferred``)."""
        if isinstance(target, gast.Name):
            self.bindings.pop(target.id, None)
            self.poisoned.pop(target.id, None)
            return copy.copy(target)
        if isinstance(target, (gast.Tuple, gast.List)):
            new = copy.copy(target)
            new.elts = [self.store_target(e, deferred) for e in target.elts]
            return new
        if isinstance(target, gast.Starred):
            new = copy.copy(target)
            new.value = self.store_target(target.value, deferred)
            return new
        if isinstance(target, (gast.Subscript, gast.Attribute)) and isinstance(self.static(target.value), SNode):
            if deferred is None or isinstance(target, gast.Attribute):
                raise self.write_error(target)
            temp = self.names("item")
            deferred += self.write_item(target, _name(temp, target), target)
            return _name(temp, target, gast.Store())
        return self.generic_expr(target)

    def stmt_For(self, s: Any) -> list:
        items = None if s.orelse else self.items(self.static(s.iter), s.iter)
        if items is None and not s.orelse:
            items = self.range_items(s)
        if items is None:
            return [self.loop(s)]
        if _has_jump(s.body):
            raise self.reject(s, "srcgrad unrolls a loop over a structured parameter or a dict, and cannot unroll one "
                                 "with break or continue", hint="use an if around the rest of the body instead")
        source = self.iterated_dict(s.iter)
        out = []
        self.iterating.add(id(source))
        try:
            for item in items:
                out += self.bind(s.target, item, s)
                out += self.block(s.body)
        finally:
            self.iterating.discard(id(source))
        return out

    def iterated_dict(self, it: Any) -> Any:
        """The dict a loop iterates over (``d``, ``d.keys()``, ``.values()``, ``.items()``), or None."""
        if isinstance(it, gast.Call) and isinstance(it.func, gast.Attribute) and not it.args \
                and it.func.attr in ("keys", "values", "items"):
            it = it.func.value
        found = self.static(it) if isinstance(it, (gast.Name, gast.Subscript, gast.Attribute)) else None
        return found if isinstance(found, SNode) and found.kind == DICT else None

    def range_items(self, s: Any) -> list | None:
        """``for i in range(len(params)):`` (constant bounds) whose body indexes a structure with ``i``: unrolled, so
        the reads resolve to leaves."""
        it = s.iter
        if not (isinstance(it, gast.Call) and self.builtin(it.func) is range and isinstance(s.target, gast.Name)
                and not it.keywords and 1 <= len(it.args) <= 3) or _has_jump(s.body):
            return None
        bounds = [self.value_of(a) for a in it.args]
        if any(type(b) is not int for b in bounds):
            return None
        var = s.target.id
        for node in (n for st in s.body for n in frontend.walk(st)):
            if isinstance(node, gast.Subscript) and isinstance(node.value, gast.Name) \
                    and isinstance(self.bindings.get(node.value.id), SNode) \
                    and any(isinstance(n, gast.Name) and n.id == var for n in frontend.walk(node.slice)):
                return [SStatic(i) for i in range(*bounds)]
        return None

    def stmt_While(self, s: Any) -> list:
        return [self.loop(s)]

    def loop(self, s: Any) -> Any:
        """A loop that stays a loop: a name it rebinds cannot hold a part of a structure across iterations."""
        stored = _stored([s])
        reason = f"it is rebound in the loop on line {self.pf.file_line(s)}"
        for n in stored:
            if self.bindings.pop(n, None) is not None:
                self.poisoned[n] = reason
        new = self.generic_stmt(s)
        for n in stored:
            if self.bindings.pop(n, None) is not None:
                self.poisoned[n] = reason
        return new

    def stmt_If(self, s: Any) -> list:
        test = self.value_of(s.test)
        if test is not _NO:
            return self.block(s.body if test else s.orelse)
        new = copy.copy(s)
        new.test = self.expr(s.test)
        before = (dict(self.bindings), dict(self.poisoned))
        new.body = self.in_region("if", False, self.block, s.body)
        after_body = (self.bindings, self.poisoned)
        self.bindings, self.poisoned = dict(before[0]), dict(before[1])
        new.orelse = self.in_region("if", False, self.block, s.orelse)
        self.unify_dicts(after_body[0], new)
        self.merge(after_body, f"it is bound differently on the branches of the if on line {self.pf.file_line(s)}")
        return [new]

    def unify_dicts(self, body: dict, new: Any) -> None:
        """``d = {...}`` built on both branches with the same keys (items that are values): the else branch ends by
        copying its items into the if branch's variables, so ``d`` is one dict after the if."""
        if self.flags["closures"] or _ends_in_jump(new.body) or _ends_in_jump(new.orelse):
            return
        for n, a in body.items():
            b = self.bindings.get(n)
            if a is b or not (self.branch_dict(a, body) and self.branch_dict(b, self.bindings)) or a.keys != b.keys:
                continue
            new.orelse = new.orelse + [_assign(_name(x.name, new, gast.Store()), _name(y.name, new), new)
                                       for x, y in zip(a.children, b.children)]
            a.region = self.region
            self.bindings[n] = a

    def branch_dict(self, node: Any, bindings: dict) -> bool:
        """A dict built on a branch just left, whose items are values, held by one name only."""
        return isinstance(node, SNode) and bool(node.local) and not node.escaped \
            and node.region.parent is self.region and all(isinstance(c, SSlot) for c in node.children) \
            and sum(1 for v in bindings.values() if v is node) == 1

    def merge(self, other: tuple, reason: str) -> None:
        bindings, poisoned = other
        for n in set(bindings) | set(self.bindings):
            if bindings.get(n) is not self.bindings.get(n):
                self.bindings.pop(n, None)
                self.poisoned[n] = reason
        for n, why in poisoned.items():
            self.poisoned.setdefault(n, why)

    def stmt_FunctionDef(self, s: Any) -> list:
        new = copy.copy(s)
        new.args = self.generic_expr(s.args)
        inner = _Rewriter.__new__(_Rewriter)
        inner.__dict__.update(self.__dict__)
        shadow = {a.id for a in s.args.posonlyargs + s.args.args + s.args.kwonlyargs} | _stored(s.body)
        inner.bindings = {k: v for k, v in self.bindings.items() if k not in shadow}
        inner.poisoned = {k: v for k, v in self.poisoned.items() if k not in shadow}
        inner.region = inner.scope = _Region("nested function", self.region, True)
        self.flags["closures"] = True
        new.body = inner.block(s.body)
        self.bindings.pop(s.name, None)
        return [new]

    def generic_stmt(self, s: Any) -> Any:
        """Any other statement: its expressions rewritten; the statement lists it holds (``with``, ``try``...)
        rewritten in turn, names they bind differently given up."""
        new = copy.copy(s)
        what = {gast.For: "loop", gast.While: "loop", gast.With: "with statement"}.get(type(s), "try statement")
        for name, value in gast.iter_fields(s):
            if isinstance(value, list) and value and isinstance(value[0], gast.stmt):
                before = (dict(self.bindings), dict(self.poisoned))
                repeats = name == "body" and what == "loop"
                setattr(new, name, self.in_region(what, repeats, self.block, value))
                self.merge(before, f"it is rebound in the statement on line {self.pf.file_line(s)}")
            elif isinstance(value, list):
                setattr(new, name, [self.generic_node(v) for v in value])
            elif isinstance(value, gast.AST):
                setattr(new, name, self.generic_node(value))
        return new

    def generic_node(self, node: Any) -> Any:
        if isinstance(node, gast.stmt):
            return self.generic_stmt(node)
        if isinstance(node, gast.expr):
            return self.expr(node)
        return self.generic_expr(node)

    # --- expressions ---

    def expr(self, node: Any) -> Any:
        if node is None:
            return None
        t = type(node)
        if t is gast.Name:
            return self.expr_name(node)
        if t in (gast.Subscript, gast.Attribute) and isinstance(node.ctx, gast.Load):
            return self.expr_access(node)
        if t is gast.Call:
            return self.call(node)
        if t in (gast.Compare, gast.BoolOp, gast.UnaryOp):
            value = self.value_of(node)
            if value is not _NO and _mentions(node, self.bindings):
                return _const(value, node)
            return self.generic_expr(node)
        if t in (gast.ListComp, gast.GeneratorExp, gast.SetComp, gast.DictComp):
            return self.expr_comprehension(node)
        if t is gast.Lambda:
            self.flags["closures"] = True
            return self.shadowed(node, {a.id for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs})
        return self.generic_expr(node)

    def expr_name(self, node: Any) -> Any:
        if isinstance(node.ctx, gast.Load):
            ct = self.lookup(node)
            if ct is not None:
                return self.ct_expr(ct, node)
        elif node.id in self.bindings or node.id in self.poisoned:
            self.bindings.pop(node.id, None)  # (a walrus target or another binding in an expression)
            self.poisoned.pop(node.id, None)
        return copy.copy(node)

    def expr_access(self, node: Any) -> Any:
        """``s[k]`` and ``s.a`` of a structure known now: the item; a subscript with a key known only when the code
        runs reads a display of a list or tuple."""
        base = self.static(node.value)
        if isinstance(base, SNode):
            getter = self.property_getter(base, node)
            if getter is not None:  # self.area: the property's getter, inlined with self bound
                call = gast.copy_location(gast.Call(node, [], []), node)
                return self.inline(getter, call, None, base, (base.cls, base.cls))
            ct = self.static(node)
            if ct is not None:
                return self.ct_expr(ct, node)
            if isinstance(node, gast.Subscript):
                if base.local:
                    self.key_of(node)  # (refuses a key that is a variable)
                new = copy.copy(node)
                new.value = self.materialise(base, node.value)
                new.slice = self.generic_node(node.slice)
                return new
        elif isinstance(base, SStatic) and isinstance(base.value, type) and isinstance(node, gast.Attribute):
            ct = self.static(node)  # (cls.CONSTANT in an inlined class method)
            if ct is None:
                raise self.reject(node, f"srcgrad reads class attributes that are numbers, strings or None through "
                                        f"`{self.text(node.value)}` (and calls its methods)")
            return self.ct_expr(ct, node)
        return self.generic_expr(node)

    def property_getter(self, base: SNode, node: Any) -> Any:
        if not isinstance(node, gast.Attribute) or base.kind not in _CLASS_KINDS:
            return None
        found = self.class_member(base.cls, node.attr, node)
        if not isinstance(found, property):
            return None
        if found.fget is None:
            raise self.reject(node, f"the property `{node.attr}` of {base.cls.__name__} has no getter",
                              cls=MissingAttribute)
        return found.fget

    def expr_comprehension(self, node: Any) -> Any:
        if isinstance(node, gast.DictComp):
            pairs = self.comprehension(node)
            if pairs is None:
                raise self.reject(node, "srcgrad builds a dict comprehension when it iterates over a structure or a "
                                        "dict whose keys it knows, with constant keys",
                                  hint="build the dict with a display ({\"a\": ..., ...}) or a for loop over a dict")
            return gast.copy_location(gast.Dict([k for k, _ in pairs], [v for _, v in pairs]), node)
        unrolled = self.comprehension(node)
        if unrolled is not None:
            return gast.copy_location(gast.List(unrolled, gast.Load()), node)
        return self.shadowed(node, {n.id for g in node.generators for n in frontend.walk(g.target)
                                    if isinstance(n, gast.Name)})

    def shadowed(self, node: Any, names: set) -> Any:
        saved = self.bindings, self.poisoned
        self.bindings = {k: v for k, v in self.bindings.items() if k not in names}
        self.poisoned = {k: v for k, v in self.poisoned.items() if k not in names}
        try:
            return self.generic_expr(node)
        finally:
            self.bindings, self.poisoned = saved

    def generic_expr(self, node: Any) -> Any:
        new = copy.copy(node)
        for name, value in gast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], gast.stmt):  # (an except handler's body)
                before = (dict(self.bindings), dict(self.poisoned))
                setattr(new, name, self.in_region("except clause", False, self.block, value))
                self.merge(before, f"it is rebound in the except clause on line {self.pf.file_line(node)}")
            elif isinstance(value, list):
                setattr(new, name, [self.generic_node(v) if isinstance(v, gast.AST) else v for v in value])
            elif isinstance(value, gast.AST):
                setattr(new, name, self.generic_node(value))
        return new

    def call(self, node: Any) -> Any:
        ct = self.static_call(node)
        if ct is not None:
            return self.ct_expr(ct, node)
        inlined = self.inline_call(node)
        if inlined is not None:
            return inlined
        func = node.func
        if isinstance(func, gast.Attribute):
            base = self.static(func.value)
            if isinstance(base, SNode):
                found = self.structure_method(base, node)
                if found is not None:
                    return found
        builtin = self.builtin(func)
        if builtin in (list, tuple) and len(node.args) == 1 and not node.keywords:
            source = self.static(node.args[0])
            if isinstance(source, SNode) and source.kind == DICT:  # list(d): its keys
                keys = [_const(k, node) for k in source.keys]
                return gast.copy_location(gast.List(keys, gast.Load()) if builtin is list else
                                          gast.Tuple(keys, gast.Load()), node)
        if builtin in (sum, list, tuple) and len(node.args) in (1, 2) and not node.keywords \
                and isinstance(node.args[0], (gast.GeneratorExp, gast.ListComp)):
            items = self.comprehension(node.args[0])
            if items is not None:
                return self.reduce(builtin, items, node)
        return self.generic_expr(node)

    def structure_method(self, base: SNode, node: Any) -> Any:
        """``d.get(k, default)`` with a missing key (its default); other methods of structures known now are
        refused, except the fields of constant objects that hold callables (called as written)."""
        func = node.func
        if base.kind == DICT and func.attr == "get" and 1 <= len(node.args) <= 2 and not node.keywords:
            if base.local:
                self.key_of(gast.copy_location(gast.Subscript(func.value, node.args[0], gast.Load()), node))
            if self.value_of(node.args[0]) is not _NO:  # (a present key was resolved above)
                return self.expr(node.args[1]) if len(node.args) == 2 else _const(None, node)
        if base.local:
            raise self.local_method_error(func)
        if not base.const:
            self.child_by_attr(base, func.attr, func)  # (refuses methods and missing attributes)
            raise self.reject(func, f"srcgrad cannot call `.{func.attr}()` on a structured parameter here")
        if base.kind in _CLASS_KINDS and func.attr not in base.keys:
            self.child_by_attr(base, func.attr, func)
        return None

    def local_method_error(self, func: Any) -> Exception:
        if func.attr in _MUTATORS or func.attr == "copy":
            return self.reject(func, f"srcgrad calls `.{func.attr}()` of a dict built in the function as a statement "
                                     "of its own or as the whole value of an assignment",
                               hint=f"write it as its own statement (e.g. v = d.{func.attr}(...)) and use v here")
        return self.reject(func, f"srcgrad cannot call `.{func.attr}()` of a dict built in the function",
                           hint="it reads and writes such dicts with constant keys and keys(), values(), items(), "
                                "get(), pop(), popitem(), setdefault(), update(), copy() and clear()")

    def reduce(self, builtin: Any, items: list, node: Any) -> Any:
        """``sum(f(v) for v in params)`` unrolled: ``start + f(v0) + f(v1)``; list()/tuple() of it: a display."""
        if builtin is list:
            return gast.copy_location(gast.List(items, gast.Load()), node)
        if builtin is tuple:
            return gast.copy_location(gast.Tuple(items, gast.Load()), node)
        total = self.expr(node.args[1]) if len(node.args) == 2 else _const(0, node)
        for item in items:
            total = gast.copy_location(gast.BinOp(total, gast.Add(), item), node)
        return total

    def comprehension(self, node: Any) -> list | None:
        """The elements of a comprehension over structures (every ``for`` over a structure, every ``if`` known when
        the code is generated), or None."""
        if isinstance(node, gast.DictComp):
            def item() -> list | None:
                key = self.value_of(node.key)
                return None if key is _NO or type(key) not in _KEYS else [(_const(key, node.key),
                                                                           self.expr(node.value))]
        elif isinstance(node, (gast.ListComp, gast.GeneratorExp)):
            def item() -> list | None:
                return [self.expr(node.elt)]
        else:
            return None
        saved = self.bindings, self.poisoned
        try:
            return self._unroll_generators(node, list(node.generators), item)
        finally:
            self.bindings, self.poisoned = saved

    def _unroll_generators(self, node: Any, generators: list, item: Any) -> list | None:
        if not generators:
            return item()
        gen, rest = generators[0], generators[1:]
        items = self.items(self.static(gen.iter), gen.iter)
        if items is None and isinstance(node, gast.DictComp):
            items = self.constant_range(gen.iter)
        if items is None:
            return None
        out = []
        outer = self.bindings, self.poisoned
        for value in items:
            self.bindings, self.poisoned = dict(outer[0]), dict(outer[1])
            if not self.bind_scoped(gen.target, value, gen.iter):
                return None
            keep = True
            for cond in gen.ifs:
                test = self.value_of(cond)
                if test is _NO:
                    return None
                keep = keep and bool(test)
            if keep:
                inner = self._unroll_generators(node, rest, item)
                if inner is None:
                    return None
                out += inner
        return out

    def constant_range(self, it: Any) -> list | None:
        """``range(...)`` with bounds known now, as the items a dict comprehension's keys come from."""
        if not (isinstance(it, gast.Call) and self.builtin(it.func) is range and not it.keywords
                and 1 <= len(it.args) <= 3):
            return None
        bounds = [self.value_of(a) for a in it.args]
        if any(type(b) is not int for b in bounds):
            return None
        return [SStatic(i) for i in range(*bounds)]

    def bind_scoped(self, target: Any, ct: Any, where: Any) -> bool:
        """Bind a comprehension variable (its reads are substituted; a leaf included)."""
        if isinstance(target, gast.Name):
            self.bindings[target.id] = ct
            self.poisoned.pop(target.id, None)
            return True
        if isinstance(target, (gast.Tuple, gast.List)):
            items = self.items(ct, where)
            if items is None or len(items) != len(target.elts):
                return False
            return all(self.bind_scoped(t, i, where) for t, i in zip(target.elts, items))
        return False

    local_names: frozenset = frozenset()


def _shape(node: SNode) -> tuple | None:
    """A dict built in the body as (DICT, keys, child shapes: None for an item that is a value), or None when it
    holds something else (a parameter's structure)."""
    children = []
    for c in node.children:
        if isinstance(c, SSlot):
            children.append(None)
        elif isinstance(c, SNode) and c.local:
            sub = _shape(c)
            if sub is None:
                return None
            children.append(sub)
        else:
            return None
    return DICT, tuple(node.keys), tuple(children)


def _slots(node: SNode) -> list:
    return [s for c in node.children for s in ([c] if isinstance(c, SSlot) else _slots(c))]


def _returns_dict(func: Any) -> bool:
    """Does a user function return a dict it builds (a display, a comprehension, dict(...), or a name assigned
    one)? Such a helper is inlined where its result is assigned to a name."""
    from srcgrad.errors import SrcgradError

    try:
        fn = frontend.parse_helper(func).node
    except (SrcgradError, OSError, TypeError):
        return False
    built = {t.id for n in frontend.walk(fn) if isinstance(n, gast.Assign) and _builds_dict(n.value)
             for t in n.targets if isinstance(t, gast.Name)}
    return any(isinstance(n, gast.Return) and n.value is not None and (
        _builds_dict(n.value) or (isinstance(n.value, gast.Name) and n.value.id in built)) for n in frontend.walk(fn))


def _builds_dict(value: Any) -> bool:
    return isinstance(value, (gast.Dict, gast.DictComp)) or (
        isinstance(value, gast.Call) and isinstance(value.func, gast.Name) and value.func.id == "dict")


def _relocated(fnode: Any, where: Any) -> Any:
    """A copy of a helper's definition whose every node is at ``where`` (the call inlining it: what errors and the
    generated code's line comments name)."""
    new = copy.deepcopy(fnode)
    for node in frontend.walk(new):
        if hasattr(node, "lineno"):
            gast.copy_location(node, where)
    return new


def _ends_in_jump(stmts: list) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (gast.Return, gast.Raise, gast.Break, gast.Continue))


def _pair(*items: Any) -> SNode:
    return SNode(TUPLE, None, list(range(len(items))), list(items), (), 0, False)


def _order(op: Any, a: Any, b: Any) -> Any:
    try:
        return {gast.Lt: a < b, gast.LtE: a <= b, gast.Gt: a > b, gast.GtE: a >= b}[type(op)]
    except TypeError:
        return _NO


def _mentions(node: Any, bindings: dict) -> bool:
    return any(isinstance(n, gast.Name) and n.id in bindings for n in frontend.walk(node))


def _piece(accessor: tuple) -> str:
    text = re.sub(r"\W", "_", str(accessor[1]))
    return "_" + (text or "item")


# --- the function of leaves, and the front that reads and rebuilds structures --------------------------------------


@record
class Lowered:
    """The function of leaves: its parsed function, parameters and kinds, and how to read each from the arguments."""

    pf: Any
    params: list[str]  # its parameters, in order (positional first, then keyword-only)
    kwonly: list[str]
    reads: dict[str, Any]  # its parameter -> (user parameter, accessor path)
    kinds: dict[str, str]
    wrt: list[str]  # the differentiated leaves and plain parameters, in the order of the user's wrt
    guarded: list = field(default_factory=list)  # (class, attributes, object) read through classes


def rewrite(pf: Any, user_params: list[str], kwonly: set[str], values_kinds: dict[str, Any],
            wrt: list[str], output: tuple | None = None, generic: bool = False) -> tuple[Lowered, dict[str, Root]]:
    """The function of leaves for these argument descriptions (a description is a structure's tuple, or a kind);
    ``output``: the description of a vjp's structured seed (the function of leaves returns the output's leaves);
    ``generic``: every leaf has the general kind (code valid for numbers and arrays alike: what ``emit`` writes)."""
    roots: dict[str, Root] = {}
    for p, kind in values_kinds.items():
        if isinstance(kind, tuple):
            const = p not in wrt
            roots[p] = Root(p, kind, const, build_tree(kind, const))
    rewriter = _Rewriter(pf, roots, _fresh_names(pf, user_params))
    rewriter.local_names = frozenset(_stored([pf.node]) | set(user_params))
    rewriter.output = output
    for r in roots.values():
        if not r.const:  # every differentiated leaf is a parameter, read or not (its gradient is then zero)
            for item in _walk_tree(r.tree):
                if isinstance(item, SLeaf) and item.role == DIFF:
                    rewriter.use(item)
    body = rewriter.block(list(pf.node.body))
    params, kw, reads, kinds = _leaf_params(user_params, kwonly, values_kinds, roots, generic)
    inner_wrt = []
    for p in wrt:
        if p in roots:
            inner_wrt += [item.name for item in _diff_params(roots[p])]
        else:
            inner_wrt.append(p)
    new_pf = _leaves_function(pf, params, kw, body, roots, output)
    return Lowered(new_pf, params + kw, kw, reads, kinds, inner_wrt, rewriter.guarded), roots


def _diff_params(root: Root) -> list[SLeaf]:
    """A structure's differentiated leaves among its parameters, in order."""
    ordered = sorted(root.params, key=lambda i: i.order)
    return [item for item in ordered if isinstance(item, SLeaf) and item.role == DIFF]


def _leaf_params(user_params: list[str], kwonly: set[str], values_kinds: dict[str, Any],
                 roots: dict[str, Root], generic: bool = False) -> tuple[list[str], list[str], dict, dict]:
    """The function of leaves' positional and keyword-only parameters, where each reads from, and their kinds."""
    from srcgrad.binding import ARRAY

    params: list[str] = []
    kw: list[str] = []
    reads: dict = {}
    kinds: dict = {}
    for p in user_params:
        if p in roots:
            ordered = sorted(roots[p].params, key=lambda item: item.order)
            names = [item.name if isinstance(item, SLeaf) else item.param for item in ordered]
            for n, item in zip(names, ordered):
                reads[n] = (p, item.path)
                kinds[n] = ARRAY if generic or not isinstance(item, SLeaf) else _leaf_kind(item.spec)
        else:
            names = [p]
            reads[p] = (p, ())
            kinds[p] = values_kinds[p]
        (kw if p in kwonly else params).extend(names)
    return params, kw, reads, kinds


def _leaf_kind(spec: tuple) -> str:
    """The kind of a leaf parameter of the function of leaves: what a flat argument of its value would have (a
    number, an array with its layout when the description holds one)."""
    from srcgrad.binding import ARRAY, SCALAR

    if spec[1] in (float, int, bool):
        return SCALAR
    return layouts.ARRAY_PREFIX + spec[3] if len(spec) > 3 else ARRAY


def _leaves_function(pf: Any, params: list[str], kw: list[str], body: list, roots: dict[str, Root],
                     output: tuple | None = None) -> Any:
    """The parsed function of leaves: ``pf``'s function renamed, with these parameters and body."""
    node = copy.copy(pf.node)
    node.name = f"{pf.node.name}_leaves"
    args = copy.copy(pf.node.args)
    args.posonlyargs, args.defaults = [], []
    args.args = [_name(n, pf.node, gast.Param()) for n in params]
    args.kwonlyargs = [_name(n, pf.node, gast.Param()) for n in kw]
    args.kw_defaults = [None] * len(kw)
    node.args = args
    node.body = body or [gast.Pass()]
    marker = "\n# srcgrad structures: " + "; ".join(f"{r.name}={'const ' if r.const else ''}{describe(r.spec)}"
                                                     for r in roots.values()) + "\n"
    if output is not None:
        marker += f"# srcgrad output: {describe(output)}\n"
    new_pf = dataclasses.replace(pf, node=node, source=pf.source + marker + _digest_line(node))
    new_pf.dicts_rewritten = True  # (lower.lower does not rewrite it again)
    return new_pf


def _fresh_names(pf: Any, params: list[str]) -> Any:
    """``fresh(base)``: a name no name of the function (or its parameters, or a keyword) is."""
    taken = {n.id for n in frontend.walk(pf.node) if isinstance(n, gast.Name)} | set(params) | {
        n.name for n in frontend.walk(pf.node) if isinstance(n, gast.FunctionDef)}

    def fresh(base: str) -> str:
        name = naming.fresh(base, lambda n: n in taken or keyword.iskeyword(n), first=2)
        taken.add(name)
        return name

    fresh.taken = taken  # type: ignore[attr-defined]  # (inlined helpers' names are added)
    return fresh


def rewrite_locals(pf: Any) -> Any:
    """``pf`` with the dicts its body builds (displays with constant keys, ``dict(...)``, comprehensions, copies)
    rewritten into variables, one per item (``d["a"]`` -> ``d_a``); ``pf`` itself when it builds none. Run by the
    lowering on every function (helpers too); the structured-argument rewrite (:func:`rewrite`) does it as well."""
    if getattr(pf, "dicts_rewritten", False) or not _builds_dicts(pf):
        return pf
    params = [a.id for a in pf.node.args.posonlyargs + pf.node.args.args + pf.node.args.kwonlyargs] + [
        a.id for a in (pf.node.args.vararg, pf.node.args.kwarg) if a is not None]
    rewriter = _Rewriter(pf, {}, _fresh_names(pf, params))
    rewriter.local_names = frozenset(_stored([pf.node]) | set(params))
    node = copy.copy(pf.node)
    node.body = rewriter.block(list(pf.node.body)) or [gast.Pass()]
    new_pf = dataclasses.replace(pf, node=node, source=pf.source + _digest_line(node))
    new_pf.dicts_rewritten = True
    return new_pf


def _digest_line(node: Any) -> str:
    """A comment naming the rewritten function's tree: the on-disk cache keys on the source, and the rewrite
    depends on more than it (inlined helpers and methods, class constants)."""
    return f"\n# srcgrad rewritten: {digests.hex_digest(gast.dump(node), 16)}\n"


def _builds_dicts(pf: Any) -> bool:
    """Does the function build a dict, delete a key, or assign what a helper returning a dict returns?"""
    from srcgrad import usercode

    for node in pf.nodes:  # (the walk the fence made, not another)
        t = type(node)
        if t is gast.Dict or t is gast.DictComp or t is gast.Delete or (
                t is gast.Call and isinstance(node.func, gast.Name) and node.func.id == "dict"):
            return True
        if t is gast.Assign and isinstance(node.value, gast.Call) and isinstance(node.value.func, gast.Name):
            func = pf.resolve(node.value.func.id)
            if usercode.is_user_function(func) and func is not pf.func and _returns_dict(func):
                return True
    return False


def _access(root: str, path: tuple, where: Any = None) -> ast.expr:
    node: ast.expr = ast.Name(id=root, ctx=ast.Load())
    for how, key in path:
        if how == "attr":
            node = ast.Attribute(value=node, attr=key, ctx=ast.Load())
        else:
            node = ast.Subscript(value=node, slice=ast.Constant(value=key), ctx=ast.Load())
    return node


class _Front:
    """The text of the front function: reads leaves, calls the function of leaves, rebuilds gradients."""

    def __init__(self, user_params: list[str]):
        self.taken = set(user_params)
        self.cells: dict[str, Any] = {}
        self.prelude: list[ast.stmt] = []  # the children of registered structures, read once through flatten
        self.flat: dict[tuple, str] = {}  # (root, path) of a registered structure -> the name holding its children

    def access(self, root: str, path: tuple) -> ast.expr:
        """The expression reading the leaf or container at ``path`` of ``root``: attributes, keys and indices as
        written (a registered structure's children that are its attributes too, so that reverse mode over this
        front — hvp — reads them as children); other children of a registered structure through its flatten,
        called once per structure."""
        for i in range(len(path) - 1, -1, -1):
            if path[i][0] == "child":
                holder = self.children_of(root, path[:i], path[i][2])
                rest = path[i + 1:]
                return _access(holder, (("key", path[i][1]),) + rest)
        return _access(root, path)

    def children_of(self, root: str, path: tuple, registration: Any) -> str:
        found = self.flat.get((root, path))
        if found is None:
            found = self.flat[(root, path)] = self.local((root + "".join(_piece(p) for p in path)) + "_children")
            flatten = self.ref(registration.flatten, f"{registration.cls.__name__}_flatten")
            call = ast.Call(func=ast.Name(id=flatten, ctx=ast.Load()), args=[self.access(root, path)], keywords=[])
            read = ast.Subscript(value=call, slice=ast.Constant(value=0), ctx=ast.Load())
            self.prelude.append(ast.Assign(targets=[ast.Name(id=found, ctx=ast.Store())], value=read))
        return found

    def local(self, base: str) -> str:
        name = naming.fresh(base, self.taken, first=2)
        self.taken.add(name)
        return name

    def ref(self, obj: Any, base: str) -> str:
        for n, o in self.cells.items():
            if o is obj:
                return n
        name = self.local(re.sub(r"\W", "_", base) or "cls")
        self.cells[name] = obj
        return name

    def rebuild(self, spec: tuple, const: bool, leaf_value: Any) -> ast.expr:
        """The gradient of a structure: ``leaf_value(index)`` for each differentiated leaf, None elsewhere."""
        if spec[0] == LEAF:
            return leaf_value() if role(spec, const) == DIFF else ast.Constant(value=None)
        if spec[0] == DICT:
            return ast.Dict(keys=[ast.Constant(value=k) for k in spec[1]],
                            values=[self.rebuild(c, const, leaf_value) for c in spec[2]])
        if spec[0] in (LIST, TUPLE):
            elts = [self.rebuild(c, const, leaf_value) for c in spec[1]]
            return ast.List(elts=elts, ctx=ast.Load()) if spec[0] == LIST else ast.Tuple(elts=elts, ctx=ast.Load())
        children = [self.rebuild(c, const, leaf_value) for c in spec[3]]
        if spec[0] == REGISTERED:
            return self.unflatten(spec, children)
        cls = self.ref(spec[1], spec[1].__name__)
        if spec[0] == NAMEDTUPLE:
            return ast.Call(func=ast.Name(id=cls, ctx=ast.Load()), args=children, keywords=[])
        return ast.Call(func=ast.Name(id=cls, ctx=ast.Load()), args=[],
                        keywords=[ast.keyword(arg=n, value=c) for n, c in zip(spec[2], children)])


    def unflatten(self, spec: tuple, children: list) -> ast.expr:
        """``unflatten(aux, children)`` of a registered class, the children in the container flatten returned."""
        registration = _class_kind(spec[1])[1]
        unflatten = self.ref(registration.unflatten, f"{spec[1].__name__}_unflatten")
        aux = ast.Constant(value=spec[4]) if type(spec[4]) in _LITERALS else ast.Name(
            id=self.ref(spec[4], f"{spec[1].__name__}_aux"), ctx=ast.Load())
        container = spec[5]
        if container is dict:
            held: ast.expr = ast.Dict(keys=[ast.Constant(value=k) for k in spec[2]], values=children)
        else:
            held = ast.List(elts=children, ctx=ast.Load()) if container is list else ast.Tuple(elts=children,
                                                                                              ctx=ast.Load())
        return ast.Call(func=ast.Name(id=unflatten, ctx=ast.Load()), args=[aux, held], keywords=[])


def front_source(name: str, doc: str, user_params: list[str], user_kwonly: list[str], lowered: Lowered,
                 roots: dict[str, Root], inner: Any, inner_name: str, wrt: list[str], mode: str, as_tuple: bool,
                 extra: list[str], inner_params: tuple[str, ...] = (), output: tuple | None = None,
                 checked: dict[str, Any] | None = None) -> tuple[str, list[ast.stmt], dict[str, Any], str]:
    """The front function's text, its statements, the objects it reads (cells) and its parameter list.
    ``inner_params``: the seed (vjp) or tangent (jvp) parameters of the function of leaves, as its generation named
    them (``Generated.seeds``, ``Generated.tangent_params``); ``output``: the description of a structured seed (its
    leaves are passed as a tuple, the output of the function of leaves); ``checked``: the argument descriptions the
    front checks its arguments against first."""
    from srcgrad import printer, sourcetext
    from srcgrad.emitter import INDENT

    front = _Front(user_params + extra)
    front.cells[front.local(inner_name)] = inner
    inner_ref = next(iter(front.cells))
    positional = [n for n in lowered.params if n not in lowered.kwonly]
    args = [front.access(*lowered.reads[n]) for n in positional]
    keywords = [ast.keyword(arg=n, value=front.access(*lowered.reads[n])) for n in lowered.kwonly]
    if mode == "vjp":
        seed: ast.expr = ast.Name(id=extra[0], ctx=ast.Load())
        if output is not None:
            seed = ast.Tuple(elts=[front.access(extra[0], path) for path in _leaf_paths(output)], ctx=ast.Load())
        keywords.append(ast.keyword(arg=inner_params[0], value=seed))
    if mode == "jvp":
        keywords += _tangent_keywords(front, wrt, extra, roots, inner_params)
    statements: list[ast.stmt] = [] if checked is None else _structure_checks(front, checked, name)
    statements += front.prelude
    call = ast.Call(func=ast.Name(id=inner_ref, ctx=ast.Load()), args=args, keywords=keywords)
    if mode == "jvp":
        statements.append(ast.Return(value=call))
    else:
        statements += _gradient_statements(front, call, lowered, roots, wrt, mode, as_tuple)
    header = [p for p in user_params if p not in user_kwonly]
    kw = [p for p in user_params if p in user_kwonly] + extra
    signature = ", ".join(header + (["*"] + kw if kw else []))
    lines = [f"def {name}({signature}):", INDENT + sourcetext.docstring(doc)]
    lines += [INDENT + ln for s in statements for ln in printer.stmt_text(s).split("\n")]
    text = "\n".join(lines) + "\n"
    printer.check_function(text, statements, name)
    return text, statements, front.cells, signature


def _structure_checks(front: _Front, kinds: dict[str, Any], name: str) -> list[ast.stmt]:
    """``if not (<the arguments have these structures>): raise ValueError(...)``, one statement per structured
    argument: containers, lengths, dict keys in order and classes (leaves are numbers or arrays of any kind)."""
    out: list[ast.stmt] = []
    for param, spec in kinds.items():
        if not isinstance(spec, tuple):
            continue
        tests = " and ".join(_shape_tests(front, spec, param)) or "True"
        message = f"{name}: `{param}` must have the structure it was emitted for: {describe(spec)}"
        text = f"if not ({tests}):\n    raise ValueError({message!r})\n"
        out += ast.parse(text).body
    return out


def _shape_tests(front: _Front, spec: tuple, e: str) -> list[str]:
    kind = spec[0]
    if kind == LEAF:
        return [f"{e} is None"] if spec[1] is type(None) else []
    if kind == DICT:
        out = [f"type({e}) is dict", f"tuple({e}) == {tuple(spec[1])!r}"]
        return out + [t for k, c in zip(spec[1], spec[2]) for t in _shape_tests(front, c, f"{e}[{k!r}]")]
    if kind in (LIST, TUPLE):
        out = [f"type({e}) is {kind}", f"len({e}) == {len(spec[1])}"]
        return out + [t for i, c in enumerate(spec[1]) for t in _shape_tests(front, c, f"{e}[{i}]")]
    if kind == CLASS:
        return [f"{e} is {front.ref(spec[1], spec[1].__name__)}"]
    out = [f"type({e}) is {front.ref(spec[1], spec[1].__name__)}"]
    if kind == REGISTERED:
        flatten = front.ref(_class_kind(spec[1])[1].flatten, f"{spec[1].__name__}_flatten")
        children = f"{flatten}({e})[0]"
        out.append(f"tuple({children}) == {tuple(spec[2])!r}" if spec[5] is dict else f"len({children}) == "
                                                                                       f"{len(spec[2])}")
        return out + [t for k, c in zip(spec[2], spec[3]) for t in _shape_tests(front, c, f"{children}[{k!r}]")]
    if kind == OBJECT:
        return out
    accessor = "[{i}]" if kind == NAMEDTUPLE else ".{n}"
    return out + [t for i, (n, c) in enumerate(zip(spec[2], spec[3]))
                  for t in _shape_tests(front, c, e + accessor.format(i=i, n=n))]


def _leaf_paths(spec: tuple, path: tuple = ()) -> list[tuple]:
    """The accessor paths of a seed's leaves, in the order the function of leaves returns the output's leaves."""
    if spec[0] == LEAF:
        return [path]
    if spec[0] == DICT:
        return [p for k, c in zip(spec[1], spec[2]) for p in _leaf_paths(c, path + (("key", k),))]
    return [p for i, c in enumerate(spec[-1]) for p in _leaf_paths(c, path + (("index", i),))]


def _tangent_keywords(front: _Front, wrt: list[str], extra: list[str], roots: dict[str, Root],
                      inner_params: tuple[str, ...]) -> list[ast.keyword]:
    """jvp: the function of leaves' tangent arguments, read from the front's tangents (leaves of structures)."""
    keywords = []
    leaf_tangents = iter(list(inner_params))
    for p, t in zip(wrt, extra):
        if p in roots:
            for item in _diff_params(roots[p]):
                keywords.append(ast.keyword(arg=next(leaf_tangents), value=front.access(t, item.path)))
        else:
            keywords.append(ast.keyword(arg=next(leaf_tangents), value=ast.Name(id=t, ctx=ast.Load())))
    return keywords


def _gradient_statements(front: Any, call: ast.Call, lowered: Lowered, roots: dict[str, Root], wrt: list[str],
                         mode: str, as_tuple: bool) -> list[ast.stmt]:
    """Call the function of leaves, and return its gradients rebuilt as structures (after the value, if any)."""
    grads = front.local("grads")
    target: ast.expr = ast.Name(id=grads, ctx=ast.Store())
    value = None
    if mode in ("value_and_grad", "value_and_grad_aux", "explain"):
        value = front.local("value")
        target = ast.Tuple(elts=[ast.Name(id=value, ctx=ast.Store()), target], ctx=ast.Store())
    statements: list[ast.stmt] = [ast.Assign(targets=[target], value=call)]
    counter = iter(range(len(lowered.wrt)))

    def leaf_value() -> ast.expr:
        return ast.Subscript(value=ast.Name(id=grads, ctx=ast.Load()), slice=ast.Constant(value=next(counter)),
                             ctx=ast.Load())

    results = [front.rebuild(roots[p].spec, False, leaf_value) if p in roots else leaf_value() for p in wrt]
    out = results[0] if len(results) == 1 and not as_tuple else ast.Tuple(elts=results, ctx=ast.Load())
    if value is not None:
        out = ast.Tuple(elts=[ast.Name(id=value, ctx=ast.Load()), out], ctx=ast.Load())
    statements.append(ast.Return(value=out))
    return statements


def compile_front(text: str, name: str, cells: dict[str, Any], user_func: Any) -> types.FunctionType:
    from srcgrad.emitter import compile_in_scope

    digest = digests.hex_digest(text, 10)
    code = compile_in_scope(text, name, list(cells), f"<srcgrad {name} structures {digest}>",
                            "# generated by srcgrad: reads the leaves of structured arguments, rebuilds gradients")
    closure = tuple(types.CellType(cells[n]) for n in code.co_freevars)
    return types.FunctionType(code, {"__builtins__": builtins}, name, None, closure)


def structured(kinds: Any) -> bool:
    """Do these argument descriptions hold a structure?"""
    return any(isinstance(k, tuple) for k in kinds)


def generate(transform: Any, kinds: dict[str, Any], inner_generate: Any, mode: str, output: tuple | None = None,
             generic: bool = False) -> Any:
    """The variant for argument descriptions that hold structures (or a vjp's seed described by ``output``): the
    function of leaves generated by ``inner_generate(pf, wrt, kinds)`` (a pipeline stage), behind a generated front
    function. ``generic``: leaves of the general kind, and a front that checks the arguments have the structures
    it was made for (raising ValueError): what ``emit`` writes, where no dispatcher checks them."""
    if mode not in ("grad", "value_and_grad", "value_and_grad_aux", "vjp", "jvp", "direction", "explain"):
        raise InvalidArgument(f"srcgrad's {mode} does not take structured arguments (yet)",
                              hint="pass the leaves as separate arguments")
    sig = transform.signature.parameters.values()
    kwonly = [p.name for p in sig if p.kind is p.KEYWORD_ONLY]
    lowered, roots = rewrite(transform.pf, transform.params, set(kwonly), kinds, transform.wrt, output, generic)
    if not lowered.wrt:
        raise InvalidArgument(
            f"cannot differentiate with respect to {', '.join(transform.wrt)}: the structure holds no float or "
            "float array (ints, strings and None are constants)", hint="use floats, e.g. 1.0 rather than 1")
    inner = inner_generate(lowered.pf, lowered.wrt, lowered.kinds)
    suffix = {"grad": "grad", "value_and_grad": "value_and_grad", "value_and_grad_aux": "value_and_grad",
              "vjp": "vjp", "jvp": "jvp", "direction": "dir", "explain": "explain"}[mode]
    name = f"{transform.pf.name}_{suffix}"
    extra = []
    taken = set(transform.params)
    if mode == "vjp":
        extra = [ir.fresh_name(naming.SEED, taken)]
    elif mode in ("jvp", "direction"):  # (direction: the tangent alone, what hvp differentiates again)
        extra = [ir.fresh_name(naming.forward_parameter(p, mode), taken) for p in transform.wrt]
    title = naming.title(mode)
    read = [r.name for r in roots.values()] + ([extra[0]] if output is not None else [])
    doc = (f"{title} of {transform.pf.name} with respect to {', '.join(transform.wrt)}: reads the leaves of "
           f"{', '.join(read)}, calls {inner.function.__name__} below, rebuilds the structure; generated by srcgrad.")
    text, _, cells, _ = front_source(name, doc, transform.params, kwonly, lowered, roots, inner.function,
                                     inner.function.__name__, transform.wrt, "jvp" if mode == "direction" else mode,
                                     transform.as_tuple, extra, inner.seeds if mode == "vjp" else inner.tangent_params,
                                     output, kinds if generic else None)
    function = compile_front(text, name, cells, transform.func)
    generated = Generated(text + "\n\n" + inner.source, function, tuple(kinds[p] for p in transform.params),
                          dict(inner.bound), main=text, helpers=(inner.source,),
                          seeds=tuple(extra) if mode == "vjp" else (),
                          tangent_params=tuple(extra) if mode in ("jvp", "direction") else ())
    generated.structured = True
    generated.inner = inner
    generated.leaves_pf = lowered.pf  # (explain and graph show the function of leaves)
    generated.leaves_wrt = lowered.wrt
    generated.front_cells = cells  # (emit imports or copies what the front reads)
    generated.extra_guards = class_guards(lowered.guarded)
    return generated


def class_guards(guarded: list) -> list:
    """Guards (srcgrad/guards.py) on what the code read through classes: ``Model.forward is <function>``."""
    from srcgrad.guards import Guard

    out, seen = [], set()
    for cls, attrs, obj in guarded:
        if (id(cls), attrs) not in seen:
            seen.add((id(cls), attrs))
            out.append(Guard(cls, "", attrs, obj, False))
    return out


# --- reading and rebuilding values in Python (checks, tests) --------------------------------------------------------


def leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, leaf) for every leaf of a structure, in order."""
    t = type(value)
    if t is dict:
        return [x for k, v in value.items() for x in leaves(v, f"{path}[{k!r}]")]
    if t in (list, tuple):
        return [x for i, v in enumerate(value) for x in leaves(v, f"{path}[{i}]")]
    kind = _class_kind(t)
    if kind is not None and kind[0] == REGISTERED:
        names, values = _flattened_or_raise(kind[1], value)[:2]
        return [x for n, v in zip(names, values) for x in leaves(v, f"{path}.{n}" if type(n) is str else
                                                                 f"{path}<{n}>")]
    if kind is not None:
        return [x for f in kind[1] for x in leaves(getattr(value, f), f"{path}.{f}")]
    return [(path, value)]


def _flattened_or_raise(registration: Registration, value: Any) -> tuple:
    try:
        return _flattened(registration, value)
    except _Bad as bad:
        raise InvalidArgument(bad.what, hint=bad.hint) from None


def _rebuilt(registration: Registration, value: Any, walk: Any) -> Any:
    """A registered instance rebuilt by unflatten with each child mapped by ``walk``."""
    names, values, aux, container = _flattened_or_raise(registration, value)[:4]
    items = [walk(v) for v in values]
    return registration.unflatten(aux, dict(zip(names, items)) if container is dict else container(items))


def replace_leaf(value: Any, index: int, new: Any) -> Any:
    """A copy of a structure with its leaf number ``index`` (in the order of :func:`leaves`) replaced."""
    return with_leaves(value, lambda k, v: new if k == index else v)


def with_leaves(value: Any, new: Any) -> Any:
    """A copy of a structure whose leaf number ``k`` (in the order of :func:`leaves`) is ``new(k, leaf)``."""
    counter = [0]

    def walk(v: Any) -> Any:
        t = type(v)
        if t is dict:
            return {k: walk(x) for k, x in v.items()}
        if t in (list, tuple):
            return t(walk(x) for x in v)
        kind = _class_kind(t)
        if kind is not None and kind[0] == REGISTERED:
            return _rebuilt(kind[1], v, walk)
        if kind is not None:
            items = [walk(getattr(v, f)) for f in kind[1]]
            return t(*items) if kind[0] == NAMEDTUPLE else dataclasses.replace(v, **dict(zip(kind[1], items)))
        counter[0] += 1
        return new(counter[0] - 1, v)

    return walk(value)


def unit_tangents(x: Any) -> Any:
    """(leaf number, tangent) for each element of each differentiated leaf of ``x``: ``x`` with that element 1,
    the other differentiated leaves 0 (what jvp and hvp take, one column at a time)."""
    zero = with_leaves(x, lambda k, v: np.zeros(np.shape(v)) if is_differentiated_leaf(v) and np.ndim(v) else
                       0.0 if is_differentiated_leaf(v) else v)
    for k, (_, leaf) in enumerate(leaves(x)):
        if not is_differentiated_leaf(leaf):
            continue
        for j in range(int(np.size(leaf))):
            e = np.zeros(int(np.size(leaf)))
            e[j] = 1.0
            t = e.reshape(np.shape(leaf)) if np.ndim(leaf) else 1.0
            yield k, with_leaves(zero, lambda i, v, k=k, t=t: t if i == k else v)


def _block(columns: list, shape_out: tuple, shape_in: tuple) -> Any:
    block = (np.stack([np.reshape(c, -1) for c in columns], axis=-1) if columns else np.zeros((0, 0)))
    block = block.reshape(shape_out + shape_in)
    return float(block) if block.ndim == 0 else block


def structured_hessian(hvp_at: Any, x: Any) -> Any:
    """The Hessian with respect to a structure, as a structure of structures (JAX's convention): leaf ``i`` of
    leaf ``j`` is the block d2f / dx_i dx_j, shaped ``x_i.shape + x_j.shape``; None where a leaf is a constant."""
    columns: dict[int, list] = {}
    for k, t in unit_tangents(x):
        columns.setdefault(k, []).append([leaf for _, leaf in leaves(hvp_at(t))])
    return with_leaves(x, lambda i, xi: None if i not in columns else with_leaves(
        x, lambda j, xj: None if j not in columns else _block([col[i] for col in columns[j]], np.shape(xi),
                                                              np.shape(xj))))


def structured_jacobian(x: Any, out_shape: tuple, pull: Any = None, push: Any = None) -> Any:
    """The Jacobian with respect to a structure, in its structure: each differentiated leaf's block shaped
    ``out_shape + leaf.shape``; None for constants. Reverse mode: ``pull(seed) -> gradient`` for each unit seed of
    the output; forward mode: ``push(tangent) -> tangent of the output`` for each unit tangent."""
    if pull is not None:
        rows = []
        for i in range(int(np.prod(out_shape))):
            seed: Any = np.zeros(int(np.prod(out_shape)))
            seed[i] = 1.0
            rows.append([leaf for _, leaf in leaves(pull(seed.reshape(out_shape) if out_shape else 1.0))])
        return with_leaves(x, lambda k, leaf: None if not is_differentiated_leaf(leaf) else _rows_block(
            [r[k] for r in rows], out_shape, np.shape(leaf)))
    columns: dict[int, list] = {}
    for k, t in unit_tangents(x):
        columns.setdefault(k, []).append(push(t))
    return with_leaves(x, lambda k, leaf: None if k not in columns else _block(
        columns[k], out_shape, np.shape(leaf)))


def is_output_structure(y: Any) -> bool:
    """Is a function's output a structure a Jacobian is laid out in (a tuple, list, dict or namedtuple)?"""
    return type(y) in (tuple, list, dict) or (_class_kind(type(y)) or ("",))[0] == NAMEDTUPLE


def holds_dict(y: Any) -> bool:
    """Does an output structure hold a dict (what forward mode does not follow)?"""
    if type(y) is dict:
        return True
    return is_output_structure(y) and any(holds_dict(v) for v in y)


def unit_seeds(y: Any) -> Any:
    """(output leaf number, seed) for each element of each leaf of the output ``y``: a structure like ``y`` with that
    element 1.0 and every other element 0.0 (what vjp takes, one row of the Jacobian at a time)."""
    zero = with_leaves(y, lambda k, v: np.zeros(np.shape(v)) if np.ndim(v) else 0.0)
    for k, (_, leaf) in enumerate(leaves(y)):
        for j in range(int(np.size(leaf))):
            e = np.zeros(int(np.size(leaf)))
            e[j] = 1.0
            t = e.reshape(np.shape(leaf)) if np.ndim(leaf) else 1.0
            yield k, with_leaves(zero, lambda i, v, k=k, t=t: t if i == k else v)


def output_jacobian(x: Any, y: Any, pull: Any = None, push: Any = None) -> Any:
    """The Jacobian of a structured output ``y`` with respect to ``x`` (JAX's layout): ``y``'s structure, each leaf
    the Jacobian of that output leaf — an array ``y_leaf.shape + x.shape``, or ``x``'s structure of such blocks when
    ``x`` is a structure. Reverse mode: ``pull(seed)`` for each unit seed of ``y``; forward mode: ``push(tangent)``
    (the output's tangent, ``y``'s structure) for each unit tangent of ``x``."""
    y_shapes = [np.shape(leaf) for _, leaf in leaves(y)]
    x_shapes = [np.shape(leaf) for _, leaf in leaves(x)] if is_structure(x) else [np.shape(x)]
    blocks = _pulled_blocks(x, y, pull, y_shapes, x_shapes) if pull is not None else \
        _pushed_blocks(x, push, y_shapes, x_shapes)
    if not is_structure(x):
        return with_leaves(y, lambda k, _: blocks[k][0] if k in blocks else None)
    return with_leaves(y, lambda k, _: with_leaves(x, lambda m, _: blocks[k][m]) if k in blocks else None)


def _pulled_blocks(x: Any, y: Any, pull: Any, y_shapes: list, x_shapes: list) -> dict[int, list]:
    """blocks[k][m]: the Jacobian of output leaf k with respect to input leaf m, row by row (reverse mode)."""
    rows: dict[int, list] = {}
    for k, seed in unit_seeds(y):
        g = pull(seed)
        rows.setdefault(k, []).append([leaf for _, leaf in leaves(g)] if is_structure(x) else [g])
    return {k: [None if r[0][m] is None else _rows_block([row[m] for row in r], y_shapes[k], shape)
                for m, shape in enumerate(x_shapes)] for k, r in rows.items()}


def _pushed_blocks(x: Any, push: Any, y_shapes: list, x_shapes: list) -> dict[int, list]:
    """blocks[k][m], column by column (forward mode): None for an input leaf that is a constant."""
    columns: dict[int, list] = {}
    tangents = unit_tangents(x) if is_structure(x) else ((0, t) for t in _unit_arrays(x))
    for m, t in tangents:
        columns.setdefault(m, []).append([leaf for _, leaf in leaves(push(t))])
    return {k: [None if m not in columns else _block([col[k] for col in columns[m]], y_shapes[k], shape)
                for m, shape in enumerate(x_shapes)] for k in range(len(y_shapes))}


def _unit_arrays(x: Any) -> Any:
    for j in range(int(np.size(x))):
        e = np.zeros(int(np.size(x)))
        e[j] = 1.0
        yield e.reshape(np.shape(x)) if np.ndim(x) else 1.0


def _rows_block(rows: list, shape_out: tuple, shape_in: tuple) -> Any:
    block = np.stack([np.reshape(r, -1) for r in rows]) if rows else np.zeros((0, int(np.prod(shape_in))))
    block = block.reshape(shape_out + shape_in)
    return float(block) if block.ndim == 0 else block


def is_differentiated_leaf(value: Any) -> bool:
    return type(value) is float or (isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind == "f")


def same_structure(a: Any, b: Any) -> bool:
    """Do two values have the same containers (types, dict keys in order, classes)?"""
    ta, tb = type(a), type(b)
    if ta is dict or ta in (list, tuple) or _class_kind(ta) is not None:
        if ta is not tb:
            return False
        if ta is dict:
            return list(a) == list(b) and all(same_structure(a[k], b[k]) for k in a)
        kind = _class_kind(ta)
        if kind is not None and kind[0] == REGISTERED:
            fa, fb = _flattened_or_raise(kind[1], a), _flattened_or_raise(kind[1], b)
            return fa[0] == fb[0] and fa[2] == fb[2] and all(same_structure(x, y) for x, y in zip(fa[1], fb[1]))
        if kind is not None and kind[0] == DATACLASS:
            return all(same_structure(getattr(a, f), getattr(b, f)) for f in kind[1])
        return len(a) == len(b) and all(same_structure(x, y) for x, y in zip(a, b))
    return True


def attribute_params(pf: Any, params: list[str]) -> frozenset:
    """The parameters whose attributes the function reads (``cfg.scale``, ``self.W``): when such an argument is a
    dataclass, a namedtuple or an object, it is a constant structure."""
    found = set()
    for node in pf.nodes:
        if isinstance(node, gast.Attribute) and isinstance(node.value, gast.Name) and node.value.id in params:
            found.add(node.value.id)
    return frozenset(found)


# Calls whose items are those of their arguments, in order (the loop reads each argument by index).
_ITEMWISE_BUILTINS = ("enumerate", "zip", "reversed")


def iterated_params(pf: Any, params: list[str]) -> dict[str, list[tuple[tuple[str, ...], Any]]]:
    """The parameters a loop or comprehension walks — themselves or an attribute of theirs (``for k in d``,
    ``enumerate(cfg.names)``, ``d.items()``) — each with the attribute paths walked and the places: srcgrad's loops
    read the items by index, which is what Python visits only for a sequence or an array (:func:`check_iterated`)."""
    found: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
    for node in pf.nodes:
        if not isinstance(node, (gast.For, gast.comprehension)):
            continue
        iters = [node.iter]
        while iters:
            it = iters.pop()
            if isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id in _ITEMWISE_BUILTINS:
                iters.extend(it.args)
            elif isinstance(it, gast.Call) and isinstance(it.func, gast.Attribute) and \
                    it.func.attr in ("items", "keys", "values"):
                iters.append(it.func.value)
            else:
                path = _attribute_path(it)
                if path is not None and path[0] in params:
                    found.setdefault(path[0], []).append((path[1:], it))
    return found


def _attribute_path(node: Any) -> tuple[str, ...] | None:
    """``cfg.a.b`` as ("cfg", "a", "b"); None for anything else than a name and attributes."""
    attrs: list[str] = []
    while isinstance(node, gast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return (node.id, *reversed(attrs)) if isinstance(node, gast.Name) else None


def check_iterated(name: str, value: Any, pf: Any, walked: list[tuple[tuple[str, ...], Any]]) -> None:
    """What a loop walks in a parameter must be a sequence or an array: a dict's items by index are its values, not
    its keys (``for k in d`` with ``d = {0: 5.0, 1: 7.0}`` gave k = 5.0, 7.0), a set or an iterator has none."""
    for attrs, where in walked:
        item = value
        for attr in attrs:  # (not through a property: its code runs in the generated function, not here)
            item = None if isinstance(getattr(type(item), attr, None), property) else getattr(item, attr, None)
        if isinstance(item, (abc.Sequence, np.ndarray)) or arrays.is_protocol_array(item) or \
                not isinstance(item, abc.Iterable):  # (not iterable at all: Python's TypeError, as srcgrad's)
            continue
        message, hint = walked_argument_text(".".join((name, *attrs)), item)
        raise InvalidArgument(message, pf.location(where), hint=hint)


def is_constant_structure(value: Any) -> bool:
    """A value a parameter that is not differentiated is read through as a structure: a dataclass, a namedtuple or
    an object (lists, tuples and dicts stay values, as before)."""
    t = type(value)
    if t is dict or t is list or t is tuple:
        return False
    return _class_kind(t) is not None or is_object(value) or (isinstance(value, type) and not issubclass(
        value, (np.generic, np.ndarray)) and value.__module__ != "builtins")


# --- the call-time check: do these arguments have the structures of a variant? -------------------------------------


def matcher(kinds: tuple) -> Any:
    """``check(*args)``: True when the arguments have the structures described in ``kinds`` (one description or
    kind per parameter; kinds that are not structures are the dispatcher's business). One generated expression
    (:func:`structure_tests`)."""
    consts: list = []
    index: dict[int, int] = {}

    def ref(obj: Any) -> str:
        if id(obj) not in index:
            index[id(obj)] = len(consts)
            consts.append(obj)
        return f"k[{index[id(obj)]}]"

    params = [f"a{i}" for i in range(len(kinds))]
    tests = structure_tests(dict(zip(params, kinds)), ref)
    text = f"def check({', '.join(params)}):\n    return {' and '.join(tests) or 'True'}\n"
    namespace = {"k": tuple(consts), "__builtins__": {}}
    exec(compile(text, "<srcgrad structure check>", "exec"), namespace)  # noqa: S102 - srcgrad's own text
    return namespace["check"]


def structure_tests(kinds: dict[str, Any], ref: Any) -> list[str]:
    """The tests that the arguments named by ``kinds``' keys have the structures it describes (descriptions are
    tuples; other kinds are skipped): type and length checks, dict keys in order, classes, leaf types, array dtype
    kinds and layouts, O(number of leaves). Every object the text reads (builtins too) is ``ref(obj)``'s text, so
    that it reads no name of the scope it runs in (the entry runs in the user's module)."""
    return [t for name, kind in kinds.items() if isinstance(kind, tuple) for t in _tests(kind, name, ref)]


def _tests(spec: tuple, e: str, ref: Any) -> list[str]:
    kind = spec[0]
    if kind == CLASS:
        return [f"{e} is {ref(spec[1])}"]
    if kind == LEAF:
        return _leaf_tests(spec, e, ref)
    is_type = f"{ref(type)}({e}) is "
    if kind == DICT:
        out = [is_type + ref(dict), f"{ref(tuple)}({e}) == {ref(spec[1])}"]
        for key, child in zip(spec[1], spec[2]):
            out += _tests(child, f"{e}[{key!r}]", ref)
        return out
    if kind in (LIST, TUPLE):
        out = [is_type + ref(list if kind == LIST else tuple), f"{ref(len)}({e}) == {len(spec[1])}"]
        for i, child in enumerate(spec[1]):
            out += _tests(child, f"{e}[{i}]", ref)
        return out
    if kind == REGISTERED:
        return _registered_tests(spec, e, ref)
    out = [is_type + ref(spec[1])]
    if kind == OBJECT:
        out.append(f"{ref(tuple)}({e}.__dict__) == {ref(spec[2])}")
    for i, (name, child) in enumerate(zip(spec[2], spec[3])):
        out += _tests(child, f"{e}[{i}]" if kind == NAMEDTUPLE else f"{e}.{name}", ref)
    return out


def _leaf_tests(spec: tuple, e: str, ref: Any) -> list[str]:
    t, dtype_kind = spec[1], spec[2]
    if t is type(None):
        return [f"{e} is None"]
    out = [f"{ref(type)}({e}) is {ref(t)}"]
    if len(spec) > 3:  # (a layout: the dtype is float64, the rank and the axes of length 1 are the same)
        out += layouts.check(e, spec[3], ref(layouts.FLOAT64))
    elif issubclass(t, (np.ndarray, np.generic)) or arrays.is_protocol_type(t):
        out.append(f"{e}.dtype.kind == {dtype_kind!r}")
    return out


def _registered_tests(spec: tuple, e: str, ref: Any) -> list[str]:
    """An instance of a registered class: flattened once and compared (:func:`_registered_check`, its result a name
    bound in the check's expression), then each child and constant attribute tested."""
    flat = f"f_{digests.hex_digest(e, 12)}"  # (a name of its own for each place)
    registration = _class_kind(spec[1])[1]
    out = [f"{ref(type)}({e}) is {ref(spec[1])}",
           f"({flat} := {ref(_registered_check)}({ref(registration)}, {ref(spec)}, {e})) is not None"]
    for i, child in enumerate(spec[3]):
        out += _tests(child, f"{flat}[0][{i}]", ref)
    for i, child in enumerate(spec[8]):
        out += _tests(child, f"{flat}[1][{i}]", ref)
    return out


def check_no_structure_reads(pf: Any, wrt: list[str], what: str) -> None:
    """Code made without example arguments (``srcgrad emit``, ``graph``, ``source`` before a call) assumes numbers and
    arrays: a differentiated parameter read as a structure (``p["W1"]``, ``p.w`` that is not an array attribute) is
    refused there, naming the read."""
    nodes = [n for n in frontend.walk(pf.node) if hasattr(n, "lineno")]
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):  # (the first read in the source)
        base = getattr(node, "value", None)
        if not (isinstance(base, gast.Name) and base.id in wrt and isinstance(base.ctx, gast.Load)):
            continue
        if isinstance(node, gast.Subscript) and isinstance(node.slice, gast.Constant) \
                and isinstance(node.slice.value, str):
            read = f'`{base.id}[{node.slice.value!r}]`'
        elif isinstance(node, gast.Attribute) and not hasattr(np.ndarray, node.attr):
            read = f"`{base.id}.{node.attr}`"
        else:
            continue
        raise UnsupportedSyntax(
            f"{read} reads `{base.id}` as a structure (a dict, a dataclass, a namedtuple...): {what} makes code for "
            "numbers and arrays; for a structure it needs example arguments (their structures: dict keys, lengths, "
            "classes)", pf.location(node),
            hint="pass example arguments: srcgrad.source(df, *args), srcgrad.emit(f, example=args), "
                 "srcgrad.graph(f, adjoint=True, example=args), or --args on the command line (srcgrad "
                 "emit/show/graph); or pass the leaves as separate parameters")
