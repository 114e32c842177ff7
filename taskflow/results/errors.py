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
    """Base of every result-store error.

    Examples
    --------
    >>> from taskflow.results import ResultStore
    >>> ResultStore("memory://doc-missing").load("nothing/here.pkl")
    Traceback (most recent call last):
    ...
    taskflow.results.errors.ResultError: no result at memory://doc-missing/nothing/here.pkl
    """


class CorruptResultError(ResultError, ValueError):
    """A result file is truncated, corrupted, or not a taskflow result; it is not loaded.

    Examples
    --------
    >>> import fsspec
    >>> from taskflow.results import ResultStore
    >>> store = ResultStore("memory://doc-corrupt", serializer="json")
    >>> fsspec.filesystem("memory").pipe_file("/doc-corrupt/x.json", b"garbage")
    >>> store.load("x.json")
    Traceback (most recent call last):
    ...
    taskflow.results.errors.CorruptResultError: result memory://doc-corrupt/x.json is not a taskflow result file (bad or missing header)
    """


class SignatureError(ResultError):
    """A result's HMAC signature is missing or does not match the configured signing key.

    Examples
    --------
    >>> import dask
    >>> from taskflow.results import ResultStore
    >>> store = ResultStore("memory://doc-signed")
    >>> with dask.config.set({"taskflow.results.signing-key": "one key"}):
    ...     _ = store.write("a.pkl", [1, 2])
    >>> with dask.config.set({"taskflow.results.signing-key": "another key"}):
    ...     store.load("a.pkl")
    Traceback (most recent call last):
    ...
    taskflow.results.errors.SignatureError: result memory://doc-signed/a.pkl has a signature that does not match the configured signing key: ...
    """


class ResultStoreError(ResultError, OSError):
    """The result store cannot be used: missing bucket, refused credentials, unreachable.

    Checked when a run begins, before any task runs, and raised by writes and reads.

    Examples
    --------
    >>> @flow(result_store="s3://no-such-bucket/runs")  # doctest: +SKIP
    ... def etl(): ...
    >>> etl.run()  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.results.errors.ResultStoreError: ...no-such-bucket...
    """


class RunNotFoundError(ResultError, LookupError):
    """``resume=`` names a run the result store has no manifest for.

    Examples
    --------
    >>> etl.run(resume="not-a-run-id")  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    taskflow.results.errors.RunNotFoundError: ...
    """


class SerializationError(ResultError, FAIL):
    """A task's output cannot be written by its serializer.

    A :class:`~taskflow.FAIL`: the task ends FAILED at once, without retries
    (running the function again would give a value of the same type).

    Parameters
    ----------
    message : str
        What could not be written, and with which serializer.
    **context
        Kept as attributes (the task, the serializer...).

    Examples
    --------
    >>> @task(checkpoint=True, serializer="json")  # doctest: +SKIP
    ... def now():
    ...     return datetime.datetime.now()  # not JSON: the task ends FAILED
    """

    def __init__(self, message: str, **context: object) -> None:
        ResultError.__init__(self, message, **context)
