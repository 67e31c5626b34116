"""Run calls into an emitted module in a process where `import srcgrad` fails (used by the tests as a subprocess).

argv: DIRECTORY MODULE CALLS.pkl RESULTS.pkl — CALLS is a list of (function name, args[, kwargs]); RESULTS gets,
per call, ("ok", value) or ("error", exception type name, message).
"""

import importlib
import pickle
import sys


class BlockSrcgrad:
    """A meta-path finder that refuses srcgrad, as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "srcgrad" or name.startswith("srcgrad."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


def main(directory, module_name, calls_path, results_path):
    sys.meta_path.insert(0, BlockSrcgrad())
    sys.path.insert(0, directory)
    try:
        import srcgrad  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("srcgrad is importable: the test would prove nothing")
    module = importlib.import_module(module_name)
    with open(calls_path, "rb") as f:
        calls = pickle.load(f)
    results = []
    for name, args, *kwargs in calls:
        try:
            results.append(("ok", getattr(module, name)(*args, **(kwargs[0] if kwargs else {}))))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results.append(("error", type(exc).__name__, str(exc)))
    loaded = sorted(m for m in sys.modules if m == "srcgrad" or m.startswith("srcgrad."))
    if loaded:
        raise SystemExit(f"srcgrad modules were loaded: {loaded}")
    with open(results_path, "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:5])
