"""``WordHashEmbeddings``: a deterministic embedding that needs no model or
network, so semantic search can be tested offline and across processes.

Each lower-cased word adds 1 to one of ``dims`` coordinates chosen by a
stable hash (CRC-32, the same in every process, unlike ``hash()``), and the
vector is normalized: texts that share words score higher, and a text is
most similar to itself. It knows nothing of meaning ("car" and "auto" are
unrelated), which is what a test wants.
"""

from __future__ import annotations

import math
import re
import zlib

from langchain_core.embeddings import Embeddings

__all__ = ["WordHashEmbeddings"]

_WORD = re.compile(r"\w+")


class WordHashEmbeddings(Embeddings):
    """``WordHashEmbeddings(dims=64)``; ``.calls`` counts embedded texts."""

    def __init__(self, dims: int = 64) -> None:
        if dims < 1:
            raise ValueError("dims must be at least 1")
        self.dims = dims
        self.calls = 0

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        vector = [0.0] * self.dims
        for word in _WORD.findall(text.lower()):
            vector[zlib.crc32(word.encode()) % self.dims] += 1.0
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector] if norm else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]
