"""Every ``taskflow`` setting's kind, checked before a run starts.

taskflow reads most settings where they are used: a timeout when the run waits,
a batch size when the history writes.  A bad value found there would end a run
that had already started (and been recorded) in a Crashed state, or fail it at
its very end.  :func:`check` reads them all once, before anything of the run
starts, and raises one :class:`~taskflow.exceptions.SettingError` naming the
setting, the value found, what it takes, and where it can be set.

Examples
--------
>>> import dask
>>> check()
>>> with dask.config.set({"taskflow.events.settle-timeout": "soon"}):
...     check()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
taskflow.exceptions.SettingError: taskflow.events.settle-timeout must be a duration such as '10s' or a number of seconds, not 'soon': set it with ...
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import dask.config
import dask.utils

from taskflow.exceptions import SettingError

__all__ = ["check", "check_one"]


def _duration(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return float(dask.utils.parse_timedelta(value)) >= 0
    except (TypeError, ValueError, KeyError):
        return False


def _size(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return dask.utils.parse_bytes(value) >= 0
    except (TypeError, ValueError):
        return False


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive(value: Any) -> bool:
    return _count(value) and value > 0


def _port(value: Any) -> bool:
    return _count(value) and value <= 65535


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


def _level(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and isinstance(logging.getLevelName(value.upper()), int)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _text_or_none(value: Any) -> bool:
    return value is None or _text(value)


def _mapping(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


def _anything(value: Any) -> bool:
    return True


# kind -> (its test, what a setting of that kind takes)
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "duration": (_duration, "a duration such as '10s' or a number of seconds"),
    "size": (_size, "a size such as '16 MiB' or a number of bytes"),
    "count": (_count, "a whole number of at least 0"),
    "positive": (_positive, "a whole number of at least 1"),
    "port": (_port, "a TCP port number (0 to 65535)"),
    "flag": (_flag, "true or false"),
    "level": (_level, "a logging level such as 'info', 'warning' or 'debug'"),
    "text": (_text, "a non-empty string"),
    "text-or-none": (_text_or_none, "a non-empty string, or null"),
    "mapping": (_mapping, "a mapping of names to values, such as {n_workers: 2}"),
    "anything": (_anything, "anything"),
}

# Every key of taskflow.yaml, and its kind.  A key added there is added here
# (tests/test_settings.py fails otherwise).
KINDS: dict[str, str] = {
    "executor.address": "text-or-none",
    "executor.cluster-class": "anything",  # a dotted name or a class: checked where it is loaded
    "executor.cluster-kwargs": "mapping",
    "executor.adapt": "mapping",
    "executor.check-versions": "flag",
    "executor.check-resources": "flag",
    "executor.resource-timeout": "duration",
    "executor.connect-timeout": "duration",
    "executor.local-cluster": "mapping",
    "dask.submit-window": "count",
    "dask.first-window": "count",
    "map.split-above": "size",
    "events.settle-timeout": "duration",
    "events.batch-interval": "duration",
    "events.batch-interval-busy": "duration",
    "events.topic": "text",
    "logging.level": "level",
    "logging.handler": "flag",
    "history.enabled": "flag",
    "history.url": "text-or-none",
    "history.heartbeat-interval": "duration",
    "history.stale-after": "duration",
    "history.cancel-interval": "duration",
    "history.flush-interval": "duration",
    "history.flush-timeout": "duration",
    "history.batch-size": "positive",
    "history.queue-size": "count",
    "dashboard.install": "flag",
    "dashboard.max-runs": "positive",
    "dashboard.max-log-records": "count",
    "dashboard.max-task-runs": "count",
    "dashboard.refresh": "duration",
    "server.host": "text",
    "server.port": "port",
    "server.token": "text-or-none",
    "server.url": "text-or-none",
    "server.page-size": "positive",
    "serve.poll-interval": "duration",
    "serve.stop-timeout": "duration",
    "hooks.timeout": "duration",
    "concurrency.limits": "mapping",  # its entries: taskflow.concurrency.limits()
    "results.store": "anything",  # a URL or a ResultStore: checked by as_store
    "results.checkpoint": "flag",
    "results.signing-key": "text-or-none",
    "results.fsync": "flag",
    "results.temporary-max-age": "duration",
}


def _env_name(key: str) -> str:
    return "DASK_TASKFLOW__" + key.upper().replace(".", "__").replace("-", "_")


def check_one(key: str, value: Any) -> None:
    """Raise :class:`~taskflow.exceptions.SettingError` when ``value`` does not fit ``taskflow.<key>``.

    Examples
    --------
    >>> check_one("history.batch-size", 500)
    >>> check_one("history.batch-size", "many")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    taskflow.exceptions.SettingError: taskflow.history.batch-size must be a whole number of at least 1, not 'many': set it with ...
    """
    test, takes = _KINDS[KINDS[key]]
    if not test(value):
        raise SettingError(
            f"taskflow.{key} must be {takes}, not {value!r}: set it with "
            f"dask.config.set({{'taskflow.{key}': ...}}), in a Dask YAML config file, or "
            f"with the {_env_name(key)} environment variable",
            key=f"taskflow.{key}", value=value,
        )


def check(keys: Iterable[str] | None = None) -> None:
    """Check every taskflow setting (or those named in ``keys``, e.g. ``"events.topic"``) in the current dask.config.

    Raises
    ------
    SettingError
        On the first setting whose value does not fit its kind.
    """
    for key in keys if keys is not None else KINDS:
        value = dask.config.get(f"taskflow.{key}", default=_UNSET)
        if value is not _UNSET:
            check_one(key, value)


_UNSET = object()
