"""The cache trusts only what the user owns (issue 13 item 1). Entries are code srcgrad runs: it reads them only from
a directory the user owns that no one else can write, and only regular files the user owns that no one else can
write, opened without following links and without blocking; anything else is ignored with one warning per process.
The hash only detects corruption: a forged entry with a recomputed hash must be refused by ownership.

The tests run as root here, so "another user" is uid 65534 (nobody), given to files with os.chown."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from test_cache import MODEL, SUBPROCESS_TIMEOUT, counts_since, entries, load_module

import srcgrad
from srcgrad import cache

ROOT = Path(__file__).resolve().parent.parent
OTHER_UID = 65534
EXPECTED = 1.0584852713041004  # grad of MODEL's scalar at 1.5

needs_owners = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                  reason="chown to another user needs root (tests run as root here)")


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(cache, "_warned", False)


@pytest.fixture
def use_dir(monkeypatch, fresh_warning):
    monkeypatch.delenv("SRCGRAD_CACHE", raising=False)
    monkeypatch.delenv("SRCGRAD_DUMP", raising=False)

    def use(where: Path) -> Path:
        monkeypatch.setenv("SRCGRAD_CACHE_DIR", str(where))
        cache.reset()
        return where

    yield use
    cache.reset()


def model_in(tmp_path: Path):
    """MODEL imported (again) under one module name per test: a reload finds the entries of the first import, as a
    new process importing the same module would."""
    return load_module(tmp_path / "model.py", MODEL, name=f"trust_model_{tmp_path.name}")


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return path


def forge(path: Path) -> None:
    """What an attacker with write access does: new code in the entry, the header hash recomputed."""
    header, body = path.read_bytes().split(b"\n", 1)
    entry = json.loads(body)
    entry["source"] = "import builtins\nbuiltins.srcgrad_cache_pwned = True\n" + entry["source"]
    body = json.dumps(entry).encode()
    path.write_bytes(f"{cache._MAGIC} {cache.FORMAT} {hashlib.sha256(body).hexdigest()}\n".encode() + body)


def grad_scalar(model) -> float:
    return srcgrad.grad(model.scalar)(1.5)


def refused_with_one_warning(record: list) -> None:
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)
                and "srcgrad: not using the on-disk cache" in str(w.message)]
    assert len(messages) == 1, messages


# --- the directory ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o720, 0o702])
def test_a_directory_others_can_write_is_neither_read_nor_written(tmp_path, use_dir, mode):
    model = model_in(tmp_path)
    shared = private_dir(tmp_path / "shared")
    use_dir(shared)
    assert grad_scalar(model) == pytest.approx(EXPECTED)  # (written while the directory was private)
    (entry,) = entries(shared)
    forge(entry)
    os.chmod(shared, mode)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert not hasattr(builtins, "srcgrad_cache_pwned")
    assert counts_since(before) == {"untrusted": 4}  # two generations, each refused to read and to write
    refused_with_one_warning(record)
    assert entries(shared) == [entry]  # nothing written there either


@needs_owners
def test_a_directory_of_another_user_is_refused(tmp_path, use_dir):
    model = model_in(tmp_path)
    theirs = use_dir(private_dir(tmp_path / "theirs"))
    os.chown(theirs, OTHER_UID, -1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert counts_since(before) == {"untrusted": 2}  # not read, not written
    refused_with_one_warning(record)
    assert entries(theirs) == []


def test_directories_srcgrad_creates_are_private_along_the_whole_path(tmp_path, use_dir):
    model = model_in(tmp_path)
    where = use_dir(tmp_path / "a" / "b" / "c")
    old = os.umask(0)  # the modes come from srcgrad, not from a friendly umask
    try:
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    finally:
        os.umask(old)
    for path in (tmp_path / "a", tmp_path / "a" / "b", where):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    (entry,) = entries(where)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600
    assert list(where.glob("*.tmp")) == []


# --- entries ---------------------------------------------------------------------------------------------------


@needs_owners
def test_a_forged_entry_of_another_user_is_never_run(tmp_path, use_dir):
    """The reproduction: another user replaced an entry (header hash recomputed); the next call ran it."""
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    (entry,) = entries(where)
    forge(entry)
    os.chown(entry, OTHER_UID, -1)
    model = model_in(tmp_path)  # a new process would reload; so does a new module
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert not hasattr(builtins, "srcgrad_cache_pwned")
    assert counts_since(before) == {"untrusted": 1, "stores": 1}  # regenerated, and the user's own entry replaces it
    refused_with_one_warning(record)
    assert os.stat(entry).st_uid == os.geteuid()
    before = cache.stats()
    model = model_in(tmp_path)
    assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert counts_since(before) == {"hits": 1}


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_an_entry_others_can_write_is_refused(tmp_path, use_dir, mode):
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    (entry,) = entries(where)
    forge(entry)
    os.chmod(entry, mode)
    model = model_in(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert not hasattr(builtins, "srcgrad_cache_pwned")
    assert counts_since(before) == {"untrusted": 1, "stores": 1}
    refused_with_one_warning(record)
    assert stat.S_IMODE(os.stat(entry).st_mode) == 0o600


def _replace_entry(tmp_path: Path, use_dir, make) -> tuple:
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    (entry,) = entries(where)
    entry.unlink()
    make(entry)
    return model_in(tmp_path), entry


def test_a_symbolic_link_to_dev_zero_is_refused_not_read(tmp_path, use_dir):
    """Was an InternalError (MemoryError): the link was followed and /dev/zero read to the end."""
    model, entry = _replace_entry(tmp_path, use_dir, lambda p: p.symlink_to("/dev/zero"))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert counts_since(before) == {"untrusted": 1, "stores": 1}
    refused_with_one_warning(record)
    assert not entry.is_symlink()  # the user's own entry replaced the link (not the file it pointed to)


def test_a_symbolic_link_to_a_valid_entry_is_refused(tmp_path, use_dir):
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    (entry,) = entries(where)
    elsewhere = tmp_path / "elsewhere.entry"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    model = model_in(tmp_path)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert counts_since(before) == {"untrusted": 1, "stores": 1}


def test_a_directory_in_place_of_an_entry_is_refused(tmp_path, use_dir):
    model, entry = _replace_entry(tmp_path, use_dir, lambda p: p.mkdir())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        before = cache.stats()
        assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert counts_since(before)["untrusted"] == 1
    refused_with_one_warning(record)


def test_an_oversized_entry_is_a_miss(tmp_path, use_dir):
    def big(path: Path) -> None:
        path.write_bytes(f"{cache._MAGIC} {cache.FORMAT} {'0' * 64}\n".encode() + b" " * (5 << 20))

    model, entry = _replace_entry(tmp_path, use_dir, big)
    before = cache.stats()
    assert grad_scalar(model) == pytest.approx(EXPECTED)
    assert counts_since(before) == {"corrupt": 1, "stores": 1}
    assert entry.stat().st_size < 1 << 20


FIFO_RUN = """
import sys, warnings
sys.path.insert(0, {tests!r})
from test_cache import MODEL, load_module
from pathlib import Path
import srcgrad
warnings.simplefilter("ignore")
model = load_module(Path({model!r}), MODEL, name={name!r})
print(srcgrad.grad(model.scalar)(1.5), srcgrad.cache.stats()["untrusted"])
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_place_of_an_entry_does_not_hang(tmp_path, use_dir):
    """Was a process hung forever (the read of a FIFO nobody writes). In a subprocess, so a regression fails."""
    model, entry = _replace_entry(tmp_path, use_dir, lambda p: os.mkfifo(p, 0o600))
    script = tmp_path / "fifo_run.py"
    script.write_text(FIFO_RUN.format(tests=str(ROOT / "tests"), model=str(tmp_path / "model.py"), name=model.__name__))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRCGRAD_")}
    env.update(PYTHONPATH=str(ROOT), SRCGRAD_CACHE_DIR=str(entry.parent))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=SUBPROCESS_TIMEOUT, check=True).stdout.split()
    assert float(out[0]) == pytest.approx(EXPECTED) and out[1] == "1"


# --- clear -----------------------------------------------------------------------------------------------------


def test_clear_removes_only_what_srcgrad_wrote(tmp_path, use_dir):
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    srcgrad.grad(model.loop)(0.7)
    ours = entries(where)
    assert len(ours) == 2
    leftover = where / f".{ours[0].name[:16]}.123.456.7.tmp"  # a write interrupted by a crash
    leftover.write_bytes(b"srcgrad-cache 1 ")
    notes = where / "notes.entry"
    notes.write_text("my notes\n")
    lookalike = where / f"{'ab' * 32}.entry"  # named like an entry, but not one srcgrad wrote
    lookalike.write_text("not an entry\n")
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = where / f"{'cd' * 32}.entry"
    link.symlink_to(target)
    other_tmp = where / ".tmp-of-another-tool.tmp"
    other_tmp.write_text("x")
    assert cache.clear() == 3
    assert not any(p.exists() for p in ours) and not leftover.exists()
    assert notes.read_text() == "my notes\n" and lookalike.exists() and other_tmp.exists()
    assert link.is_symlink() and target.read_text() == "keep me\n"


@needs_owners
def test_clear_leaves_entries_of_another_user(tmp_path, use_dir):
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    (entry,) = entries(where)
    os.chown(entry, OTHER_UID, -1)
    assert cache.clear() == 0 and entry.exists()


def test_clear_of_a_shared_directory_removes_nothing(tmp_path, use_dir):
    model = model_in(tmp_path)
    where = use_dir(private_dir(tmp_path / "cache"))
    grad_scalar(model)
    os.chmod(where, 0o777)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert cache.clear() == 0
    refused_with_one_warning(record)
    assert len(entries(where)) == 1


def test_the_readme_states_the_trust_model():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Cache trust model"):]
    section = section[:section.index("\n#", 1)]
    for phrase in ("hash", "corruption", "owned", "0700", "symbolic link", "SRCGRAD_CACHE_DIR"):
        assert phrase in section, phrase


def test_a_clean_cache_gives_no_warning(tmp_path, use_dir):
    model = model_in(tmp_path)
    use_dir(tmp_path / "fresh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = cache.stats()
        grad_scalar(model)
        assert grad_scalar(model_in(tmp_path)) == pytest.approx(EXPECTED)
    assert counts_since(before) == {"misses": 1, "stores": 1, "hits": 1}
