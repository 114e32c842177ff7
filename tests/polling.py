"""The one way tests wait: poll a condition until it holds, with a deadline.

Like ``distributed.utils_test.poll_for``, but it returns the condition's
(truthy) value and says what it waited for when time runs out.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["wait_for"]


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    interval: float = 0.01,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Call ``condition`` until it returns something truthy, and return that.

    Fails the test after ``timeout`` seconds, naming ``what`` (and adding
    ``detail()``, e.g. the tail of a server's log).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{extra}")
        time.sleep(interval)
