"""Generated code run on Dask arrays: the gradient is built as a Dask graph, and nothing computes during the call.

In: a variant's function, its arguments (some of them Dask arrays) and the parsed user function. Out: what the
function returns (lazy Dask arrays where the data are Dask's), or a :class:`~srcgrad.errors.SrcgradError` at the user's
line. What holds:
- while a thread runs a gradient here, a Dask computation started from that thread is refused: Dask's scheduler is
  set (``dask.config``) to :func:`_guard`, which raises ``ValueError("srcgrad: ...")`` — srcgrad's failure handler
  reports it at the user's line — naming the cause: a numpy function Dask does not implement (Dask would compute its
  arguments and call numpy), srcgrad's gradient of the line needing the values (a helper), or the user's own line
  computing a value (``if`` on a Dask value, ``float()``, ``np.asarray``). Computations started by other threads
  meanwhile go to the scheduler configured before (or Dask's default: a distributed client, else the threaded one);
- an exception Dask raises while the gradient is built (an operation it supports only for some chunkings, a keyword
  it does not take) becomes an :class:`~srcgrad.errors.UnsupportedValue` at the user's line;
- Dask is imported only when a Dask array is an argument (it is loaded then); the numpy path never comes here.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from srcgrad import arrays, locks
from srcgrad.errors import Location, SrcgradError, UnsupportedValue, at_user_line, generated_from

_state = threading.local()  # depth: how many lazy calls this thread is in
_lock = locks.lock()
_active = 0  # lazy calls running in any thread (the guard is installed while there is one)
_installed: Any = None  # the dask.config.set object that installed the guard
_previous: Any = None  # the scheduler configured before
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def needs_guard(arg_types: Any) -> bool:
    """Do these argument types hold a Dask array (an array that computes when it is converted)?"""
    return any(arrays.is_protocol_type(t) and t.__module__.split(".")[0] == "dask" for t in arg_types)


def holds_dask(values: Any, depth: int = 0) -> bool:
    """Does a structure among ``values`` (dicts, lists, tuples, dataclasses and objects of them) hold a Dask array?
    (Read when a variant is made, not at each call.)"""
    return any(needs_guard((type(value),)) or (depth < 32 and holds_dask(_items(value), depth + 1))
               for value in values)


def _items(value: Any) -> Any:
    if isinstance(value, dict):
        return value.values()
    if isinstance(value, (list, tuple)):
        return value
    if hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType, types.FunctionType,
                                                              types.MethodType)):
        return vars(value).values()
    return ()


def guarded(impl: Callable[..., Any], pf: Any) -> Callable[..., Any]:
    """``impl`` run by :func:`call`."""
    return lambda *args, **kwargs: call(impl, pf, args, kwargs)


def call(impl: Callable[..., Any], pf: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    """``impl(*args, **kwargs)`` with Dask computations refused and Dask's own failures located at the user's line."""
    _enter()
    try:
        return impl(*args, **kwargs)
    except SrcgradError:
        raise
    except Exception as exc:
        if not str(exc).startswith("srcgrad: ") and _raised_by_dask(exc):
            raise _dask_failure(exc, pf) from exc
        raise
    finally:
        _exit()


def _enter() -> None:
    global _active, _installed, _previous
    _state.depth = getattr(_state, "depth", 0) + 1
    with _lock:
        _active += 1
        if _active == 1:
            import dask

            _previous = dask.config.get("scheduler", None)
            _installed = dask.config.set(scheduler=_guard)


def _exit() -> None:
    global _active, _installed
    _state.depth -= 1
    with _lock:
        _active -= 1
        if _active == 0 and _installed is not None:
            _installed.__exit__(None, None, None)
            _installed = None


def _guard(*args: Any, **kwargs: Any) -> Any:
    """The scheduler while a lazy call runs: refuse in the threads running one, else run as configured before."""
    if getattr(_state, "depth", 0):
        raise ValueError("srcgrad: " + _cause(sys._getframe(1)))
    return _fallback()(*args, **kwargs)


def _fallback() -> Callable[..., Any]:
    import dask.base

    if _previous is not None:
        return dask.base.get_scheduler(scheduler=_previous)
    try:
        from distributed import get_client

        return dask.base.get_scheduler(scheduler=get_client())
    except (ImportError, ValueError):
        import dask.threaded

        return dask.threaded.get


def _cause(frame: Any) -> str:
    """What asked Dask to compute, as "message; hint", from the frames of the computation."""
    helper = called = generated = None
    while frame is not None:
        code = frame.f_code
        if code.co_name == "handle_nonmatching_names" and "func" in frame.f_locals:
            func = frame.f_locals["func"]
            name = f"{func.__module__}.{func.__name__}".replace("numpy.", "np.", 1)
            return (f"{name} is not implemented by Dask (Dask would compute the whole array and call numpy) and "
                    "srcgrad keeps Dask arrays lazy; write it with functions Dask implements (dask.array's list), "
                    "or compute that part first")
        if code.co_filename.startswith("<srcgrad "):
            generated = frame
            break
        if helper is None and _in_srcgrad(code.co_filename):
            helper = code.co_name
        called = frame
        frame = frame.f_back
    if helper is not None:
        return (f"srcgrad's gradient of this line ({helper}) needs the values of a Dask array, and srcgrad keeps "
                "Dask arrays lazy; compute that part first (np.asarray), or pass numpy arrays")
    module = str(called.f_globals.get("__name__", "")) if called is not None and generated is not None else ""
    if module and module.split(".")[0] not in ("dask", "numpy"):
        return (f"{module}.{called.f_code.co_name} converts a Dask array to numpy (that computes it), and srcgrad "
                "keeps Dask arrays lazy; compute that part first, or pass numpy arrays")
    return ("this line computes a Dask array (an `if` on a Dask value, float(), np.asarray...) while srcgrad builds "
            "the gradient lazily; compute that value before the call and pass it in")


def _in_srcgrad(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE) and not filename.endswith("lazy.py")


def _raised_by_dask(exc: BaseException) -> bool:
    """Raised by Dask's code, or by numpy because Dask does not implement the function (``np.add.at``)."""
    if isinstance(exc, TypeError) and "NotImplemented from __array_" in str(exc):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] == "dask"


def _dask_failure(exc: BaseException, pf: Any) -> SrcgradError:
    """Dask's exception as an UnsupportedValue at the user's line whose code (or gradient) was running."""
    location = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if generated_from(filename, pf):
            location = Location(filename, tb.tb_lineno, 0)
            break  # (the outermost generated frame of the function: its nearest "# line N" names the user's line)
        tb = tb.tb_next
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    refused = UnsupportedValue(f"Dask cannot build this line (or its gradient) lazily: {type(exc).__name__}: {first}",
                               location, hint="rechunk, compute that part first, or pass numpy arrays")
    return at_user_line(refused, pf) if location is not None else UnsupportedValue(refused.message,
                                                                                    pf.location(pf.node), refused.hint)
