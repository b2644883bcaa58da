"""Shared pieces of the server suite: its own share of the cluster
machinery (``tests/cluster_machinery.py``: a session id, queues and schema
of its own; starting a real ``lgdist serve`` process lives there too, as
the fault suite starts one). Fixtures and hooks that use them live in
``conftest.py``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _folder in (HERE, HERE.parent):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from cluster_machinery import Machinery  # noqa: E402 (needs the path above)

# The server suite's own session id, queues, schema and Redis database.
dist = Machinery()
