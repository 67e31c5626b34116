"""On-disk cache of generated code: a later process loads the text instead of running the pipeline again.

In: one specialisation request of :func:`srcgrad.pipeline.generate` — the parsed function, ``wrt``, the mode, the
argument kinds and ``as_tuple``. Out: the :class:`~srcgrad.pipeline.Generated` the pipeline would have made, loaded
from ``<cache dir>/<key>.entry`` (a hit), or made by the pipeline and then written there (a miss).

An entry is keyed by what the generated text depends on and cannot change while the process runs: the function's
dedented source text, its file, first line, column, module and qualified name; ``wrt``, mode, argument kinds and
``as_tuple``; a description of its closure cells (functions made by one factory get entries of their own); the
entry format; srcgrad's version and the size and modification time of each of its modules (so an
edited srcgrad never reuses text made by another one); the Python version; the numpy, astor and gast versions.

It records inside, and checks at every load, what can change between runs without changing the key:

- every name the function's source mentions, and every attribute chain on a free name (``np.linalg.inv``,
  ``cfg.scale``), as a short description of the object it denotes now — a module by name, a callable by module,
  qualified name and whether it has a rule, a number or string by value, an array by dtype and shape, anything
  else by type. Rebinding ``exp`` from ``math.exp`` to ``np.exp`` invalidates the entry;
- every derivative rule the lowered function uses, found again through its primitive (module and qualified name,
  or its key such as ``("display", "tuple")``): its options, its forward-mode kind, and for rules outside srcgrad a
  hash of their code objects, their defaults and the globals they read. Redefining a rule with ``defgrad``
  invalidates the entry;
- the names the generated code gets from srcgrad (``np``, ``math``, runtime helpers, rule functions) as module and
  qualified name; a load rebinds them to the same objects, so the compiled function is the one the pipeline makes
  (same text, same closure, same ``linecache`` file name: ``srcgrad.source`` and ``inspect.getsource`` work).

What holds:

- correctness first: what cannot be checked exactly is not cached. Not cached: functions whose source is not in a
  real file (``exec``, generated code, e.g. the second derivative of ``hvp``), functions calling user helper
  functions (their own ``_fwd``/``_bwd`` variants are generated, :mod:`srcgrad.calls`, and their text depends on the
  helper's code and kinds), functions naming an object that cannot be found again by module and qualified name
  (rule primitives, bound objects), forward mode (``jvp``, ``hvp``), and any run with ``SRCGRAD_DUMP`` set (the
  dumps are printed by the pipeline);
- an entry is ``srcgrad-cache <format> <sha256 of the body>`` on its first line, then a JSON body. Anything that
  does not verify — truncated, edited, not JSON, larger than 4 MB, another key, a name or rule that changed, an
  object that cannot be rebound — is a miss: the pipeline runs, the entry is rewritten, nothing read from it is
  compiled. The hash detects corruption and accidental edits, not a forger: anyone who can write the entry can
  recompute it;
- trust (what keeps out a forger, as ssh's StrictModes does): entries are code, so srcgrad reads them only from a
  directory the current user owns and that neither group nor others can write, and only entries that are regular
  files the user owns and no one else can write, opened without following symbolic links (and non-blocking, so
  a FIFO cannot hang the process) through the directory it checked. Anything else is ignored — never read, never
  written — with one :class:`RuntimeWarning` per process. The directories srcgrad creates (every missing one of
  the path) are made with mode 0700 and checked after; entries are written as new 0600 files;
- the cache never raises: an unreadable or unwritable directory only costs the regeneration. A hit costs reading,
  checking and compiling one small file; a miss costs, besides the generation, a look at its lowering (to list the
  rules the function uses) and one write;
- writes are atomic (a temporary file in the same directory, then :func:`os.replace`), so concurrent processes
  writing the same entry each leave a complete file and a reader never sees half of one;
- configuration: ``SRCGRAD_CACHE=0`` (or ``false``, ``off``, ``no``) turns the cache off, ``SRCGRAD_CACHE_DIR`` sets
  its directory (default ``$XDG_CACHE_HOME/srcgrad``, i.e. ``~/.cache/srcgrad``); in Python :func:`disable`,
  :func:`enable` (optionally with a directory) and :func:`reset` (back to the environment) override both.
  :func:`clear` removes the entries srcgrad wrote (named as it names them, starting with its header, the user's
  own regular files) and nothing else; :func:`stats` counts hits and misses in this process.
"""

from __future__ import annotations

import ast
import errno
import importlib.util
import itertools
import keyword
import os
import re
import stat
import sys
import threading
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from srcgrad import digests, freshness, frontend, ir, locks, lower, usercode, version
from srcgrad.emitter import Emitted, compile_function
from srcgrad.generated import FORWARD, REVERSE, Generated, Origin
from srcgrad.rules import registry

FORMAT = 3  # 2: entries hold the line map and the names of adjoints and seeds; 3: and each line's column
SUFFIX = ".entry"
_MAGIC = "srcgrad-cache"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_OFF = {"0", "false", "off", "no"}
_MAX_BYTES = 4 << 20  # an entry is a few kilobytes: anything larger is not one (and is never read whole)
_MISSING = object()  # an unbound name (frontend's own sentinel is matched through ``_resolve_name``)
_UNREAD = object()  # an attribute srcgrad does not read (of an array)

_lock = locks.lock()
_override: dict[str, Any] = {}  # "enabled": bool, "directory": Path — set by disable()/enable(), cleared by reset()
_environment_key: str | None = None
_serial = itertools.count()
_counts = {"hits": 0, "misses": 0, "stores": 0, "stale": 0, "corrupt": 0, "uncacheable": 0, "errors": 0,
           "untrusted": 0}


def _json() -> Any:
    """The json module, imported at the first key or entry (2 ms that ``import srcgrad`` need not pay, issue 21)."""
    import json

    return json


# --- configuration -------------------------------------------------------------------------------------------------


def disable() -> None:
    """Turn the cache off in this process (whatever ``SRCGRAD_CACHE`` says)."""
    with _lock:
        _override["enabled"] = False


def enable(directory: str | os.PathLike | None = None) -> None:
    """Turn the cache on in this process, in ``directory`` if given (else ``SRCGRAD_CACHE_DIR`` or the default)."""
    with _lock:
        _override["enabled"] = True
        if directory is not None:
            _override["directory"] = Path(directory)


def reset() -> None:
    """Forget :func:`disable`/:func:`enable`: the environment decides again."""
    with _lock:
        _override.clear()


def enabled() -> bool:
    if "enabled" in _override:
        return _override["enabled"]
    return os.environ.get("SRCGRAD_CACHE", "1").strip().lower() not in _OFF


def directory() -> Path | None:
    """Where entries are read and written, or None when the cache is off."""
    if not enabled():
        return None
    if "directory" in _override:
        return _override["directory"]
    configured = os.environ.get("SRCGRAD_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    return default_directory()


def default_directory() -> Path:
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "srcgrad" / "cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "srcgrad"


def clear() -> int:
    """Remove the entries srcgrad wrote (and its leftover temporary files) from the cache directory; returns how
    many. Files srcgrad did not write stay, whatever their name; a directory that is not private is left alone."""
    where = directory()
    if where is None:
        return 0
    try:
        with _Directory.open(where, create=False) as opened:
            return 0 if opened is None else opened.remove_own_entries()
    except Untrusted as refusal:
        _refuse(refusal)
    except OSError:
        _count("errors")
    return 0


def stats() -> dict[str, int]:
    """Counts in this process: hits, misses, stores, stale (a dependency changed), corrupt (failed the hash or the
    format), uncacheable (not cached by design), errors (the directory could not be read or written), untrusted
    (a directory or entry refused: not the user's own, writable by others, a link, not a regular file)."""
    with _lock:
        return dict(_counts)


def _count(what: str) -> None:
    with _lock:
        _counts[what] += 1


# --- the entry point used by the pipeline ------------------------------------------------------------------------


def cached(generate: Callable, pf: Any, wrt: list[str], mode: str, kinds: dict[str, str], as_tuple: bool) -> Any:
    """``generate(pf, wrt, mode, kinds, as_tuple)``, or the same result loaded from the cache."""
    slot = Slot.open(pf, wrt, mode, kinds, as_tuple)
    if slot is None:
        return generate(pf, wrt, mode, kinds, as_tuple)
    found = slot.load()
    if found is not None:
        return found
    generated = generate(pf, wrt, mode, kinds, as_tuple)
    slot.store(generated)
    return generated


class Slot:
    """The cache entry of one specialisation: its key and path; :meth:`load` and :meth:`store` never raise."""

    def __init__(self, pf: Any, mode: str, key: str, path: Path):
        self.pf = pf
        self.mode = mode
        self.key = key
        self.path = path

    @classmethod
    def open(cls, pf: Any, wrt: list[str], mode: str, kinds: dict[str, str], as_tuple: bool) -> Slot | None:
        """The slot, or None when the cache is off or this function is not cached by design."""
        try:
            where = directory()
            if where is None:
                return None
            if os.environ.get("SRCGRAD_DUMP") or not _in_real_file(pf):
                _count("uncacheable")
                return None
            func = pf.func
            material = {
                "environment": _environment(), "file": pf.filename, "line": pf.line_offset, "col": pf.col_offset,
                "module": getattr(func, "__module__", None), "qualname": func.__qualname__, "source": pf.source,
                "wrt": list(wrt), "mode": mode, "kinds": [[p, k] for p, k in kinds.items()], "as_tuple": as_tuple,
                # functions made by one factory share their source: their closures tell their entries apart
                "closure": [_describe(_cell_contents(cell)) for cell in func.__closure__ or ()],
            }
            key = digests.hex_digest(_json().dumps(material, sort_keys=True))
            return cls(pf, mode, key, where / f"{key}{SUFFIX}")
        except Exception:  # noqa: BLE001 - the cache must never break differentiation
            _count("errors")
            return None

    # --- load ----------------------------------------------------------------------------------------------------

    def load(self) -> Any:
        """The cached :class:`Generated`, or None (missing, untrusted, corrupt or stale)."""
        try:
            with _Directory.open(self.path.parent, create=False) as where:
                data = None if where is None else where.read_entry(self.path.name)
        except Untrusted as refusal:
            _refuse(refusal)
            return None
        except OSError:
            _count("errors")
            return None
        if data is None:
            _count("misses")
            return None
        try:
            entry = self._verified(data)
        except Exception:  # noqa: BLE001 - whatever is wrong with the file, it is regenerated
            entry = None
        if entry is None:
            _count("corrupt")
            return None
        try:
            found = self._rebuilt(entry)
        except Exception:  # noqa: BLE001
            found = None
        _count("stale" if found is None else "hits")
        return found

    def _verified(self, data: bytes) -> dict | None:
        if len(data) > _MAX_BYTES:
            return None
        header, newline, body = data.partition(b"\n")
        parts = header.decode("ascii").split(" ")
        if not newline or len(parts) != 3 or parts[0] != _MAGIC or parts[1] != str(FORMAT):
            return None
        if digests.sha256(body).hexdigest() != parts[2]:
            return None
        entry = _json().loads(body.decode("utf-8"))
        if not _well_formed(entry) or entry["key"] != self.key:
            return None
        return entry

    def _rebuilt(self, entry: dict) -> Any:
        resolved: dict[str, Any] = {}
        for path, description in entry["names"]:
            if _describe(_lookup_path(self.pf, path, resolved)) != description:
                return None
        for ref, fingerprint in entry["rules"]:
            rule = registry.lookup(_resolve_ref(ref))
            if rule is None or _rule_fingerprint(rule) != fingerprint:
                return None
        bound = {}
        for name, ref in entry["bound"]:
            obj = _resolve_ref(ref)
            if obj is _MISSING:
                return None
            bound[name] = obj
        lines = tuple(Origin(*item) for item in entry["lines"])
        emitted = Emitted(entry["name"], entry["source"], bound, lines)
        function = compile_function(emitted, self.pf.func, f"{self.pf.name}:{self.mode}")
        return Generated(entry["source"], function, tuple(entry["kinds"]), bound, main=entry["source"], lines=lines,
                         adjoints=dict(entry["adjoints"]), seeds=tuple(entry["seeds"]))

    # --- store ---------------------------------------------------------------------------------------------------

    def store(self, generated: Any) -> None:
        """Write the entry for ``generated`` (unless it cannot be rebound exactly); failures are only counted."""
        try:
            entry = self._entry(generated)
        except Exception:  # noqa: BLE001
            entry = None
        if entry is None:
            _count("uncacheable")
            return
        body = _json().dumps(entry, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()
        data = f"{_MAGIC} {FORMAT} {digests.sha256(body).hexdigest()}\n".encode() + body
        try:
            with _Directory.open(self.path.parent, create=True) as where:
                where.write_atomically(self.path.name, data)
        except Untrusted as refusal:
            _refuse(refusal)
            return
        except OSError:
            _count("errors")
            return
        _count("stores")

    def _entry(self, generated: Any) -> dict | None:
        bound = []
        for name, obj in generated.bound.items():
            ref = _ref(obj)
            if ref is None:
                return None  # e.g. a helper variant's cell (calls.CellRef): helpers are not cached
            bound.append([name, ref])
        fn = lower.lowered(self.pf)  # it names the rules the code uses and the names code generation avoids
        names = _dependencies(self.pf, fn)
        rules = _rules_used(fn)
        if names is None or rules is None:
            return None
        if generated.helpers or generated.source != generated.main:
            return None  # (a function that calls generated helpers has a CellRef among its names: never here)
        return {
            "key": self.key, "name": generated.function.__name__, "source": generated.source,
            "kinds": list(generated.kinds), "bound": bound, "names": names, "rules": rules,
            "lines": [[o.sweep, o.line, o.op, o.heading, o.col] for o in generated.lines],
            "adjoints": sorted(generated.adjoints.items()), "seeds": list(generated.seeds),
            "function": f"{getattr(self.pf.func, '__module__', '?')}.{self.pf.func.__qualname__}", "mode": self.mode,
        }


def _cell_contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


def _in_real_file(pf: Any) -> bool:
    filename = pf.filename
    return bool(filename) and not filename.startswith("<") and os.path.isfile(filename)


# --- trust: only a private directory and the user's own regular files ---------------------------------------


class Untrusted(Exception):
    """A cache directory or entry srcgrad will not use: another user could have written it."""

    def __init__(self, path: Path | str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


_warned = False


def _refuse(refusal: Untrusted) -> None:
    """Count the refusal; warn once per process (the cache is then only as good as off)."""
    global _warned
    _count("untrusted")
    with _lock:
        first, _warned = not _warned, True
    if first:
        warnings.warn(
            f"srcgrad: not using the on-disk cache entry or directory {refusal.path}: {refusal.reason}. Cached "
            "gradients are code that srcgrad runs, so it reads them only from a directory that you own and that "
            "no one else can write (mode 0700). Set SRCGRAD_CACHE_DIR to such a directory, or SRCGRAD_CACHE=0 to "
            "turn the cache off. (This warning is shown once per process.)", RuntimeWarning, stacklevel=2)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_AT = bool(_O_DIRECTORY) and os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd
_OWNER = os.geteuid if hasattr(os, "geteuid") else None  # (Windows: no owners to check)
ENTRY_NAME = re.compile(r"[0-9a-f]{64}" + re.escape(SUFFIX))  # what Slot.open names an entry
_TEMPORARY_NAME = re.compile(r"\.[0-9a-f]{1,16}\.\d+\.\d+\.\d+\.tmp")  # what write_atomically names its files


def _check_owner(path: Path | str, st: os.stat_result, what: str) -> None:
    """The user owns it and no one else can write it (ssh's StrictModes, for one file or directory)."""
    if _OWNER is None:
        return
    if st.st_uid != _OWNER():
        raise Untrusted(path, f"the {what} belongs to user id {st.st_uid}, not to you (user id {_OWNER()})")
    if st.st_mode & 0o022:
        raise Untrusted(path, f"the {what} can be written by {'others' if st.st_mode & 0o002 else 'its group'} "
                              f"(mode {stat.S_IMODE(st.st_mode):04o})")


def _make_private(where: Path) -> None:
    """Create ``where`` and every missing directory above it with mode 0700, and check each one made: a directory
    that appeared meanwhile, or that is not private after all, is refused."""
    missing = []
    path = where
    while not os.path.lexists(path) and path.parent != path:
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass  # made by someone else meanwhile: checked below like any other
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            raise Untrusted(path, "it is not a directory")
        _check_owner(path, st, "directory")


class _Directory:
    """The cache directory, opened once and checked: the user's, private; everything in it is reached through the
    opened directory (``dir_fd``), so what was checked is what is used even if a path is swapped meanwhile."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self.fd = path, fd

    @classmethod
    def open(cls, path: Path, create: bool) -> _Directory | _Missing:
        if create:
            _make_private(path)
        try:
            fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC) if _AT else None
            st = os.fstat(fd) if fd is not None else os.stat(path)
        except FileNotFoundError:
            return _Missing()
        directory = cls(path, fd)
        try:
            if not stat.S_ISDIR(st.st_mode):
                raise Untrusted(path, "it is not a directory")
            _check_owner(path, st, "cache directory")
        except BaseException:
            directory.close()
            raise
        return directory

    def __enter__(self) -> _Directory:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name: str) -> tuple[str, dict]:
        if self.fd is not None:
            return name, {"dir_fd": self.fd}
        return str(self.path / name), {}

    def read_entry(self, name: str) -> bytes | None:
        """The bytes of entry ``name``, or None when there is none. Refused: a symbolic link, anything but a regular
        file (a FIFO would block forever: it is opened non-blocking and refused), a file someone else owns or can
        write. Bytes beyond :data:`_MAX_BYTES` are never read (the entry then fails its check)."""
        path, at = self._at(name)
        try:
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, **at)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(self.path / name):
                raise Untrusted(self.path / name, "the entry is a symbolic link") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Untrusted(self.path / name, "the entry is not a regular file")
            _check_owner(self.path / name, st, "entry")
            chunks, size = [], 0
            while size <= _MAX_BYTES:
                chunk = os.read(fd, min(1 << 20, _MAX_BYTES + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write_atomically(self, name: str, data: bytes) -> None:
        """Write a temporary file (created new, mode 0600, a name no other process or thread uses), then rename
        it over ``name``: readers see the old file or the new one, never a part."""
        temporary = f".{name[:16]}.{os.getpid()}.{threading.get_ident()}.{next(_serial)}.tmp"
        path, at = self._at(temporary)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o600, **at)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            target, _ = self._at(name)
            os.replace(path, target, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            try:
                os.unlink(path, **at)
            except OSError:
                pass
            raise

    def remove_own_entries(self) -> int:
        """Remove the entries and leftover temporary files srcgrad wrote here: named as srcgrad names them, regular
        files of the user, and (entries) starting with the entry header. Anything else stays."""
        removed = 0
        for name in sorted(os.listdir(self.fd if self.fd is not None else self.path)):
            if not (ENTRY_NAME.fullmatch(name) or _TEMPORARY_NAME.fullmatch(name)):
                continue
            try:
                if ENTRY_NAME.fullmatch(name) and not self._written_by_srcgrad(name):
                    continue
                if _TEMPORARY_NAME.fullmatch(name):
                    path, at = self._at(name)
                    st = os.stat(path, follow_symlinks=False, **at)
                    if not stat.S_ISREG(st.st_mode) or (_OWNER is not None and st.st_uid != _OWNER()):
                        continue
                path, at = self._at(name)
                os.unlink(path, **at)
                removed += 1
            except (OSError, Untrusted):
                pass
        return removed

    def _written_by_srcgrad(self, name: str) -> bool:
        path, at = self._at(name)
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, **at)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (_OWNER is not None and st.st_uid != _OWNER()):
                return False
            return os.read(fd, len(_MAGIC) + 1) == f"{_MAGIC} ".encode()
        finally:
            os.close(fd)


class _Missing:
    """A cache directory that does not exist (yet): nothing to read."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        pass


_FIELDS = {"key": str, "name": str, "source": str, "kinds": list, "bound": list, "names": list, "rules": list,
           "lines": list, "adjoints": list, "seeds": list}


def _well_formed(entry: Any) -> bool:
    """The shape of an entry, checked before anything in it is used (names must be plain identifiers: they become
    parameters of the scope function that :func:`compile_function` writes)."""
    if not isinstance(entry, dict) or any(not isinstance(entry.get(k), t) for k, t in _FIELDS.items()):
        return False
    return (_identifier(entry["name"]) and all(_known_kind(k) for k in entry["kinds"])
            and all(_pair(item, _identifier, _is_ref) for item in entry["bound"])
            and all(_pair(item, _dotted_name, _is_text) for item in entry["names"])
            and all(_pair(item, _is_ref, _is_text) for item in entry["rules"])
            and all(_origin_item(item) for item in entry["lines"])
            and all(_pair(item, _identifier, _identifier) for item in entry["adjoints"])
            and all(_identifier(s) for s in entry["seeds"]))


def _pair(item: Any, first: Callable[[Any], bool], second: Callable[[Any], bool]) -> bool:
    """``[a, b]`` with ``first(a)`` and ``second(b)``."""
    return isinstance(item, list) and len(item) == 2 and first(item[0]) and second(item[1])


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _dotted_name(value: Any) -> bool:
    return isinstance(value, str) and all(_identifier(part) for part in value.split("."))


def _origin_item(item: Any) -> bool:
    """One line of a line map as an entry holds it: [sweep, user line or None, IR name or None, heading, column or
    None]."""
    return (isinstance(item, list) and len(item) == 5 and item[0] in ("", FORWARD, REVERSE)
            and (item[1] is None or type(item[1]) is int) and (item[2] is None or isinstance(item[2], str))
            and isinstance(item[3], str) and (item[4] is None or type(item[4]) is int))


def _known_kind(kind: Any) -> bool:
    """"S", "A", or an array kind with its layout ("A:n1", srcgrad/layouts.py)."""
    return isinstance(kind, str) and (kind in ("S", "A") or (kind.startswith("A:") and set(kind[2:]) <= {"1", "n"}))


def _identifier(text: Any) -> bool:
    return isinstance(text, str) and text.isidentifier() and not keyword.iskeyword(text)


# --- the environment -----------------------------------------------------------------------------------------------


def _environment() -> str:
    """Everything outside the user's code that generated text depends on, hashed once per process, at the first use
    of the cache. (srcgrad's own files are described as they were when srcgrad was imported, freshness.PACKAGE_FILES:
    the entries this process writes are made by the code it imported, so a later edit of srcgrad's files must not
    label them with the edited files' sizes and times.)"""
    global _environment_key
    if _environment_key is None:
        modules = [[os.path.relpath(path, _PACKAGE_DIR), *stat] for path, stat in freshness.PACKAGE_FILES.items()]
        material = {
            "format": FORMAT, "srcgrad": version.__version__, "modules": sorted(modules),
            "python": [sys.version, sys.implementation.cache_tag], "numpy": np.__version__,
            "astor": _installed("astor"), "gast": _installed("gast"),
        }
        _environment_key = digests.hex_digest(_json().dumps(material, sort_keys=True))
    return _environment_key


def _installed(name: str) -> str:
    """Which copy of a package generated text depends on: its file, size and time (an upgrade changes them), read
    without importing it (astor is imported only when a statement needs its printer)."""
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, "origin", None)
    if not origin:
        return "-"
    try:
        st = os.stat(origin)
    except OSError:
        return origin
    return f"{origin} {st.st_size} {st.st_mtime_ns}"


# --- references: objects found again by module and qualified name ------------------------------------------------


def _ref(obj: Any) -> list | None:
    """How to find ``obj`` again in a later process (only among modules already imported), or None."""
    if isinstance(obj, str):
        return ["str", obj]
    if isinstance(obj, tuple) and all(isinstance(part, str) for part in obj):
        return ["tuple", *obj]
    if isinstance(obj, types.ModuleType):
        ref = ["module", obj.__name__]
    else:
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
            return None
        ref = ["object", module, qualname]
    return ref if _resolve_ref(ref) is obj else None


def _is_ref(ref: Any) -> bool:
    if not (isinstance(ref, list) and ref and all(isinstance(part, str) for part in ref)):
        return False
    return (ref[0] == "str" and len(ref) == 2) or ref[0] == "tuple" or (ref[0] == "module" and len(ref) == 2) or (
        ref[0] == "object" and len(ref) == 3)


def _resolve_ref(ref: list) -> Any:
    kind = ref[0]
    if kind == "str":
        return ref[1]
    if kind == "tuple":
        return tuple(ref[1:])
    module = sys.modules.get(ref[1], _MISSING)  # never imports: an entry cannot make srcgrad run new code
    if kind == "module" or module is _MISSING:
        return module
    obj = module
    for part in ref[2].split("."):
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            break
    return obj


# --- dependencies: the names the function mentions ---------------------------------------------------------------


def _dependencies(pf: Any, fn: ir.Function) -> list | None:
    """[dotted path, description] for every name in the function's body and every attribute chain on a free name.

    Local names and the lowered function's own names are described too: the code generator asks what they denote
    globally when it picks names for srcgrad's own objects (``np``, ``math``). A free name or chain denoting a user
    function without a rule (a helper, differentiated through generated variants) makes the function uncacheable."""
    fdef = ast.parse(pf.source).body[0]
    args = fdef.args
    params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names: set[str] = set(params) | set(fn.used_names) | set(fn.params)
    names.update(op.target for op in ir.walk_ops(fn.body))
    stored: set[str] = set(params) | set(fn.params)
    chains: set[tuple[str, ...]] = set()
    for statement in fdef.body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name):
                names.add(node.id)
                if not isinstance(node.ctx, ast.Load):
                    stored.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                stored.add(node.name)
            elif isinstance(node, ast.Attribute):
                chain = _chain(node)
                if chain is not None:
                    chains.add(chain)
    free = {name for name in names if name not in stored and name in fn.used_names}
    for chain in chains:
        if chain[0] not in stored:
            free.update(".".join(chain[:end]) for end in range(2, len(chain) + 1))
    out, resolved = [], {}
    for path in sorted(names | free):
        obj = _lookup_path(pf, path, resolved)
        if path in free and _is_helper(obj):
            return None
        out.append([path, _describe(obj)])
    return out


def _chain(node: ast.Attribute) -> tuple[str, ...] | None:
    parts = []
    current: Any = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    return (current.id, *reversed(parts))


def _lookup_path(pf: Any, path: str, resolved: dict) -> Any:
    """What ``path`` (``name`` or ``name.attr...``) denotes now; ``resolved`` memoises prefixes."""
    if path in resolved:
        return resolved[path]
    head, dot, attr = path.rpartition(".")
    obj = _attribute(_lookup_path(pf, head, resolved), attr) if dot else _resolve_name(pf, path)
    resolved[path] = obj
    return obj


def _resolve_name(pf: Any, name: str) -> Any:
    obj = pf.resolve(name)
    return _MISSING if obj is frontend._MISSING else obj


def _attribute(base: Any, attr: str) -> Any:
    """``getattr`` as the lowering reads it: never on an array (``x.T`` is an operation), never raising."""
    if base is _MISSING or base is _UNREAD or isinstance(base, np.ndarray):
        return _UNREAD
    try:
        return getattr(base, attr, _MISSING)
    except Exception:  # noqa: BLE001 - a property that raises: describe it as missing (lowering rejects it)
        return _MISSING


_SIMPLE = (bool, int, float, complex, str, bytes, type(None), type(Ellipsis))


def _describe(obj: Any) -> str:
    """A short text that changes whenever what the code generator derives from ``obj`` can change."""
    if obj is _MISSING:
        return "missing"
    if obj is _UNREAD:
        return "unread"
    kind = type(obj)
    if kind in _SIMPLE:
        text = repr(obj)
        return f"{kind.__name__} {text}" if len(text) <= 200 else f"{kind.__name__} #{_digest(text)}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, np.ndarray):
        return f"ndarray {obj.dtype.str} {obj.shape}"
    if isinstance(obj, np.generic):
        return f"{_type_name(kind)} {obj!r}"
    if isinstance(obj, (tuple, list)):
        if len(obj) <= 16:
            return f"{kind.__name__} ({'; '.join(_describe(item) for item in obj)})"
        return f"{kind.__name__} of {len(obj)}"
    if callable(obj):
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        has_rule = registry.lookup(obj) is not None
        return f"callable {_type_name(kind)} {getattr(obj, '__module__', None)}.{name} rule={int(has_rule)}"
    return f"object {_type_name(kind)}"


def _is_helper(obj: Any) -> bool:
    """A user function without a rule: calls to it are differentiated through generated variants (calls.py)."""
    return usercode.is_user_function(obj) and registry.lookup(obj) is None


def _type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _digest(text: str) -> str:
    return digests.hex_digest(text, 16)


def _in_srcgrad(func: Any) -> bool:
    code = getattr(func, "__code__", None)
    filename = os.path.abspath(code.co_filename) if code is not None else ""
    return filename.startswith(_PACKAGE_DIR + os.sep)


# --- dependencies: derivative rules ------------------------------------------------------------------------------


def _rules_used(fn: ir.Function) -> list | None:
    """[primitive reference, rule fingerprint] for every registered rule the lowered function uses."""
    out, seen = [], set()
    for op in ir.walk_ops(fn.body):
        rule = op.rule
        if rule is None or id(rule) in seen:
            continue
        seen.add(id(rule))
        if rule.func is None:
            continue  # srcgrad's own opaque operations (comparisons, .shape): part of srcgrad's code
        ref = _ref(rule.func)
        if ref is None or registry.lookup(_resolve_ref(ref)) is not rule:
            return None
        out.append([ref, _rule_fingerprint(rule)])
    return sorted(out)


def _rule_fingerprint(rule: Any) -> str:
    facts = [rule.view, rule.float_valued, rule.full_reduction, rule.uniform, rule.raises]
    parts = [rule.name, ",".join(rule.wrt), ",".join(rule.discrete), str(rule.broadcast), str(rule.out_kind),
             str(rule.nondiff), str(rule.forward), _function_fingerprint(rule.adjoint),
             _function_fingerprint(rule.scalar_adjoint), _function_fingerprint(rule.jvp),
             *(_function_fingerprint(f) if callable(f) else str(f) for f in facts)]
    return "|".join(parts)


def _function_fingerprint(func: Any) -> str:
    """srcgrad's own rules by name (their code is in the environment key); others by their code, defaults and the
    globals they read."""
    if func is None:
        return "-"
    name = f"{getattr(func, '__module__', None)}.{getattr(func, '__qualname__', None)}"
    if _in_srcgrad(func):
        return name
    code = getattr(func, "__code__", None)
    if code is None:
        return f"{name} opaque {id(func)}"  # never matches in another process: such a rule is never reused
    names: set[str] = set()
    digest = digests.sha256()
    _hash_code(code, digest, names)
    defaults = [_describe(d) for d in (func.__defaults__ or ())]
    defaults += [f"{k}={_describe(v)}" for k, v in sorted((func.__kwdefaults__ or {}).items())]
    scope = func.__globals__
    read = [f"{n}={_describe(scope[n])}" for n in sorted(names) if n in scope]
    return f"{name} {digest.hexdigest()[:32]} {defaults} {read}"


def _hash_code(code: types.CodeType, digest: Any, names: set[str]) -> None:
    names.update(code.co_names)
    for part in (code.co_name, code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags,
                 code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        digest.update(repr(part).encode())
    digest.update(code.co_code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _hash_code(const, digest, names)
        elif isinstance(const, frozenset):
            digest.update(repr(sorted(repr(c) for c in const)).encode())
        else:
            digest.update(repr(const).encode())
