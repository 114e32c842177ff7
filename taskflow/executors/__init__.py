"""Executors: where a flow run's tasks run.

* :class:`DaskExecutor` -- a Dask cluster (the default: an embedded LocalCluster).
* :class:`LocalExecutor` -- this process, one task after another, for debugging.
"""
from taskflow.executors.base import Executor, Outcome
from taskflow.executors.dask import DaskExecutor, default_executor
from taskflow.executors.local import LocalExecutor

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "Outcome", "default_executor"]
