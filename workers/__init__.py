"""Graphs the test suite and the benchmarks register on their workers
(``LGDIST_GRAPHS=name=workers.module:attribute``). Not installed with lgdist:
the repository root is on the path of the tests (``pythonpath`` in
pyproject.toml) and of the workers they start (``PYTHONPATH``)."""
