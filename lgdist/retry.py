"""What a ``RetryPolicy`` retries: LangGraph's default rules for a transient
failure, which of a node's policies applies to a failure, and how long to
wait before the next attempt.

Imports nothing from lgdist (``lgdist.types`` uses :func:`default_retry_on`
as ``RetryPolicy.retry_on``'s default), nor the HTTP clients it recognizes:
their errors are recognized by class name and module.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from lgdist.types import RetryPolicy

__all__ = ["default_retry_on", "is_time_limit", "as_policies", "matching_policy", "retry_delay"]

# Programming errors: retrying gives the same failure.
_NOT_TRANSIENT = (
    ValueError,
    TypeError,
    ArithmeticError,
    ImportError,
    LookupError,
    NameError,
    SyntaxError,
    RuntimeError,
    ReferenceError,
    StopIteration,
    StopAsyncIteration,
    OSError,
)


def _is_a(exc: BaseException, name: str, package: str) -> bool:
    """Whether ``exc`` is an instance of ``package``'s class ``name``
    (checked along its MRO, without importing ``package``)."""
    return any(
        cls.__name__ == name and cls.__module__.split(".")[0] == package for cls in type(exc).__mro__
    )


def is_time_limit(exc: BaseException) -> bool:
    """Whether ``exc`` is Celery's soft time limit (billiard's
    ``SoftTimeLimitExceeded``): the task ran too long, which another attempt
    inside the same task would only repeat."""
    return _is_a(exc, "SoftTimeLimitExceeded", "billiard") or _is_a(exc, "SoftTimeLimitExceeded", "celery")


def default_retry_on(exc: Exception) -> bool:
    """LangGraph's default: retry connection errors and HTTP 5xx responses
    (httpx, requests), not programming errors or other ``OSError``\\ s;
    anything else is taken as transient."""
    if isinstance(exc, ConnectionError):
        return True  # an OSError, but the transient kind
    if _is_a(exc, "HTTPStatusError", "httpx"):
        return 500 <= exc.response.status_code < 600  # type: ignore[attr-defined]
    if _is_a(exc, "HTTPError", "requests"):
        # A requests.Response is falsy for 4xx/5xx statuses, so LangGraph's
        # `if exc.response` retries every error response; kept as it is.
        response = exc.response  # type: ignore[attr-defined]
        return 500 <= response.status_code < 600 if response else True
    return not isinstance(exc, _NOT_TRANSIENT)


def as_policies(retry_policy: Any) -> tuple["RetryPolicy", ...]:
    """A node's ``retry_policy`` argument (one policy, a sequence of them, or
    None) as a tuple of policies."""
    if retry_policy is None:
        return ()
    if isinstance(retry_policy, (list, tuple)) and not hasattr(retry_policy, "_fields"):
        return tuple(retry_policy)
    return (retry_policy,)


def _retries(policy: "RetryPolicy", exc: Exception) -> bool:
    retry_on = policy.retry_on
    if isinstance(retry_on, Sequence):
        return isinstance(exc, tuple(retry_on))
    if isinstance(retry_on, type) and issubclass(retry_on, Exception):
        return isinstance(exc, retry_on)
    if callable(retry_on):
        return bool(retry_on(exc))
    raise TypeError("retry_on must be an Exception class, a list or tuple of Exception classes, or a callable")


def matching_policy(policies: Sequence["RetryPolicy"], exc: Exception) -> Optional["RetryPolicy"]:
    """The first of ``policies`` whose ``retry_on`` matches ``exc``; None
    when none does, or when ``exc`` is a worker's time limit (never
    retried, whatever the policy says)."""
    if is_time_limit(exc):
        return None
    for policy in policies:
        if _retries(policy, exc):
            return policy
    return None


def retry_delay(policy: "RetryPolicy", failures: int) -> float:
    """Seconds to wait after the task's ``failures``-th failed attempt."""
    interval = min(policy.max_interval, policy.initial_interval * policy.backoff_factor ** (failures - 1))
    return interval + random.uniform(0, 1) if policy.jitter else interval
