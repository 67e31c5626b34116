"""The package version (also written into emitted modules and cache keys)."""

__version__ = "0.1.0"
