"""The in-process runtime: a thread loop driven by threads or asyncio."""

from lgdist.local.loop import ThreadLoop
from lgdist.local.runner import stream_async, stream_sync

__all__ = ["ThreadLoop", "stream_sync", "stream_async"]
