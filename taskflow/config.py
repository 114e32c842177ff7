"""taskflow's settings live in the ``taskflow`` section of :mod:`dask.config`.

Defaults ship in ``taskflow.yaml`` next to this module and are registered at
import time, so ``DASK_TASKFLOW__EXECUTOR__ADDRESS=tcp://...`` and
``dask.config.set({"taskflow.executor.address": ...})`` work as for Dask itself.

Examples
--------
>>> import dask
>>> from taskflow import config
>>> config.get("events.topic")
'taskflow'
>>> with dask.config.set({"taskflow.events.topic": "other"}):
...     config.get("events.topic")
'other'
"""
from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml

__all__ = ["get", "run_url"]

_fn = os.path.join(os.path.dirname(__file__), "taskflow.yaml")
with open(_fn) as _f:  # libyaml's loader when there is one: every process (workers too) reads it
    _defaults = yaml.load(_f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506

dask.config.update_defaults(_defaults)


def get(key: str, default: Any = None) -> Any:
    """The value of ``taskflow.<key>`` in dask.config."""
    return dask.config.get(f"taskflow.{key}", default=default)


def run_url(run_id: str) -> str | None:
    """The run's page on the taskflow server (``<taskflow.server.url>/runs/<run_id>``).

    None when ``taskflow.server.url`` is not set.

    Examples
    --------
    >>> with dask.config.set({"taskflow.server.url": "http://tf.internal:8080/"}):
    ...     run_url("3f2a")
    'http://tf.internal:8080/runs/3f2a'
    """
    base = get("server.url")
    return f"{str(base).rstrip('/')}/runs/{run_id}" if base else None
