"""srcgrad's own machinery never reads the user's names: every name srcgrad's generated code uses for itself
(builtins such as reversed, range, len, slice; np, math; runtime helpers and rules) is bound by srcgrad.

The names are collected from the generated source of a corpus (loops, break, while, branches, arrays, lists,
helpers, enumerate/zip, an infinite constant; grad, value_and_grad, jvp, hessian), then the corpus is loaded again
with every one of them shadowed: as module globals that fail when used, and as parameters and locals of the
functions. The gradients must stay right (finite differences)."""

import ast
import builtins
import keyword

import numpy as np
import pytest
from module_files import load

import srcgrad
from srcgrad.testing import numerical_grad

# The corpus reads numpy and math as `numpy` and `mth`, so that `np` and `math` are srcgrad's names only.
CORPUS = '''
import math as mth
import numpy


def helper(v, w):
    return v * w + numpy.sin(v)


def loop_scalar(x{extra}):
    {locals_}s = 1.0
    for i in range(4):
        s = s + mth.sin(x * s) * mth.cos(x)
    return s


def while_scalar(x{extra}):
    {locals_}s = x
    k = 0
    while k < 5 and s < 50.0:
        s = s * 1.5 + x
        k = k + 1
    return s


def branches(x{extra}):
    {locals_}if x > 0.5:
        y = x * x * x
    else:
        y = -x * mth.exp(x)
    return y * 3.0


def loop_break(x{extra}):
    {locals_}s = 0.0
    for i in range(10):
        s = s + x * i * x
        if s > 5.0:
            break
    return s


def with_helper(x{extra}):
    {locals_}return helper(x, 2.0) + helper(x * x, x)


def infinite(x{extra}):
    {locals_}return min(x * x, 1e999) + 2.0 * x


def arrays(x{extra}):
    {locals_}y = numpy.zeros(3)
    for i in range(3):
        y[i] = x[i] * 2.0
    acc = []
    for v in x:
        acc.append(v * v)
    t = 0.0
    for a in acc:
        t = t + a * t + a
    return t + numpy.sum(y ** 2) + numpy.sum(x[1:] * x[:2]) + max(x[0], x[1]) + abs(x[2])


def enumerate_zip(x{extra}):
    {locals_}total = 0.0
    for k, v in enumerate(x):
        total = total + k * v * v
    for a, b in zip(x, x):
        total = total + a * b
    return total + numpy.sum(numpy.minimum(x, 1e999))


def helper_sum(x{extra}):
    {locals_}return numpy.sum(helper(x, 2.0) + helper(x * x, x))


def reduce_mean(x{extra}):
    {locals_}return numpy.mean(numpy.tanh(x) ** 2) + numpy.sum(numpy.exp(-x)) * numpy.max(x)
'''

POISON = """

class _Poison:
    def __getattr__(self, name):
        raise AssertionError('read ' + name)

    def __call__(self, *args, **kwargs):
        raise AssertionError('called')


"""
SCALAR_FUNCTIONS = ["loop_scalar", "while_scalar", "branches", "loop_break", "with_helper", "infinite"]
ARRAY_FUNCTIONS = ["arrays", "enumerate_zip", "reduce_mean", "helper_sum"]
X_SCALAR = (0.3, 0.8)  # both sides of the branch
X_ARRAY = np.array([0.4, -0.7, 1.3])


def _module(path, shadowed=(), how="globals"):
    extra = locals_ = ""
    text = CORPUS
    if how == "parameters":
        extra = ", *, " + ", ".join(f"{n}=0.25" for n in shadowed) if shadowed else ""
    elif how == "locals":
        locals_ = "".join(f"{n} = 0.25\n    " for n in shadowed)
    text = text.format(extra=extra, locals_=locals_)
    if how == "globals":
        text += POISON
        text += "".join(f"{n} = _Poison()\n" for n in shadowed)
        text += "\n\ndef reversed(seq):\n    return seq\n" if "reversed" not in shadowed else ""
    return load(path, text)


def _transforms(module):
    """Every transform of every corpus function, with its arguments."""
    out = []
    for name in SCALAR_FUNCTIONS:
        f = getattr(module, name)
        for x in X_SCALAR:
            out += [("grad", name, x, srcgrad.grad(f)), ("value_and_grad", name, x, srcgrad.value_and_grad(f)),
                    ("jvp", name, x, srcgrad.jvp(f))]
            if name not in ("loop_break",):
                out.append(("hessian", name, x, srcgrad.hessian(f)))
    for name in ARRAY_FUNCTIONS:
        f = getattr(module, name)
        out += [("grad", name, X_ARRAY, srcgrad.grad(f)), ("value_and_grad", name, X_ARRAY, srcgrad.value_and_grad(f)),
                ("vjp", name, X_ARRAY, srcgrad.vjp(f))]
    return out


def _run(kind, g, x):
    if kind == "jvp":
        return g(x, 1.0)
    if kind == "vjp":
        return g(x, 1.0)
    return g(x)


def _free_names(source):
    """The names generated functions read without binding them (srcgrad's and the user's)."""
    free = set()
    for fdef in ast.parse(source).body:
        if not isinstance(fdef, ast.FunctionDef):
            continue
        bound = {a.arg for a in fdef.args.args + fdef.args.kwonlyargs + fdef.args.posonlyargs}
        bound |= {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        free |= {n.id for n in ast.walk(fdef) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound
    return free


def _user_names():
    tree = ast.parse(CORPUS.format(extra="", locals_=""))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)} | {"mth", "numpy"}


@pytest.fixture(scope="module")
def srcgrad_names(tmp_path_factory):
    """The names srcgrad's generated code uses that the corpus does not mention, and the reference results."""
    module = _module(tmp_path_factory.mktemp("clean") / "corpus_clean.py")
    names, results = set(), {}
    for kind, name, x, g in _transforms(module):
        results[(kind, name, _key(x))] = _run(kind, g, x)
        names |= _free_names(srcgrad.source(g)) if kind != "hessian" else set()
    names |= _free_names(srcgrad.source(srcgrad.jvp(module.loop_scalar), 0.3))
    return sorted(names - _user_names()), results


def _key(x):
    return tuple(np.ravel(x))


def test_the_collected_names_cover_srcgrads_own_machinery(srcgrad_names):
    names, _ = srcgrad_names
    # the loop reversal, srcgrad's list loops and index values, the module names of adjoint code, runtime helpers
    for expected in ("reversed", "len", "slice", "np", "math", "getitem_grad", "unbroadcast"):
        assert expected in names, names
    assert all(n.isidentifier() for n in names)


def test_the_reference_results_are_right(srcgrad_names):
    _, results = srcgrad_names
    for (kind, name, xk), got in results.items():
        if kind == "grad":
            x = xk[0] if len(xk) == 1 else np.array(xk)
            f = _clean_function(name)
            np.testing.assert_allclose(got, numerical_grad(f, (x,), 0), rtol=1e-6, atol=1e-8)


_CLEAN = {}


def _clean_function(name):
    if not _CLEAN:
        namespace = {}
        exec(compile(CORPUS.format(extra="", locals_=""), "<corpus>", "exec"), namespace)
        _CLEAN.update(namespace)
    return _CLEAN[name]


def _compare(module, results):
    for kind, name, x, g in _transforms(module):
        got, want = _run(kind, g, x), results[(kind, name, _key(x))]
        if isinstance(want, tuple):
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{kind} {name}")
        else:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{kind} {name}")


def test_every_name_shadowed_as_a_module_global(srcgrad_names, tmp_path):
    names, results = srcgrad_names
    _compare(_module(tmp_path / "corpus_globals.py", names, "globals"), results)


def test_every_name_shadowed_as_a_parameter(srcgrad_names, tmp_path):
    names, results = srcgrad_names
    _compare(_module(tmp_path / "corpus_parameters.py", names, "parameters"), results)


def test_every_name_shadowed_as_a_local(srcgrad_names, tmp_path):
    names, results = srcgrad_names
    _compare(_module(tmp_path / "corpus_locals.py", names, "locals"), results)


def test_every_builtin_shadowed_as_a_module_global(srcgrad_names, tmp_path):
    # Not only the names seen above: any builtin the corpus does not mention itself.
    names, results = srcgrad_names
    others = [n for n in dir(builtins) if n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("_")
              and n not in _user_names() and n != "AssertionError"]  # (the poison raises AssertionError)
    _compare(_module(tmp_path / "corpus_builtins.py", sorted(set(names) | set(others)), "globals"), results)


def test_a_module_function_named_reversed_is_not_the_loop_reversal(tmp_path):
    module = load(tmp_path / "own_reversed.py", (
        "import numpy as np\n\n\ndef reversed(seq):\n    return seq\n\n\n"
        "def f(x):\n    s = 0.0\n    for i in range(3):\n        s = s * x[i] + x[i] * x[i]\n    return s\n"))
    x = np.array([1.5, 2.0, 3.0])
    np.testing.assert_allclose(srcgrad.grad(module.f)(x), numerical_grad(module.f, (x,), 0), rtol=1e-7)


def test_a_parameter_named_math_and_an_infinite_constant(tmp_path):
    module = load(tmp_path / "param_math.py", (
        "def f(x, math=2.0):\n    return min(x * math, 1e999) + max(-1e999, x)\n"))
    assert srcgrad.grad(module.f)(1.5) == pytest.approx(3.0)
    assert srcgrad.value_and_grad(module.f)(1.5) == pytest.approx((4.5, 3.0))


def test_a_parameter_named_like_the_entrys_cells_gets_its_gradient():
    # the entry keeps srcgrad's objects in cells named __srcgrad_...: a parameter of that name must not be one
    def f(__srcgrad_0slow__, __srcgrad_pad0__=1.0):
        return __srcgrad_0slow__ * __srcgrad_0slow__ * __srcgrad_pad0__

    g = srcgrad.grad(f)
    assert g(1.5) == pytest.approx(3.0) and g(1.5) == pytest.approx(3.0) and g(2.0, 3.0) == pytest.approx(12.0)
