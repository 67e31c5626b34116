"""The examples run (issue 5): the seed equations (with and without Graphviz), the MLP's loss falls, and the
ahead-of-time example is current (`srcgrad emit --check`) and trains where srcgrad cannot be imported."""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
AOT = EXAMPLES / "aot"


def run(args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_seed_with_graphviz(tmp_path):
    done = run([EXAMPLES / "seed.py", "--out", tmp_path])
    assert done.returncode == 0, done.stderr
    for name in ("eq1", "eq2", "eq3", "eq4"):
        assert (tmp_path / f"{name}.dot").exists() and (tmp_path / f"{name}.svg").exists()
        assert (tmp_path / f"{name}_adjoint.svg").exists()
    out = done.stdout
    assert out.count("-> OK") == 4
    assert "eq3(x=1.5) = 36.75;  d/dx = 21" in out  # the explain table
    assert "def eq4_grad(x):" in out  # the generated source


def test_seed_without_graphviz(tmp_path):
    env = {"PATH": str(tmp_path), "SYSTEMROOT": "", "PYTHONPATH": str(ROOT)}  # no `dot`; this checkout's srcgrad
    done = run([EXAMPLES / "seed.py", "--out", tmp_path], env=env)
    assert done.returncode == 0, done.stderr
    assert "Graphviz is not installed: srcgrad draws the .svg pictures with its own layout" in done.stdout
    for name in ("eq1", "eq2", "eq3", "eq4"):  # issue 19: pictures on a machine with only Python
        assert (tmp_path / f"{name}.dot").exists()
        for picture in (f"{name}.svg", f"{name}_adjoint.svg"):
            root = ElementTree.parse(tmp_path / picture).getroot()
            texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
            assert "grad 21" in texts if name == "eq3" else "x" in texts
    assert done.stdout.count("-> OK") == 4


def test_mlp_loss_falls():
    done = run([EXAMPLES / "mlp.py"])
    assert done.returncode == 0, done.stderr
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", done.stdout)]
    assert len(losses) >= 5
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.1 * losses[0]


def test_aot_gradient_module_is_current():
    done = run(["-m", "srcgrad", "emit", "examples/aot/model.py:loss", "--wrt", "w,b", "-o",
                "examples/aot/loss_grad.py", "--check"])
    assert done.returncode == 0, (
        "examples/aot/loss_grad.py is stale: regenerate it with `srcgrad emit examples/aot/model.py:loss --wrt w,b "
        f"-o examples/aot/loss_grad.py`\n{done.stderr}")
    assert "is current" in done.stdout


def test_aot_training_runs_without_srcgrad(tmp_path):
    blocker = (
        "import runpy, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'srcgrad' or name.startswith('srcgrad.'):\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.path.insert(0, {str(AOT)!r})\n"
        f"runpy.run_path({str(AOT / 'train.py')!r}, run_name='__main__')\n"
    )
    done = run(["-c", blocker], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trained without importing srcgrad" in done.stdout
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", done.stdout)]
    assert losses[-1] < losses[0]
