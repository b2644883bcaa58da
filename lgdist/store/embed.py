"""Embedding for semantic search: the ``embed`` of an index config as a
langchain-core ``Embeddings``, and the texts a stored value offers at a
field path (``"$"`` for the whole value, ``"a.b"``, ``"items[*].text"``,
``"items[0]"``, ``"*"``, ``"{title,body}"``)."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from typing import Any, Callable, Optional

from langchain_core.embeddings import Embeddings

__all__ = ["as_embeddings", "texts_at_path", "split_path"]


class _FunctionEmbeddings(Embeddings):
    """An ``Embeddings`` over a plain function from texts to vectors (sync or async)."""

    def __init__(self, func: Callable[[list[str]], Any]) -> None:
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.is_async:
            raise TypeError(
                f"the store's embed function {self.func!r} is async; use the store's async methods "
                "(aput, asearch, abatch) or give a sync function"
            )
        return list(self.func(texts))

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.is_async:
            return list(await self.func(texts))
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


def as_embeddings(embed: Any) -> Optional[Embeddings]:
    """The index config's ``embed`` as an ``Embeddings``: an instance as is, a
    function wrapped, a provider string (``"openai:text-embedding-3-small"``)
    through langchain's ``init_embeddings`` when langchain is installed."""
    if embed is None or isinstance(embed, Embeddings):
        return embed
    if isinstance(embed, str):
        try:
            from langchain.embeddings import init_embeddings  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ValueError(
                f"index embed {embed!r} is a provider string, which needs the `langchain` package; "
                "install it or pass an Embeddings instance or a function"
            ) from exc
        return init_embeddings(embed)
    if callable(embed):
        return _FunctionEmbeddings(embed)
    raise TypeError(f"index embed must be an Embeddings, a function or a provider string, not {type(embed).__name__}")


_TOKEN = re.compile(r"\[[^\]]*\]|\{[^}]*\}|[^.\[{]+")


def split_path(path: str) -> list[str]:
    """``"a.b[*].c"`` -> ``["a", "b", "[*]", "c"]``."""
    return _TOKEN.findall(path)


def _leaf_text(value: Any) -> list[str]:
    if isinstance(value, bool) or isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, (list, dict)):
        return [json.dumps(value, sort_keys=True, ensure_ascii=False)]
    return []


def _walk(value: Any, tokens: list[str]) -> list[str]:
    if not tokens:
        return _leaf_text(value)
    token, rest = tokens[0], tokens[1:]
    if token.startswith("["):
        if not isinstance(value, list):
            return []
        inner = token[1:-1].strip()
        if inner == "*":
            return [text for element in value for text in _walk(element, rest)]
        try:
            index = int(inner)
        except ValueError:
            return []
        return _walk(value[index], rest) if -len(value) <= index < len(value) else []
    if token.startswith("{"):
        if not isinstance(value, dict):
            return []
        return [text for field in token[1:-1].split(",") if field.strip()
                for text in _walk(value, split_path(field.strip()) + rest)]  # fmt: skip
    if token == "*":
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
        return [text for child in children for text in _walk(child, rest)]
    if isinstance(value, dict) and token in value:
        return _walk(value[token], rest)
    return []


def texts_at_path(value: Any, path: str) -> list[str]:
    """The texts to embed for ``path`` of ``value`` (none when it is missing)."""
    if path in ("", "$"):
        return [json.dumps(value, sort_keys=True, ensure_ascii=False)]
    return _walk(value, split_path(path))
