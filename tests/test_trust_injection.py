"""User text never becomes code (issue 13, item 2): file names, function names, source lines copied into comments
and string constants enter generated code only escaped — as a one-line comment, a docstring literal or a ``repr`` —
in-process (grad, value_and_grad, jvp, hessian, srcgrad.source) and in the modules ``srcgrad emit`` writes."""

import ast
import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from module_files import run_blocked

import srcgrad
from srcgrad import sourcetext
from srcgrad.standalone import EmitError

MARKER = "srcgrad_injected_marker"

# Each would run `touch MARKER` (or a statement) if it reached code unescaped.
HOSTILE_FILE_NAMES = [
    f'x"""+str(__import__("os").system("touch {MARKER}"))+""".py',
    'a"""b.py',
    f'nl\nimport os; os.system("touch {MARKER}")\n.py',
    f"cr\rimport os; os.system('touch {MARKER}')\r.py",
    "q'x\u2028y\\z\x0cw\x85v\x1c.py",
    'ends with quote".py',
]

# Characters str.splitlines() takes for line ends and Python does not (or, \x00 aside, never inside a line).
LINE_BREAKING = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]

SOURCE = """import numpy as np


def f(x):
    y = x * 2.0  # a comment{odd}with odd characters
    return np.sum(y * y)
"""

_names = itertools.count()


def load_as(path: Path, text: str):
    path.write_text(text, encoding="utf-8", newline="\n")
    name = f"srcgrad_injection_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def assert_one_line_comments(text: str) -> None:
    """Every comment of ``text`` is one line, whichever line splitter reads it, and the text parses."""
    ast.parse(text)
    assert text.splitlines() == text.split("\n")[: len(text.splitlines())], "a character splitlines() breaks at"
    for line in text.split("\n"):
        assert "\r" not in line


def assert_no_injected_call(text: str) -> None:
    tree = ast.parse(text)
    called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
              for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not called & {"system", "__import__"}
    assert not any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(a.name == "os" for a in n.names)
                   for n in ast.walk(tree))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / MARKER).exists(), "a file name ran as code"


@pytest.mark.parametrize("file_name", HOSTILE_FILE_NAMES, ids=range(len(HOSTILE_FILE_NAMES)))
def test_hostile_file_names_stay_text_in_process(in_tmp, file_name):
    module = load_as(in_tmp / file_name, SOURCE.format(odd=" "))
    x = np.array([1.0, -2.0])
    for _ in range(2):  # the first call generates, the second runs the fused entry
        np.testing.assert_allclose(srcgrad.grad(module.f)(x), 8.0 * x)
        value, g = srcgrad.value_and_grad(module.f)(1.5)
        assert (value, g) == (9.0, 12.0)
    assert srcgrad.jvp(module.f)(1.5, 1.0) == (9.0, 12.0)
    assert srcgrad.hessian(module.f)(1.5) == 8.0
    text = srcgrad.source(srcgrad.grad(module.f), x)
    assert_one_line_comments(text)
    assert_no_injected_call(text)
    function = ast.parse(text).body[0]
    shown = file_name.replace("\\", "/").rsplit("/", 1)[-1]  # the docstring names the file by its base name
    assert shown in ast.get_docstring(function, clean=False)


@pytest.mark.parametrize("file_name", HOSTILE_FILE_NAMES, ids=range(len(HOSTILE_FILE_NAMES)))
def test_hostile_file_names_stay_text_in_emitted_modules(in_tmp, file_name):
    module = load_as(in_tmp / file_name, SOURCE.format(odd=" "))
    text = srcgrad.emit(module.f)
    assert_one_line_comments(text)
    assert_no_injected_call(text)
    assert sourcetext.comment(file_name) in ast.get_docstring(ast.parse(text), clean=False)  # shown escaped
    (in_tmp / "emitted_grad.py").write_text(text, encoding="utf-8")
    (result,) = run_blocked(in_tmp, "emitted_grad", [("f_grad", (np.array([1.0, 3.0]),))])
    assert result[0] == "ok", result
    np.testing.assert_allclose(result[1], [8.0, 24.0])


def test_a_file_name_that_is_not_a_module_name_is_refused_as_an_import(in_tmp):
    module = load_as(in_tmp / "model.py", "K = 2.0\n\n\ndef f(x):\n    return K * x * x\n")
    module.__name__ = f'x"""+str(__import__("os").system("touch {MARKER}"))+"""'
    module.f.__module__ = module.__name__
    with pytest.raises(EmitError, match="not a module name"):
        srcgrad.emit(module.f, module=module.__name__)


@pytest.mark.parametrize("char", LINE_BREAKING, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKING])
def test_odd_characters_in_a_comment_keep_the_gradient_whole(in_tmp, char):
    module = load_as(in_tmp / "odd_model.py", SOURCE.format(odd=char))
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(srcgrad.grad(module.f)(x), 8.0 * x)
    shown = srcgrad.source(srcgrad.grad(module.f), x)
    assert_one_line_comments(shown)
    assert f"\\u{ord(char):04x}" in shown or f"\\x{ord(char):02x}" in shown  # shown escaped, not dropped
    text = srcgrad.emit(module.f)
    assert_one_line_comments(text)
    (in_tmp / "odd_grad.py").write_text(text, encoding="utf-8")
    (result,) = run_blocked(in_tmp, "odd_grad", [("f_grad", (x,))])
    assert result[0] == "ok" and result[1] is not None, result
    np.testing.assert_allclose(result[1], 8.0 * x)


STRING_CONSTANT = '''
import numpy as np

LABEL = "a\\n\\nb: a string long enough for a triple-quoted literal\\u2028"


def f(x, label=LABEL):
    if label == "a\\n\\nb: a string long enough for a triple-quoted literal\\u2028":
        y = x * x
    else:
        y = x
    return y
'''


def test_string_constants_print_as_one_line_literals(in_tmp):
    """A string with line breaks was printed as a triple-quoted literal over several lines, which re-indenting the
    generated code changed: the comparison failed and the gradient took the other branch (1.0 for 6.0)."""
    module = load_as(in_tmp / "strings_model.py", STRING_CONSTANT)
    assert srcgrad.grad(module.f)(3.0) == 6.0
    assert srcgrad.value_and_grad(module.f)(3.0) == (9.0, 6.0)
    assert srcgrad.jvp(module.f)(3.0, 1.0) == (9.0, 6.0)
    assert_one_line_comments(srcgrad.source(srcgrad.grad(module.f)))
    text = srcgrad.emit(module.f)
    assert_one_line_comments(text)
    (in_tmp / "strings_grad.py").write_text(text, encoding="utf-8")
    sys.path.insert(0, str(in_tmp))
    try:
        spec = importlib.util.spec_from_file_location("strings_grad", in_tmp / "strings_grad.py")
        emitted = importlib.util.module_from_spec(spec)
        sys.modules["strings_model"] = module
        spec.loader.exec_module(emitted)
        assert emitted.f_grad(3.0) == 6.0
    finally:
        sys.path.remove(str(in_tmp))
        sys.modules.pop("strings_model", None)


def test_sourcetext_comment_and_docstring_hold_any_text():
    samples = ["plain", 'q"""q', "back\\slash", "ends with\"", "tab\there", "".join(LINE_BREAKING) + "\n\r\x00",
               "é中\u202e", "'"]
    for text in samples:
        line = "# " + sourcetext.comment(text)
        assert len(line.splitlines()) == 1 and "\n" not in line and "\r" not in line
        assert ast.parse(line + "\nx = 1\n").body[0].targets[0].id == "x"
        for one_line in (True, False):
            literal = sourcetext.docstring(text, one_line=one_line)
            assert ast.literal_eval(literal) == text
            if one_line:
                assert len(literal.splitlines()) == 1
    assert sourcetext.docstring("plain text") == '"""plain text"""'
    assert sourcetext.comment("tab\there é") == "tab\there é"


def test_sourcetext_lines_follow_python():
    text = "a = 1  # x\x0cy\u2028z\r\nb = 2\rc = 3\nd = '\x85'"
    lines = sourcetext.lines(text)
    assert len(lines) == 4 and "".join(lines) == text
    tree = ast.parse(text)
    assert [n.lineno for n in tree.body] == [1, 2, 3, 4]
    assert lines[3].startswith("d =")
    assert sourcetext.lines("") == [] and sourcetext.lines("x\n") == ["x\n"]

