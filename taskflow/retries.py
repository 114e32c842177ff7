"""Retry options: how many extra attempts a task gets, and how far apart.

A task option (:class:`~taskflow.task.Task` holds one) that the engine honours
(:func:`taskflow.engine.transitions.after_exception`).  It lives below both, so
defining a task never imports the engine.

>>> policy = RetryPolicy(retries=2, delay=[1, 5])
>>> policy.max_attempts, [retry_delay(policy.delay, a) for a in (1, 2)]
(3, [1.0, 5.0])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["RetryDelay", "RetryPolicy", "retry_delay"]

RetryDelay = float | Sequence[float] | Callable[[int], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How a task retries: ``retries`` extra attempts, spaced by ``delay``.

    ``delay`` is seconds, a list of seconds per retry (the last one repeats), or
    a callable ``attempt -> seconds``.  ``retry_on`` limits which exceptions are
    retried (all by default).
    """

    retries: int = 0
    delay: RetryDelay = 0.0
    retry_on: tuple[type[BaseException], ...] | None = None

    @property
    def max_attempts(self) -> int:
        return 1 + self.retries


def retry_delay(delay: RetryDelay, attempt: int) -> float:
    """Seconds to wait after failed ``attempt`` (1-based) before the next one.

    Examples
    --------
    >>> retry_delay(2, 1)
    2.0
    >>> [retry_delay([1, 5], a) for a in (1, 2, 3)]
    [1.0, 5.0, 5.0]
    >>> retry_delay(lambda a: 2 ** a, 3)
    8.0
    """
    if callable(delay):
        value = delay(attempt)
    elif isinstance(delay, (int, float)):
        value = delay
    else:
        seq = list(delay)
        value = seq[min(attempt, len(seq)) - 1] if seq else 0.0
    return max(0.0, float(value))
