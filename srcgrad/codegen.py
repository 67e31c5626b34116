"""Code generation helpers: IR operands and ops in, Python ``ast`` nodes out; rule expressions inlined and simplified.

In: IR values (:mod:`srcgrad.ir`), a rule's return expression (a stdlib ``ast`` tree parsed from the rule's source).
Out: stdlib ``ast`` expressions and statements for the emitter (printed with astor).
What holds:
- names the generated code needs from srcgrad (``np``, ``math``, runtime helpers, non-inlined rules, and the
  builtins its own code calls: ``reversed``, ``range``, ``len``, ``slice``...) are bound through a :class:`Scope`
  (closure cells), which never reuses a name the user's function means differently: generated code never reads
  srcgrad's names from the user's globals or builtins. Where an expression is built without the scope at hand
  (:func:`literal`, :func:`index_value`), it refers to srcgrad's object with :func:`own_name`, and
  :meth:`Scope.link` binds it once the program is built;
- :func:`simplify` folds only what keeps semantics exactly (constant arithmetic, ``e ** 1``, ``1 * e``...); it never
  drops a multiplication by zero (that would lose shapes and NaNs).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
from typing import Any

import numpy as np

from srcgrad import ir, naming, program
from srcgrad.gast_tree import copy_node
from srcgrad.rules.registry import lookup

_MISSING = object()


class Scope:
    """Allocates the names of generated code: locals (temporaries, adjoints) and bound objects (closure cells)."""

    def __init__(self, taken: set[str], user_resolve: Any = None, locals_: set[str] | None = None):
        self.taken = set(taken)  # names that must not be reused (user locals and every name the user refers to)
        self.user_resolve = user_resolve or (lambda name: _MISSING)
        self.locals = set(locals_ or ())  # the function's own variables: never a binding, whatever they shadow
        self.bound: dict[str, Any] = {}  # name -> object, in binding order (deterministic)
        self._by_id: dict[int, str] = {}

    def local(self, preferred: str) -> str:
        name = naming.fresh(preferred, lambda n: n in self.taken or n in self.bound)
        self.taken.add(name)
        return name

    def bind(self, preferred: str, obj: Any) -> str:
        if id(obj) in self._by_id:
            return self._by_id[id(obj)]
        name = naming.fresh(preferred, lambda n: n in self.locals or (n in self.bound and self.bound[n] is not obj)
                            or (n in self.taken and self.user_resolve(n) is not obj))
        self.bound[name] = obj
        self._by_id[id(obj)] = name
        return name


    def link(self, trees: list) -> None:
        """Bind every :func:`own_name` in ``trees`` (ast nodes, or lists of them) through this scope."""
        for tree in trees:
            for node in program.nodes(tree) if isinstance(tree, ast.AST) else ():
                obj = getattr(node, "srcgrad_object", None) if node.__class__ is ast.Name else None
                if obj is not None:
                    node.id = self.bind(node.id, obj)
                    del node.srcgrad_object


def own_name(preferred: str, obj: Any) -> ast.Name:
    """A reference to srcgrad's ``obj`` (a builtin or module), named when :meth:`Scope.link` binds it."""
    node = ast.Name(id=preferred, ctx=ast.Load())
    node.srcgrad_object = obj
    return node


# Builtins simplify folds calls of, by the object a name is bound to.
_FOLDED_BUILTINS = (isinstance, int, float)


def modules_env(scope: Scope) -> dict:
    """A simplify env of the names generated code uses for numpy, math and the builtins simplify folds."""
    return {n: o for n, o in scope.bound.items() if _in_modules_env(o)}


def _in_modules_env(obj: Any) -> bool:
    return obj is np or obj is math or any(obj is b for b in _FOLDED_BUILTINS)


def scope_for(fn: ir.Function, user_resolve: Any) -> Scope:
    """The scope of a generated function: the user's names and the function's own variables are taken; a global the
    user refers to may be shared when it is the very object srcgrad binds (``np`` is numpy)."""
    own = set(fn.params) | {op.target for op in ir.walk_ops(fn.body)} | fn.local_names
    return Scope(set(fn.used_names) | own, user_resolve, own)


# --- IR -> ast ---------------------------------------------------------------------------------------------------


def name(n: str) -> ast.Name:
    return ast.Name(id=n, ctx=ast.Load())


def parse_expr(text: str) -> ast.expr:
    """``text`` as an expression tree (a new one each time). A dotted name (``np.logaddexp``: how calls are
    spelled, in ASCII: the parser would normalise other identifiers) is built directly; other text is parsed once
    per process."""
    parts = text.split(".")
    if text.isascii() and all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        tree: ast.expr = ast.Name(id=parts[0], ctx=ast.Load())
        for part in parts[1:]:
            tree = ast.Attribute(value=tree, attr=part, ctx=ast.Load())
        return tree
    parsed = _PARSED_EXPRS.get(text)
    if parsed is None:
        parsed = ast.parse(text, mode="eval").body
        if len(_PARSED_EXPRS) < 4096:
            _PARSED_EXPRS[text] = parsed
    return clone(parsed)


_PARSED_EXPRS: dict[str, ast.expr] = {}


def literal(value: Any) -> ast.expr:
    if isinstance(value, tuple):
        return ast.Tuple(elts=[literal(v) for v in value], ctx=ast.Load())
    if isinstance(value, float) and not math.isfinite(value):
        special = ast.Attribute(value=own_name("math", math), attr="nan" if math.isnan(value) else "inf",
                                ctx=ast.Load())
        return ast.UnaryOp(op=ast.USub(), operand=special) if value < 0 else special
    if isinstance(value, (int, float, bool, str, type(None))) or value is Ellipsis:
        return ast.Constant(value=value)
    raise ValueError(f"no literal for {value!r}")


def operand(op: Any) -> ast.expr:
    if isinstance(op, ir.Var):
        return name(op.name)
    if isinstance(op, ir.Const):
        if op.text is not None:
            return parse_expr(op.text)
        return literal(op.value)
    if isinstance(op, ir.Index):
        return index_value(op)
    raise TypeError(op)


def index_slice(index: ir.Index) -> ast.expr:
    """The index as written inside ``x[...]``."""
    parts = [_index_part(p) for p in index.parts]
    if index.is_tuple:
        return ast.Tuple(elts=parts, ctx=ast.Load())
    return parts[0]


def index_value(index: ir.Index) -> ast.expr:
    """The index as a value: slices become ``slice(lower, upper, step)`` (srcgrad's ``slice``: see own_name)."""
    parts = [_index_value_part(p) for p in index.parts]
    if index.is_tuple:
        return ast.Tuple(elts=parts, ctx=ast.Load())
    return parts[0]


def _index_value_part(p: Any) -> ast.expr:
    if isinstance(p, ir.Slice):
        bounds = [ast.Constant(value=None) if b is None else operand(b) for b in (p.lower, p.upper, p.step)]
        return ast.Call(func=own_name("slice", slice), args=bounds, keywords=[])
    if p is None or p is Ellipsis:
        return ast.Constant(value=p)
    return operand(p)


def _index_part(p: Any) -> ast.expr:
    if isinstance(p, ir.Slice):
        return ast.Slice(*[None if b is None else operand(b) for b in (p.lower, p.upper, p.step)])
    if p is None or p is Ellipsis:
        return ast.Constant(value=p)
    return operand(p)


_BINOP_AST = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "**": ast.Pow, "@": ast.MatMult,
              "%": ast.Mod, "//": ast.FloorDiv, "&": ast.BitAnd, "|": ast.BitOr, "^": ast.BitXor,
              "<<": ast.LShift, ">>": ast.RShift}
_UNARY_AST = {"-": ast.USub, "+": ast.UAdd, "not": ast.Not, "~": ast.Invert}
_CMP_AST = {"<": ast.Lt, "<=": ast.LtE, ">": ast.Gt, ">=": ast.GtE, "==": ast.Eq, "!=": ast.NotEq,
            "is": ast.Is, "is not": ast.IsNot, "in": ast.In, "not in": ast.NotIn}


def op_value(op: ir.Op, callee_name: str | None = None) -> ast.expr:
    """The right-hand side of a forward op, spelled as the user wrote it (``callee_name``: the name a call binds its
    function to, for calls srcgrad itself introduces, such as ``setitem``)."""
    spell = _SPELLINGS.get(op.form.kind)
    if spell is None:
        raise ValueError(f"cannot spell op form {op.form.kind}")
    return spell(op, callee_name)


def _spell_compare(op: ir.Op, _: Any) -> ast.expr:
    return ast.Compare(left=operand(op.args[0]), ops=[_CMP_AST[s]() for s in _split_compare(op.form.symbol)],
                       comparators=[operand(a) for a in op.args[1:]])


def _spell_dict(op: ir.Op, _: Any) -> ast.expr:  # (keys, then values)
    half = len(op.args) // 2
    return ast.Dict(keys=[operand(a) for a in op.args[:half]], values=[operand(a) for a in op.args[half:]])


def _spell_method(op: ir.Op, _: Any) -> ast.expr:
    func = ast.Attribute(value=operand(op.args[0]), attr=op.form.symbol, ctx=ast.Load())
    return ast.Call(func=func, args=[operand(a) for a in op.args[1:]], keywords=_keywords(op))


def _spell_call(op: ir.Op, callee_name: str | None) -> ast.expr:
    func = parse_expr(op.form.symbol) if callee_name is None else name(callee_name)
    return ast.Call(func=func, args=[operand(a) for a in op.args], keywords=_keywords(op))


def _keywords(op: ir.Op) -> list[ast.keyword]:
    return [ast.keyword(arg=k, value=operand(v)) for k, v in op.kwargs]


_SPELLINGS = {
    "copy": lambda op, _: operand(op.args[0]),
    "binop": lambda op, _: ast.BinOp(left=operand(op.args[0]), op=_BINOP_AST[op.form.symbol](),
                                     right=operand(op.args[1])),
    "unaryop": lambda op, _: ast.UnaryOp(op=_UNARY_AST[op.form.symbol](), operand=operand(op.args[0])),
    "compare": _spell_compare,
    "boolop": lambda op, _: ast.BoolOp(op=ast.And() if op.form.symbol == "and" else ast.Or(),
                                       values=[operand(a) for a in op.args]),
    "tuple": lambda op, _: ast.Tuple(elts=[operand(a) for a in op.args], ctx=ast.Load()),
    "list": lambda op, _: ast.List(elts=[operand(a) for a in op.args], ctx=ast.Load()),
    "dict": _spell_dict,
    "subscript": lambda op, _: ast.Subscript(value=operand(op.args[0]), slice=index_slice(op.args[1]),
                                             ctx=ast.Load()),
    "attr": lambda op, _: ast.Attribute(value=operand(op.args[0]), attr=op.form.symbol, ctx=ast.Load()),
    "fstring": lambda op, _: fstring(op),  # (as '...'.format(...))
    "method": _spell_method,
    "call": _spell_call,
}


def fstring(op: ir.Op) -> ast.Call:
    """An ``fstring`` op (see :class:`srcgrad.ir.Form`) spelled ``'TEMPLATE'.format(values...)``: the same text (both
    call ``format(value, spec)`` after the conversion), and printable by every astor and Python version (astor prints
    f-strings with ``ast.Str``, which Python 3.14 removes). A format spec is written into the template when it is a
    constant without braces, else passed as a nested field."""
    template: list[str] = []
    values: list[ast.expr] = []
    args = iter(op.args)

    def field(value: ir.Operand) -> str:
        values.append(operand(value))
        return str(len(values) - 1)

    for code in op.form.symbol.split():
        part = next(args)
        if code == "L":
            template.append(part.value.replace("{", "{{").replace("}", "}}"))
            continue
        text = "{" + field(part) + ("" if code[0] == "n" else "!" + code[0])  # (numbered: nested fields too)
        if code.endswith(":"):
            spec = next(args)
            literal = isinstance(spec, ir.Const) and isinstance(spec.value, str) and not set(spec.value) & set("{}")
            text += ":" + (spec.value if literal else "{" + field(spec) + "}")
        template.append(text + "}")
    method = ast.Attribute(value=ast.Constant(value="".join(template)), attr="format", ctx=ast.Load())
    return ast.Call(func=method, args=values, keywords=[])


def _split_compare(symbols: str) -> list[str]:
    out, words = [], symbols.split(" ")
    i = 0
    while i < len(words):
        if words[i] in ("is", "not") and i + 1 < len(words) and words[i + 1] in ("not", "in"):
            out.append(f"{words[i]} {words[i + 1]}")
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def with_keywords(signature: str, names: list[str]) -> str:
    """A parameter list (text) with keyword-only parameters ``names`` added (``seed``, ``x_dot``...): after ``*`` or
    ``*args`` when it has one (else after a new ``*``), before ``**kwargs``."""
    if not names:
        return signature
    args = ast.parse(f"def _({signature}): pass").body[0].args
    head, tail = signature, ""
    if args.kwarg is not None:
        cut = signature.rindex("**")
        head, tail = signature[:cut].removesuffix(", "), ", " + signature[cut:]
    joined = ", ".join(names)
    added = joined if args.vararg is not None or args.kwonlyargs else f"*, {joined}"
    return (f"{head}, {added}" if head else added) + tail


def assign(target: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(id=target, ctx=ast.Store())], value=value, lineno=0)


def call_statement(func: str, args: list[ast.expr]) -> ast.Expr:
    """``func(args...)`` as a statement (a check, a helper run for what it does)."""
    return ast.Expr(value=ast.Call(func=name(func), args=args, keywords=[]))


# --- rewriting trees ---------------------------------------------------------------------------------------------


class Transformer(ast.NodeTransformer):
    """``ast.NodeTransformer`` for the expression trees of generated code, several times cheaper per node: its
    visitor is found once per node class, and children are read from the node's fields without generators. (Every
    pass rewrites every statement a few times: this loop is where generation spends its time.) Same semantics:
    ``visit_<Class>`` methods return the replacement; a list field keeps the nodes visitors return."""

    _visitors: dict = {}  # (transformer class, node class) -> its visit method, or None for generic_visit

    def visit(self, node: ast.AST) -> Any:
        key = (self.__class__, node.__class__)
        visitor = Transformer._visitors.get(key, _MISSING)
        if visitor is _MISSING:
            visitor = getattr(self.__class__, "visit_" + node.__class__.__name__, None)
            Transformer._visitors[key] = visitor
        if visitor is None:
            return self.generic_visit(node)
        return visitor(self, node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        held = node.__dict__
        for field in program.node_fields(node.__class__):  # (markers, names and flags hold nothing to visit)
            old = held.get(field)
            if old is None:
                continue
            if isinstance(old, ast.AST):
                new = self.visit(old)
                if new is not old:
                    setattr(node, field, new)
            elif isinstance(old, list) and old:
                new_values = []
                for value in old:
                    if isinstance(value, ast.AST):
                        value = self.visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, ast.AST):
                            new_values.extend(value)
                            continue
                    new_values.append(value)
                old[:] = new_values
        return node


# --- templates ---------------------------------------------------------------------------------------------------


_PARSED_TEMPLATES: dict[str, ast.AST] = {}


def template_expr(text: str, **subs: Any) -> ast.expr:
    """``text`` (Python, e.g. ``"reversed(ITER)"``) as an expression, each name given in ``subs`` replaced: by the
    node given, or by a name when a string is given. Reads better than the ``ast`` constructors for generated code
    of a fixed shape; the parse is done once per text."""
    return _instantiate_template(text, "eval", subs).body


def template_stmt(text: str, **subs: Any) -> ast.stmt:
    """``text`` as one statement (see :func:`template_expr`)."""
    return _instantiate_template(text, "exec", subs).body[0]


def _instantiate_template(text: str, mode: str, subs: dict) -> Any:
    tree = _PARSED_TEMPLATES.get(text + mode)
    if tree is None:
        tree = _PARSED_TEMPLATES[text + mode] = ast.parse(text, mode=mode)
    return _Fill(subs).visit(clone(tree))


class _Fill(Transformer):
    def __init__(self, subs: dict):
        self.subs = subs

    def visit_Name(self, node: ast.Name) -> ast.expr:
        new = self.subs.get(node.id)
        if new is None:
            return node
        return ast.Name(id=new, ctx=node.ctx) if isinstance(new, str) else new


# --- inlining rule expressions -----------------------------------------------------------------------------------


def clone(node: Any) -> Any:
    """A deep copy of an AST (what ``copy.deepcopy`` gives, several times faster: nodes hold only nodes, lists of
    them and plain values). Fields and positions are copied from the node's ``__dict__`` without the constructor
    (which is slow, and which Python 3.13 warns about when a field is left out); the ``Load``/``Store`` context
    objects, which hold nothing, are shared as the parser shares them."""
    if isinstance(node, ast.AST):
        if isinstance(node, ast.expr_context):
            return node
        new = node.__class__.__new__(node.__class__)
        fields = new.__dict__
        for key, value in node.__dict__.items():
            # (srcgrad_object, see own_name, is the bound object itself: never copied)
            fields[key] = clone(value) if isinstance(value, (ast.AST, list)) and key != "srcgrad_object" else value
        return new
    if isinstance(node, list):
        return [clone(item) for item in node]
    return node


def instantiate(template: ast.expr, mapping: dict[str, ast.expr], rule_globals: dict, scope: Scope) -> ast.expr:
    """Substitute ``mapping`` into a rule's return expression; bind its other free names through ``scope``; fold
    what :func:`simplify` folds. (One walk that copies, substitutes and folds: the same tree as ``simplify`` of the
    substituted copy, built bottom-up as simplify folds. Every adjoint of every op is made here.)"""
    return _Instantiate(mapping, rule_globals, scope).copy(template)


class _Instantiate:
    """A rule's parameters become the operands of the call; its other free names are bound through the scope
    (builtins too: the user's module may define the same names)."""

    def __init__(self, mapping: dict[str, ast.expr], rule_globals: dict, scope: Scope):
        self.mapping, self.rule_globals, self.scope = mapping, rule_globals, scope
        self.fold = _Fold(modules_env(scope))

    def copy(self, node: Any) -> Any:
        if node.__class__ is ast.Name:
            return self._name(node)
        if isinstance(node, ast.expr_context) or not isinstance(node, ast.AST):
            return node
        new = copy_node(node, node.__class__, self.copy)
        folder = _FOLDS.get(new.__class__)
        return new if folder is None else folder(self.fold, new)

    def _name(self, node: ast.Name) -> ast.expr:
        if node.id in self.mapping:
            return self.fold.visit(clone(self.mapping[node.id]))
        obj = self.rule_globals.get(node.id, getattr(builtins, node.id, _MISSING))
        if obj is _MISSING:
            raise NameError(f"rule refers to unknown name {node.id}")
        bound = self.scope.bind(node.id, obj)
        if _in_modules_env(obj):
            self.fold.env[bound] = obj  # (what modules_env would say now: the folds above read it)
        return name(bound)


def _is_num(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


FLOAT_VALUED = object()  # in a simplify env: the name holds a float or a float array (see never_bool)


def never_bool(node: ast.expr, env: dict) -> bool:
    """Is ``node`` certainly not a bool (nor a bool array), and float-valued where it is an array: a product,
    quotient, sum or difference with a float constant, or a float-valued numpy function?"""
    if isinstance(node, ast.Name):
        return env.get(node.id) is FLOAT_VALUED
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return True  # true division
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Add, ast.Sub)):
        return any((_is_num(side) and isinstance(side.value, float)) or never_bool(side, env)
                   for side in (node.left, node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return never_bool(node.operand, env)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
        rule = lookup(getattr(np, node.func.attr, None)) if env.get(node.func.value.id) is np else None
        return rule is not None and rule.float_valued  # (declared with the primitive: defgrad(float_valued=True))
    return False


def float_constants(node: ast.expr) -> ast.expr:
    """An adjoint expression with the whole-number constants of its arithmetic written as floats (``g * 5`` becomes
    ``g * 5.0``): the same value for the float adjoints it combines with, and Python's float-with-float arithmetic
    is the fast one. Indices, call arguments and exponents are left alone."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.Add, ast.Sub)):
        return ast.BinOp(left=_as_float(float_constants(node.left)), op=node.op,
                         right=_as_float(float_constants(node.right)))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return ast.BinOp(left=float_constants(node.left), op=node.op, right=node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return ast.UnaryOp(op=node.op, operand=float_constants(node.operand))
    return node


def _as_float(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 2 ** 53:
        return ast.Constant(value=float(node.value))
    return node


def _num(node: ast.expr, value: float) -> bool:
    return _is_num(node) and node.value == value


_FOLD_BIN = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
             ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a ** b}


_FOLD_CMP = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
             ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}


def _integer_identity(left: ast.expr, op: type, right: ast.expr) -> ast.expr | None:
    """``e ** 1``, ``e * 1``, ``1 * e``, ``e / 1`` (the integer 1: no dtype change) folded to ``e``; else None."""
    if op is ast.Pow and _num(right, 1):
        return left
    if op is ast.Mult and _num(right, 1) and isinstance(right.value, float) is False:
        return left
    if op is ast.Mult and _num(left, 1) and isinstance(left.value, float) is False:
        return right
    if op is ast.Div and _num(right, 1) and isinstance(right.value, float) is False:
        return left
    return None


def _scales_by_float(node: ast.expr) -> bool:
    return _is_num(node) and isinstance(node.value, float)


def _minus_zero(node: ast.expr) -> bool:
    """``e - 0.0`` (a rule's ``x1 - x2`` with a constant 0.0 operand)."""
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _num(node.right, 0.0)


def _is_number_types(node: ast.expr, env: dict) -> bool:
    """``(int, float)`` in a rule: the test ``isinstance(y, (int, float))`` is folded for a constant y."""
    return isinstance(node, ast.Tuple) and len(node.elts) == 2 and all(
        isinstance(e, ast.Name) and env.get(e.id) is kind for e, kind in zip(node.elts, (int, float)))


def simplify(node: ast.expr, env: dict | None = None) -> ast.expr:
    """Fold constants and algebraic identities that hold exactly."""
    return _Fold(env or {}).visit(node)


class _Fold(Transformer):
    """The folds of :func:`simplify`; ``env`` tells which names are numpy and math."""

    def __init__(self, env: dict):
        self.env = env

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        return self.fold_BinOp(node)

    def fold_BinOp(self, node: ast.BinOp) -> ast.expr:
        left, right, op = node.left, node.right, type(node.op)
        if _is_num(left) and _is_num(right) and op in _FOLD_BIN:
            try:
                return ast.Constant(value=_FOLD_BIN[op](left.value, right.value))
            except (ZeroDivisionError, OverflowError):
                return node
        folded = _integer_identity(left, op, right)
        return folded if folded is not None else self._float_identity(node, left, op, right)

    def _float_identity(self, node: ast.BinOp, left: ast.expr, op: type, right: ast.expr) -> ast.expr:
        """1.0 * e is e when e is certainly a number or a non-bool, non-integer-only array whatever its operands
        are (a product with a number, or a float-valued numpy function): no dtype changes, no copy needed."""
        if op is not ast.Mult:
            return node
        if _scales_by_float(left) and _minus_zero(right):  # c * (e - 0.0) is c * e: the product is a float anyway
            return ast.BinOp(left=left, op=node.op, right=right.left)
        if _num(left, 1.0) and never_bool(right, self.env):
            return right
        if _num(left, -1.0) and never_bool(right, self.env):
            return ast.UnaryOp(op=ast.USub(), operand=right)
        if _num(right, 1.0) and never_bool(left, self.env):
            return left
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return self.fold_UnaryOp(node)

    def fold_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        if isinstance(node.op, ast.USub) and _is_num(node.operand):
            return ast.Constant(value=-node.operand.value)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        return self.fold_Compare(node)

    def fold_Compare(self, node: ast.Compare) -> ast.expr:
        if len(node.ops) == 1 and isinstance(node.left, ast.Constant) \
                and isinstance(node.comparators[0], ast.Constant):
            a, b = node.left.value, node.comparators[0].value
            if isinstance(node.ops[0], ast.Is):
                return ast.Constant(value=a is b)
            if isinstance(node.ops[0], ast.IsNot):
                return ast.Constant(value=a is not b)
            if type(a) in (int, float) and type(b) in (int, float) and type(node.ops[0]) in _FOLD_CMP:
                return ast.Constant(value=_FOLD_CMP[type(node.ops[0])](a, b))
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        return self.fold_BoolOp(node)

    def fold_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        if all(isinstance(v, ast.Constant) and isinstance(v.value, bool) for v in node.values):
            values = [v.value for v in node.values]
            return ast.Constant(value=all(values) if isinstance(node.op, ast.And) else any(values))
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        self.generic_visit(node)
        return self.fold_IfExp(node)

    def fold_IfExp(self, node: ast.IfExp) -> ast.expr:
        if isinstance(node.test, ast.Constant):
            return node.body if node.test.value else node.orelse
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        return self.fold_Call(node)

    def fold_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Name) and self.env.get(func.id) is isinstance and len(node.args) == 2 \
                and isinstance(node.args[0], ast.Constant) and _is_number_types(node.args[1], self.env):
            return ast.Constant(value=type(node.args[0].value) in (int, float))
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and self.env.get(func.value.id) is math and not node.keywords \
                and all(_is_num(a) for a in node.args):
            try:
                return ast.Constant(value=getattr(math, func.attr)(*[a.value for a in node.args]))
            except (ValueError, OverflowError, AttributeError, TypeError):
                return node
        return node


# The folds of _Fold by node class, for a tree built bottom-up (its children folded already): _Instantiate.copy.
_FOLDS = {getattr(ast, cls): getattr(_Fold, "fold_" + cls) for cls in ("BinOp", "UnaryOp", "Compare", "BoolOp",
                                                                     "IfExp", "Call")}
