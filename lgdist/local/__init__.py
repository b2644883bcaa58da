"""The in-process driver: runs a :class:`~lgdist.loop.ThreadLoop`'s tasks on
threads or asyncio."""

from lgdist.local.runner import stream_async, stream_sync

__all__ = ["stream_sync", "stream_async"]
