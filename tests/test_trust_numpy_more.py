"""Issue 17 (numpy breadth, step 2): what a gradient check alone does not pin down for the rules of
srcgrad/rules/numpy_more.py and np.einsum with '...' — in-place updates of views, complex values refused with the
user's line, ties of np.partition and np.select, arguments refused, forward mode in every differentiable argument,
and the emitted (standalone) module."""

from __future__ import annotations

import operator
import tempfile
from pathlib import Path

import numpy as np
import pytest
import rule_cases_more
from module_files import load
from rule_cases import CASES

import srcgrad
from srcgrad.errors import UnsupportedSyntax, UnsupportedValue
from srcgrad.rules import all_rules
from srcgrad.runtime import as_tuple
from srcgrad.testing import check_grad

# --- a view's in-place update is refused: Python would see it through the other name ------------------------------


def update_rot90(x):
    y = np.rot90(x)
    y += 1.0
    return np.sum(x * x)


def update_rollaxis(x):
    y = np.rollaxis(x, 1)
    y += 1.0
    return np.sum(x * x)


def update_atleast_1d(x):
    y = np.atleast_1d(x)
    y += 1.0
    return np.sum(x * x)


def update_atleast_2d(x):
    y = np.atleast_2d(x)
    y += 1.0
    return np.sum(x * x)


def update_atleast_3d(x):
    y = np.atleast_3d(x)
    y *= 2.0
    return np.sum(x * x)


def update_vsplit(x):
    y, z = np.vsplit(x, 2)
    y += 1.0
    return np.sum(x * x)


def update_hsplit(x):
    parts = np.hsplit(x, 2)
    y = parts[0]
    y += 1.0
    return np.sum(x * x)


def update_dsplit(x):
    y = np.dsplit(x[:, :, None], 1)[0]
    y += 1.0
    return np.sum(x * x)


def update_real(x):
    y = np.real(x)
    y += 1.0
    return np.sum(x * x)


def update_imag(x):
    y = np.imag(x)
    y += 1.0
    return np.sum(x * x)


def update_real_if_close(x):
    y = np.real_if_close(x)
    y += 1.0
    return np.sum(x * x)


def update_nan_to_num(x):
    y = np.nan_to_num(x, copy=False)
    y += 1.0
    return np.sum(x * x)


def update_reshape(x):
    y = np.reshape(x, (-1,))
    y += 1.0
    return np.sum(x * x)


def update_transpose(x):
    y = np.transpose(x)
    y += 1.0
    return np.sum(x * x)


def update_ravel(x):
    y = np.ravel(x)
    y += 1.0
    return np.sum(x * x)


def update_squeeze(x):
    y = np.squeeze(x)
    y += 1.0
    return np.sum(x * x)


def update_expand_dims(x):
    y = np.expand_dims(x, 0)
    y += 1.0
    return np.sum(x * x)


def update_broadcast_to(x):
    y = np.broadcast_to(x, (2, 2, 2))
    y += 1.0
    return np.sum(x * x)


def update_swapaxes(x):
    y = np.swapaxes(x, 0, 1)
    y += 1.0
    return np.sum(x * x)


def update_moveaxis(x):
    y = np.moveaxis(x, 0, 1)
    y += 1.0
    return np.sum(x * x)


def update_flip(x):
    y = np.flip(x)
    y += 1.0
    return np.sum(x * x)


def update_fliplr(x):
    y = np.fliplr(x)
    y += 1.0
    return np.sum(x * x)


def update_flipud(x):
    y = np.flipud(x)
    y += 1.0
    return np.sum(x * x)


def update_asarray(x):
    y = np.asarray(x)
    y += 1.0
    return np.sum(x * x)


def update_diagonal(x):
    y = np.diagonal(x)
    y += 1.0
    return np.sum(x * x)



# the views of the other rule files: `y = <view>` then `y += 1.0`, one function each, written from this table
_MORE_VIEWS = {
    np.einsum: ("einsum", 'np.einsum("ii->i", x)'), np.diag: ("diag", "np.diag(x)"),
    np.float64: ("float64", "np.float64(x)"), np.diff: ("diff", "np.diff(x, 0)"),
    np.split: ("split", "np.split(x, 2)[0]"), np.array_split: ("array_split", "np.array_split(x, 2)[0]"),
    operator.getitem: ("getitem", "x[0]"), max: ("max", "max(x[:1, 0], x[1:, 0])"),
    min: ("min", "min(x[:1, 0], x[1:, 0])"), ("builtin", "max of items"): ("max_items", "max([x])"),
    ("builtin", "min of items"): ("min_items", "min([x])"),
    np.linalg.matrix_power: ("matrix_power", "np.linalg.matrix_power(x, 1)"), as_tuple: ("as_tuple", "as_tuple(x)[0]"),
}
_more_views = load(Path(tempfile.mkdtemp(prefix="srcgrad-views-")) / "more_views.py", "".join(
    ["import numpy as np\nfrom srcgrad.runtime import as_tuple\n"]
    + [f"\n\ndef update_{name}(x):\n    y = {view}\n    y += 1.0\n    return np.sum(x * x)\n"
       for name, view in _MORE_VIEWS.values()]))


VIEW_UPDATES = {
    np.rot90: update_rot90, np.rollaxis: update_rollaxis, np.atleast_1d: update_atleast_1d,
    np.atleast_2d: update_atleast_2d, np.atleast_3d: update_atleast_3d, np.vsplit: update_vsplit,
    np.hsplit: update_hsplit, np.dsplit: update_dsplit, np.real: update_real, np.imag: update_imag,
    np.real_if_close: update_real_if_close, np.nan_to_num: update_nan_to_num, np.reshape: update_reshape,
    np.transpose: update_transpose, np.ravel: update_ravel, np.squeeze: update_squeeze,
    np.expand_dims: update_expand_dims, np.broadcast_to: update_broadcast_to, np.swapaxes: update_swapaxes,
    np.moveaxis: update_moveaxis, np.flip: update_flip, np.fliplr: update_fliplr, np.flipud: update_flipud,
    np.asarray: update_asarray, np.diagonal: update_diagonal,
    **{func: getattr(_more_views, f"update_{name}") for func, (name, _) in _MORE_VIEWS.items()},
}


def test_every_view_rule_has_an_update_case():
    views = {rule.name for rule in all_rules() if rule.view and rule.adjoint.__module__.startswith("srcgrad.")}
    covered = {rule.name for rule in all_rules() if rule.func in VIEW_UPDATES}
    assert views == covered


@pytest.mark.parametrize("func", list(VIEW_UPDATES), ids=lambda f: VIEW_UPDATES[f].__name__)
def test_update_of_a_view_is_refused(func):
    update = VIEW_UPDATES[func]
    x = np.arange(1.0, 5.0).reshape(2, 2)
    with pytest.raises(UnsupportedSyntax, match="in place") as info:
        srcgrad.value_and_grad(update)(x)
    assert info.value.location.source_line.strip() in ("y += 1.0", "y *= 2.0")


def update_copies(x):  # fresh arrays: their updates are no one else's
    y = np.pad(x, 1)
    y += 1.0
    z = np.nan_to_num(x)
    z *= 2.0
    c = np.column_stack([x, x])
    c += x[0, 0]
    k = np.kron(x, x)
    k -= 1.0
    return np.sum(y * y) + np.sum(z * x) + np.sum(c ** 2) + np.sum(k * k)


def test_updates_of_copies_are_differentiated():
    check_grad(update_copies, np.array([[0.5, -1.0], [2.0, 0.3]]))


# --- real parts: refused on complex values, at the user's line -----------------------------------------------------


def complex_real(x):
    z = x.astype("complex128")
    y = z * 2.0
    return np.sum(np.real(y))


def complex_imag(x):
    z = x.astype("complex128")
    y = z * 2.0
    return np.sum(np.imag(y) * x)


def complex_conj(x):
    z = x.astype("complex128")
    y = z * 2.0
    return np.sum(np.abs(np.conj(y)))


def complex_angle(x):
    z = x.astype("complex128")
    y = z * 2.0
    return np.sum(np.angle(y) * x)


def complex_real_if_close(x):
    z = x.astype("complex128")
    y = z * 2.0
    return np.sum(np.real_if_close(y))


@pytest.mark.parametrize("f", [complex_real, complex_imag, complex_angle, complex_real_if_close],
                         ids=lambda f: f.__name__)
def test_complex_values_are_refused_at_the_line(f):
    with pytest.raises(UnsupportedValue, match="complex value") as info:
        srcgrad.grad(f)(np.array([1.0, -2.0]))
    assert info.value.location is not None
    assert f.__code__.co_firstlineno < info.value.location.line <= f.__code__.co_firstlineno + 3
    assert isinstance(info.value, ValueError) and "hint:" in str(info.value)
    with pytest.raises(UnsupportedValue, match="complex value"):
        srcgrad.jvp(f)(np.array([1.0, -2.0]), np.ones(2))


def test_complex_value_through_conj_is_refused():
    with pytest.raises(UnsupportedValue, match="np.conjugate of a complex value") as info:
        srcgrad.grad(complex_conj)(np.array([1.0, -2.0]))
    assert complex_conj.__code__.co_firstlineno < info.value.location.line <= complex_conj.__code__.co_firstlineno + 3


def real_parts_on_floats(x):
    return np.real(x) * np.imag(x) + np.angle(-x) + np.real(x) ** 2


def test_real_parts_of_floats():
    assert srcgrad.grad(real_parts_on_floats)(1.5) == pytest.approx(3.0)


# --- ties ---------------------------------------------------------------------------------------------------------


def partition_weighted(a):
    return np.sum(np.partition(a, 2) * np.array([1.0, 2.0, 3.0, 4.0, 5.0]))


def test_partition_ties_follow_sort_order():
    """Tied values: the first of them in the result takes the first of them in the input (np.sort's stable order)."""
    a = np.array([3.0, 1.0, 3.0, 0.0, 3.0])
    out = np.partition(a, 2)  # [0, 1, 3, 3, 3]: the three 3s take weights 3, 4, 5 in input order
    assert list(out[:2]) == [0.0, 1.0]
    np.testing.assert_allclose(srcgrad.grad(partition_weighted)(a), [3.0, 2.0, 4.0, 1.0, 5.0])


def test_partition_source_is_a_permutation_to_the_result():
    from srcgrad.runtime import partition_source

    rng = np.random.default_rng(3)
    for axis in (0, 1, -1, None):
        a = rng.integers(0, 4, size=(5, 7)).astype(float)  # many ties
        ans = np.partition(a, 3, axis=axis)
        source = partition_source(a, ans, axis)
        along = -1 if axis is None else axis
        flat = np.ravel(a) if axis is None else a
        np.testing.assert_array_equal(np.take_along_axis(flat, source, along), ans)
        n = flat.shape[along]
        np.testing.assert_array_equal(np.sort(source, axis=along), np.broadcast_to(
            np.expand_dims(np.arange(n), tuple(i for i in range(flat.ndim) if i != along % flat.ndim)), source.shape))


def select_first_wins(x, y):
    return np.sum(np.select([x > 0.0, x > -1.0], [x * 3.0, y], default=y * 10.0))


def test_select_gives_the_gradient_to_the_first_true_condition():
    x = np.array([0.5, -0.5, -2.0])
    y = np.array([1.0, 1.0, 1.0])
    gx, gy = srcgrad.grad(select_first_wins, wrt=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [3.0, 0.0, 0.0])
    np.testing.assert_array_equal(gy, [0.0, 1.0, 10.0])


# --- refused arguments and modes --------------------------------------------------------------------------------------


def nan_to_num_in_place(x):
    y = np.nan_to_num(x, copy=False)
    return np.sum(y * y)


def test_nan_to_num_in_place_is_refused():
    with pytest.raises(UnsupportedValue, match="in place") as info:
        srcgrad.grad(nan_to_num_in_place)(np.array([1.0, np.nan]))
    assert info.value.location.line == nan_to_num_in_place.__code__.co_firstlineno + 1


def gradient_spacing_differentiated(x):
    return np.sum(np.gradient(np.ones(4) * 2.0, x) ** 2)


def pad_mean(x):
    return np.sum(np.pad(x, 2, mode="mean") ** 2)


def pad_stat_length(x):
    return np.sum(np.pad(x, 2, mode="maximum", stat_length=1))


def test_refused_arguments_name_the_line():
    with pytest.raises(srcgrad.NoRuleError, match="varargs") as info:
        srcgrad.grad(gradient_spacing_differentiated)(0.5)
    assert info.value.location.line == gradient_spacing_differentiated.__code__.co_firstlineno + 1
    with pytest.raises(UnsupportedValue, match="'mean'") as info:
        srcgrad.grad(pad_mean)(np.ones(3))
    assert info.value.location.line == pad_mean.__code__.co_firstlineno + 1
    with pytest.raises(srcgrad.SrcgradError, match="does not accept these arguments") as info:
        srcgrad.grad(pad_stat_length)(np.ones(3))
    assert info.value.location.line == pad_stat_length.__code__.co_firstlineno + 1


def degrees_is_not_rad2deg(x):
    return np.degrees(x) + np.radians(x)


def test_degrees_and_radians_have_rules_of_their_own():
    assert np.degrees is not np.rad2deg and np.radians is not np.deg2rad
    assert srcgrad.grad(degrees_is_not_rad2deg)(0.3) == pytest.approx(180.0 / np.pi + np.pi / 180.0)


# --- einsum ---------------------------------------------------------------------------------------------------------


def einsum_implicit_cases(a):
    return np.sum(np.einsum("bA", a) * np.arange(6.0).reshape(3, 2))


def test_einsum_implicit_output_order():
    a = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(srcgrad.grad(einsum_implicit_cases)(a), np.arange(6.0).reshape(3, 2).T)


# --- forward mode in every differentiable argument ------------------------------------------------------------------

MORE = [c for c in CASES if c.fn.__module__ == rule_cases_more.__name__]


@pytest.mark.parametrize("case, position", [(c, p) for c in MORE for p in c.wrt],
                         ids=[f"{c.id}-{p}" for c in MORE for p in c.wrt])
def test_jvp_in_each_argument(case, position):
    rng = np.random.default_rng(sum(map(ord, case.id)) + position)
    args = case.args(np.random.default_rng(sum(map(ord, case.id))))
    x = args[position]
    t = float(rng.normal()) if isinstance(x, float) else rng.normal(size=np.shape(x))
    value, tangent = srcgrad.jvp(case.fn, wrt=position)(*args, t)
    eps = case.eps

    def at(s):
        moved = list(args)
        moved[position] = x + s * t
        return np.asarray(case.fn(*moved))

    expected = (at(eps) - at(-eps)) / (2 * eps)
    np.testing.assert_allclose(value, case.fn(*args), rtol=1e-12)
    np.testing.assert_allclose(tangent, expected, rtol=case.rtol * 10, atol=1e-6 * max(1.0, float(np.abs(expected))))


# --- an emitted module carries the helpers --------------------------------------------------------------------------

MODEL = '''
import numpy as np


def model(x, w):
    a = np.pad(x, ((1, 2), (0, 1)), mode="reflect", reflect_type="odd")
    b = np.gradient(x, 0.5, axis=0)
    c = np.einsum("...ij,...jk->...ik", x[None], w)
    d = np.partition(np.cross(x[:, :3], w[:3, 0]), 1, axis=None)
    return np.sum(a ** 2) + np.sum(b * x) + np.sum(c ** 2) + np.sum(d * np.arange(9.0))
'''


def test_emitted_module_differentiates_the_new_rules(tmp_path):
    module = load(tmp_path / "npmore_model.py", MODEL)
    text = srcgrad.emit(module.model, wrt=0, module=module.__name__)
    emitted = load(tmp_path / "npmore_model_grad.py", text)
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    np.testing.assert_allclose(emitted.model_grad(x, w), srcgrad.grad(module.model)(x, w), rtol=1e-12)
    check_grad(module.model, x, w)


# --- the documentation lists every function ------------------------------------------------------------------------


def test_docs_list_every_numpy_rule():
    """docs/numpy.md names every numpy function srcgrad has a rule for (with or without gradient)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "numpy.md").read_text(encoding="utf-8")
    named = set(re.findall(r"np\.[A-Za-z_][\w.]*[A-Za-z_\d]", text))
    assert len(named) > 150
    missing = sorted(r.name for r in all_rules() if r.name.startswith("np.") and r.name not in named
                     and r.func is not None and (r.nondiff or r.adjoint.__module__.startswith("srcgrad.")))
    assert not missing, f"functions with rules that docs/numpy.md does not list: {missing}"


# --- second derivatives through the linear, multilinear and permuting rules ---------------------------------------


def second_order(x):
    return (np.sum(np.pad(x, 1, mode="reflect") ** 3) + np.sum(np.cross(x, x[::-1]) ** 2)
            + np.sum(np.kron(x, x) ** 2) + np.sum(np.partition(x, 1) ** 3 * np.arange(3.0))
            + np.sum(np.gradient(x * x) ** 2) + np.sum(np.einsum("...i,...i", x, x) ** 2))


def test_hessian_through_the_new_rules():
    x = np.array([0.3, -0.5, 1.2])
    eps = 1e-5
    dgrad = srcgrad.grad(second_order)
    numerical = np.array([(dgrad(x + eps * e) - dgrad(x - eps * e)) / (2 * eps) for e in np.eye(3)])
    np.testing.assert_allclose(srcgrad.hessian(second_order)(x), numerical, rtol=1e-6, atol=1e-6)
