"""Gradients over Dask arrays (issue 20): Dask arrays as data and as ``wrt`` stay lazy, the gradient is a Dask array
the user computes (one pass with the value), and what Dask cannot do lazily is refused at the user's line.

Every gradient call here runs under a scheduler that raises: srcgrad must build the graph without computing. The
rule table (tests/rule_cases.py) runs with its arrays as Dask arrays: each case gives numpy's gradient or a
SrcgradError at the case's own line — never a silent computation, never a wrong number.
"""

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import srcgrad  # noqa: E402
from srcgrad import lazy  # noqa: E402
from srcgrad.errors import InternalError, InvalidArgument, SrcgradError, UnsupportedValue  # noqa: E402
from srcgrad.testing import numerical_grad  # noqa: E402


class Computed(Exception):
    pass


def refuse_compute(*args, **kwargs):
    raise Computed("a Dask array was computed")


def no_compute():
    """Any computation in this block raises: what srcgrad returns must still be lazy."""
    return dask.config.set(scheduler=refuse_compute)


def logistic_loss(w, X, y):
    z = X @ w
    return np.sum(np.logaddexp(0.0, z) - y * z) / X.shape[0]


def data(n=400, d=5, chunks=100, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ np.linspace(-1, 1, d)))).astype(float)
    return X, y, da.from_array(X, chunks=(chunks, d)), da.from_array(y, chunks=chunks)


def mean_logistic_loss(w, X, y):
    margins = X @ w
    return np.mean(np.logaddexp(0.0, margins) - y * margins)


def regularised_loss(w, X, y):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(w ** 2)


# mean: np.mean's uniform adjoint divides by the element count, read from the shape (Dask has no np.size);
# regularised: w's adjoint is a numpy array (the penalty) plus a Dask one (the data), never added in place (numpy's
# ``+=`` would hand Dask an ``out=`` ndarray, which it refuses)
@pytest.mark.parametrize("loss", [logistic_loss, mean_logistic_loss, regularised_loss])
def test_dask_data_numpy_wrt_gives_a_lazy_gradient(loss):
    X, y, dX, dy = data()
    w = np.linspace(0.5, -0.5, 5)
    with no_compute():
        value, g = srcgrad.value_and_grad(loss)(w, dX, dy)
        g_only = srcgrad.grad(loss)(w, dX, dy)
    assert isinstance(value, da.Array) and isinstance(g, da.Array) and isinstance(g_only, da.Array)
    assert g.shape == w.shape and g.dtype == np.float64
    value_np, g_np = srcgrad.value_and_grad(loss)(w, X, y)
    computed_value, computed_g, computed_g_only = dask.compute(value, g, g_only)  # one pass over the data
    assert computed_value == pytest.approx(value_np, rel=1e-12)
    np.testing.assert_allclose(computed_g, g_np, rtol=1e-12)
    np.testing.assert_allclose(computed_g_only, g_np, rtol=1e-12)
    np.testing.assert_allclose(g_np, numerical_grad(loss, (w, X, y), 0), rtol=1e-6)


def test_dask_wrt_gives_a_dask_gradient_with_its_chunks_and_dtype():
    X, y, dX, dy = data()
    w = da.from_array(np.linspace(0.5, -0.5, 5).astype(np.float32), chunks=2)
    with no_compute():
        g = srcgrad.grad(logistic_loss)(w, dX, dy)
        g_again = srcgrad.grad(logistic_loss)(w, dX, dy)  # (a second call: the dispatcher, not a fused entry)
    assert isinstance(g, da.Array) and g.dtype == np.float32 and g.chunks == w.chunks
    expected = srcgrad.grad(logistic_loss)(w.compute().astype(np.float64), X, y)
    np.testing.assert_allclose(g.compute(), expected, rtol=1e-5)
    np.testing.assert_allclose(g_again.compute(), expected, rtol=1e-5)


def softplus_sum(x, c):
    return np.sum(np.logaddexp(c, x) * np.linspace(0.5, 1.5, x.shape[0]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logaddexp_gradient_over_dask_does_not_compute_logaddexp_and_is_right_at_extremes(dtype):
    """The lazy gradient of np.logaddexp is the logistic function of the difference (numpy's logaddexp is several
    times slower than np.exp, and the gradient alone does not need its value), exact and silent where exp overflows."""
    x = np.array([-800.0, -100.0, -40.0, -1.0, 0.0, 1.0, 40.0, 100.0, 800.0], dtype=dtype)
    for c in (0.0, np.linspace(-2.0, 2.0, x.size).astype(dtype)):
        dx = da.from_array(x, chunks=4)
        with no_compute():
            g = srcgrad.grad(softplus_sum)(dx, c)
        assert not any("logaddexp" in str(name) for name in g.__dask_graph__().layers)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (no overflow warning from exp)
            got = g.compute()
        expected = srcgrad.grad(softplus_sum)(x, c)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=5e-7 if dtype == np.float32 else 1e-15, atol=0)


def test_value_and_gradient_of_logaddexp_over_dask_agree_with_numpy():
    x, c = np.linspace(-3.0, 3.0, 10), 0.5
    value, g = srcgrad.value_and_grad(softplus_sum)(da.from_array(x, chunks=3), c)
    value_np, g_np = srcgrad.value_and_grad(softplus_sum)(x, c)
    assert float(value.compute()) == pytest.approx(value_np, rel=1e-14)
    np.testing.assert_allclose(g.compute(), g_np, rtol=1e-14)
    np.testing.assert_allclose(g_np, numerical_grad(softplus_sum, (x, c), 0), rtol=1e-7)


def weighted(w, c):
    return np.sum(w * c) + 0.5 * np.sum(w ** 2)


def test_dask_wrt_whose_gradient_the_data_do_not_reach_is_still_a_dask_array():
    w = da.from_array(np.array([1.0, -2.0, 3.0]), chunks=2)
    c = np.array([0.5, 0.25, 4.0])
    with no_compute():
        g = srcgrad.grad(weighted)(w, c)
    assert isinstance(g, da.Array) and g.chunks == w.chunks
    np.testing.assert_allclose(g.compute(), c + w.compute())


def scaled_loss(scale, X, y):
    return scale * logistic_loss(np.ones(X.shape[1]), X, y) + scale ** 2


def test_float_wrt_with_dask_data_gives_a_zero_dimensional_dask_array():
    X, y, dX, dy = data()
    with no_compute():
        g = srcgrad.grad(scaled_loss)(1.5, dX, dy)
    assert isinstance(g, da.Array) and g.shape == () and g.dtype == np.float64
    assert float(g.compute()) == pytest.approx(srcgrad.grad(scaled_loss)(1.5, X, y), rel=1e-12)


def rows(x, w):
    y = x * 1.0
    y[1:3] = w[0] * y[0]
    return np.sum(y * y) + np.sum(np.tanh(np.concatenate([x, w])) * np.arange(6.0)) + np.max(x) + np.std(x)


def test_item_assignment_concatenate_max_std_stay_lazy_and_right():
    x, w = np.array([0.3, -1.2, 2.0, 0.7]), np.array([0.4, 1.1])
    dx = da.from_array(x, chunks=2)
    with no_compute():
        g = srcgrad.grad(rows, wrt=(0, 1))(dx, w)
    expected = srcgrad.grad(rows, wrt=(0, 1))(x, w)
    assert isinstance(g[0], da.Array) and isinstance(g[1], da.Array)
    np.testing.assert_allclose(g[0].compute(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(g[1].compute(), expected[1], rtol=1e-12)
    assert np.all(dx.compute() == x)  # the argument is unchanged (Dask's item assignment changes its array object)


# --- what Dask cannot do lazily: refused at the user's line -----------------------------------------------------


def crossed(a, b):
    return np.sum(np.cross(a, b))  # Dask has no np.cross


def products(x):
    return np.sum(np.cumprod(x))  # the gradient of cumprod needs the values (zeros)


def branches(x):
    if np.sum(x) > 0:  # an `if` on a Dask value computes it
        return np.sum(x ** 2)
    return np.sum(x)


def _line_of(func, text):
    import inspect

    lines, first = inspect.getsourcelines(func)
    return first + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("func, text, words", [
    (crossed, "np.cross(a, b)", "np.cross is not implemented by Dask"),
    (products, "np.cumprod(x)", "srcgrad's gradient of this line (cumprod_grad) needs the values of a Dask array"),
    (branches, "if np.sum(x) > 0", "this line computes a Dask array"),
])
def test_what_needs_values_is_refused_at_the_users_line(func, text, words):
    x = da.from_array(np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]), chunks=1)
    args = (x, x * 2.0) if func is crossed else (x,)
    with no_compute(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # (Dask warns before it would compute)
        with pytest.raises(UnsupportedValue) as caught:
            srcgrad.grad(func)(*args)
        assert dask.config.get("scheduler") is refuse_compute  # srcgrad's guard is gone after the call
    assert words in caught.value.message
    assert caught.value.location.filename == __file__ and caught.value.location.line == _line_of(func, text)


def reshaped(x):
    return np.sum(np.reshape(x, (3, 4)) ** 2)


def test_a_dask_failure_is_located_at_the_users_line():
    x = da.from_array(np.arange(12.0).reshape(4, 3), chunks=(3, 2))  # a chunking Dask cannot reshape
    with no_compute(), pytest.raises(UnsupportedValue) as caught:
        srcgrad.grad(reshaped)(x)
    assert "Dask cannot build this line" in caught.value.message and "NotImplementedError" in caught.value.message
    assert caught.value.location.line == _line_of(reshaped, "np.reshape")


# --- the guard: refuses in the calling thread only, and leaves the configuration as it was --------------------------


def test_the_guard_refuses_in_the_calling_thread_only():
    x = da.ones(10, chunks=5)
    before = dask.config.get("scheduler", None)
    lazy._enter()
    try:
        with pytest.raises(ValueError, match="srcgrad: this line computes a Dask array"):
            x.sum().compute()
        found = []
        worker = threading.Thread(target=lambda: found.append(float(x.sum().compute())))
        worker.start()
        worker.join()
        assert found == [10.0]  # another thread computes as configured before
    finally:
        lazy._exit()
    assert dask.config.get("scheduler", None) == before
    assert float(x.sum().compute()) == 10.0


# --- argument kinds ------------------------------------------------------------------------------------------------


def test_dask_wrt_kinds_integer_and_complex():
    ints = da.from_array(np.array([1, 2, 3]), chunks=2)
    with no_compute():
        g = srcgrad.grad(weighted)(ints, np.ones(3))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g.compute(), [2.0, 3.0, 4.0])
    with pytest.raises(InvalidArgument, match="complex"):
        srcgrad.grad(weighted)(da.from_array(np.ones(3) + 1j, chunks=2), np.ones(3))


class OtherArray:
    """An array type of a library srcgrad does not know (it speaks __array_function__): not differentiated."""

    shape, dtype, ndim = (3,), np.dtype(float), 1

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented


def test_arrays_of_other_libraries_are_not_differentiated():
    with pytest.raises(InvalidArgument, match="got OtherArray, expected a float or an array"):
        srcgrad.grad(weighted)(OtherArray(), np.ones(3))


def test_the_numpy_path_does_not_import_dask(tmp_path):
    script = tmp_path / "numpy_only.py"
    script.write_text("import sys\nimport numpy as np\nimport srcgrad\n\n\ndef f(w, X):\n"
                      "    return np.sum(np.tanh(X @ w))\n\n\ng = srcgrad.grad(f)\n"
                      "g(np.ones(3), np.ones((4, 3)))\ng(np.ones(3), np.ones((4, 3)))\n"
                      "srcgrad.vjp(f)(np.ones(3), np.ones((4, 3)), 1.0)\n"
                      "assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules), 'dask imported'\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": root, "SRCGRAD_CACHE": "0"})
    assert done.returncode == 0, done.stderr


# --- the rule table with Dask arrays ----------------------------------------------------------------------------


def _dask_arrays(args):
    return tuple(da.from_array(a, chunks=tuple(max(1, (n + 1) // 2) for n in a.shape))
                 if isinstance(a, np.ndarray) and a.ndim and a.dtype.kind in "fiub" else a for a in args)


def _sweep_cases():
    from rule_cases import CASES

    cases = [c for c in CASES if c.pending is None]
    stride = 1 if os.environ.get("SRCGRAD_DASK_SWEEP") == "all" else 4  # (all of them: ~25 s)
    return cases[::stride]


@pytest.mark.parametrize("case", _sweep_cases(), ids=lambda c: c.id)
def test_rule_case_with_dask_arrays_is_right_or_refused(case):
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    dask_args = _dask_arrays(args)
    if all(a is b for a, b in zip(args, dask_args)):
        pytest.skip("no array argument")
    expected = srcgrad.grad(case.fn, wrt=case.wrt)(*args)
    got = lazily_or_refused(case, lambda: srcgrad.grad(case.fn, wrt=case.wrt)(*dask_args))
    if got is REFUSED:
        return
    got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
    for g, e, position in zip(got, expected, case.wrt):
        if isinstance(args[position], np.ndarray):
            assert isinstance(g, da.Array), f"the gradient for argument {position} is not lazy"
        np.testing.assert_allclose(np.asarray(g, dtype=float), np.asarray(e, dtype=float), rtol=1e-6, atol=1e-9)


REFUSED = object()


def lazily_or_refused(case, call):
    """``call()`` with Dask computations refused; REFUSED when srcgrad refused it rightly: a SrcgradError at the
    case's line naming nothing srcgrad called itself, or the user's line calling a method Dask arrays lack."""
    try:
        with no_compute(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return call()
    except SrcgradError as refused:
        assert not isinstance(refused, InternalError), refused
        assert refused.location is not None and refused.location.filename.endswith(".py"), refused
        _assert_the_user_called_it(case, refused)
    except AttributeError as exc:  # (x.item(), x.diagonal())
        assert "'Array' object has no attribute" in str(exc)
    return REFUSED


def _assert_the_user_called_it(case, refused):
    """A numpy function Dask lacks is refused only when the user's code calls it: one that srcgrad's generated code
    calls itself (np.size once) would refuse every Dask user of the rule."""
    import inspect
    import re

    missing = re.match(r"np\.([\w.]+) is not implemented by Dask", refused.message)
    if missing is not None:
        name = missing.group(1).split(".")[-1]
        called = name == getattr(case.prim, "__name__", None) or re.search(rf"\b{name}\b", inspect.getsource(case.fn))
        try:  # (or numpy's function calls it: np.trapz is np.trapezoid in older numpy 2 releases)
            called = called or re.search(rf"\b{name}\(", inspect.getsource(case.prim))
        except (OSError, TypeError):
            pass
        assert called, f"srcgrad itself called np.{name}: {refused}"


# Cases that once were refused because of srcgrad's own code (np.size in a mean's adjoint and in np.append's, a
# numpy array of axes given to Dask's transpose, None in the index of Dask's item assignment): they must stay lazy.
STAY_LAZY = ["mean-axisNone-keepdimsFalse", "append", "dot-(2, 3, 4)-(4,)", "getitem-none", "getitem-ellipsis",
             "tensordot-([0, 2], [2, 1])-(2, 3, 4)-(5, 4, 2)", "rollaxis"]


@pytest.mark.parametrize("case_id", STAY_LAZY)
def test_rule_case_stays_lazy_with_dask_arrays(case_id):
    from rule_cases import CASES

    case = next(c for c in CASES if c.id == case_id)
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    expected = srcgrad.grad(case.fn, wrt=case.wrt)(*args)
    with no_compute():
        got = srcgrad.grad(case.fn, wrt=case.wrt)(*_dask_arrays(args))
    got, expected = (got, expected) if isinstance(expected, tuple) else ((got,), (expected,))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g, dtype=float), np.asarray(e, dtype=float), rtol=1e-12, atol=1e-14)
