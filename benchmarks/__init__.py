"""Benchmark harness for srcgrad: cases with hand-written gradients, peers, and a timing runner.

Run ``python benchmarks/run.py --quick``; see ``benchmarks/README.md``.
"""
