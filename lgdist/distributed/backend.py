"""Per-process resources of the distributed backend, created lazily so that
prefork children open their own database connections after the fork."""

from __future__ import annotations

import socket
import threading
from functools import cached_property
from typing import Any, Optional

from lgdist.checkpoint.sql import SQLCheckpointSaver, create_checkpoint_engine
from lgdist.distributed.deliveries import RedisDeliveries, StoreDeliveries
from lgdist.distributed.events import EventBus, RedisEventBus, SQLEventBus
from lgdist.distributed.registry import GraphRegistry
from lgdist.distributed.step_writes import RedisStepWrites
from lgdist.distributed.runs import RunStore
from lgdist.distributed.store import open_shared_store
from lgdist.settings import Settings, get_settings
from lgdist.store.sql import SQLStore


class Backend:
    """Settings, graph registry, checkpoint store, memory store, run store and event bus."""

    def __init__(self, settings: Optional[Settings] = None, app: Any = None, *, pre_ping: bool = True) -> None:
        self.settings = settings or get_settings()
        self.app = app
        self.hostname = socket.gethostname()
        # Workers' tasks retry on connection errors: they skip the pre-ping
        # round trip on every pooled checkout (see get_backend).
        self.pre_ping = pre_ping

    @cached_property
    def registry(self) -> GraphRegistry:
        return GraphRegistry.from_spec(self.settings.graphs)

    @cached_property
    def saver(self) -> SQLCheckpointSaver:
        saver = SQLCheckpointSaver(create_checkpoint_engine(self.settings.resolved_database_url(), pre_ping=self.pre_ping))
        saver.setup()
        return saver

    @cached_property
    def store(self) -> SQLStore:
        """The long-term memory store every worker's nodes share."""
        return open_shared_store(self.settings, self.saver.engine)

    @cached_property
    def runs(self) -> RunStore:
        runs = RunStore(self.saver.engine)
        runs.setup()
        return runs

    @cached_property
    def deliveries(self) -> Any:
        """Delivery counters: the broker's Redis, else the run store."""
        broker = self.settings.resolved_broker_url()
        if broker.startswith(("redis://", "rediss://")):
            return RedisDeliveries(broker)
        return StoreDeliveries(self.runs)

    @cached_property
    def step_writes(self) -> Optional[RedisStepWrites]:
        """Where a wide step's tasks keep their writes until its callback
        stores them (see ``step_writes``): the broker's Redis; None on
        other brokers, whose tasks store their writes themselves."""
        broker = self.settings.resolved_broker_url()
        if broker.startswith(("redis://", "rediss://")):
            return RedisStepWrites(broker)
        return None

    @cached_property
    def bus(self) -> EventBus:
        broker = self.settings.resolved_broker_url()
        if broker.startswith(("redis://", "rediss://")):
            return RedisEventBus(broker)
        return SQLEventBus(self.runs)


_local = threading.local()


def get_backend(app: Any) -> Backend:
    """The calling thread's backend for ``app`` (one per thread and app, so
    threads of one worker process never share a backend's connections)."""
    backend = getattr(_local, "backend", None)
    if backend is None or backend.app is not app:
        backend = Backend(getattr(app.conf, "lgdist_settings", None), app, pre_ping=False)
        _local.backend = backend
    return backend
