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

__all__ = ["get"]

_fn = os.path.join(os.path.dirname(__file__), "taskflow.yaml")
with open(_fn) as _f:
    _defaults = yaml.safe_load(_f)

dask.config.update_defaults(_defaults)


def get(key: str, default: Any = None) -> Any:
    """The value of ``taskflow.<key>`` in dask.config."""
    return dask.config.get(f"taskflow.{key}", default=default)
