"""Strict layers (issue 14, item 5): the imports of every srcgrad module, at every level (inside functions too), read
from the source.

- the core (reading, lowering, the passes, the adjoint and forward-mode builders, emitting, the runtime, the rules)
  never imports a tool (the public API, forward mode and second order, pictures, explanations, emitted modules, the
  command line, notebook displays); no module outside the tools does;
- the IR does not import the rule registry;
- the import graph has no cycle (an import inside a function still runs, so it counts); imports under
  ``if TYPE_CHECKING:`` never run and are left out;
- no module is hidden by an attribute of the package with its name (``srcgrad.graph`` is the function; the module
  that defines it is ``srcgrad.drawing``);
- nothing is re-exported behind ``noqa: F401`` except the registration of the rules.
"""

import ast
import subprocess
import sys
from pathlib import Path

import srcgrad
from srcgrad import frontend

PACKAGE = Path(srcgrad.__file__).parent

CORE = {"frontend", "lower", "ir", "passes", "adjoint", "accumulate", "tape", "loops", "program", "forward", "fuse",
        "emitter", "runtime", "codegen", "printer", "rules", "naming", "generated"}
TOOLS = {"api", "higher", "drawing", "picture", "layout", "svg", "summary", "explanation", "standalone", "cli",
         "notebook", "testing", "__main__"}

# Edges left out of the cycle check: none (the pass table, srcgrad/pass_table.py, sits above the passes and the
# alias analysis that reads their helpers).
ALLOWED_CYCLE_EDGES: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "srcgrad"


def top(name: str) -> str:
    """The layer unit of a module: its first component under srcgrad (``rules.forward`` -> ``rules``)."""
    return name.split(".")[0]


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def imports_of(name: str) -> set[str]:
    """The srcgrad modules ``name`` imports (names relative to the package), at any level."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(["srcgrad", *package.split(".")][: len(package.split(".")) + 2 - node.level])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            submodules = {f"{base}.{a.name}" for a in node.names} & {f"srcgrad.{m}" for m in MODULES}
            found |= submodules
            if len(submodules) < len(node.names):  # (names defined by the module itself)
                found.add(base)
    out = set()
    for full in found:
        if full.startswith("srcgrad."):
            short = full[len("srcgrad."):]
            while short and short not in MODULES:
                short = short.rpartition(".")[0]
            if short and short != name:
                out.add(short)
    return out


GRAPH = {name: imports_of(name) for name in MODULES if name != "srcgrad"}


def test_the_layer_lists_name_real_modules():
    tops = {top(n) for n in GRAPH}
    assert CORE <= tops and TOOLS <= tops, (CORE | TOOLS) - tops
    assert not CORE & TOOLS


def test_only_tools_import_tools():
    wrong = sorted((name, dep) for name, deps in GRAPH.items() for dep in deps
                   if top(dep) in TOOLS and top(name) not in TOOLS)
    assert not wrong, f"a module below the tools imports a tool: {wrong}"


def test_the_core_imports_no_tool():
    wrong = sorted((name, dep) for name, deps in GRAPH.items() for dep in deps
                   if top(name) in CORE and top(dep) in TOOLS)
    assert not wrong


def test_the_ir_does_not_import_the_rules():
    assert not {d for d in GRAPH["ir"] if top(d) == "rules"}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    graph = {name: {d for d in deps if (name, d) not in ALLOWED_CYCLE_EDGES} for name, deps in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_allowed_edge_is_still_needed():
    """The allowance is removed once its import is gone (so it cannot hide a new cycle through the same modules)."""
    for name, dep in ALLOWED_CYCLE_EDGES:
        assert dep in GRAPH[name], f"{name} no longer imports {dep}: drop it from ALLOWED_CYCLE_EDGES"


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count():
    assert "svg" in GRAPH["drawing"] and "notebook" in GRAPH["explanation"]  # (both inside functions)


def test_no_module_is_hidden_by_an_export():
    """In a fresh interpreter, after importing every module: each ``srcgrad.NAME`` that is also a module's name is
    that module, and the public functions named like tools are still the functions."""
    names = sorted(n for n in MODULES if n != "srcgrad" and "." not in n)
    script = (
        "import importlib, sys, types\n"
        "import srcgrad\n"
        f"names = {names!r}\n"
        "def hiding(n):\n"
        "    return hasattr(srcgrad, n) and getattr(srcgrad, n) is not sys.modules.get('srcgrad.' + n)\n"
        "hidden = [n for n in names if hiding(n)]\n"
        "for n in names:\n"
        "    try:\n"
        "        importlib.import_module('srcgrad.' + n)\n"
        "    except ModuleNotFoundError as e:\n"  # (a module of an optional library: numba, scipy, not installed)
        "        if e.name.split('.')[0] not in ('numba', 'scipy', 'dask'):\n"
        "            raise\n"
        "hidden += [n for n in names if hiding(n)]\n"
        "assert not hidden, hidden\n"
        "public = ('graph', 'explain', 'emit', 'grad')\n"
        "assert all(isinstance(getattr(srcgrad, f), types.FunctionType) for f in public)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_nothing_is_re_exported_behind_noqa():
    # importing the rules registers them (and rules written as text read the names their module imports); the
    # numba backend loads the overloads numba needs (numba_runtime registers them on import)
    allowed = {"srcgrad", "numba_backend"}
    found = [name for name, path in MODULES.items()
             if "noqa: F401" in path.read_text(encoding="utf-8") and name not in allowed and top(name) != "rules"]
    assert not found


def test_no_hint_for_a_supported_construct():
    """A hint says what to do instead of a construct the fence refuses: one for a supported construct is stale."""
    assert not set(frontend.HINTS) & frontend.SUPPORTED
