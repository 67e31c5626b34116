"""Records: srcgrad's own data classes, made as :func:`dataclasses.dataclass` makes them, at a third of the cost.

In: a class body with annotated fields (plain defaults or :func:`dataclasses.field` with ``default``,
``default_factory``, ``init``, ``repr``, ``compare``, ``hash``, ``kw_only``) and the options ``frozen`` and ``eq``.
Out: the class as a dataclass (``dataclasses.fields``, ``replace`` and ``is_dataclass`` work), whose ``__init__``,
``__eq__`` and ``__hash__`` behave as ``dataclass`` writes them and ``__repr__`` reads as its does.

Why not ``dataclass`` itself: it compiles each method from its own text, about 0.36 ms a class, and srcgrad defines
some fifty at import — a third of what ``import srcgrad`` cost (issue 21's cold start). Here the fields are found by
``dataclass`` asked for no methods, and the methods that must be fast (``__init__`` on every IR node, ``__eq__`` and
``__hash__`` of operands used as keys) are compiled together from one text; ``__repr__`` and a frozen class's
``__setattr__`` are shared functions (never on a hot path).

The compiled methods are kept between processes as Python keeps a module's bytecode: in the ``__pycache__`` beside
this file (``records.<cache tag>.methods``, marshalled code objects keyed by their exact text and file name, under
Python's bytecode magic number), read at the first record, written at exit when this process compiled a text the
file did not hold — unless bytecode is not written (``PYTHONDONTWRITEBYTECODE``); an unreadable file is ignored.
Loading them instead of compiling is most of what a record saves.

Holds: a method the class body defines itself is kept (as ``dataclass`` keeps it); ``eq`` without ``frozen`` makes
instances unhashable unless the body defines ``__hash__``; a method's code is exactly what compiling its text gives,
stored or not; tests/unit/test_records.py compares every behaviour with a ``dataclass`` twin of the same body.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import marshal
import os
import reprlib
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:  # (type checkers read records as dataclasses; typing has this only from 3.11)
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda function: function

_T = TypeVar("_T", bound=type)


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
@overload
def record(cls: _T, /) -> _T: ...
@overload
def record(*, frozen: bool = ..., eq: bool = ...) -> Callable[[_T], _T]: ...
def record(cls: Any = None, /, *, frozen: bool = False, eq: bool = True) -> Any:
    """Make ``cls`` a dataclass (``@record`` or ``@record(frozen=True, eq=False)``)."""

    def make(cls: _T) -> _T:
        return _make(cls, frozen, eq)

    return make if cls is None else make(cls)


def _make(cls: _T, frozen: bool, eq: bool) -> _T:
    own = dict(cls.__dict__)
    documented = bool(own.get("__doc__"))
    if not documented:
        cls.__doc__ = cls.__name__  # (dataclass would compute a signature for it: cheap text below instead)
    dataclasses.dataclass(cls, init=False, repr=False, eq=False)
    fields = dataclasses.fields(cls)
    if not documented:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields if f.init)})"
    declared_hash = own.get("__hash__", dataclasses.MISSING)
    # (a body defining __eq__ alone has __hash__ None from Python itself: not a hash of its own)
    own_hash = not (declared_hash is dataclasses.MISSING or (declared_hash is None and "__eq__" in own))
    hashed = eq and frozen and not own_hash
    methods = _compiled(cls, fields, frozen, "__init__" not in own, eq and "__eq__" not in own, hashed)
    for name, method in methods.items():
        setattr(cls, name, method)
    if eq and not frozen and not own_hash:
        cls.__hash__ = None  # type: ignore[assignment]  # (mutable and compared by value: unhashable, as dataclass)
    if "__repr__" not in own:
        cls.__repr__ = _repr_of(tuple(f.name for f in fields if f.repr))  # type: ignore[assignment]
    if frozen:
        names = frozenset(f.name for f in fields)
        cls.__setattr__ = _frozen_setattr(cls, names)  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr(cls, names)  # type: ignore[assignment]
    return cls


def _compiled(cls: type, fields: tuple[dataclasses.Field, ...], frozen: bool, init: bool, eq: bool, hashed: bool
              ) -> dict[str, Callable]:
    """``__init__``, ``__eq__`` and ``__hash__`` (those asked for) compiled from one text."""
    made = [name for name, wanted in (("__init__", init), ("__eq__", eq), ("__hash__", hashed)) if wanted]
    if not made:
        return {}
    values: dict[str, Any] = {"_record_MISSING": dataclasses.MISSING, "_record_set": object.__setattr__}
    lines = _init_lines(cls, fields, frozen, values) if init else []
    lines += _comparison_lines(fields, eq, hashed)
    text = "def _record_methods({}):\n{}\n return {}\n".format(
        ", ".join(values), "\n".join(lines), ", ".join(made) + ",")
    scope: dict[str, Any] = {}
    exec(_compiled_text(text, f"<record {cls.__qualname__}>"), {}, scope)
    functions = scope["_record_methods"](**values)
    for function in functions:
        function.__qualname__ = f"{cls.__qualname__}.{function.__name__}"
    methods = dict(zip(made, functions))
    if init:  # (annotated as dataclass annotates it: signatures of the public API are read)
        methods["__init__"].__annotations__ = {f.name: f.type for f in fields if f.init} | {"return": None}
    return methods


def _init_lines(cls: type, fields: tuple[dataclasses.Field, ...], frozen: bool, values: dict[str, Any]) -> list[str]:
    """The text of ``__init__`` (the defaults it reads added to ``values``)."""
    params, keyword_only, body = [], [], []
    for index, f in enumerate(fields):
        parameter, value = _field_init(f, f"_record_default_{index}", values)
        if parameter is not None:
            (keyword_only if f.kw_only is True else params).append(parameter)
        if value is not None:
            body.append(f"_record_set(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    signature = ", ".join(["self", *params, *(["*", *keyword_only] if keyword_only else [])])
    return [f" def __init__({signature}):", *(f"  {line}" for line in body or ["pass"])]


def _field_init(f: dataclasses.Field, default: str, values: dict[str, Any]) -> tuple[str | None, str | None]:
    """The field's parameter of ``__init__`` and the value ``__init__`` gives it (None: no parameter, no value: a
    plain default of a field outside ``__init__`` is read from the class, as dataclass leaves it)."""
    plain = f.default is not dataclasses.MISSING
    factory = f.default_factory is not dataclasses.MISSING
    if plain or factory:
        values[default] = f.default if plain else f.default_factory
    if not f.init:
        return None, (f"{default}()" if factory else None)
    parameter = f.name + (f"={default}" if plain else "=_record_MISSING" if factory else "")
    return parameter, (f"{default}() if {f.name} is _record_MISSING else {f.name}" if factory else f.name)


def _comparison_lines(fields: tuple[dataclasses.Field, ...], eq: bool, hashed: bool) -> list[str]:
    """The text of ``__eq__`` and ``__hash__`` (those asked for), over the compared fields, as dataclass's."""
    lines = []
    if eq:
        compared = [f.name for f in fields if f.compare]
        mine, theirs = (_tuple_text(prefix, compared) for prefix in ("self", "other"))
        lines += [" def __eq__(self, other):", "  if other.__class__ is self.__class__:",
                  f"   return {mine} == {theirs}", "  return NotImplemented"]
    if hashed:
        keyed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
        lines += [" def __hash__(self):", f"  return hash({_tuple_text('self', keyed)})"]
    return lines


def _tuple_text(owner: str, names: list[str]) -> str:
    return "(" + "".join(f"{owner}.{name}," for name in names) + ")"


def _repr_of(names: tuple[str, ...]) -> Callable[[Any], str]:
    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _frozen_setattr(cls: type, names: frozenset[str]) -> Callable[[Any, str, Any], None]:
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    return __setattr__


def _frozen_delattr(cls: type, names: frozenset[str]) -> Callable[[Any, str], None]:
    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __delattr__


# --- compiled texts kept between processes ------------------------------------------------------------------------

_MAGIC = b"srcgrad records 1\n" + importlib.util.MAGIC_NUMBER  # (1: how texts are compiled, _compiled_text)
_KEPT_AT_MOST = 400  # entries; beyond, the file keeps only what this process used (texts of older versions go)
_stored: dict[str, types.CodeType] | None = None  # read at the first record
_used: dict[str, types.CodeType] = {}  # what this process's records took, stored or compiled
_compiled_here = 0


def _store_path() -> str | None:
    try:
        return importlib.util.cache_from_source(__file__)[: -len(".pyc")] + ".methods"
    except (NotImplementedError, ValueError):  # (no cache tag: bytecode is not kept at all)
        return None


def _compiled_text(text: str, filename: str) -> types.CodeType:
    """The code of ``text`` compiled as file ``filename``: the stored one when the store holds that text."""
    global _stored, _compiled_here
    if _stored is None:
        _stored = _read_store()
    key = filename + "\n" + text
    code = _stored.get(key)
    if code is None:
        code = compile(text, filename, "exec", dont_inherit=True)  # (not this module's __future__ flags)
        if not _compiled_here:
            atexit.register(_write_store)
        _compiled_here += 1
    _used[key] = code
    return code


def _read_store() -> dict[str, types.CodeType]:
    path = _store_path()
    try:
        with open(path, "rb") as file:  # type: ignore[arg-type]
            data = file.read()
        stored = marshal.loads(data[len(_MAGIC):]) if data.startswith(_MAGIC) else None
    except (OSError, TypeError, ValueError, EOFError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {key: code for key, code in stored.items() if isinstance(key, str) and isinstance(code, types.CodeType)}


def _write_store() -> None:
    """Write what this process compiled (with the stored texts it did not use, up to :data:`_KEPT_AT_MOST`)."""
    path = _store_path()
    if path is None or sys.dont_write_bytecode or not _compiled_here:
        return
    kept = {**(_stored or {}), **_used}
    if len(kept) > _KEPT_AT_MOST:
        kept = dict(_used)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as file:
            file.write(_MAGIC + marshal.dumps(kept))
        os.replace(temporary, path)  # (atomic: a process reading meanwhile sees the old file or the new one)
    except OSError:
        try:
            os.remove(temporary)
        except OSError:
            pass
