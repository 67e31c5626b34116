"""The entry returned by grad/value_and_grad: from the second call on it is the generated code behind a type check
(one Python call), or a trampoline to it (the first call, which generates the code, runs it through the dispatcher:
compiling the entry is not worth it for a function called once); either way every call gives the gradient of the
function as it is now."""

import math
import threading

import numpy as np
import pytest
from module_files import load

import srcgrad
from srcgrad.entry import ENTRY_CELLS, SLOW
from srcgrad.testing import numerical_grad


def fd_grad(f, x):
    return numerical_grad(f, (float(x),), 0)

SCALE = 3.0


def branchy(x, k=2.0, *, shift=0.5):
    if x > 0.0:
        return k * x**3 + shift * math.sin(x)
    return shift * x * x - k * x


def scaled(x):
    return SCALE * math.exp(x)


def vector_loss(w):
    return np.sum(np.tanh(w) ** 2)


def _fused(g):
    return ":entry " in g.__code__.co_filename


@pytest.mark.parametrize("x", [-1.3, 0.7])
def test_fused_entry_gives_the_gradient_on_both_sides_of_a_branch(x):
    g = srcgrad.grad(branchy)
    assert g(x) == pytest.approx(fd_grad(branchy, x), rel=1e-7)
    assert not _fused(g)  # (the call that generated the code ran it through the dispatcher)
    assert g(x) == pytest.approx(fd_grad(branchy, x), rel=1e-7)
    assert _fused(g)
    assert g(x) == pytest.approx(fd_grad(branchy, x), rel=1e-7)
    assert g(-x) == pytest.approx(fd_grad(branchy, -x), rel=1e-7)


def test_fused_entry_keeps_defaults_and_keywords():
    g = srcgrad.grad(branchy)
    g(0.7)
    assert g(0.7, 3.0, shift=2.0) == pytest.approx(fd_grad(lambda x: branchy(x, 3.0, shift=2.0), 0.7), rel=1e-7)
    assert g(x=0.7, k=1.5) == pytest.approx(fd_grad(lambda x: branchy(x, 1.5), 0.7), rel=1e-7)


def test_other_argument_types_after_fusion_go_through_the_dispatcher():
    g = srcgrad.grad(branchy)
    assert g(0.7) == pytest.approx(fd_grad(branchy, 0.7), rel=1e-7)
    assert g(0.7) == pytest.approx(fd_grad(branchy, 0.7), rel=1e-7)
    assert _fused(g)
    assert g(2) == pytest.approx(fd_grad(branchy, 2.0), rel=1e-7)
    assert type(g(2)) is float
    value = g(np.float64(-0.4))
    assert value == pytest.approx(fd_grad(branchy, -0.4), rel=1e-7)
    with pytest.raises(srcgrad.SrcgradError, match="complex"):
        g(1j)


def test_fused_entry_reads_globals_live_like_the_function():
    global SCALE
    g = srcgrad.grad(scaled)
    assert g(0.3) == pytest.approx(3.0 * math.exp(0.3))
    old, SCALE = SCALE, 5.0
    try:
        assert g(0.3) == pytest.approx(5.0 * math.exp(0.3))
    finally:
        SCALE = old


def test_closure_variables_rebound_after_the_first_call_are_seen():
    a = 2.0

    def f(x):
        return a * x * x

    g = srcgrad.grad(f)
    assert g(1.5) == pytest.approx(2.0 * 2 * 1.5)
    a = 4.0
    assert g(1.5) == pytest.approx(4.0 * 2 * 1.5)
    assert not _fused(g)  # the user's cell stays the user's: the entry calls the variant instead


def test_array_arguments_and_integer_arrays():
    g = srcgrad.grad(vector_loss)
    w = np.linspace(-1.0, 1.0, 5)
    expected = 2 * np.tanh(w) * (1 - np.tanh(w) ** 2)
    np.testing.assert_allclose(g(w), expected, rtol=1e-12)
    np.testing.assert_allclose(g(w), expected, rtol=1e-12)
    ints = np.arange(-2, 3)
    np.testing.assert_allclose(g(ints), 2 * np.tanh(ints) * (1 - np.tanh(ints) ** 2), rtol=1e-12)
    with pytest.raises(srcgrad.SrcgradError, match="dtype"):
        g(np.array(["a", "b"]))


def test_user_errors_keep_their_type_and_internal_ones_are_reported():
    def f(x):
        return math.log(x)

    g = srcgrad.grad(f)
    assert g(2.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="math domain"):
        g(-1.0)


def test_concurrent_first_calls_of_mixed_kinds_agree():
    g = srcgrad.grad(branchy)
    points = [(-1.15 + 0.1 * i) for i in range(24)]  # none near the branch at 0
    results: dict[int, float] = {}
    errors = []
    barrier = threading.Barrier(8)

    def work(worker):
        barrier.wait()
        try:
            for i, x in enumerate(points):
                arg = np.float64(x) if (i + worker) % 3 == 0 else x
                results[(worker, i)] = float(g(arg))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (_, i), value in results.items():
        assert value == pytest.approx(fd_grad(branchy, points[i]), rel=1e-6, abs=1e-9)


def test_every_entry_version_keeps_the_dispatcher_first_and_the_same_cell_count():
    g = srcgrad.grad(branchy)
    before = g.__code__
    g(0.3)
    for code in (before, g.__code__):
        assert code.co_freevars[0] == SLOW
        assert len(code.co_freevars) == ENTRY_CELLS


def test_a_closure_is_never_read_as_a_global(monkeypatch):
    # With room for every name in the entry's cells, the closure's code still is not moved into the entry: its name
    # also names a module global here, which the entry (running in the module's globals) would read instead.
    from srcgrad import entry

    monkeypatch.setattr(entry, "ENTRY_CELLS", 16)

    def make(k):
        SCALE = k  # noqa: N806 - shadows the module's SCALE on purpose

        def f(x):
            return math.sin(x) * SCALE

        return f

    g = srcgrad.grad(make(2.0))
    assert g(1.5) == pytest.approx(2.0 * math.cos(1.5))
    assert g(1.5) == pytest.approx(2.0 * math.cos(1.5))
    assert not _fused(g)
    assert _fused_with_room(monkeypatch)


def _fused_with_room(monkeypatch):
    """The same function without a closure is fused with that room (so the test above tests the closure rule)."""
    g = srcgrad.grad(sine_times_scale)
    assert g(0.3) == pytest.approx(SCALE * math.cos(0.3))
    assert g(0.3) == pytest.approx(SCALE * math.cos(0.3))
    return _fused(g)


def sine_times_scale(x):
    return math.sin(x) * SCALE


def test_a_module_that_rebinds_the_names_of_types_gets_the_fused_entry(tmp_path):
    # The entry reads type, float, Exception... from srcgrad's constants, never from the user's module.
    text = ("import math\nfloat = int\ntype = len\nException = ValueError\nbool = str\n\n\n"
            "def f(x):\n    return math.sin(x) * 2.0\n")
    module = load(tmp_path / "shadowing.py", text)
    g = srcgrad.grad(module.f)
    assert g(0.5) == pytest.approx(2.0 * math.cos(0.5))
    assert g(0.5) == pytest.approx(2.0 * math.cos(0.5))
    assert _fused(g)
    assert g(0.25) == pytest.approx(2.0 * math.cos(0.25))
    assert g(2) == pytest.approx(2.0 * math.cos(2.0))
