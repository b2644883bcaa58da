"""The distributed suite's cluster machinery for the other suites that run
real workers (faults, server): ``tests/distributed/conftest.py`` loaded as a
plain module under a name of the caller's, so each suite gets its own
session id, queues and schema, without that conftest's fixtures and hooks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_CONFTEST = Path(__file__).resolve().parent / "distributed" / "conftest.py"


def load_cluster_machinery(name: str) -> ModuleType:
    """The machinery module for one suite (loaded once per ``name``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _CONFTEST)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
