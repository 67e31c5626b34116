"""srcgrad differentiates the text of the code a function runs, never a newer text of its file (srcgrad/freshness.py).

A module edited after it was imported (a notebook that does not reload what it edits) holds text its functions do not
run: srcgrad refuses them, naming the file and the function. Edits that leave the function's code alone (lines added
above it, another function changed) are not refusals: the function is read where the file now holds it. Functions
this very module defines — pytest rewrites its asserts — closures, methods and decorated functions pass the check.
Built-in rules whose file changed are called instead of inlined (linecache is patched: srcgrad's files are never
edited here).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import linecache
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from module_files import edit, load

import srcgrad
from srcgrad import cache, freshness
from srcgrad.rules import registry
from srcgrad.testing import check_grad, numerical_grad

_names = itertools.count()


@pytest.fixture
def no_disk_cache(monkeypatch):
    monkeypatch.setattr(cache, "_override", {"enabled": False})


MODEL = '''\
import math


def helper(x):
    return math.sin(x) * x


def f(x):
    return x * x * 3.0 + helper(x)


def other(x):
    return x + 1.0
'''


# The same functions as methods (static: no self), whose blocks do not compile alone.
CLASS_MODEL = "import math\n\n\nclass Model:\n" + textwrap.indent(MODEL.replace("import math\n", ""), "    ").replace(
    "    def ", "    @staticmethod\n    def ")


# --- an edited module ----------------------------------------------------------------------------------------------


def test_edited_function_is_refused_naming_file_and_function(tmp_path):
    path = tmp_path / "notebook_model.py"
    module = load(path, MODEL)
    edit(path, MODEL.replace("x * x * 3.0", "x * x * 4.0"))
    with pytest.raises(srcgrad.SourceUnavailable) as info:
        srcgrad.grad(module.f)
    text = str(info.value)
    assert "notebook_model.py" in text and "f was defined" in text and "changed" in text
    assert info.value.location.filename == str(path) and info.value.location.line == 8
    assert "importlib.reload" in info.value.hint


def test_unedited_module_works(tmp_path):
    module = load(tmp_path / "model.py", MODEL)
    check_grad(module.f, 0.7)
    assert srcgrad.grad(module.f)(0.7) == pytest.approx(numerical_grad(module.f, (0.7,), 0))


def test_reloaded_module_works(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"freshness_case_{next(_names)}"
    path = tmp_path / f"{name}.py"
    path.write_text(MODEL)
    module = importlib.import_module(name)
    edit(path, MODEL.replace("x * x * 3.0", "x * x * 4.0"))
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
    module = importlib.reload(module)
    check_grad(module.f, 0.7)
    assert srcgrad.grad(module.f)(1.0) == pytest.approx(8.0 + math.sin(1.0) + math.cos(1.0))


def test_edited_helper_is_refused(tmp_path):
    path = tmp_path / "model.py"
    module = load(path, MODEL)
    edit(path, MODEL.replace("math.sin(x) * x", "math.cos(x) * x"))
    with pytest.raises(srcgrad.SourceUnavailable, match="helper was defined"):
        srcgrad.grad(module.f)(0.7)  # the helper's source is read when the gradient is generated


def test_edited_lambda_inside_is_refused(tmp_path):
    text = "def f(x):\n    g = lambda t: t * 2.0\n    return g(x) * x\n"
    path = tmp_path / "model.py"
    module = load(path, text)
    edit(path, text.replace("t * 2.0", "t * 3.0"))
    with pytest.raises(srcgrad.SourceUnavailable, match="model.py changed"):
        srcgrad.grad(module.f)


def test_file_that_no_longer_compiles_is_refused(tmp_path):
    path = tmp_path / "model.py"
    module = load(path, CLASS_MODEL)
    edit(path, CLASS_MODEL + "\ndef broken(:\n")
    with pytest.raises(srcgrad.SourceUnavailable, match="model.py changed"):
        srcgrad.grad(module.Model.other)


def test_a_top_level_function_is_read_from_its_own_block(tmp_path):
    # Its block alone compiles to its code: the rest of the file may be anything, even broken, without a refusal.
    path = tmp_path / "model.py"
    module = load(path, MODEL)
    edit(path, MODEL + "\ndef broken(:\n")
    check_grad(module.other, 0.7)


# --- edits that leave the function alone ---------------------------------------------------------------------------
# Only the code of the functions srcgrad reads must match: line numbers are not compared, and the function is read
# where the file now holds it (inspect would read the old line number of the new text).


def test_lines_added_above_the_function(tmp_path, no_disk_cache):
    path = tmp_path / "shifted.py"
    module = load(path, MODEL)
    edit(path, "# a note\n# another\n\n" + MODEL)
    check_grad(module.f, 0.7)
    assert "(shifted.py:11)" in srcgrad.source(srcgrad.grad(module.f), 0.7)  # f's line in the file as it is now


def test_lines_removed_above_the_function(tmp_path):
    path = tmp_path / "model.py"
    module = load(path, "# a note\n\n" * 6 + MODEL)
    edit(path, MODEL)
    check_grad(module.f, 0.7)


def test_unrelated_function_edited(tmp_path):
    path = tmp_path / "model.py"
    module = load(path, MODEL)
    edit(path, MODEL.replace("x + 1.0", "x + 2.0"))
    check_grad(module.f, 0.7)
    with pytest.raises(srcgrad.SourceUnavailable):
        srcgrad.grad(module.other)


def test_future_annotations_module(tmp_path):
    text = "from __future__ import annotations\n\n\ndef f(x: float, k: int = 2) -> float:\n    return x ** k\n"
    path = tmp_path / "model.py"
    module = load(path, text)
    check_grad(module.f, 1.3)
    edit(path, text.replace("x ** k", "x ** k * 2.0"))
    with pytest.raises(srcgrad.SourceUnavailable):
        srcgrad.grad(module.f)


def test_compiled_file_is_reused(tmp_path):
    # Methods are not top-level functions: their file is compiled whole, once.
    module = load(tmp_path / "model.py", CLASS_MODEL)
    srcgrad.grad(module.Model.f)
    key = (module.Model.f.__code__.co_filename, 0)
    compiled = freshness._modules[key]
    srcgrad.grad(module.Model.f)
    srcgrad.grad(module.Model.other)
    assert freshness._modules[key] is compiled


# --- text registered in linecache (exec, IPython cells) ------------------------------------------------------------


def test_exec_with_linecache(monkeypatch):
    name = "<freshness cell 1>"
    text = "def cell(x):\n    return x * x * 5.0\n"
    monkeypatch.setitem(linecache.cache, name, (len(text), None, text.splitlines(True), name))
    namespace: dict = {}
    exec(compile(text, name, "exec"), namespace)
    assert srcgrad.grad(namespace["cell"])(2.0) == pytest.approx(20.0)
    replaced = text.replace("5.0", "6.0")
    monkeypatch.setitem(linecache.cache, name, (len(replaced), None, replaced.splitlines(True), name))
    with pytest.raises(srcgrad.SourceUnavailable):
        srcgrad.grad(namespace["cell"])


def test_future_flags_inherited_from_an_earlier_cell(monkeypatch):
    # IPython compiles a cell with the __future__ flags of earlier cells: annotations stay strings without an import.
    import __future__

    name = "<freshness cell 2>"
    text = "def cell(x):\n    scale: float = 2.0\n    return x * scale\n"
    monkeypatch.setitem(linecache.cache, name, (len(text), None, text.splitlines(True), name))
    namespace: dict = {}
    exec(compile(text, name, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True), namespace)
    assert srcgrad.grad(namespace["cell"])(2.0) == pytest.approx(2.0)


# --- functions of this (assertion-rewritten) test module -----------------------------------------------------------


def with_assert(x):
    assert x > 0.0, "positive only"
    return x * math.log(x)


def make_scaled(k):
    def scaled(x):
        g = lambda t: t * k  # noqa: E731
        return g(x) * math.sin(x)
    return scaled


class Model:
    def energy(self, x):
        return 2.5 * x * x

    @staticmethod
    def static(x):
        return x ** 3


def registering(func):
    registering.seen = func
    return func


def doubled(func):
    @functools.wraps(func)
    def wrapper(x):
        return 2.0 * func(x)
    return wrapper


@registering
def decorated(x):
    return math.exp(x) * x


@doubled
def wrapped(x):
    return x * x


def annotated(x: float, n: int = 3) -> float:
    return x ** n


def test_function_with_assert_in_a_test_module():
    check_grad(with_assert, 1.5)


def test_closure_with_lambda():
    check_grad(make_scaled(1.5), 0.4)


def test_method_and_staticmethod():
    check_grad(Model.energy, Model(), 0.3, wrt=1)
    check_grad(Model.static, 0.8)


def test_decorated_function():
    check_grad(decorated, 0.6)


def test_wrapper_is_differentiated_not_the_wrapped_function():
    # inspect.getsource follows __wrapped__: srcgrad differentiated x * x while the function computes 2 * x * x.
    assert srcgrad.grad(wrapped)(3.0) == pytest.approx(12.0)
    check_grad(wrapped, 0.9)


def test_future_annotations_in_this_module():
    check_grad(annotated, 1.2)


# --- built-in rules whose file changed after srcgrad imported it ---------------------------------------------------


def stale_rule_text(monkeypatch, rule_fn, old: str, new: str) -> None:
    """Make linecache (where inspect reads) hold an edited text of ``rule_fn``'s file, never touching the file."""
    filename = rule_fn.__code__.co_filename
    lines = list(linecache.getlines(filename))
    assert lines, filename
    start = rule_fn.__code__.co_firstlineno - 1
    for i in range(start, len(lines)):
        if old in lines[i]:
            lines[i] = lines[i].replace(old, new)
            break
    else:
        raise AssertionError(f"{old!r} not in {rule_fn.__qualname__}")
    monkeypatch.setitem(linecache.cache, filename, (sum(map(len, lines)), None, lines, filename))
    # ...and make the file look changed since srcgrad was imported (its size and time are what tell).
    monkeypatch.setitem(freshness.PACKAGE_FILES, filename, (-1, -1))


def forget_registration_text(monkeypatch, rule_fn) -> None:
    """Drop the text kept for ``rule_fn`` at registration: parsed then (a user's rule), or its file's lines to parse
    at first use (srcgrad's own rules)."""
    assert id(rule_fn) in registry._TEXT_AT_REGISTRATION or id(rule_fn) in registry._LINES_AT_REGISTRATION
    monkeypatch.delitem(registry._TEXT_AT_REGISTRATION, id(rule_fn), raising=False)
    monkeypatch.delitem(registry._LINES_AT_REGISTRATION, id(rule_fn), raising=False)
    monkeypatch.delitem(registry._RETURNED_AT_REGISTRATION, id(rule_fn), raising=False)  # (its expression, parsed)


def sine_model(x):
    return math.sin(x) * 2.0


def test_a_rule_is_inlined_from_the_text_it_had_when_registered(monkeypatch, no_disk_cache):
    rule = registry.lookup(math.sin)
    adjoint = rule.adjoint_for(True)
    monkeypatch.setattr(rule, "_inline_cache", {})
    stale_rule_text(monkeypatch, adjoint, "g * math.cos(x)", "g * 7.0")
    assert freshness.is_stale(adjoint) and freshness.fresh_source(adjoint) is None
    df = srcgrad.grad(sine_model)
    assert df(0.3) == pytest.approx(2.0 * math.cos(0.3))
    text = srcgrad.source(df)
    assert "7.0" not in text and "math.cos" in text and "_rule(" not in text


def test_stale_rule_without_registration_text_is_called_not_inlined(monkeypatch, no_disk_cache):
    rule = registry.lookup(math.sin)
    adjoint = rule.adjoint_for(True)
    monkeypatch.setattr(rule, "_inline_cache", {})
    forget_registration_text(monkeypatch, adjoint)
    stale_rule_text(monkeypatch, adjoint, "g * math.cos(x)", "g * 7.0")
    df = srcgrad.grad(sine_model)
    assert df(0.3) == pytest.approx(2.0 * math.cos(0.3))
    text = srcgrad.source(df)
    assert "7.0" not in text and "_rule(" in text


def inverse_model(a):
    return np.sum(np.linalg.inv(a))


def test_stale_forward_rule_is_called_not_inlined(monkeypatch, no_disk_cache):
    stale_rule_text(monkeypatch, registry.lookup(np.linalg.inv).jvp, "-(ans @ a_dot @ ans)", "7.0 * a_dot")
    a = np.array([[2.0, 0.5], [0.3, 1.5]])
    v = np.array([[1.0, -0.5], [0.25, 2.0]])
    _, tangent = srcgrad.jvp(inverse_model)(a, v)
    expected = np.sum(numerical_grad(inverse_model, (a,), 0) * v)
    assert tangent == pytest.approx(expected, rel=1e-6)


def product_model(a):
    return np.prod(a)


def test_stale_reduction_rule_in_forward_mode(monkeypatch, no_disk_cache):
    # A reduction's tangent instantiates its reverse rule's text: the text read at registration serves; without it,
    # a stale file leaves no text to use (there is no call to fall back to): an InternalError naming the file.
    rule = registry.lookup(np.prod)
    monkeypatch.setattr(rule, "_inline_cache", {})
    stale_rule_text(monkeypatch, rule.adjoint, "prod_grad(g, a, axis, keepdims)", "g * 7.0")
    a = np.array([1.5, 2.0, 0.5])
    _, tangent = srcgrad.jvp(product_model)(a, np.ones(3))
    assert tangent == pytest.approx(np.sum(numerical_grad(product_model, (a,), 0)), rel=1e-6)
    monkeypatch.setattr(rule, "_inline_cache", {})
    forget_registration_text(monkeypatch, rule.adjoint)
    with pytest.raises(srcgrad.InternalError, match="numpy_reductions.py"):
        srcgrad.jvp(product_model)(a, np.ones(3))
    check_grad(product_model, a)  # reverse mode calls the rule


# --- the on-disk cache cannot hand back code made from another text ------------------------------------------------


def test_cache_hit_never_skips_the_check(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_override", {"enabled": True, "directory": tmp_path / "cache"})
    path = tmp_path / "cached_model.py"
    text = "def f(x):\n    return x * x\n"
    module = load(path, text)
    assert srcgrad.grad(module.f)(2.0) == pytest.approx(4.0)
    edit(path, text.replace("x * x", "x * x * x"))
    with pytest.raises(srcgrad.SourceUnavailable, match="cached_model.py"):
        srcgrad.grad(module.f)(2.0)
    assert srcgrad.grad(load(path, text.replace("x * x", "x * x * x")).f)(2.0) == pytest.approx(12.0)


# --- what the check costs ---------------------------------------------------------------------------------------


def test_top_level_functions_and_srcgrads_own_files_compile_no_whole_file(tmp_path, no_disk_cache):
    # A top-level function's block (after the file's imports, which change how `np.sum` compiles) is enough, and
    # srcgrad's own rule files are trusted while their size and time are as imported.
    freshness._clear()
    text = "import numpy as np\nimport math\n\n\ndef loss(w):\n    return np.sum(np.tanh(w) ** 2) + math.exp(w[0])\n"
    module = load(tmp_path / "model.py", text)
    check_grad(module.loss, np.array([0.3, -0.4]))
    assert not freshness._modules
