"""The derivative-rule table.

In: ordinary Python functions ``rule(g, ans, *params)`` that return the contribution of the output adjoint ``g`` to
each differentiable parameter (a tuple when there are several), registered with :func:`defgrad` against the primitive
they differentiate (``math.sin``, ``np.sum``, ``operator.mul`` or a user's own function).
Out: :class:`Rule` records, looked up by the primitive object.

What holds: rules for optional libraries (scipy) are in modules imported once the library itself is (see
:func:`optional_rules`): importing srcgrad never imports them, and a call of the library finds its rule. The
built-in rules' modules are imported with srcgrad (by srcgrad/rules/__init__.py, before any rule of the user's), and
registering one is cheap: a built-in rule's signature is made at its first read (:class:`_Declared`) and its text
parsed at its first use (its file's lines are kept as they were when it registered).
A rule is runnable Python (call it to test it); the code generator inlines a rule whose body is a single
``return`` expression, substituting the call's operands for the parameter names, and calls the function otherwise
(also when the rule's file changed since it was imported: the text there is not the rule's code any more).
Broadcasting is undone centrally by the adjoint stage for rules registered with ``broadcast=True``, never in the rule.

Every fact srcgrad uses about a primitive is a field of its :class:`Rule`, declared where the rule is (``defgrad``'s
keywords, ``defjvp``): no other module keeps a table of primitives or compares rule names. The fields and their
defaults are listed in :data:`PROPERTIES`; tests/test_primitive_declarations.py checks every rule's against numpy.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import linecache
import os
import sys
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import field
from typing import Any, Literal

import numpy as np

from srcgrad import codereading, freshness, locks
from srcgrad.records import record

OutKind = Literal["scalar", "array", "same", "callee"]
# How a primitive's tangent follows from its operands' tangents (see srcgrad.rules.forward)
ForwardKind = Literal["elementwise", "linear", "multilinear", "reduction", "explicit"]
# A fact that may depend on the call: True/False, or a function of the call's bound parameters (IR operands by name)
CallFact = bool | Callable[[dict[str, Any]], bool]

# Every declared property of a primitive, with what it means when not declared.
PROPERTIES = {
    "adjoint": "the reverse rule (defgrad's decorated function; none for a nondifferentiable primitive)",
    "wrt": "the differentiable parameters (default: those without a default value)",
    "discrete": "parameters the result is piecewise constant in (default: none)",
    "broadcast": "broadcasts its differentiable arguments elementwise (default: False)",
    "out_kind": "the result is 'scalar' (a Python number), 'same' (as its operands), 'callee' (what srcgrad reads "
                "from the function's own source) or an 'array' (default)",
    "forward": "forward-mode kind (default: 'elementwise' for a ufunc or broadcast=True, 'explicit' with defjvp, "
               "else none: forward mode is refused)",
    "view": "the result may share memory with an argument (default: False)",
    "float_valued": "the result is never bool or integer, whatever the arguments (default: False)",
    "full_reduction": "the result is one number made from every element (default: False)",
    "uniform": "over all axes, each element's adjoint is g ('sum') or g / size ('mean') (default: neither)",
    "raises": "raises on some inputs where numpy would only warn, so an unused call is kept (default: out_kind is "
              "'scalar': Python numbers)",
}


class _Declared:
    """A rule's ``signature`` or ``wrt``, made from its adjoint's parameters at the first read when the rule was
    registered without them (srcgrad's own rules: some 300 signatures made at import would cost a good part of
    ``import srcgrad``; a test reads every one, so a wrong declaration still fails the suite)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = "_" + name

    def __get__(self, rule: Any, owner: Any = None) -> Any:
        if rule is None:
            return None  # (the dataclass's default: declared later)
        held = rule.__dict__.get(self.key)
        if held is None:
            rule.declare()
            held = rule.__dict__[self.key]
        return held

    def __set__(self, rule: Any, value: Any) -> None:
        rule.__dict__[self.key] = value


@record(eq=False)
class Rule:
    """How srcgrad differentiates one primitive."""

    func: Any
    name: str
    signature: inspect.Signature = _Declared()  # type: ignore[assignment]
    wrt: tuple[str, ...] = _Declared()  # type: ignore[assignment]
    adjoint: Callable | None = None
    scalar_adjoint: Callable | None = None
    broadcast: bool = False
    out_kind: OutKind = "array"
    nondiff: bool = False
    # Parameters the result is piecewise constant in (counts, shapes, axes, dtypes, indices, conditions, flags): a
    # differentiated value may enter them and contributes nothing. A parameter in neither ``wrt`` nor ``discrete``
    # refuses a differentiated value (the analysis of activity checks it). A ``nondiff`` rule is discrete in all.
    discrete: tuple[str, ...] = ()
    # The result may share memory with an argument (a numpy view, or the argument itself): then an in-place update
    # of either name is seen through the other, which srcgrad's new arrays would not do (passes.check_inplace_updates
    # refuses it). True, or a function of the bound parameters (IR operands) for a call that returns a view only for
    # some arguments (``np.nan_to_num(x, copy=False)``).
    view: CallFact = False
    # forward mode (see srcgrad.rules.forward): the kind, and for "explicit" the tangent rule (defjvp)
    forward: ForwardKind | None = None
    jvp: Callable | None = None
    # the result is never bool or integer (np.exp, math.sqrt): code generation may drop `1.0 *` before it
    float_valued: bool = False
    # the result is one number made from every element of its argument (np.sum(x), np.vdot(a, b))
    full_reduction: CallFact = False
    # a full reduction whose adjoint is the same number for every element: g ("sum") or g / size ("mean")
    uniform: Literal["sum", "mean"] | None = None
    # raises on some inputs where numpy only warns (math.log(-1), 1 / 0, float(a)): kept even when unused, so the
    # gradient fails where the function does
    raises: CallFact = False
    _inline_cache: dict = field(default_factory=dict, repr=False)
    # (defgrad's wrt and discrete, when ``signature`` and ``wrt`` are made at their first read: see _Declared)
    declared: tuple | None = field(default=None, repr=False)

    def declare(self) -> None:
        """Make ``signature`` and ``wrt`` from the adjoint's parameters and the declaration."""
        if self.adjoint is None or self.declared is None:
            raise AttributeError(f"the rule for {self.name} has no signature")
        self.signature, self.wrt = _declaration(self.adjoint, *self.declared)

    def holds(self, fact: str, params: dict[str, Any]) -> bool:
        """A :data:`CallFact` field (``view``, ``full_reduction``, ``raises``) for a call with these bound
        parameters."""
        value = getattr(self, fact)
        return value if isinstance(value, bool) else bool(value(params))

    def adjoint_for(self, all_scalar: bool) -> Callable | None:
        if all_scalar and self.scalar_adjoint is not None:
            return self.scalar_adjoint
        return self.adjoint

    def inline_exprs(self, adjoint: Callable) -> tuple[ast.expr, ...] | None:
        """The per-parameter return expressions of ``adjoint`` when its body is a single return, else None."""
        key = id(adjoint)
        if key not in self._inline_cache:
            self._inline_cache[key] = _single_return_exprs(adjoint, len(self.wrt))
        return self._inline_cache[key]


_RULES: dict[Any, Rule] = {}


def _key(func: Any) -> Any:
    try:
        hash(func)
        return func
    except TypeError:
        return id(func)


def lookup(func: Any) -> Rule | None:
    """The rule registered for ``func``, or None. (A method of an object, ``scipy.stats.norm.logpdf``, is a new
    object at every read; they are equal and hash alike when they bind the same function to the same instance.)"""
    try:
        rule = _RULES.get(_key(func))
    except TypeError:
        return None
    if rule is None and _OPTIONAL and _load_optional_rules():
        return lookup(func)
    return rule


# library module -> the srcgrad module with its rules, until imported; see optional_rules
_OPTIONAL: dict[str, str] = {}
_OPTIONAL_LOCK = locks.rlock()


def optional_rules(library: str, rules_module: str) -> None:
    """Import ``rules_module`` (which registers rules for ``library``) as soon as ``library`` has been imported.

    A function of the library reaches srcgrad only after the user's code imported the library: the rules load at
    the first lookup that misses after that, and importing srcgrad costs nothing for libraries not in use."""
    _OPTIONAL[library] = rules_module
    _load_optional_rules()


def _load_optional_rules() -> bool:
    """Import the rule modules whose library is imported now; whether any was."""
    with _OPTIONAL_LOCK:
        ready = [library for library in _OPTIONAL if library in sys.modules]
        for library in ready:
            module = _OPTIONAL.pop(library, None)
            if module is None:  # (imported meanwhile: a rule module's own lookups load the others)
                continue
            try:
                importlib.import_module(module)
            except (ImportError, AttributeError) as exc:  # a library version without a function the rules name
                warnings.warn(f"srcgrad: the rules for {library} could not be registered ({exc})", stacklevel=2)
        return bool(ready)


def _declaration(adjoint: Callable, wrt: tuple[str, ...] | None, discrete: tuple[str, ...]
                 ) -> tuple[inspect.Signature, tuple[str, ...]]:
    """The primitive's signature (the adjoint's, without ``g`` and ``ans``) and the differentiated parameters; a
    TypeError for a declaration that does not fit them."""
    sig = _primal_signature(adjoint)
    names = tuple(wrt) if wrt is not None else tuple(
        p.name for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    missing = [n for n in names + tuple(discrete) if n not in sig.parameters]
    if missing:
        raise TypeError(f"defgrad: wrt or discrete names {missing} are not parameters of {adjoint.__qualname__}")
    both = sorted(set(names) & set(discrete))
    if both:
        raise TypeError(f"defgrad: {both} are declared both differentiable (wrt) and discrete")
    return sig, names


def _primal_signature(adjoint: Callable) -> inspect.Signature:
    params = list(codereading.signature_of(adjoint).parameters.values())
    if len(params) < 2 or [p.name for p in params[:2]] != ["g", "ans"]:
        raise TypeError(f"a derivative rule must start with parameters (g, ans, ...): {adjoint.__qualname__}")
    return inspect.Signature(params[2:])


def defgrad(
    func: Any,
    *,
    wrt: tuple[str, ...] | None = None,
    broadcast: bool = False,
    out_kind: OutKind = "array",
    name: str | None = None,
    scalar: bool = False,
    discrete: tuple[str, ...] = (),
    view: CallFact = False,
    forward: ForwardKind | None = None,
    float_valued: bool = False,
    full_reduction: CallFact = False,
    uniform: Literal["sum", "mean"] | None = None,
    raises: CallFact | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the derivative of ``func``; srcgrad then treats ``func`` as a primitive.

    The decorated function takes ``(g, ans, *params)`` — the adjoint of the output, the output itself, then the
    parameters of ``func`` with the same names and defaults — and returns the contribution to each differentiable
    parameter (``wrt``; by default every parameter without a default value), as a tuple when there are several.

    ``broadcast=True`` says ``func`` broadcasts its differentiable arguments (numpy elementwise semantics); srcgrad then
    sums each contribution back to its argument's shape. ``scalar=True`` registers a variant used when every argument
    is a Python number (it may use ``math`` instead of numpy).

    ``discrete`` names the parameters outside ``wrt`` that ``func`` is piecewise constant in (an axis, a shape, a
    count, a dtype, an index, a condition): a differentiated value passed there contributes no gradient. A
    differentiated value passed to any other parameter outside ``wrt`` is refused with an error at that call, since
    the result may depend on it smoothly.

    ``view=True`` says the result may share memory with an argument (``np.reshape``, ``np.rot90`` return views):
    srcgrad then refuses an in-place update (``y += 1``) of the result where it would be seen through the argument.

    ``forward`` names how the tangent follows (``"linear"``: the function applied to the tangents; ``"multilinear"``:
    one such term per differentiated operand; ``"reduction"``: ``sum(partials * a_dot, axis)`` with the partials
    from this rule at ``g = 1``; ``"elementwise"``: this rule with ``g`` replaced by each tangent, the default for a
    ufunc or ``broadcast=True``); or declare a tangent rule with :func:`defjvp`. The other facts (``float_valued``,
    ``full_reduction``, ``uniform``, ``raises``) are described in :data:`PROPERTIES`; ``view``, ``full_reduction``
    and ``raises`` may be functions of the call's bound parameters.

    Example::

        def softplus(x):
            return np.logaddexp(0.0, x)

        @srcgrad.defgrad(softplus)
        def softplus_grad(g, ans, x):
            return g / (1.0 + np.exp(-x))
    """

    def register(adjoint: Callable) -> Callable:
        if _keep_text_for_later(adjoint):  # srcgrad's own rules: read at first use (tests check every one)
            sig, names = None, None
        else:
            sig, names = _declaration(adjoint, wrt, tuple(discrete))
            check_returned_count(adjoint, names)
        existing = lookup(func)
        if scalar:
            if existing is None:
                raise TypeError("defgrad(scalar=True) needs the general rule registered first")
            existing.scalar_adjoint = adjoint
            return adjoint
        elementwise = broadcast or isinstance(func, np.ufunc)
        _register(Rule(
            func=func,
            name=name or _display_name(func),
            signature=sig,
            wrt=names,
            adjoint=adjoint,
            broadcast=broadcast,
            out_kind=out_kind,
            discrete=tuple(discrete),
            view=view,
            forward=forward or ("elementwise" if elementwise else None),
            float_valued=float_valued,
            full_reduction=full_reduction,
            uniform=uniform,
            raises=out_kind == "scalar" if raises is None else raises,
            declared=(wrt, tuple(discrete)),
        ), existing)
        return adjoint

    return register


def nondifferentiable(func: Any = None, *, name: str | None = None, out_kind: OutKind = "array",
                      raises: bool | None = None) -> Any:
    """Mark ``func`` as having no gradient: its result is treated as a constant (like ``np.floor`` or ``len``).

    This declares ``func`` piecewise constant in every argument (a count, a shape, a comparison): a differentiated
    value passed to it contributes nothing. A function whose result depends smoothly on some argument (``np.full``'s
    fill value, ``np.linspace``'s ends) needs a rule for it instead, or no registration at all (then a
    differentiated value reaching it is refused).

    Usable as ``srcgrad.nondifferentiable(f)`` or as a decorator ``@srcgrad.nondifferentiable``. ``raises``: as
    for :func:`defgrad`.
    """

    def mark(f: Any) -> Any:
        _RULES[_key(f)] = Rule(
            func=f, name=name or _display_name(f), signature=inspect.Signature(), wrt=(), nondiff=True,
            out_kind=out_kind, raises=out_kind == "scalar" if raises is None else raises,
        )
        return f

    return mark(func) if func is not None else mark


# tangent rules declared (defjvp) before their primitive's reverse rule, until it is registered
_PENDING_JVP: dict[Any, Callable] = {}


def _register(rule: Rule, previous: Rule | None) -> None:
    """Store ``rule``; a tangent rule declared for the primitive before (or for the rule it replaces) stays."""
    jvp = _PENDING_JVP.pop(_key(rule.func), None) or (previous.jvp if previous is not None else None)
    if jvp is not None:
        rule.forward, rule.jvp = "explicit", jvp
    _RULES[_key(rule.func)] = rule


def defjvp(func: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the forward-mode (tangent) rule of ``func``, next to its reverse rule (:func:`defgrad`).

    The decorated function's parameters are named after what it receives: ``ans`` (the output), the parameters of
    ``func``, and ``<name>_dot`` (the tangent of each differentiable parameter); it returns the output's tangent::

        @srcgrad.defjvp(softplus)
        def softplus_jvp(x_dot, ans, x):
            return x_dot / (1.0 + np.exp(-x))
    """

    def register(rule_fn: Callable) -> Callable:
        rule = _RULES.get(_key(func))
        if rule is None:
            _PENDING_JVP[_key(func)] = rule_fn
        else:
            rule.forward, rule.jvp = "explicit", rule_fn
        return rule_fn

    return register


def _display_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or ""
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    if module.startswith("numpy"):  # np.sum, np.linalg.inv (private submodules like numpy._core are dropped)
        public = [part for part in module.split(".")[1:] if not part.startswith("_")]
        return ".".join(["np", *public, qual])
    if module in ("math", "_operator", "operator", "builtins"):
        return qual if module == "builtins" else f"{module.lstrip('_')}.{qual}"
    return f"{module}.{qual}" if module else qual


def _single_return_exprs(adjoint: Callable, n_wrt: int) -> tuple[ast.expr, ...] | None:
    """The per-parameter expressions of a single-return reverse rule (``return a, b`` for two), else None."""
    value = single_return(adjoint)
    if value is None:
        return None
    if n_wrt == 1:
        return (value,)
    if isinstance(value, ast.Tuple) and len(value.elts) == n_wrt:
        return tuple(value.elts)
    return None


def single_return(rule_fn: Callable) -> ast.expr | None:
    """The returned expression of a rule function whose body is one ``return`` (string constants aside), else None.

    The text is the one read when the rule was registered, right after its definition ran (its module being
    imported, or the user's cell run), which is its code's. Without it, the text is read from the file now and
    checked: when the file changed since (an edit while the process runs), it is not the rule's any more, and None
    says the rule is called instead of inlined.
    """
    returned = _RETURNED_AT_REGISTRATION.get(id(rule_fn))
    if returned is not None and returned[0] is rule_fn:
        return returned[1]
    kept = _LINES_AT_REGISTRATION.get(id(rule_fn))
    if kept is not None and kept[0] is rule_fn and id(rule_fn) not in _TEXT_AT_REGISTRATION:
        # (srcgrad's own rule, whose text was kept: the returned expression alone is parsed, where the code's
        # positions place it; the whole definition only when they do not say)
        value = codereading.returned_expression(rule_fn.__code__, kept[1])
        if value is not None:
            _RETURNED_AT_REGISTRATION[id(rule_fn)] = (rule_fn, value)
            return value
    known = _text_at_registration(rule_fn)
    if known is not None:
        fn = known
    else:
        source = freshness.fresh_source(rule_fn)
        if source is None:
            return None
        fn = ast.parse(textwrap.dedent(source)).body[0]
    body = [s for s in getattr(fn, "body", []) if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    if isinstance(fn, ast.FunctionDef) and len(body) == 1 and isinstance(body[0], ast.Return):
        return body[0].value
    return None


# id(rule function) -> (the function, its parsed definition), read as it was registered.
_TEXT_AT_REGISTRATION: dict[int, tuple[Callable, ast.stmt]] = {}
# id(rule function) -> (the function, the expression its one return statement returns), parsed alone.
_RETURNED_AT_REGISTRATION: dict[int, tuple[Callable, ast.expr]] = {}
# id(rule function) -> (the function, its file's lines as they were at registration): srcgrad's own rules, whose
# text is parsed at first use (parsing some 200 rules at import would cost most of ``import srcgrad``'s time).
_LINES_AT_REGISTRATION: dict[int, tuple[Callable, list[str]]] = {}
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _keep_text_for_later(rule_fn: Callable) -> bool:
    """For a rule defined in one of srcgrad's own files: keep that file's lines (linecache's, read once per file)
    for :func:`_text_at_registration` to parse at first use, instead of parsing the rule's text now. (A user's rule
    is parsed at registration: its returned count is checked there, and a notebook cell's text may change.)"""
    kept = _LINES_AT_REGISTRATION.get(id(rule_fn))
    if kept is not None and kept[0] is rule_fn:  # (a rule of a table: rule_function kept its text)
        return True
    code = getattr(rule_fn, "__code__", None)
    filename = getattr(code, "co_filename", "")
    if not filename.startswith(_PACKAGE_DIR + os.sep) or not filename.endswith(".py"):
        return False
    lines = linecache.getlines(filename)
    if not lines:
        return False
    _LINES_AT_REGISTRATION[id(rule_fn)] = (rule_fn, lines)
    return True


def _text_at_registration(rule_fn: Callable) -> ast.stmt | None:
    """The parsed definition of ``rule_fn`` as its text was when it was registered, or None when none was kept."""
    known = _TEXT_AT_REGISTRATION.get(id(rule_fn))
    if known is not None and known[0] is rule_fn:
        return known[1]
    kept = _LINES_AT_REGISTRATION.get(id(rule_fn))
    if kept is None or kept[0] is not rule_fn:
        return None
    try:
        first = rule_fn.__code__.co_firstlineno - 1
        end = freshness.block_end(rule_fn.__code__, kept[1], first)  # (no tokenizer: see freshness)
        block = kept[1][first:end] if end is not None else inspect.getblock(kept[1][first:])
        fn = ast.parse(textwrap.dedent("".join(block))).body[0]
    except (SyntaxError, IndexError, IndentationError):
        return None
    if not isinstance(fn, ast.FunctionDef) or fn.name != rule_fn.__name__:
        return None
    _TEXT_AT_REGISTRATION[id(rule_fn)] = (rule_fn, fn)
    return fn


def rule_function(namespace: dict[str, Any], name: str, params: str, returns: str) -> Callable:
    """``def <name>(<params>): return <returns>``, defined in the module whose globals are ``namespace``: a rule (or
    tangent rule) of a table of rules that differ only in names (tests/rule_cases check each like any other).

    Its text is kept as a written rule's is at registration, so it is inlined the same way; :mod:`linecache` serves
    it (under a name in the module's directory, ``<module.name>``) to tracebacks and :mod:`inspect`."""
    source = f"def {name}({params}):\n    return {returns}\n"
    filename = os.path.join(os.path.dirname(namespace["__file__"]), f"<{namespace['__name__']}.{name}>")
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    scope: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), namespace, scope)
    function = scope[name]
    _LINES_AT_REGISTRATION[id(function)] = (function, lines)  # (parsed at first use, as a written rule's text)
    return function


def check_returned_count(adjoint: Callable, wrt: tuple[str, ...]) -> None:
    """A TypeError when a single-return rule returns a tuple display of another length than ``wrt`` (of two or more
    names). Reads the rule's text (kept for :func:`single_return` when read here, at registration)."""
    returned = _returned_tuple_length(adjoint)
    if returned is not None and returned != len(wrt) and len(wrt) > 1:
        raise TypeError(f"defgrad: {adjoint.__qualname__} returns {returned} contributions but wrt names "
                        f"{len(wrt)} parameters {list(wrt)}")


def _returned_tuple_length(adjoint: Callable) -> int | None:
    """How many contributions a single-return rule returns (None when it is not a tuple display)."""
    if _text_at_registration(adjoint) is None:
        try:
            fn = ast.parse(textwrap.dedent(inspect.getsource(adjoint))).body[0]
        except (OSError, TypeError, SyntaxError, IndexError):
            return None
        _TEXT_AT_REGISTRATION[id(adjoint)] = (adjoint, fn)
    value = single_return(adjoint)
    return len(value.elts) if isinstance(value, ast.Tuple) else None


def all_rules() -> list[Rule]:
    """Every registered rule, in registration order (with those of the optional libraries imported now)."""
    _load_optional_rules()
    return list(_RULES.values())
