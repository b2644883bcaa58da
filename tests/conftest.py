"""Shared fixtures. Services are real: Postgres and Redis on this machine."""

from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_URL = os.environ.get("LGDIST_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LGDIST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def thread_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def thread(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}}
