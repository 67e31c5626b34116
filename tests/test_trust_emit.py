"""Emitted modules equal the in-process gradient (issue 12 item 7, issue 13 item 4): defaults are the values the
function has, line handling follows Python's lines, every golden function and guarded in-place updates emit and run
where srcgrad cannot be imported, and srcgrad/runtime.py imports only math and numpy."""

import ast
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import golden_cases
import numpy as np
import pytest
from module_files import load, run_blocked

import srcgrad
from srcgrad.errors import UnsupportedSyntax
from srcgrad.standalone import EmitError

TESTS = Path(__file__).parent


def srcgrad_imports(text: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return [n for n in names if n == "srcgrad" or n.startswith("srcgrad.")]


def assert_same(got, expected):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for a, b in zip(got, expected):
            assert_same(a, b)
        return
    assert type(got) is type(expected), (got, expected)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=0)


# --- runtime.py keeps its promise ------------------------------------------------------------------------------


def test_runtime_imports_only_math_and_numpy():
    """Emitted modules carry copies of runtime's functions: an import of anything else (srcgrad.errors...) anywhere
    in it — even inside a function, on an error path — breaks them."""
    tree = ast.parse(Path(srcgrad.runtime.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or ".").split(".")[0] if node.level == 0 else ".")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("__import__", "import_module"):
            imported.add("<dynamic>")
    assert imported <= {"math", "numpy"}, imported


# --- every golden function, and guarded in-place updates -------------------------------------------------------

GOLDEN_ARGS = {
    "eq3": [(1.5,), (-0.25,), (np.float64(0.5),)],
    "eq4": [(1.5,), (np.float64(-1.0),)],
    "branch": [(1.5,), (-2.0,)],
    "loop": [(0.5, 3), (1.2, 0)],
    "loss": [(np.array([0.2, -0.1, 0.4]), np.arange(12.0).reshape(4, 3) / 10, np.array([0.1, 0.0, -0.3, 0.5]))],
    "mlp": [(np.linspace(-0.5, 0.5, 12).reshape(3, 4), np.array([0.1, -0.2, 0.0, 0.3]),
             np.linspace(-1, 1, 8).reshape(4, 2), np.arange(15.0).reshape(5, 3) / 10,
             np.linspace(0, 1, 10).reshape(5, 2))],
    "square": [(1.5,), (-3,)],
    "calls_helper": [(0.5,), (-1.1,)],
    "recurrence": [(0.5, 3), (0.1, 1)],
}

GUARDED = '''
import numpy as np


def alias_update(x):
    y = x
    y += 1.0
    return np.sum(y * y)


def view_update(x, k):
    y = x * 1.0
    z = y
    z *= k
    return np.sum(z) + np.sum(y)


def maybe_shared(x, c):
    y = c
    z = y
    z += x
    return np.sum(z * y)
'''

GUARDED_ARGS = {
    "alias_update": [(2.0,), (-0.5,)],
    "view_update": [(1.5, 3.0)],
    "maybe_shared": [(np.array([1.0, 2.0]), 2.0)],
}


def golden_functions() -> list[str]:
    return sorted(name for name, obj in vars(golden_cases).items()
                  if inspect.isfunction(obj) and obj.__module__ == golden_cases.__name__)


def test_every_golden_function_has_arguments_here():
    assert golden_functions() == sorted(GOLDEN_ARGS), "give each golden function argument sets in GOLDEN_ARGS"


def _emit_and_compare(directory: Path, module, arg_sets: dict) -> None:
    for name, args_list in arg_sets.items():
        func = getattr(module, name)
        text = srcgrad.emit(func)
        assert srcgrad_imports(text) == [], name
        assert str(directory) not in text and str(TESTS) not in text, "an absolute path in the emitted module"
        (directory / f"{name}_emitted.py").write_text(text, encoding="utf-8")
        results = run_blocked(directory, f"{name}_emitted", [(f"{name}_grad", args) for args in args_list])
        for args, result in zip(args_list, results):
            assert result[0] == "ok", (name, args, result)
            assert_same(result[1], srcgrad.grad(func)(*args))


def test_every_golden_function_emits_and_runs_without_srcgrad(tmp_path):
    shutil.copy(Path(golden_cases.__file__), tmp_path / "golden_cases.py")
    _emit_and_compare(tmp_path, golden_cases, GOLDEN_ARGS)


def test_guarded_in_place_updates_emit_and_run_without_srcgrad(tmp_path):
    module = load(tmp_path / "guarded.py", GUARDED)
    sys.modules["guarded"] = module  # the emitted module imports from the user's module by this name
    module.__name__ = "guarded"
    try:
        for func in (module.alias_update, module.view_update, module.maybe_shared):
            func.__module__ = "guarded"
        _emit_and_compare(tmp_path, module, GUARDED_ARGS)
        # An array that another name shares is refused in the emitted module as in-process (checked when the
        # gradient runs: `c` may be a number, which is simply rebound).
        (tmp_path / "shared_emitted.py").write_text(srcgrad.emit(module.maybe_shared), encoding="utf-8")
        (result,) = run_blocked(tmp_path, "shared_emitted", [("maybe_shared_grad", (np.ones(2), np.ones(2)))])
        assert result[:2] == ("error", "ValueError") and "guarded.py:21:5: this update changes an array" in result[2]
        with pytest.raises(UnsupportedSyntax, match="changes an array in place") as info:
            srcgrad.grad(module.maybe_shared)(np.ones(2), np.ones(2))
        assert info.value.location.line == 21 and info.value.location.filename == str(tmp_path / "guarded.py")
    finally:
        sys.modules.pop("guarded", None)


# --- defaults are the function's values ---------------------------------------------------------------------------

DEFAULTS = '''
import numpy as np

C2 = 2.0
W = np.array([0.5, -1.5, 2.0])


class Scale:
    def __init__(self, k):
        self.k = k


SCALE = Scale(3.0)
NAN = float("nan")


def rebound(x, c=C2):
    return c * x * x


def many(x, a=C2 * 2, b=(1, 2.5), *, w=W, s="text", n=None, t=True, act=np.tanh, f32=np.float32(0.1),
         arr32=np.arange(3, dtype=np.float32) / 3, empty=np.zeros((0, 2)), inf=float("inf")):
    bonus = 1.0 if inf > 0 else 0.0
    return np.sum(np.tanh(x * a * b[1]) * w) + f32 * np.sum(x) + np.sum(arr32) * 0.0 + np.sum(empty) + bonus


def by_object(x, scale=SCALE):  # (srcgrad reads no attribute of a parameter: the object is only passed along)
    return x * x


def unwritable(x, scale=Scale(5.0)):
    return x * x


C2 = 3.0
W = np.zeros(3)
'''


@pytest.fixture
def defaults(tmp_path):
    module = load(tmp_path / "defaults_model.py", DEFAULTS)
    name = "defaults_model"
    sys.modules[name] = module
    module.__name__ = name
    for obj in vars(module).values():
        if inspect.isfunction(obj) or inspect.isclass(obj):
            obj.__module__ = name
    yield module
    sys.modules.pop(name, None)


def test_a_global_rebound_after_the_def_does_not_change_the_emitted_default(tmp_path, defaults):
    """`C2 = 2.0; def f(x, c=C2)...; C2 = 3.0`: f uses 2.0; the emitted gradient re-evaluated `C2` and used 3.0."""
    text = srcgrad.emit(defaults.rebound)
    assert "def rebound_grad(x, c=2.0):" in text
    (tmp_path / "rebound_emitted.py").write_text(text)
    (result,) = run_blocked(tmp_path, "rebound_emitted", [("rebound_grad", (1.5,))])
    assert result == ("ok", srcgrad.grad(defaults.rebound)(1.5)) == ("ok", 6.0)


def test_defaults_are_written_as_exact_values(tmp_path, defaults):
    text = srcgrad.emit(defaults.many)
    fdef = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "many_grad")
    written = dict(zip(["a", "b"], [ast.unparse(d) for d in fdef.args.defaults]))
    written |= {a.arg: ast.unparse(d) for a, d in zip(fdef.args.kwonlyargs, fdef.args.kw_defaults)}
    assert written["a"] == "4.0" and written["b"] == "(1, 2.5)"
    assert written["w"] == "np.array([0.5, -1.5, 2.0], dtype='float64')"  # the value, not the rebound global W
    assert (written["s"], written["n"], written["t"], written["act"]) == ("'text'", "None", "True", "np.tanh")
    assert written["f32"] == f"np.dtype('float32').type({float(np.float32(0.1))!r})"
    assert written["inf"] == "float('inf')"
    (tmp_path / "many_emitted.py").write_text(text)
    x = np.array([0.3, -0.7, 1.1])
    (result,) = run_blocked(tmp_path, "many_emitted", [("many_grad", (x,))])
    assert result[0] == "ok", result
    assert_same(result[1], srcgrad.grad(defaults.many)(x))


def test_a_default_object_is_imported_as_itself_or_refused(tmp_path, defaults):
    text = srcgrad.emit(defaults.by_object)
    assert "def by_object_grad(x, scale=SCALE):" in text and "from defaults_model import SCALE" in text
    with pytest.raises(EmitError, match="default value of `scale`") as info:
        srcgrad.emit(defaults.unwritable)
    assert info.value.location.line == DEFAULTS.split("\n").index("def unwritable(x, scale=Scale(5.0)):") + 1


# --- line handling follows Python's lines ------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u2028", "\x0c", "\x85", "\u2029", "\x0b"])
def test_line_breaking_characters_in_comments_keep_the_return_and_check_sees_it(tmp_path, char):
    """A U+2028, form feed or NEL in a comment made the emitted gradient lose its `return` line (it returned None)
    while `srcgrad emit --check` called the file current."""
    source = f"import numpy as np\n\n\ndef f(x, c=2.0):\n    y = x * c  # a comment {char} here\n    return y * y\n"
    (tmp_path / "lsmodel.py").write_text(source, encoding="utf-8")
    out = tmp_path / "lsmodel_grad.py"
    done = subprocess.run([sys.executable, "-m", "srcgrad", "emit", "lsmodel.py:f", "-o", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    tree = ast.parse(out.read_text(encoding="utf-8"))
    fdef = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f_grad")
    assert isinstance(fdef.body[-1], ast.Return)
    (result,) = run_blocked(tmp_path, "lsmodel_grad", [("f_grad", (1.5,))])
    assert result == ("ok", 12.0)
    check = subprocess.run([sys.executable, "-m", "srcgrad", "emit", "lsmodel.py:f", "-o", str(out), "--check"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    out.write_text(out.read_text(encoding="utf-8").replace("    return", "    pass  #", 1), encoding="utf-8")
    check = subprocess.run([sys.executable, "-m", "srcgrad", "emit", "lsmodel.py:f", "-o", str(out), "--check"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "stale" in check.stderr


# --- builtins srcgrad's code calls, under names the function takes for itself ---------------------------------------

SHADOWING_LOCALS = '''
import numpy as np


def f(x):
    range = 2.0 * x
    total = 0.0
    for j, e in enumerate(np.array([0.5, -1.0, 2.0]), 1):
        total = total + j * e * range
    return total
'''


def test_a_local_named_like_a_builtin_srcgrad_calls_is_emitted(tmp_path):
    """srcgrad's own `range` (the loop's) is written as `builtins.range` under another name (found by the fuzzer:
    the emitted module's imports lost track of `builtins`)."""
    module = load(tmp_path / "shadowing.py", SHADOWING_LOCALS)
    text = srcgrad.emit(module.f)
    assert "import builtins" in text
    namespace = {}
    exec(compile(text, "emitted.py", "exec"), namespace)
    assert namespace["f_grad"](1.5) == srcgrad.grad(module.f)(1.5) == 2.0 * (0.5 - 2.0 + 6.0)
