"""SHA-256 digests for what srcgrad derives from code: generated file names, cache keys.

In: text (or bytes). Out: hex digests, the same as :mod:`hashlib`'s. Why not hashlib itself: importing it loads
OpenSSL, about 3 ms of the 25 ms ``import srcgrad`` may cost (issue 21's cold start); CPython's own SHA-256 module is
used where it exists (``_sha2`` from 3.12, ``_sha256`` before), hashlib's otherwise. tests/unit/test_digests.py
checks the two agree.
"""

from __future__ import annotations

try:
    from _sha2 import sha256  # type: ignore[import-not-found]
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        from hashlib import sha256  # type: ignore[assignment]

__all__ = ["hex_digest", "sha256"]


def hex_digest(text: str, length: int = 64) -> str:
    """The first ``length`` hex digits of the SHA-256 digest of ``text`` (UTF-8)."""
    return sha256(text.encode()).hexdigest()[:length]
