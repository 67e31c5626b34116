"""The ``srcgrad`` command line: emit, show, graph, explain.

In: ``argv`` — a subcommand and a function named ``FILE.py:FUNC`` or ``package.module:FUNC``. Out: text on stdout,
files, and an exit status: 0 done; 1 the work failed (srcgrad cannot differentiate the function, ``emit --check``
found the file stale, Graphviz is missing, the user's module raised); 2 the command was wrong (a missing file,
module or function, a bad ``--wrt``, ``--args`` or option), as argparse does for its own usage errors.
What holds: a ``FILE.py`` is imported under the name Python would give it (its directory, or the top of its package,
goes first on ``sys.path``), so the emitted module's ``from model import ...`` works next to ``model.py``;
every message starts with ``srcgrad: error:`` and says what to do.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib
import inspect
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srcgrad import sourcetext
from srcgrad.errors import InvalidArgument, SrcgradError
from srcgrad.version import __version__

PROG = "srcgrad"


class UsageError(Exception):
    """A mistake in the command: exit status 2."""


class Failure(Exception):
    """The command was right, the work failed: exit status 1."""


# --- naming a function ---------------------------------------------------------------------------------------------


def load_function(spec: str) -> Callable:
    """The function named by ``FILE.py:FUNC`` or ``package.module:FUNC`` (``FUNC`` may be dotted)."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise UsageError(f"cannot read {spec!r} as a function: write FILE.py:FUNC or package.module:FUNC")
    if target.endswith(".py") or "/" in target or os.sep in target:
        module = _import_file(Path(target))
    else:
        module = _import_module(target)
    obj: Any = module
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            available = sorted(n for n, v in vars(module).items()
                               if inspect.isfunction(v) and getattr(v, "__module__", None) == module.__name__)
            hint = f"; functions defined there: {', '.join(available)}" if available else ""
            raise UsageError(f"{target} has no function {name!r}{hint}")
    if not callable(obj):
        raise UsageError(f"{target}:{name} is a {type(obj).__name__}, not a function")
    return obj


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    path = path.resolve()
    parts = [path.stem]
    root = path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    name = ".".join(parts)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = _run_import(name, str(path))
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve() != path:
        raise UsageError(f"{path.name} is shadowed by the module {name!r} at {found or '(built in)'}: rename the file")
    return module


def _import_module(name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules in the current directory are found
    return _run_import(name, name)


def _run_import(name: str, shown: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(f"no module named {name!r} (is the package installed, or the current directory "
                             "the right one?)") from None
        raise Failure(f"importing {shown} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module raised while being imported
        raise Failure(f"importing {shown} failed: {type(exc).__name__}: {exc}") from exc


def parse_wrt(text: str | None, func: Callable) -> int | str | tuple | None:
    """``--wrt w`` / ``--wrt w,b`` / ``--wrt 0``: a name, a position, or a tuple of them (several)."""
    if text is None:
        return None
    items: list[int | str] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise UsageError(f"--wrt {text!r}: empty name; write --wrt NAME or --wrt NAME,NAME")
        items.append(int(item) if item.lstrip("-").isdigit() else item)
    target = getattr(func, "__srcgrad_transform__", None)
    params = list(inspect.signature(target.func if target else func).parameters)
    for item in items:
        if isinstance(item, str) and item not in params:
            raise UsageError(f"--wrt: {item!r} is not a parameter of {_name(func)}; its parameters are "
                             f"{', '.join(params)}")
        if isinstance(item, int) and not -len(params) <= item < len(params):
            raise UsageError(f"--wrt: position {item} is out of range; {_name(func)} has {len(params)} parameters "
                             f"({', '.join(params)})")
    return tuple(items) if len(items) > 1 else items[0]


def parse_args_values(texts: Sequence[str] | None) -> list[Any]:
    """``--args 1.5 "[1, 2]" "np.ones(3)"``: each a Python expression (``np`` and ``math`` available); lists and
    tuples of numbers become float arrays (other lists, tuples and dicts stay structures: ``"{'W': np.ones(3)}"``)."""
    values = []
    for text in texts or []:
        try:
            value = eval(compile(ast.parse(text, mode="eval"), "<--args>", "eval"),  # the user's own command line
                         {"__builtins__": {}, "np": np, "numpy": np, "math": math})
            if isinstance(value, (list, tuple)) and _numbers_only(value):
                value = np.asarray(value, dtype=float)
        except Exception as exc:  # noqa: BLE001
            raise UsageError(f"--args: cannot read {text!r} as a value ({type(exc).__name__}: {exc})") from None
        values.append(value)
    return values


def _numbers_only(value: Any) -> bool:
    """A list or tuple of numbers (nested): what an array is written as on the command line."""
    if isinstance(value, (list, tuple)):
        return all(_numbers_only(v) for v in value)
    return type(value) in (int, float, bool)


def _name(func: Callable) -> str:
    return getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))


# --- subcommands ---------------------------------------------------------------------------------------------------


def cmd_emit(ns: argparse.Namespace) -> int:
    from srcgrad import standalone

    func = load_function(ns.function)
    example = tuple(parse_args_values(ns.args)) if ns.args else None
    module = standalone.build(func, parse_wrt(ns.wrt, func), mode=ns.mode, example=example,
                              example_text=shlex.join(ns.args) if ns.args else None, backend=ns.backend)
    if ns.check:
        if ns.output is None:
            raise UsageError("emit --check needs -o OUT.py: the file to compare with")
        if standalone.is_current(ns.output, module.text):
            print(f"{ns.output} is current")
            return 0
        command = f"srcgrad emit {ns.function}" + (f" --wrt {ns.wrt}" if ns.wrt else "") + \
            (f" --mode {ns.mode}" if ns.mode else "") + \
            (f" --backend {ns.backend}" if ns.backend != "python" else "") + f" -o {ns.output}" + \
            (f" --args {shlex.join(ns.args)}" if ns.args else "")
        if not Path(ns.output).is_file():
            print(f"{PROG}: {ns.output} does not exist; write it with: {command}", file=sys.stderr)
            return 1
        old = sourcetext.lines(Path(ns.output).read_text(encoding="utf-8", errors="replace"))
        diff = list(difflib.unified_diff(old, sourcetext.lines(module.text), ns.output, "(emitted now)", n=1))
        print(f"{PROG}: {ns.output} is stale; regenerate it with: {command}", file=sys.stderr)
        sys.stderr.writelines(diff[:40])
        if len(diff) > 40:
            print(f"... ({len(diff) - 40} more diff lines)", file=sys.stderr)
        return 1
    if ns.output is None:
        sys.stdout.write(module.text)
    else:
        _check_overwrite(Path(ns.output), func, ns.force)
        standalone.write(ns.output, module.text)
        print(f"wrote {ns.output} ({module.name})", file=sys.stderr)
    return 0


def _check_overwrite(out: Path, func: Callable, force: bool) -> None:
    """``emit -o OUT`` writes over nothing but a module srcgrad emitted (``--force``: any file), and never over a
    file that holds a function being differentiated (the emitted module would import from itself)."""
    from srcgrad import standalone

    target = getattr(func, "__srcgrad_transform__", None)
    source = inspect.getsourcefile(target.func if target else func)
    if source is not None and out.exists() and out.resolve() == Path(source).resolve():
        raise UsageError(f"-o {out} is the module that defines {_name(func)}: emit writes the gradient to a file "
                         "of its own (e.g. -o " + f"{Path(source).stem}_grad.py)")
    if out.exists() and not force and not (out.is_file() and standalone.is_emitted(out)):
        raise UsageError(f"-o {out}: the file exists and is not a module srcgrad emitted; refusing to overwrite it "
                         "(choose another file, or pass --force)")


def cmd_show(ns: argparse.Namespace) -> int:
    import srcgrad

    func = load_function(ns.function)
    wrt = parse_wrt(ns.wrt, func)
    base = getattr(func, "__srcgrad_transform__", None)
    if base is not None:
        func = base.func
        wrt = wrt if wrt is not None else (tuple(base.wrt) if base.as_tuple else base.wrt[0])
    mode = ns.mode or (base.mode if base is not None else "grad")
    made = {"grad": srcgrad.grad, "value_and_grad": srcgrad.value_and_grad, "vjp": srcgrad.vjp}[mode]
    target = made(func, wrt=0 if wrt is None else wrt)
    sys.stdout.write(srcgrad.source(target, *parse_args_values(ns.args)))
    return 0


def cmd_graph(ns: argparse.Namespace) -> int:
    import srcgrad

    func = load_function(ns.function)
    wrt = parse_wrt(ns.wrt, func)
    values = parse_args_values(ns.args)
    g = srcgrad.graph(func, adjoint=ns.adjoint, wrt=wrt, example=tuple(values) if ns.args else None)
    if ns.ir:
        sys.stdout.write(str(g))
        return 0
    explanation = _explain(func, values, ns.args, wrt) if ns.args else None
    if ns.output is None:
        sys.stdout.write(g.to_dot(explanation))
        return 0
    suffix = Path(ns.output).suffix.lstrip(".").lower()
    from srcgrad.drawing import FORMATS

    if suffix not in FORMATS:
        raise UsageError(f"-o {ns.output}: unknown picture format {suffix!r}; use .dot, .svg, .png or .pdf")
    g.render(ns.output, explain=explanation, engine=ns.engine)
    print(f"wrote {ns.output}", file=sys.stderr)
    return 0


def _explain(func: Callable, values: list[Any], texts: Sequence[str], wrt: Any) -> Any:
    import srcgrad

    try:
        return srcgrad.explain(func, *values, wrt=wrt)
    except SrcgradError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function raised at these arguments
        raise Failure(f"running {_name(func)} at --args {' '.join(texts)} raised {type(exc).__name__}: {exc}") \
            from exc


def cmd_explain(ns: argparse.Namespace) -> int:
    func = load_function(ns.function)
    values = parse_args_values(ns.args)
    target = getattr(func, "__srcgrad_transform__", None)
    n_params = len(inspect.signature(target.func if target else func).parameters)
    if not values:
        raise UsageError(f"explain needs the arguments to run {_name(func)} at: --args VALUE [VALUE...] "
                         f"({n_params} parameters)")
    explanation = _explain(func, values, ns.args, parse_wrt(ns.wrt, func))
    sys.stdout.write(str(explanation))
    return 0


# --- the parser ----------------------------------------------------------------------------------------------------

FUNCTION_HELP = "the function: FILE.py:FUNC or package.module:FUNC"
WRT_HELP = "the parameters to differentiate: a name or position, or several separated by commas (default: the first)"
MODES = ["grad", "value_and_grad", "vjp"]
MODE_HELP = "what the generated function returns (default: grad)"
ARGS_HELP = ("argument values, each a Python expression (np and math are available; lists become float arrays). "
             "Each is evaluated as Python code in this process, with your permissions: it can do anything Python "
             "can (there is no sandbox), so pass only text you would run yourself")


WRT_OPTION = (("--wrt",), {"metavar": "NAME[,NAME]", "help": WRT_HELP})
MODE_OPTION = (("--mode",), {"choices": MODES, "help": MODE_HELP})
ARGS_OPTION = (("--args",), {"nargs": "+", "metavar": "VALUE", "help": ARGS_HELP})


def _command(sub: Any, name: str, run: Any, *options: tuple, **texts: str) -> argparse.ArgumentParser:
    """A subcommand (``help``, ``description``, ``epilog``) run by ``run``, whose first argument is the function and
    the next ones these ``options`` (each the arguments of ``add_argument``)."""
    p = sub.add_parser(name, **texts, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("function", metavar="FILE.py:FUNC", help=FUNCTION_HELP)
    for flags, settings in options:
        p.add_argument(*flags, **settings)
    p.set_defaults(run=run)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="srcgrad: source-transformation automatic differentiation for Python and numpy.",
        epilog="Run `srcgrad COMMAND --help` for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"srcgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(
        sub, "emit", cmd_emit, WRT_OPTION, MODE_OPTION,
        (("--args",), {"nargs": "+", "metavar": "VALUE", "help": "example arguments whose structures (dicts, lists, "
                       "dataclasses... of the parameters) the module is written for; " + ARGS_HELP}),
        help="write the gradient as a standalone module (ahead of time)",
        description="Write the gradient of FUNC as a standalone Python module: it imports numpy, math and the "
                    "function's own module, never srcgrad. Output is byte-identical from run to run.",
        epilog="examples:\n  srcgrad emit model.py:loss --wrt w -o loss_grad.py\n"
               "  srcgrad emit model.py:loss --wrt w -o loss_grad.py --check   # exit 1 when loss_grad.py is stale\n"
               "  srcgrad emit model.py:loss --wrt params --args \"{'W': np.ones((3, 2))}\" \"np.ones(3)\"",
    )
    p.add_argument("-o", "--output", metavar="OUT.py", help="the module to write (default: print it)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when OUT.py differs from what emit would write (for CI)")
    p.add_argument("--force", action="store_true",
                   help="write OUT.py even when it exists and is not a module srcgrad emitted")
    p.add_argument("--backend", choices=("python", "numba"), default="python",
                   help="numba: the module imports numba and compiles the gradient with numba.njit(cache=True)")

    _command(
        sub, "show", cmd_show, WRT_OPTION, MODE_OPTION, ARGS_OPTION,
        help="print the generated gradient source",
        description="Print the gradient source srcgrad generates for FUNC: the general variant, or with --args the "
                    "variant specialised to those arguments' kinds (Python numbers or arrays).",
        epilog="example:\n  srcgrad show examples/seed.py:eq4 --args 1.5",
    )

    p = _command(
        sub, "graph", cmd_graph,
        help="draw the compute graph (DOT, SVG, PNG, PDF)",
        description="Draw the compute graph of FUNC (its linear IR). -o OUT.dot needs nothing else; .svg is drawn by "
                    "Graphviz's `dot` program, or without it by srcgrad's built-in layout; .png and .pdf need "
                    "Graphviz. Without -o, print the DOT text.",
        epilog="examples:\n  srcgrad graph examples/seed.py:eq3 -o eq3.svg\n"
               "  srcgrad graph examples/seed.py:eq3 -o eq3.svg --adjoint --args 1.5   # reverse sweep, values",
    )
    p.add_argument("-o", "--output", metavar="OUT.{dot,svg,png,pdf}", help="the picture to write")
    p.add_argument("--adjoint", action="store_true", help="also draw the reverse sweep (the adjoint computations)")
    p.add_argument("--wrt", metavar="NAME[,NAME]", help=WRT_HELP + "; for --adjoint and --args")
    p.add_argument("--args", nargs="+", metavar="VALUE",
                   help="annotate the nodes with their values and gradients at these arguments; " + ARGS_HELP)
    p.add_argument("--ir", action="store_true", help="print the linear IR as text instead")
    p.add_argument("--engine", choices=["builtin", "graphviz"],
                   help="who draws .svg (default: $SRCGRAD_GRAPH_ENGINE, else Graphviz when installed, else built in)")

    _command(
        sub, "explain", cmd_explain, ARGS_OPTION, WRT_OPTION,
        help="print each node's value and gradient, in backprop order",
        description="Run FUNC's gradient at --args and print a table: every node of the compute graph with its "
                    "operation, source line, forward value and adjoint, from the output back to the inputs.",
        epilog="example:\n  srcgrad explain examples/seed.py:eq3 --args 1.5",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if getattr(ns, "run", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status = ns.run(ns)
        sys.stdout.flush()  # (a closed pipe shows here, not at exit)
        return status
    except BrokenPipeError:  # `srcgrad show ... | head`: the reader has what it wanted; stop quietly, as Unix tools do
        _drop_stdout()
        return 0
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except InvalidArgument as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (SrcgradError, Failure) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as exc:  # Graphviz missing or failing, a file that cannot be written
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1


def _drop_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush does not report the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


__all__ = ["build_parser", "load_function", "main", "parse_args_values", "parse_wrt"]
