"""Shared test settings: float64 everywhere, deterministic random inputs; the on-disk cache in a temporary
directory of this run (never the user's), inherited by the subprocesses tests start."""

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

_CACHE_DIR = tempfile.mkdtemp(prefix="srcgrad-test-cache-")
os.environ["SRCGRAD_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
