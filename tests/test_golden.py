"""Golden text: the printed IR and the generated source of small functions, compared exactly.

Regenerate deliberately with ``SRCGRAD_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the diff.
"""

import os
import sys
from pathlib import Path

import golden_cases as gc
import numpy as np
import pytest

import srcgrad

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import readability  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SRCGRAD_UPDATE_GOLDEN") == "1"

CASES = {
    "eq3": (gc.eq3, (1.5,), 0),
    "eq4": (gc.eq4, (1.5,), 0),
    "branch": (gc.branch, (1.5,), 0),
    "loop": (gc.loop, (0.5, 3), 0),
    "loss": (gc.loss, (np.ones(3), np.ones((4, 3)), np.ones(4)), 0),
    "calls_helper": (gc.calls_helper, (0.5,), 0),
    "recurrence": (gc.recurrence, (0.5, 3), 0),
}
# The four array functions of benchmarks/readability.py (issue 18): their gradients as a person would write them.
for _name, (_func, _, _wrt) in readability.CASES.items():
    CASES[f"readability_{_name}"] = (_func, readability.ARGUMENTS[_name], _wrt)


def _compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with SRCGRAD_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} drifted from its golden text (update deliberately if intended)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_ir(name):
    func, _, _ = CASES[name]
    _compare(f"{name}.ir.txt", str(srcgrad.graph(func)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_source(name):
    func, args, wrt = CASES[name]
    _compare(f"{name}.grad.py.txt", srcgrad.source(srcgrad.grad(func, wrt=wrt), *args))
