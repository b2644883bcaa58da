"""Benchmarks: ``python -m bench [--quick]`` (``make bench`` / ``make bench-quick``)."""
