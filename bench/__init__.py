"""Benchmark scripts; each prints a table. Run with ``python -m bench.<name>``."""
