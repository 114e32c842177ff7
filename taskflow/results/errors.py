"""Errors of the result store.  They carry their context and pickle (they cross processes)."""
from __future__ import annotations

from taskflow.exceptions import FAIL, TaskflowError

__all__ = [
    "CorruptResultError",
    "ResultError",
    "ResultStoreError",
    "RunNotFoundError",
    "SerializationError",
    "SignatureError",
]


class ResultError(TaskflowError):
    """Base of every result-store error."""


class CorruptResultError(ResultError, ValueError):
    """A result file is truncated, corrupted, or not a taskflow result; it is not loaded."""


class SignatureError(ResultError):
    """A result's HMAC signature is missing or does not match the configured signing key."""


class ResultStoreError(ResultError, OSError):
    """The result store cannot be used: missing bucket, refused credentials, unreachable."""


class RunNotFoundError(ResultError, LookupError):
    """``resume=`` names a run the result store has no manifest for."""


class SerializationError(ResultError, FAIL):
    """A task's output cannot be written by its serializer.

    A :class:`~taskflow.FAIL`: the task ends FAILED at once, without retries
    (running the function again would give a value of the same type).
    """

    def __init__(self, message: str, **context: object) -> None:
        ResultError.__init__(self, message, **context)
