"""Public API: ``grad``, ``value_and_grad``, ``vjp``, ``source``, and the transforms the other tools build on.

In: a user function and ``wrt`` (a position, a parameter name, or a tuple of them). Out: a plain Python function.
:class:`Transform` (reverse mode) and :class:`ForwardTransform` (forward mode) generate and cache the variants;
``grad`` of a function ``grad`` made is reverse mode over its generated forward mode (:func:`grad_of_grad`);
srcgrad/higher.py builds ``jvp``, ``hvp``, ``hessian`` and ``jacobian`` on them (it imports this module, not the
other way round).
What holds:
- the source is parsed and fenced when the transform is made (errors come early), but names are resolved and code is
  generated at the first call, so helpers defined later in the module work;
- generated code is specialised to the kinds of the arguments (Python number or array, and an array's number of
  dimensions and axes of length 1: srcgrad/layouts.py), cached per kind; generation
  is guarded by a lock, so concurrent first calls transform once;
- a variant is used only while its guards hold (srcgrad/guards.py): when a name the function reads now denotes
  another object (a rebound global, a redefined helper, a module attribute whose kind changed), it is generated
  again; a parameter left out takes the function's default as it is at the call (``__defaults__`` is read live);
- arguments are plain Python numbers or plain ndarrays (and ``np.memmap``, whose operators are ndarray's): other
  ndarray subclasses change what the operators mean (``np.matrix``: ``*`` is a matrix product; masked arrays skip
  masked elements), so they are refused with InvalidArgument; arrays of Dask and CuPy (srcgrad/arrays.py) are arrays
  too, and a call with a Dask array runs through srcgrad/lazy.py (nothing computes during it);
- a gradient has the type, shape and float dtype of its argument.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

import gast
import numpy as np

from srcgrad import arrays, codereading, guards, layouts, lazy, locks, lower, naming, pipeline, structures
from srcgrad.binding import ARRAY, SCALAR
from srcgrad.entry import OMITTED, make_entry, simple_signature
from srcgrad.errors import (
    InvalidArgument,
    NonNumericOutput,
    SrcgradError,
    at_user_line,
    call_failure,
    reading,
    refusal,
)
from srcgrad.generated import Generated
from srcgrad.notebook import SourceText

Wrt = int | str | tuple[Any, ...]


class Transform:
    """One (function, wrt, mode): parsed once, generated once per argument-kind signature."""

    def __init__(self, func: Callable[..., Any], wrt: Wrt, mode: str, backend: str = "python") -> None:
        check_backend(backend)
        if getattr(func, "__srcgrad_transform__", None) is not None:
            raise SrcgradError(
                f"{func.__name__} is already a srcgrad-generated function; higher-order derivatives are not "
                "supported yet",
                hint="differentiate the original function",
            )
        self.func = func
        self.mode = mode
        self.backend = backend
        with reading(func):
            self.pf = pipeline.parse_and_fence(func)
        self.code = func.__code__  # the code the source was read for (see refresh_source)
        self.signature = codereading.signature_of(func)
        self.params = list(self.signature.parameters)
        self.positional = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in self.signature.parameters.values())
        self.as_tuple = isinstance(wrt, (tuple, list))
        self.wrt = self._resolve_wrt(wrt)
        self.wrt_positions = [self.params.index(w) for w in self.wrt]
        # parameters whose attributes the body reads: a dataclass, namedtuple or object there is a constant structure
        self.attribute_params = structures.attribute_params(self.pf, self.params)
        self.iterated_params = structures.iterated_params(self.pf, self.params)
        self.structure_positions = sorted({*self.wrt_positions,
                                           *(self.params.index(p) for p in self.attribute_params)})
        self.by_kinds: dict[tuple[str, ...], Generated] = {}
        self.last: Generated | None = None
        self.lock = locks.lock()

    def _resolve_wrt(self, wrt: Wrt) -> list[str]:
        items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
        if not items:
            raise InvalidArgument("wrt is empty", hint=f"name at least one of the parameters {self.params}")
        names = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise InvalidArgument(f"wrt must be a parameter position or name, got {item!r}")
            if isinstance(item, int):
                if not -len(self.params) <= item < len(self.params):
                    raise InvalidArgument(
                        f"wrt={item} is out of range: {self.func.__name__} has {len(self.params)} parameters "
                        f"{self.params}"
                    )
                item = self.params[item]
            elif item not in self.params:
                raise InvalidArgument(
                    f"wrt={item!r} is not a parameter of {self.func.__name__}; its parameters are {self.params}"
                )
            if item in names:
                raise InvalidArgument(f"wrt names {item!r} twice")
            kind = self.signature.parameters[item].kind
            if kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
                star = "*" if kind is kind.VAR_POSITIONAL else "**"
                raise InvalidArgument(
                    f"wrt={wrt!r} names {star}{item} of {self.func.__name__}: srcgrad differentiates named "
                    "parameters, not the values gathered by *args or **kwargs",
                    hint=f"give the differentiated value a parameter of its own, e.g. def "
                         f"{self.func.__name__}(x, {star}{item})")
            names.append(item)
        return names

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """All argument values in parameter order (the function's current defaults applied)."""
        if not kwargs and len(args) == len(self.params) and self.positional:
            return self.fill_defaults(list(args))  # every parameter given by position: nothing for inspect to do
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgument(f"{self.func.__name__}{self.signature}: {exc}") from None
        return self.fill_defaults([bound.arguments.get(p, OMITTED) for p in self.params])

    def fill_defaults(self, values: list[Any]) -> list[Any]:
        """``values`` with each ``OMITTED`` (a parameter the call left out) replaced by the function's default as it
        is now: ``__defaults__`` and ``__kwdefaults__`` may have been reassigned since the transform was made."""
        for i, value in enumerate(values):
            if value is OMITTED:
                values[i] = self._default(i)
        return values

    def _default(self, i: int) -> Any:
        func, name = self.func, self.params[i]
        kind = self.signature.parameters[name].kind
        if kind in (kind.VAR_POSITIONAL, kind.VAR_KEYWORD):
            return () if kind is kind.VAR_POSITIONAL else {}  # (nothing gathered)
        if self.signature.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY:
            found = (func.__kwdefaults__ or {}).get(name, OMITTED)
        else:
            defaults = func.__defaults__ or ()
            n_positional = sum(1 for p in self.signature.parameters.values()
                               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
            found = defaults[i - n_positional] if n_positional - i <= len(defaults) else OMITTED
        if found is OMITTED:
            raise InvalidArgument(f"{func.__name__}{self.signature}: missing argument {name!r} (the function has no "
                                  "default for it any more)")
        return found

    def kinds(self, values: list[Any]) -> tuple[str, ...]:
        out: list[Any] = []
        for name, value in zip(self.params, values):
            if name in self.iterated_params and name not in self.wrt:
                structures.check_iterated(name, value, self.pf, self.iterated_params[name])
            if type(value) not in PLAIN_TYPES and not arrays.is_protocol_array(value):
                # a structure is described by a tuple (srcgrad/structures.py)
                if name in self.wrt and structures.is_structure(value):
                    out.append(structures.spec_of(name, value))
                    continue
                if name in self.attribute_params and name not in self.wrt and \
                        structures.is_constant_structure(value):
                    out.append(structures.spec_of(name, value, const=True))
                    continue
            check_representable(name, value)
            if isinstance(value, types.ModuleType) and name in self.attribute_params:
                raise module_argument(name, self.pf)
            if name in self.wrt:
                check_differentiable(name, value)
            out.append(SCALAR if type(value) in (float, int, bool) else layouts.kind_of(value, ARRAY))
        return tuple(out)

    def specialise(self, values: list[Any], output: tuple[Any, ...] | None = None) -> Generated:
        """The variant for the kinds of these argument values (generated on first use, once, under the lock);
        ``output``: the description of a vjp's structured seed (structures.seed_spec), part of the variant's key."""
        kinds = self.kinds(values)
        generated = self.variant(kinds if output is None else (*kinds, ("output", output)))
        self.last = generated
        return generated

    def generic(self, example: tuple[Any, ...] | None = None) -> Generated:
        """The variant that makes no assumption about argument kinds (what `emit` writes). Structured parameters
        need ``example`` arguments: the variant is made for their structures (every leaf of the general kind, and the
        generated code checks the structures); without them, a differentiated parameter read as a structure is
        refused (structures.check_no_structure_reads)."""
        if example is not None:
            kinds = tuple(k if isinstance(k, tuple) else ARRAY for k in self.kinds(self.bind(tuple(example), {})))
            if structures.structured(kinds):
                return self.variant((*kinds, ("generic", True)))
        structures.check_no_structure_reads(self.pf, self.wrt, "code made without example arguments")
        return self.variant(tuple(ARRAY for _ in self.params))

    def variant(self, kinds: tuple[Any, ...]) -> Generated:
        """The variant for these kinds: the one generated before while its guards hold, else a new one."""
        generated = self.by_kinds.get(kinds)
        if generated is None or not generated.guards.hold():
            with self.lock:
                generated = self.by_kinds.get(kinds)
                if generated is None or not generated.guards.hold():
                    self.refresh_source()
                    # before generating (see srcgrad/guards.py); the lowering takes the same collection, which
                    # also guards the function's defaults (the entry reads those live: not this variant's guards)
                    found = guards.collect(self.func, self.pf, defaults=True)
                    self.pf.fresh_guards = found
                    found = found.without_defaults_of(self.func)
                    # (a vjp's structured seed, the generic structures)
                    options: dict[str, Any] = dict(kinds[len(self.params):])
                    try:
                        generated = self.generate(dict(zip(self.params, kinds)), **options)
                    finally:
                        self.pf.fresh_guards = None  # (not taken: the lowering was still good)
                    found.items += getattr(generated, "extra_guards", [])  # (methods read through classes)
                    generated.guards = found
                    self.by_kinds[kinds] = generated
        return generated

    def refresh_source(self) -> None:
        """Read the function's source again when its code object was replaced (``f.__code__ = ...``, IPython's
        autoreload updating a function in place): code generated from the old source would be stale (its guard on
        ``__code__`` fails). New parameters are refused: the entry was made for the old ones."""
        if self.func.__code__ is self.code:
            return
        now = codereading.signature_of(self.func)
        if [(p.name, p.kind) for p in now.parameters.values()] != \
                [(p.name, p.kind) for p in self.signature.parameters.values()]:
            raise InvalidArgument(f"the parameters of {self.func.__name__} changed since its transform was made: "
                                  f"{self.signature} is now {now}", hint="make the transform again (srcgrad.grad(f))")
        with reading(self.func):
            self.pf = pipeline.parse_and_fence(self.func)
        self.code = self.func.__code__
        self.attribute_params = structures.attribute_params(self.pf, self.params)
        self.iterated_params = structures.iterated_params(self.pf, self.params)
        self.structure_positions = sorted({*self.wrt_positions,
                                           *(self.params.index(p) for p in self.attribute_params)})
        self.by_kinds.clear()

    def generate(self, kinds: dict[str, str], output: tuple[Any, ...] | None = None, generic: bool = False
                 ) -> Generated:
        if structures.structured(kinds.values()) or output is not None:
            check_plain_backend(self, "structured arguments (dataclasses, namedtuples, dicts, lists)" if output is None
                                else "seeds that are tuples, lists or dicts")
            generated: Generated = structures.generate(self, kinds, self.generate_leaves, self.mode, output, generic)
            return generated
        return pipeline.generate(self.pf, self.wrt, self.mode, kinds, self.as_tuple, self.backend)

    def generate_leaves(self, pf: Any, wrt: list[str], kinds: dict[str, str]) -> Generated:
        """The function of the leaves of structured arguments (its gradients always a tuple)."""
        return pipeline.generate(pf, wrt, self.mode, kinds, True)


PLAIN_TYPES = frozenset({float, int, bool, np.ndarray})  # arguments that are never structures


def check_backend(backend: Any) -> None:
    """``backend`` names a backend (srcgrad/driver.py: BACKENDS); numba's must be installed."""
    from srcgrad import driver

    if backend not in driver.BACKENDS:
        raise InvalidArgument(f"backend must be one of {', '.join(map(repr, driver.BACKENDS))}, got {backend!r}")
    if backend != "python":
        pipeline.backend_named(backend)


def check_plain_backend(transform: Transform, what: str) -> None:
    """What only the Python backend generates: refused for another backend, naming the function."""
    if transform.backend != "python":
        raise SrcgradError(f"backend={transform.backend!r} does not support {what} yet",
                           transform.pf.location(transform.pf.node),
                           hint="pass arrays and numbers as separate arguments, or use backend='python'")


def split_last(args: tuple[Any, ...], kwargs: dict[str, Any], key: str, name: str, what: str
               ) -> tuple[tuple[Any, ...], Any]:
    """``g(*args, v)``: the trailing argument (or keyword ``key``) and the others; ``kwargs`` loses ``key``."""
    if key in kwargs:
        return args, kwargs.pop(key)
    if args:
        return args[:-1], args[-1]
    raise InvalidArgument(f"{name}(*args, {key}): {what} is missing")


# ndarray subclasses whose operators and functions are ndarray's: the generated code computes what the function does.
SAFE_ARRAY_TYPES = (np.ndarray, np.memmap)


def check_representable(name: str, value: Any) -> None:
    """An argument srcgrad's code computes with as Python does: refuse ndarray subclasses that change what
    operators and numpy functions mean (masked arrays skip masked elements; ``np.matrix`` makes ``*`` a matrix
    product and keeps two dimensions), since the generated reverse sweep assumes plain arrays."""
    kind = type(value)
    if isinstance(value, np.ndarray) and kind not in SAFE_ARRAY_TYPES:
        raise InvalidArgument(
            f"argument `{name}` is a {kind.__module__}.{kind.__qualname__}, an ndarray subclass whose operators "
            "differ from ndarray's: srcgrad cannot differentiate through it",
            hint="pass a plain array: np.asarray(value) (a masked array: value.filled(fill) or the data you mean, "
                 "an np.matrix: np.asarray, with @ for matrix products)",
        )


def module_argument(name: str, pf: Any) -> InvalidArgument:
    """A module passed as an argument whose attributes the function reads (``xp.sum(v)`` with ``xp=np``): the
    generated code is made once for many calls, and which function ``xp.sum`` is, is known only at call time. The
    error points at the first such read."""
    read = next(n for n in pf.nodes if isinstance(n, gast.Attribute) and isinstance(n.value, gast.Name)
                and n.value.id == name)
    return InvalidArgument(
        f"argument `{name}` is a module: srcgrad finds the rule of each call from the function it names when it "
        "generates the code, and cannot know which module an argument will be", pf.location(read),
        hint=f"call the module by its global name in the function (np.sum(v), not {name}.sum(v))",
    )


def check_differentiable(name: str, value: Any) -> None:
    """A differentiated argument must be a real number or a real (or integer) array."""
    if type(value) in (float, int, bool):
        return
    if isinstance(value, (np.ndarray, np.generic)) or arrays.is_protocol_array(value):
        if value.dtype.kind in "fiub":
            return
        what = {"c": "complex", "O": "object"}.get(value.dtype.kind, str(value.dtype))
        raise InvalidArgument(
            f"cannot differentiate with respect to `{name}`: it has dtype {value.dtype} ({what})",
            hint="srcgrad differentiates real floating-point values; pass a float array",
        )
    if isinstance(value, complex):
        raise InvalidArgument(f"cannot differentiate with respect to `{name}`: complex values are not supported",
                              hint="split the value into real and imaginary parts")
    raise InvalidArgument(
        f"cannot differentiate with respect to `{name}`: got {type(value).__name__}, expected a float or an array",
        hint="pass a float or an array: numpy's, Dask's or CuPy's (lists: np.asarray(values, dtype=float))",
    )


def check_seed(name: str, seed: Any) -> None:
    """The seed of a vjp (the adjoint of the output) must be a real number or a real array."""
    if type(seed) in (int, bool) or (isinstance(seed, (np.ndarray, np.generic)) and seed.dtype.kind in "fiub"):
        return
    got = f"dtype {seed.dtype}" if isinstance(seed, (np.ndarray, np.generic)) else type(seed).__name__
    raise InvalidArgument(
        f"{name}(*args, seed): the seed (the adjoint of the output) must be a real number or array, got {got}",
        hint="pass a float, or a float array of the output's shape",
    )


def _make_entry(transform: Transform, name: str) -> Callable[..., Any]:
    """The function users call: for grad/value_and_grad with a plain signature, an entry with the user's own signature
    whose code becomes the generated code behind a type check after the first call (srcgrad/entry.py); otherwise the
    general dispatcher."""
    failed = _failure_handler(transform)
    dispatch = _make_dispatcher(transform, name, failed)
    if transform.mode == "vjp" or not simple_signature(transform.signature) \
            or any(p.startswith("__srcgrad_") for p in transform.params):  # (the entry's own names: its cells)
        entry = dispatch
    else:
        entry = make_entry(transform, name, dispatch, failed)
    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"{naming.title(transform.mode)} of {transform.func.__qualname__} with respect to " \
                    f"{', '.join(transform.wrt)} (generated by srcgrad; see srcgrad.source)."
    entry.__module__ = transform.func.__module__
    entry.__srcgrad_transform__ = transform  # type: ignore[attr-defined]
    dispatch.__srcgrad_entry__ = entry  # type: ignore[attr-defined]
    return entry


def _make_dispatcher(transform: Transform, name: str, failed: Callable[..., Any]) -> Callable[..., Any]:
    cache: dict[Any, Generated] = {}  # by the argument types (and structures' descriptions)
    has_defaults = any(p.default is not p.empty for p in transform.signature.parameters.values())
    seed_names: dict[Callable[..., Any], str] = {}  # vjp: the seed parameter of each generated variant
    n_params = len(transform.params)
    wrt_positions = transform.wrt_positions
    structure_positions = transform.structure_positions
    structured_last: dict[Any, Any] = {}  # argument types -> (key, check) of the last structured variant
    lazy_keys: set[Any] = set()  # keys with a Dask array among the arguments: run by srcgrad.lazy
    unswapped: dict[Any, Generated] = {}  # variants made at a call: the entry's code becomes them at the next one
    vjp = transform.mode == "vjp"
    kwonly = [p.name for p in transform.signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    n_pos = n_params - len(kwonly)
    spread = spreader(transform.signature)

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        output = None
        if vjp:
            args, seed = split_last(args, kwargs, "seed", name, "the seed (the output's adjoint)")
            if structures.is_structure(seed):
                output = structures.seed_spec(name, seed)
            elif type(seed) is not float:
                check_seed(name, seed)
        if kwargs or len(args) != n_params or has_defaults or spread is not None:
            args = tuple(transform.bind(args, kwargs))
        key: Any = tuple(map(type, args))
        if np.ndarray in key:  # an array's layout is part of its kind (srcgrad/layouts.py)
            key = tuple(layouts.key_of(a) if t is np.ndarray else t for t, a in zip(key, args))
        for i in structure_positions:
            if type(args[i]) not in PLAIN_TYPES and not arrays.is_protocol_type(type(args[i])):  # a structure: the
                # key holds its description (O(leaves))
                known = structured_last.get(key)
                key = known[0] if known is not None and known[1](*args) else (key, transform.kinds(list(args)))
                break
        if output is not None:  # (a structured seed: its description is part of the key, O(its leaves))
            key = (key, output)
        generated = cache.get(key)
        if generated is None or not generated.guards.hold():
            generated = transform.specialise(list(args), output)
            impl = generated.function
            if getattr(generated, "structured", False) and output is None:
                # the next call checks its structures in one expression
                structured_last[key[0]] = (key, structures.matcher(key[1]))
            if vjp:
                seed_names[impl] = generated.seeds[0]
            if lazy.needs_guard(map(type, args)) or lazy.holds_dask([args[i] for i in structure_positions]):
                lazy_keys.add(key)
            cache[key] = generated
            entry = dispatch.__srcgrad_entry__  # type: ignore[attr-defined]
            entry.__wrapped__ = impl
            unswapped[key] = generated  # the entry takes it on at the next call (compiling that is not worth it for
            # a function called once)
        else:
            impl = generated.function
            if unswapped and unswapped.pop(key, None) is generated and key not in lazy_keys:  # (Dask arrays,
                # also in structures: every call goes through srcgrad.lazy)
                on_variant = getattr(dispatch, "__srcgrad_on_variant__", None)
                if on_variant is not None:
                    on_variant(generated, key)
            for i in wrt_positions:
                a = args[i]
                if (type(a) is np.ndarray or arrays.is_protocol_type(type(a))) and a.dtype.kind not in "fiub":
                    check_differentiable(transform.params[i], a)
        run = lazy.guarded(impl, transform.pf) if lazy_keys and key in lazy_keys else impl
        try:
            if spread is not None:
                positional, named = spread(args)
                if vjp:
                    named[seed_names[impl]] = seed
                return run(*positional, **named)
            if kwonly:
                named = dict(zip(kwonly, args[n_pos:]))
                if vjp:
                    named[seed_names[impl]] = seed
                return run(*args[:n_pos], **named)
            return run(*args, **{seed_names[impl]: seed}) if vjp else run(*args)
        except Exception as exc:
            failed(exc)
            raise

    dispatch.__name__ = dispatch.__qualname__ = name
    return dispatch


def spreader(signature: inspect.Signature) -> Callable[[Any], tuple[list[Any], dict[str, Any]]] | None:
    """For a function with ``*args`` or ``**kwargs``: values in parameter order (the tuple and the dict among them)
    -> the positional and keyword arguments of a call with that signature. None for other functions."""
    kinds = [p.kind for p in signature.parameters.values()]
    if not any(k in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) for k in kinds):
        return None
    names = list(signature.parameters)

    def spread(values: Any) -> tuple[list[Any], dict[str, Any]]:
        positional: list[Any] = []
        named: dict[str, Any] = {}
        for name, kind, value in zip(names, kinds, values):
            if kind is inspect.Parameter.VAR_POSITIONAL:
                positional.extend(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                named.update(value)
            elif kind is inspect.Parameter.KEYWORD_ONLY:
                named[name] = value
            else:
                positional.append(value)
        return positional, named

    return spread


def _failure_handler(transform: Transform) -> Callable[[Exception], None]:
    """``failed(exc)``: raise an :class:`InternalError` (from ``exc``) when an exception raised by generated code is
    srcgrad's fault; return (the caller re-raises ``exc``) when it is the user's, e.g. ``math.log(-1.0)``."""

    def failed(exc: Exception) -> None:
        if transform.backend == "numba":  # (the entry calls numba's compiled code itself: it compiles at a call)
            from srcgrad.numba_backend import compile_failure

            compiled = compile_failure(exc)
            if compiled is not None:
                raise compiled from None
        if isinstance(exc, NonNumericOutput) and exc.location is None:
            raise NonNumericOutput(exc.message, lower.return_location(transform.pf), exc.hint) from None
        refused = refusal(exc, transform.pf)
        if refused is not None:
            raise refused from None
        internal = call_failure(exc, transform.pf)
        if internal is not None:
            raise internal from exc

    return failed


class _AsDecorator:
    """The default of ``func``: ``@srcgrad.grad(wrt=...)`` (no function yet), told apart from ``grad(None)``."""

    def __repr__(self) -> str:
        return "<no function: used as a decorator>"


AS_DECORATOR: Any = _AsDecorator()


def check_function(func: Any, name: str) -> None:
    """``srcgrad.NAME(func)`` needs a function: None (a function that returned None, a missing attribute...) and
    other non-callables are refused, saying what came."""
    if func is None:
        raise InvalidArgument(
            f"srcgrad.{name} got None instead of a function to differentiate",
            hint=f"pass the function itself, e.g. srcgrad.{name}(f) (not the result of calling it), or use "
                 f"@srcgrad.{name} / @srcgrad.{name}(wrt=...) as a decorator",
        )
    if not callable(func):
        raise InvalidArgument(f"expected a function to differentiate, got {type(func).__name__}",
                              hint=f"use @srcgrad.{name} or @srcgrad.{name}(wrt=...)")


def _decorator_or_call(func: Any, wrt: Wrt, mode: str, suffix: str, backend: str = "python") -> Callable[..., Any]:
    if func is AS_DECORATOR:
        return lambda f: _decorator_or_call(f, wrt, mode, suffix, backend)
    if getattr(func, "__srcgrad_transform__", None) is not None and mode in ("grad", "value_and_grad",
                                                                              "value_and_grad_aux"):
        check_backend(backend)
        if backend != "python":
            raise InvalidArgument(f"second derivatives (grad of a srcgrad function) have no backend={backend!r}",
                                  hint="use backend='python' for the outer derivative")
        return grad_of_grad(func, wrt, mode)  # second order: reverse mode over generated forward-mode code
    check_function(func, mode)
    if structures.is_callable_instance(func):  # grad(model): its __call__, bound to it
        func = func.__call__
    if inspect.ismethod(func) or isinstance(func, functools.partial):
        return _bound_entry(func, wrt, mode, suffix, backend)
    transform = Transform(func, wrt, mode, backend)
    return _make_entry(transform, f"{func.__name__}_{suffix}")


def _bound_entry(func: Any, wrt: Wrt, mode: str, suffix: str, backend: str = "python") -> Callable[..., Any]:
    """``grad(model.loss)`` and ``grad(functools.partial(f, a, k=v))``: the function itself is differentiated, the
    bound arguments passed first at each call (``self`` is an argument like any other: when the function reads its
    attributes, an object is a constant structure). ``wrt`` counts the parameters the caller sees."""
    if inspect.ismethod(func):
        function, fixed, keywords = func.__func__, (func.__self__,), {}
    else:
        function, fixed, keywords = func.func, tuple(func.args), dict(func.keywords)
        if inspect.ismethod(function) or isinstance(function, functools.partial):
            raise InvalidArgument("srcgrad differentiates a partial of a function, not of a method or a partial",
                                  hint="write the partial of the underlying function")
    check_function(function, mode)
    visible = list(codereading.signature_of(func).parameters)
    items = list(wrt) if isinstance(wrt, (tuple, list)) else [wrt]
    names: list[Any] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not -len(visible) <= item < len(visible):
                raise InvalidArgument(f"wrt={item} is out of range: the function has the parameters {visible}")
            item = visible[item]
        elif isinstance(item, str) and item not in visible:
            raise InvalidArgument(f"wrt={item!r} is not a parameter the caller passes: its parameters are {visible}")
        names.append(item)
    transform = Transform(function, tuple(names) if isinstance(wrt, (tuple, list)) else names[0], mode, backend)
    entry = _make_entry(transform, f"{function.__name__}_{suffix}")

    def bound(*args: Any, **kwargs: Any) -> Any:
        return entry(*fixed, *args, **{**keywords, **kwargs})

    bound.__name__ = bound.__qualname__ = entry.__name__
    bound.__doc__ = entry.__doc__
    bound.__srcgrad_transform__ = transform  # type: ignore[attr-defined]
    bound.__wrapped__ = entry  # type: ignore[attr-defined]
    return bound


def grad(func: Callable[..., Any] = AS_DECORATOR, wrt: Wrt = 0, *, backend: str = "python") -> Callable[..., Any]:
    """The gradient of a scalar-valued function.

    ``wrt`` is a parameter position, a parameter name, or a tuple of them (then a tuple of gradients is returned).
    Usable as ``srcgrad.grad(f)``, ``@srcgrad.grad`` and ``@srcgrad.grad(wrt=...)``. ``backend="numba"``: the same
    generated code compiled by numba's nopython mode at the first call (srcgrad/numba_backend.py).
    """
    return _decorator_or_call(func, wrt, "grad", "grad", backend)


def value_and_grad(func: Callable[..., Any] = AS_DECORATOR, wrt: Wrt = 0, has_aux: bool = False, *,
                   backend: str = "python") -> Callable[..., Any]:
    """Like :func:`grad`, but the generated function returns ``(value, gradient)``.

    ``has_aux=True``: ``func`` returns ``(loss, aux)``; the result is ``((loss, aux), gradient of loss)``, ``aux``
    any Python value passed through (JAX's convention). ``backend``: as for :func:`grad`.
    """
    if type(has_aux) is not bool:
        raise InvalidArgument(f"has_aux must be True or False, got {has_aux!r}")
    mode = "value_and_grad_aux" if has_aux else "value_and_grad"
    return _decorator_or_call(func, wrt, mode, "value_and_grad", backend)


def vjp(func: Callable[..., Any] = AS_DECORATOR, wrt: Wrt = 0, *, backend: str = "python") -> Callable[..., Any]:
    """The vector-Jacobian product ``g(*args, seed)`` of a function with any output shape.

    ``seed`` has the shape of the output; the result has the shape of the ``wrt`` argument(s). ``backend``: as for
    :func:`grad`.
    """
    return _decorator_or_call(func, wrt, "vjp", "vjp", backend)


# --- forward mode and second order: the transforms srcgrad/higher.py builds on ------------------------------------


class ForwardTransform(Transform):
    """A function, ``wrt`` and a forward style: generated once per argument-kind signature."""

    def __init__(self, func: Callable[..., Any], wrt: Any, style: str, backend: str = "python") -> None:
        super().__init__(func, wrt, style, backend)
        self.style = style

    def generate(self, kinds: dict[str, str], output: tuple[Any, ...] | None = None, generic: bool = False
                 ) -> Generated:
        if structures.structured(kinds.values()):  # (jvp only; the other styles are refused there)
            check_plain_backend(self, "structured arguments (dataclasses, namedtuples, dicts, lists)")
            generated: Generated = structures.generate(self, kinds, self.generate_leaves, self.style, None, generic)
            return generated
        return pipeline.generate_forward(self.pf, self.wrt, kinds, self.style, self.backend)

    def generate_leaves(self, pf: Any, wrt: list[str], kinds: dict[str, str]) -> Generated:
        return pipeline.generate_forward(pf, wrt, kinds, self.style)


def call_generated(transform: Transform, function: Callable[..., Any], values: list[Any], extra: dict[str, Any]
                    ) -> Any:
    spread = spreader(transform.signature)
    if spread is not None:  # (*args, **kwargs)
        positional, named = spread(values)
    else:
        kwonly = [p.name for p in transform.signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
        n_pos = len(values) - len(kwonly)
        positional, named = values[:n_pos], dict(zip(kwonly, values[n_pos:]))
    if lazy.needs_guard(map(type, (*values, *extra.values()))):  # (forward mode with Dask arrays: see srcgrad.lazy)
        function = lazy.guarded(function, transform.pf)
    try:
        return function(*positional, **named, **extra)
    except NonNumericOutput as exc:  # (checked where the function returns: name its return of no number)
        if exc.location is not None:
            raise
        raise NonNumericOutput(exc.message, lower.return_location(transform.pf), exc.hint) from None
    except ValueError as exc:  # a helper's refusal ("srcgrad: no tangent ...") is raised at the user's line
        refused = refusal(exc, transform.pf)
        if refused is not None:
            raise refused from None
        raise


def transform_entry(entry: Callable[..., Any], transform: Transform, name: str) -> Callable[..., Any]:
    entry.__name__ = entry.__qualname__ = name
    entry.__srcgrad_transform__ = transform  # type: ignore[attr-defined]
    entry.__module__ = transform.func.__module__
    return entry


def grad_of_grad(entry: Callable[..., Any], wrt: Any, mode: str) -> Callable[..., Any]:
    """``grad(grad(f, wrt=a), wrt=b)`` for a scalar parameter a: reverse mode over the generated ``f_dd``, the
    tangent of f along a (1.0) — ordinary Python that srcgrad reads like any other function."""
    inner: Transform = entry.__srcgrad_transform__  # type: ignore[attr-defined]
    if inner.mode != "grad" or inner.as_tuple:
        raise InvalidArgument(
            f"grad of {entry.__name__} needs the gradient of a scalar function with respect to one parameter",
            hint="use srcgrad.hessian, srcgrad.hvp or srcgrad.jacobian for the general case")
    unit = ForwardTransform(inner.func, inner.wrt[0], "unit")
    outer = Transform(inner.func, wrt, mode)  # only to resolve and check wrt against f's parameters
    # kinds -> (reverse mode of f_dd, the f_dd variant)
    grads: dict[tuple[str, ...], tuple[Callable[..., Any], Any]] = {}
    lock = locks.lock()

    def reverse_of(key: tuple[str, ...], generated: Any) -> Callable[..., Any]:
        found = grads.get(key)
        if found is None or found[1] is not generated:
            with lock:
                found = grads.get(key)
                if found is None or found[1] is not generated:
                    wrt_spec = tuple(outer.wrt) if outer.as_tuple else outer.wrt[0]
                    grads[key] = (_decorator_or_call(generated.function, wrt_spec, mode, mode), generated)
                found = grads[key]
        return found[0]

    def second(*args: Any, **kwargs: Any) -> Any:
        values = unit.bind(args, kwargs)
        key = unit.kinds(values)
        generated = unit.specialise(values)  # (generated again when its guards fail)
        try:  # (reading the generated forward mode may refuse it too: named at the user's line as well)
            return call_generated(unit, reverse_of(key, generated), values, {})
        except SrcgradError as exc:  # about the generated forward mode: name the user's line it came from
            located = at_users_line(exc, unit.pf)
            if located is exc:
                raise
            raise located from None

    return transform_entry(second, outer, f"{inner.func.__name__}_{mode}2")


def at_users_line(exc: SrcgradError, pf: Any) -> SrcgradError:
    """``exc``, raised about generated code differentiated again, at the user's line it came from; a returned
    non-number at the return that gave it (the output is checked after the returns join)."""
    if isinstance(exc, NonNumericOutput) and exc.location is not None and exc.location.filename.startswith("<srcgrad "):
        return NonNumericOutput(exc.message, lower.return_location(pf), exc.hint)
    return at_user_line(exc, pf)


def _transform_of(func: Any) -> Transform:
    transform: Transform | None = getattr(func, "__srcgrad_transform__", None)
    if transform is None:
        raise InvalidArgument(
            f"{getattr(func, '__name__', func)!r} is not a function made by srcgrad.grad/value_and_grad/vjp",
            hint="pass the result of srcgrad.grad(f), e.g. srcgrad.source(srcgrad.grad(f))",
        )
    return transform


def source(func: Any, *example_args: Any, **example_kwargs: Any) -> str:
    """The generated Python source of a srcgrad function.

    With example arguments, the variant specialised to their kinds (Python float or array); otherwise the variant of
    the most recent call, or the general variant (valid for any kinds) when it has not been called yet. A notebook
    shows it highlighted (the result is a ``str`` with an HTML display).
    """
    transform = _transform_of(func)
    if example_args or example_kwargs:
        generated = transform.specialise(transform.bind(example_args, example_kwargs))
    else:
        generated = transform.last if transform.last is not None else transform.generic()
    return SourceText(generated.source)
