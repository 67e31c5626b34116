"""Layouts: how many dimensions an array has and which of its axes have length 1, as the first call shows them.

In: argument values (at a call) and IR ops (in the shapes pass). Out: layout strings and the facts they decide.
A layout is one character per axis: ``"1"`` (length 1) or ``"n"`` (length 2 or more); ``""`` is a 0-d value (a Python
number or a 0-d array). None means not known (the rank, or an axis, is not certain): the generated code then keeps
srcgrad's runtime helpers, which read shapes at run time.

What holds:
- an argument has a layout only when it is a plain float64 ndarray with no empty axis; its kind is then
  ``"A:" + layout`` (``"A"`` alone: an array of any layout, the general variant). A different layout is a new variant,
  like a new kind; the entry checks it cheaply (:func:`check`);
- a value has a layout only when every operand it is computed from has one (elementwise operations, ``@``,
  ``.T``, ``np.sum``/``np.mean``/``np.max``/``np.min`` over constant axes, and a row ``a[i]`` of an array of rank 2
  or more whose index is the int of an enclosing ``for i in range(...)``), so every value with a rank-1-or-more
  layout is a float64 array with no empty axis and every value it is computed from too (see :func:`float64_clean`);
- two operands of one broadcasting operation with the same layout have the same shape (numpy broadcasts axes of
  equal length or of length 1 only), so broadcasting is undone by the layouts alone (:func:`sum_axes`).
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import numpy as np

from srcgrad.binding import SCALAR, bind_params, const_kind
from srcgrad.records import record

ONE, MANY = "1", "n"
ARRAY_PREFIX = "A:"
_F64 = np.dtype(np.float64)
_BY_SHAPE: dict[tuple, str] = {}  # shape -> layout (arguments of one function have few shapes)


# --- arguments ----------------------------------------------------------------------------------------------------


def of_value(value: Any) -> str | None:
    """The layout of an argument, or None when it has none (not a float64 ndarray, or an empty axis)."""
    if type(value) is not np.ndarray or value.dtype is not _F64:
        return None
    shape = value.shape
    found = _BY_SHAPE.get(shape)
    if found is None:
        if 0 in shape:
            return None
        found = "".join(ONE if n == 1 else MANY for n in shape)
        if len(_BY_SHAPE) > 4096:
            _BY_SHAPE.clear()
        _BY_SHAPE[shape] = found
    return found


def kind_of(value: Any, plain: str) -> str:
    """``plain`` ("A") with the argument's layout when it has one."""
    layout = of_value(value)
    return plain if layout is None else ARRAY_PREFIX + layout


@record(frozen=True)
class Keyed:
    """An array argument in the dispatcher's key: its type and its layout (None: it has none)."""

    type: type
    layout: str | None


def key_of(value: Any) -> Keyed:
    return Keyed(type(value), of_value(value))


def split(kind: Any) -> tuple[Any, str | None]:
    """A kind as the passes know it ("S", "A"...) and its layout (None when it carries none)."""
    if isinstance(kind, str) and kind.startswith(ARRAY_PREFIX):
        return kind[:1], kind[len(ARRAY_PREFIX):]
    return kind, None


def check(name: str, layout: str, dtype_ref: str) -> list[str]:
    """The entry's test that argument ``name`` (known to be an ndarray) has ``layout`` and dtype float64."""
    out = [f"{name}.dtype is {dtype_ref}", f"{name}.ndim == {len(layout)}"]
    return out + [f"{name}.shape[{i}] {'== 1' if c == ONE else '> 1'}" for i, c in enumerate(layout)]


FLOAT64 = _F64


# --- the algebra of layouts ---------------------------------------------------------------------------------------


def broadcast(layouts: list[str | None]) -> str | None:
    """The layout of an elementwise operation's result."""
    if any(lay is None for lay in layouts):
        return None
    rank = max((len(lay) for lay in layouts), default=0)
    out = []
    for i in range(rank):
        axis = [lay[len(lay) - rank + i] for lay in layouts if len(lay) - rank + i >= 0]
        out.append(MANY if MANY in axis else ONE)
    return "".join(out)


def matmul(a: str | None, b: str | None) -> str | None:
    if a is None or b is None or not a or not b:
        return None
    if len(a) == 1 and len(b) == 1:
        return ""
    if len(b) == 1:
        return a[:-1]
    if len(a) == 1:
        return b[:-2] + b[-1]
    batch = broadcast([a[:-2], b[:-2]])
    return None if batch is None else batch + a[-2] + b[-1]


def axes_of(axis: Any, rank: int) -> tuple[int, ...] | None:
    """A constant ``axis`` argument as sorted non-negative axes (None: every axis); False when it is not one."""
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    if not all(type(a) is int and -rank <= a < rank for a in items):
        return False  # type: ignore[return-value]
    return tuple(sorted({a % rank for a in items}))


def reduce(layout: str | None, axes: tuple[int, ...] | None, keepdims: bool) -> str | None:
    if layout is None:
        return None
    axes = tuple(range(len(layout))) if axes is None else axes
    return "".join(ONE if i in axes else c for i, c in enumerate(layout) if keepdims or i not in axes)


def sum_axes(have: str, want: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Undoing broadcasting from ``have`` (the result) to ``want`` (an operand): the leading axes to sum away, and
    the axes (numbered in ``want``) to sum keeping them."""
    extra = len(have) - len(want)
    kept = tuple(i for i, c in enumerate(want) if c == ONE and have[extra + i] == MANY)
    return tuple(range(extra)), kept


# --- which primitives the shapes pass follows ---------------------------------------------------------------------

MATMULS = (operator.matmul, np.matmul)
REDUCTIONS = (np.sum, np.mean, np.max, np.min, np.amax, np.amin)
TRANSPOSE = ("attribute", "T")


# --- the shapes pass: the layout of every value -------------------------------------------------------------------


def infer(fn: Any, kinds: dict[str, str], arg_layouts: dict[str, str]) -> dict[str, str | None]:
    """The layout of every value the function computes (None: not known). Loops make it a fixpoint: a value's
    layouts from every assignment must agree; a value read before any assignment computed one waits for it."""
    from srcgrad import ir

    found: dict[str, str | None] = {}
    for p in fn.params:
        found[p] = "" if kinds.get(p) == SCALAR else arg_layouts.get(p)
    for stmt in ir.walk(fn.body):  # names bound by a loop, a with or an except: not followed
        for name in _bound_names(stmt):
            found[name] = None
    ops = list(ir.walk_ops(fn.body))
    rows = _row_reads(fn, ops)
    for _ in range(2 * len(ops) + 2):  # each value changes at most twice: unknown -> a layout -> None
        changed = False
        for op in ops:
            new = _row_layout(op, found) if id(op) in rows else _op_layout(fn, op, found, kinds)
            if new is _WAIT:
                continue
            merged = new if op.target not in found or found[op.target] == new else None
            if op.target not in found or merged != found[op.target]:
                found[op.target] = merged
                changed = True
        if not changed:
            break
    return found


_WAIT = object()  # an operand's layout is not computed yet


def _row_reads(fn: Any, ops: list) -> set[int]:
    """The ops ``a[i]`` (``id``) whose index is the target of an enclosing ``for i in range(...)`` that the loop's
    body never binds again: ``i`` is an int there, so ``a[i]`` is a row of ``a`` (or raises)."""
    from srcgrad import ir

    made_by: dict[str, list] = {}
    for op in ops:
        made_by.setdefault(op.target, []).append(op)
    rows: set[int] = set()
    for loop in ir.walk(fn.body):
        if not isinstance(loop, ir.For) or not _is_range(loop.iterable, made_by):
            continue
        inner = ir.walk(loop.body)
        if any(_binds(stmt, loop.target) for stmt in inner):
            continue
        rows.update(id(op) for op in inner if isinstance(op, ir.Op) and _indexed_by(op, loop.target))
    return rows


def _is_range(iterable: Any, made_by: dict[str, list]) -> bool:
    from srcgrad import ir

    makers = made_by.get(iterable.name, []) if isinstance(iterable, ir.Var) else []
    return len(makers) == 1 and makers[0].form.kind == "call" and makers[0].callee is range


def _binds(stmt: Any, name: str) -> bool:
    from srcgrad import ir

    return (isinstance(stmt, ir.Op) and stmt.target == name) or (isinstance(stmt, ir.For) and stmt.target == name)


def _indexed_by(op: Any, name: str) -> bool:
    """``a[name]``: one index, the name itself, into a local array."""
    from srcgrad import ir

    if op.form.kind != "subscript" or op.rule is None or len(op.args) != 2 or not isinstance(op.args[0], ir.Var):
        return False
    index = op.args[1]
    return isinstance(index, ir.Index) and not index.is_tuple and index.parts == (ir.Var(name),)


def _row_layout(op: Any, found: dict) -> Any:
    """A row of an array of rank 2 or more (a row of a vector would be a numpy scalar, not an array)."""
    lay = found.get(op.args[0].name, _WAIT)
    if lay is _WAIT:
        return _WAIT
    return lay[1:] if lay is not None and len(lay) >= 2 else None


def _bound_names(stmt: Any) -> list[str]:
    from srcgrad import ir

    if isinstance(stmt, ir.For):
        return [stmt.target]
    return []


def _op_layout(fn: Any, op: Any, found: dict, kinds: dict) -> Any:
    from srcgrad import ir

    def layout(a: Any) -> Any:
        if isinstance(a, ir.Var):
            return found[a.name] if a.name in found else _WAIT
        return "" if isinstance(a, ir.Const) and const_kind(a) == SCALAR else None

    if op.form.kind == "bound":  # what a with or an except binds
        return None
    if op.form.kind == "copy":
        return layout(op.args[0])
    operands = [layout(a) for a in op.operands()]
    if _WAIT in operands:
        return _WAIT
    if kinds.get(op.target) == SCALAR:  # a number made of numbers (math.prod of an array is an array)
        return "" if all(lay == "" for lay in operands) else None
    return _primitive_layout(fn, op, operands, found)


def _primitive_layout(fn: Any, op: Any, operands: list, found: dict) -> str | None:
    """The layout of a primitive's result from its operands' (all known or None)."""

    rule = op.rule
    if rule is None or rule.nondiff or op.form.kind in ("bound", "append", "tuple", "list"):
        return None
    func = rule.func
    if func in MATMULS and len(op.args) == 2 and not op.kwargs:
        return matmul(operands[0], operands[1])
    if func == TRANSPOSE:
        return None if operands[0] is None else operands[0][::-1]
    if any(func is r for r in REDUCTIONS) and op.form.kind == "call":
        return _reduction_layout(bind_params(fn, op), found)
    if op.form.kind in ("binop", "unaryop") or (op.form.kind == "call" and isinstance(func, np.ufunc)):
        return broadcast(operands)  # (other functions that broadcast may make a shape of their own: np.linspace)
    return None


def reduction_parts(params: dict, found: dict) -> tuple | None:
    """``(a, layout of a, axes, keepdims)`` of a ``np.sum``/``np.mean``/``np.max``/``np.min`` call over constant
    axes with nothing else given (no dtype, out, where, initial); None for any other call."""
    from srcgrad import ir

    a = params.get("a")
    if not isinstance(a, ir.Var) or found.get(a.name) is None:
        return None
    for name, value in params.items():
        if name not in ("a", "axis", "keepdims") and not (isinstance(value, ir.Const) and value.value is None):
            return None
    axis, keepdims = params.get("axis"), params.get("keepdims")
    if not all(v is None or (isinstance(v, ir.Const) and not v.live) for v in (axis, keepdims)):
        return None
    keep = keepdims.value if keepdims is not None else False
    if type(keep) is not bool:
        return None
    lay = found[a.name]
    axes = axes_of(axis.value if axis is not None else None, len(lay))
    if axes is False:
        return None
    return a, lay, axes, keep


def _reduction_layout(params: dict, found: dict) -> str | None:
    parts = reduction_parts(params, found)
    return None if parts is None else reduce(parts[1], parts[2], parts[3])


# --- adjoints in plain numpy, where layouts are known -------------------------------------------------------------


def _axis_node(axes: tuple[int, ...]) -> ast.expr:
    if len(axes) == 1:
        return ast.Constant(value=axes[0])
    return ast.Tuple(elts=[ast.Constant(value=a) for a in axes], ctx=ast.Load())


def np_sum(np_name: str, value: ast.expr, axes: tuple[int, ...] | None, keepdims: bool = False) -> ast.expr:
    """``np.sum(value, axis=..., keepdims=True)`` (no ``axis`` when ``axes`` is None)."""
    keywords = [] if axes is None else [ast.keyword(arg="axis", value=_axis_node(axes))]
    if keepdims:
        keywords.append(ast.keyword(arg="keepdims", value=ast.Constant(value=True)))
    func = ast.Attribute(value=ast.Name(id=np_name, ctx=ast.Load()), attr="sum", ctx=ast.Load())
    return ast.Call(func=func, args=[value], keywords=keywords)


def unbroadcast(np_name: str, c: ast.expr, have: str, want: str) -> ast.expr:
    """``c`` (of layout ``have``) summed down to layout ``want``: nothing when they match, ``np.sum(c, axis=0)``
    for leading axes, ``np.sum(c, axis=k, keepdims=True)`` for axes of length 1."""
    if not want:
        return c if not have else np_sum(np_name, c, None)
    leading, kept = sum_axes(have, want)
    if leading:
        c = np_sum(np_name, c, leading)
    if kept:
        c = np_sum(np_name, c, kept, keepdims=True)
    return c


def _t(value: ast.expr) -> ast.expr:
    return ast.Attribute(value=value, attr="T", ctx=ast.Load())


def _matmul(a: ast.expr, b: ast.expr) -> ast.expr:
    return ast.BinOp(left=a, op=ast.MatMult(), right=b)


def _call(np_name: str, attr: str, *args: ast.expr) -> ast.expr:
    func = ast.Attribute(value=ast.Name(id=np_name, ctx=ast.Load()), attr=attr, ctx=ast.Load())
    return ast.Call(func=func, args=list(args), keywords=[])


def matmul_adjoints(np_name: str, g: ast.expr, x: ast.expr, y: ast.expr, lx: str | None,
                    ly: str | None) -> tuple[ast.expr, ast.expr] | None:
    """The adjoints of ``x @ y`` as a person writes them (``g @ y.T``, ``x.T @ g``, ``np.outer``...), for known
    ranks; None otherwise (matmul_grad_left/right read the ranks at run time)."""
    if lx is None or ly is None or not lx or not ly:
        return None
    rx, ry = len(lx), len(ly)
    if rx == 2 and ry == 2:
        return _matmul(g, _t(y)), _matmul(_t(x), g)
    if rx == 2 and ry == 1:
        return _call(np_name, "outer", g, y), _matmul(g, x)
    if rx == 1 and ry == 2:
        return _matmul(y, g), _call(np_name, "outer", x, g)
    if rx == 1 and ry == 1:
        return ast.BinOp(left=g, op=ast.Mult(), right=y), ast.BinOp(left=g, op=ast.Mult(), right=x)
    if rx == ry and lx[:-2] == ly[:-2]:  # batched, no broadcasting of the batch axes
        swap = ast.Constant(value=-1), ast.Constant(value=-2)
        return (_matmul(g, _call(np_name, "swapaxes", y, *swap)), _matmul(_call(np_name, "swapaxes", x, *swap), g))
    return None


def restored(g: ast.expr, layout: str, axes: tuple[int, ...] | None, keepdims: bool) -> ast.expr:
    """The adjoint of a reduction over ``axes`` of a value of ``layout``, as an array that broadcasts to it:
    ``g`` itself when the axes were kept or all of them reduced, ``g[:, None]`` when some were dropped."""
    if keepdims or axes is None or not axes:
        return g  # (``axis=()`` reduces nothing)
    if len(axes) == len(layout):  # (every axis: the result is a number, maybe a Python float that has no
        return g  # ``[None]``; a number broadcasts to the value's shape as it is)
    index: list[ast.expr] = [ast.Constant(value=None) if i in axes else ast.Slice() for i in range(len(layout))]
    while isinstance(index[-1], ast.Slice):
        index.pop()
    part = index[0] if len(index) == 1 else ast.Tuple(elts=index, ctx=ast.Load())
    return ast.Subscript(value=g, slice=part, ctx=ast.Load())


def count(a: ast.expr, layout: str, axes: tuple[int, ...] | None) -> ast.expr:
    """How many elements each element of a reduction over ``axes`` summarises: ``a.size``, ``a.shape[1]``..."""
    if axes is None or len(axes) == len(layout):
        return ast.Attribute(value=a, attr="size", ctx=ast.Load())
    out: ast.expr | None = None
    for i in axes:
        n = ast.Subscript(value=ast.Attribute(value=a, attr="shape", ctx=ast.Load()), slice=ast.Constant(value=i),
                          ctx=ast.Load())
        out = n if out is None else ast.BinOp(left=out, op=ast.Mult(), right=n)
    return out if out is not None else ast.Constant(value=1)  # (``axis=()``: each element is its own mean)


def spread(np_name: str, g: ast.expr, var: str) -> ast.expr:
    """``np.broadcast_to(g, var.shape)``: an adjoint that broadcasts to its value's shape, as an array of it."""
    shape = ast.Attribute(value=ast.Name(id=var, ctx=ast.Load()), attr="shape", ctx=ast.Load())
    return _call(np_name, "broadcast_to", g, shape)


# --- returned gradients: arrays the gradient code made itself -----------------------------------------------------

_FRESH_CALLS = frozenset({"sum", "outer"})  # np functions whose result (of rank 1 or more) is a new array


def owned_results(statements: list, env: dict[str, str | None], np_name: str,
                  helpers: dict[str, int]) -> dict[str, tuple[str | None, bool]]:
    """Straight-line generated statements in order -> the layout of the value each assigned name holds at the end,
    when that value is certainly a new float64 array the code made (an arithmetic result, ``@``, ``np.sum`` over
    axes, ``np.outer``: not a name's value, not a view, not a helper's result); other names map to None.

    ``env``: the layouts of the values the statements read (srcgrad/layouts.py; every one float64 or a number);
    ``helpers``: srcgrad's runtime helpers by their bound name -> the argument whose layout their result has."""
    env = {**env, _HELPERS: helpers}
    owned: dict[str, tuple[str | None, bool]] = {}
    for stmt in statements:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            continue
        name = stmt.targets[0].id
        layout = expression_layout(stmt.value, env, np_name)
        env[name] = layout
        owned[name] = (layout, bool(layout) and _fresh(stmt.value, np_name))
    return owned


_HELPERS = "<helpers>"  # (an env key no name can be)


def _fresh(node: ast.expr, np_name: str) -> bool:
    if isinstance(node, ast.BinOp) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)):
        return True
    return isinstance(node, ast.Call) and _np_attr(node.func, np_name) in _FRESH_RESULTS


def _np_attr(node: ast.expr, np_name: str) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == np_name:
        return node.attr
    return None


# (numpy's namespace itself: dir(np) and getattr would import every lazy submodule — f2py, testing — at import)
_UFUNCS = frozenset(n for n, value in vars(np).items() if isinstance(value, np.ufunc))
_FRESH_RESULTS = _FRESH_CALLS | _UFUNCS  # (made once: a union per call cost a generation 0.2 ms)


def expression_layout(node: ast.expr, env: dict, np_name: str) -> str | None:
    """The layout of a generated expression's value (None: not known)."""
    if isinstance(node, ast.Constant):
        return "" if type(node.value) in (int, float) else None
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.BinOp):
        left, right = (expression_layout(n, env, np_name) for n in (node.left, node.right))
        return matmul(left, right) if isinstance(node.op, ast.MatMult) else broadcast([left, right])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return expression_layout(node.operand, env, np_name)
    if isinstance(node, ast.Attribute):
        inner = expression_layout(node.value, env, np_name)
        if node.attr == "T" and inner is not None:
            return inner[::-1]
        return "" if node.attr == "size" and inner is not None else None
    if isinstance(node, ast.Subscript):
        return _subscript_layout(node, env, np_name)
    if isinstance(node, ast.Call):
        return _call_layout(node, env, np_name)
    return None


def _subscript_layout(node: ast.Subscript, env: dict, np_name: str) -> str | None:
    """``g[:, None]`` (whole axes and new ones) and ``a.shape[i]`` (a number)."""
    value = node.value
    if isinstance(value, ast.Attribute) and value.attr == "shape":
        return "" if expression_layout(value.value, env, np_name) is not None else None
    inner = expression_layout(value, env, np_name)
    parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if inner is None or not all(_whole(p) or _none(p) for p in parts):
        return None
    whole = sum(1 for p in parts if _whole(p))
    if whole > len(inner):
        return None
    out, i = [], 0
    for p in parts:
        out.append(ONE if _none(p) else inner[i])
        i += _whole(p)
    return "".join(out) + inner[i:]


def _sum_layout(node: ast.Call, layout: str) -> str | None:
    """``np.sum(e, axis=..., keepdims=...)`` with constant keywords."""
    keywords = {k.arg: k.value for k in node.keywords}
    if not set(keywords) <= {"axis", "keepdims"} or not all(isinstance(v, (ast.Constant, ast.Tuple))
                                                          for v in keywords.values()):
        return None
    axes = axes_of(ast.literal_eval(keywords["axis"]) if "axis" in keywords else None, len(layout))
    keep = ast.literal_eval(keywords["keepdims"]) if "keepdims" in keywords else False
    return None if axes is False or type(keep) is not bool else reduce(layout, axes, keep)


def _whole(node: ast.expr) -> bool:
    return isinstance(node, ast.Slice) and node.lower is None and node.upper is None and node.step is None


def _none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _call_layout(node: ast.Call, env: dict, np_name: str) -> str | None:
    attr = _np_attr(node.func, np_name)
    args = [expression_layout(a, env, np_name) for a in node.args]
    if isinstance(node.func, ast.Name) and node.func.id in env.get(_HELPERS, {}):
        position = env[_HELPERS][node.func.id]
        return args[position] if position < len(args) else None
    if attr in _UFUNCS and not node.keywords:
        return broadcast(args)
    if attr == "outer" and len(args) == 2 and all(a is not None and len(a) == 1 for a in args):
        return args[0] + args[1]
    if attr == "sum" and len(args) == 1 and args[0] is not None:
        return _sum_layout(node, args[0])
    if attr == "broadcast_to" and len(node.args) == 2:
        shape = node.args[1]
        if isinstance(shape, ast.Attribute) and shape.attr == "shape":
            return expression_layout(shape.value, env, np_name)
    return None
