"""Executors: where a flow run's tasks run.

* :class:`DaskExecutor` -- a Dask cluster (the default: an embedded LocalCluster).
* :class:`LocalExecutor` -- this process, one task after another, for debugging.

The executors load on first use: a Dask worker importing the worker-side
runner (:mod:`taskflow.executors.dask_worker`) loads no client-side code.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taskflow.executors.base import Executor, Outcome

if TYPE_CHECKING:
    from taskflow.executors.dask import DaskExecutor, default_executor
    from taskflow.executors.local import LocalExecutor

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "Outcome", "default_executor"]

_LAZY = {
    "DaskExecutor": "taskflow.executors.dask",
    "default_executor": "taskflow.executors.dask",
    "LocalExecutor": "taskflow.executors.local",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'taskflow.executors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
