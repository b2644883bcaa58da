"""How a ``Command(resume=…)`` is stored between the resume and the tasks
that consume it.

A resume is saved as the "null task"'s ``__resume__`` write on the
interrupted checkpoint, so every process that restores the checkpoint (the
local loop, a distributed worker) hands the same answers to the same
``interrupt()`` calls. The write holds either one value not tied to an
interrupt (it goes to the first ``interrupt()`` that asks) or, for
``Command(resume={interrupt_id: value})``, the answers by interrupt id,
wrapped so that a resume value which happens to be a dict is never taken
for a map. Answers by id reach interrupts in subgraphs too: the id names the
``interrupt()`` call wherever it sits.
"""

from __future__ import annotations

from typing import Any, Mapping

from lgdist.engine.channels import MISSING

RESUME_MAP_KEY = "__lgdist_resume_map__"


def pack_resume_map(answers: Mapping[str, Any]) -> dict:
    return {RESUME_MAP_KEY: dict(answers)}


def unpack_resume(value: Any) -> tuple[Any, dict]:
    """A stored null-task resume as ``(unassigned value or MISSING, map)``."""
    if isinstance(value, dict) and set(value) == {RESUME_MAP_KEY}:
        return MISSING, dict(value[RESUME_MAP_KEY])
    return value, {}
