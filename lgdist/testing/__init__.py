"""Offline stand-ins for hosted models and tools, so demos and tests run
without network or API keys and give the same transcript every time."""

from lgdist.testing.embeddings import WordHashEmbeddings
from lgdist.testing.models import ScriptedChatModel, ScriptExhaustedError, build_seed_model
from lgdist.testing.tools import TavilySearchResults, fake_search, weather_answer

__all__ = [
    "ScriptedChatModel",
    "ScriptExhaustedError",
    "TavilySearchResults",
    "build_seed_model",
    "fake_search",
    "weather_answer",
    "WordHashEmbeddings",
]
