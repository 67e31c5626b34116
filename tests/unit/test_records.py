"""srcgrad.records.record against dataclasses.dataclass: the same class body, made both ways, behaves alike
(constructor signature and values, factories, equality, hashing, repr, frozen assignment, fields, replace), for
every combination of the options srcgrad uses; and every record class of srcgrad is a dataclass whose ``__init__``
takes what a dataclass of its fields would."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from dataclasses import field

import pytest

import srcgrad
from srcgrad.records import record


def bodies():
    """Class bodies covering each kind of field: (name, factory of a fresh class, arguments to build it)."""

    def plain():
        class Plain:
            a: int
            b: str = "x"
            c: list = field(default_factory=list)
        return Plain

    def hidden():
        class Hidden:
            """A documented one."""

            a: int
            cached: object = field(default=None, init=False, repr=False, compare=False)
            made: list = field(default_factory=list, init=False)
            label: str = field(default="q", compare=False)
        return Hidden

    def keyword():
        class Keyword:
            a: int
            b: int = field(default=2, kw_only=True)
        return Keyword

    def own_methods():
        class Own:
            a: int

            def __eq__(self, other):
                return True

            def __repr__(self):
                return "own"
        return Own

    def own_hash():
        class OwnHash:
            a: int

            def __hash__(self):
                return 7
        return OwnHash

    return [("plain", plain, (1,), {"b": "y"}), ("hidden", hidden, (3,), {"label": "z"}),
            ("keyword", keyword, (1,), {"b": 5}), ("own", own_methods, (1,), {}), ("own hash", own_hash, (1,), {})]


OPTIONS = [dict(), dict(frozen=True), dict(eq=False), dict(frozen=True, eq=False)]


def _both(factory, options):
    return dataclasses.dataclass(**options)(factory()), record(**options)(factory())


def _params(cls):
    """The constructor's parameters; a default made by a factory shows as ``<factory>`` (dataclass's sentinel)."""
    return [(p.name, p.kind, "<factory>" if p.default is dataclasses.MISSING or repr(p.default) == "<factory>"
             else p.default) for p in inspect.signature(cls.__init__).parameters.values()]


def _attributes(obj):
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _hash_or_error(obj):
    try:
        return hash(obj) == hash(obj), None
    except TypeError as exc:
        return None, type(exc)


@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("name, factory, args, kwargs", bodies(), ids=[b[0] for b in bodies()])
def test_record_behaves_as_dataclass(name, factory, args, kwargs, options):
    twin, made = _both(factory, options)
    assert dataclasses.is_dataclass(made)
    assert _params(made) == _params(twin)
    assert [f.name for f in dataclasses.fields(made)] == [f.name for f in dataclasses.fields(twin)]
    for call in ((args, {}), (args, kwargs)):
        x, y = twin(*call[0], **call[1]), made(*call[0], **call[1])
        assert _attributes(x) == _attributes(y)
        assert repr(x).replace(twin.__qualname__, "C") == repr(y).replace(made.__qualname__, "C")
        other_x, other_y = twin(*call[0], **call[1]), made(*call[0], **call[1])
        assert (x == other_x) == (y == other_y)
        assert (x != other_x) == (y != other_y)
        assert (x == 1) == (y == 1)
        assert _hash_or_error(x) == _hash_or_error(y)
        if _hash_or_error(x)[1] is None:
            assert (hash(x) == hash(other_x)) == (hash(y) == hash(other_y))
        for f in dataclasses.fields(made):
            if f.default_factory is not dataclasses.MISSING:  # a fresh object per instance
                assert getattr(y, f.name) is not getattr(other_y, f.name)
        if options.get("frozen"):
            for target in (x, y):
                with pytest.raises(dataclasses.FrozenInstanceError):
                    target.a = 9
                with pytest.raises(dataclasses.FrozenInstanceError):
                    del target.a
        else:
            y.a = 9
            assert y.a == 9
        changed = dataclasses.replace(y, a=4)
        assert changed.a == 4 and type(changed) is made


def test_inherited_fields_come_first():
    @record(eq=False)
    class Base:
        a: int
        b: list = field(default_factory=list)

    @record(eq=False)
    class Child(Base):
        c: int = 3

    child = Child(1)
    assert (child.a, child.b, child.c) == (1, [], 3)
    assert [f.name for f in dataclasses.fields(Child)] == ["a", "b", "c"]


def test_post_init_runs():
    @record
    class WithPost:
        a: int

        def __post_init__(self):
            self.doubled = 2 * self.a

    assert WithPost(4).doubled == 8


def _srcgrad_modules():
    names = [m.name for m in pkgutil.walk_packages(srcgrad.__path__, "srcgrad.")]
    return [importlib.import_module(name) for name in names if "numba" not in name and "scipy" not in name
            and "dask" not in name]


def test_every_srcgrad_data_class_is_a_record_with_a_dataclass_constructor():
    """srcgrad's data classes are made by record (cheap at import), and each ``__init__`` takes exactly what the
    dataclass of its fields would take."""
    checked = 0
    for module in _srcgrad_modules():
        for cls in vars(module).values():
            if not (isinstance(cls, type) and cls.__module__ == module.__name__ and dataclasses.is_dataclass(cls)):
                continue
            assert cls.__init__.__code__.co_filename.startswith("<record "), f"{cls.__qualname__}: use records.record"
            expected = []
            for f in dataclasses.fields(cls):
                if f.init:
                    default = (f.default if f.default is not dataclasses.MISSING else
                               inspect.Parameter.empty if f.default_factory is dataclasses.MISSING else "<factory>")
                    expected.append((f.name, default))
            found = [(p.name, "<factory>" if p.default is dataclasses.MISSING else p.default)
                     for p in list(inspect.signature(cls.__init__).parameters.values())[1:]]
            assert found == expected, cls.__qualname__
            checked += 1
    assert checked >= 40


def _import_in_fresh_process(tmp_path, write_bytecode=True):
    """Import srcgrad in a fresh interpreter whose bytecode goes under ``tmp_path``; what the records did."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path / "pycache")
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    script = ("import srcgrad, srcgrad.records as r\n"
              "def f(x):\n    return x * x\n"
              "same = all(compile(k.split(chr(10), 1)[1], k.split(chr(10), 1)[0], 'exec', dont_inherit=True) == c\n"
              "           for k, c in r._used.items())\n"
              "print(r._compiled_here, len(r._used), r._store_path(), same)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    compiled, used, path, same = done.stdout.split()
    assert same == "True"  # (stored or compiled here, each method's code is what its text compiles to)
    return int(compiled), int(used), path


def records_magic():
    from srcgrad import records

    return records._MAGIC


def test_compiled_methods_are_kept_between_processes_as_bytecode_is(tmp_path):
    import os

    compiled, used, path = _import_in_fresh_process(tmp_path, write_bytecode=False)
    assert compiled == used >= 40 and not os.path.exists(path)  # (no bytecode written: nothing kept)
    compiled, used, path = _import_in_fresh_process(tmp_path)
    assert compiled == used and os.path.exists(path)
    assert _import_in_fresh_process(tmp_path)[0] == 0  # every text found in the store
    with open(path, "wb") as file:  # an unreadable store is ignored, and written again
        file.write(records_magic() + b" garbage")
    assert _import_in_fresh_process(tmp_path)[0] == used
    assert _import_in_fresh_process(tmp_path)[0] == 0


def test_a_stored_method_is_the_code_its_text_compiles_to():
    from srcgrad import records

    for key, code in records._used.items():
        filename, text = key.split("\n", 1)
        assert compile(text, filename, "exec", dont_inherit=True) == code, filename
