"""srcgrad.digests computes hashlib's SHA-256 (it only avoids loading OpenSSL at import)."""

import hashlib

import pytest

from srcgrad import digests


@pytest.mark.parametrize("text", ["", "def f(x):\n    return x", "é∂" * 100, "x" * 100_000])
def test_same_digest_as_hashlib(text):
    assert digests.hex_digest(text) == hashlib.sha256(text.encode()).hexdigest()
    assert digests.hex_digest(text, 10) == hashlib.sha256(text.encode()).hexdigest()[:10]
    incremental = digests.sha256()
    incremental.update(text.encode())
    incremental.update(b"tail")
    assert incremental.hexdigest() == hashlib.sha256(text.encode() + b"tail").hexdigest()
