"""Outputs that are more than the differentiated value: ``value_and_grad(f, has_aux=True)``.

In: the lowered function (:mod:`srcgrad.ir`) of an ``f`` that returns ``(loss, aux)``. Out: the same function
returning ``loss``, with ``aux`` kept in a variable of its own (:func:`split_aux`); the generated code returns
``(loss, aux), gradients`` (JAX's convention: ``aux`` is any Python value, passed through, never differentiated).
What holds: what ``f`` returns must unpack into exactly two values (Python's ValueError/TypeError otherwise, at the
call, as ``loss, aux = f(...)`` would raise); the gradient is the gradient of ``loss`` alone.
"""

from __future__ import annotations

import operator

from srcgrad import ir
from srcgrad.rules import lookup
from srcgrad.runtime import check_unpacks


def split_aux(fn: ir.Function) -> tuple[ir.Function, str]:
    """``return pair`` becomes ``check_unpacks(pair, 2); loss = pair[0]; aux = pair[1]; return loss``; the name of
    ``aux`` is returned with the function (its op is kept although the gradient does not read it)."""
    ret = fn.body[-1]
    assert isinstance(ret, ir.Return)
    line, col = ret.line, ret.col
    taken = set(fn.used_names) | {op.target for op in ir.walk_ops(fn.body)} | set(fn.params)
    loss, aux, checked = (ir.fresh_name(base, taken) for base in ("loss", "aux", "pair_checked"))
    pair = _display_of(fn, ret.value)
    if pair is not None and len(pair.args) == 2:  # ``return loss, aux``: the items themselves, the pair unused
        keep = ir.Op(aux, None, ir.Form("copy"), (pair.args[1],), (), line, col)
        keep.keep = True
        fn.body[-1:] = [keep, ir.Return(pair.args[0], line, col)]
        return fn, aux
    check = ir.Op(checked, lookup(check_unpacks), ir.Form("call", check_unpacks.__name__), (ret.value, ir.Const(2)),
                  (), line, col, check_unpacks)
    check.keep = True
    check.own = True  # (generated code binds srcgrad's own function by name)
    items = []
    for name, index in ((loss, 0), (aux, 1)):
        items.append(ir.Op(name, lookup(operator.getitem), ir.Form("subscript"),
                           (ret.value, ir.Index((ir.Const(index),), False)), (), line, col))
    items[1].keep = True
    fn.body[-1:] = [check, *items, ir.Return(ir.Var(loss), line, col)]
    return fn, aux


def _display_of(fn: ir.Function, value: ir.Operand) -> ir.Op | None:
    """The tuple display op (at the top level of the body) that defines ``value``, if it is one."""
    if not isinstance(value, ir.Var):
        return None
    for op in fn.body:
        if isinstance(op, ir.Op) and op.target == value.name:
            return op if op.form.kind == "tuple" else None
    return None
