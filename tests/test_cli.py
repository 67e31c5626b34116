"""The `srcgrad` command line (issue 5), run as a subprocess: emit / show / graph / explain, FILE.py:FUNC and
package.module:FUNC, --help for each command, exit status 2 with a clear message for a missing file, module or
function and a bad --wrt, `emit --check`, and the emitted module used where srcgrad cannot be imported."""

import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad.cli import load_function

RUNNER = Path(__file__).parent / "standalone_runner.py"
HAS_DOT = shutil.which("dot") is not None

MODEL = '''
import math

import numpy as np

W = np.array([1.0, -2.0, 0.5])


def seed3(x):
    y = 3 * (x + 2) ** 2
    return y


def loss(w, x, y):
    p = np.tanh(x @ w)
    return np.mean((p - y) ** 2) + 0.01 * np.sum(w * W)


def helper(v):
    return v * math.exp(v)


def calls(x):
    return helper(x) + helper(2.0 * x)


def unsupported(x):
    try:
        z = x * 2.0
        y = z * x
    except ValueError:
        y = z
    return y
'''


def srcgrad_cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "srcgrad", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "model.py").write_text(textwrap.dedent(MODEL))
    return tmp_path


@pytest.fixture
def model(project):
    sys.modules.pop("model", None)
    func = load_function(f"{project / 'model.py'}:seed3")
    module = sys.modules["model"]
    assert func is module.seed3
    yield module
    sys.modules.pop("model", None)
    sys.path.remove(str(project))


# --- help and usage errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["emit"], ["show"], ["graph"], ["explain"]])
def test_help(command, tmp_path):
    done = srcgrad_cli(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: srcgrad")
    for word in command:
        assert f"srcgrad {word}" in done.stdout and "FILE.py:FUNC" in done.stdout


def test_no_command_prints_help_and_fails(tmp_path):
    done = srcgrad_cli(cwd=tmp_path)
    assert done.returncode == 2 and "emit" in done.stderr


def test_console_script():
    script = Path(sys.executable).with_name("srcgrad")
    if not script.exists():
        pytest.skip("the console script is not installed in this environment")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"srcgrad {srcgrad.__version__}"


@pytest.mark.parametrize("args,message", [
    (["emit", "missing.py:f"], "no such file: missing.py"),
    (["show", "model.py:nope"], "model.py has no function 'nope'; functions defined there: calls, helper, loss"),
    (["explain", "model.py:seed3", "--args", "1.5", "--wrt", "z"], "--wrt: 'z' is not a parameter of seed3"),
    (["emit", "model.py:loss", "--wrt", "w,q"], "'q' is not a parameter of loss; its parameters are w, x, y"),
    (["emit", "model.py:loss", "--wrt", "5"], "--wrt: position 5 is out of range"),
    (["emit", "model.py"], "write FILE.py:FUNC or package.module:FUNC"),
    (["emit", "no_such_module:f"], "no module named 'no_such_module'"),
    (["explain", "model.py:seed3"], "explain needs the arguments"),
    (["explain", "model.py:seed3", "--args", "1.5 +"], "--args: cannot read '1.5 +'"),
    (["emit", "model.py:seed3", "--check"], "emit --check needs -o"),
    (["graph", "model.py:seed3", "-o", "x.bmpx"], "unknown picture format 'bmpx'"),
])
def test_usage_errors_exit_2(project, args, message):
    done = srcgrad_cli(*args, cwd=project)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("srcgrad: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_argparse_errors_exit_2(project):
    done = srcgrad_cli("emit", "model.py:seed3", "--mode", "bogus", cwd=project)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_unsupported_code_exits_1_with_location(project):
    done = srcgrad_cli("show", "model.py:unsupported", cwd=project)
    assert done.returncode == 1
    assert "model.py:" in done.stderr and "try" in done.stderr and "Traceback" not in done.stderr


# --- emit -----------------------------------------------------------------------------------------------------------


def test_emit_check_and_blocked_import(project, model):
    out = project / "loss_grad.py"
    done = srcgrad_cli("emit", "model.py:loss", "--wrt", "w", "-o", out.name, cwd=project)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert text == srcgrad.emit(model.loss, wrt="w")  # the CLI and the API write the same bytes
    again = srcgrad_cli("emit", "model.py:loss", "--wrt", "w", cwd=project)
    assert again.stdout == text  # byte-identical from run to run (and to stdout without -o)
    assert srcgrad_cli("emit", "model.py:loss", "--wrt", "w", "-o", out.name, "--check", cwd=project).returncode == 0

    rng = np.random.default_rng(0)
    args = (rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5))
    calls_path, results_path = project / "calls.pkl", project / "results.pkl"
    calls_path.write_bytes(pickle.dumps([("loss_grad", args)]))
    done = subprocess.run([sys.executable, str(RUNNER), str(project), "loss_grad", str(calls_path),
                           str(results_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ((status, gradient),) = pickle.loads(results_path.read_bytes())
    assert status == "ok"
    np.testing.assert_allclose(gradient, srcgrad.grad(model.loss)(*args), rtol=1e-13, atol=0)

    (project / "model.py").write_text(textwrap.dedent(MODEL).replace("0.01 * np.sum", "0.02 * np.sum"))
    stale = srcgrad_cli("emit", "model.py:loss", "--wrt", "w", "-o", out.name, "--check", cwd=project)
    assert stale.returncode == 1
    assert "loss_grad.py is stale; regenerate it with: srcgrad emit model.py:loss --wrt w -o loss_grad.py" \
        in stale.stderr
    assert "-    return np.mean((p - y) ** 2) + 0.01" in stale.stderr or "0.02" in stale.stderr  # a diff
    assert out.read_text() == text  # --check writes nothing
    missing = srcgrad_cli("emit", "model.py:loss", "-o", "absent.py", "--check", cwd=project)
    assert missing.returncode == 1 and "absent.py does not exist" in missing.stderr


def test_emit_helpers_and_package_module_form(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text(textwrap.dedent(MODEL))
    by_module = srcgrad_cli("emit", "pkg.model:calls", cwd=tmp_path)
    by_file = srcgrad_cli("emit", "pkg/model.py:calls", cwd=tmp_path)
    assert by_module.returncode == 0, by_module.stderr
    assert by_module.stdout == by_file.stdout  # a file inside a package is imported under its package name
    text = by_module.stdout
    assert "def helper_fwd" in text and "def helper_bwd" in text
    assert "srcgrad emit pkg.model:calls --wrt x" in text
    (tmp_path / "calls_grad.py").write_text(text)
    calls_path, results_path = tmp_path / "calls.pkl", tmp_path / "results.pkl"
    calls_path.write_bytes(pickle.dumps([("calls_grad", (0.3,))]))
    done = subprocess.run([sys.executable, str(RUNNER), str(tmp_path), "calls_grad", str(calls_path),
                           str(results_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ((status, gradient),) = pickle.loads(results_path.read_bytes())
    expected = (1 + 0.3) * np.exp(0.3) + 2.0 * (1 + 0.6) * np.exp(0.6)
    assert status == "ok" and gradient == pytest.approx(expected, rel=1e-13)


# --- show, graph, explain -------------------------------------------------------------------------------------------


def test_show(project, model):
    generic = srcgrad_cli("show", "model.py:seed3", cwd=project)
    assert generic.returncode == 0 and generic.stdout == srcgrad.source(srcgrad.grad(model.seed3))
    floats = srcgrad_cli("show", "model.py:seed3", "--args", "1.5", cwd=project)
    assert floats.stdout == srcgrad.source(srcgrad.grad(model.seed3), 1.5)
    vg = srcgrad_cli("show", "model.py:loss", "--wrt", "w,x", "--mode", "value_and_grad", cwd=project)
    assert vg.stdout.startswith("def loss_value_and_grad(w, x, y):")


def test_graph_dot(project, model):
    done = srcgrad_cli("graph", "model.py:seed3", "-o", "g.dot", cwd=project)
    assert done.returncode == 0, done.stderr
    assert (project / "g.dot").read_text() == srcgrad.graph(model.seed3).to_dot()
    stdout = srcgrad_cli("graph", "model.py:seed3", "--adjoint", cwd=project)
    assert stdout.stdout == srcgrad.graph(model.seed3, adjoint=True).to_dot()
    annotated = srcgrad_cli("graph", "model.py:seed3", "--args", "1.5", cwd=project)
    assert annotated.stdout == srcgrad.graph(model.seed3).to_dot(explain=srcgrad.explain(model.seed3, 1.5))
    ir = srcgrad_cli("graph", "model.py:seed3", "--ir", cwd=project)
    assert ir.stdout == str(srcgrad.graph(model.seed3))


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
def test_graph_svg(project):
    done = srcgrad_cli("graph", "model.py:loss", "-o", "loss.svg", "--adjoint", "--args", "[1, 2, 3]",
                       "np.ones((4, 3))", "np.zeros(4)", cwd=project)
    assert done.returncode == 0, done.stderr
    svg = (project / "loss.svg").read_text()
    assert "<svg" in svg and "value" in svg and "grad" in svg


def test_graph_svg_without_graphviz(project):
    root = Path(__file__).resolve().parent.parent
    env = {"PATH": str(project), "SYSTEMROOT": "", "PYTHONPATH": str(root)}  # no `dot` on PATH; this srcgrad
    done = srcgrad_cli("graph", "model.py:seed3", "-o", "g.svg", "--args", "1.5", cwd=project, env=env)
    assert done.returncode == 0, done.stderr  # issue 19: srcgrad draws it itself
    assert "drawn by srcgrad's built-in layout" in (project / "g.svg").read_text()
    done = srcgrad_cli("graph", "model.py:seed3", "-o", "g.png", cwd=project, env=env)
    assert done.returncode == 1
    assert "need Graphviz's `dot` program, which is not on PATH" in done.stderr
    assert "apt-get install graphviz" in done.stderr
    assert not (project / "g.png").exists()
    done = srcgrad_cli("graph", "model.py:seed3", "-o", "h.svg", "--engine", "graphviz", cwd=project, env=env)
    assert done.returncode == 1 and "not on PATH" in done.stderr and not (project / "h.svg").exists()
    assert srcgrad_cli("graph", "model.py:seed3", "-o", "g.dot", cwd=project, env=env).returncode == 0


def test_explain(project, model):
    done = srcgrad_cli("explain", "model.py:seed3", "--args", "1.5", cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == str(srcgrad.explain(model.seed3, 1.5))
    assert "d/dx = 21" in done.stdout
    arrays = srcgrad_cli("explain", "model.py:loss", "--wrt", "w", "--args", "[0.1, 0.2, 0.3]", "np.ones((4, 3))",
                         "np.zeros(4)", cwd=project)
    assert arrays.returncode == 0, arrays.stderr
    assert "(3,) [" in arrays.stdout


def test_explain_user_error_exits_1(project):
    done = srcgrad_cli("explain", "model.py:loss", "--args", "1.0", "2.0", "3.0", cwd=project)  # 2.0 @ 1.0 fails
    assert done.returncode == 1 and "raised" in done.stderr


# --- the CLI does no harm (issue 13, item 3) --------------------------------------------------------------------


def test_emit_never_writes_over_the_differentiated_module(project):
    source = (project / "model.py").read_bytes()
    for extra in ([], ["--force"]):
        done = srcgrad_cli("emit", "model.py:loss", "-o", "model.py", *extra, cwd=project)
        assert done.returncode == 2 and "is the module that defines loss" in done.stderr, done.stderr
        assert (project / "model.py").read_bytes() == source
    (project / "link.py").symlink_to(project / "model.py")
    done = srcgrad_cli("emit", "model.py:loss", "-o", "link.py", "--force", cwd=project)
    assert done.returncode == 2 and (project / "model.py").read_bytes() == source


def test_emit_overwrites_only_emitted_modules_unless_forced(project):
    notes = project / "notes.py"
    notes.write_text("# my notes\nimport numpy\n")
    done = srcgrad_cli("emit", "model.py:seed3", "-o", "notes.py", cwd=project)
    assert done.returncode == 2 and "not a module srcgrad emitted" in done.stderr and "--force" in done.stderr
    assert notes.read_text() == "# my notes\nimport numpy\n"
    (project / "a_dir.py").mkdir()
    assert srcgrad_cli("emit", "model.py:seed3", "-o", "a_dir.py", cwd=project).returncode == 2
    assert srcgrad_cli("emit", "model.py:seed3", "-o", "notes.py", "--force", cwd=project).returncode == 0
    emitted = notes.read_text()
    assert "# srcgrad-source: model.py:seed3" in emitted
    (project / "model.py").write_text(textwrap.dedent(MODEL).replace("3 * (x + 2)", "4 * (x + 2)"))
    again = srcgrad_cli("emit", "model.py:seed3", "-o", "notes.py", cwd=project)  # an emitted module: rewritten
    assert again.returncode == 0, again.stderr
    assert notes.read_text() != emitted and "4 * (x + 2)" in notes.read_text()


def test_a_closed_pipe_ends_the_command_quietly(project):
    """`srcgrad show ... | head`: the `except (RuntimeError, OSError)` caught BrokenPipeError before its own
    handler and reported an error."""
    for args in (["show", "model.py:loss"], ["emit", "model.py:loss"], ["graph", "model.py:loss"]):
        proc = subprocess.Popen([sys.executable, "-m", "srcgrad", *args], cwd=project, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()  # the reader is gone before anything is written
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert err == b"", err.decode()


def test_explain_args_are_evaluated_once(project, model):
    from srcgrad import cli

    np.srcgrad_test_counter = np.zeros(1)
    try:
        status = cli.main(["explain", f"{project / 'model.py'}:seed3", "--args",
                           "np.srcgrad_test_counter.__iadd__(1)[0] * 1.5"])
        assert status == 0
        assert np.srcgrad_test_counter[0] == 1.0
    finally:
        del np.srcgrad_test_counter


def test_help_says_args_run_python(tmp_path):
    for command in ("show", "graph", "explain"):
        done = srcgrad_cli(command, "--help", cwd=tmp_path)
        text = " ".join(done.stdout.split())
        assert "evaluated as Python code" in text and "no sandbox" in text
