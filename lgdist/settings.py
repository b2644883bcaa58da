"""lgdist's configuration: one pydantic settings object read from the
environment (``LGDIST_*``). Secrets stay in the environment and are never
logged: ``Settings.safe_dict`` masks credentials."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where Celery sends a task when nothing routes it.
CELERY_DEFAULT_QUEUE = "celery"
DEFAULT_HOME = Path(os.environ.get("LGDIST_HOME", ".lgdist"))


class Settings(BaseSettings):
    """Every knob of the distributed backend.

    With nothing set, everything is embedded and needs no server: kombu's
    filesystem transport as broker, SQLite for results and checkpoints.
    """

    model_config = SettingsConfigDict(env_prefix="LGDIST_", extra="ignore")

    home: Path = DEFAULT_HOME
    broker_url: Optional[str] = None
    result_backend: Optional[str] = None
    database_url: Optional[str] = None
    # The long-term memory store nodes share (store=, get_store()); defaults
    # to the checkpoint database.
    store_url: Optional[str] = None
    # "module:attribute" of the store's index config (semantic search).
    store_index: Optional[str] = None
    # Minutes before an item put without a ttl expires (None: never).
    store_ttl_minutes: Optional[float] = None
    # Minutes between deletions of expired store items in each worker process
    # (None: no sweeping; expired items stay until something calls sweep_ttl()).
    store_sweep_minutes: Optional[float] = None
    # The graphs a worker runs: "name=module:attribute,other=module:attribute"
    # (none by default; the demo and deploy/ register lgdist.examples').
    graphs: str = ""
    # Modules (comma-separated; a package covers its submodules) whose classes
    # stored state may name besides lgdist's, langchain_core's messages and
    # documents, the graphs' packages and their schemas' classes (lgdist.serde).
    serde_modules: str = ""
    # Per-node queue routing: "action=io,tools=io"; others use default_queue.
    node_queues: str = ""
    default_queue: str = "lgdist"
    # Seconds a node may run before the worker kills it (hard limit).
    task_time_limit: Optional[float] = None
    # Deliveries of one node task before it is parked as a poison message.
    max_deliveries: int = 3
    # A running step with no progress for this long is rescheduled by the sweeper.
    stall_seconds: float = 120.0
    # Reject (default) or enqueue a second run submitted on a busy thread.
    multitask_strategy: Literal["reject", "enqueue"] = "reject"
    # Largest accepted message payload, in bytes.
    max_payload_bytes: int = Field(default=1_000_000)
    # Redis visibility timeout for unacked tasks (seconds).
    visibility_timeout: int = 3600
    # A worker that finished a one-task step runs the next one-task steps
    # of the thread itself (same queue, state kept in memory, a checkpoint
    # per step) for at most this many steps and milliseconds of its nodes'
    # time, then yields to the queue so other threads get their turn.
    # 0 steps: never.
    inline_steps: int = 8
    inline_ms: float = 50.0

    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    def resolved_result_backend(self) -> str:
        if self.result_backend:
            return self.result_backend
        if self.broker_url and self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"db+sqlite:///{(self.home / 'results.db').resolve()}"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'lgdist.db').resolve()}"

    def resolved_store_url(self) -> str:
        return self.store_url or self.resolved_database_url()

    @property
    def embedded(self) -> bool:
        return self.resolved_broker_url().startswith("filesystem://")

    def broker_folder(self) -> Path:
        return (self.home / "broker").resolve()

    def node_routes(self) -> dict[str, str]:
        """``node_queues`` parsed: node name → queue."""
        return dict(_parse_node_queues(self.node_queues))

    def queue_for(self, node: str) -> str:
        return self.node_routes().get(node, self.default_queue)

    def queue_names(self) -> list[str]:
        """lgdist's own queues: the default one and every node queue."""
        return sorted({self.default_queue, *self.node_routes().values()})

    def worker_queues(self) -> list[str]:
        """What a worker consumes: lgdist's queues plus Celery's default
        ``celery`` queue, where a bare ``send_task("lgdist.resume", ...)``
        from any Celery program (or Flower's API) lands."""
        return sorted({*self.queue_names(), CELERY_DEFAULT_QUEUE})

    def safe_dict(self) -> dict:
        """Settings with passwords in URLs masked, for logs and `lgdist config`."""
        out = {}
        for key, value in self.model_dump(mode="json").items():
            out[key] = mask_url(str(value)) if isinstance(value, str) and "://" in value else value
        return out


@lru_cache(maxsize=16)
def _parse_node_queues(spec: str) -> tuple[tuple[str, str], ...]:
    # Parsed once per value: queue_for() runs for every node task sent.
    routes = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, _, queue = item.partition("=")
        if name.strip() and queue.strip():
            routes[name.strip()] = queue.strip()
    return tuple(routes.items())


def mask_url(url: str) -> str:
    """``url`` with its password hidden, as SQLAlchemy renders it
    (``postgresql://app:***@db/x``); a URL it cannot parse (a list of
    sentinels, say) keeps only its scheme, so no secret leaks either way."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return f"{url.partition('://')[0]}://***"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
