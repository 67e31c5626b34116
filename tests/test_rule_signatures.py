"""Every argument of every differentiated function is understood or refused, checked against the REAL signatures.

For each registered rule (and each ndarray method the lowering maps to one) this reads the signature of the function
itself — ``inspect.signature``; for numpy ufuncs ``nin``/``nout`` and the ufunc keywords; a short table for the few
builtins without one — and sorts each way of passing each parameter (by position, by keyword):

- *handled*: the rule takes it under numpy's name at numpy's position, with numpy's default, and some gradient case
  in ``tests/rule_cases.py`` passes it (so a gradient check covers it);
- *refused*: a call passing it is generated here, and generating its gradient raises a SrcgradError from the one place
  calls are bound to rules (``passes.bind_params``) — never an internal error, never a number.

A new rule (or a new numpy version with a new parameter) lands in one of the two automatically.
"""

from __future__ import annotations

import inspect
import math
import operator
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rule_cases_decomp
from module_files import load
from rule_cases import CASES

import srcgrad
from srcgrad import ir, lower, runtime
from srcgrad.errors import InternalError, SrcgradError
from srcgrad.rules import all_rules, lookup
from srcgrad.rules.registry import _display_name

P = inspect.Parameter
UFUNC_KEYWORDS = ("out", "where", "casting", "order", "dtype", "subok", "signature")
GUFUNC_KEYWORDS = ("axes", "axis", "keepdims")
# `**kwargs` of these functions: what numpy forwards through it.
FORWARDED_KEYWORDS = {
    np.clip: UFUNC_KEYWORDS, np.einsum: ("dtype", "order", "casting"),
    np.pad: (P("stat_length", P.KEYWORD_ONLY, default=None), P("constant_values", P.KEYWORD_ONLY, default=0),
             P("end_values", P.KEYWORD_ONLY, default=0), P("reflect_type", P.KEYWORD_ONLY, default="even")),
}


def _signature(*params: P) -> inspect.Signature:
    return inspect.Signature(list(params))


# Builtins without an introspectable signature, as their documentation writes them.
DOCUMENTED = {
    max: _signature(P("arg1", P.POSITIONAL_ONLY), P("arg2", P.POSITIONAL_ONLY), P("args", P.VAR_POSITIONAL),
                    P("key", P.KEYWORD_ONLY, default=None), P("default", P.KEYWORD_ONLY, default=None)),
    min: _signature(P("arg1", P.POSITIONAL_ONLY), P("arg2", P.POSITIONAL_ONLY), P("args", P.VAR_POSITIONAL),
                    P("key", P.KEYWORD_ONLY, default=None), P("default", P.KEYWORD_ONLY, default=None)),
    math.log: _signature(P("x", P.POSITIONAL_ONLY), P("base", P.POSITIONAL_ONLY, default=math.e)),
    math.hypot: _signature(P("coordinates", P.VAR_POSITIONAL)),
}
# Method parameters that are the function's under another name (x.clip(lo, hi) is np.clip(x, lo, hi)): by position
# they bind to the rule's parameter; by keyword (x.clip(min=lo)) the rule does not take them, so they are refused.
METHOD_ALIASES = {("clip", "min"): "a_min", ("clip", "max"): "a_max"}
# Keys that are not functions a user calls: syntax (displays, x.T) and srcgrad's own item assignment.
NOT_CALLED = {("display", "tuple"), ("display", "list"), ("attribute", "T"), runtime.setitem}


@dataclass(frozen=True)
class Callee:
    """One way the user's code reaches a rule: a function call or an ndarray method."""

    rule: object
    text: str  # how the probe calls it: "np.sum(" or "x.sum("
    real: inspect.Signature  # the real parameters, the receiver of a method excluded
    offset: int  # rule parameters before the first real one (a method's receiver)
    method: str = ""

    @property
    def id(self) -> str:
        return self.text.rstrip("(").replace("x.", "ndarray.")


def _real_signature(func) -> inspect.Signature:
    if isinstance(func, np.ufunc):
        params = [P(f"in{i}", P.POSITIONAL_ONLY) for i in range(func.nin)]
        params += [P(f"out{i}", P.POSITIONAL_ONLY, default=None) for i in range(func.nout)]
        keywords = UFUNC_KEYWORDS + (GUFUNC_KEYWORDS if func.signature else ())
        params += [P(k, P.KEYWORD_ONLY, default=None) for k in keywords]
        return _signature(*params)
    if func in DOCUMENTED:
        return DOCUMENTED[func]
    distribution = _distribution_signature(func)
    if distribution is not None:
        return distribution
    sig = inspect.signature(func)  # a rule for a function without one must add it to DOCUMENTED
    return _expand_kwargs(sig, FORWARDED_KEYWORDS.get(func, ()))


def _distribution_signature(func) -> inspect.Signature | None:
    """A method of a scipy distribution (``norm.logpdf(x, *args, **kwds)``) as scipy documents it: the point, the
    distribution's shape parameters (required), then ``loc=0`` (and ``scale=1`` when continuous)."""
    owner = getattr(func, "__self__", None)
    stats = sys.modules.get("scipy.stats")
    if stats is None or not isinstance(owner, (stats.rv_continuous, stats.rv_discrete)):
        return None
    params = [P("k" if isinstance(owner, stats.rv_discrete) else "x", P.POSITIONAL_OR_KEYWORD)]
    params += [P(s.strip(), P.POSITIONAL_OR_KEYWORD) for s in (owner.shapes or "").split(",") if s.strip()]
    params.append(P("loc", P.POSITIONAL_OR_KEYWORD, default=0))
    if isinstance(owner, stats.rv_continuous):
        params.append(P("scale", P.POSITIONAL_OR_KEYWORD, default=1))
    return _signature(*params)


def _expand_kwargs(sig: inspect.Signature, names) -> inspect.Signature:
    """``sig`` with its ``**kwargs`` replaced by keyword-only parameters (names, or Parameters with defaults)."""
    params = [p for p in sig.parameters.values() if p.kind is not P.VAR_KEYWORD]
    taken = {p.name for p in params}
    extra = [k if isinstance(k, P) else P(k, P.KEYWORD_ONLY, default=None) for k in names]
    params += [k.replace(kind=P.KEYWORD_ONLY) for k in extra if k.name not in taken]
    return _signature(*params)


def _method_signature(name: str, func) -> inspect.Signature:
    """``ndarray.NAME`` without ``self``; its ``**kwargs`` are the keyword parameters of the numpy function."""
    params = list(inspect.signature(getattr(np.ndarray, name)).parameters.values())[1:]
    sig = _signature(*params)
    if any(p.kind is P.VAR_KEYWORD for p in params) and not isinstance(func, str):
        extra = [p for p in inspect.signature(func).parameters.values()
                 if p.kind is P.KEYWORD_ONLY or p.default is not P.empty]
        return _expand_kwargs(sig, extra)
    return sig


def callees() -> list[Callee]:
    out = []
    for rule in all_rules():
        if rule.nondiff or rule.func in NOT_CALLED or _is_test_rule(rule) or isinstance(rule.func, tuple):
            continue
        text = "_runtime.as_tuple(" if rule.func is runtime.as_tuple else _call_name(rule) + "("
        try:
            real = _real_signature(rule.func)
        except ValueError:  # numpy < 2.3 gives some of its C functions (np.where) no signature
            UNREAD_FUNCTIONS.append(rule.name)
            continue
        out.append(Callee(rule, text, real, 0))
    for name, target in lower.METHODS.items():
        rule = lookup(target) if not isinstance(target, str) else lookup(("method", target))
        if rule is None or rule.nondiff:
            continue
        try:
            real = _method_signature(name, target)
        except ValueError:  # numpy < 2 gives its methods no signature
            UNREAD_METHODS.append(name)
            continue
        out.append(Callee(rule, f"x.{name}(", real, 1, method=name))
    return out


UNREAD_METHODS: list[str] = []
UNREAD_FUNCTIONS: list[str] = []
# numpy 2.5's eig returns complex arrays even for real eigenvalues: srcgrad refuses them, so no case can run here
UNCHECKABLE_HERE = set() if rule_cases_decomp.NUMPY_EIG_REAL else {np.linalg.eig, np.linalg.eigvals}


def _call_name(rule) -> str:
    """How the probes call the rule's function: scipy's by the public name the rule has (a distribution's method is
    a bound method; scipy.special's ufuncs name no module)."""
    return rule.name if rule.name.startswith("scipy.") else _display_name(rule.func)


def _is_test_rule(rule) -> bool:
    return rule.adjoint is not None and not rule.adjoint.__module__.startswith("srcgrad.")


CALLEES = callees()


# --- sorting each parameter ---------------------------------------------------------------------------------------


def _positional(sig: inspect.Signature) -> list[P]:
    return [p for p in sig.parameters.values() if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]


def _var_positional(sig: inspect.Signature) -> bool:
    return any(p.kind is P.VAR_POSITIONAL for p in sig.parameters.values())


def _packs_positionals(c: Callee) -> bool:
    # x.reshape(2, 3), max(a, b, c): the lowering packs them into one tuple
    return c.method in lower.VARARG_METHODS or (not c.method and any(c.rule.func is f for f in lower.PACKED_BUILTINS))


def forms(c: Callee) -> list[tuple[str, str, bool]]:
    """(parameter, how it is passed: "position i" / "keyword" / "extra positional", handled by the rule?)."""
    rule_sig = c.rule.signature
    rule_pos = _positional(rule_sig)[c.offset:]
    rule_names = {p.name for p in rule_sig.parameters.values() if p.kind is not P.POSITIONAL_ONLY}
    out = []
    for i, p in enumerate(_positional(c.real)):
        if p.kind is P.POSITIONAL_ONLY:  # its name is not part of the interface: the rule's may differ
            takes = i < len(rule_pos)
        else:
            takes = i < len(rule_pos) and rule_pos[i].name == METHOD_ALIASES.get((c.method, p.name), p.name)
        out.append((p.name, f"position {i}", takes))
        if p.kind is P.POSITIONAL_OR_KEYWORD:
            out.append((p.name, "keyword", p.name in rule_names))
    for p in c.real.parameters.values():
        if p.kind is P.KEYWORD_ONLY:
            out.append((p.name, "keyword", p.name in rule_names))
        elif p.kind is P.VAR_POSITIONAL:
            out.append((p.name, "extra positional", _var_positional(rule_sig) or _packs_positionals(c)))
    return out


def _probe_id(c: Callee, name: str, how: str) -> str:
    return f"{c.id}-{name}-{how.replace(' ', '')}"


HANDLED = [(c, n, h) for c in CALLEES for n, h, ok in forms(c) if ok]
REFUSED = [(c, n, h) for c in CALLEES for n, h, ok in forms(c) if not ok]


def test_every_method_signature_is_read():
    if UNREAD_METHODS and np.lib.NumpyVersion(np.__version__) < "2.3.0":
        pytest.skip(f"numpy {np.__version__} gives no signature to ndarray.{', .'.join(UNREAD_METHODS)}")
    assert not UNREAD_METHODS


def test_every_function_signature_is_read():
    if UNREAD_FUNCTIONS and np.lib.NumpyVersion(np.__version__) < "2.3.0":
        pytest.skip(f"numpy {np.__version__} gives no signature to {', '.join(UNREAD_FUNCTIONS)}")
    assert not UNREAD_FUNCTIONS


def test_every_rule_is_enumerated():
    """Every differentiable rule a user can call is in the table (a rule srcgrad adds appears without an edit)."""
    enumerated = {id(c.rule) for c in CALLEES}
    missing = [r.name for r in all_rules() if not r.nondiff and not _is_test_rule(r) and r.func not in NOT_CALLED
               and not isinstance(r.func, tuple) and id(r) not in enumerated and r.name not in UNREAD_FUNCTIONS]
    assert not missing
    assert len(HANDLED) > 200 and len(REFUSED) > 200  # the table reads real signatures, not a short list


@pytest.mark.parametrize("c", CALLEES, ids=[c.id for c in CALLEES])
def test_rule_parameters_are_the_functions(c):
    """Each rule parameter is a real parameter: numpy's name at numpy's position, numpy's default."""
    real_pos = _positional(c.real)
    real_named = {p.name: p for p in c.real.parameters.values() if p.kind is not P.POSITIONAL_ONLY}
    for i, p in enumerate(list(c.rule.signature.parameters.values())[c.offset:]):
        if p.kind is P.VAR_POSITIONAL:
            assert _var_positional(c.real), f"{c.id}: the rule takes *{p.name}, the function does not"
            continue
        if p.kind is P.KEYWORD_ONLY:
            real = real_named.get(p.name)
            assert real is not None, f"{c.id}: the rule's keyword `{p.name}` is not a parameter of the function"
        elif i < len(real_pos):
            real = real_pos[i]
            assert real.kind is P.POSITIONAL_ONLY or METHOD_ALIASES.get((c.method, real.name), real.name) == p.name, \
                f"{c.id}: position {i} is `{real.name}` in the function, `{p.name}` in the rule"
        else:
            assert _packs_positionals(c) or _var_positional(c.real), \
                f"{c.id}: the rule's `{p.name}` has no place in the function's signature"
            continue
        if p.default is not P.empty and real.default not in (P.empty, np._NoValue):
            assert _same(p.default, real.default), \
                f"{c.id}: `{p.name}` defaults to {p.default!r} in the rule, {real.default!r} in the function"


def _same(a, b) -> bool:
    return a is b or (type(a) is type(b) and a == b)


def _explicitly_passed() -> dict[int, set[str]]:
    """For every rule, the parameters some gradient case passes explicitly (by position or keyword)."""
    passed: dict[int, set[str]] = {}
    for case in CASES:
        for op in ir.walk_ops(srcgrad.graph(case.fn).function.body):
            if op.rule is not None and not op.rule.nondiff:
                bound = op.rule.signature.bind(*op.args, **dict(op.kwargs))
                passed.setdefault(id(op.rule), set()).update(bound.arguments)
    return passed


@pytest.fixture(scope="module")
def passed_in_cases():
    return _explicitly_passed()


@pytest.mark.parametrize("c", CALLEES, ids=[c.id for c in CALLEES])
def test_handled_parameters_have_gradient_cases(c, passed_in_cases):
    """A parameter the rule takes is exercised by a gradient check (tests/rule_cases.py) — of the function or of
    the method that shares its rule."""
    if c.method:
        return  # the method binds to the same rule parameters as the function, checked there
    if c.rule.func in UNCHECKABLE_HERE:
        pytest.skip(f"{c.id}: this numpy's results for it are complex (its cases need numpy < 2.5)")
    params = [p.name for p in c.rule.signature.parameters.values()]
    missing = [p for p in params if p not in passed_in_cases.get(id(c.rule), set())]
    assert not missing, f"{c.id}: no gradient case passes {missing}"


# --- refused: a generated call, and the error at generation ----------------------------------------------------------


def _call_text(c: Callee, name: str, how: str) -> str:
    """A call of ``c`` whose arguments are all the differentiated ``x``, passing ``name`` as ``how``."""
    required = [p for p in _positional(c.rule.signature)[c.offset:] if p.default is P.empty]
    if how.startswith("position"):
        n = int(how.split()[1]) + 1
        args = ["x"] * n
    elif how == "extra positional":
        args = ["x"] * (len(_positional(c.rule.signature)) - c.offset + 1)
    else:
        args = ["x"] * len(required) + [f"{name}=x"]
    return c.text + ", ".join(args) + ")"


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    lines = ["import math", "import operator", "import numpy as np", "from srcgrad import runtime as _runtime"]
    scipy = ("scipy.special", "scipy.stats", "scipy.linalg", "scipy.signal")
    lines += [f"import {m}" for m in scipy if m in sys.modules]
    lines.append("")
    for i, (c, name, how) in enumerate(REFUSED):
        lines += [f"def probe_{i}(x):", f"    return {_call_text(c, name, how)}", ""]
    return load(Path(tmp_path_factory.mktemp("probes")) / "signature_probes.py", "\n".join(lines))


@pytest.mark.parametrize("index", range(len(REFUSED)), ids=[_probe_id(*r) for r in REFUSED])
def test_unsupported_argument_is_refused_at_generation(index, probes):
    c, name, how = REFUSED[index]
    probe = getattr(probes, f"probe_{index}")
    x = 1.5 if c.rule.out_kind == "scalar" else np.ones(3)
    with pytest.raises(SrcgradError) as info:
        srcgrad.value_and_grad(probe)(x)
    assert not isinstance(info.value, InternalError), str(info.value)
    message = str(info.value)
    assert "does not accept these arguments" in message, message
    assert f"signature_probes.py:{probes.__dict__[f'probe_{index}'].__code__.co_firstlineno + 1}:" in message


def test_a_rule_missing_a_parameter_is_caught():
    """The sorting is not vacuous: a rule that forgot numpy's `axis` shows up as refusing it, and one that renamed a
    parameter fails the name check."""
    def renamed(g, ans, a, axes=None):
        return g

    rule_sig = inspect.Signature(list(inspect.signature(renamed).parameters.values())[2:])
    fake = type("FakeRule", (), {"signature": rule_sig})()
    c = Callee(fake, "np.cumsum(", _real_signature(np.cumsum), 0)
    handled = {(n, h) for n, h, ok in forms(c) if ok}
    assert ("axis", "keyword") not in handled and ("axis", "position 1") not in handled
    assert ("a", "position 0") in handled
    with pytest.raises(AssertionError, match="position 1 is `axis`"):
        test_rule_parameters_are_the_functions(c)


def test_operator_rules_take_operator_positions():
    """Positional-only parameters (operator.add(a, b, /)) match by position: the rule's names are its own."""
    c = next(c for c in CALLEES if c.rule is lookup(operator.add))
    assert [(n, h) for n, h, ok in forms(c)] == [("a", "position 0"), ("b", "position 1")]
    assert all(ok for _, _, ok in forms(c))


# --- forward rules take the same parameters ---------------------------------------------------------------------------


def test_forward_rules_take_their_reverse_rules_parameters():
    """An explicit tangent rule (defjvp) is bound through its reverse rule's signature: it must take exactly those
    parameters, with the same defaults, plus ``ans`` and ``<p>_dot`` for each differentiated parameter."""
    for rule in all_rules():
        jvp = rule.jvp
        if jvp is None or _is_test_rule(rule):
            continue
        params = inspect.signature(jvp).parameters
        dots = {f"{p}_dot" for p in rule.wrt}
        assert dots | {"ans"} <= set(params), f"{rule.name}: the tangent rule lacks {dots | {'ans'} - set(params)}"
        rest = {n: p for n, p in params.items() if n not in dots and n != "ans"}
        assert list(rest) == list(rule.signature.parameters), f"{rule.name}: {list(rest)} vs {rule.signature}"
        for name, p in rest.items():
            assert _same(p.default, rule.signature.parameters[name].default), f"{rule.name}: default of `{name}`"
