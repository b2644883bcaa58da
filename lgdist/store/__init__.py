"""Long-term memory shared across threads (LangGraph's store API):
``lgdist.store.base.BaseStore``, ``lgdist.store.memory.InMemoryStore``,
``lgdist.store.sqlite.SqliteStore`` and ``lgdist.store.postgres.PostgresStore``."""
