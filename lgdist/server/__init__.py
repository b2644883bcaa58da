"""``lgdist serve``: the LangGraph Server API (``langgraph-sdk``,
``RemoteGraph(url=...)``) over lgdist's Celery workers. Needs the
``server`` extra: ``pip install 'lgdist[server]'``."""

from lgdist.server.app import create_app

__all__ = ["create_app"]
