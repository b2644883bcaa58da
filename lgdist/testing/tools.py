"""Offline stand-ins for the search tools of LangGraph's README examples.

Both answer deterministically, so demos and tests give the same transcript on
every run and need no network or API key."""

from typing import Any, Optional

from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

__all__ = ["fake_search", "weather_answer", "TavilySearchResults"]

SF_WEATHER = "It's 60 degrees and foggy."
OTHER_WEATHER = "It's 90 degrees and sunny."


def weather_answer(query: str) -> str:
    """The canned answer: foggy for San Francisco, sunny anywhere else."""
    lowered = query.lower()
    if "sf" in lowered or "san francisco" in lowered:
        return SF_WEATHER
    return OTHER_WEATHER


@tool("search")
def fake_search(query: str) -> str:
    """Call to surf the web."""
    return weather_answer(query)


class _SearchInput(BaseModel):
    query: str = Field(description="search query to look up")


class TavilySearchResults(BaseTool):
    """Offline look-alike of ``langchain_community``'s ``TavilySearchResults``:
    same tool name and argument, so a model sees the same tool schema, but the
    results are canned (``[{"url": ..., "content": ...}]``)."""

    name: str = "tavily_search_results_json"
    description: str = (
        "A search engine optimized for comprehensive, accurate, and trusted results. "
        "Useful for when you need to answer questions about current events. "
        "Input should be a search query."
    )
    args_schema: Optional[type[BaseModel]] = _SearchInput  # type: ignore[assignment]
    max_results: int = 5

    def _run(self, query: str, run_manager: Any = None) -> list[dict[str, str]]:
        results = [
            {"url": "https://weather.example/search", "content": weather_answer(query)},
        ]
        return results[: self.max_results]
