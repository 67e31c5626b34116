"""The readability targets of issue 18 on the four array functions of benchmarks/readability.py: at most 3 calls of
srcgrad's runtime helpers over the four, statements at most 2.5 times the hand-written gradients', no statement
broken inside an expression; and each generated gradient equals the hand-written one."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import readability  # noqa: E402
from srcgrad.testing import check_grad  # noqa: E402


def test_the_targets_hold():
    _, totals = readability.table()
    assert totals["helpers"] <= 3
    assert totals["generated"] <= 2.5 * totals["hand"]
    assert totals["broken"] == 0


@pytest.mark.parametrize("name", sorted(readability.CASES))
def test_generated_equals_hand_written_and_central_differences(name):
    func, hand, wrt = readability.CASES[name]
    args = readability.ARGUMENTS[name]
    df, _ = readability.generated(name)
    got, want = df(*args), hand(*args)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-12)
    small = {"mlp": lambda r: (r.normal(size=(3, 4)), r.normal(size=4), r.normal(size=(4, 2)), r.normal(size=2),
                               r.normal(size=(5, 3)), r.normal(size=(5, 2))),
             "logreg": lambda r: (r.normal(size=3), 0.2, r.normal(size=(5, 3)), np.sign(r.normal(size=5))),
             "softmax_xent": lambda r: (r.normal(size=(3, 4)), r.normal(size=(5, 3)), np.eye(4)[[0, 1, 3, 2, 0]]),
             "layer_norm": lambda r: (r.normal(size=(5, 3)), r.normal(size=3), r.normal(size=3))}
    check_grad(func, *small[name](np.random.default_rng(1)), wrt=wrt)
